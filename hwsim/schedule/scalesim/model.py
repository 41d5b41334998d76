"""The ``scalesim-3.0`` performance model: every MAC layer timed and counted by SCALE-Sim 3.0.0's memory
system.

Chosen by ``memory_model: scalesim`` (device field, ``--memory-model scalesim``). Each MAC op becomes its
SCALE-Sim layers (:mod:`.layers`), each run through :func:`.layer_sim.simulate_layer`; the op's plan is one
tile of the layers' demand lines (the compute) after the stalls SCALE-Sim found (``wait_cycles``), so the
simulator's cycles for a layer are SCALE-Sim's "Total Cycles" + 1, summed over its depthwise channels. Ops
SCALE-Sim does not model (pooling, elementwise) keep hwsim's own plan on the vector unit.

The action counts are SCALE-Sim's: SRAM reads and writes as its demand matrices make them (window elements
past the IFMAP, and the ``R + C`` per OS fold, included), SRAM fills and drains equal to the DRAM reads and
writes, DRAM counts with their line padding; MACs, idle PE slots and register-file accesses as hwsim counts
them for any systolic layer.
"""

from __future__ import annotations

from functools import lru_cache

from hwsim.devices.model import Device
from hwsim.devices.schema import scalesim_memory_problem
from hwsim.errors import ConfigError
from hwsim.schedule.counts import ActionCounts
from hwsim.schedule.mapper import (
    VIEW_OPS,
    LayerPlan,
    Mapping,
    Tile,
    assign_homes,
    check_supported,
    plan_op,
    precision_of,
)
from hwsim.schedule.scalesim.demand import Offsets, demand_order, skew_order
from hwsim.schedule.scalesim.layer_sim import LayerReport, MemoryConfig, simulate_layer
from hwsim.schedule.scalesim.layers import ScaleSimLayer, layers_of
from hwsim.schedule.scalesim.prefetch import diagonal_slots
from hwsim.workload.graph import Graph
from hwsim.workload.opdefs import MAC_OPS, schedule_kind

DATAFLOW_CODES = {"output_stationary": "os", "weight_stationary": "ws", "input_stationary": "is"}


def memory_config(device: Device) -> MemoryConfig:
    """SCALE-Sim's memory parameters of a device (its three operand SRAMs and its ``scalesim`` section)."""
    spec = device.spec
    ss = spec.scalesim
    sizes = [
        int(device.levels[device.read_level(x)].size_bytes or 0) for x in ("inputs", "weights", "outputs")
    ]
    return MemoryConfig(
        spec.mac_array.rows,
        spec.mac_array.columns,
        DATAFLOW_CODES[spec.mac_array.dataflow],
        *sizes,
        ss.interface_bandwidth == "USER",
        ss.ifmap_words_per_cycle,
        ss.filter_words_per_cycle,
        ss.ofmap_words_per_cycle,
        Offsets(ss.ifmap_offset, ss.filter_offset, ss.ofmap_offset),
    )


@lru_cache(maxsize=4096)
def _simulate_shape(shape: tuple[int, ...], cfg: MemoryConfig) -> LayerReport:
    return simulate_layer(ScaleSimLayer("", *shape), cfg)


def clear_caches() -> None:
    """Forget the layer results and demand orders kept between runs (a benchmark's cold start)."""
    _simulate_shape.cache_clear()
    skew_order.cache_clear()
    demand_order.cache_clear()
    diagonal_slots.cache_clear()


def _shape(layer: ScaleSimLayer) -> tuple[int, ...]:
    return (
        layer.ifmap_h,
        layer.ifmap_w,
        layer.filter_h,
        layer.filter_w,
        layer.channels,
        layer.filters,
        layer.stride_h,
        layer.stride_w,
    )


def _reports(layers: list[ScaleSimLayer], cfg: MemoryConfig) -> list[LayerReport]:
    """Each layer's report, computed once per layer shape: a run of identical layers (a depthwise op's
    channels) shares one report object."""
    out: list[LayerReport] = []
    last_shape = None
    for layer in layers:
        shape = _shape(layer)
        if shape != last_shape:
            report, last_shape = _simulate_shape(shape, cfg), shape
        out.append(report)
    return out


def plan_graph(graph: Graph, device: Device) -> list[LayerPlan]:
    """One plan per op: SCALE-Sim's for MAC layers, hwsim's own for the rest."""
    problem = scalesim_memory_problem(device.spec)
    if problem:
        raise ConfigError(f"{device.path or device.name}: performance model scalesim-3.0: {problem}")
    check_supported(graph, device)
    cfg = memory_config(device)
    homes = assign_homes(graph, device)
    plans = []
    for op in graph.ops:
        kind = schedule_kind(op.kind)
        unit = device.unit_for(kind) if op.kind not in VIEW_OPS else ""
        if kind in MAC_OPS and unit == device.spec.mac_array.name:
            bits = precision_of(graph, op)
            if bits[:2] != (8, 8):
                raise ConfigError(
                    f"op {op.name!r} of {graph.source}: memory_model scalesim counts one-byte "
                    f"words (SCALE-Sim's word_size = 1); this op has {bits[0]}-bit weights and "
                    f"{bits[1]}-bit activations"
                )
            reports = _reports(layers_of(graph, op), cfg)
            plans.append(_plan(device, cfg, op.name, op.kind, unit, bits[2], reports))
        else:
            plans.append(plan_op(graph, op, device, homes))
    return plans


def _plan(
    device: Device,
    cfg: MemoryConfig,
    name: str,
    kind: str,
    unit: str,
    acc_bits: int,
    reports: list[LayerReport],
) -> LayerPlan:
    """A MAC op's plan from its SCALE-Sim layers' reports."""
    groups: dict[int, list] = {}  # one entry per distinct report: [report, how many layers share it]
    for r in reports:
        groups.setdefault(id(r), [r, 0])[1] += 1
    lines = sum(r.lines * n for r, n in groups.values())
    # SCALE-Sim's Total Cycles is the last line's cycle
    served = sum((r.total_cycles + 1) * n for r, n in groups.values())
    macs = sum(r.macs * n for r, n in groups.values())
    levels = device.levels
    names = {x: levels[device.read_level(x)].name for x in ("inputs", "weights", "outputs")}
    dram = levels[0].name
    sram_if, sram_f, sram_o = (
        sum(getattr(r, k)[2] * n for r, n in groups.values())
        for k in ("sram_ifmap", "sram_filter", "sram_ofmap")
    )
    dram_if, dram_f, dram_o = (
        sum(getattr(r, k)[2] * n for r, n in groups.values())
        for k in ("dram_ifmap", "dram_filter", "dram_ofmap")
    )
    traffic = {
        (names["inputs"], "read", "inputs"): sram_if,
        (names["inputs"], "write", "inputs"): dram_if,
        (names["weights"], "read", "weights"): sram_f,
        (names["weights"], "write", "weights"): dram_f,
        (names["outputs"], "write", "outputs"): sram_o,
        (names["outputs"], "read", "outputs"): dram_o,
        (dram, "read", "inputs"): dram_if,
        (dram, "read", "weights"): dram_f,
        (dram, "write", "outputs"): dram_o,
    }
    traffic = {k: v for k, v in traffic.items() if v}
    counts = ActionCounts()
    counts.add(unit, "mac", "8x8", macs)
    counts.add(unit, "idle", "8x8", max(0, cfg.rows * cfg.cols * lines - macs))
    for (level, action, _), n in traffic.items():
        counts.add(level, action, 8, n)
    rf = device.register_file
    if rf is not None:
        for action, bits in (("read", 8), ("read", 8), ("read", acc_bits), ("write", acc_bits)):
            counts.add(rf.name, action, bits, macs)
    mapping = Mapping(
        unit=unit,
        dataflow=device.spec.mac_array.dataflow,
        loop_order="SCALE-Sim 3.0.0 folds",
        tile={"scalesim_layers": len(reports)},
        n_tiles=len(reports),
        buffers=2,
        homes={"weights": dram, "inputs": dram, "outputs": dram},
        working_set_bytes={
            names[x]: s
            for x, s in zip(
                ("inputs", "weights", "outputs"),
                (cfg.ifmap_sram_bytes, cfg.filter_sram_bytes, cfg.ofmap_sram_bytes),
            )
        },
        capacity_bytes={
            names[x]: s
            for x, s in zip(
                ("inputs", "weights", "outputs"),
                (cfg.ifmap_sram_bytes, cfg.filter_sram_bytes, cfg.ofmap_sram_bytes),
            )
        },
    )
    tile = Tile(lines, macs, wait_cycles=served - lines)
    return LayerPlan(
        name,
        kind,
        unit,
        macs,
        "8x8",
        lines,
        [tile],
        mapping,
        counts,
        dram_if + dram_f + dram_o,
        traffic,
        tuple(reports),
    )
