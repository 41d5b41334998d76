"""Energy tables and scaling tables (``energy_models/*.yaml``): pydantic specs, loading, and their errors.

An **energy table** (``kind: energy_table``) lists published points at one node and voltage: arithmetic
operations (``int_add``, ``int_mult``, ``fp_add``, ``fp_mult`` at given bits, with ``energy_pj`` and
``area_um2``), which bit-width law extends each integer operation, a register bit, SRAM read energy against
capacity, per-bit energies of off-chip technologies (DRAM, flash, host links), leakage, the idle-slot
fraction and the area overhead. A **scaling table** (``kind: scaling``) holds node/voltage factors.

Every number carries ``source:``, a key of the file's ``sources:`` map, or ``assumption`` together with a
``note`` that says why; the loader refuses an unknown key or an assumption without a note. Files load through
:func:`hwsim.config.yamlio.load_spec`, so a mistake reads ``energy_models/x.yaml:12:
sram.read_points[1].energy_pj:
...``.

>>> table = load_energy_table("horowitz_45nm")
>>> table.node_nm, table.voltage_v, table.scaling
(45.0, 0.9, 'scaling_stillmaker_baas_2017')
"""

from __future__ import annotations

import difflib
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hwsim.config.yamlio import at_field, load_spec
from hwsim.errors import HwsimError, RegistryError
from hwsim.paths import data_dir

PositiveFloat = Annotated[float, Field(gt=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]
ArithmeticOp = Literal["int_add", "int_mult", "fp_add", "fp_mult"]


class MissingCostError(HwsimError, KeyError):
    """The energy table has no cost for a (component, action, bits) the scheduler counted, and no fallback."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class _Sourced(_Spec):
    """A value with its provenance: ``source`` is a key of ``sources`` or ``assumption`` (then ``note``
    says why)."""

    source: str
    note: str = ""

    @model_validator(mode="after")
    def _assumption_has_note(self):
        if self.source == "assumption" and not self.note.strip():
            raise at_field(("note",), "an assumption needs a note saying why")
        return self

    def cite(self, sources: dict[str, str]) -> str:
        """``horowitz14`` or ``assumption (<note>)``: the short provenance of this value."""
        return f"assumption ({self.note})" if self.source == "assumption" else self.source


class ArithmeticPointSpec(_Sourced):
    """One operation at one width: ``energy_pj`` per operation and ``area_um2`` of the unit."""

    op: ArithmeticOp
    bits: Annotated[int, Field(ge=1, le=64)]
    energy_pj: PositiveFloat
    area_um2: PositiveFloat


class BitLawSpec(_Sourced):
    """How an integer operation's cost extends between and beyond its table points (see
    :mod:`~hwsim.energy.laws`)."""

    variable: Literal["bits", "bits_product"]
    min_bits: Annotated[int, Field(ge=1)] = 1
    max_bits: Annotated[int, Field(ge=1)] = 64


class RegisterSpec(_Sourced):
    """One register bit, characterised at its own node and voltage."""

    node_nm: PositiveFloat
    voltage_v: PositiveFloat
    read_energy_pj_per_bit: NonNegativeFloat
    write_energy_pj_per_bit: NonNegativeFloat
    area_um2_per_bit: PositiveFloat


class IdleSpec(_Sourced):
    """Energy of an idle (clock-gated) MAC slot as a fraction of the MAC it could have done."""

    fraction_of_mac: Annotated[float, Field(ge=0, le=1)]


class VectorOpSpec(_Sourced):
    """An elementwise/pooling element operation on a vector unit: integer adds plus register accesses."""

    adds: Annotated[int, Field(ge=0)] = 1
    register_accesses: Annotated[int, Field(ge=0)] = 2


class VectorSpec(_Spec):
    """Vector-unit rules: the element op, and the lane width operands are unpacked to."""

    op: VectorOpSpec
    lane_bits: Annotated[int, Field(ge=1)] = 8


class SramPointSpec(_Sourced):
    """Energy of one ``access_bits`` read from an SRAM (bank) of ``capacity_bytes``."""

    capacity_bytes: Annotated[int, Field(ge=1)]
    energy_pj: PositiveFloat


class ValueSpec(_Sourced):
    """A single sourced number."""

    value: NonNegativeFloat


class SramSpec(_Spec):
    """SRAM energy against capacity (sourced points), plus the width, write, area and leakage rules."""

    access_bits: Annotated[int, Field(ge=1)]
    read_points: Annotated[list[SramPointSpec], Field(min_length=2)]
    write_to_read_ratio: ValueSpec
    width_exponent: ValueSpec
    cell_area_um2: ValueSpec
    array_efficiency: ValueSpec
    leakage_mw_per_mbit: ValueSpec

    @model_validator(mode="after")
    def _sorted_points(self):
        caps = [p.capacity_bytes for p in self.read_points]
        if caps != sorted(set(caps)):
            raise at_field(("read_points",), "capacities must be distinct and increasing", caps)
        if not 0 < self.array_efficiency.value <= 1:
            raise at_field(("array_efficiency", "value"), "must be in (0, 1]", self.array_efficiency.value)
        return self


class OffChipSpec(_Sourced):
    """An off-chip technology (DRAM, flash, a host link): energy per bit moved, read or written."""

    energy_pj_per_bit: PositiveFloat


class LogicLeakageSpec(_Sourced):
    """Leakage power per mm^2 of logic (multipliers, adders, registers) at its own node and voltage."""

    mw_per_mm2: NonNegativeFloat
    node_nm: PositiveFloat
    voltage_v: PositiveFloat


class FallbackSpec(_Sourced):
    """A declared fallback: an off-chip level whose technology the table lacks is priced as ``technology``."""

    technology: str


class EnergyTableSpec(_Spec):
    """A whole ``kind: energy_table`` file."""

    schema_version: Literal[1]
    kind: Literal["energy_table"]
    name: str
    description: str = ""
    node_nm: PositiveFloat
    voltage_v: PositiveFloat
    flavor: Literal["lp", "hp"] = "lp"
    scaling: str
    sources: dict[str, str]
    arithmetic: Annotated[list[ArithmeticPointSpec], Field(min_length=1)]
    bit_width_laws: dict[Literal["int_add", "int_mult"], BitLawSpec] = {}
    register_bit: RegisterSpec
    idle: IdleSpec
    vector: VectorSpec
    sram: SramSpec
    off_chip: dict[str, OffChipSpec] = {}
    logic_leakage: LogicLeakageSpec
    area_overhead_fraction: ValueSpec
    off_chip_fallback: FallbackSpec | None = None

    @model_validator(mode="after")
    def _cross_checks(self):
        seen = set()
        for i, p in enumerate(self.arithmetic):
            if (p.op, p.bits) in seen:
                raise at_field(("arithmetic", i), f"duplicate point {p.op} at {p.bits} bits")
            seen.add((p.op, p.bits))
        for op, law in self.bit_width_laws.items():
            if sum(1 for p in self.arithmetic if p.op == op) < 2:
                raise at_field(("bit_width_laws", op), "a law needs at least two table points to fit")
        if self.off_chip_fallback is not None and self.off_chip_fallback.technology not in self.off_chip:
            raise at_field(
                ("off_chip_fallback", "technology"),
                f"not in off_chip ({', '.join(self.off_chip)})",
                self.off_chip_fallback.technology,
            )
        for loc, item in _sourced_items(self):
            if item.source != "assumption" and item.source not in self.sources:
                close = difflib.get_close_matches(item.source, list(self.sources), n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise at_field(
                    loc + ("source",),
                    f"unknown source; {hint}use a key of sources "
                    f"({', '.join(self.sources)}) or 'assumption' with a note",
                    item.source,
                )
        return self


def _sourced_items(spec: EnergyTableSpec):
    """Every sourced entry of a table with its location, for the source-key check."""
    for i, p in enumerate(spec.arithmetic):
        yield ("arithmetic", i), p
    for op, law in spec.bit_width_laws.items():
        yield ("bit_width_laws", op), law
    yield ("register_bit",), spec.register_bit
    yield ("idle",), spec.idle
    yield ("vector", "op"), spec.vector.op
    for i, p in enumerate(spec.sram.read_points):
        yield ("sram", "read_points", i), p
    for name in (
        "write_to_read_ratio",
        "width_exponent",
        "cell_area_um2",
        "array_efficiency",
        "leakage_mw_per_mbit",
    ):
        yield ("sram", name), getattr(spec.sram, name)
    for name, o in spec.off_chip.items():
        yield ("off_chip", name), o
    yield ("logic_leakage",), spec.logic_leakage
    yield ("area_overhead_fraction",), spec.area_overhead_fraction
    if spec.off_chip_fallback is not None:
        yield ("off_chip_fallback",), spec.off_chip_fallback


class ScalingSpec(_Spec):
    """A whole ``kind: scaling`` file: energy polynomials in V per node and flavour, and area factors."""

    schema_version: Literal[1]
    kind: Literal["scaling"]
    name: str
    description: str = ""
    sources: dict[str, str]
    source: str
    nodes_nm: Annotated[list[float], Field(min_length=2)]
    energy_polynomial: dict[
        Literal["lp", "hp"], dict[float, Annotated[list[float], Field(min_length=3, max_length=3)]]
    ]
    area_factor: dict[float, list[float]]
    leakage_rule: Literal["like_energy"]

    @model_validator(mode="after")
    def _complete(self):
        if self.source not in self.sources:
            raise at_field(("source",), f"not a key of sources ({', '.join(self.sources)})", self.source)
        nodes = set(self.nodes_nm)
        for flavor, table in self.energy_polynomial.items():
            if set(table) != nodes:
                raise at_field(
                    ("energy_polynomial", flavor),
                    "needs exactly one entry per node of nodes_nm",
                    sorted(table),
                )
        if set(self.area_factor) != nodes:
            raise at_field(
                ("area_factor",), "needs exactly one row per node of nodes_nm", sorted(self.area_factor)
            )
        for node, row in self.area_factor.items():
            if len(row) != len(self.nodes_nm):
                raise at_field(
                    ("area_factor", node), f"needs {len(self.nodes_nm)} factors (one per node)", row
                )
        return self


def energy_model_names() -> list[str]:
    """Names of the shipped energy tables (``energy_models/*.yaml`` with ``kind: energy_table``), sorted."""
    return sorted(p.stem for p in data_dir("energy_models").glob("*.yaml") if _kind_of(p) == "energy_table")


def scaling_names() -> list[str]:
    """Names of the shipped scaling tables (``kind: scaling``), sorted."""
    return sorted(p.stem for p in data_dir("energy_models").glob("*.yaml") if _kind_of(p) == "scaling")


def _kind_of(path: Path) -> str:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("kind:"):
            return line.split(":", 1)[1].split("#")[0].strip()
    return ""


def _resolve(name_or_path: str | Path, names: list[str], what: str) -> Path:
    text = str(name_or_path)
    path = Path(text)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return path
    if text not in names:
        close = difflib.get_close_matches(text, names, n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise RegistryError(
            f"unknown {what} {text!r}.{hint} Valid: {', '.join(names)} (or a path to a .yaml file)"
        )
    return data_dir("energy_models") / f"{text}.yaml"


def load_energy_table(name_or_path: str | Path) -> EnergyTableSpec:
    """A shipped energy table by name (``hwsim list energy-models``), or a table file by path."""
    path = _resolve(name_or_path, energy_model_names(), "energy model")
    return _load_cached(EnergyTableSpec, str(path.resolve()), _mtime_ns(path))


def load_scaling(name_or_path: str | Path) -> ScalingSpec:
    """A shipped scaling table by name, or a scaling file by path."""
    path = _resolve(name_or_path, scaling_names(), "scaling table")
    return _load_cached(ScalingSpec, str(path.resolve()), _mtime_ns(path))


def _mtime_ns(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return -1  # load_spec reports the unreadable file


@lru_cache(maxsize=64)
def _load_cached(spec: type, path: str, mtime_ns: int):
    """Parsed specs are frozen, so one parse per file version is shared (YAML parsing is most of a cold
    run)."""
    return load_spec(spec, Path(path))
