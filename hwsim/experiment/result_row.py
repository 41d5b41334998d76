"""The result row of one sweep point, typed: :class:`ResultRow` and the records it is made of.

Every measured field carries its unit in its name (``latency_ms``, ``offchip_bytes``, ``energy_pj``,
``clock_mhz``); counts are plain (``cycles``, ``macs``, ``overflows``) and ratios are fractions
(``mac_utilization``, ``overflow_rate``). The columns of ``rows.jsonl``, ``rows.csv`` and ``rows.parquet``
follow from these fields in their order (:meth:`ResultRow.as_dict`): the point's identity, its swept axes,
its recipe, provenance, then each measured record that the point's metrics asked for. A record that was not
measured leaves its columns out (the report and the plots look at which columns a table has), and a
failed point is its identity, axes, recipe and provenance with ``status: error`` and the message.
Two parts stay open mappings because their columns depend on the data and the workload: the accuracy
``scores`` (top-5 only with 5 classes or more, MSE only with real targets) and a language model's ``lm``
columns (:mod:`hwsim.llm.experiment`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

FIXED_AXES = ("workload", "device", "recipe")  # columns of their own, so never repeated as axes


@dataclass(frozen=True)
class RecipeColumns:
    """The quantization a point used (all None for a model that came already quantized)."""

    weights_bits: int | None
    weights_granularity: str | None
    activations_bits: int | None
    accumulator_bits: int | None
    accumulator_overflow: str | None
    rounding: str | None


AS_QUANTIZED = RecipeColumns(None, None, None, None, None, None)


@dataclass(frozen=True)
class Verification:
    """hwsim's integer graph against ONNX Runtime on the same quantized model
    (:func:`hwsim.verify.compare.verify`)."""

    bit_exact: bool
    verify_ops: int
    verify_ops_exact: int
    verify_elements: int
    verify_exact_elements: int
    verify_max_lsb: int


@dataclass(frozen=True)
class Costs:
    """What the simulator measured of the point's graph on its device
    (:func:`hwsim.schedule.simulate.simulate`)."""

    latency_ms: float
    cycles: int
    compute_cycles: int
    stall_cycles: int
    macs: int
    mac_utilization: float
    offchip_bytes: int
    peak_gmacs_per_s: float
    offchip_gbytes_per_s: float
    clock_mhz: float
    layer_cycles: str  # JSON {op: cycles}
    cpu_ops: int  # ops left to the host CPU, which latency and energy do not count
    cpu_reasons: str  # JSON {reason: ops}


@dataclass(frozen=True)
class EnergyCosts:
    """Energy, power and area of the point (:func:`hwsim.experiment.costs.energy_power_area`)."""

    energy_pj: float
    energy_uj: float
    power_mw: float
    peak_power_mw: float
    leakage_pj: float
    tops_per_w: float
    area_mm2: float
    energy_source: str
    energy_by_component_pj: str  # JSON {component: pJ}


@dataclass(frozen=True)
class Overflow:
    """Accumulator overflows counted over the evaluation, and their share of all accumulations."""

    overflows: int
    overflow_rate: float


def _omit_empty():
    """A field whose column is left out while it is None (a record not measured)."""
    return field(default=None, metadata={"omit_empty": True})


@dataclass(kw_only=True)
class ResultRow:
    """One point's row (see the module docstring): its fields in table order; :meth:`as_dict` gives its
    columns. A record field (:class:`Costs`, ...) gives one column per field of the record; a mapping field
    one column per key."""

    run_id: str
    index: int
    status: str = ""  # ok | error
    error: str = ""  # "<exception type>: <first line> [file:line]" of a failed point
    workload: str
    device: str
    recipe: str  # the recipe's label ("(as quantized)" for a model that came quantized)
    axes: dict[str, Any]  # swept value by axis path (workload, device and recipe have their columns)
    quantization: RecipeColumns
    accumulation_order: str
    node_nm: float | None
    hwsim_version: str
    git_commit: str
    seed: int
    semantics: str | None = _omit_empty()  # the runtime an already-quantized model was scored under
    scores: dict[str, Any] = field(default_factory=dict)
    verification: Verification | None = _omit_empty()
    lm: dict[str, Any] = field(default_factory=dict)
    costs: Costs | None = _omit_empty()
    energy: EnergyCosts | None = _omit_empty()
    overflow: Overflow | None = _omit_empty()
    input_hashes: str | None = _omit_empty()  # JSON {workload, recipe, device: 16 hex digits of SHA-256}

    def as_dict(self) -> dict[str, Any]:
        """The row's columns in table order; records not measured and empty optional fields are left out."""
        row: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if dataclasses.is_dataclass(value):
                row.update(dataclasses.asdict(value))
            elif f.name == "axes":
                row.update({k: v for k, v in value.items() if k not in FIXED_AXES})
            elif isinstance(value, dict):
                row.update(value)
            elif value is not None or not f.metadata.get("omit_empty"):
                row[f.name] = value
        return row
