"""The discrete-event simulation (SimPy): DMA engines, the MAC array and vector units sharing memory ports.

Layers run one after another, in topological order. Within a layer three kinds of process run at once:

* a **loader** walks the tiles in order; for each it takes an input buffer slot (two when the mapper
  double-buffers, one otherwise), then starts one transfer per operand the tile needs and waits for them;
* the **compute** process waits for its tile's data, holds its unit for the tile's cycles (after the tile's
  ``wait_cycles``, stalls a memory model computed itself, such as SCALE-Sim's), frees the input slot,
  and hands the tile's output to a **store** transfer (which holds an output slot until written);
* every transfer holds a DMA engine, a read port of its source level and a write port of its destination
  level, always acquired in that order (engine, then ports by level index), for
  ``latency + setup + ceil(bytes / min(source read, destination write bandwidth))`` cycles;
* a tile's **streams** (feature maps the unit fetches through its own port while it computes) each hold
  their level's read port for ``ceil(bytes / read bandwidth)`` cycles (or the cycles the performance model
  gives them), started with the compute; the tile ends when the compute and all its streams have.

With the device's ``dma.prefetch_next_weights``, a layer's loader, once its last tile's loads are done,
starts a **prefetch** of the next layer's first-tile weight loads (as many bytes as the layer's
``free_bytes`` leave room for at their destination level), which then runs under the layer's remaining
compute, contending for the same engines and ports; the next layer's first tile loads only the rest, and
waits for the prefetch. The bytes moved are the same, only earlier. The runtime's per-inference overhead
is not a layer: nothing is prefetched under it.

Contention (engines, ports) and stalls therefore come out of the simulation: a layer's memory stall is its
elapsed cycles less the cycles its unit computed. SimPy orders simultaneous events by scheduling order and
every process is created in tile order, so a run is deterministic.
"""

from __future__ import annotations

import math
from dataclasses import replace

import simpy

from hwsim.devices.model import Device
from hwsim.schedule.mapper import LayerPlan, Transfer
from hwsim.schedule.trace import Trace, TraceEvent


class Simulator:
    """Simulate a list of layer plans on a device; :meth:`run` returns per-layer ``(start, end, busy)``."""

    def __init__(self, device: Device, plans: list[LayerPlan], record_trace: bool = True) -> None:
        self.device = device
        self.plans = plans
        self.env = simpy.Environment()
        env = self.env
        levels = device.levels
        self.dma = simpy.Resource(env, capacity=device.spec.dma.engines)
        self.free_engines = list(range(device.spec.dma.engines))
        self.read_ports = [simpy.Resource(env, capacity=m.read_ports) for m in levels]
        self.write_ports = [simpy.Resource(env, capacity=m.write_ports) for m in levels]
        units = [device.spec.mac_array.name] + [v.name for v in device.spec.vector_units]
        self.units = {u: simpy.Resource(env, capacity=1) for u in units}
        self.record = record_trace
        self.events: list[TraceEvent] = []
        self.layer_times: list[tuple[int, int, int]] = []
        # plan index -> (the prefetch process, bytes prefetched per load of the plan's first tile)
        self.prefetched: dict[int, tuple[simpy.events.Process, tuple[int, ...]]] = {}

    def run(self) -> list[tuple[int, int, int]]:
        """Run every layer; return ``(start_cycle, end_cycle, compute_busy_cycles)`` per layer."""
        self.env.process(self._network())
        self.env.run()
        return self.layer_times

    def trace(self) -> Trace:
        """The recorded events, sorted by start time then resource (stable)."""
        events = sorted(self.events, key=lambda e: (e.t_start, e.resource, e.t_end))
        return Trace(events, self.device.clock_mhz)

    # -- processes -------------------------------------------------------------------------------------
    def _network(self):
        for index, plan in enumerate(self.plans):
            start = self.env.now
            busy = 0
            if plan.tiles:
                busy = yield self.env.process(self._layer(index))
            self.layer_times.append((start, self.env.now, busy))

    def _layer(self, index: int):
        env = self.env
        plan = self.plans[index]
        nbuf = plan.mapping.buffers
        in_slots = simpy.Container(env, capacity=nbuf, init=nbuf)
        out_slots = simpy.Container(env, capacity=nbuf, init=nbuf)
        ready = [env.event() for _ in plan.tiles]
        env.process(self._loader(index, in_slots, ready))
        unit = self.units[plan.unit]
        stores = []
        busy = 0
        for i, tile in enumerate(plan.tiles):
            yield ready[i]
            if tile.stores:
                yield out_slots.get(1)
            with unit.request() as req:
                yield req
                if tile.wait_cycles:
                    w0 = env.now
                    yield env.timeout(tile.wait_cycles)
                    if self.record:
                        self.events.append(TraceEvent(plan.unit, "stall", plan.op, w0, env.now))
                t0 = env.now
                if tile.streams:
                    streams = [env.process(self._stream(plan.op, t)) for t in tile.streams]
                    yield env.timeout(tile.cycles)
                    t1 = env.now
                    yield env.all_of(streams)
                else:
                    yield env.timeout(tile.cycles)
                    t1 = env.now
            busy += tile.cycles
            if self.record:
                self.events.append(TraceEvent(plan.unit, "compute", plan.op, t0, t1, macs=tile.macs))
            yield in_slots.put(1)
            if tile.stores:
                stores.append(env.process(self._store(plan, tile.stores, out_slots)))
        if stores:
            yield env.all_of(stores)
        return busy

    def _loader(self, index: int, in_slots, ready):
        env = self.env
        plan = self.plans[index]
        for i, tile in enumerate(plan.tiles):
            yield in_slots.get(1)
            loads, waits = tile.loads, []
            if i == 0 and index in self.prefetched:
                process, done = self.prefetched.pop(index)
                loads = tuple(replace(t, nbytes=t.nbytes - n) for t, n in zip(loads, done) if t.nbytes > n)
                waits.append(process)
            if loads or waits:
                if len(loads) == 1 and not waits:
                    yield env.process(self._transfer(plan.op, "load", loads[0]))
                else:
                    procs = [env.process(self._transfer(plan.op, "load", t)) for t in loads]
                    yield env.all_of(procs + waits)
            ready[i].succeed()
        if self.device.spec.dma.prefetch_next_weights and plan.kind != "overhead":
            self._start_prefetch(index)

    def _start_prefetch(self, index: int) -> None:
        """Prefetch the weight loads of the first tile of the layer after ``self.plans[index]`` (the next
        plan with tiles), as far as ``free_bytes`` of layer ``index`` allow at each destination level."""
        following = next((j for j in range(index + 1, len(self.plans)) if self.plans[j].tiles), None)
        if following is None:
            return
        room = dict(self.plans[index].free_bytes)
        done, parts = [], []
        for t in self.plans[following].tiles[0].loads:
            n = min(t.nbytes, room.get(t.dst, 0)) if t.operand == "weights" else 0
            if n:
                room[t.dst] -= n
                parts.append(replace(t, nbytes=n))
            done.append(n)
        if parts:
            op = self.plans[following].op
            process = self.env.all_of([self.env.process(self._transfer(op, "prefetch", t)) for t in parts])
            self.prefetched[following] = (process, tuple(done))

    def _store(self, plan: LayerPlan, transfers, out_slots):
        for t in transfers:
            yield self.env.process(self._transfer(plan.op, "store", t))
        yield out_slots.put(1)

    def _transfer(self, op: str, action: str, t: Transfer):
        env = self.env
        levels = self.device.levels
        src, dst = levels[t.src], levels[t.dst]
        bandwidth = min(src.read_bandwidth_bytes_per_cycle, dst.write_bandwidth_bytes_per_cycle)
        latency = dst.write_latency_cycles if action == "store" else src.read_latency_cycles
        cycles = latency + self.device.spec.dma.setup_cycles + math.ceil(t.nbytes / bandwidth)
        with self.dma.request() as engine_req:
            yield engine_req
            engine = self.free_engines.pop(0)
            first, second = sorted([(t.src, "r"), (t.dst, "w")])
            with self._port(*first).request() as p1:
                yield p1
                with self._port(*second).request() as p2:
                    yield p2
                    t0 = env.now
                    yield env.timeout(cycles)
            self.free_engines.append(engine)
            self.free_engines.sort()
        if self.record:
            self.events.append(
                TraceEvent(
                    f"dma{engine}",
                    action,
                    op,
                    t0,
                    env.now,
                    nbytes=t.nbytes,
                    detail=f"{t.operand} {src.name}->{dst.name}",
                )
            )

    def _stream(self, op: str, t: Transfer):
        env = self.env
        level = self.device.levels[t.src]
        with self.read_ports[t.src].request() as port:
            yield port
            t0 = env.now
            yield env.timeout(
                t.cycles
                if t.cycles is not None
                else math.ceil(t.nbytes / level.read_bandwidth_bytes_per_cycle)
            )
        if self.record:
            self.events.append(
                TraceEvent(
                    f"{level.name} port",
                    "stream",
                    op,
                    t0,
                    env.now,
                    nbytes=t.nbytes,
                    detail=f"{t.operand} {level.name}",
                )
            )

    def _port(self, level: int, kind: str) -> simpy.Resource:
        return self.read_ports[level] if kind == "r" else self.write_ports[level]
