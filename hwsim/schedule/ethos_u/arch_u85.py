"""The Ethos-U85 accelerator configurations as Arm Vela 5.2.0 (its Regor core) describes them.

The U85 differs from the U55/U65 in what its block search and estimator read: it has no shared buffer
of banks but separate RAMs (IFM buffer, accumulators, output buffer, chaining buffer), several OFM
micro-blocks per configuration (which one an op uses depends on the op and its input precision), an
IFM allocation unit that depends on the micro-block and on the bits of one IFM block column, and
per-channel AXI read buffers that cap memory bandwidth
(:func:`hwsim.schedule.ethos_u.estimator_u85.channel_bandwidth`).

Source of every number, in ``ethosu/regor/architecture/ethosu85/ethos_u85.cpp`` of ethos-u-vela 5.2.0:
``s_EthosU85PerfInfo`` (lines 55-66: output, activation and resize cycles per element),
``s_EthosU85Configs`` (lines 68-83: MACs, cores, micro-blocks, RAM sizes, AXI ports, channel read
buffers), ``SetupOfmUBlockToIfmAuTable`` (lines 307-350) and ``SetupOfmUBlockToOpTable`` (lines 352-462).
"""

from __future__ import annotations

from dataclasses import dataclass

Block = tuple[int, int, int]  # (height, width, depth)

# Hardware operations a micro-block supports (Vela's EthosU85NpuOp, plus MatMul, which has its own bit).
CONV, MATMUL, DEPTHWISE, POOL, REDUCE_SUM, REDUCE_MINMAX, ARGMAX, ELEMENTWISE, RESIZE = (
    "conv",
    "matmul",
    "depthwise",
    "pooling",
    "reduce_sum",
    "reduce_minmax",
    "argmax",
    "elementwise",
    "resize",
)

# Output-cycle table index (GetOutputCyclesPerElement): 8-, 16-, 32-, 64-bit OFM, a 32-bit chained
# result (or 32-bit binary elementwise to a narrower OFM), and 32-bit binary elementwise to 32 bits.
OUT_8, OUT_16, OUT_32, OUT_64, OUT_CHAINED_32, OUT_BINARY_32 = range(6)


@dataclass(frozen=True)
class EthosU85Config:
    """One Ethos-U85 configuration (``ethos-u85-256`` ...), as Vela's block search and estimator see it."""

    name: str
    macs: int  # MACs per cycle, all cores together
    cores: int  # weight decoders (one per core)
    ofm_ublocks: tuple[Block, ...]  # in Vela's order, which breaks ties between equally wasteful micro-blocks
    ifm_ublock: Block
    ifm_ram_bytes: int
    acc_ram_bytes: int
    ob_ram_bytes: int  # output buffer
    cb_ram_bytes: int  # chaining buffer
    axi_sram_log2: int
    axi_ext_log2: int
    # per read channel: Mem2Mem, IFMStream, Weight, FastWeight, IFM, Scale
    channel_read_buffers: tuple[int, ...]
    output_cycles: tuple[float, ...]  # cycles per output element, by OUT_* index
    activation_cycles: tuple[float, float]  # plain, and H/W-swapping transpose or W reverse (half rate)
    resize_low_cycles: tuple[float, float]  # 8-bit, 16-bit IFM
    resize_high_cycles: tuple[float, float]
    # per micro-block: ops allowed for 8-, 16-, 32-bit IFMs
    ublock_ops: tuple[tuple[frozenset[str], ...], ...]
    # per micro-block: IFM allocation unit for 1, 2, 3 IFM words
    ublock_ifm_alloc: tuple[tuple[Block, ...], ...]

    family: str = "u85"

    @property
    def total_macs(self) -> int:
        """MACs per cycle over all cores (the U85's ``macs`` already counts them all)."""
        return self.macs


def _ops(*names: str) -> frozenset[str]:
    return frozenset(names)


_CONV_8 = _ops(CONV, MATMUL, REDUCE_SUM, ELEMENTWISE, RESIZE)
_ALL_16 = _ops(CONV, MATMUL, DEPTHWISE, POOL, REDUCE_SUM, ELEMENTWISE, REDUCE_MINMAX, ARGMAX, RESIZE)
_WIDE_32 = _ops(REDUCE_SUM, ELEMENTWISE, REDUCE_MINMAX, RESIZE)
_DEEP_8 = _ops(DEPTHWISE, POOL, ELEMENTWISE, REDUCE_MINMAX, ARGMAX, RESIZE)
_DEEP_16 = _ops(CONV, ELEMENTWISE, RESIZE)  # a 1x1 depth-first convolution with 16-bit IFM
_DEEP_32 = _ops(ELEMENTWISE, RESIZE)
_MID_ALL = _ops(CONV, DEPTHWISE, POOL, REDUCE_SUM, ELEMENTWISE, REDUCE_MINMAX, ARGMAX, RESIZE)
_BIG_CONV = _ops(CONV, MATMUL, ELEMENTWISE)
_EW = _ops(ELEMENTWISE)

_PERF = {  # output cycles, activation cycles, resize low, resize high
    128: ((0.5, 0.5, 0.5, 1.0, 1.0, 1.0), (0.5, 1.0), (0.5, 1.0), (0.5, 1.0)),
    256: ((0.25, 0.25, 0.25, 0.5, 0.5, 0.5), (0.25, 0.5), (0.25, 0.5), (0.25, 0.5)),
    512: ((0.125, 0.125, 0.25, 0.5, 0.25, 0.25), (0.125, 0.25), (0.125, 0.25), (0.125, 0.25)),
    1024: ((0.0625, 0.125, 0.25, 0.5, 0.125, 0.25), (0.0625, 0.125), (0.125, 0.125), (0.0625, 0.125)),
    2048: (
        (0.03125, 0.0625, 0.125, 0.25, 0.0625, 0.125),
        (0.03125, 0.0625),
        (0.0625, 0.0625),
        (0.03125, 0.0625),
    ),
}


def _config(
    macs, cores, ublocks, ifm_ublock, ifm_ram, acc_ram, ob_ram, cb_ram, axi_sram, axi_ext, rbs, ops, alloc
) -> EthosU85Config:
    return EthosU85Config(
        f"ethos-u85-{macs}",
        macs,
        cores,
        ublocks,
        ifm_ublock,
        ifm_ram,
        acc_ram,
        ob_ram,
        cb_ram,
        axi_sram,
        axi_ext,
        rbs,
        *_PERF[macs],
        ops,
        alloc,
    )


U85_ACCELERATORS: dict[str, EthosU85Config] = {
    c.name: c
    for c in (
        _config(
            128,
            1,
            ((1, 2, 8), (1, 1, 16)),
            (1, 2, 8),
            8192,
            8192,
            2048,
            768,
            1,
            0,
            (64, 64, 128, 128, 104, 16),
            ((_CONV_8, _ALL_16, _WIDE_32), (_DEEP_8, _DEEP_16, _DEEP_32)),
            (((1, 2, 1), (1, 1, 2), (1, 1, 2)),) * 2,
        ),
        _config(
            256,
            1,
            ((1, 2, 16), (1, 4, 8), (2, 2, 8)),
            (2, 2, 8),
            16384,
            16384,
            2048,
            1536,
            1,
            0,
            (104, 104, 128, 128, 128, 16),
            ((_DEEP_8, _DEEP_16, _DEEP_32), (_CONV_8, _ALL_16, _WIDE_32), (_CONV_8, _ALL_16, _WIDE_32)),
            (
                ((2, 2, 1), (1, 2, 2), (1, 1, 4)),
                ((1, 4, 1), (1, 2, 2), (1, 1, 4)),
                ((2, 2, 1), (1, 2, 2), (1, 1, 4)),
            ),
        ),
        _config(
            512,
            2,
            ((2, 2, 16), (1, 4, 16)),
            (2, 2, 16),
            16384,
            32768,
            4096,
            3072,
            1,
            0,
            (128, 128, 256, 256, 128, 16),
            ((_ALL_16, _ALL_16, _WIDE_32),) * 2,
            (((2, 2, 1), (1, 2, 2), (1, 1, 4)), ((1, 4, 1), (1, 2, 2), (1, 1, 4))),
        ),
        _config(
            1024,
            4,
            ((2, 2, 32), (1, 4, 32), (2, 4, 16)),
            (4, 2, 16),
            16384,
            65536,
            4096,
            6144,
            1,
            1,
            (256, 256, 416, 208, 256, 16),
            ((_BIG_CONV, _BIG_CONV, _EW), (_BIG_CONV, _BIG_CONV, _EW), (_MID_ALL, _MID_ALL, _WIDE_32)),
            (
                ((2, 4, 1), (2, 2, 2), (1, 2, 4)),
                ((2, 4, 1), (1, 4, 2), (1, 2, 4)),
                ((2, 4, 1), (2, 2, 2), (1, 2, 4)),
            ),
        ),
        _config(
            2048,
            4,
            ((2, 2, 64), (1, 4, 64), (4, 4, 16)),
            (4, 4, 16),
            32768,
            131072,
            8192,
            12288,
            2,
            1,
            (256, 256, 512, 256, 256, 16),
            ((_BIG_CONV, _BIG_CONV, _EW), (_BIG_CONV, _BIG_CONV, _EW), (_MID_ALL, _MID_ALL, _WIDE_32)),
            (
                ((4, 4, 1), (2, 4, 2), (2, 2, 4)),
                ((4, 4, 1), (2, 4, 2), (1, 4, 4)),
                ((4, 4, 1), (2, 4, 2), (2, 2, 4)),
            ),
        ),
    )
}
