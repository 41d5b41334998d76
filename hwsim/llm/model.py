"""A decoder-only LM's forward pass in NumPy, with the linear layers and the KV cache behind a backend.

One function serves prefill and decode: :func:`forward` takes the new tokens and the cache of earlier
positions, appends their keys and values, and attends causally. Runnable models are Llama-style (SwiGLU,
RMSNorm, no attention bias; :class:`~hwsim.llm.config.LMSpec` checks it); other families are shapes for
cost studies. A backend decides how a linear layer multiplies (float, fake-quant, or integer codes through
:mod:`hwsim.numerics`) and how the cache stores and reads keys and values (float, or quantized per head
and token). Norms, RoPE, softmax and the FFN
nonlinearity stay in float, as the phone runtimes (ExecuTorch, QNN, llama.cpp) run them on the vector unit.

Weight names follow Hugging Face's Llama layout (``model.layers.0.self_attn.q_proj.weight``, [out, in]).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from hwsim.errors import ConfigError
from hwsim.llm.config import LMSpec

PRINTABLE = "\n" + "".join(chr(c) for c in range(32, 127))  # tokenizer printable_ascii: ids 0..95
LINEARS = (
    "self_attn.q_proj",
    "self_attn.k_proj",
    "self_attn.v_proj",
    "self_attn.o_proj",
    "mlp.gate_proj",
    "mlp.up_proj",
    "mlp.down_proj",
)


def encode(text: str) -> np.ndarray:
    """Token ids of ``text`` (tabs become spaces, other characters outside the vocabulary become '?')."""
    index = {c: i for i, c in enumerate(PRINTABLE)}
    text = text.replace("\t", " ")
    return np.array([index.get(c, index["?"]) for c in text], np.int64)


def linear_names(spec: LMSpec) -> list[str]:
    """Every linear layer's weight name, in execution order (the LM head last)."""
    names = [f"model.layers.{i}.{n}.weight" for i in range(spec.layers) for n in LINEARS]
    return names + ["lm_head.weight"]


def load_weights(spec: LMSpec) -> dict[str, np.ndarray]:
    """The model's float tensors (float64, to compare backends exactly), checked against ``spec``."""
    if spec.weights is None:
        raise ConfigError(f"{spec.source or spec.name}: weights: this model is a shape only (no weights)")
    path = spec.base_dir() / spec.weights
    try:
        with np.load(path) as npz:
            tensors = {k: npz[k].astype(np.float64) for k in npz.files}
    except OSError as exc:
        raise ConfigError(f"{spec.source}: weights: cannot read {path} ({exc})") from None
    if spec.tie_embeddings:
        tensors["lm_head.weight"] = tensors["model.embed_tokens.weight"]
    want = {"model.embed_tokens.weight": (spec.vocab, spec.hidden), "model.norm.weight": (spec.hidden,)}
    for name in linear_names(spec):
        want[name] = _linear_shape(spec, name)
    for name, shape in want.items():
        if name not in tensors or tensors[name].shape != shape:
            got = tensors[name].shape if name in tensors else "missing"
            raise ConfigError(f"{path}: {name}: expected shape {shape} (got {got})")
    return tensors


def _linear_shape(spec: LMSpec, name: str) -> tuple[int, int]:
    d, q, kv = spec.hidden, spec.heads * spec.dim, spec.kv_heads * spec.dim
    shapes = {
        "q_proj": (q, d),
        "k_proj": (kv, d),
        "v_proj": (kv, d),
        "o_proj": (d, q),
        "gate_proj": (spec.ffn, d),
        "up_proj": (spec.ffn, d),
        "down_proj": (d, spec.ffn),
        "lm_head": (spec.vocab, d),
    }
    return shapes[name.split(".")[-2]]


class Backend(Protocol):
    """How linear layers multiply and how the KV cache stores and attends."""

    def linear(self, name: str, x: np.ndarray) -> np.ndarray:
        """x [rows, in] times the weight called ``name`` transposed: [rows, out]."""

    def store(self, kv: np.ndarray) -> object:
        """Keys or values [kv_heads, positions, dim] as the cache keeps them."""

    def concat(self, a: object, b: object) -> object:
        """Two stored blocks, ``b``'s positions after ``a``'s."""

    def attend(self, q: np.ndarray, k: object, v: object, offset: int) -> np.ndarray:
        """Causal attention of q [heads, T, dim] (positions offset..offset+T-1) over the stored k, v."""


@dataclass
class KVCache:
    """Per layer, the stored keys and values of every position so far."""

    keys: list = field(default_factory=list)
    values: list = field(default_factory=list)
    length: int = 0


def rms_norm(spec: LMSpec, x: np.ndarray, gain: np.ndarray) -> np.ndarray:
    """RMSNorm: x / rms(x) * g, with the spec's epsilon."""
    return x / np.sqrt((x * x).mean(axis=-1, keepdims=True) + spec.norm_eps) * gain


def rope(x: np.ndarray, positions: np.ndarray, theta: float) -> np.ndarray:
    """Rotary embedding of x [heads, T, dim] in Hugging Face's rotate-half convention."""
    dim = x.shape[-1]
    inv = 1.0 / theta ** (np.arange(0, dim, 2, dtype=np.float64) / dim)
    angles = np.concatenate([np.outer(positions, inv)] * 2, axis=-1)
    half = dim // 2
    rotated = np.concatenate([-x[..., half:], x[..., :half]], axis=-1)
    return x * np.cos(angles) + rotated * np.sin(angles)


def _heads(x: np.ndarray, heads: int) -> np.ndarray:
    """[T, heads * dim] -> [heads, T, dim]."""
    return x.reshape(x.shape[0], heads, -1).transpose(1, 0, 2)


def forward(
    spec: LMSpec, w: dict[str, np.ndarray], tokens: np.ndarray, backend: Backend, cache: KVCache | None = None
) -> np.ndarray:
    """Logits [T, vocab] of ``tokens`` (1-D), after the positions already in ``cache`` (appended to it)."""
    cache = cache if cache is not None else KVCache()
    offset, t = cache.length, len(tokens)
    positions = np.arange(offset, offset + t)
    x = w["model.embed_tokens.weight"][tokens]
    for i in range(spec.layers):
        p = f"model.layers.{i}."
        h = rms_norm(spec, x, w[p + "input_layernorm.weight"])
        q = _heads(backend.linear(p + "self_attn.q_proj.weight", h), spec.heads)
        k = _heads(backend.linear(p + "self_attn.k_proj.weight", h), spec.kv_heads)
        v = _heads(backend.linear(p + "self_attn.v_proj.weight", h), spec.kv_heads)
        q, k = rope(q, positions, spec.rope_theta), rope(k, positions, spec.rope_theta)
        ks, vs = backend.store(k), backend.store(v)
        if len(cache.keys) > i:
            ks, vs = backend.concat(cache.keys[i], ks), backend.concat(cache.values[i], vs)
            cache.keys[i], cache.values[i] = ks, vs
        else:
            cache.keys.append(ks)
            cache.values.append(vs)
        ctx = backend.attend(q, ks, vs, offset).transpose(1, 0, 2).reshape(t, spec.heads * spec.dim)
        x = x + backend.linear(p + "self_attn.o_proj.weight", ctx)
        h = rms_norm(spec, x, w[p + "post_attention_layernorm.weight"])
        gate = backend.linear(p + "mlp.gate_proj.weight", h)
        act = gate / (1.0 + np.exp(-gate)) * backend.linear(p + "mlp.up_proj.weight", h)  # SwiGLU
        x = x + backend.linear(p + "mlp.down_proj.weight", act)
    cache.length += t
    return backend.linear("lm_head.weight", rms_norm(spec, x, w["model.norm.weight"]))


def causal_softmax(scores: np.ndarray, offset: int) -> np.ndarray:
    """Softmax over the last axis of scores [heads, T, L], query t seeing keys 0..offset+t."""
    t, length = scores.shape[-2:]
    mask = np.arange(length)[None, :] > (offset + np.arange(t))[:, None]
    scores = np.where(mask, -np.inf, scores)
    scores = scores - scores.max(axis=-1, keepdims=True)
    e = np.exp(scores)
    return e / e.sum(axis=-1, keepdims=True)


class FloatBackend:
    """The float reference: x @ W.T and a float cache."""

    def __init__(self, spec: LMSpec, weights: dict[str, np.ndarray]):
        self.spec, self.weights = spec, weights

    def linear(self, name: str, x: np.ndarray) -> np.ndarray:
        """Float matmul."""
        return x @ self.weights[name].T

    def store(self, kv: np.ndarray) -> np.ndarray:
        """Kept as is."""
        return kv

    def concat(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Along positions."""
        return np.concatenate([a, b], axis=1)

    def attend(self, q: np.ndarray, k: np.ndarray, v: np.ndarray, offset: int) -> np.ndarray:
        """Scaled dot-product attention, each KV head serving ``group`` query heads."""
        g = self.spec.group
        k, v = np.repeat(k, g, axis=0), np.repeat(v, g, axis=0)
        p = causal_softmax(q @ k.transpose(0, 2, 1) / np.sqrt(q.shape[-1]), offset)
        return p @ v
