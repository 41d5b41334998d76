"""A language model's two phases as workload graphs: prefill of N tokens, decode of one token at L cached.

The graphs are shapes only (no weight values), for :func:`hwsim.schedule.simulate.simulate` and the energy
model. Per layer: norm, Q/K/V projections, RoPE, the attention matmuls (one batch per KV head: the ``group``
query heads sharing it are the rows, so grouped-query attention reads each cached key once), softmax, the
output projection, residual adds, the FFN (gate and up, the nonlinearity times up, down). Weights carry
their bit-width and, when quantized per group or per channel, a float16 scale tensor per layer beside them,
so the bytes a token streams are those a runtime reads. The KV cache is a graph input (``k_cache.3``,
[kv_heads, L, dim] at the cache's bits, float16 scales per head and token beside it, streamed from DRAM
as the attention matmuls' second operand) and each new position's keys and values are graph outputs
(written back to memory). The embedding lookup reads only the tokens' rows, so the graph input is those
rows (``embeddings``); the LM head (the table again when tied) is read whole, for the last position only
in prefill (time to first token needs only its logits).

Prefill computes the full N x N score matrix (a runtime may skip the masked half); decode reads L keys and
values, the new token's own included (the cache holds L positions once its K/V are appended).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwsim.llm.config import LMSpec
from hwsim.workload.graph import Graph, Op, Tensor


@dataclass(frozen=True)
class Precision:
    """Bits of one cost point: weights (with their group size; None per channel), activations, KV cache;
    the LM head may differ (``head_bits``, ``head_group_size``), as phone runtimes often keep it at 8 bits."""

    weights_bits: int = 8
    group_size: int | None = None
    activations_bits: int = 8
    kv_bits: int = 16
    scale_bits: int = 16
    head_bits: int | None = None
    head_group_size: int | None = None

    @classmethod
    def of_recipe(cls, recipe) -> "Precision":
        """The precision a :class:`~hwsim.quant.recipe.QuantRecipe` gives (float16 cache without kv_cache);
        the LM head's comes from the recipe's overrides for ``lm_head.weight``."""
        w = recipe.weights
        head = recipe.layer_specs("lm_head.weight")[0]
        kv_bits = recipe.kv_cache.bits if recipe.kv_cache else 16
        return cls(
            w.bits,
            _group(w),
            recipe.activations.bits,
            kv_bits,
            head_bits=head.bits,
            head_group_size=_group(head),
        )

    def of_layer(self, name: str) -> tuple[int, int | None]:
        """(bits, group size) of the linear layer called ``name``."""
        if name == "lm_head" and self.head_bits is not None:
            return self.head_bits, self.head_group_size
        return self.weights_bits, self.group_size


def _group(w) -> int | None:
    return w.group_size if w.granularity == "per_group" else None


class _Builder:
    def __init__(self, spec: LMSpec, prec: Precision, name: str):
        self.spec, self.prec = spec, prec
        self.graph = Graph({}, [], [], [], source=name, format="hwsim-llm")

    def tensor(self, name: str, shape, bits: int, role: str = "") -> str:
        dtype = np.dtype(np.int8 if bits <= 8 else np.int16 if bits <= 16 else np.int32)
        narrow = bits if bits < 8 else None
        self.graph.tensors[name] = Tensor(name, tuple(shape), dtype, bits=narrow, role=role)
        return name

    def act(self, name: str, shape) -> str:
        return self.tensor(name, shape, self.prec.activations_bits)

    def op(
        self,
        name: str,
        kind: str,
        inputs: list[str],
        output: str | list[str],
        w_bits: int | None = None,
        **attrs,
    ) -> str:
        outputs = [output] if isinstance(output, str) else output
        if w_bits is not None:
            a_bits = self.prec.activations_bits
            if kind == "batch_matmul":  # two activations (query or probabilities, and the cache): the
                w_bits, a_bits = sorted((w_bits, a_bits))  # narrower is the weight operand of the MAC pair
            attrs["precision"] = {"weights": w_bits, "activations": a_bits, "accumulator": 32}
        attrs.setdefault("activation", None)
        self.graph.ops.append(Op(name, kind, inputs, outputs, attrs))
        return outputs[0]

    def linear(self, name: str, x: str, rows: int, out: int, depth: int, bias: bool = False) -> str:
        p = self.prec
        bits, group = p.of_layer(name)
        w = self.tensor(f"{name}.weight", (out, depth), bits, "weight")
        inputs = [x, w]
        if bits < 16:
            groups = depth // group if group else 1
            inputs.append(self.tensor(f"{name}.scales", (out, groups), p.scale_bits, "weight"))
        if bias:
            inputs.append(self.tensor(f"{name}.bias", (out,), 32, "bias"))
        y = self.act(f"{name}.out", (1, rows, out))
        return self.op(name, "fully_connected", inputs, y, bits, keep_num_dims=True)

    def vector(self, name: str, kind: str, inputs: list[str], shape, gain: int | None = None) -> str:
        if gain:
            inputs = inputs + [self.tensor(f"{name}.weight", (gain,), 16, "weight")]
        return self.op(name, kind, inputs, self.act(f"{name}.out", shape))

    def cache(self, name: str, positions: int, output: bool) -> list[str]:
        """The cache is a graph input (read) or output (written): it lives off chip, and the mapper streams
        it from there as the second operand of the attention matmuls."""
        s, p = self.spec, self.prec
        names = [self.tensor(name, (s.kv_heads, positions, s.dim), p.kv_bits)]
        if p.kv_bits < 16:
            names.append(self.tensor(f"{name}.scales", (s.kv_heads, positions, 1), p.scale_bits))
        (self.graph.outputs if output else self.graph.inputs).extend(names)
        return names


def _build(spec: LMSpec, prec: Precision, tokens: int, kv_len: int | None, name: str) -> Graph:
    """Prefill (``kv_len`` None: attention over the ``tokens`` themselves) or decode (over ``kv_len``)."""
    b = _Builder(spec, prec, name)
    s, t = spec, tokens
    length = t if kv_len is None else kv_len
    x = b.act("embeddings", (1, t, s.hidden))
    b.graph.inputs.append(x)
    norm = "rms_norm" if s.norm == "rmsnorm" else "layer_norm"
    for i in range(s.layers):
        p = f"layers.{i}."
        h = b.vector(p + "input_norm", norm, [x], (1, t, s.hidden), s.hidden)
        q = b.linear(p + "q_proj", h, t, s.heads * s.dim, s.hidden, s.attention_bias)
        k = b.linear(p + "k_proj", h, t, s.kv_heads * s.dim, s.hidden, s.attention_bias)
        v = b.linear(p + "v_proj", h, t, s.kv_heads * s.dim, s.hidden, s.attention_bias)
        q = b.vector(p + "rope_q", "rope", [q], (s.kv_heads, s.group * t, s.dim))
        k_new = b.cache(f"k_new.{i}", t, output=True)
        v_new = b.cache(f"v_new.{i}", t, output=True)
        b.op(p + "rope_k", "rope", [k], k_new)
        b.op(p + "store_v", "quantize", [v], v_new)
        keys = k_new if kv_len is None else b.cache(f"k_cache.{i}", length, output=False)
        values = v_new if kv_len is None else b.cache(f"v_cache.{i}", length, output=False)
        scores = b.act(p + "scores.out", (s.kv_heads, s.group * t, length))
        b.op(
            p + "scores",
            "batch_matmul",
            [q, keys[0], *keys[1:]],
            scores,
            prec.kv_bits,
            adj_y=True,
            depth=s.dim,
        )
        probs = b.vector(p + "softmax", "softmax", [scores], (s.kv_heads, s.group * t, length))
        ctx = b.act(p + "context.out", (s.kv_heads, s.group * t, s.dim))
        b.op(p + "context", "batch_matmul", [probs, values[0], *values[1:]], ctx, prec.kv_bits, depth=length)
        o = b.linear(p + "o_proj", ctx, t, s.hidden, s.heads * s.dim)
        x = b.vector(p + "residual_attn", "add", [x, o], (1, t, s.hidden))
        h = b.vector(p + "post_norm", norm, [x], (1, t, s.hidden), s.hidden)
        up = b.linear(p + "up_proj", h, t, s.ffn, s.hidden)
        if s.ffn_kind == "gelu":
            act = b.vector(p + "gelu", "gelu", [up], (1, t, s.ffn))
        else:
            gate = b.linear(p + "gate_proj", h, t, s.ffn, s.hidden)
            act = b.vector(
                p + "gated", "silu_mul" if s.ffn_kind == "swiglu" else "gelu_mul", [gate, up], (1, t, s.ffn)
            )
        down = b.linear(p + "down_proj", act, t, s.hidden, s.ffn)
        x = b.vector(p + "residual_ffn", "add", [x, down], (1, t, s.hidden))
    if t > 1:
        x = b.vector("last_token", "slice", [x], (1, 1, s.hidden))
    h = b.vector("final_norm", norm, [x], (1, 1, s.hidden), s.hidden)
    logits = b.linear("lm_head", h, 1, s.vocab, s.hidden)
    b.graph.outputs.append(logits)
    b.graph.check()
    return b.graph


def prefill_graph(spec: LMSpec, tokens: int, prec: Precision = Precision()) -> Graph:
    """The prompt of ``tokens`` tokens through every layer, its K/V written to the cache, the last logits."""
    return _build(spec, prec, tokens, None, f"{spec.name} prefill {tokens}")


def decode_graph(spec: LMSpec, kv_len: int, prec: Precision = Precision()) -> Graph:
    """One new token through every layer, attending to ``kv_len`` cached positions; its K/V written back."""
    return _build(spec, prec, 1, kv_len, f"{spec.name} decode at {kv_len}")
