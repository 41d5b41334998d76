"""Vela 5.2.0's own block configs and NPU cycles, op by op, reproduced by the U55/U65 block search and
estimator.

The cases are Vela's debug-database rows for one op of each type, input width and accelerator in the
benchmark models (``tests/data/ethos_u/vela_ops_u55_u65.json``): shapes, layouts, memories and the
activation fused in are Vela's; the block config and cycles come from hwsim and must equal Vela's.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hwsim.devices.vela_systems import MEMORY_MODES, SYSTEM_CONFIGS
from hwsim.schedule.ethos_u import estimator as est
from hwsim.schedule.ethos_u.arch import ACCELERATORS
from hwsim.schedule.ethos_u.blocks import BlockQuery, find_block_config
from hwsim.schedule.ethos_u.geometry import Kernel
from hwsim.schedule.ethos_u.system import memory_system

CASES = json.loads((Path(__file__).parents[2] / "data" / "ethos_u" / "vela_ops_u55_u65.json").read_text())[
    "ops"
]


def _query(case):
    acc, system, mode = case["target"].split(".")
    arch = ACCELERATORS[acc]
    memsys = memory_system(SYSTEM_CONFIGS[system], MEMORY_MODES[mode])
    memories = {m.name: m for m in memsys.memories()}
    kernel = Kernel(*case["kernel"])
    ifm, ifm2, ofm = (tuple(s) if s else None for s in (case["ifm"], case["ifm2"], case["ofm"]))
    bits = case["bits"]
    block_ofm = ifm if case["op"] == "Transpose" else ofm
    config = find_block_config(
        arch,
        BlockQuery(
            case["op"],
            block_ofm,
            ifm,
            ifm2,
            bits[0],
            bits[2],
            kernel,
            2048 if case["activation"] == "LUT" else 0,
        ),
    )
    fms = [
        est.FeatureMap(s, b, memories[m or "Sram"], f or "NHWC") if s else None
        for s, b, m, f in zip((ifm, ifm2, ofm), bits, case["memories"], case["formats"])
    ]
    has_scales = case["op"] in ("Conv2D", "DepthwiseConv2D", "FullyConnected")
    q = est.PerfQuery(
        case["op"],
        kernel,
        config,
        fms[0],
        fms[2],
        fms[1],
        case["activation"],
        const_memory=memsys.const if has_scales else None,
        has_scales=has_scales,
        encoded_weight_bytes=case["weight_bytes"],
        tmp_memory=memsys.arena,
    )
    return arch, config, q


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['target'].split('.')[0]}-{c['op']}-{c['bits'][0]}")
def test_block_config_and_cycles_equal_vela(case):
    """The block search picks Vela's OFM and IFM blocks and traversal, and the estimator gives Vela's
    cycles and MACs."""
    arch, config, q = _query(case)
    assert (*config.ofm_block, *config.ifm_block) == tuple(case["block"])
    assert config.traversal == case["traversal"]
    cycles, macs = est.op_cycles(arch, q)
    assert (cycles, macs) == (case["npu_cycles"], case["macs"])
