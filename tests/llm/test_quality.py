"""The shipped small LM on hwsim's integer path: the float model against PyTorch, decode against prefill,
integer codes against fake-quant, GPTQ against round-to-nearest, and pinned perplexities."""

import importlib.util

import numpy as np
import pytest

from hwsim.errors import ConfigError
from hwsim.llm.config import load_lm_config
from hwsim.llm.model import FloatBackend, KVCache, forward, load_weights
from hwsim.llm.quality import evaluate_lm, texts
from hwsim.llm.quantize import QuantBackend, quantize_gptq, quantize_lm, quantize_rtn
from hwsim.numerics.threads import single_threaded_blas
from hwsim.paths import data_dir
from hwsim.quant.recipe import QuantRecipe, WeightSpec

A16 = {"bits": 16, "dynamic": True, "symmetric": True}
A8 = {"bits": 8, "dynamic": True, "symmetric": True}
G32 = {"bits": 4, "granularity": "per_group", "group_size": 32}


def recipe(**fields) -> QuantRecipe:
    return QuantRecipe.model_validate({"name": "t", "activations": A16, **fields})


@pytest.fixture(scope="module")
def lm():
    spec = load_lm_config("stdlib_lm")
    return spec, load_weights(spec), texts(spec)


def test_float_model_matches_pytorch(lm):
    """hwsim's NumPy forward equals the training script's PyTorch module on the shipped weights."""
    import torch

    spec, w, (_, ids) = lm
    path = data_dir("workloads") / "train_stdlib_lm.py"
    module_spec = importlib.util.spec_from_file_location("train_stdlib_lm", path)
    train = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(train)
    model = train.TinyLlama(spec)
    model.load_state_dict(
        {k.removeprefix("model."): torch.from_numpy(v.astype(np.float32)) for k, v in w.items()}
    )
    tokens = ids[: spec.context]
    with torch.no_grad():
        expected = model(torch.from_numpy(tokens)[None])[0].numpy()
    got = forward(spec, w, tokens, FloatBackend(spec, w))
    assert np.abs(got - expected).max() < 2e-4 * np.abs(expected).max()


@pytest.mark.parametrize(
    "fields",
    [{}, {"weights": G32, "activations": A8, "kv_cache": {"bits": 4}}],
    ids=["float", "w4a8-kv4-integer"],
)
def test_decode_against_the_cache_equals_prefill(lm, fields):
    """Prefill 40 tokens, then decode 8 one at a time against the (quantized) cache: the logits are those of
    one 48-token prefill, since activation and KV scales are per token."""
    spec, w, (_, ids) = lm
    if fields:
        r = recipe(**fields)
        backend = QuantBackend(spec, w, quantize_lm(spec, w, r), r, integer=True)
    else:
        backend = FloatBackend(spec, w)
    tokens = ids[:48]
    with single_threaded_blas():
        whole = forward(spec, w, tokens, backend)
        cache = KVCache()
        steps = [forward(spec, w, tokens[:40], backend, cache)]
        steps += [forward(spec, w, tokens[i : i + 1], backend, cache) for i in range(40, 48)]
    assert cache.length == 48
    np.testing.assert_allclose(np.concatenate(steps), whole, rtol=0, atol=1e-9)


def test_integer_path_equals_fake_quant(lm, rng):
    """A linear layer and an attention step on integer codes (hwsim's GEMMs, per-group accumulators) equal
    fake-quant up to float64 rounding of the scaling. Through the whole model that rounding can move a
    later dynamic activation code by one step (2 of 512 positions here), nothing more: the next tokens agree
    everywhere and 99 % of positions agree to 1e-9."""
    spec, w, (_, ids) = lm
    r = recipe(weights=G32, activations=A8, kv_cache={"bits": 4})
    linears = quantize_lm(spec, w, r)
    integer, fake = (QuantBackend(spec, w, linears, r, integer=i) for i in (True, False))
    x = rng.standard_normal((16, spec.ffn))
    name = "model.layers.1.mlp.down_proj.weight"
    np.testing.assert_allclose(integer.linear(name, x), fake.linear(name, x), rtol=1e-12, atol=1e-12)
    q = rng.standard_normal((spec.heads, 16, spec.dim))
    k, v = rng.standard_normal((2, spec.kv_heads, 16, spec.dim))
    np.testing.assert_allclose(
        integer.attend(q, integer.store(k), integer.store(v), 0),
        fake.attend(q, fake.store(k), fake.store(v), 0),
        rtol=1e-12,
        atol=1e-12,
    )
    with single_threaded_blas():
        a = np.concatenate([forward(spec, w, ids[i : i + spec.context], integer) for i in range(0, 512, 128)])
        b = np.concatenate([forward(spec, w, ids[i : i + spec.context], fake) for i in range(0, 512, 128)])
    close = np.abs(a - b).max(axis=1) < 1e-9
    assert (a.argmax(-1) == b.argmax(-1)).all() and close.mean() >= 0.99 and close.sum() == 510


def test_rtn_codes_and_gptq_error(lm, rng):
    """RTN: 4-bit codes in [-7, 7], each weight within half a step of its group's scale. GPTQ: the layer's
    output error on correlated calibration inputs is well below RTN's."""
    spec, w, _ = lm
    name = "model.layers.0.mlp.down_proj.weight"
    ws = WeightSpec(**G32)
    q = quantize_rtn(w[name], ws)
    assert q.codes.min() >= -7 and q.codes.max() <= 7 and q.scales.shape == (spec.hidden, spec.ffn // 32)
    assert (np.abs(q.dequantized() - w[name]) <= np.repeat(q.scales, 32, axis=1) / 2 + 1e-12).all()
    # correlated input channels (as a layer's activations are): what GPTQ's inverse Hessian exploits
    x = rng.standard_normal((512, 24)) @ rng.standard_normal((24, spec.ffn))
    x += 0.1 * rng.standard_normal(x.shape)
    g = quantize_gptq(w[name], x, ws, damp=0.01)
    err = lambda ql: np.linalg.norm(x @ (ql.dequantized() - w[name]).T)  # noqa: E731
    assert err(g) < 0.8 * err(q)


def test_perplexity_per_recipe(lm):
    """On the first 8 held-out windows (1,016 predicted tokens): 8-bit per-channel weights and an 8-bit KV
    cache cost almost nothing; 4-bit per-group RTN costs 0.7 %; GPTQ recovers it (stored values)."""
    spec, _, _ = lm
    float_ppl = 6.358828555576577
    runs = {
        "w8a16_kv8": recipe(kv_cache={"bits": 8}),
        "w4g32_rtn": recipe(weights=G32),
        "w4g32_gptq": recipe(weights=G32, gptq={}),
    }
    got = {k: evaluate_lm(spec, r, windows_count=8) for k, r in runs.items()}
    assert all(q.float_perplexity == pytest.approx(float_ppl, rel=1e-9) for q in got.values())
    assert got["w8a16_kv8"].perplexity == pytest.approx(6.362127508911918, rel=1e-6)
    assert got["w4g32_rtn"].perplexity == pytest.approx(6.40437441134726, rel=1e-6)
    assert got["w4g32_gptq"].perplexity == pytest.approx(6.351429304507704, rel=1e-6)
    assert got["w4g32_gptq"].agreement > got["w4g32_rtn"].agreement > 0.9


def test_lm_recipe_errors(lm):
    """Recipes the LM path does not run are one-line errors naming the field."""
    spec, w, _ = lm
    with pytest.raises(ConfigError, match=r"activations.dynamic: LM activations take a scale per token"):
        quantize_lm(spec, w, QuantRecipe(name="static"))
    with pytest.raises(ConfigError, match=r"weights.group_size: 96 does not divide a layer depth 128"):
        quantize_lm(spec, w, recipe(weights={"bits": 4, "granularity": "per_group", "group_size": 96}))
    with pytest.raises(ConfigError, match=r"gptq needs calibration text"):
        quantize_lm(spec, w, recipe(weights=G32, gptq={}))


def test_smoothquant_keeps_the_float_model(lm):
    """SmoothQuant's migration changes the weights and norm gains but not the float function; the CNN
    quantizer refuses the LM-only recipe fields rather than ignoring them."""
    from pathlib import Path

    from hwsim.llm.quantize import smooth
    from hwsim.quant.convert import quantize_model

    spec, w, (calibration, ids) = lm
    r = recipe(activations=A8, smoothquant={"alpha": 0.5, "calibration_tokens": 256})
    smoothed = smooth(spec, w, r, calibration)
    name = "model.layers.0.self_attn.q_proj.weight"
    assert not np.allclose(smoothed[name], w[name])
    with single_threaded_blas():
        a = forward(spec, w, ids[:64], FloatBackend(spec, w))
        b = forward(spec, smoothed, ids[:64], FloatBackend(spec, smoothed))
    assert np.abs(a - b).max() < 1e-9
    with pytest.raises(ConfigError, match=r"smoothquant needs calibration text"):
        smooth(spec, w, r, None)
    with pytest.raises(ConfigError, match=r"smoothquant: a language-model field"):
        quantize_model(Path(data_dir("workloads")) / "digits_mlp.onnx", r, np.zeros((4, 64), np.float32))
