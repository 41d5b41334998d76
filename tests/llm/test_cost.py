"""Prefill and decode graphs of a language model, and what they cost: MACs and bytes against closed forms,
decode against the bandwidth bound."""

import pytest

from hwsim.llm.config import load_lm_config
from hwsim.llm.cost import bytes_per_token, lm_cost
from hwsim.llm.graphs import Precision, decode_graph, prefill_graph


@pytest.fixture(scope="module")
def llama():
    return load_lm_config("llama_3_2_1b")


def _linear_macs(s) -> int:
    return s.layers * (s.hidden * s.dim * (2 * s.heads + 2 * s.kv_heads) + 3 * s.hidden * s.ffn)


def test_decode_and_prefill_macs(llama):
    """Decode: every linear once plus 2 x heads x L x dim per layer of attention, and the LM head; prefill:
    N rows of every linear, N x N attention, the LM head for the last position only."""
    s, n, length = llama, 64, 777
    attn = 2 * s.heads * s.dim
    head = s.vocab * s.hidden
    assert decode_graph(s, length).mac_count() == _linear_macs(s) + s.layers * attn * length + head
    assert prefill_graph(s, n).mac_count() == n * _linear_macs(s) + s.layers * attn * n * n + head


def test_bytes_per_token(llama):
    """Weights: codes at their bits plus a float16 scale per group, norms in float16; KV: the cache read
    (codes and a float16 scale per head and position) and the new position written."""
    s, length = llama, 1000
    prec = Precision(weights_bits=4, group_size=32, activations_bits=16, kv_bits=4)
    weights, kv = bytes_per_token(decode_graph(s, length, prec))
    linear_params = _linear_macs(s) + s.vocab * s.hidden
    assert weights == linear_params // 2 + 2 * linear_params // 32 + 2 * s.hidden * (2 * s.layers + 1)
    per_position = 2 * s.layers * s.kv_heads * (s.dim // 2 + 2)
    assert kv == per_position * (length + 1)


def test_grouped_query_attention_shrinks_the_cache(llama):
    """With 8 KV heads for 32 query heads the cache is a quarter of multi-head attention's."""
    mha = llama.model_copy(update={"kv_heads": llama.heads})
    prec = Precision(kv_bits=8)
    kv_bytes = [bytes_per_token(decode_graph(s, 512, prec))[1] for s in (mha, llama)]
    assert kv_bytes[0] == 4 * kv_bytes[1]


def test_decode_is_bandwidth_bound(llama):
    """1B-class decode streams ~0.8 GB per token: the simulated rate is within 10 % under the bound (DMA
    latency, vector ops, the device's per-inference overhead), never above it; prefill runs thousands of
    tokens per second (compute-bound); a 4-bit KV cache beats a float16 one."""
    w4 = lm_cost(llama, "hexagon_like", Precision(4, 32, 16, 16), prefill_tokens=128, kv_len=4096)
    assert 0.9 * w4.bound_tokens_per_s <= w4.decode_tokens_per_s <= w4.bound_tokens_per_s
    assert w4.prefill_tokens_per_s > 10 * w4.decode_tokens_per_s
    assert w4.decode_dram_energy_share > 0.9
    kv4 = lm_cost(llama, "hexagon_like", Precision(4, 32, 16, 4), prefill_tokens=128, kv_len=4096)
    assert kv4.kv_bytes_per_token < w4.kv_bytes_per_token / 3
    assert kv4.decode_tokens_per_s > w4.decode_tokens_per_s
    assert kv4.energy_per_token_uj < w4.energy_per_token_uj


def test_ethos_u85_through_the_cli(capsys):
    """The small LM on an Ethos-U85 timed by hwsim's mapper: decode under its bound at Vela's 12 GB/s; a
    float16 cache with 16-bit activations needs a 16x16 MAC pair the U85 lacks (a one-line error)."""
    from hwsim.cli import main

    args = [
        "llm",
        "stdlib_lm",
        "--device",
        "ethos_u85_256_like",
        "--performance-model",
        "hwsim",
        "--kv-len",
        "128",
        "--prefill",
        "16",
        "--output",
    ]
    assert main([*args, "/dev/null", "--recipe", "int4_w_per_group32_a8_kv8"]) == 0
    out = capsys.readouterr().out
    assert "stdlib_lm on ethos_u85_256_like: W4 g32, A8, KV8" in out and "at 12.0 GB/s the bound is" in out
    assert main([*args, "/dev/null", "--recipe", "int4_w_per_group32_a16"]) == 2
    assert "no operand pair covers 16-bit weights x 16-bit activations" in capsys.readouterr().err
