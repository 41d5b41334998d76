"""Energy accounting: the ONE place that multiplies action counts by per-action costs.

``account(result, model)`` walks every layer of a :class:`~hwsim.schedule.simulate.SimResult`, prices each
``(component, action, bits)`` count with a :class:`~hwsim.energy.model.DevicePricer` and adds the leakage of
every on-chip component over the layer's time. Each :class:`EnergyRow` keeps
``(layer, component, category, action, bits, count, energy_pj, source)``, so any total, table or plot can be
traced back to the table entry and the rule that produced it::

    >>> from hwsim.schedule.simulate import simulate
    >>> from hwsim.energy.model import EnergyModel
    >>> result = simulate("workloads/tiny.yaml", "edge_tpu_like")                  # doctest: +SKIP
    >>> breakdown = account(result, EnergyModel.for_device(result.device))        # doctest: +SKIP
    >>> print(breakdown.table())                                                  # doctest: +SKIP

Energy per inference is the sum of the rows (dynamic plus leakage x time). Power, the energy-delay product
and TOPS/W derive from it; the peak power comes from the busiest window of the trace
(:mod:`hwsim.energy.power`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from hwsim.energy.model import DevicePricer, EnergyModel
from hwsim.energy.power import PowerReport, power_report

CATEGORIES = (
    "multiplier",
    "accumulator",
    "idle",
    "register_file",
    "vector",
    "sram",
    "dram",
    "flash",
    "link",
    "leakage",
)


@dataclass(frozen=True, slots=True)
class EnergyRow:
    """``count`` actions of one key in one layer, their energy and the provenance of the per-action cost."""

    layer: str
    component: str
    category: str
    action: str
    bits: int | str
    count: int
    energy_pj: float
    source: str


@dataclass
class EnergyBreakdown:
    """Every priced row of one simulation, with the totals and views the reports need."""

    device: str
    model: str
    technology: str
    clock_mhz: float
    cycles: int
    macs: int
    rows: list[EnergyRow] = field(default_factory=list)
    leakage_mw: float = 0.0
    power: PowerReport | None = None

    @property
    def time_s(self) -> float:
        """End-to-end latency in seconds."""
        return self.cycles / (self.clock_mhz * 1e6)

    @property
    def total_pj(self) -> float:
        """Energy per inference in pJ (dynamic + leakage)."""
        return sum(r.energy_pj for r in self.rows)

    @property
    def leakage_pj(self) -> float:
        """Leakage energy per inference in pJ."""
        return sum(r.energy_pj for r in self.rows if r.category == "leakage")

    @property
    def average_power_mw(self) -> float:
        """Energy over latency, in mW."""
        return self.total_pj / self.time_s * 1e-9 if self.cycles else 0.0

    @property
    def edp_pj_s(self) -> float:
        """Energy-delay product in pJ*s (energy per inference x latency)."""
        return self.total_pj * self.time_s

    @property
    def tops_per_w(self) -> float:
        """Achieved int ops (2 per useful MAC) per joule, in TOPS/W."""
        return 2 * self.macs / (self.total_pj * 1e-12) / 1e12 if self.total_pj else 0.0

    def _sum(self, key) -> dict:
        out: dict = defaultdict(float)
        for r in self.rows:
            out[key(r)] += r.energy_pj
        return dict(out)

    def by_layer(self) -> dict[str, float]:
        """pJ per layer, in layer order."""
        return self._sum(lambda r: r.layer)

    def by_component(self) -> dict[tuple[str, str], float]:
        """pJ per (component, category): MAC multipliers and accumulators, register file, each SRAM, ..."""
        return self._sum(lambda r: (r.component, r.category))

    def by_category(self) -> dict[str, float]:
        """pJ per category (multiplier, accumulator, idle, register_file, vector, sram, dram, flash, link,
        leakage)."""
        return self._sum(lambda r: r.category)

    def by_action(self) -> dict[tuple[str, str, int | str], tuple[int, float]]:
        """``(component, action, bits) -> (count, pJ)`` over the whole run (leakage under action ``leak``)."""
        out: dict = {}
        for r in self.rows:
            key = (r.component, r.action, r.bits)
            n, e = out.get(key, (0, 0.0))
            # a MAC's two parts (multiplier, accumulator) count the same actions once
            out[key] = (n if r.category == "accumulator" else n + r.count, e + r.energy_pj)
        return out

    def by_layer_category(self) -> dict[str, dict[str, float]]:
        """``layer -> category -> pJ`` (the stacked-bar plot)."""
        out: dict[str, dict[str, float]] = {}
        for r in self.rows:
            d = out.setdefault(r.layer, {})
            d[r.category] = d.get(r.category, 0.0) + r.energy_pj
        return out

    def summary(self) -> str:
        """Headline figures, one per line."""
        lines = [
            f"energy of {self.model} on {self.device} ({self.clock_mhz:g} MHz), {self.technology}",
            f"latency            {self.time_s * 1e3:.4f} ms",
            f"energy/inference   {self.total_pj / 1e6:.4f} uJ (leakage {self.leakage_pj / 1e6:.4f} uJ, "
            f"{self.leakage_mw:.3f} mW)",
            f"average power      {self.average_power_mw:.3f} mW",
        ]
        if self.power is not None:
            p = self.power
            lines.append(
                f"peak power         {p.peak_mw:.3f} mW (busiest {p.window_us:g} us window, from "
                f"{p.window_start_us:.3f} us)"
            )
        lines += [
            f"energy-delay       {self.edp_pj_s:.4g} pJ*s",
            f"efficiency         {self.tops_per_w:.3f} TOPS/W ({2 * self.macs:,} ops)",
        ]
        return "\n".join(lines)

    def table(self, rows: bool = False) -> str:
        """Summary, then energy by component, by action and by layer (and every row with its source)."""
        total = self.total_pj or 1.0
        out = [self.summary(), "", "by component"]
        head = f"  {'component':16s} {'category':14s} {'energy_uJ':>12s} {'share':>7s}"
        out += [head, "  " + "-" * (len(head) - 2)]
        for (c, cat), e in sorted(self.by_component().items(), key=lambda kv: -kv[1]):
            out.append(f"  {c[:16]:16s} {cat:14s} {e / 1e6:>12.6f} {e / total:>7.1%}")
        out += ["", "by action"]
        head = (
            f"  {'component':16s} {'action':7s} {'bits':>6s} {'count':>14s} {'pJ_each':>10s} "
            f"{'energy_uJ':>12s}"
        )
        out += [head, "  " + "-" * (len(head) - 2)]
        for (c, a, b), (n, e) in sorted(self.by_action().items(), key=lambda kv: -kv[1][1]):
            each = e / n if n and a != "leak" else float("nan")
            out.append(f"  {c[:16]:16s} {a:7s} {str(b):>6s} {n:>14,d} {each:>10.4g} {e / 1e6:>12.6f}")
        out += ["", "by layer"]
        cats = self.by_layer_category()
        head = f"  {'layer':24s} {'energy_uJ':>12s} {'share':>7s}  largest part"
        out += [head, "  " + "-" * (len(head) - 2)]
        for layer, e in self.by_layer().items():
            top = max(cats[layer].items(), key=lambda kv: kv[1])
            out.append(
                f"  {layer[:24]:24s} {e / 1e6:>12.6f} {e / total:>7.1%}  {top[0]} ({top[1] / (e or 1):.0%})"
            )
        if rows:
            out += ["", "rows (layer, component, category, action, bits, count, energy_pJ, source)"]
            for r in self.rows:
                out.append(
                    f"  {r.layer} | {r.component} | {r.category} | {r.action} | {r.bits} | "
                    f"{r.count:,} | "
                    f"{r.energy_pj:.6g} | {r.source}"
                )
        return "\n".join(out)


def account(result, model: EnergyModel, *, window_us: float = 10.0) -> EnergyBreakdown:
    """Price every counted action of ``result`` and the leakage over its time.

    Parameters
    ----------
    result : SimResult
        From :func:`hwsim.schedule.simulate.simulate` (with its trace for the peak power).
    model : EnergyModel
        The table at the technology to price at (``EnergyModel.for_device(result.device)``).
    window_us : float
        Width of the window the peak power is taken over.

    Returns
    -------
    EnergyBreakdown

    Raises
    ------
    MissingCostError
        When a counted key has no cost (the message names component, action and bits).
    """
    device = result.device
    pricer = DevicePricer(model, device)
    leak = pricer.leakage_mw()
    mhz = device.clock_mhz
    out = EnergyBreakdown(
        device.name,
        result.model,
        model.describe(),
        mhz,
        result.cycles,
        result.macs,
        leakage_mw=sum(mw for _, _, mw, _ in leak),
    )
    rows = out.rows
    for layer in result.layers:
        for (component, action, bits), count in layer.counts:
            for cost in pricer.price(component, action, bits):
                rows.append(
                    EnergyRow(
                        layer.op,
                        component,
                        cost.category,
                        action,
                        bits,
                        count,
                        count * cost.energy_pj,
                        cost.source,
                    )
                )
        if layer.cycles:
            seconds = layer.cycles / (mhz * 1e6)
            for component, category, mw, source in leak:
                rows.append(
                    EnergyRow(
                        layer.op,
                        component,
                        category,
                        "leak",
                        "-",
                        layer.cycles,
                        mw * seconds * 1e9,
                        f"{source}; x {layer.cycles:,} cycles at {mhz:g} MHz",
                    )
                )
    out.power = power_report(result, out, window_us=window_us)
    return out


@dataclass(frozen=True)
class PeakEfficiency:
    """The MAC array at 100% utilisation on ``precision`` MACs: per-MAC energy, power and TOPS/W."""

    precision: str
    energy_per_mac_pj: float
    power_mw: float
    tops_per_w: float
    parts: tuple[tuple[str, float], ...]  # (what, pJ per MAC)


def peak_efficiency(pricer: DevicePricer, precision: str = "8x8") -> PeakEfficiency:
    """Array-level peak: MAC, accumulator and PE-register energy per MAC at full rate, plus all leakage.

    This is the vendors' "TOPS/W at peak" in the sense of an array doing nothing but MACs; memories feeding it
    are excluded (a compute-bound layer through :func:`account` includes them).
    """
    device = pricer.device
    arr = device.spec.mac_array
    w, _, a = precision.partition("x")
    parts = [(f"{c.category} {precision}", c.energy_pj) for c in pricer.price(arr.name, "mac", precision)]
    rf = device.register_file
    # per MAC the scheduler counts a weight, an activation and a partial-sum read, and a write
    if rf is not None:
        acc = arr.accumulator_bits
        for action, bits in (("read", int(w)), ("read", int(a)), ("read", acc), ("write", acc)):
            parts += [
                (f"{rf.name} {action} {bits}b", c.energy_pj) for c in pricer.price(rf.name, action, bits)
            ]
    per_mac_pj = sum(e for _, e in parts)
    rate = pricer.device.precision(int(w), int(a)).macs_per_pe_per_cycle
    macs_per_s = arr.rows * arr.columns * arr.spatial_lanes * rate * device.clock_mhz * 1e6
    leak_mw = sum(mw for _, _, mw, _ in pricer.leakage_mw())
    power_mw = macs_per_s * per_mac_pj * 1e-9 + leak_mw
    return PeakEfficiency(
        precision,
        per_mac_pj,
        power_mw,
        2 * macs_per_s / (power_mw * 1e-3) / 1e12,
        tuple(parts) + (("leakage (all components)", leak_mw / (macs_per_s * 1e-9)),),
    )
