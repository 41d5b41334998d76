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
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING

from hwsim import cache as disk_cache
from hwsim.cache import blake2b
from hwsim.workload.graph import flat_values

if TYPE_CHECKING:
    import numpy as np

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


def u55_encoding_params(
    arch: EthosUConfig, block: BlockConfig, ifm_bits: int, kernel: Kernel
) -> EncodingParams:
    """The encoding parameters of a U55/U65 op from its accelerator, block config, IFM width and kernel."""
    if arch.family == "u85":
        raise ValueError(
            "U85 encodings depend on the op's micro-block and IFM block: build EncodingParams directly"
        )
    return EncodingParams(
        arch.family,
        arch.cores,
        block.ofm_block[2],
        block.traversal,
        ifm_bits,
        (kernel.dilation_x, kernel.dilation_y),
        ofm_ublock_depth=arch.ofm_ublock[2],
        ifm_ublock_depth=arch.ifm_ublock[2],
    )


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


def encode_weights(
    op_type: str, weights, zero_points, params: EncodingParams, depth_slices: Sequence[int]
) -> EncodedWeights:
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
    return encode_source(op_type, weights_source(weights, zero_points), params, depth_slices)


@dataclass(frozen=True)
class WeightSource:
    """An op's weights as the encoder keys them: the digest of their values and zero points, and what makes
    the values on a miss. Found once per op (:meth:`Scheduler.encode` asks for many encodings of it)."""

    digest: bytes
    payload: _Payload


def weights_source(weights, zero_points) -> WeightSource:
    """The :class:`WeightSource` of ``weights`` (an array, or an object with ``digest`` and ``values()``) and
    their zero point(s)."""
    zp = tuple(int(z) for z in flat_values(zero_points))
    if hasattr(weights, "values") and hasattr(weights, "digest"):  # made on demand, named by their making
        digest = blake2b(weights.digest, digest_size=16)
        make, period = weights.values, getattr(weights, "period", None)
    else:
        import numpy as np

        w = np.ascontiguousarray(weights)
        digest = blake2b(w.tobytes(), digest_size=16)
        digest.update(repr((w.shape, str(w.dtype))).encode())
        make, period = (lambda: w), None
    digest.update(struct.pack(f"<{len(zp)}q", *zp))  # the bytes of the zero points as int64
    return WeightSource(digest.digest(), _Payload(make, zp, period))


def encode_source(
    op_type: str, source: WeightSource, params: EncodingParams, depth_slices: Sequence[int]
) -> EncodedWeights:
    """:func:`encode_weights` of weights already made a :class:`WeightSource`."""
    slices = tuple(int(d) for d in depth_slices)
    encoded = _encode_cached(op_type in DEPTHWISE_OPS, source.digest, params, slices, source.payload)
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

    def __init__(
        self, make: Callable[[], np.ndarray], zero_points: tuple[int, ...], period: int | None
    ) -> None:
        self.make, self.zero_points, self.period = make, zero_points, period

    def __hash__(self) -> int:
        return 0

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Payload)


@lru_cache(maxsize=4096)
def _encode_cached(
    depthwise: bool, digest: bytes, params: EncodingParams, slices: tuple[int, ...], payload: _Payload
) -> EncodedWeights | None:
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


def _encode(
    depthwise: bool, params: EncodingParams, slices: tuple[int, ...], payload: _Payload
) -> EncodedWeights:
    """The encoding itself (:mod:`.weight_streams`, imported only here: a cache hit needs no numpy)."""
    from hwsim.schedule.ethos_u import weight_streams

    return weight_streams.encode(
        depthwise, params, slices, payload.make(), payload.zero_points, payload.period
    )


@lru_cache(maxsize=1)
def _code_digest() -> str:
    """The encoder's own source, so that stored encodings go stale when it changes."""
    here = Path(__file__).parent
    return disk_cache.source_digest(__file__, here / "weight_streams.py", here / "mlw_codec.py")


def _result(
    ranges: list[int], total_weight: int, total_source: int, sub_streams: int, distinct: int, zeros: int
) -> EncodedWeights:
    even = max(ranges[0::2], default=0)
    odd = max(ranges[1::2], default=0)
    return EncodedWeights(
        total_weight_bytes=total_weight,
        total_source_bytes=total_source,
        allocation_bytes=sum(ranges),
        range_sizes=tuple(ranges),
        max_range_bytes=max(even, odd),
        double_buffer_sizes=(even, odd),
        sub_streams=sub_streams,
        distinct_weights=distinct,
        zero_count=zeros,
    )


def _scale_count(params: EncodingParams, depth: int, stream: int) -> int:
    """Scale entries a stream writes for a slice of ``depth`` channels."""
    if not params.is_u85:
        return (depth + params.cores - 1 - stream) // params.cores
    return _round_up(depth, _round_up(params.ofm_ublock_depth, 16))


def _check_slices(slices: tuple[int, ...], channels: int) -> None:
    rising = all(b > a for a, b in pairwise(slices))
    if len(slices) < 2 or slices[0] != 0 or slices[-1] != channels or not rising:
        raise ValueError(
            f"depth_slices must rise strictly from 0 to the {channels} OFM channels (got {slices})"
        )


def _round_up(a: int, b: int) -> int:
    return -(-a // b) * b
