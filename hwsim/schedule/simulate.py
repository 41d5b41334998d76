"""The public entry point: ``simulate(model, device) -> SimResult`` (map, then run the event simulation).

>>> from hwsim.schedule.simulate import simulate
>>> result = simulate("workloads/tiny.yaml", "edge_tpu_like")          # doctest: +SKIP
>>> print(result.table())                                               # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hwsim.devices.model import Device, load_device
from hwsim.schedule.counts import ActionCounts
from hwsim.schedule.direct import layer_times, moves_no_data
from hwsim.schedule.plans import LayerPlan, Mapping
from hwsim.schedule.models import plan
from hwsim.schedule.trace import Trace
from hwsim.workload.graph import Graph


@dataclass(frozen=True)
class LayerResult:
    """Timing, utilisation, traffic and action counts of one op."""

    op: str
    kind: str
    unit: str
    precision: str
    macs: int
    start_cycle: int
    cycles: int
    compute_cycles: int
    stall_cycles: int
    mac_utilization: float
    offchip_bytes: int
    counts: ActionCounts
    mapping: Mapping
    traffic: dict = field(default_factory=dict)  # (level, "read"|"write", operand) -> elements
    reports: tuple = ()  # SCALE-Sim's report rows of this op (memory_model scalesim)

    def time_us(self, clock_mhz: float) -> float:
        """Elapsed time in microseconds."""
        return self.cycles / clock_mhz


@dataclass
class SimResult:
    """Per-layer results, totals, the trace and the device they were simulated on."""

    device: Device
    model: str
    layers: list[LayerResult]
    trace: Trace
    totals: ActionCounts = field(default_factory=ActionCounts)

    @property
    def cycles(self) -> int:
        """End-to-end cycles."""
        return sum(layer.cycles for layer in self.layers)

    @property
    def time_ms(self) -> float:
        """End-to-end latency in milliseconds."""
        return self.cycles / self.device.clock_mhz / 1000

    @property
    def compute_cycles(self) -> int:
        """Cycles the compute units were busy, summed over layers."""
        return sum(layer.compute_cycles for layer in self.layers)

    @property
    def stall_cycles(self) -> int:
        """Cycles layers waited on memory, summed."""
        return sum(layer.stall_cycles for layer in self.layers)

    @property
    def macs(self) -> int:
        """Total useful MACs."""
        return sum(layer.macs for layer in self.layers)

    @property
    def mac_utilization(self) -> float:
        """Useful MACs over the array's peak MACs for the whole run."""
        return self.macs / (self.device.peak_macs_per_cycle * self.cycles) if self.cycles else 0.0

    def traffic(self) -> dict[tuple[str, str, str], int]:
        """Elements read and written per memory level and operand, summed over layers."""
        out: dict[tuple[str, str, str], int] = {}
        for layer in self.layers:
            for key, n in layer.traffic.items():
                out[key] = out.get(key, 0) + n
        return out

    def traffic_table(self) -> str:
        """Per level, action and operand: the elements moved (``--counts``), one line each."""
        rows = [
            f"{level:16s} {action:6s} {operand:8s} {n:>16,d}"
            for (level, action, operand), n in sorted(self.traffic().items())
        ]
        return "\n".join([f"{'level':16s} {'action':6s} {'operand':8s} {'elements':>16s}", *rows])

    def table(self, mappings: bool = False) -> str:
        """A per-layer table and a totals line (with each layer's mapping when ``mappings``)."""
        mhz = self.device.clock_mhz
        head = (
            f"{'layer':22s} {'kind':17s} {'unit':10s} {'prec':5s} {'MACs':>12s} {'cycles':>10s} "
            f"{'time_us':>9s} {'compute':>10s} {'stall':>9s} {'util':>6s} {'offchip_B':>10s}"
        )
        lines = [f"device {self.device.name} ({mhz:g} MHz), model {self.model}", head, "-" * len(head)]
        for r in self.layers:
            lines.append(
                f"{r.op[:22]:22s} {r.kind[:17]:17s} {r.unit[:10]:10s} {r.precision:5s} "
                f"{r.macs:>12,d} {r.cycles:>10,d} {r.cycles / mhz:>9.2f} {r.compute_cycles:>10,d} "
                f"{r.stall_cycles:>9,d} {r.mac_utilization:>6.1%} {r.offchip_bytes:>10,d}"
            )
            if r.mapping.reason:
                lines.append(f"    {r.mapping.describe()}")
            elif mappings and r.mapping.unit != "(view)":
                lines.append(f"    mapping: {r.mapping.describe()}")
        lines.append("-" * len(head))
        lines.append(
            f"{'total':22s} {'':17s} {'':10s} {'':5s} {self.macs:>12,d} {self.cycles:>10,d} "
            f"{self.cycles / mhz:>9.2f} {self.compute_cycles:>10,d} {self.stall_cycles:>9,d} "
            f"{self.mac_utilization:>6.1%} {sum(r.offchip_bytes for r in self.layers):>10,d}"
        )
        lines.append(f"latency {self.time_ms:.3f} ms")
        moved = self.totals.bytes_moved()
        if moved:
            lines.append(
                "bytes moved: " + ", ".join(f"{lvl} {d} {b:,}" for (lvl, d), b in sorted(moved.items()))
            )
        return "\n".join(lines)


def simulate(
    model: Graph | str | Path, device: Device | str | Path, *, record_trace: bool = True
) -> SimResult:
    """Map every op of ``model`` onto ``device`` and run the discrete-event simulation.

    Parameters
    ----------
    model : Graph, str or Path
        A graph, or a model file (``.tflite``, ``.onnx``, layer ``.yaml``, SCALE-Sim ``.csv``).
    device : Device, str or Path
        A device, a shipped device name (``hwsim list devices``), a device ``.yaml`` or a SCALE-Sim ``.cfg``.
    record_trace : bool
        Keep every event for :attr:`SimResult.trace` (slightly slower).

    Returns
    -------
    SimResult
    """
    if not isinstance(model, Graph):
        from hwsim.importers import load_model

        model = load_model(model)
    if not isinstance(device, Device):
        device = load_device(device)
    plans = plan(model, device)
    if not record_trace and moves_no_data(plans):
        times, trace = layer_times(device, plans), Trace([], device.clock_mhz)
    else:
        from hwsim.schedule.sim import Simulator

        sim = Simulator(device, plans, record_trace=record_trace)
        times = sim.run()
        trace = sim.trace()
    layers = [_layer_result(device, plan, t) for plan, t in zip(plans, times, strict=True)]
    result = SimResult(device, model.source or "(graph)", layers, trace)
    result.totals = ActionCounts.total(layer.counts for layer in layers)
    return result


def _layer_result(device: Device, plan: LayerPlan, times: tuple[int, int, int]) -> LayerResult:
    start, end, busy = times
    cycles = end - start
    peak = device.peak_macs_per_cycle
    util = plan.macs / (peak * cycles) if cycles and plan.unit == device.spec.mac_array.name else 0.0
    return LayerResult(
        plan.op,
        plan.kind,
        plan.unit,
        plan.precision,
        plan.macs,
        start,
        cycles,
        busy,
        cycles - busy,
        util,
        plan.input_bytes_offchip,
        plan.counts,
        plan.mapping,
        plan.traffic,
        plan.reports,
    )
