"""AdaRound (Nagel et al., "Up or Down? Adaptive Rounding for Post-Training Quantization", ICML 2020).

Each weight w = s (floor(w / s) + h) picks h in {0, 1} (down or up) instead of rounding to nearest. The
choice is learned per layer on calibration inputs by minimising the layer's output reconstruction error

    || X_q W_soft^T - X_f W^T ||^2 / M + lambda sum(1 - |2 h(V) - 1|^beta)

with the rectified sigmoid h(V) = clip(sigmoid(V) (zeta - gamma) + gamma, 0, 1), zeta = 1.1, gamma = -0.1,
and beta annealed from ``beta_start`` to ``beta_end`` after a warm-up without the regulariser (paper eq. 21,
22, 23). X_q are the layer's inputs in the model whose earlier layers are already quantized, X_f the float
model's (the "asymmetric" reconstruction of the paper's table 4). The activation function is left out of
the loss (its pre-activation form), so the loss is quadratic in W_soft and only the K x K input moments
X_q^T X_q and X_q^T X_f are needed: each iteration costs O(C K^2), independent of the data size.
"""

from __future__ import annotations

import numpy as np

from hwsim.quant.calibrate import WeightQuant
from hwsim.quant.recipe import AdaRoundSpec

ZETA, GAMMA = 1.1, -0.1


def rectified_sigmoid(v: np.ndarray) -> np.ndarray:
    """h(V) = clip(sigmoid(V) (zeta - gamma) + gamma, 0, 1)."""
    return np.clip(1.0 / (1.0 + np.exp(-v)) * (ZETA - GAMMA) + GAMMA, 0.0, 1.0)


def reconstruction_loss(
    w_hat: np.ndarray, w: np.ndarray, gram_q: np.ndarray, cross: np.ndarray, gram_f: np.ndarray
) -> float:
    """|| X_q w_hat^T - X_f w^T ||^2 / M from the moments (batched over channels when they are 3-D)."""
    quad = np.einsum("ck,ckj,cj->", w_hat, _b(gram_q, w), w_hat)
    mixed = np.einsum("ck,ckj,cj->", w_hat, _b(cross, w), w)
    const = np.einsum("ck,ckj,cj->", w, _b(gram_f, w), w)
    return float(quad - 2 * mixed + const)


def _b(m: np.ndarray, w: np.ndarray) -> np.ndarray:
    return np.broadcast_to(m, (w.shape[0], *m.shape[-2:])) if m.ndim == 2 else m


def moments(x_q: np.ndarray, x_f: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """X_q^T X_q / M, X_q^T X_f / M and X_f^T X_f / M of [M, K] inputs (or [C, M, K], one per channel)."""
    m = x_q.shape[-2]

    def t(a):
        return a.swapaxes(-1, -2)

    x_q, x_f = x_q.astype(np.float64), x_f.astype(np.float64)
    return t(x_q) @ x_q / m, t(x_q) @ x_f / m, t(x_f) @ x_f / m


def adaround(
    w_rows: np.ndarray,
    wq: WeightQuant,
    x_q: np.ndarray,
    x_f: np.ndarray,
    spec: AdaRoundSpec,
    fmt_min: int,
    fmt_max: int,
) -> tuple[np.ndarray, dict]:
    """Learned integer values for weight rows [C, K] with the scales of ``wq``; returns them and a summary
    (reconstruction loss of nearest rounding and of AdaRound, share of weights rounded differently)."""
    w = w_rows.astype(np.float64)
    s = wq.per_element(wq.scale).astype(np.float64)
    z = wq.per_element(wq.zero).astype(np.float64)
    floor = np.floor(w / s)
    rest = w / s - floor
    v = -np.log((ZETA - GAMMA) / (np.clip(rest, 0.01, 0.99) - GAMMA) - 1.0)  # h(V) = rest at the start
    gram_q, cross, gram_f = moments(x_q, x_f)
    gq, cr = _b(gram_q, w), _b(cross, w)
    target = np.einsum("ckj,cj->ck", cr, w)  # (X_q^T X_f w)/M per channel
    m1, m2 = np.zeros_like(v), np.zeros_like(v)
    lr, b1, b2 = spec.learning_rate, 0.9, 0.999
    warm = int(spec.warmup * spec.iterations)
    for it in range(spec.iterations):
        h = rectified_sigmoid(v)
        codes = floor + h + z
        inside = (codes >= fmt_min) & (codes <= fmt_max)
        w_soft = s * (np.clip(codes, fmt_min, fmt_max) - z)
        grad_w = 2.0 * (np.einsum("ckj,cj->ck", gq, w_soft) - target)
        sig = 1.0 / (1.0 + np.exp(-v))
        dh = np.where((h > 0) & (h < 1), sig * (1 - sig) * (ZETA - GAMMA), 0.0)
        grad = grad_w * s * inside * dh
        if it >= warm:
            frac = (it - warm) / max(spec.iterations - warm, 1)
            beta = spec.beta_end + 0.5 * (spec.beta_start - spec.beta_end) * (1 + np.cos(np.pi * frac))
            u = 2 * h - 1
            grad += spec.reg_weight * (-beta * np.abs(u) ** (beta - 1) * np.sign(u) * 2) * dh
        m1 = b1 * m1 + (1 - b1) * grad
        m2 = b2 * m2 + (1 - b2) * grad * grad
        v -= lr * (m1 / (1 - b1 ** (it + 1))) / (np.sqrt(m2 / (1 - b2 ** (it + 1))) + 1e-8)
    up = (v >= 0).astype(np.float64)
    values = np.clip(floor + up + z, fmt_min, fmt_max) - z
    nearest = np.clip(np.rint(w / s) + z, fmt_min, fmt_max) - z
    summary = {
        "loss_nearest": reconstruction_loss(s * nearest, w, gram_q, cross, gram_f),
        "loss_adaround": reconstruction_loss(s * values, w, gram_q, cross, gram_f),
        "changed": float((values != nearest).mean()),
    }
    return (values + z).astype(np.int64), summary
