"""Ethos-U85 block configs and per-op cycles against values Vela 5.2.0 reported (debug database, per op).

Every case is one op of a Vela run (``--enable-debug-db --verbose-performance``) on the system config
``Ethos_U85_SYS_DRAM_Mid`` with memory mode ``Dedicated_Sram_384KB``: the MLPerf Tiny and transformer
benchmark models, and single-op models for ops they lack (``zoo``: resize, 5x5 convolutions, pools).
The expected values are Vela's block config (OFM block, IFM block, micro-block, traversal), its NPU
cycles and, where pinned, its per-memory access cycles. None of these ops had buffered weights, so
their NPU cycles do not depend on the schedule around them.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from hwsim.schedule.ethos_u.arch_u85 import U85_ACCELERATORS
from hwsim.schedule.ethos_u.blocks import BlockQuery
from hwsim.schedule.ethos_u.blocks_u85 import find_block_config, unpermute
from hwsim.schedule.ethos_u.estimator import FeatureMap, PerfQuery
from hwsim.schedule.ethos_u.estimator_u85 import (
    IFM,
    LUT_MEMORY,
    MEM2MEM,
    WRITE,
    GroupOp,
    access_cycles,
    channel_bandwidth,
    element_access,
    mem_to_mem_cycles,
    op_cycles,
    to_bytes,
    weight_decode_cycles,
)
from hwsim.schedule.ethos_u.geometry import Kernel
from hwsim.schedule.ethos_u.op_group_u85 import GroupQuery, OpGroupU85, TensorInfo
from hwsim.devices.vela_systems import MEMORY_MODES, SYSTEM_CONFIGS
from hwsim.schedule.ethos_u.system import memory_system

SYSTEM = memory_system(SYSTEM_CONFIGS["Ethos_U85_SYS_DRAM_Mid"], MEMORY_MODES["Dedicated_Sram_384KB"])
SRAM, DRAM = SYSTEM.staging, SYSTEM.const


def fm(shape, bits, memory, fmt="NHWC") -> FeatureMap:
    """A feature map; ``memory`` None for one that stays in the chaining buffer or is fused."""
    return FeatureMap(shape, bits, memory, fmt)


@dataclass(frozen=True)
class Case:
    """One op of a Vela run: its operands, and Vela's block config and NPU cycles for it."""

    source: str  # model and accelerator of the Vela run
    accel: str
    op_type: str
    ifm: FeatureMap
    ofm: FeatureMap
    kernel: Kernel
    block: tuple  # (OFM block, IFM block, micro-block, traversal), as Vela chose
    npu_cycles: int
    macs: int
    ifm2: FeatureMap | None = None
    group: tuple[GroupOp, ...] = ()
    transpose: str = "None"
    fast_weights: bool = False
    resize_scale_x: tuple[int, int] = (1, 1)

    @property
    def has_scales(self) -> bool:
        return self.op_type in ("Conv2D", "DepthwiseConv2D", "FullyConnected")


CONV_3X3_S2 = Kernel(3, 3, 2, 2)
CONV_5X5_S2 = Kernel(5, 5, 2, 2)
CHAIN_FM = ((1, 4, 4, 16), 32)
CASES = [
    Case(
        "ic_resnet8, conv 3x3/2 + ReLU, fast weights",
        "ethos-u85-256",
        "Conv2D",
        fm((1, 16, 16, 32), 8, SRAM, "NHCWB16"),
        fm((1, 8, 8, 64), 8, SRAM, "NHCWB16"),
        CONV_3X3_S2,
        ((8, 8, 32), (17, 20, 16), (1, 4, 8), "PartKernel"),
        7340,
        1179648,
        group=(
            GroupOp("Conv2D", fm((1, 16, 16, 32), 8, SRAM, "NHCWB16"), fm((1, 8, 8, 64), 8, None, "NHCWB16")),
            GroupOp("Relu", fm((1, 8, 8, 64), 8, None, "NHCWB16"), fm((1, 8, 8, 64), 8, SRAM, "NHCWB16")),
        ),
        fast_weights=True,
    ),
    Case(
        "zoo conv5_s2_16x8, 16-bit conv 5x5/2",
        "ethos-u85-128",
        "Conv2D",
        fm((1, 16, 16, 32), 16, DRAM),
        fm((1, 6, 6, 24), 16, DRAM),
        CONV_5X5_S2,
        ((2, 6, 24), (7, 15, 16), (1, 2, 8), "PartKernel"),
        18697,
        691200,
    ),
    Case(
        "ad_fc_autoencoder, fully connected 128 -> 640",
        "ethos-u85-256",
        "FullyConnected",
        fm((1, 1, 1, 128), 8, SRAM, "NHCWB16"),
        fm((1, 1, 1, 640), 8, DRAM),
        Kernel(),
        ((1, 4, 512), (1, 4, 64), (1, 4, 8), "DepthFirst"),
        17221,
        81920,
    ),
    Case(
        "zoo dw5_s2, depthwise 5x5/2",
        "ethos-u85-128",
        "DepthwiseConv2D",
        fm((1, 16, 16, 32), 8, DRAM),
        fm((1, 8, 8, 32), 8, DRAM),
        CONV_5X5_S2,
        ((8, 8, 32), (19, 19, 32), (1, 1, 16), "Depthwise"),
        7533,
        51200,
    ),
    Case(
        "zoo maxpool3_s2, max pool 3x3/2",
        "ethos-u85-2048",
        "MaxPool",
        fm((1, 16, 16, 32), 8, DRAM),
        fm((1, 7, 7, 32), 8, DRAM),
        CONV_3X3_S2,
        ((8, 8, 32), (18, 20, 32), (4, 4, 16), "DepthFirst"),
        2849,
        14112,
    ),
    Case(
        "zoo avgpool2_16x8, 16-bit average pool 2x2/2",
        "ethos-u85-128",
        "AvgPool",
        fm((1, 16, 16, 32), 16, DRAM),
        fm((1, 8, 8, 32), 16, DRAM),
        Kernel(2, 2, 2, 2),
        ((7, 8, 16), (14, 16, 16), (1, 2, 8), "DepthFirst"),
        8902,
        8192,
    ),
    Case(
        "transformer_block, attention MatMul (one head)",
        "ethos-u85-256",
        "MatMul",
        fm((1, 1, 64, 32), 8, SRAM, "NHCWB16"),
        fm((1, 1, 64, 64), 8, SRAM, "NHCWB16"),
        Kernel(),
        ((1, 32, 64), (1, 32, 64), (1, 4, 8), "DepthFirst"),
        1440,
        131072,
        ifm2=fm((1, 1, 64, 32), 8, SRAM, "NHCWB16"),
    ),
    Case(
        "transformer_block, transpose NWCH",
        "ethos-u85-256",
        "Transpose",
        fm((1, 64, 4, 32), 8, SRAM),
        fm((1, 4, 32, 64), 8, SRAM, "NHCWB16"),
        Kernel(),
        ((32, 2, 32), (32, 2, 32), (1, 2, 16), "DepthFirst"),
        4368,
        8192,
        transpose="NWCH",
    ),
    Case(
        "transformer_block, softmax: four chained 32-bit elementwise ops",
        "ethos-u85-256",
        "Mul",
        fm(*CHAIN_FM, SRAM, "NHCWB16"),
        fm(*CHAIN_FM, DRAM, "NHCWB16"),
        Kernel(),
        ((4, 32, 16), (4, 32, 16), (1, 2, 16), "DepthFirst"),
        512,
        0,
        ifm2=fm(*CHAIN_FM, SRAM, "NHCWB16"),
        group=(
            GroupOp(
                "Mul",
                fm(*CHAIN_FM, SRAM, "NHCWB16"),
                fm(*CHAIN_FM, None, "NHCWB16"),
                fm(*CHAIN_FM, SRAM, "NHCWB16"),
            ),
            GroupOp(
                "Sub",
                fm((1, 1, 1, 1), 32, DRAM),
                fm(*CHAIN_FM, None, "NHCWB16"),
                fm(*CHAIN_FM, None, "NHCWB16"),
            ),
            GroupOp(
                "Mul",
                fm(*CHAIN_FM, SRAM, "NHCWB16"),
                fm(*CHAIN_FM, None, "NHCWB16"),
                fm(*CHAIN_FM, None, "NHCWB16"),
            ),
            GroupOp(
                "Mul",
                fm(*CHAIN_FM, None, "NHCWB16"),
                fm(*CHAIN_FM, SRAM, "NHCWB16"),
                fm((1, 1, 1, 1), 32, DRAM),
            ),
        ),
    ),
    Case(
        "zoo resize_bilinear_x2, bilinear upscale x2",
        "ethos-u85-2048",
        "Resize",
        fm((1, 16, 16, 32), 8, DRAM),
        fm((1, 32, 32, 32), 8, DRAM),
        Kernel(),
        ((1, 128, 16), (4, 128, 16), (4, 4, 16), "DepthFirst"),
        5240,
        0,
        resize_scale_x=(4, 2),
    ),
]


def block_query(case: Case) -> BlockQuery:
    return BlockQuery(
        case.op_type,
        case.ofm.shape,
        case.ifm.shape,
        case.ifm2.shape if case.ifm2 else None,
        case.ifm.bits,
        case.ofm.bits,
        case.kernel,
        transpose=case.transpose,
        ofm_format=case.ofm.format,
        resize_scale_x=case.resize_scale_x,
    )


def perf_query(case: Case) -> PerfQuery:
    arch = U85_ACCELERATORS[case.accel]
    return PerfQuery(
        case.op_type,
        case.kernel,
        find_block_config(arch, block_query(case)),
        case.ifm,
        case.ofm,
        case.ifm2,
        const_memory=DRAM if case.has_scales else None,
        has_scales=case.has_scales,
        transpose=case.transpose,
        fast_weights=case.fast_weights,
        group=case.group,
    )


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.accel}: {c.source}")
def test_block_config_as_vela(case):
    """The OFM block, IFM block, micro-block and traversal are the ones Vela chose for this op."""
    cfg = find_block_config(U85_ACCELERATORS[case.accel], block_query(case))
    assert (cfg.ofm_block, cfg.ifm_block, cfg.ofm_ublock, cfg.traversal) == case.block


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.accel}: {c.source}")
def test_npu_cycles_as_vela(case):
    """The op's NPU cycles and MAC count are the ones Vela reported."""
    assert op_cycles(U85_ACCELERATORS[case.accel], perf_query(case)) == (case.npu_cycles, case.macs)


def test_chain_access_cycles_as_vela():
    """A four-op chain reads its external inputs only: 150 SRAM cycles and no DRAM cycles, as Vela
    reported."""
    case = next(c for c in CASES if c.group and c.op_type == "Mul")
    arch, q = U85_ACCELERATORS[case.accel], perf_query(case)
    access = access_cycles(arch, q, to_bytes(arch, q, element_access(arch, q)))
    assert {name: a.cycles for name, a in access.items()} == {"Sram": 150, "Dram": 0}


def test_transposed_block_searched_unpermuted():
    """An NWCH transpose's OFM (1, 4, 32, 64) is searched as its IFM-ordered shape (1, 64, 4, 32)."""
    assert unpermute((1, 4, 32, 64), "NWCH") == (1, 64, 4, 32)


def test_channel_bandwidth_caps_dram():
    """On the U85-256, DRAM's IFM channel moves 3.2768 bytes per cycle (16 reads of 128 bytes in 500
    cycles, x 0.8)."""
    arch = U85_ACCELERATORS["ethos-u85-256"]
    assert channel_bandwidth(arch, DRAM, IFM) == pytest.approx(3.2768, rel=1e-6)
    assert channel_bandwidth(arch, SRAM, WRITE) == pytest.approx(20.48, rel=1e-6)


def test_lut_load_cycles_as_vela():
    """An unhidden 256-byte LUT load from DRAM costs what Vela added to a lone LUT op: 656 cycles on the
    U85-128."""
    arch = U85_ACCELERATORS["ethos-u85-128"]
    assert channel_bandwidth(arch, DRAM, MEM2MEM) == pytest.approx(1.6384, rel=1e-6)
    assert mem_to_mem_cycles(arch, LUT_MEMORY, DRAM, 256) == 656


def test_weight_decode_rate():
    """The standard decoder does 8 weights per cycle per core up to half zeros, 31 from 90% (Vela's float32
    0.9 is
    just under it); the fast one 32, or 64 with fewer than 16 distinct weights."""
    arch = U85_ACCELERATORS["ethos-u85-1024"]  # 4 cores
    fast_memory = SRAM  # 64 weight bytes in 2000 cycles is far below its channel rate
    assert weight_decode_cycles(arch, 64000, 64, 0, 200, False, fast_memory) == 2000
    assert weight_decode_cycles(arch, 64000, 64, 60000, 200, False, fast_memory) == 64000 // (31 * 4)
    assert weight_decode_cycles(arch, 64000, 64, 0, 15, True, fast_memory) == 1000
    assert weight_decode_cycles(arch, 64000, 64, 0, 16, True, fast_memory) == 2000


def _t(key, shape=(1, 4, 4, 16), dtype="int32", **kw) -> TensorInfo:
    return TensorInfo(key, dtype, shape, **kw)


def test_group_fuses_activation_and_chains_four_ops():
    """The softmax chain above groups as Vela grouped it: four ops, the fifth refused (at most four in a
    chain)."""
    group = OpGroupU85(GroupQuery("Mul", (_t("a"), _t("b")), _t("m1")))
    key = group.add(GroupQuery("Sub", (_t("c", (1, 1, 1, 1), is_const=True), _t("m1")), _t("s")), [0])
    key = group.add(GroupQuery("Mul", (_t("a"), _t("s")), _t("m2")), [key])
    key = group.add(GroupQuery("Mul", (_t("m2"), _t("d", (1, 1, 1, 1), is_const=True)), _t("m3")), [key])
    assert key == -3 and not group.needs_allocation("m1") and group.needs_allocation("m3")
    assert group.add(GroupQuery("Add", (_t("m3"), _t("e")), _t("out")), [key]) is None


def test_group_refuses_clipping_after_narrowing_op():
    """A ReLU fuses after an int8 convolution but not after an int32 -> int8 op, whose output may have been
    clipped."""
    conv = OpGroupU85(GroupQuery("Conv2D", (_t("x", dtype="int8"),), _t("y", dtype="int8")))
    assert conv.add(GroupQuery("Relu", (_t("y", dtype="int8"),), _t("z", dtype="int8")), [0]) == -1
    narrowing = OpGroupU85(GroupQuery("Add", (_t("x"), _t("w")), _t("y", dtype="int8")))
    assert narrowing.add(GroupQuery("Relu", (_t("y", dtype="int8"),), _t("z", dtype="int8")), [0]) is None
