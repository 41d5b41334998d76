"""Per layer: which unit runs it, where each tensor lives, the tiling and loop order, and the tile sequence.

The mapper is pure and deterministic: ``plan_graph(graph, device)`` returns one :class:`LayerPlan` per op,
in the graph's topological order. Each plan holds the tiles the simulator plays (compute cycles, DMA loads
before, stores after) and the :class:`Mapping` reported to the user. A device's ``layer_overhead_cycles``
is a first tile of every layer's unit, its ``inference_overhead_cycles`` a first plan of the inference
(:func:`overhead_plan`).

Tensor homes (:func:`assign_homes`):

* parameters (weights, biases) go to a level with ``persistent_weights_bytes`` (an on-chip parameter cache
  filled in layer order, loaded once, outside the timed inference) while it has room, otherwise to the
  outermost level homing ``weights`` (DRAM, flash or the host), and are streamed every inference;
* graph inputs and outputs live at the outermost level homing ``activations`` (they cross the device
boundary);
* an intermediate feature map lives at the innermost level homing ``activations`` that holds every
  activation tensor of its producer and of each consumer at once, else further out;
* reshape-like ops are views: their output lives where their input does and costs nothing.

A compute unit reads each operand from its read level (the innermost non-register level holding it). When
the home is further out, DMA moves tiles from the home straight to the read level (one hop), and outputs
go back the same way.

Tiling of MAC ops (:class:`~hwsim.schedule.systolic.Gemm`): a tile is a block of whole folds along the
dataflow's two spatial dimensions and a block of groups; the streamed dimension is never split, so the sum
of tile cycles is exactly the closed-form layer cycles (SCALE-Sim's). Candidates (powers of two of folds)
and both loop orders are scored by estimated latency (compute overlapped with transfers when the double
buffered working set fits, added to it otherwise); the working set at every level must fit its capacity
less what is homed there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

from hwsim.devices.model import Device
from hwsim.errors import ConfigError
from hwsim.schedule.counts import ActionCounts
from hwsim.schedule.plans import (  # noqa: F401 (re-exported: the mapper's output types)
    LayerPlan,
    Mapping,
    Tile,
    Transfer,
    _acts_in,
    _params,
    precision_of,
    tensor_bits,
    tensor_bytes,
    tensor_elems,
)
from hwsim.schedule.systolic import Dataflow, Gemm, dataflow_of, pipelined_ws_cycles
from hwsim.workload.graph import Graph, Op
from hwsim.workload.opdefs import MAC_OPS, loop_dims, schedule_kind

VIEW_OPS = frozenset({"reshape", "squeeze", "expand_dims", "flatten", "identity"})
MAX_STEPS = 24  # tiles are merged into at most this many simulated steps per layer
MAX_TILES = 4096


# ----------------------------------------------------------------------------------------------------------
# sizes and homes
# ----------------------------------------------------------------------------------------------------------


def act_bytes_by_op(graph: Graph) -> dict[str, int]:
    """Bytes of each op's activation inputs and outputs: what must be on one level at once to run it."""
    return {
        op.name: sum(tensor_bytes(graph.tensors[n]) for n in _acts_in(graph, op) + op.outputs)
        for op in graph.ops
    }


def assign_homes(graph: Graph, device: Device) -> dict[str, int]:
    """The level index each tensor lives at (see the module docstring)."""
    levels = device.levels
    w_homes, a_homes = device.home_levels("weights"), device.home_levels("activations")
    persistent = {i: m.persistent_weights_bytes for i, m in enumerate(levels) if m.persistent_weights_bytes}
    used = dict.fromkeys(persistent, 0)
    homes: dict[str, int] = {}
    for op in graph.ops:
        names = _params(graph, op)
        nbytes = sum(tensor_bytes(graph.tensors[n]) for n in names)
        placed = w_homes[0]
        for i in sorted(persistent, reverse=True):
            if used[i] + nbytes <= persistent[i]:
                used[i] += nbytes
                placed = i
                break
        for n in names:
            homes[n] = placed
    for n in graph.inputs:
        homes[n] = a_homes[0]
    act_bytes = act_bytes_by_op(graph)
    consumers: dict[str, list[Op]] = {}
    for op in graph.ops:
        for n in _acts_in(graph, op):
            consumers.setdefault(n, []).append(op)
    outputs = set(graph.outputs)
    for op in graph.ops:
        for n in op.outputs:
            if op.kind in VIEW_OPS and _acts_in(graph, op):
                homes[n] = homes.get(_acts_in(graph, op)[0], a_homes[0])
                continue
            if n in outputs:
                homes[n] = a_homes[0]
                continue
            need = max([act_bytes[op.name]] + [act_bytes[c.name] for c in consumers.get(n, [])])
            home = a_homes[0]
            for i in reversed(a_homes):
                size = levels[i].size_bytes
                if size is None or size - used.get(i, 0) >= need:
                    home = i
                    break
            homes[n] = home
    return homes


# ----------------------------------------------------------------------------------------------------------
# op -> GEMM view
# ----------------------------------------------------------------------------------------------------------


def gemm_of(
    graph: Graph, op: Op, dataflow: Dataflow, rows: int = 1, cols: int = 1, depthwise: str = "per_channel"
) -> Gemm | None:
    """The SCALE-Sim view of a MAC op (depthwise: one group per channel, except on dot-product arrays)."""
    d = loop_dims(graph, op)
    if not d:
        return None
    kind = schedule_kind(op.kind)
    if kind == "conv2d":
        return Gemm(d["B"] * d["OY"] * d["OX"], d["K"], d["FY"] * d["FX"], d["C"], d.get("G", 1))
    if kind == "depthwise_conv2d":
        channels = int(op.attrs.get("in_channels") or d["K"])
        mult = d["K"] // channels
        p, taps = d["B"] * d["OY"] * d["OX"], d["FY"] * d["FX"]
        if dataflow.name == "dot_product":  # each output-channel lane takes its own input channel
            return Gemm(p, d["K"], taps, 1, 1)
        n = min(rows // taps, cols // mult) if depthwise == "block_diagonal" else 1
        if n > 1:
            return Gemm(p, n * mult, taps, n, math.ceil(channels / n), p * d["K"] * taps)
        return Gemm(p, mult, taps, 1, channels)
    if kind == "transpose_conv2d":  # input pixels x channels times channels x (filters x taps), then col2im
        return Gemm(d["B"] * d["IY"] * d["IX"], d["K"] * d["FY"] * d["FX"], 1, d["C"], 1)
    if kind == "fully_connected":
        return Gemm(d["B"], d["K"], 1, d["C"], 1)
    if kind == "batch_matmul":
        return Gemm(d["M"], d["N"], 1, d["C"], d["B"])
    return None


# ----------------------------------------------------------------------------------------------------------
# planning
# ----------------------------------------------------------------------------------------------------------


def plan_graph(graph: Graph, device: Device) -> list[LayerPlan]:
    """One plan per op, in topological order, after the per-inference overhead when the device has one."""
    homes = assign_homes(graph, device)
    head = overhead_plan(device)
    return ([head] if head else []) + [plan_op(graph, op, device, homes) for op in graph.ops]


def plan_checked(graph: Graph, device: Device) -> list[LayerPlan]:
    """hwsim's own performance model: :func:`check_supported`, then :func:`plan_graph`."""
    check_supported(graph, device)
    hosts = [v.name for v in device.spec.vector_units if v.on_host]
    if hosts:
        raise ConfigError(
            f"{device.path or device.name}: vector unit {hosts[0]!r} is on_host, and hwsim's "
            "own "
            "mapper places no work on the host; choose a performance model that does "
            "(performance_model: edgetpu_compiler)"
        )
    return plan_graph(graph, device)


def overhead_plan(device: Device) -> LayerPlan | None:
    """The per-inference overhead (``inference_overhead_cycles``) as a plan on the MAC array, or None.

    It stands for the runtime's work around each inference (starting it, the host round trip), during
    which the device computes nothing; it has no action counts.
    """
    cycles = device.spec.inference_overhead_cycles
    if not cycles:
        return None
    unit = device.spec.mac_array.name
    return LayerPlan(
        "(inference overhead)",
        "overhead",
        unit,
        0,
        "",
        0,
        [Tile(cycles, 0)],
        Mapping(unit=unit, loop_order="(runtime)"),
        ActionCounts(),
    )


def plan_op(graph: Graph, op: Op, device: Device, homes: dict[str, int]) -> LayerPlan:
    """Map one op (see the module docstring); its unit first spends the device's ``layer_overhead_cycles``."""
    if op.kind in VIEW_OPS:
        return LayerPlan(op.name, op.kind, "", 0, "", 0, [], Mapping(unit="(view)"), ActionCounts())
    plan = _plan_op(graph, op, device, homes)
    overhead = device.spec.layer_overhead_cycles
    return replace(plan, tiles=[Tile(overhead, 0)] + plan.tiles) if overhead else plan


def _plan_op(graph: Graph, op: Op, device: Device, homes: dict[str, int]) -> LayerPlan:
    w_bits, a_bits, acc_bits = precision_of(graph, op)
    unit = device.unit_for(schedule_kind(op.kind))
    acts = _acts_in(graph, op)
    params = _params(graph, op)
    if not params and len(acts) > 1 and schedule_kind(op.kind) in MAC_OPS:
        acts, params = acts[:1], acts[1:]  # a matmul of two activations: the second (a KV cache, with its
        # scales) is the GEMM's weight side, read from its own home rather than from where the first lives
    sizes = {
        "weights": sum(tensor_bytes(graph.tensors[n]) for n in params),
        "inputs": sum(tensor_bytes(graph.tensors[n]) for n in acts),
        "outputs": sum(tensor_bytes(graph.tensors[n]) for n in op.outputs),
    }
    home = {
        "weights": max((homes[n] for n in params), default=0),
        "inputs": max((homes[n] for n in acts), default=0),
        "outputs": max((homes[n] for n in op.outputs), default=0),
    }
    read = {x: max(device.read_level(x), home[x]) if sizes[x] else home[x] for x in sizes}
    homed_bytes: dict[int, int] = {}
    for x in ("inputs", "outputs"):
        homed_bytes[home[x]] = homed_bytes.get(home[x], 0) + sizes[x]
    for i, m in enumerate(device.levels):
        if m.persistent_weights_bytes:
            homed_bytes[i] = homed_bytes.get(i, 0) + m.persistent_weights_bytes
    key = (
        tuple(sorted(sizes.items())),
        tuple(sorted(home.items())),
        tuple(sorted(read.items())),
        tuple(sorted(homed_bytes.items())),
    )
    if unit == device.spec.mac_array.name and schedule_kind(op.kind) in MAC_OPS:
        arr = device.spec.mac_array
        gemm = gemm_of(graph, op, dataflow_of(device), arr.rows, arr.columns, arr.depthwise)
        plan = _plan_mac(device, unit, gemm, (w_bits, a_bits, acc_bits), key)
        return replace(plan, op=op.name, kind=op.kind)
    elems_out = sum(tensor_elems(graph.tensors[n]) for n in op.outputs)
    elems_in = sum(tensor_elems(graph.tensors[n]) for n in acts)
    macs = 0
    d = loop_dims(graph, op)
    if d:
        macs = math.prod(d.values())
    passes = vector_passes(op, elems_in, elems_out)
    plan = _plan_vector(device, unit, elems_out, passes, macs, (w_bits, a_bits, acc_bits), key)
    return replace(plan, op=op.name, kind=op.kind)


def vector_passes(op: Op, elems_in: int, elems_out: int) -> int:
    """Element operations per output element on a vector unit."""
    if op.kind in ("avg_pool2d", "max_pool2d", "mean", "sum", "reduce_max", "arg_max"):
        kernel = op.attrs.get("kernel")
        if kernel and op.kind != "mean":
            return int(kernel[0]) * int(kernel[1])
        return max(1, -(-elems_in // max(elems_out, 1)))
    if op.kind in ("softmax", "logistic", "tanh", "hard_swish"):
        return 4  # exp/LUT, sum, reciprocal, scale: a few vector ops per element
    if op.kind == "resize_bilinear":
        return 4  # each output element weighs its four nearest input elements
    return 1


def _xfer_cycles(device: Device, t_src: int, t_dst: int, nbytes: int, count: int = 1) -> float:
    src, dst = device.levels[t_src], device.levels[t_dst]
    if t_src < t_dst:
        bw = min(src.read_bandwidth_bytes_per_cycle, dst.write_bandwidth_bytes_per_cycle)
        lat = src.read_latency_cycles
    else:
        bw = min(src.read_bandwidth_bytes_per_cycle, dst.write_bandwidth_bytes_per_cycle)
        lat = dst.write_latency_cycles
    return nbytes / bw + count * (lat + device.spec.dma.setup_cycles)


_DEPENDS = {"weights": {"W", "K", "g"}, "inputs": {"P", "W", "g"}, "outputs": {"P", "K", "g"}}


@dataclass(frozen=True)
class _Operands:
    """Where a MAC op's operands (weights, inputs, outputs) live: bytes, home and read levels, and whether
    a DMA moves them between the two."""

    sizes: dict[str, int]
    home: dict[str, int]
    read: dict[str, int]
    need_dma: dict[str, bool]


@dataclass(frozen=True)
class _Tiling:
    """One tiling of a MAC op's loops, by loop key: ``R`` (the array's row folds), ``C`` (its column
    folds), ``g`` (groups). ``tile``: folds per tile; ``counts``: tiles along each loop; ``order``: the loops,
    outermost first."""

    tile: dict[str, int]
    counts: dict[str, int]
    order: tuple[str, ...]

    @property
    def n_tiles(self) -> int:
        """Tiles in all."""
        return self.counts["R"] * self.counts["C"] * self.counts["g"]


@dataclass(frozen=True)
class _Estimate:
    """What a tiling is expected to cost: cycles, buffers per operand (2: double-buffered), whether its
    working set fits the levels that hold it, and that working set (bytes per level)."""

    cycles: float
    buffers: int
    fits: bool
    working_set: dict[int, int]


@lru_cache(maxsize=4096)
def _plan_mac(device: Device, unit: str, g: Gemm, bits: tuple[int, int, int], key: tuple) -> LayerPlan:
    w_bits, a_bits, acc_bits = bits
    sizes, home, read, homed_bytes = (dict(k) for k in key)
    spec = device.spec.mac_array
    df = dataflow_of(device)
    prec = device.precision(w_bits, a_bits)
    rate = prec.macs_per_pe_per_cycle
    rows, cols = spec.rows, spec.columns
    cols_eff = cols * int(rate) if rate >= 1 else cols
    slow = 1 if rate >= 1 else int(round(1 / rate))
    rf_total, cf_total = df.folds(g, rows, cols_eff)
    fold_cycles = df.fold_cycles(g, rows, cols_eff, spec.spatial_lanes) * slow
    head = 0  # cycles paid once per op, on its first tile
    if spec.weight_double_buffering:
        per_fold, once = pipelined_ws_cycles(g, rows, cols_eff)
        fold_cycles, head = per_fold * slow, once * slow
    compute_cycles = g.groups * rf_total * cf_total * fold_cycles + head
    dims_total = {"R": rf_total, "C": cf_total, "g": g.groups}
    dim_name = {"R": df.row_dim, "C": df.col_dim, "g": "g"}
    psum_split = df.row_dim == "W"

    levels = device.levels
    need_dma = {x: sizes[x] > 0 and home[x] != read[x] for x in sizes}
    operands = _Operands(sizes, home, read, need_dma)
    capacity = {}
    for lvl in sorted({read[x] for x in sizes if need_dma[x]}):
        size = levels[lvl].size_bytes
        capacity[lvl] = None if size is None else max(0, size - homed_bytes.get(lvl, 0))

    def tile_bytes(x: str, t: dict[str, int], partial: bool) -> int:
        frac = 1.0
        for d, n in t.items():
            if dim_name[d] in _DEPENDS[x] or (d == "g" and "g" in _DEPENDS[x]):
                frac *= n / dims_total[d]
        b = sizes[x] * frac
        if x == "outputs" and partial:
            b *= acc_bits / a_bits
        return int(math.ceil(b))

    def candidates(total: int) -> list[int]:
        out, n = [], 1
        while n < total:
            out.append(n)
            n *= 2
        return out + [total]

    best = None
    for nr in candidates(rf_total):
        for nc in candidates(cf_total):
            for ng in candidates(g.groups):
                counts = {
                    "R": math.ceil(rf_total / nr),
                    "C": math.ceil(cf_total / nc),
                    "g": math.ceil(g.groups / ng),
                }
                if counts["R"] * counts["C"] * counts["g"] > MAX_TILES:
                    continue
                partial = psum_split and nr < rf_total
                for order in (("g", "R", "C"), ("g", "C", "R")):
                    tiling = _Tiling({"R": nr, "C": nc, "g": ng}, counts, order)
                    est = _estimate(
                        device, tiling, dim_name, operands, capacity, tile_bytes, partial, compute_cycles
                    )
                    score = (not est.fits, est.cycles, tiling.n_tiles)  # fitting first, then fastest, fewest
                    if best is None or score < best[0]:
                        best = (score, tiling, est)
    assert best is not None
    _, tiling, est = best
    t = tiling.tile
    cycles, macs, streams = _mac_tiles(
        tiling, dim_name, operands, dims_total, g, fold_cycles, bits, psum_split
    )
    if head:
        cycles = cycles.copy()
        cycles[0] += head
    mapping = Mapping(
        unit=unit,
        dataflow=df.name,
        loop_order=" > ".join(dim_name[d] if d != "g" else "groups" for d in tiling.order),
        tile={f"{df.row_dim}_folds": t["R"], f"{df.col_dim}_folds": t["C"], "groups": t["g"]},
        n_tiles=tiling.n_tiles,
        buffers=est.buffers,
        homes={x: levels[home[x]].name for x in sizes if sizes[x]},
        working_set_bytes={levels[lvl].name: b for lvl, b in est.working_set.items()},
        capacity_bytes={levels[lvl].name: (c if c is not None else 0) for lvl, c in capacity.items()},
        fits=est.fits,
    )
    traffic: dict = {}
    counts_out = _mac_counts(
        device,
        unit,
        g,
        df,
        rows,
        cols_eff,
        rf_total,
        cf_total,
        compute_cycles,
        rate,
        bits,
        read,
        streams,
        traffic,
    )
    offchip = sum(int(s.nbytes[s.mask].sum()) for s in streams if min(s.src, s.dst) == 0)
    steps = _mac_steps(cycles, macs, streams)
    return LayerPlan(
        "",
        "",
        unit,
        g.macs,
        f"{w_bits}x{a_bits}",
        compute_cycles,
        steps,
        mapping,
        counts_out,
        offchip,
        traffic,
        free_bytes=_free_bytes(device, homed_bytes, est.working_set),
    )


def _free_bytes(device: Device, homed_bytes: dict[int, int], working_set: dict[int, int]) -> dict[int, int]:
    """Bytes a layer leaves unused at each sized level: its size less what is homed there (the layer's own
    feature maps, a parameter cache) and the layer's working set, as the mapper counts capacity."""
    return {
        i: max(0, m.size_bytes - homed_bytes.get(i, 0) - working_set.get(i, 0))
        for i, m in enumerate(device.levels)
        if m.size_bytes is not None
    }


def _estimate(
    device,
    tiling: _Tiling,
    dim_name: dict[str, str],
    operands: _Operands,
    capacity: dict,
    tile_bytes,
    partial: bool,
    compute_cycles: int,
) -> _Estimate:
    """The :class:`_Estimate` of one tiling (``partial``: its outputs leave as partial sums)."""
    counts, order = tiling.counts, tiling.order
    sizes, home, read = operands.sizes, operands.home, operands.read
    xfer = 0.0
    ws1: dict[int, int] = {}
    for x in ("weights", "inputs", "outputs"):
        if not operands.need_dma[x]:
            continue
        deps = {d for d in ("g", "R", "C") if dim_name[d] in _DEPENDS[x] or d == "g"}
        inner = max((order.index(d) for d in deps), default=-1)
        mult = math.prod(counts[d] for d in order[:inner] if d not in deps) if inner >= 0 else 1
        n_proj = math.prod(counts[d] for d in deps)
        nbytes = sizes[x] * mult
        n_xfers = n_proj * mult
        if x == "outputs" and partial:
            w_pos = order.index("R")
            if w_pos < inner:  # reduction outside: partial sums go out and come back
                nbytes = nbytes * 2
                n_xfers *= 2
        lvl = read[x]
        src, dst = (home[x], lvl) if x != "outputs" else (lvl, home[x])
        xfer += _xfer_cycles(device, src, dst, nbytes, n_xfers)
        ws1[lvl] = ws1.get(lvl, 0) + tile_bytes(x, tiling.tile, partial)
    engines = device.spec.dma.engines
    xfer_par = xfer / min(engines, 2)
    for nbuf in (2, 1):
        fits = all(capacity[lvl] is None or b * nbuf <= capacity[lvl] for lvl, b in ws1.items())
        if fits:
            per_tile = xfer_par / max(tiling.n_tiles, 1)
            if nbuf == 2:
                est = max(compute_cycles, xfer_par) + per_tile
            else:
                est = compute_cycles + xfer_par
            return _Estimate(est, nbuf, True, {lvl: b * nbuf for lvl, b in ws1.items()})
    return _Estimate(compute_cycles + xfer_par, 1, False, dict(ws1))


@dataclass(frozen=True)
class _Stream:
    """One kind of DMA transfer in a MAC op's tile sequence (fixed operand, levels and bits), as arrays over
    the tiles: whether each tile makes it and its bytes. ``pos`` is its place among a tile's transfers."""

    pos: int
    load: bool
    operand: str
    src: int
    dst: int
    bits: int
    mask: np.ndarray
    nbytes: np.ndarray


def _mac_tiles(
    tiling: _Tiling,
    dim_name: dict[str, str],
    operands: _Operands,
    totals: dict[str, int],
    g: Gemm,
    fold_cycles: int,
    bits: tuple[int, int, int],
    psum_split: bool,
) -> tuple[np.ndarray, np.ndarray, list[_Stream]]:
    """The exact tile sequence of a MAC op, as arrays over the tiles (cycles, MACs, transfer streams):
    loads when an operand's block changes, stores when the outputs' block does, partial sums reloaded when
    an outputs block comes back. ``totals``: folds (and groups) along each loop. Whole arrays at a time: a
    layer can have thousands of tiles."""
    w_bits, a_bits, acc_bits = bits
    t, counts, order = tiling.tile, tiling.counts, tiling.order
    sizes, home, read, need_dma = operands.sizes, operands.home, operands.read, operands.need_dma
    deps = {x: tuple(d for d in order if dim_name[d] in _DEPENDS[x] or d == "g") for x in sizes}
    n = math.prod(counts[d] for d in order)
    rem, idx = np.arange(n, dtype=np.int64), {}
    for d in reversed(order):
        idx[d], rem = rem % counts[d], rem // counts[d]
    ext = {d: np.minimum((idx[d] + 1) * t[d], totals[d]) - idx[d] * t[d] for d in order}
    frac = {d: ext[d] / totals[d] for d in order}

    def changed(x: str) -> np.ndarray:
        out = np.zeros(n, bool)
        out[0] = True
        for d in deps[x]:
            out[1:] |= idx[d][1:] != idx[d][:-1]
        return out

    def share(x: str) -> np.ndarray:
        prod = np.ones(n)
        for d in deps[x]:
            prod = prod * frac[d]
        return sizes[x] * prod

    streams = []
    for pos, x, x_bits in ((0, "weights", w_bits), (1, "inputs", a_bits)):
        if need_dma[x]:
            streams.append(
                _Stream(
                    pos, True, x, home[x], read[x], x_bits, changed(x), np.ceil(share(x)).astype(np.int64)
                )
            )
    if need_dma["outputs"]:
        code = np.zeros(n, np.int64)
        for d in deps["outputs"]:
            code = code * counts[d] + idx[d]
        uniq, first = np.unique(code, return_index=True)
        seen = first[np.searchsorted(uniq, code)] < np.arange(n)
        out_share = share("outputs")
        last = np.ones(n, bool)
        last[:-1] = code[1:] != code[:-1]
        final = idx["R"] == counts["R"] - 1 if psum_split else np.ones(n, bool)
        home_o, read_o = home["outputs"], read["outputs"]
        partial_bytes = np.ceil(out_share * acc_bits / a_bits).astype(np.int64)
        if psum_split:
            streams.append(
                _Stream(
                    2, True, "outputs", home_o, read_o, acc_bits, seen & changed("outputs"), partial_bytes
                )
            )
        streams.append(_Stream(3, False, "outputs", read_o, home_o, acc_bits, last & ~final, partial_bytes))
        streams.append(
            _Stream(
                3,
                False,
                "outputs",
                read_o,
                home_o,
                a_bits,
                last & final,
                np.ceil(out_share * a_bits / a_bits).astype(np.int64),
            )
        )
    cycles = ext["g"] * ext["R"] * ext["C"] * fold_cycles
    macs = np.rint(g.macs * frac["g"] * frac["R"] * frac["C"]).astype(np.int64)
    return cycles, macs, streams


def _mac_steps(cycles: np.ndarray, macs: np.ndarray, streams: list[_Stream]) -> list[Tile]:
    """The tiles merged into at most MAX_STEPS steps, as :func:`_merge` merges a list of tiles (totals kept
    exactly; each step's transfers summed per operand, levels and bits, in order of first appearance)."""
    n = len(cycles)
    per = 1 if n <= MAX_STEPS else math.ceil(n / MAX_STEPS)
    starts = np.arange(0, n, per)
    firsts = []
    for s in streams:
        where = np.append(np.flatnonzero(s.mask), n)  # n: none from here on
        first = where[np.searchsorted(where, starts)]
        sums = np.add.reduceat(np.where(s.mask, s.nbytes, 0), starts)
        firsts.append((first, sums))
    steps = []
    for c, start in enumerate(starts.tolist()):
        end = min(start + per, n)
        present = sorted(
            (int(first[c]), s.pos, i)
            for i, (s, (first, _)) in enumerate(zip(streams, firsts))
            if first[c] < end
        )
        loads: dict[tuple, int] = {}
        stores: dict[tuple, int] = {}
        for _, _, i in present:
            s = streams[i]
            into = loads if s.load else stores
            key = (s.operand, s.src, s.dst, s.bits)
            into[key] = into.get(key, 0) + int(firsts[i][1][c])
        steps.append(
            Tile(
                int(cycles[start:end].sum()),
                int(macs[start:end].sum()),
                tuple(Transfer(o, a, b, nb, bi) for (o, a, b, bi), nb in loads.items()),
                tuple(Transfer(o, a, b, nb, bi) for (o, a, b, bi), nb in stores.items()),
            )
        )
    return steps


def _stream_counts(device: Device, counts: ActionCounts, streams: list[_Stream], traffic: dict) -> None:
    """:func:`_dma_counts` of the tiles the streams describe: same sums, keys first added in the same
    order."""
    levels = device.levels
    order = []
    for s in streams:
        elems = np.where(s.mask, s.nbytes * 8 // s.bits, 0)
        nonzero = np.flatnonzero(elems)
        if len(nonzero):
            order.append((int(nonzero[0]), s.pos, s, int(elems.sum())))
    for _, _, s, elems in sorted(order, key=lambda item: item[:2]):
        counts.add(levels[s.src].name, "read", s.bits, elems)
        counts.add(levels[s.dst].name, "write", s.bits, elems)
        _add(traffic, (levels[s.src].name, "read", s.operand), elems)
        _add(traffic, (levels[s.dst].name, "write", s.operand), elems)


def _merge(tiles: list[Tile]) -> list[Tile]:
    """Merge consecutive tiles into at most MAX_STEPS steps (totals kept exactly)."""
    if len(tiles) <= MAX_STEPS:
        return tiles
    per = math.ceil(len(tiles) / MAX_STEPS)
    out = []
    for start in range(0, len(tiles), per):
        chunk = tiles[start : start + per]
        out.append(
            Tile(
                sum(t.cycles for t in chunk),
                sum(t.macs for t in chunk),
                _sum_transfers([tr for t in chunk for tr in t.loads]),
                _sum_transfers([tr for t in chunk for tr in t.stores]),
            )
        )
    return out


def _sum_transfers(transfers: list[Transfer]) -> tuple[Transfer, ...]:
    acc: dict[tuple, int] = {}
    for tr in transfers:
        k = (tr.operand, tr.src, tr.dst, tr.bits)
        acc[k] = acc.get(k, 0) + tr.nbytes
    return tuple(Transfer(o, s, d, b, bits) for (o, s, d, bits), b in acc.items())


def _dma_counts(device: Device, counts: ActionCounts, tiles: list[Tile], traffic: dict) -> None:
    levels = device.levels
    for tile in tiles:
        for tr in tile.loads + tile.stores:
            elems = tr.nbytes * 8 // tr.bits
            counts.add(levels[tr.src].name, "read", tr.bits, elems)
            counts.add(levels[tr.dst].name, "write", tr.bits, elems)
            _add(traffic, (levels[tr.src].name, "read", tr.operand), elems)
            _add(traffic, (levels[tr.dst].name, "write", tr.operand), elems)


def _add(traffic: dict, key: tuple[str, str, str], elems: int) -> None:
    """Add ``elems`` element accesses of one operand at one level to a per-operand traffic dict."""
    if elems:
        traffic[key] = traffic.get(key, 0) + int(elems)


def _mac_counts(
    device,
    unit,
    g: Gemm,
    df: Dataflow,
    rows,
    cols,
    rf_total,
    cf_total,
    compute_cycles,
    rate,
    bits,
    read,
    streams: list[_Stream],
    traffic: dict,
) -> ActionCounts:
    w_bits, a_bits, acc_bits = bits
    counts = ActionCounts()
    pair = f"{w_bits}x{a_bits}"
    spec = device.spec.mac_array
    counts.add(unit, "mac", pair, g.macs)
    slots = int(spec.rows * spec.columns * spec.spatial_lanes * compute_cycles * rate)
    counts.add(unit, "idle", pair, max(0, slots - g.macs))
    # Operand reads from the read level, as SCALE-Sim counts SRAM reads: each operand is re-read once per
    # fold of the spatial dimension it does not depend on.
    folds_of = {df.row_dim: rf_total, df.col_dim: cf_total}
    levels = device.levels
    per_group = {"inputs": g.P * g.W, "weights": g.W * g.K, "outputs": g.P * g.K}
    for x, x_bits in (("inputs", a_bits), ("weights", w_bits)):
        other = [d for d in folds_of if d not in _DEPENDS[x]]
        n = g.groups * per_group[x] * math.prod(folds_of[d] for d in other)
        counts.add(levels[read[x]].name, "read", x_bits, n)
        _add(traffic, (levels[read[x]].name, "read", x), n)
    w_folds = folds_of.get("W", 1)
    outs = g.groups * per_group["outputs"]
    out_level = levels[read["outputs"]].name
    counts.add(out_level, "write", a_bits, outs)
    _add(traffic, (out_level, "write", "outputs"), outs * w_folds)
    if w_folds > 1:
        counts.add(out_level, "write", acc_bits, outs * (w_folds - 1))
        counts.add(out_level, "read", acc_bits, outs * (w_folds - 1))
        _add(traffic, (out_level, "read", "outputs"), outs * (w_folds - 1))
    rf = device.register_file
    if rf is not None:
        counts.add(rf.name, "read", w_bits, g.macs)
        counts.add(rf.name, "read", a_bits, g.macs)
        counts.add(rf.name, "read", acc_bits, g.macs)
        counts.add(rf.name, "write", acc_bits, g.macs)
    _stream_counts(device, counts, streams, traffic)
    return counts


@lru_cache(maxsize=4096)
def _plan_vector(
    device: Device, unit: str, elems_out: int, passes: int, macs: int, bits: tuple[int, int, int], key: tuple
) -> LayerPlan:
    w_bits, a_bits, acc_bits = bits
    sizes, home, read, homed_bytes = (dict(k) for k in key)
    vu = device.vector_unit(unit) if unit != device.spec.mac_array.name else None
    levels = device.levels
    if vu is not None:
        lanes = max(1, vu.vector_bits // a_bits) * vu.count
        if macs:
            cycles = math.ceil(macs / (lanes * vu.macs_per_lane_per_cycle))
        else:
            cycles = math.ceil(elems_out * passes / lanes)
    else:  # an op routed to the MAC array that is not a GEMM: use its columns as lanes
        lanes = device.spec.mac_array.columns * device.spec.mac_array.spatial_lanes
        cycles = math.ceil(max(elems_out * passes, macs) / lanes)
    cycles = max(cycles, 1)
    need_dma = {x: sizes[x] > 0 and home[x] != read[x] for x in sizes}
    ws_total: dict[int, int] = {}
    for x in ("inputs", "outputs"):
        if need_dma[x]:
            ws_total[read[x]] = ws_total.get(read[x], 0) + sizes[x]
    if need_dma["weights"]:
        ws_total[read["weights"]] = ws_total.get(read["weights"], 0) + sizes["weights"]
    capacity = {
        lvl: (
            None
            if levels[lvl].size_bytes is None
            else max(0, levels[lvl].size_bytes - homed_bytes.get(lvl, 0))
        )
        for lvl in ws_total
    }
    n_tiles, nbuf, fits = 1, 1, True
    while True:
        if all(capacity[lvl] is None or -(-b // n_tiles) * 2 <= capacity[lvl] for lvl, b in ws_total.items()):
            nbuf = 2
            break
        if n_tiles >= 1024:
            fits = all(
                capacity[lvl] is None or -(-b // n_tiles) <= capacity[lvl] for lvl, b in ws_total.items()
            )
            break
        n_tiles *= 2
    if nbuf == 2 and n_tiles == 1 and ws_total:
        n_tiles = min(8, max(1, elems_out // 64))  # split so loads overlap compute
    tiles = []
    for i in range(n_tiles):
        lo, hi = i * elems_out // n_tiles, (i + 1) * elems_out // n_tiles
        frac = (hi - lo) / elems_out if elems_out else 1 / n_tiles
        loads = tuple(
            Transfer(x, home[x], read[x], math.ceil(sizes[x] * frac), w_bits if x == "weights" else a_bits)
            for x in ("weights", "inputs")
            if need_dma[x] and (x != "weights" or i == 0)
        )
        if need_dma["weights"] and i == 0:
            loads = tuple(
                tr
                if tr.operand != "weights"
                else Transfer("weights", tr.src, tr.dst, sizes["weights"], w_bits)
                for tr in loads
            )
        stores = (
            (
                Transfer(
                    "outputs", read["outputs"], home["outputs"], math.ceil(sizes["outputs"] * frac), a_bits
                ),
            )
            if need_dma["outputs"]
            else ()
        )
        c = (i + 1) * cycles // n_tiles - i * cycles // n_tiles
        tiles.append(Tile(c, (i + 1) * macs // n_tiles - i * macs // n_tiles, loads, stores))
    counts = ActionCounts()
    if macs:
        counts.add(unit, "mac", f"{w_bits}x{a_bits}", macs)
    else:
        counts.add(unit, "op", a_bits, elems_out * passes)
    traffic: dict = {}
    in_elems = sizes["inputs"] * 8 // a_bits
    counts.add(levels[read["inputs"]].name, "read", a_bits, in_elems)
    _add(traffic, (levels[read["inputs"]].name, "read", "inputs"), in_elems)
    if sizes["weights"]:
        counts.add(levels[read["weights"]].name, "read", w_bits, sizes["weights"] * 8 // w_bits)
        _add(traffic, (levels[read["weights"]].name, "read", "weights"), sizes["weights"] * 8 // w_bits)
    counts.add(levels[read["outputs"]].name, "write", a_bits, sizes["outputs"] * 8 // a_bits)
    _add(traffic, (levels[read["outputs"]].name, "write", "outputs"), sizes["outputs"] * 8 // a_bits)
    _dma_counts(device, counts, tiles, traffic)
    mapping = Mapping(
        unit=unit,
        loop_order="elements",
        tile={"elements": -(-elems_out // n_tiles)},
        n_tiles=n_tiles,
        buffers=nbuf,
        homes={x: levels[home[x]].name for x in sizes if sizes[x]},
        working_set_bytes={levels[lvl].name: -(-b // n_tiles) * nbuf for lvl, b in ws_total.items()},
        capacity_bytes={levels[lvl].name: c or 0 for lvl, c in capacity.items()},
        fits=fits,
    )
    offchip = sum(tr.nbytes for tile in tiles for tr in tile.loads + tile.stores if min(tr.src, tr.dst) == 0)
    working_set = {lvl: -(-b // n_tiles) * nbuf for lvl, b in ws_total.items()}
    return LayerPlan(
        "",
        "",
        unit,
        macs,
        f"{w_bits}x{a_bits}",
        cycles,
        _merge(tiles),
        mapping,
        counts,
        offchip,
        traffic,
        free_bytes=_free_bytes(device, homed_bytes, working_set),
    )


def check_supported(graph: Graph, device: Device) -> None:
    """Raise a ConfigError naming the first op no unit of ``device`` runs."""
    for op in graph.ops:
        if op.kind not in VIEW_OPS:
            try:
                device.unit_for(schedule_kind(op.kind))
            except ConfigError as exc:
                raise ConfigError(f"{exc} (op {op.name!r} of {graph.source})") from None
