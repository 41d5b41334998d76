"""The weight streams of :mod:`hwsim.schedule.ethos_u.weight_encoding`, ordered and compressed with numpy.

Imported only when an encoding is not in the caches: a run that finds every op's encoding on disk needs
none of this, nor numpy.
"""

from __future__ import annotations

import math
from functools import lru_cache
from itertools import pairwise

import numpy as np

from hwsim.schedule.ethos_u import mlw_codec
from hwsim.schedule.ethos_u.weight_encoding import (
    ALIGN_BYTES,
    SCALE_BYTES_PER_CHANNEL,
    U85_INTERLEAVE_DEPTH,
    EncodedWeights,
    EncodingParams,
    WeightsNotSparse,
    _check_slices,
    _result,
    _round_up,
    _scale_count,
)


def encode(
    depthwise: bool,
    params: EncodingParams,
    slices: tuple[int, ...],
    weights: np.ndarray,
    zero_points: tuple[int, ...],
    period: int | None,
) -> EncodedWeights:
    """Encode ``weights`` (their zero points subtracted) into the depth slices' streams: Vela's sizes;
    ``period``: the output channels repeat with it (stand-ins), or None."""
    src = _as_ohwi(weights, depthwise)
    channels = src.shape[3] if depthwise else src.shape[0]
    _check_slices(slices, channels)
    zp = np.asarray(zero_points, dtype=np.int64)
    # U55/U65: one stream per core that has channels, each with its own scales; U85: one scale block
    streams = params.streams if params.is_u85 else min(channels, params.cores)
    scale_streams = 1 if params.is_u85 else streams
    ranges: list[int] = []
    total_weight = total_source = zeros = sub_streams = distinct = 0
    used = np.zeros(mlw_codec.SYMBOLS, dtype=bool)
    # Weights that repeat every `period` channels (a multiple of the cores) send the same stream for every
    # slice that starts at the same offset in the period: encode each once (zero points are indexed by
    # slice-local or IFM channel, the same for every such slice).
    period = period if period and period % params.cores == 0 else None
    streams_seen: dict[tuple[int, int, int], tuple[int, int, int, np.ndarray | None]] = {}
    for d0, d1 in pairwise(slices):
        size = 0
        for stream in range(streams):
            if stream < scale_streams:
                n_scales = _scale_count(params, d1 - d0, stream)
                if n_scales == 0:
                    continue  # a core with no channel in this slice gets no stream at all
                size += _round_up(n_scales * SCALE_BYTES_PER_CHANNEL, ALIGN_BYTES)
            key = (d0 % period if period else d0, d1 - d0, stream)
            if key not in streams_seen:
                streams_seen[key] = _encode_stream(src, zp, depthwise, params, d0, d1 - d0, stream, period)
            weight_bytes, n_values, n_zeros, stream_used = streams_seen[key]
            if stream_used is not None:
                zeros += n_zeros
                distinct = _distinct_count(used, stream_used)
            size += weight_bytes
            total_weight += weight_bytes
            total_source += n_values
            sub_streams = max(sub_streams, stream + 1)
        ranges.append(size)
    return _result(ranges, total_weight, total_source, sub_streams, distinct, zeros)


def _encode_stream(
    src: np.ndarray,
    zp: np.ndarray,
    depthwise: bool,
    params: EncodingParams,
    depth_offset: int,
    depth: int,
    stream: int,
    period: int | None,
) -> tuple[int, int, int, np.ndarray | None]:
    """One stream of one depth slice: its encoded bytes, values sent, zeros sent as runs and the values it
    used (None in the fast format, which counts neither).

    Weights whose channels repeat every ``period`` also repeat every multiple of it; a slice deeper than the
    least multiple that an even number of OFM blocks tiles (even, for U85's serpentine over IFM blocks)
    sends that multiple's stream over and over, then its remainder: only those two are ordered, and the
    codec sizes the repeats without building them.
    """
    span = math.lcm(period, 2 * params.ofm_block_depth * params.cores) if period else 0  # a period too
    repeats = depth // span if span and depth > span else 0
    if repeats:
        base = _stream_values(src, zp, depthwise, params, depth_offset, span, stream)
        rest = depth - repeats * span
        tail = (
            _stream_values(src, zp, depthwise, params, depth_offset + repeats * span, rest, stream)
            if rest
            else base[:0]
        )
    else:
        base = src[:0].astype(np.int16).ravel()
        tail = _stream_values(src, zp, depthwise, params, depth_offset, depth, stream)
    n_values = base.size * repeats + tail.size
    if params.fast:
        parts = np.concatenate([base, tail])
        return mlw_codec.encode_fast(parts, no_palette=params.sparse, size=n_values), n_values, 0, None
    res = mlw_codec.encode_repeating(base, repeats, tail)
    return res.size_bytes, n_values, res.zero_count, res.used


def _distinct_count(acc: np.ndarray, stream_used: np.ndarray) -> int:
    """Merge a stream's used values into ``acc`` and count them the way Vela's scheduler does.

    Vela keeps the values as eight 64-bit words and ORs and counts them word by word, stopping once the
    count passes 16 (it only needs to know whether a 4-bit palette could do): the words after that are
    neither merged nor counted, so a large count is a lower bound that depends on the value range.
    """
    count = 0
    for word in range(mlw_codec.SYMBOLS // 64):
        if count > 16:
            break
        part = slice(64 * word, 64 * (word + 1))
        acc[part] |= stream_used[part]
        count += int(np.count_nonzero(acc[part]))
    return count


def _as_ohwi(weights: np.ndarray, depthwise: bool) -> np.ndarray:
    """The weights as a 4-D array: OHWI, depthwise TFLite's ``[1, H, W, C]``, FC ``[O, I]`` with H = W = 1."""
    if weights.ndim == 2:
        return weights.reshape(weights.shape[0], 1, 1, weights.shape[1])
    if weights.ndim != 4:
        raise ValueError(f"weights must be 2-D (fully connected) or 4-D (got shape {weights.shape})")
    if depthwise and weights.shape[0] != 1:
        raise ValueError(f"depthwise weights must be [1, H, W, C] (got shape {weights.shape})")
    return weights


def _stream_values(
    src: np.ndarray,
    zp: np.ndarray,
    depthwise: bool,
    params: EncodingParams,
    depth_offset: int,
    depth: int,
    stream: int,
) -> np.ndarray:
    """The zero-point-corrected weights one stream sends for one depth slice, in hardware order (int16)."""
    if depthwise:  # as [C, H, W, 1]: the channel plays the OFM part
        local = src[0, :, :, depth_offset : depth_offset + depth].transpose(2, 0, 1)[..., None]
    else:
        local = src[depth_offset : depth_offset + depth]
    if not params.is_u85:
        local = local[stream :: params.cores]  # each U55 core takes every cores-th channel
    local = local.astype(np.int16)
    # Vela indexes the zero points by the slice-local (U55: core-local) OFM channel for depthwise, else
    # by the IFM channel; per-axis zero points are 0 in TFLite int8, so this only matters for uint8.
    if depthwise and zp.any():  # (all-zero points, the usual case, leave the values as they are)
        local = local - zp[np.arange(local.shape[0]) % zp.size].astype(np.int16)[:, None, None, None]
    elif zp.any():
        local = local - zp[np.arange(local.shape[3]) % zp.size].astype(np.int16)
    flat = np.append(local.ravel(), np.int16(0))  # index -1 reads the padding zero
    if not params.is_u85:
        return flat[_u55_order(local.shape, params, stream)]
    if params.fast and params.cores > 1:
        return _u85_fast_interleave(flat, local.shape, params)
    idx, is_weight = _u85_order(local.shape, params, params.streams, stream)
    values = flat[idx]
    if params.sparse:
        _check_sparse(values[is_weight])
    return values


def _u55_order(shape: tuple[int, ...], p: EncodingParams, stream: int) -> np.ndarray:
    """Index into the core's OHWI weights (-1: padding zero) of each value, in U55/U65 stream order."""
    return _u55_order_cached(
        tuple(shape),
        p.traversal,
        p.ifm_bits,
        p.dilation,
        p.ofm_block_depth,
        p.cores,
        p.ofm_ublock_depth,
        p.ifm_ublock_depth,
        stream,
    )


@lru_cache(maxsize=256)
def _u55_order_cached(
    shape: tuple[int, ...],
    traversal: str,
    ifm_bits: int,
    dilation: tuple[int, int],
    ofm_block_depth: int,
    cores: int,
    ofm_ublock: int,
    ifm_ublock: int,
    stream: int,
) -> np.ndarray:
    n_ofm, height, width, n_ifm = shape
    depthwise, part_kernel = traversal == "Depthwise", traversal == "PartKernel"
    block_depth = (ofm_block_depth + cores - 1 - stream) // cores  # this core's share of an OFM block
    ifm_block = 16 if part_kernel or ifm_bits == 16 else 32
    dec_x, dec_y = 8 // dilation[0], 8 // dilation[1]
    tap_round = 4 if depthwise else (2 if ifm_bits == 16 else 4) if part_kernel else 1

    ob = _ints(0, n_ofm, block_depth)
    ib = _ints(0, 1 if depthwise else n_ifm, ifm_block)
    sy = _ints(0, height, dec_y)
    sx = _ints(0, width, dec_x)
    sub_h = np.minimum(height - sy, dec_y)
    sub_w = np.minimum(width - sx, dec_x)
    taps = -(-(sub_h[:, None] * sub_w[None, :]) // tap_round) * tap_round
    uo = _ints(0, ifm_block, ifm_ublock) if part_kernel else _ints(1)
    ou = _ints(0, block_depth, ofm_ublock)
    ke = _ints(int(taps.max()))
    ui = _ints(1) if part_kernel or depthwise else _ints(0, ifm_block, ifm_ublock)
    oz = _ints(ofm_ublock)
    iz = _ints(1 if depthwise else ifm_ublock)
    # Loop nest, outermost first: OFM block, IFM block, sub-kernel row, column, IFM micro-block
    # (part-kernel), OFM micro-block, tap, IFM micro-block (depth-first), OFM and IFM micro-block element.
    g = np.ix_(ob, ib, _ints(sy.size), _ints(sx.size), uo, ou, ke, ui, oz, iz)
    ob_, ib_, syi, sxi, uo_, ou_, ke_, ui_, oz_, iz_ = g
    sw = sub_w[sxi]
    ky, kx = ke_ // sw, ke_ % sw
    ofm_z = ob_ + ou_ + oz_
    ifm_z = ib_ + uo_ + ui_ + iz_
    valid = (ifm_z < n_ifm) & (ofm_z < n_ofm) & (ky < sub_h[syi])
    wy, wx = sy[syi] + ky, sx[sxi] + kx
    idx = np.where(valid, ((ofm_z * height + wy) * width + wx) * n_ifm + ifm_z, -1)
    # iterations the loops skip: OFM micro-blocks past a clipped block, taps past a sub-kernel's count
    keep = (ou_ < np.minimum(block_depth, n_ofm - ob_)) & (ke_ < taps[syi, sxi])
    if part_kernel:
        keep = keep & (uo_ < np.minimum(ifm_block, n_ifm - ib_))
    return _kept(idx, keep)


def _ints(*args: int) -> np.ndarray:
    """``np.arange`` in int32: the order's index arithmetic stays well inside it and runs faster."""
    return np.arange(*args, dtype=np.int32)


def _kept(values: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """``values`` where ``keep`` (both broadcast), flattened in loop order; read-only, as it is cached."""
    values, keep = np.broadcast_arrays(values, keep)
    out = values.ravel() if keep.all() else values[keep]
    out.flags.writeable = False
    return out


def _u85_order(
    shape: tuple[int, ...], p: EncodingParams, streams: int, stream: int
) -> tuple[np.ndarray, np.ndarray]:
    """Index into the slice's OHWI weights (-1: padding) of each value in U85 stream order, and which
    values are weights (not tap padding)."""
    return _u85_order_cached(
        tuple(shape),
        p.traversal,
        p.ifm_bits,
        p.dilation,
        p.stride,
        p.ofm_block_depth,
        p.ifm_block_depth,
        p.ofm_ublock_depth,
        p.macs,
        p.sparse,
        streams,
        stream,
    )


def _u85_tap_params(traversal: str, ifm_bits: int, sparse: bool, ifm_block: int) -> tuple[int, int]:
    """(taps a sub-kernel is padded to a multiple of, IFM depth of one micro-block) on U85."""
    if traversal == "PartKernel":
        return (10 if ifm_bits == 16 or sparse else 5), (8 if ifm_bits == 16 and not sparse else ifm_block)
    if traversal == "Depthwise":
        return 10, 1
    return 1, ifm_block


@lru_cache(maxsize=256)
def _u85_order_cached(
    shape: tuple[int, ...],
    traversal: str,
    ifm_bits: int,
    dilation: tuple[int, int],
    stride: tuple[int, int],
    ofm_block: int,
    ifm_block: int,
    ofm_ublock: int,
    macs: int,
    sparse: bool,
    streams: int,
    stream: int,
) -> tuple[np.ndarray, np.ndarray]:
    n_ofm, height, width, n_ifm = shape
    depthwise = traversal == "Depthwise"
    tap_round, ifm_ublock = _u85_tap_params(traversal, ifm_bits, sparse, ifm_block)
    stride_x, stride_y = (1, 1) if traversal == "DepthFirst" else stride
    dec_x, dec_y = 8 // dilation[0], 8 // dilation[1]
    dw_pad = 0 if ifm_bits != 16 and macs <= 256 else 2 if macs <= 512 else 6
    step = 1 if depthwise else 16 if sparse else 8
    # One tap's values: IFM micro-block steps, this core's groups of four OFM channels, the four channels,
    # IFM elements (innermost).
    ifm_steps, groups, lanes, elements = np.ix_(
        _ints(0, ifm_ublock, step),
        _ints(stream * U85_INTERLEAVE_DEPTH, ofm_ublock, U85_INTERLEAVE_DEPTH * streams),
        _ints(U85_INTERLEAVE_DEPTH),
        _ints(step),
    )
    tap_ofm, tap_ifm = (a.ravel() for a in np.broadcast_arrays(groups + lanes, ifm_steps + elements))

    ob = _ints(0, n_ofm, ofm_block)
    ib_fwd = _ints(0, 1 if depthwise else n_ifm, ifm_block)
    ib = np.where((_ints(ob.size) % 2 == 0)[:, None], ib_fwd[None, :], ib_fwd[None, ::-1])  # serpentine
    clip_ofm = np.minimum(ofm_block, n_ofm - ob)[:, None, None, None, None]
    clip_ifm = (np.ones_like(ib) if depthwise else np.minimum(ifm_block, n_ifm - ib))[:, :, None, None, None]
    idx_parts, weight_parts, keep_parts = [], [], []
    for sx in range(0, width, dec_x):
        sub_w = min(width - sx, dec_x)
        for sy in range(0, height, dec_y):
            sub_h = min(height - sy, dec_y)
            d_ofm, d_ifm, wy, wx, is_w = _u85_subkernel(
                sx,
                sy,
                sub_w,
                sub_h,
                tap_round,
                stride_x,
                stride_y,
                depthwise,
                dw_pad,
                ifm_ublock,
                ofm_ublock,
                streams,
                tap_ofm,
                tap_ifm,
            )
            uo = _ints(0, 1 if depthwise else ifm_block, ifm_ublock)[:, None, None]
            ou = _ints(0, ofm_block, ofm_ublock)[None, :, None]
            ofm_z = ob[:, None, None, None, None] + ou + d_ofm
            ifm_z = ib[:, :, None, None, None] + uo + d_ifm
            valid = is_w & (ofm_z < n_ofm) & (ifm_z < n_ifm)
            idx = np.where(valid, ((ofm_z * height + wy) * width + wx) * n_ifm + ifm_z, -1)
            keep = (ou < clip_ofm) & (uo < clip_ifm)
            idx, keep, w_b = np.broadcast_arrays(idx, keep, is_w)
            shape5 = idx.shape
            idx_parts.append(idx.reshape(shape5[0], shape5[1], -1))
            keep_parts.append(keep.reshape(shape5[0], shape5[1], -1))
            weight_parts.append(w_b.reshape(shape5[0], shape5[1], -1))
    keep = np.concatenate(keep_parts, axis=2)
    idx = np.concatenate(idx_parts, axis=2)[keep]
    is_weight = np.concatenate(weight_parts, axis=2)[keep]
    idx.flags.writeable = False
    is_weight.flags.writeable = False
    return idx, is_weight


def _u85_subkernel(
    sx: int,
    sy: int,
    sub_w: int,
    sub_h: int,
    tap_round: int,
    stride_x: int,
    stride_y: int,
    depthwise: bool,
    dw_pad_taps: int,
    ifm_ublock: int,
    ofm_ublock: int,
    streams: int,
    tap_ofm: np.ndarray,
    tap_ifm: np.ndarray,
) -> tuple[np.ndarray, ...]:
    """One sub-kernel's values for one (IFM, OFM) micro-block: taps by stride phase, rows in a serpentine,
    then zero padding up to the tap rounding (depthwise also pads after every ``tap_round`` taps)."""
    taps: list[tuple[int, int] | int] = []  # (wy, wx) of a tap, or a count of padding zeros
    left = -(-(sub_w * sub_h) // tap_round) * tap_round
    for phase_y in range(stride_y):
        rows = (sub_h + stride_y - 1 - phase_y) // stride_y
        for phase_x in range(stride_x):
            cols = (sub_w + stride_x - 1 - phase_x) // stride_x
            for ky in range(rows):
                for kx in range(cols):
                    x = kx if ky % 2 == 0 else cols - 1 - kx
                    left -= 1
                    taps.append((sy + phase_y + ky * stride_y, sx + phase_x + x * stride_x))
                    if depthwise and left % tap_round == 0:
                        taps.append(dw_pad_taps * ofm_ublock // streams)
    if left > 0:
        taps.append((left + (dw_pad_taps if depthwise else 0)) * ifm_ublock * ofm_ublock // streams)
    parts_ofm, parts_ifm, parts_wy, parts_wx, parts_w = [], [], [], [], []
    n = tap_ofm.size
    for t in taps:
        if isinstance(t, tuple):
            parts_ofm.append(tap_ofm)
            parts_ifm.append(tap_ifm)
            parts_wy.append(np.full(n, t[0], dtype=np.int32))
            parts_wx.append(np.full(n, t[1], dtype=np.int32))
            parts_w.append(np.ones(n, bool))
        elif t:
            parts_ofm.append(np.zeros(t, np.int32))
            parts_ifm.append(np.zeros(t, np.int32))
            parts_wy.append(np.zeros(t, np.int32))
            parts_wx.append(np.zeros(t, np.int32))
            parts_w.append(np.zeros(t, bool))
    return tuple(np.concatenate(p) for p in (parts_ofm, parts_ifm, parts_wy, parts_wx, parts_w))


def _u85_fast_interleave(flat: np.ndarray, shape: tuple[int, ...], p: EncodingParams) -> np.ndarray:
    """U85 fast format on several cores: one stream holding each core's values in turns of one tap group."""
    tap_round, ifm_ublock = _u85_tap_params(p.traversal, p.ifm_bits, p.sparse, p.ifm_block_depth)
    block = p.ofm_ublock_depth * ifm_ublock * tap_round // p.cores
    per_core = []
    for core in range(p.cores):
        idx, is_weight = _u85_order(shape, p, p.cores, core)
        values = flat[idx]
        if p.sparse:
            _check_sparse(values[is_weight])
        per_core.append(values)
    n = per_core[0].size
    assert all(v.size == n for v in per_core) and n % block == 0  # every core walks the same padded loops
    return np.stack([v.reshape(-1, block) for v in per_core], axis=1).ravel()


def _check_sparse(weights: np.ndarray) -> None:
    """Raise unless every aligned group of four weights has two zeros and no value outside [-127, 127]."""
    groups = weights.reshape(-1, 4)
    if np.any(np.count_nonzero(groups, axis=1) > 2) or np.any(np.abs(weights) > 127):
        raise WeightsNotSparse("the weights are not 2:4 sparse in U85 stream order")
