"""Size of an op's encoded weight stream, as Arm Vela 5.2.0 (its Regor core) encodes it for Ethos-U.

The NPU streams exactly these bytes from flash or DRAM, so their size, not the size of the TFLite
weights, sets the weight traffic and Vela's latency estimate. Vela builds the stream
(``Scheduler::TryEncodeWeightAndScaleTensor`` in ``compiler/scheduler.cpp``) as follows:

* The OFM channels are cut into **depth slices** (the schedule's ``ofmDepthSlices``); each slice holds,
  per **core stream**, that stream's scales then its weights, each padded to 16 bytes. A slice is one
  unit of weight double-buffering (``rangeSizes``, ``maxRangeBytes``).
* **Scales**: 10 bytes per output channel (bias, multiplier, shift). U55/U65 split the channels over the
  cores, one scale block per core; U85 writes one block for all cores, rounded up to the OFM
  micro-block depth (at least 16).
* **Weight order** follows the hardware's traversal: OFM block, IFM block, sub-kernel (8x8 taps /
  dilation), micro-block, kernel tap, IFM/OFM micro-block elements, with zero padding where a block,
  micro-block or tap group is not full (``ethosu55/ethos_u55_weight_encoder.cpp``,
  ``ethosu85/ethos_u85_weight_encoder.cpp``). U55/U65 give each core every ``cores``-th OFM channel; U85
  interleaves the cores four OFM channels at a time inside each micro-block and walks the IFM blocks in
  a serpentine.
* Each stream is compressed by the **MLW codec** (``dependencies/mlw_codec/source/mlw_encode.cpp``, see
  :mod:`hwsim.schedule.ethos_u.mlw_codec`): per 128 Ki values a palette of up to 32 frequent values or
  direct sign-magnitude values, zeros optionally sent as run lengths, and slices of Golomb-Rice codes
  (or uncompressed symbols) chosen by a greedy search. On U85 Vela may instead write the "fast" format
  (``mlw_encode_fwd.cpp``: 2, 4 or 8 bits per weight, one interleaved stream for all cores) or use 2:4
  sparse weights; :mod:`hwsim.schedule.ethos_u.weight_format` makes the default-or-fast choice.

:func:`encode_weights` returns what Vela's ``NpuWeightTensor`` records. Results are cached on the
weights' bytes and the parameters, as Vela caches identical encodings: in memory, and on disk
(:mod:`hwsim.cache`, keyed also on this module's and the codec's source) for the next run of a sweep.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from itertools import pairwise
from typing import TYPE_CHECKING

import numpy as np

from hwsim import cache as disk_cache
from hwsim.schedule.ethos_u import mlw_codec

if TYPE_CHECKING:
    from hwsim.schedule.ethos_u.arch import EthosUConfig
    from hwsim.schedule.ethos_u.blocks import BlockConfig
    from hwsim.schedule.ethos_u.geometry import Kernel

ALIGN_BYTES = 16  # every scale block and weight stream starts on a 16-byte boundary
SCALE_BYTES_PER_CHANNEL = 10  # 40/48-bit bias, 32/16-bit multiplier, 6-bit shift
U85_INTERLEAVE_DEPTH = 4  # OFM channels a U85 core takes in turn inside a micro-block

DEPTHWISE_OPS = frozenset({"DepthwiseConv2D"})
_TRAVERSALS = frozenset({"DepthFirst", "PartKernel", "Depthwise"})


class WeightsNotSparse(ValueError):
    """The weights are not 2:4 sparse in the order U85 streams them, so Vela cannot use that format."""


@dataclass(frozen=True)
class EncodingParams:
    """What Vela's ``GetEncodingConfig`` keys an encoding on, plus the architecture facts the order uses.

    ``family`` is ``"u55"``, ``"u65"`` (encoded as U55) or ``"u85"``; ``cores`` the NPU cores (each
    gets its own stream unless the U85 fast format is used). ``ofm_block_depth``, ``traversal``, and on
    U85 ``ifm_block_depth`` and ``ofm_ublock_depth``, come from the op's block config. On U55/U65
    ``ofm_ublock_depth`` and ``ifm_ublock_depth`` are the architecture's micro-blocks (4 and 8 on
    U55-32, else 8 and 8; :func:`u55_encoding_params` fills them in). ``macs`` (U85 only: all cores'
    MACs) sets U85's depthwise tap padding. ``dilation`` and ``stride`` are ``(x, y)``; U85 orders taps
    by stride phase except in depth-first traversal. ``fast`` and ``sparse`` select U85's formats.
    """

    family: str
    cores: int
    ofm_block_depth: int
    traversal: str
    ifm_bits: int = 8
    dilation: tuple[int, int] = (1, 1)
    ofm_ublock_depth: int = 8
    ifm_ublock_depth: int = 8
    ifm_block_depth: int = 0
    macs: int = 0
    stride: tuple[int, int] = (1, 1)
    fast: bool = False
    sparse: bool = False

    def __post_init__(self) -> None:
        if self.family not in ("u55", "u65", "u85"):
            raise ValueError(f"family must be 'u55', 'u65' or 'u85' (got {self.family!r})")
        if self.traversal not in _TRAVERSALS:
            raise ValueError(f"traversal must be one of {sorted(_TRAVERSALS)} (got {self.traversal!r})")
        if not self.is_u85 and (self.fast or self.sparse):
            raise ValueError("the fast and 2:4 sparse weight formats exist on U85 only")
        if self.is_u85 and self.ifm_block_depth <= 0:
            raise ValueError(f"U85 needs the op's ifm_block_depth (got {self.ifm_block_depth})")

    @property
    def is_u85(self) -> bool:
        """U85 has its own weight order, scale layout and formats; U65 encodes as U55."""
        return self.family == "u85"

    @property
    def weight_format(self) -> str:
        """Vela's name of the format, as its debug database prints it (``Default|Sparse2_4`` ...)."""
        return ("Fast" if self.fast else "Default") + ("|Sparse2_4" if self.sparse else "")

    @property
    def streams(self) -> int:
        """Weight streams per depth slice: one per core, except U85's fast format, which interleaves them."""
        return 1 if self.fast else self.cores


def u55_encoding_params(arch: EthosUConfig, block: BlockConfig, ifm_bits: int,
                        kernel: Kernel) -> EncodingParams:
    """The encoding parameters of a U55/U65 op from its accelerator, block config, IFM width and kernel."""
    if arch.family == "u85":
        raise ValueError("U85 encodings depend on the op's micro-block and IFM block: "
                         "build EncodingParams directly")
    return EncodingParams(arch.family, arch.cores, block.ofm_block[2], block.traversal, ifm_bits,
                          (kernel.dilation_x, kernel.dilation_y), ofm_ublock_depth=arch.ofm_ublock[2],
                          ifm_ublock_depth=arch.ifm_ublock[2])


@dataclass(frozen=True)
class EncodedWeights:
    """Vela's ``NpuWeightTensor`` numbers for one op; sizes in bytes.

    ``total_weight_bytes``: compressed weights over all slices and streams, scales excluded (Vela's
    ``totalWeightBytes``). ``total_source_bytes``: weights fed to the encoder, zero padding included.
    ``allocation_bytes``: the whole stream as stored, scales and 16-byte alignment included.
    ``range_sizes``: per depth slice, its scales and weights of all streams. ``max_range_bytes`` and
    ``double_buffer_sizes``: the largest slice, and the largest of the even and of the odd slices (the
    two halves of a double buffer). ``sub_streams``: streams per slice. ``distinct_weights``: distinct
    values the encoder saw, counted as Vela counts them (it stops counting past 16, see
    :func:`_distinct_count`). ``zero_count``: zeros the codec sent as zero runs (0 when it used none).
    """

    total_weight_bytes: int
    total_source_bytes: int
    allocation_bytes: int
    range_sizes: tuple[int, ...]
    max_range_bytes: int
    double_buffer_sizes: tuple[int, int]
    sub_streams: int
    distinct_weights: int
    zero_count: int


def encode_weights(op_type: str, weights, zero_points: np.ndarray | int, params: EncodingParams,
                   depth_slices: Sequence[int]) -> EncodedWeights:
    """Encode an op's weights and scales as Vela does and return the stream's sizes.

    Parameters
    ----------
    op_type : str
        Vela's op type (``"Conv2D"``, ``"DepthwiseConv2D"``, ``"FullyConnected"`` ...).
    weights : np.ndarray or StandInWeights
        The TFLite weight tensor: OHWI for convolutions, ``[1, H, W, C]`` for depthwise, ``[O, I]`` for
        fully connected; or an object with ``digest`` and ``values()`` that makes it (a shapes-only
        workload's :class:`~hwsim.schedule.ethos_u.lowering.StandInWeights`).
    zero_points : np.ndarray or int
        The weights' zero point(s), subtracted before encoding.
    params : EncodingParams
        Architecture and block configuration.
    depth_slices : sequence of int
        OFM channel boundaries of the depth slices, from 0 to the channel count (Vela's
        ``ofmDepthSlices``, e.g. ``(0, 16, 64)``).

    Raises
    ------
    WeightsNotSparse
        ``params.sparse`` is set but the weights are not 2:4 sparse in stream order.
    """
    zp = np.atleast_1d(np.asarray(zero_points, dtype=np.int64))
    if hasattr(weights, "values") and hasattr(weights, "digest"):  # made on demand, named by their making
        digest = hashlib.blake2b(weights.digest, digest_size=16)
        make, period = weights.values, getattr(weights, "period", None)
    else:
        w = np.ascontiguousarray(weights)
        digest = hashlib.blake2b(w.tobytes(), digest_size=16)
        digest.update(repr((w.shape, str(w.dtype))).encode())
        make, period = (lambda: w), None  # noqa: E731
    digest.update(zp.tobytes())
    slices = tuple(int(d) for d in depth_slices)
    payload = _Payload(make, zp, period)
    encoded = _encode_cached(op_type in DEPTHWISE_OPS, digest.digest(), params, slices, payload)
    if encoded is None:
        raise WeightsNotSparse("the weights are not 2:4 sparse in U85 stream order")
    return encoded


def encode_scales(channels: int, params: EncodingParams, depth_slices: Sequence[int]) -> EncodedWeights:
    """The stream of an op with per-channel scales but no weights (``EncodeQuantizationScaleTensor``).

    Only scales are written: ``total_weight_bytes`` is 0 and the slice sizes are the scale blocks.
    """
    slices = tuple(int(d) for d in depth_slices)
    _check_slices(slices, channels)
    streams = 1 if params.is_u85 else min(channels, params.cores)
    ranges, sub_streams = [], 0
    for d0, d1 in pairwise(slices):
        size = 0
        for stream in range(streams):
            n_scales = _scale_count(params, d1 - d0, stream)
            if n_scales:
                size += _round_up(n_scales * SCALE_BYTES_PER_CHANNEL, ALIGN_BYTES)
                sub_streams = max(sub_streams, stream + 1)
        ranges.append(size)
    return _result(ranges, 0, 0, sub_streams, 0, 0)


class _Payload:
    """Carries the arrays past the cache without taking part in its key (the weights made only on a miss).

    ``period``: the weights' output channels repeat with this period (stand-ins), or None.
    """

    def __init__(self, make: Callable[[], np.ndarray], zero_points: np.ndarray, period: int | None) -> None:
        self.make, self.zero_points, self.period = make, zero_points, period

    def __hash__(self) -> int:
        return 0

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Payload)


@lru_cache(maxsize=4096)
def _encode_cached(depthwise: bool, digest: bytes, params: EncodingParams, slices: tuple[int, ...],
                   payload: _Payload) -> EncodedWeights | None:
    """The encoding, or None when the sparse format was asked of weights that are not 2:4 sparse: that
    answer is kept too, as finding it orders every weight (minutes for a 1B-parameter model's stand-ins)."""
    key = f"{_code_digest()} {depthwise} {digest.hex()} {params!r} {slices}"
    stored = disk_cache.load("ethos_u_weights", key)
    if stored is not None:
        if stored == _NOT_SPARSE:
            return None
        return EncodedWeights(**{k: tuple(v) if isinstance(v, list) else v for k, v in stored.items()})
    try:
        result = _encode(depthwise, params, slices, payload)
    except WeightsNotSparse:
        disk_cache.store("ethos_u_weights", key, _NOT_SPARSE)
        return None
    disk_cache.store("ethos_u_weights", key, dataclasses.asdict(result))
    return result


_NOT_SPARSE = {"not_sparse": True}


@cache
def _code_digest() -> str:
    """The encoder's own source, so that stored encodings go stale when it changes."""
    return disk_cache.source_digest(__file__, mlw_codec.__file__)


def _encode(depthwise: bool, params: EncodingParams, slices: tuple[int, ...],
            payload: _Payload) -> EncodedWeights:
    src = _as_ohwi(payload.make(), depthwise)
    channels = src.shape[3] if depthwise else src.shape[0]
    _check_slices(slices, channels)
    zp = payload.zero_points
    # U55/U65: one stream per core that has channels, each with its own scales; U85: one scale block
    streams = params.streams if params.is_u85 else min(channels, params.cores)
    scale_streams = 1 if params.is_u85 else streams
    ranges: list[int] = []
    total_weight = total_source = zeros = sub_streams = distinct = 0
    used = np.zeros(mlw_codec.SYMBOLS, dtype=bool)
    # Weights that repeat every `period` channels (a multiple of the cores) send the same stream for every
    # slice that starts at the same offset in the period: encode each once (zero points are indexed by
    # slice-local or IFM channel, the same for every such slice).
    period = payload.period if payload.period and payload.period % params.cores == 0 else None
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


def _encode_stream(src: np.ndarray, zp: np.ndarray, depthwise: bool, params: EncodingParams,
                   depth_offset: int, depth: int, stream: int,
                   period: int | None) -> tuple[int, int, int, np.ndarray | None]:
    """One stream of one depth slice: its encoded bytes, values sent, zeros sent as runs and the values it
    used (None in the fast format, which counts neither).

    Weights whose channels repeat every ``period`` also repeat every multiple of it; a slice deeper than the
    least multiple that an even number of OFM blocks tiles (even, for U85's serpentine over IFM blocks)
    sends that multiple's stream over and over, then its remainder: only those two are ordered, and the
    codec sizes the repeats without building them.
    """
    unit = 2 * params.ofm_block_depth * params.cores
    period = period * unit // math.gcd(period, unit) if period else 0  # also a period of the weights
    repeats = depth // period if period and depth > period else 0
    if repeats:
        base = _stream_values(src, zp, depthwise, params, depth_offset, period, stream)
        rest = depth - repeats * period
        tail = (_stream_values(src, zp, depthwise, params, depth_offset + repeats * period, rest, stream)
                if rest else base[:0])
    else:
        base = src[:0].astype(np.int16).ravel()
        tail = _stream_values(src, zp, depthwise, params, depth_offset, depth, stream)
    n_values = base.size * repeats + tail.size
    if params.fast:
        parts = np.concatenate([base, tail])
        return mlw_codec.encode_fast(parts, no_palette=params.sparse, size=n_values), n_values, 0, None
    res = mlw_codec.encode_repeating(base, repeats, tail)
    return res.size_bytes, n_values, res.zero_count, res.used


def _result(ranges: list[int], total_weight: int, total_source: int, sub_streams: int, distinct: int,
            zeros: int) -> EncodedWeights:
    even = max(ranges[0::2], default=0)
    odd = max(ranges[1::2], default=0)
    return EncodedWeights(total_weight_bytes=total_weight, total_source_bytes=total_source,
                          allocation_bytes=sum(ranges), range_sizes=tuple(ranges),
                          max_range_bytes=max(even, odd), double_buffer_sizes=(even, odd),
                          sub_streams=sub_streams, distinct_weights=distinct, zero_count=zeros)


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


def _scale_count(params: EncodingParams, depth: int, stream: int) -> int:
    """Scale entries a stream writes for a slice of ``depth`` channels."""
    if not params.is_u85:
        return (depth + params.cores - 1 - stream) // params.cores
    return _round_up(depth, _round_up(params.ofm_ublock_depth, 16))


def _check_slices(slices: tuple[int, ...], channels: int) -> None:
    rising = all(b > a for a, b in pairwise(slices))
    if len(slices) < 2 or slices[0] != 0 or slices[-1] != channels or not rising:
        raise ValueError(f"depth_slices must rise strictly from 0 to the {channels} OFM channels "
                         f"(got {slices})")


def _round_up(a: int, b: int) -> int:
    return -(-a // b) * b


def _as_ohwi(weights: np.ndarray, depthwise: bool) -> np.ndarray:
    """The weights as a 4-D array: OHWI, depthwise TFLite's ``[1, H, W, C]``, FC ``[O, I]`` with H = W = 1."""
    if weights.ndim == 2:
        return weights.reshape(weights.shape[0], 1, 1, weights.shape[1])
    if weights.ndim != 4:
        raise ValueError(f"weights must be 2-D (fully connected) or 4-D (got shape {weights.shape})")
    if depthwise and weights.shape[0] != 1:
        raise ValueError(f"depthwise weights must be [1, H, W, C] (got shape {weights.shape})")
    return weights


def _stream_values(src: np.ndarray, zp: np.ndarray, depthwise: bool, params: EncodingParams,
                   depth_offset: int, depth: int, stream: int) -> np.ndarray:
    """The zero-point-corrected weights one stream sends for one depth slice, in hardware order (int16)."""
    if depthwise:  # as [C, H, W, 1]: the channel plays the OFM part
        local = src[0, :, :, depth_offset:depth_offset + depth].transpose(2, 0, 1)[..., None]
    else:
        local = src[depth_offset:depth_offset + depth]
    if not params.is_u85:
        local = local[stream::params.cores]  # each U55 core takes every cores-th channel
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
    return _u55_order_cached(tuple(shape), p.traversal, p.ifm_bits, p.dilation, p.ofm_block_depth, p.cores,
                             p.ofm_ublock_depth, p.ifm_ublock_depth, stream)


@lru_cache(maxsize=256)
def _u55_order_cached(shape: tuple[int, ...], traversal: str, ifm_bits: int, dilation: tuple[int, int],
                      ofm_block_depth: int, cores: int, ofm_ublock: int, ifm_ublock: int,
                      stream: int) -> np.ndarray:
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


def _u85_order(shape: tuple[int, ...], p: EncodingParams, streams: int,
               stream: int) -> tuple[np.ndarray, np.ndarray]:
    """Index into the slice's OHWI weights (-1: padding) of each value in U85 stream order, and which
    values are weights (not tap padding)."""
    return _u85_order_cached(tuple(shape), p.traversal, p.ifm_bits, p.dilation, p.stride, p.ofm_block_depth,
                             p.ifm_block_depth, p.ofm_ublock_depth, p.macs, p.sparse, streams, stream)


def _u85_tap_params(traversal: str, ifm_bits: int, sparse: bool, ifm_block: int) -> tuple[int, int]:
    """(taps a sub-kernel is padded to a multiple of, IFM depth of one micro-block) on U85."""
    if traversal == "PartKernel":
        return (10 if ifm_bits == 16 or sparse else 5), (8 if ifm_bits == 16 and not sparse else ifm_block)
    if traversal == "Depthwise":
        return 10, 1
    return 1, ifm_block


@lru_cache(maxsize=256)
def _u85_order_cached(shape: tuple[int, ...], traversal: str, ifm_bits: int, dilation: tuple[int, int],
                      stride: tuple[int, int], ofm_block: int, ifm_block: int, ofm_ublock: int, macs: int,
                      sparse: bool, streams: int, stream: int) -> tuple[np.ndarray, np.ndarray]:
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
        _ints(U85_INTERLEAVE_DEPTH), _ints(step))
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
            d_ofm, d_ifm, wy, wx, is_w = _u85_subkernel(sx, sy, sub_w, sub_h, tap_round, stride_x, stride_y,
                                                         depthwise, dw_pad, ifm_ublock, ofm_ublock, streams,
                                                         tap_ofm, tap_ifm)
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


def _u85_subkernel(sx: int, sy: int, sub_w: int, sub_h: int, tap_round: int, stride_x: int, stride_y: int,
                   depthwise: bool, dw_pad_taps: int, ifm_ublock: int, ofm_ublock: int, streams: int,
                   tap_ofm: np.ndarray, tap_ifm: np.ndarray) -> tuple[np.ndarray, ...]:
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
