"""The ``vela-5.2`` performance model: Ethos-U layers timed as Arm Vela 5.2.0's estimator times them.

Vela's numbers are its compiler's estimates (Arm says to measure on an FPGA or the FVP for real
performance); this model reproduces them per op, so that an energy-vs-accuracy answer on an Ethos-U
device costs what the vendor's own tool says it costs. The pipeline is Vela's: the graph rewrites and
execution order (:mod:`.lowering`), tensor layouts (:mod:`.formats`), block configs, weight buffering,
cascades and SRAM placement (:mod:`.scheduler`), and the per-op estimator (:mod:`.estimator`,
:mod:`.network`).

Each model op becomes one :class:`~hwsim.schedule.mapper.LayerPlan` with one tile per op Vela runs for it
(a softmax is 16 or 28); a tile's compute is Vela's NPU cycles and its streams are the op's traffic on
each memory, lasting Vela's access cycles, so the simulator's layer time is Vela's ``op_cycles``. Ops Vela
leaves to the CPU are plans on the unit ``"cpu"`` with no cycles, as Vela reports them.

Vela reads TFLite files: a model read from ONNX is timed as the TFLite file its full-integer conversion
would be (:mod:`hwsim.workload.as_tflite`: NHWC, TFLite's weight layouts and op kinds), and each Vela op
is charged to the ONNX op it comes from, so the plans keep the ONNX node names.
"""

from __future__ import annotations

from collections import defaultdict

from hwsim.devices.ethos_u import LEVEL_NAMES
from hwsim.devices.model import Device
from hwsim.devices.vela_systems import MEMORY_MODES, SYSTEM_CONFIGS
from hwsim.errors import ConfigError
from hwsim.schedule.counts import ActionCounts
from hwsim.schedule.ethos_u.family import family
from hwsim.schedule.ethos_u.formats import assign_formats
from hwsim.schedule.ethos_u.lowering import lower
from hwsim.schedule.ethos_u.network import OpResult, estimate
from hwsim.schedule.ethos_u.scheduler import Scheduler
from hwsim.schedule.ethos_u.system import memory_system
from hwsim.schedule.plans import LayerPlan, Mapping, Tile, Transfer, precision_of
from hwsim.workload.graph import Graph
from hwsim.workload.opdefs import mac_count

MAC_TYPES = frozenset(
    {"Conv2D", "DepthwiseConv2D", "FullyConnected", "AvgPool", "MaxPool", "ReduceSum", "MatMul"}
)
POOLS = frozenset({"AvgPool", "MaxPool", "ReduceSum"})  # accumulate on the MAC engine, but multiply nothing


def plan_vela(graph: Graph, device: Device) -> list[LayerPlan]:
    """One plan per op of ``graph`` on an Ethos-U ``device``, timed as Vela 5.2.0 times it."""
    spec = device.spec.ethos_u
    if spec is None:
        raise ConfigError(
            f"{device.path or device.name}: performance_model: 'vela-5.2' needs an ethos_u "
            "section "
            "(accelerator, system_config, memory_mode)"
        )
    fam = family(spec.accelerator)
    memsys = memory_system(
        SYSTEM_CONFIGS[spec.system_config], MEMORY_MODES[spec.memory_mode], spec.arena_cache_size_bytes
    )
    lowered, origin = graph, list(range(len(graph.ops)))
    if graph.format == "onnx":  # Vela reads TFLite: the network a TFLite conversion of the model gives
        from hwsim.workload.as_tflite import as_tflite

        converted = as_tflite(graph)
        lowered, origin = converted.graph, converted.origin
    ops = lower(lowered, fam.name)
    assign_formats(ops, fam.name)
    sched = Scheduler(fam, memsys, ops)
    results = estimate(sched, sched.schedule().costs)
    by_source: dict[int | None, list[OpResult]] = defaultdict(list)
    for r in results:
        by_source[None if r.op.source is None else origin[r.op.source]].append(r)
    levels = device.levels
    return [
        _layer_plan(graph, op, by_source.get(i, []), device, levels, fam.arch.total_macs)
        for i, op in enumerate(graph.ops)
    ]


def _layer_plan(
    graph: Graph, op, results: list[OpResult], device: Device, device_levels: list, macs_per_cycle: int
) -> LayerPlan:
    w_bits, a_bits, acc_bits = precision_of(graph, op)
    pair = f"{w_bits}x{a_bits}"
    # a view Vela removes, shape arithmetic folded away, a Quantize of a requantized QDQ group
    if not results:
        return LayerPlan(op.name, op.kind, "", 0, "", 0, [], Mapping(unit="(view)"), ActionCounts())
    if all(not r.op.npu for r in results):
        reason = "; ".join(dict.fromkeys(r.op.cpu_reason for r in results if r.op.cpu_reason))
        return LayerPlan(
            op.name, op.kind, "cpu", 0, pair, 0, [], Mapping(unit="cpu", reason=reason), ActionCounts()
        )
    mac_unit = device.spec.mac_array.name
    vector_unit = device.spec.vector_units[0].name if device.spec.vector_units else mac_unit
    levels = {m.name: i for i, m in enumerate(device_levels)}
    counts = ActionCounts()
    tiles = []
    traffic: dict[tuple[str, str, str], int] = {}
    offchip = 0
    for r in results:
        if not r.op.npu:
            continue
        is_mac = r.op.type in MAC_TYPES
        streams = []
        for name, t in r.traffic.items():
            level = LEVEL_NAMES.get(name, name)
            if level not in levels:
                continue
            counts.add(level, "read", 8, t.read_bytes)
            counts.add(level, "write", 8, t.write_bytes)
            i = levels[level]
            if t.access_cycles:
                streams.append(Transfer("inputs", i, i, t.read_bytes + t.write_bytes, 8, t.access_cycles))
            if device_levels[i].kind == "off_chip":
                offchip += t.read_bytes + t.write_bytes
        for (name, action, operand), n in r.operands.items():
            level = LEVEL_NAMES.get(name, name)
            if level in levels:
                key = (level, action, operand)
                traffic[key] = traffic.get(key, 0) + n  # bytes: 8-bit elements, as the counts
        if is_mac:
            counts.add(mac_unit, "mac", pair, r.macs)
            counts.add(
                mac_unit,
                "idle",
                pair,
                max(0, (r.npu_cycles - r.weight_wait_cycles) * macs_per_cycle - r.macs),
            )
        else:
            counts.add(vector_unit, "op", r.op.ofm.bits, _elements(r.op.ofm.shape))
        tiles.append(Tile(r.npu_cycles, 0 if r.op.type in POOLS else r.macs, streams=tuple(streams)))
    main = next((r for r in results if r.op.npu), results[0])
    unit = mac_unit if any(r.op.type in MAC_TYPES for r in results if r.op.npu) else vector_unit
    cost = main.cost
    tile = {}
    if cost is not None:
        tile = {
            "ofm_block": "x".join(map(str, cost.config.ofm_block)),
            "traversal": cost.config.traversal,
            "weights": cost.buffering.lower() if cost.weights is not None else "none",
        }
    mapping = Mapping(
        unit=unit,
        dataflow="vela-5.2",
        loop_order=" + ".join(r.op.type for r in results if r.op.npu),
        tile=tile,
        n_tiles=len(tiles),
    )
    npu = sum(r.npu_cycles for r in results)
    return LayerPlan(
        op.name, op.kind, unit, mac_count(graph, op), pair, npu, tiles, mapping, counts, offchip, traffic
    )


def _elements(shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n
