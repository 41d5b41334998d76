"""A language model quantized by a :class:`~hwsim.quant.recipe.QuantRecipe`, on integer codes or fake-quant.

SmoothQuant (``recipe.smoothquant``, :func:`smooth`) first moves activation outliers into the weights.
Weights: symmetric ``weights.bits`` codes per output channel or per group of ``group_size`` input channels
(the layout phone runtimes ship: ExecuTorch's 8da4w, llama.cpp's Q4_0, QNN's W4A16), rounded to nearest or
by GPTQ (``recipe.gptq``). Activations: ``activations.bits`` codes with one symmetric scale per token, taken
at run time (``activations.dynamic`` must be set): 16 bits is the weight-only W4A16 / W8A16 of the phone
NPUs, 8 bits is W8A8 / W4A8. KV cache (``recipe.kv_cache``): ``bits`` codes with a scale per (KV head,
token); attention then multiplies integer query codes by key codes and probability codes (each scaled by
its value's token scale) by value codes.

:class:`QuantBackend` with ``integer=True`` computes every product on codes through
:func:`hwsim.numerics.ops.matmul` / ``matmul_groups`` (exact integer accumulators in the recipe's
register, one per group) and scales the sums afterwards; with ``integer=False`` it multiplies the
dequantized values in float64 (fake-quant). The two differ only by float64 rounding of the scaling, which
is the arithmetic's promise that the integer datapath computes the fake-quant model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwsim.errors import ConfigError
from hwsim.llm.config import LMSpec
from hwsim.llm.model import FloatBackend, causal_softmax, forward, linear_names
from hwsim.numerics import ops
from hwsim.numerics.formats import IntFormat
from hwsim.quant.recipe import QuantRecipe, WeightSpec


@dataclass(frozen=True)
class QuantLinear:
    """One linear layer's weight codes [out, in] (int8 storage), scales [out, groups] and group size."""

    codes: np.ndarray
    scales: np.ndarray
    group_size: int
    bits: int

    def dequantized(self) -> np.ndarray:
        """codes x scales, float64 [out, in]."""
        return self.codes * np.repeat(self.scales, self.group_size, axis=1)[:, : self.codes.shape[1]]


def check_lm_recipe(recipe: QuantRecipe) -> None:
    """Raise unless ``recipe`` is one the LM path implements (named fields, one line each)."""
    w, a = recipe.weights, recipe.activations
    problems = [
        (w.scheme != "uniform", "weights.scheme", "LM weights use the uniform scheme", w.scheme),
        (not w.symmetric, "weights.symmetric", "LM weights are symmetric, as phones run them", False),
        (w.range != "minmax", "weights.range", "LM weights use minmax ranges (GPTQ is recipe.gptq)", w.range),
        (
            not a.dynamic,
            "activations.dynamic",
            "LM activations take a scale per token at run time: set true",
            False,
        ),
        (
            any(x is not None for x in (recipe.adaround, recipe.outliers, recipe.qat)) or recipe.equalize,
            "recipe",
            "adaround, outliers, qat, equalize are CNN techniques; LMs take gptq and kv_cache",
            "set",
        ),
    ]
    for bad, field, message, got in problems:
        if bad:
            raise ConfigError(f"recipe {recipe.name!r}: {field}: {message} (got {got})")


def _group(spec: WeightSpec, depth: int) -> int:
    if spec.granularity == "per_group":
        if depth % spec.group_size:
            raise ConfigError(f"weights.group_size: {spec.group_size} does not divide a layer depth {depth}")
        return spec.group_size
    return depth


def _scales(w: np.ndarray, group: int, fmt: IntFormat, per_tensor: bool) -> np.ndarray:
    """Symmetric absmax scales [out, in / group]; an all-zero group gets scale 1."""
    out, depth = w.shape
    amax = np.abs(w).reshape(out, depth // group, group).max(axis=2)
    if per_tensor:
        amax = np.full_like(amax, np.abs(w).max())
    return np.where(amax > 0, amax / fmt.max, 1.0)


def quantize_rtn(w: np.ndarray, spec: WeightSpec) -> QuantLinear:
    """Round-to-nearest (half-even) codes of w [out, in] under ``spec``."""
    group = _group(spec, w.shape[1])
    scales = _scales(w, group, spec.fmt, spec.granularity == "per_tensor")
    codes = ops.quantize(w, scales, 0, spec.fmt, axis=0, group_size=group, group_axis=1)
    return QuantLinear(codes.astype(np.int8), scales, group, spec.bits)


def quantize_gptq(w: np.ndarray, x: np.ndarray, spec: WeightSpec, damp: float) -> QuantLinear:
    """GPTQ codes of w [out, in] for inputs x [rows, in]; a group's scales are taken from its (updated)
    weights when the sweep reaches it, as GPTQ does without static groups."""
    out, depth = w.shape
    group = _group(spec, depth)
    w = w.astype(np.float64).copy()
    h = 2.0 * x.T @ x / len(x)
    dead = np.diag(h) == 0
    h[dead, dead] = 1.0
    w[:, dead] = 0.0
    h += damp * np.mean(np.diag(h)) * np.eye(depth)
    hinv = np.linalg.cholesky(np.linalg.inv(h)).T  # upper Cholesky factor of H^-1
    codes = np.zeros((out, depth), np.int8)
    scales = np.zeros((out, depth // group))
    per_tensor_scale = _scales(w, depth, spec.fmt, True)[:, :1] if spec.granularity == "per_tensor" else None
    for i in range(depth):
        if i % group == 0:
            block = _scales(w[:, i : i + group], group, spec.fmt, False)
            scales[:, i // group] = (per_tensor_scale if per_tensor_scale is not None else block)[:, 0]
        s = scales[:, i // group]
        q = ops.quantize(w[:, i], s, 0, spec.fmt, axis=0)
        codes[:, i] = q
        err = (w[:, i] - q * s) / hinv[i, i]
        w[:, i + 1 :] -= np.outer(err, hinv[i, i + 1 :])
    return QuantLinear(codes, scales, group, spec.bits)


class _Recorder(FloatBackend):
    """The float model, keeping every linear layer's inputs (GPTQ's calibration data)."""

    def __init__(self, spec: LMSpec, weights: dict[str, np.ndarray]):
        super().__init__(spec, weights)
        self.inputs: dict[str, list[np.ndarray]] = {}

    def linear(self, name: str, x: np.ndarray) -> np.ndarray:
        self.inputs.setdefault(name, []).append(x)
        return super().linear(name, x)


def _record(spec: LMSpec, weights: dict[str, np.ndarray], tokens: np.ndarray) -> dict[str, np.ndarray]:
    rec = _Recorder(spec, weights)
    for start in range(0, len(tokens), spec.context):
        forward(spec, weights, tokens[start : start + spec.context], rec)
    return {k: np.concatenate(v) for k, v in rec.inputs.items()}


def smooth(
    spec: LMSpec, weights: dict[str, np.ndarray], recipe: QuantRecipe, calibration: np.ndarray | None
) -> dict[str, np.ndarray]:
    """The weights after SmoothQuant's migration (``recipe.smoothquant``; unchanged without it): per input
    channel j of the projections after each norm, W[:, j] *= s_j and the norm's gain g_j /= s_j, so the float
    model is the same function and its activations have smaller outliers."""
    if recipe.smoothquant is None:
        return weights
    if calibration is None:
        raise ConfigError(f"recipe {recipe.name!r}: smoothquant needs calibration text")
    sq = recipe.smoothquant
    inputs = _record(spec, weights, calibration[: sq.calibration_tokens])
    out = dict(weights)
    after_norm = (
        ("input_layernorm", ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj")),
        ("post_attention_layernorm", ("mlp.gate_proj", "mlp.up_proj")),
    )
    for i in range(spec.layers):
        p = f"model.layers.{i}."
        for norm, projections in after_norm:
            names = [f"{p}{n}.weight" for n in projections]
            x_max = np.abs(inputs[names[0]]).max(axis=0)
            w_max = np.max([np.abs(weights[n]).max(axis=0) for n in names], axis=0)
            live = (x_max > 0) & (w_max > 0)
            s = np.where(live, x_max**sq.alpha / np.where(live, w_max, 1.0) ** (1 - sq.alpha), 1.0)
            out[f"{p}{norm}.weight"] = weights[f"{p}{norm}.weight"] / s
            for n in names:
                out[n] = weights[n] * s[None, :]
    return out


def quantize_lm(
    spec: LMSpec, weights: dict[str, np.ndarray], recipe: QuantRecipe, calibration: np.ndarray | None = None
) -> dict[str, QuantLinear]:
    """Every linear layer's codes under ``recipe`` (``calibration`` token ids feed GPTQ); ``weights`` are
    the float weights to quantize (after :func:`smooth` when the recipe migrates)."""
    check_lm_recipe(recipe)
    inputs: dict[str, np.ndarray] = {}
    if recipe.gptq is not None:
        if calibration is None:
            raise ConfigError(f"recipe {recipe.name!r}: gptq needs calibration text")
        inputs = _record(spec, weights, calibration[: recipe.gptq.calibration_tokens])
    out = {}
    for name in linear_names(spec):
        wspec, _, _ = recipe.layer_specs(name)
        if recipe.gptq is not None:
            out[name] = quantize_gptq(weights[name], inputs[name], wspec, recipe.gptq.damp)
        else:
            out[name] = quantize_rtn(weights[name], wspec)
    return out


def _row_scales(x: np.ndarray, fmt: IntFormat) -> np.ndarray:
    amax = np.abs(x).max(axis=-1)
    return np.where(amax > 0, amax / fmt.max, 1.0)


def quantize_rows(x: np.ndarray, fmt: IntFormat) -> tuple[np.ndarray, np.ndarray]:
    """Codes and scales of x [rows, n] with one symmetric scale per row (a token, a head's query)."""
    s = _row_scales(x, fmt)
    return ops.quantize(x, s, 0, fmt, axis=0), s


class QuantBackend:
    """Linear layers and the KV cache of a quantized LM, on integer codes or as fake-quant (module doc)."""

    def __init__(
        self,
        spec: LMSpec,
        weights: dict[str, np.ndarray],
        linears: dict[str, QuantLinear],
        recipe: QuantRecipe,
        *,
        integer: bool,
    ):
        self.spec, self.linears, self.recipe, self.integer = spec, linears, recipe, integer
        self.kv_fmt = IntFormat(recipe.kv_cache.bits, True) if recipe.kv_cache else None
        self.a_fmt = recipe.activations.fmt
        self._float = FloatBackend(spec, weights)
        self._dequantized = {n: q.dequantized() for n, q in linears.items()} if not integer else {}

    def linear(self, name: str, x: np.ndarray) -> np.ndarray:
        """Dynamic per-token activation codes times the layer's weight codes."""
        _, aspec, accspec = self.recipe.layer_specs(name)
        xq, sx = quantize_rows(x, aspec.fmt)
        ql = self.linears[name]
        if not self.integer:
            return (xq * sx[:, None]) @ self._dequantized[name].T
        acc = ops.matmul_groups(
            xq,
            np.ascontiguousarray(ql.codes.T),
            group_size=ql.group_size,
            accumulator=ops.Accumulator(IntFormat(accspec.bits), accspec.overflow),
        ).acc
        return np.einsum("gto,og->to", acc.astype(np.float64), ql.scales) * sx[:, None]

    def store(self, kv: np.ndarray):
        """Float when the recipe has no kv_cache, else (codes [heads, T, dim], scales [heads, T])."""
        if self.kv_fmt is None:
            return kv
        heads, t, dim = kv.shape
        codes, scales = quantize_rows(kv.reshape(heads * t, dim), self.kv_fmt)
        return codes.reshape(heads, t, dim), scales.reshape(heads, t)

    def concat(self, a, b):
        """Along positions."""
        if self.kv_fmt is None:
            return np.concatenate([a, b], axis=1)
        return np.concatenate([a[0], b[0]], axis=1), np.concatenate([a[1], b[1]], axis=1)

    def attend(self, q: np.ndarray, k, v, offset: int) -> np.ndarray:
        """Float attention over a float cache, else integer q.K and P.V products (module doc)."""
        if self.kv_fmt is None:
            return self._float.attend(q, k, v, offset)
        (kc, ks), (vc, vs) = k, v
        out = np.empty_like(q)
        for h in range(q.shape[0]):
            kv = h // self.spec.group
            qc, sq = quantize_rows(q[h], self.a_fmt)
            scores = self._product(qc, kc[kv].T) * sq[:, None] * ks[kv][None, :] / np.sqrt(q.shape[-1])
            p = causal_softmax(scores[None], offset)[0] * vs[kv][None, :]
            pc, sp = quantize_rows(p, self.a_fmt)
            out[h] = self._product(pc, vc[kv]) * sp[:, None]
        return out

    def _product(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        if self.integer:
            return ops.matmul(
                a, np.ascontiguousarray(b), accumulator=ops.Accumulator(IntFormat(64))
            ).acc.astype(np.float64)
        return a.astype(np.float64) @ b.astype(np.float64)
