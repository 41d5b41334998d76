"""The energy model: a table at a node and voltage, answering "what does one action cost, and says who?".

:class:`EnergyModel` holds an energy table, a scaling table and the target technology (node, supply,
flavour). Its primitives return ``(value, source)`` pairs, the source naming the table entry, the law that
extended it and the scaling that moved it::

    >>> from hwsim.energy.model import EnergyModel
    >>> m = EnergyModel.load("horowitz_45nm", node_nm=45, voltage_v=0.9)
    >>> m.op_energy_pj("int_mult", 8)
    (0.2, 'horowitz_45nm int_mult 8b: horowitz14, table point')

:class:`DevicePricer` binds a model to a device and prices every key the scheduler emits (the table in
:mod:`hwsim.schedule.counts`) as one or two :class:`Cost` parts:

=========================  ===================================================================================
key                        cost
=========================  ===================================================================================
MAC array ``mac WxA``      ``multiplier``: int_mult at the datapath that runs it (``Device.precision(W, A)``,
                           e.g. a 4x8 op on an 8x8-only array pays 8x8); ``accumulator``: int_add at the
                           array's ``accumulator_bits``
MAC array ``idle WxA``     ``idle``: the table's ``idle.fraction_of_mac`` (an assumption, flagged) x that MAC
vector unit ``op A``       ``vector``: ``adds`` int_add at A rounded up to ``lane_bits`` +
``register_accesses`` register bits vector unit ``mac WxA``    ``vector``: int_mult at W x A rounded up to
``lane_bits`` + int_add at the MAC array's accumulator width register file read/write   ``register_file``:
register bit energy x b SRAM read/write            ``sram``: the SRAM law at one bank's capacity, x (b /
access_bits) ** width_exponent, writes x ``write_to_read_ratio`` off-chip read/write        ``dram`` /
``flash`` / ``link``: the level's ``technology`` per-bit energy x b (not node-scaled: a separate chip)
========================= ===================================================================================

Anything else, or a width outside a law's range, or an off-chip level whose technology the table lacks, raises
:class:`~hwsim.energy.table.MissingCostError` naming the component, action and bits, unless the table declares
``off_chip_fallback`` (then the row's source says ``fallback``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from hwsim.devices.model import Device
from hwsim.energy import DEFAULT_ENERGY_MODEL, laws
from hwsim.energy.area import logic_area_um2
from hwsim.energy.table import EnergyTableSpec, MissingCostError, ScalingSpec, load_energy_table, load_scaling
from hwsim.errors import ConfigError


@dataclass(frozen=True)
class Cost:
    """The energy of one action (one part of it), its category for the breakdown, and where it came from."""

    category: str  # multiplier, accumulator, idle, vector, register_file, sram, dram, flash, link
    energy_pj: float
    source: str


@dataclass(frozen=True)
class Technology:
    """A target node, supply and process flavour, and why those (the device file's ``technology.source``)."""

    node_nm: float
    voltage_v: float
    flavor: str = "lp"
    source: str = ""


class EnergyModel:
    """Primitive costs from one energy table, scaled to one technology (see the module docstring).

    Parameters
    ----------
    table : EnergyTableSpec
        The table (``load_energy_table``).
    scaling : ScalingSpec
        The node/voltage scaling it names.
    technology : Technology
        The node, supply and flavour to price at.
    """

    def __init__(self, table: EnergyTableSpec, scaling: ScalingSpec, technology: Technology) -> None:
        self.table = table
        self.scaling = scaling
        self.technology = technology
        self._factor_cache: dict[tuple, tuple[float, str]] = {}
        self._points: dict[str, list[tuple[float, float, float]]] = {}
        for p in table.arithmetic:
            self._points.setdefault(p.op, []).append((p.bits, p.energy_pj, p.area_um2))
        for pts in self._points.values():
            pts.sort()
        self._alpha: dict[tuple[str, str], float] = {}
        for op, law in table.bit_width_laws.items():
            pts = self._points[op]
            self._alpha[(op, "energy")] = laws.power_law_fit([p[0] for p in pts], [p[1] for p in pts])
            self._alpha[(op, "area")] = laws.power_law_fit([p[0] for p in pts], [p[2] for p in pts])
        self._check_technology()

    # -- construction ---------------------------------------------------------------------------------------
    @classmethod
    def load(
        cls,
        table: str | Path = DEFAULT_ENERGY_MODEL,
        *,
        node_nm: float,
        voltage_v: float,
        flavor: str = "lp",
        source: str = "",
    ) -> EnergyModel:
        """A model from a table name or path, at the given technology."""
        spec = load_energy_table(table)
        return cls(spec, load_scaling(spec.scaling), Technology(node_nm, voltage_v, flavor, source))

    @classmethod
    def for_device(
        cls,
        device: Device,
        table: str | Path = DEFAULT_ENERGY_MODEL,
        *,
        node_nm: float | None = None,
        voltage_v: float | None = None,
    ) -> EnergyModel:
        """A model at ``device``'s ``technology`` (each of node and voltage may be overridden).

        Raises
        ------
        ConfigError
            When the device declares no technology and the call does not give both node and voltage.
        """
        tech = device.spec.technology
        if tech is None and (node_nm is None or voltage_v is None):
            raise ConfigError(
                f"{device.path or device.name}: technology: the device declares no technology "
                "(add `technology: {node_nm: 28, voltage_v: 0.9}` to the device file, or pass "
                "--node and --voltage)"
            )
        node = node_nm if node_nm is not None else tech.node_nm
        volt = voltage_v if voltage_v is not None else tech.voltage_v
        flavor = tech.flavor if tech is not None else "lp"
        why = "given on the command line" if (node_nm is not None or voltage_v is not None) else tech.source
        return cls.load(table, node_nm=node, voltage_v=volt, flavor=flavor, source=why)

    def _check_technology(self) -> None:
        t = self.technology
        try:
            self.energy_factor(self.table.node_nm, self.table.voltage_v)
            self.area_factor(self.table.node_nm)
        except ValueError as exc:
            raise ConfigError(f"technology {t.node_nm:g} nm, {t.voltage_v:g} V ({t.flavor}): {exc}") from None

    @property
    def name(self) -> str:
        """The table's name."""
        return self.table.name

    def describe(self) -> str:
        """One line: table, scaling and technology."""
        t = self.technology
        return (
            f"{self.table.name} scaled by {self.scaling.name} to {t.node_nm:g} nm, {t.voltage_v:g} V "
            f"({t.flavor})" + (f" [{t.source}]" if t.source else "")
        )

    # -- scaling -------------------------------------------------------------------------------------------
    def energy_factor(self, from_node_nm: float, from_voltage_v: float) -> tuple[float, str]:
        """Factor taking an energy characterised at ``(from_node_nm, from_voltage_v)`` to the target
        technology."""
        t = self.technology
        key = ("e", from_node_nm, from_voltage_v)
        if key not in self._factor_cache:
            if (from_node_nm, from_voltage_v) == (t.node_nm, t.voltage_v):
                self._factor_cache[key] = (1.0, "")
            else:
                e_from, r_from = self._poly(from_node_nm, from_voltage_v)
                e_to, r_to = self._poly(t.node_nm, t.voltage_v)
                rules = "; ".join(
                    f"{n:g} nm {r}"
                    for n, r in ((from_node_nm, r_from), (t.node_nm, r_to))
                    if r != "published node"
                )
                text = (
                    f" x {e_to / e_from:.4g} ({self.scaling.source} {t.flavor} {from_node_nm:g} nm "
                    f"{from_voltage_v:g} V -> {t.node_nm:g} nm {t.voltage_v:g} V"
                    + (f"; {rules}" if rules else "")
                    + ")"
                )
                self._factor_cache[key] = (e_to / e_from, text)
        return self._factor_cache[key]

    def _poly(self, node_nm: float, voltage_v: float) -> tuple[float, str]:
        table = self.scaling.energy_polynomial[self.technology.flavor]
        nodes = sorted(table)
        if not nodes[0] <= node_nm <= nodes[-1]:
            raise ValueError(
                f"node {node_nm:g} nm is outside the published range {nodes[0]:g}-{nodes[-1]:g} "
                "nm "
                f"of {self.scaling.name}"
            )
        values = [laws.quadratic_in_voltage(table[n], voltage_v) for n in nodes]
        bad = [n for n, v in zip(nodes, values) if v <= 0]
        near = [n for n in nodes if n in bad and abs(math.log(n / node_nm)) < 1]
        if near:
            raise ValueError(
                f"{self.scaling.name}: the {self.technology.flavor} energy fit at {near[0]:g} "
                "nm is "
                f"not positive at {voltage_v:g} V (outside the fit's supply range)"
            )
        good = [(n, v) for n, v in zip(nodes, values) if v > 0]
        return laws.log_interpolate([n for n, _ in good], [v for _, v in good], node_nm)

    def area_factor(self, from_node_nm: float) -> tuple[float, str]:
        """Factor taking an area at ``from_node_nm`` to the target node (Stillmaker & Baas area table)."""
        to = self.technology.node_nm
        key = ("a", from_node_nm)
        if key not in self._factor_cache:
            if from_node_nm == to:
                self._factor_cache[key] = (1.0, "")
            else:
                nodes = self.scaling.nodes_nm
                m = self.scaling.area_factor
                if from_node_nm in m and to in nodes:
                    f, rule = m[from_node_nm][nodes.index(to)], "published factor"
                else:  # relative areas along the 45 nm row, interpolated log-log off the published nodes
                    ref = 45.0 if 45.0 in m else nodes[0]
                    row = m[ref]
                    a_from, r1 = laws.log_interpolate(nodes, row, from_node_nm)
                    a_to, r2 = laws.log_interpolate(nodes, row, to)
                    f = a_to / a_from
                    rule = "; ".join(r for r in (r1, r2) if r != "published node")
                self._factor_cache[key] = (
                    f,
                    f" x {f:.4g} area ({self.scaling.source} {from_node_nm:g} -> {to:g} nm, {rule})",
                )
        return self._factor_cache[key]

    # -- primitives ----------------------------------------------------------------------------------------
    def _op(self, op: str, width: int | tuple[int, int], what: str) -> tuple[float, str]:
        """An arithmetic op's energy or area at the table's node (no scaling), with its rule."""
        pts = self._points.get(op)
        col = 1 if what == "energy" else 2
        if isinstance(width, tuple):
            w, a = width
            label = f"{w}x{a}"
        else:
            w = a = width
            label = f"{width}b"
        if pts is None:
            raise KeyError(f"the table has no {op} points")
        exact = [p for p in pts if p[0] == w == a]
        src = next(s for s in self.table.arithmetic if s.op == op).source
        if exact:
            return exact[0][col], f"{self.table.name} {op} {label}: {src}, table point"
        law = self.table.bit_width_laws.get(op)
        if law is None:
            raise KeyError(
                f"{op} has table points at {', '.join(str(p[0]) for p in pts)} bits only and no bit-width law"
            )
        lo, hi = min(w, a), max(w, a)
        if lo < law.min_bits or hi > law.max_bits:
            raise KeyError(f"{op} at {label} is outside its law's range {law.min_bits}-{law.max_bits} bits")
        alpha = self._alpha[(op, what)]
        if law.variable == "bits_product":  # x = W*A against the square of each point's width
            value, rule = laws.through_points([(p[0] * p[0], p[col]) for p in pts], w * a, alpha / 2)
        else:
            value, rule = laws.through_points([(p[0], p[col]) for p in pts], w, alpha)
        return value, f"{self.table.name} {op} {label}: {law.source}, {rule}"

    def op_energy_pj(self, op: str, width: int | tuple[int, int]) -> tuple[float, str]:
        """Energy of one ``op`` (``int_add``, ``int_mult``, ``fp_add``, ``fp_mult``) at ``width`` bits.

        ``width`` is an int, or ``(W, A)`` for a mixed-width multiplier. Raises ``KeyError`` with the reason
        when the table cannot price it (the pricer turns it into a :class:`MissingCostError`).
        """
        value, rule = self._op(op, width, "energy")
        f, frule = self.energy_factor(self.table.node_nm, self.table.voltage_v)
        return value * f, rule + frule

    def op_area_um2(self, op: str, width: int | tuple[int, int]) -> tuple[float, str]:
        """Area of one ``op`` unit at ``width`` bits, at the target node."""
        value, rule = self._op(op, width, "area")
        f, frule = self.area_factor(self.table.node_nm)
        return value * f, rule + frule

    def register_energy_pj(self, action: str, bits: int) -> tuple[float, str]:
        """Energy of reading or writing ``bits`` register bits."""
        r = self.table.register_bit
        per_bit = r.read_energy_pj_per_bit if action == "read" else r.write_energy_pj_per_bit
        f, frule = self.energy_factor(r.node_nm, r.voltage_v)
        return (
            per_bit * bits * f,
            f"{self.table.name} register {action} {per_bit:g} pJ/bit x {bits}: "
            f"{r.cite(self.table.sources)}" + frule,
        )

    def register_area_um2(self, bits: int) -> tuple[float, str]:
        """Area of ``bits`` register bits at the target node."""
        r = self.table.register_bit
        f, frule = self.area_factor(r.node_nm)
        return (
            r.area_um2_per_bit * bits * f,
            f"{self.table.name} register {r.area_um2_per_bit:g} um^2/bit x "
            f"{bits}: {r.cite(self.table.sources)}" + frule,
        )

    def sram_energy_pj(self, capacity_bytes: int, banks: int, action: str, bits: int) -> tuple[float, str]:
        """Energy of reading or writing one ``bits``-bit element of an SRAM of ``capacity_bytes`` in
        ``banks``."""
        s = self.table.sram
        bank = capacity_bytes / banks
        alpha = laws.power_law_fit(
            [p.capacity_bytes for p in s.read_points], [p.energy_pj for p in s.read_points]
        )
        e_access, rule = laws.through_points(
            [(p.capacity_bytes, p.energy_pj) for p in s.read_points], bank, alpha
        )
        value = e_access * (bits / s.access_bits) ** s.width_exponent.value
        text = (
            f"{self.table.name} sram {s.access_bits}-bit read at {_kib(bank)} per bank = {e_access:.4g} "
            "pJ: "
            f"{s.read_points[0].source}, {rule}; x ({bits}/{s.access_bits})^{s.width_exponent.value:g} "
            f"[{s.width_exponent.cite(self.table.sources)}]"
        )
        if action == "write":
            value *= s.write_to_read_ratio.value
            ratio = s.write_to_read_ratio
            text += f"; write x {ratio.value:g} [{ratio.cite(self.table.sources)}]"
        f, frule = self.energy_factor(self.table.node_nm, self.table.voltage_v)
        return value * f, text + frule

    def sram_area_um2(self, capacity_bytes: int) -> tuple[float, str]:
        """Area of an SRAM macro: bits x cell area / array efficiency, at the target node."""
        s = self.table.sram
        value = capacity_bytes * 8 * s.cell_area_um2.value / s.array_efficiency.value
        f, frule = self.area_factor(self.table.node_nm)
        return value * f, (
            f"{self.table.name} sram {capacity_bytes * 8:,} bits x {s.cell_area_um2.value:g} "
            "um^2 "
            f"[{s.cell_area_um2.cite(self.table.sources)}] / {s.array_efficiency.value:g} "
            f"[{s.array_efficiency.cite(self.table.sources)}]" + frule
        )

    def sram_leakage_mw(self, capacity_bytes: int) -> tuple[float, str]:
        """Leakage power of an SRAM of ``capacity_bytes`` at the target technology."""
        s = self.table.sram
        mbit = capacity_bytes * 8 / 2**20
        f, frule = self.energy_factor(self.table.node_nm, self.table.voltage_v)
        return s.leakage_mw_per_mbit.value * mbit * f, (
            f"{self.table.name} sram leakage {s.leakage_mw_per_mbit.value:g} mW/Mbit x {mbit:.4g} Mbit "
            f"[{s.leakage_mw_per_mbit.cite(self.table.sources)}]{frule} (leakage scales like energy: "
            "hwcomponents)"
        )

    def logic_leakage_mw(self, area_um2: float) -> tuple[float, str]:
        """Leakage power of ``area_um2`` of logic (at the target node)."""
        lk = self.table.logic_leakage
        af, _ = self.area_factor(lk.node_nm)  # area at the leakage source's node = area / af
        ef, frule = self.energy_factor(lk.node_nm, lk.voltage_v)
        mw = lk.mw_per_mm2 * (area_um2 / af) / 1e6 * ef
        return mw, (
            f"{self.table.name} logic leakage {lk.mw_per_mm2:g} mW/mm^2 at {lk.node_nm:g} nm "
            f"[{lk.cite(self.table.sources)}] on {area_um2 / 1e6:.4g} mm^2 (at {lk.node_nm:g} nm: "
            f"{area_um2 / af / 1e6:.4g} mm^2){frule} (leakage scales like energy: hwcomponents)"
        )

    def offchip_energy_pj(self, technology: str, bits: int) -> tuple[float, str, str]:
        """Energy of moving ``bits`` bits to or from an off-chip ``technology``: (pJ, category, source)."""
        fallback = ""
        spec = self.table.off_chip.get(technology)
        if spec is None:
            fb = self.table.off_chip_fallback
            if fb is None:
                raise KeyError(
                    f"no off_chip entry {technology!r} (the table has {', '.join(self.table.off_chip)})"
                )
            spec = self.table.off_chip[fb.technology]
            fallback = (
                f" [fallback declared by the table: {technology!r} priced as {fb.technology!r}, "
                f"{fb.cite(self.table.sources)}]"
            )
            technology = fb.technology
        category = (
            "flash"
            if "flash" in technology
            else "link"
            if any(k in technology for k in ("usb", "pcie", "host", "link"))
            else "dram"
        )
        return (
            spec.energy_pj_per_bit * bits,
            category,
            (
                f"{self.table.name} off_chip {technology} {spec.energy_pj_per_bit:g} pJ/bit x {bits}: "
                f"{spec.cite(self.table.sources)} (not node-scaled: a separate chip){fallback}"
            ),
        )


def _kib(nbytes: float) -> str:
    return f"{nbytes / 1024:g} KiB" if nbytes < 2**20 else f"{nbytes / 2**20:g} MiB"


def _pair(bits: int | str) -> tuple[int, int]:
    w, _, a = str(bits).partition("x")
    return int(w), int(a)


class DevicePricer:
    """Prices every ``(component, action, bits)`` of one device with one model (cached per key).

    Parameters
    ----------
    model : EnergyModel
    device : Device
    """

    def __init__(self, model: EnergyModel, device: Device) -> None:
        self.model = model
        self.device = device
        spec = device.spec
        self.mac_name = spec.mac_array.name
        self.vectors = {v.name: v for v in spec.vector_units}
        self.memories = {m.name: m for m in spec.memories}
        self._cache: dict[tuple, tuple[Cost, ...]] = {}

    def components(self) -> list[str]:
        """Every component name the device declares (units and memory levels)."""
        return [self.mac_name, *self.vectors, *self.memories]

    def price(self, component: str, action: str, bits: int | str) -> tuple[Cost, ...]:
        """The cost parts of one action (see the module docstring's table).

        Raises
        ------
        MissingCostError
            When the model cannot price the key; the message names component, action and bits.
        """
        key = (component, action, bits)
        hit = self._cache.get(key)
        if hit is None:
            try:
                hit = self._price(component, action, bits)
            except KeyError as exc:
                reason = exc.args[0] if exc.args else "no rule"
                raise MissingCostError(
                    f"energy table {self.model.name!r} has no cost for component {component!r} "
                    f"({self._describe(component)}), action {action!r}, bits {bits!r} on device "
                    f"{self.device.name!r}: {reason}. Add it to the table, or declare a fallback in it"
                ) from None
            self._cache[key] = hit
        return hit

    def _describe(self, component: str) -> str:
        if component == self.mac_name:
            return "MAC array"
        if component in self.vectors:
            return "vector unit"
        m = self.memories.get(component)
        if m is None:
            return "not a component of the device; it has " + ", ".join(self.components())
        size = f", {_kib(m.size_bytes)}" if m.size_bytes else ""
        tech = f", technology {m.technology}" if m.technology else ""
        return f"{m.kind}{size}{tech}"

    def mac_datapath(self, w: int, a: int) -> tuple[int, int, str]:
        """The multiplier widths that run a ``w x a`` MAC on the array, and the rule text."""
        try:
            p = self.device.precision(w, a)
        except ConfigError as exc:
            raise KeyError(str(exc)) from None
        if (p.weights_bits, p.activations_bits) == (w, a):
            return w, a, ""
        return (
            p.weights_bits,
            p.activations_bits,
            f" (runs on the {p.weights_bits}x{p.activations_bits} datapath)",
        )

    def _mac_parts(self, w: int, a: int) -> tuple[float, str, float, str, str]:
        pw, pa, note = self.mac_datapath(w, a)
        acc = self.device.spec.mac_array.accumulator_bits
        m_pj, m_src = self.model.op_energy_pj("int_mult", (pw, pa))
        a_pj, a_src = self.model.op_energy_pj("int_add", acc)
        return m_pj, m_src + note, a_pj, a_src, note

    def _price(self, component: str, action: str, bits: int | str) -> tuple[Cost, ...]:
        m = self.model
        t = m.table
        if component == self.mac_name:
            if action not in ("mac", "idle") or "x" not in str(bits):
                raise KeyError("a MAC array prices 'mac' and 'idle' at 'WxA' bits")
            w, a = _pair(bits)
            m_pj, m_src, a_pj, a_src, note = self._mac_parts(w, a)
            if action == "mac":
                return Cost("multiplier", m_pj, m_src), Cost("accumulator", a_pj, a_src)
            frac = t.idle.fraction_of_mac
            return (
                Cost(
                    "idle",
                    frac * (m_pj + a_pj),
                    f"idle {frac:g} x MAC [{t.idle.cite(t.sources)}]; MAC = {m_src} + {a_src}",
                ),
            )
        if component in self.vectors:
            lane = t.vector.lane_bits
            if action == "op" and isinstance(bits, int):
                eb = -(-bits // lane) * lane
                vop = t.vector.op
                add_pj, add_src = m.op_energy_pj("int_add", eb)
                reg_pj, reg_src = m.register_energy_pj("read", eb)
                wreg_pj, _ = m.register_energy_pj("write", eb)
                regs = vop.register_accesses * (reg_pj + wreg_pj) / 2
                return (
                    Cost(
                        "vector",
                        vop.adds * add_pj + regs,
                        f"vector op = {vop.adds} x ({add_src}) + {vop.register_accesses} register "
                        "accesses "
                        f"({reg_src}) [{vop.cite(t.sources)}]",
                    ),
                )
            if action == "mac" and "x" in str(bits):
                w, a = _pair(bits)
                w8, a8 = -(-w // lane) * lane, -(-a // lane) * lane
                mul_pj, mul_src = m.op_energy_pj("int_mult", (w8, a8))
                add_pj, add_src = m.op_energy_pj("int_add", self.device.spec.mac_array.accumulator_bits)
                note = f" ({w}x{a} unpacked to {lane}-bit lanes)" if (w8, a8) != (w, a) else ""
                return (Cost("vector", mul_pj + add_pj, f"vector MAC = {mul_src}{note} + {add_src}"),)
            raise KeyError("a vector unit prices 'op' at integer bits and 'mac' at 'WxA' bits")
        mem = self.memories.get(component)
        if mem is None:
            raise KeyError("unknown component")
        if action not in ("read", "write") or not isinstance(bits, int):
            raise KeyError(f"a {mem.kind} level prices 'read' and 'write' at integer bits")
        if mem.kind == "register_file":
            pj, src = m.register_energy_pj(action, bits)
            return (Cost("register_file", pj, src),)
        if mem.kind == "sram":
            pj, src = m.sram_energy_pj(mem.size_bytes, mem.banks, action, bits)
            return (Cost("sram", pj, src),)
        if mem.technology is None:
            raise KeyError(
                "the off-chip level declares no technology (add e.g. `technology: lpddr` to it in "
                "the "
                "device file)"
            )
        pj, category, src = m.offchip_energy_pj(mem.technology, bits)
        return (Cost(category, pj, src),)

    def leakage_mw(self) -> list[tuple[str, str, float, str]]:
        """Leakage power per component: ``(component, category, mW, source)`` (off-chip levels excluded)."""
        out = []
        for component, area_um2 in logic_area_um2(self).items():
            mw, src = self.model.logic_leakage_mw(area_um2)
            out.append((component, "leakage", mw, src))
        for mem in self.device.spec.memories:
            if mem.kind == "sram":
                mw, src = self.model.sram_leakage_mw(mem.size_bytes)
                out.append((mem.name, "leakage", mw, src))
        return out
