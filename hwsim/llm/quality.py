"""A quantized language model's quality against its float self: perplexity and next-token agreement.

The held-out text of a runnable :class:`~hwsim.llm.config.LMSpec` (``eval_text``) is split into a
calibration part (the first ``CALIBRATION_CHARS`` characters, GPTQ's data) and an evaluation part cut into
non-overlapping windows of ``context`` tokens. Each window runs as one prefill; with a quantized KV cache
every position attends to the stored (quantized) keys and values of all positions up to itself, which is
exactly what token-by-token decoding against that cache computes (the scales are per token, so storing a
window at once or a token at a time gives the same codes; a test checks it).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np

from hwsim.errors import ConfigError
from hwsim.llm.config import LMSpec
from hwsim.llm.model import FloatBackend, encode, forward, load_weights
from hwsim.llm.quantize import QuantBackend, quantize_lm, smooth
from hwsim.numerics.threads import single_threaded_blas
from hwsim.quant.recipe import QuantRecipe

CALIBRATION_CHARS = 8192


@dataclass(frozen=True)
class LMQuality:
    """Perplexity of the float model and of the quantized one on the same tokens, and how often the
    quantized model's most likely next token is the float model's."""

    recipe: str
    path: str
    tokens: int
    float_perplexity: float
    perplexity: float
    agreement: float

    def as_row(self) -> dict:
        """The result as a flat dict."""
        return asdict(self)


def texts(spec: LMSpec) -> tuple[np.ndarray, np.ndarray]:
    """(calibration, evaluation) token ids of the model's held-out text."""
    if spec.eval_text is None:
        raise ConfigError(f"{spec.source or spec.name}: eval_text: a shape only has no held-out text")
    path = spec.base_dir() / spec.eval_text
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{spec.source}: eval_text: cannot read {path} ({exc.strerror})") from None
    return encode(text[:CALIBRATION_CHARS]), encode(text[CALIBRATION_CHARS:])


def windows(spec: LMSpec, ids: np.ndarray, count: int) -> np.ndarray:
    """The first ``count`` non-overlapping windows of ``context`` tokens, [count, context]."""
    n = min(count, len(ids) // spec.context)
    if n < 1:
        raise ConfigError(f"{spec.source}: eval_text: fewer than {spec.context} tokens to evaluate on")
    return ids[: n * spec.context].reshape(n, spec.context)


def _nll(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    return -logp[np.arange(len(targets)), targets]


@lru_cache(maxsize=4)
def _float_logits(spec: LMSpec, count: int) -> tuple[np.ndarray, np.ndarray]:
    w = load_weights(spec)
    win = windows(spec, texts(spec)[1], count)
    return win, np.stack([forward(spec, w, x, FloatBackend(spec, w)) for x in win])


def evaluate_lm(
    spec: LMSpec, recipe: QuantRecipe, *, windows_count: int = 8, integer: bool = True
) -> LMQuality:
    """Perplexity and agreement of ``spec`` quantized by ``recipe`` (integer codes, or fake-quant).

    BLAS runs on one thread: the matrices are small, and a thread pool per product only contends."""
    with single_threaded_blas():
        return _evaluate(spec, recipe, windows_count, integer)


def _evaluate(spec: LMSpec, recipe: QuantRecipe, windows_count: int, integer: bool) -> LMQuality:
    w = load_weights(spec)
    calibration, _ = texts(spec)
    win, float_logits = _float_logits(spec, windows_count)
    w = smooth(spec, w, recipe, calibration)
    backend = QuantBackend(spec, w, quantize_lm(spec, w, recipe, calibration), recipe, integer=integer)
    q_logits = np.stack([forward(spec, w, x, backend) for x in win])
    targets = win[:, 1:].reshape(-1)
    f = float_logits[:, :-1].reshape(-1, spec.vocab)
    q = q_logits[:, :-1].reshape(-1, spec.vocab)
    return LMQuality(
        recipe.name,
        "integer" if integer else "fake-quant",
        len(targets),
        float(np.exp(_nll(f, targets).mean())),
        float(np.exp(_nll(q, targets).mean())),
        float((f.argmax(-1) == q.argmax(-1)).mean()),
    )
