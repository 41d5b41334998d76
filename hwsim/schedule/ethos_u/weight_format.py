"""Whether Vela 5.2.0 streams a U85 op's weights in the default (MLW) or the "fast" format.

Vela's scheduler (``EncodeBestWeightFormat``, ``UseFastDecoder`` and ``ChooseBestWeightFormat`` in
``compiler/scheduler.cpp``) encodes the weights in the default format first. It tries the fast format
only if the fast decoder looks quicker, estimated from the default stream alone: a fast stream would be
32 bytes of header plus one byte per weight, or a half or a quarter of that when the default stream has
at most 16 or 4 distinct values. It then keeps whichever format costs fewer weight-decode cycles
(``EthosU85Performance::WeightDecodeCycles``). Each format is charged the slower of its decoder and its
DMA: the default decoder takes 8 to 32 weights per core and cycle, more the more zeros it skips; the
fast decoder takes 64. The op's own cycles are the same in both formats, so this choice depends only on
the weights, the cores and the weight memory's channel bandwidth.

What this module does not decide: 2:4 sparse formats. Vela drops sparsity when the sparse block config
is slower (op cycles from the scheduler's estimate) and compares the sparse format's op cycles in the
final choice, which needs the schedule's context. Give this module the non-sparse encodings only.
"""

from __future__ import annotations

from dataclasses import dataclass

from hwsim.schedule.ethos_u.float32 import to_f32
from hwsim.schedule.ethos_u.weight_encoding import EncodedWeights

FAST_HEADER_BYTES = 32


@dataclass(frozen=True)
class WeightChannel:
    """The weight memory as one U85 DMA channel sees it: bytes per NPU cycle and read latency in cycles."""

    bytes_per_cycle: float
    read_latency_cycles: int


def channel_bytes_per_cycle(
    bandwidth_bytes_per_cycle: float,
    burst_bytes: int,
    read_latency_cycles: int,
    max_reads: int,
    ports: int,
    channel_read_buffers: int,
) -> float:
    """A U85 read channel's bandwidth (``EthosU85Performance::ChannelBW``), in float32 as Vela has it.

    ``channel_read_buffers`` is the configuration's read buffers for that channel (Vela's ``channelRBs``:
    for the weight and fast-weight channels 128/128 on U85-128 and -256, 256/256 on -512, 416/208 on
    -1024, 512/256 on -2048).
    """
    burst_words = max(burst_bytes // 16, 1)
    read_limit = to_f32(to_f32(channel_read_buffers) / to_f32(burst_words))
    transactions = min(read_limit, to_f32(max_reads * ports * 0.8))
    by_latency = to_f32(
        to_f32(to_f32(to_f32(burst_bytes) * transactions) / to_f32(read_latency_cycles)) * 0.8
    )
    return min(to_f32(bandwidth_bytes_per_cycle), by_latency)


def decode_cycles(
    source_bytes: int,
    encoded_bytes: int,
    zero_count: int,
    distinct_weights: int,
    fast: bool,
    cores: int,
    channel: WeightChannel,
) -> int:
    """Cycles to fetch and decode a weight stream: the slower of the decoder and the DMA."""
    if fast:
        per_cycle = 64 if distinct_weights < 16 else 32
    else:
        zero_rate = min(to_f32(to_f32(zero_count) / to_f32(source_bytes)), to_f32(0.9))
        zero_rate = max(zero_rate, 0.5)
        per_cycle = int(8 + (zero_rate - 0.5) * (32 - 8) / 0.4) * cores
    dma = int(to_f32(to_f32(encoded_bytes) / to_f32(channel.bytes_per_cycle))) + channel.read_latency_cycles
    return max(source_bytes // per_cycle, dma)


def use_fast_decoder(
    default: EncodedWeights,
    cores: int,
    weight_channel: WeightChannel,
    fast_channel: WeightChannel,
    optimise_size: bool = False,
) -> bool:
    """Whether Vela goes on to try the fast format, judged from the default encoding (``UseFastDecoder``)."""
    divisor = 1
    if 0 < default.distinct_weights <= 16:
        divisor = 4 if default.distinct_weights <= 4 else 2
    fast_bytes = FAST_HEADER_BYTES + default.total_source_bytes // divisor
    if optimise_size:
        return fast_bytes < default.total_weight_bytes
    slow = decode_cycles(
        default.total_source_bytes,
        default.total_weight_bytes,
        default.zero_count,
        default.distinct_weights,
        False,
        cores,
        weight_channel,
    )
    quick = decode_cycles(
        default.total_source_bytes,
        fast_bytes,
        default.zero_count,
        default.distinct_weights,
        True,
        cores,
        fast_channel,
    )
    return quick < slow


def prefers_fast(
    default: EncodedWeights,
    fast: EncodedWeights,
    cores: int,
    weight_channel: WeightChannel,
    fast_channel: WeightChannel,
    optimise_size: bool = False,
) -> bool:
    """Whether Vela streams the weights in the fast format, given both encodings (``fast``: with
    ``EncodingParams.fast`` set). Vela's default strategy optimises performance; ``optimise_size`` is its
    ``--optimise Size``. Ties keep the default format."""
    if not use_fast_decoder(default, cores, weight_channel, fast_channel, optimise_size):
        return False
    if optimise_size:
        return fast.total_weight_bytes < default.total_weight_bytes
    slow = decode_cycles(
        default.total_source_bytes,
        default.total_weight_bytes,
        default.zero_count,
        default.distinct_weights,
        False,
        cores,
        weight_channel,
    )
    quick = decode_cycles(
        fast.total_source_bytes,
        fast.total_weight_bytes,
        fast.zero_count,
        fast.distinct_weights,
        True,
        cores,
        fast_channel,
    )
    return quick < slow
