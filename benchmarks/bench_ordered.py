"""Ordered (narrow-register) accumulation: outputs as vector lanes against the per-output loop it replaced,
and both against the exact path, side by side in one run.

Run from the repository root with hwsim's venv::

    python benchmarks/bench_ordered.py [--repeats 9]

Three ways to the same shape, timed in turn (A B C A B C ...) so that a shared, loaded machine slows them
alike, and the ratios that matter: lanes / per-output loop (the speed-up) and lanes / exact (what a narrow
register still costs), from the best run of each (the least disturbed by other processes) and from medians.
The per-output loop is main's kernel before issue 17, kept here verbatim as the baseline
(``_per_output_gemm``, ``_per_output_depthwise``); the lanes path is what ``hwsim.numerics.ops`` now runs.
Results are checked equal before anything is timed. Nothing here runs in the test suite.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numba
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hwsim.numerics import kernels, ops  # noqa: E402
from hwsim.numerics.cpu import cpu_name  # noqa: E402
from hwsim.numerics.formats import IntFormat  # noqa: E402
from hwsim.numerics.kernels import fit  # noqa: E402
from hwsim.numerics.ops import Accumulator  # noqa: E402

SATURATE16 = Accumulator(IntFormat(16), "saturate")
COUNTED20 = Accumulator(IntFormat(20), "exact")


@numba.njit(cache=True, nogil=True, parallel=True)
def _per_output_gemm(x, w, x_zp, w_zp, bias, acc_min, acc_max, overflow, k_order, bias_last):
    """Ordered accumulation into a register of range [acc_min, acc_max]; see ``reference.matmul_acc``.

    Rows run in parallel; each dot product is accumulated sequentially in ``k_order``, so the result does
    not depend on the thread count (the per-row overflow counts are integers, summed exactly).
    """
    rows, depth = x.shape
    cols = w.shape[1]
    out = np.empty((rows, cols), np.int64)
    counts = np.zeros(rows, np.int64)
    wt = np.empty((cols, depth), np.int64)  # (w - zw) in the accumulation order, one row per output
    for n in range(cols):
        for kk in range(depth):
            wt[n, kk] = np.int64(w[k_order[kk], n]) - np.int64(w_zp[n])
    for m in numba.prange(rows):
        xs = np.empty(depth, np.int64)
        for kk in range(depth):
            xs[kk] = np.int64(x[m, k_order[kk]]) - x_zp
        count = 0
        for n in range(cols):
            acc = np.int64(0)
            if not bias_last:
                acc = np.int64(bias[n])
                if acc < acc_min or acc > acc_max:
                    count += 1
                    acc = fit(acc, acc_min, acc_max, overflow)
            for kk in range(depth):
                acc += xs[kk] * wt[n, kk]
                if acc < acc_min or acc > acc_max:
                    count += 1
                    acc = fit(acc, acc_min, acc_max, overflow)
            if bias_last:
                acc += np.int64(bias[n])
                if acc < acc_min or acc > acc_max:
                    count += 1
                    acc = fit(acc, acc_min, acc_max, overflow)
            out[m, n] = acc
        counts[m] = count
    return out, counts.sum()


@numba.njit(cache=True, nogil=True)
def _per_output_depthwise(
    x,
    w,
    x_zp,
    w_zp,
    bias,
    stride_h,
    stride_w,
    dil_h,
    dil_w,
    pad_top,
    pad_left,
    out_h,
    out_w,
    multiplier,
    acc_min,
    acc_max,
    overflow,
):
    """Depthwise accumulators with ordered, fitted accumulation; see ``reference.depthwise_acc``."""
    batch, height, width, _ = x.shape
    kernel_h, kernel_w, out_c = w.shape
    out = np.empty((batch, out_h, out_w, out_c), np.int64)
    count = 0
    for b in range(batch):
        for oy in range(out_h):
            for ox in range(out_w):
                for o in range(out_c):
                    c = o // multiplier
                    zw = np.int64(w_zp[o])
                    acc = np.int64(bias[o])
                    if acc < acc_min or acc > acc_max:
                        count += 1
                        acc = fit(acc, acc_min, acc_max, overflow)
                    for ky in range(kernel_h):
                        iy = oy * stride_h - pad_top + ky * dil_h
                        if iy < 0 or iy >= height:
                            continue
                        for kx in range(kernel_w):
                            ix = ox * stride_w - pad_left + kx * dil_w
                            if ix < 0 or ix >= width:
                                continue
                            acc += (np.int64(x[b, iy, ix, c]) - x_zp) * (np.int64(w[ky, kx, o]) - zw)
                            if acc < acc_min or acc > acc_max:
                                count += 1
                                acc = fit(acc, acc_min, acc_max, overflow)
                    out[b, oy, ox, o] = acc
    return out, count


def _interleaved(fns: list, repeats: int) -> list[tuple[float, float]]:
    """(Best, median) seconds of each function, run in turn after one warm-up call each."""
    for fn in fns:
        fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, ts in zip(fns, times):
            start = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - start)
    return [(min(ts), float(np.median(ts))) for ts in times]


def _gemm_case(rng, acc: Accumulator, shape=(64, 512, 256)):
    m, k, n = shape
    x = rng.integers(-128, 128, (m, k)).astype(np.int8)
    w = rng.integers(-128, 128, (k, n)).astype(np.int8)
    packed, zeros, order = ops.prepack(w), np.zeros(n, np.int64), np.arange(k)
    fmt = acc.fmt

    def per_output():
        return _per_output_gemm(x, w, 0, zeros, zeros, fmt.min, fmt.max, int(acc.overflow), order, False)

    return (
        m * k * n,
        lambda: ops.matmul(x, packed, accumulator=acc),
        per_output,
        lambda: ops.matmul(x, packed),
    )


def _conv_case(rng, acc: Accumulator, size=28, channels=32):
    x = rng.integers(-128, 128, (1, size, size, channels)).astype(np.int8)
    w = rng.integers(-128, 128, (channels, 3, 3, channels)).astype(np.int8)
    zeros, order = np.zeros(channels, np.int64), np.arange(9 * channels)
    fmt = acc.fmt
    w_kn = np.ascontiguousarray(w.reshape(channels, -1).T)

    def per_output():
        cols = kernels.im2col(x, 3, 3, 1, 1, 1, 1, 1, 1, size, size, 0)
        acc_, count = _per_output_gemm(
            cols, w_kn, 0, zeros, zeros, fmt.min, fmt.max, int(acc.overflow), order, False
        )
        return acc_.reshape(1, size, size, channels), count

    return (
        size * size * 9 * channels**2,
        lambda: ops.conv2d(x, w, padding="same", accumulator=acc),
        per_output,
        lambda: ops.conv2d(x, w, padding="same"),
    )


def _depthwise_case(rng, acc: Accumulator, size=56, channels=64):
    x = rng.integers(-128, 128, (1, size, size, channels)).astype(np.int8)
    w = rng.integers(-128, 128, (3, 3, channels)).astype(np.int8)
    zeros = np.zeros(channels, np.int64)
    fmt = acc.fmt

    def per_output():
        return _per_output_depthwise(
            x, w, 0, zeros, zeros, 1, 1, 1, 1, 1, 1, size, size, 1, fmt.min, fmt.max, int(acc.overflow)
        )

    return (
        size * size * 9 * channels,
        lambda: ops.depthwise_conv2d(x, w, padding="same", accumulator=acc),
        per_output,
        lambda: ops.depthwise_conv2d(x, w, padding="same"),
    )


def _groups_case(rng, acc: Accumulator, shape=(64, 512, 256), group=32):
    m, k, n = shape
    x = rng.integers(-128, 128, (m, k)).astype(np.int8)
    w = rng.integers(-128, 128, (k, n)).astype(np.int8)
    zeros, fmt = np.zeros(n, np.int64), acc.fmt
    slices = [
        (np.ascontiguousarray(x[:, g : g + group]), np.ascontiguousarray(w[g : g + group]))
        for g in range(0, k, group)
    ]

    def per_output():
        parts = [
            _per_output_gemm(
                xg, wg, 0, zeros, zeros, fmt.min, fmt.max, int(acc.overflow), np.arange(group), False
            )
            for xg, wg in slices
        ]
        return np.stack([p[0] for p in parts]), sum(p[1] for p in parts)

    return (
        m * k * n,
        lambda: ops.matmul_groups(x, w, group_size=group, accumulator=acc),
        per_output,
        lambda: ops.matmul_groups(x, w, group_size=group),
    )


CASES = {
    "GEMM 64x512x256, int16 saturating": (_gemm_case, SATURATE16),
    "GEMM 64x512x256, 20-bit counted (EXACT)": (_gemm_case, COUNTED20),
    "conv2d 1x28x28x32 -> 32, 3x3 SAME, int16 saturating": (_conv_case, SATURATE16),
    "depthwise 1x56x56x64 3x3 SAME, int16 saturating": (_depthwise_case, SATURATE16),
    "per-group sums (group 32) 64x512x256, int16 saturating": (_groups_case, SATURATE16),
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    print(
        f"CPU: {cpu_name()}, {os.cpu_count()} cores, {numba.get_num_threads()} numba threads; best and "
        f"median of {args.repeats} interleaved runs\n"
    )
    print(
        "| case | lanes GMAC/s | per-output loop GMAC/s | exact GMAC/s | lanes / per-output loop "
        "(best; median) | lanes / exact (best; median) |\n|---|---:|---:|---:|---:|---:|"
    )
    for name, (build, acc) in CASES.items():
        macs, lanes, per_output, exact = build(rng, acc)
        got, want = lanes(), per_output()
        if not (np.array_equal(got.acc, want[0]) and got.overflows == want[1] > 0):
            raise AssertionError(f"{name}: the lanes and the per-output kernels disagree; nothing was timed")
        t_lanes, t_loop, t_exact = _interleaved([lanes, per_output, exact], args.repeats)
        gmacs = " | ".join(f"{macs / t[0] / 1e9:.2f}" for t in (t_lanes, t_loop, t_exact))
        speedup = f"{t_loop[0] / t_lanes[0]:.1f}x; {t_loop[1] / t_lanes[1]:.1f}x"
        cost = f"{t_exact[0] / t_lanes[0]:.2f}x; {t_exact[1] / t_lanes[1]:.2f}x"
        print(f"| {name} | {gmacs} | {speedup} | {cost} |", flush=True)


if __name__ == "__main__":
    main()
