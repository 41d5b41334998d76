"""TEMPORARY size model of Vela's encoded weights, until the exact encoder lands (dev only)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class EncodingParams:
    family: str
    cores: int
    ofm_block_depth: int
    traversal: str
    ifm_bits: int
    dilation: tuple[int, int]
    weight_format: str = "default"


@dataclass(frozen=True)
class EncodedWeights:
    total_weight_bytes: int
    total_source_bytes: int
    allocation_bytes: int
    range_sizes: tuple[int, ...]
    max_range_bytes: int
    double_buffer_sizes: tuple[int, int]
    sub_streams: int
    distinct_weights: int
    zero_count: int


def _r16(n):
    return -(-n // 16) * 16


def _build(per_slice_weights, per_slice_scales):
    ranges, total_w = [], 0
    for w, s in zip(per_slice_weights, per_slice_scales):
        ranges.append(_r16(s) + _r16(w))
        total_w += _r16(w)
    mx = [0, 0]
    for i, r in enumerate(ranges):
        mx[i % 2] = max(mx[i % 2], r)
    return EncodedWeights(total_w, total_w, sum(ranges), tuple(ranges), max(mx), (mx[0], mx[1]), 1, 256, 0)


def encode_weights(op_type, weights, zero_points, params, slices):
    w = np.asarray(weights)
    if op_type == "DepthwiseConv2D":
        per_ch = w.shape[1] * w.shape[2]
        per_ch = -(-per_ch // 4) * 4
    else:
        if w.ndim == 2:
            w = w.reshape(w.shape[0], 1, 1, w.shape[1])
        depth = -(-w.shape[3] // 8) * 8
        per_ch = w.shape[1] * w.shape[2] * depth
    ws = [int((slices[i + 1] - slices[i]) * per_ch * 1.02) + 8 for i in range(len(slices) - 1)]
    ss = [10 * (slices[i + 1] - slices[i]) for i in range(len(slices) - 1)]
    return _build(ws, ss)


def encode_scales(channels, params, slices):
    return _build([0] * (len(slices) - 1), [10 * (slices[i + 1] - slices[i]) for i in range(len(slices) - 1)])
