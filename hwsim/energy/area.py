"""Silicon area of a device by component, in mm^2, with the rule behind every row.

* **MAC array**: per processing element (``rows x columns x spatial_lanes``) one multiplier at the datapath
  width, one adder at ``accumulator_bits``, and registers for one weight, one activation and one partial sum.
  The datapath is the widest precision listed at one MAC per PE per cycle (a faster, narrower pair splits that
  multiplier; a slower, wider pair reuses it over several cycles); without one, the widest W and A listed.
* **Vector units**: ``count x vector_bits / lane_bits`` lanes, each with a lane-width multiplier, an adder at
the accumulator width and registers for two operands and a partial sum.
* **SRAM levels**: bits x cell area / array efficiency (:meth:`EnergyModel.sram_area_um2`).
* **Register-file levels** are the PEs' registers, already in the MAC array; **off-chip** levels have no area
here.
* **Overhead**: the table's ``area_overhead_fraction`` (an assumption, flagged) on top of everything above.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # model.py imports this module
    from hwsim.energy.model import DevicePricer


@dataclass(frozen=True)
class AreaRow:
    """One area entry: ``count`` units of ``part`` in ``component``."""

    component: str
    part: str
    count: int
    unit_area_um2: float
    area_um2: float
    source: str


@dataclass
class AreaReport:
    """Area rows of one device at one technology, and their total."""

    device: str
    technology: str
    rows: list[AreaRow] = field(default_factory=list)

    @property
    def total_mm2(self) -> float:
        """Total area in mm^2."""
        return sum(r.area_um2 for r in self.rows) / 1e6

    def by_component_mm2(self) -> dict[str, float]:
        """mm^2 per component (in row order)."""
        out: dict[str, float] = {}
        for r in self.rows:
            out[r.component] = out.get(r.component, 0.0) + r.area_um2 / 1e6
        return out

    def table(self, sources: bool = False) -> str:
        """A plain-text table, one row per part, then the total (with each row's rule when ``sources``)."""
        head = f"{'component':14s} {'part':22s} {'count':>9s} {'unit_um2':>11s} {'area_mm2':>10s}"
        lines = [f"area of {self.device} at {self.technology}", head, "-" * len(head)]
        for r in self.rows:
            lines.append(
                f"{r.component[:14]:14s} {r.part[:22]:22s} {r.count:>9,d} {r.unit_area_um2:>11.4g} "
                f"{r.area_um2 / 1e6:>10.4f}"
            )
            if sources:
                lines.append(f"    source: {r.source}")
        lines.append("-" * len(head))
        lines.append(f"{'total':14s} {'':22s} {'':>9s} {'':>11s} {self.total_mm2:>10.4f}")
        return "\n".join(lines)


def _datapath(spec) -> tuple[int, int]:
    unit = [p for p in spec.precisions if p.macs_per_pe_per_cycle == 1]
    pool = unit or spec.precisions
    return max(p.weights_bits for p in pool), max(p.activations_bits for p in pool)


def _unit_rows(pricer: DevicePricer) -> list[AreaRow]:
    m = pricer.model
    spec = pricer.device.spec
    arr = spec.mac_array
    acc = arr.accumulator_bits
    pes = arr.rows * arr.columns * arr.spatial_lanes
    w, a = _datapath(arr)
    rows = []
    mul, mul_src = m.op_area_um2("int_mult", (w, a))
    add, add_src = m.op_area_um2("int_add", acc)
    reg, reg_src = m.register_area_um2(w + a + acc)
    rows += [
        AreaRow(arr.name, f"multipliers {w}x{a}", pes, mul, pes * mul, mul_src),
        AreaRow(arr.name, f"accumulator adders {acc}b", pes, add, pes * add, add_src),
        AreaRow(arr.name, f"registers {w}+{a}+{acc}b", pes, reg, pes * reg, reg_src),
    ]
    lane = m.table.vector.lane_bits
    for v in spec.vector_units:
        if v.on_host:  # the host's CPU, not the device's silicon
            continue
        lanes = v.count * (v.vector_bits // lane)
        vm, vm_src = m.op_area_um2("int_mult", (lane, lane))
        va, va_src = m.op_area_um2("int_add", acc)
        vr, vr_src = m.register_area_um2(2 * lane + acc)
        per = vm + va + vr
        rows.append(
            AreaRow(
                v.name,
                f"lanes ({lane}b mul+{acc}b add+regs)",
                lanes,
                per,
                lanes * per,
                f"{vm_src}; {va_src}; {vr_src}",
            )
        )
    return rows


def logic_area_um2(pricer: DevicePricer) -> dict[str, float]:
    """Logic area (multipliers, adders, registers) per compute unit, um^2 at the target node (for leakage)."""
    out: dict[str, float] = {}
    for r in _unit_rows(pricer):
        out[r.component] = out.get(r.component, 0.0) + r.area_um2
    return out


def device_area(pricer: DevicePricer) -> AreaReport:
    """The :class:`AreaReport` of the pricer's device at its model's technology."""
    m = pricer.model
    t = m.technology
    report = AreaReport(pricer.device.name, f"{t.node_nm:g} nm ({m.table.name}, {m.scaling.name})")
    report.rows += _unit_rows(pricer)
    for mem in pricer.device.spec.memories:
        if mem.kind == "sram":
            um2, src = m.sram_area_um2(mem.size_bytes)
            report.rows.append(AreaRow(mem.name, f"sram {mem.size_bytes:,} B", 1, um2, um2, src))
    base = sum(r.area_um2 for r in report.rows)
    ov = m.table.area_overhead_fraction
    report.rows.append(
        AreaRow(
            "overhead",
            f"{ov.value:.0%} of the above",
            1,
            base * ov.value,
            base * ov.value,
            f"{m.table.name} area_overhead_fraction {ov.value:g} [{ov.cite(m.table.sources)}]",
        )
    )
    return report
