"""The recommended point of an experiment: of the points that meet the constraints of the experiment file's
``select:`` section, the best by its ``minimize`` objective, and the reasons, for the report.

A point that lacks a constrained value (a failed point, or a metric not measured) does not meet that
constraint, and a point whose simulation timed under 90 % of the MACs another point of the same workload
timed (ops left to a host CPU that is not timed, as Vela leaves a convolution with non-8-bit weights) is
not comparable and is never recommended (devices differ by less in what they count, e.g. a pool's
adds). Ties on the objective go to the higher integer top-1, then the lower energy, then the sweep order.
Without a ``select:`` section the report applies a stated default: within 1 point of the float model's
top-1 (when accuracy is measured; a language model: within 1 % of its float perplexity), the lowest value
of the experiment's Pareto cost. An experiment over
several workloads gets one recommended point per workload (:func:`select_points`): the question is which
setting to use for a given model, and two models' energies are not alternatives to each other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from hwsim.experiment.spec import SelectSpec

UNTIMED = 0.9  # below this share of the workload's most MACs, a point left ops untimed
OBJECTIVES = {
    "energy": ("energy_uj", "µJ"),
    "latency": ("latency_ms", "ms"),
    "power": ("power_mw", "mW"),
    "area": ("area_mm2", "mm²"),
    "accuracy_drop": ("accuracy_drop", "points"),
}
CONSTRAINTS = {
    "max_accuracy_drop": ("accuracy_drop", "<=", "top-1 drop vs float", "points"),
    "min_accuracy": ("integer_top1_pct", ">=", "integer top-1", "%"),
    "max_perplexity_increase": ("perplexity_increase", "<=", "perplexity increase vs float", "%"),
    "max_latency_ms": ("latency_ms", "<=", "latency", "ms"),
    "max_energy_uj": ("energy_uj", "<=", "energy", "µJ"),
    "max_power_mw": ("power_mw", "<=", "power", "mW"),
    "max_area_mm2": ("area_mm2", "<=", "area", "mm²"),
    "all_macs_timed": ("macs", "==", "every MAC of the network timed", ""),
}


def value(row: dict, column: str) -> float:
    """A row's number for ``column`` (NaN when absent); ``accuracy_drop`` is float minus integer top-1 in
    percentage points, ``integer_top1_pct`` the integer top-1 in %."""
    try:
        if column == "accuracy_drop":
            return 100 * (float(row["float_top1"]) - float(row["integer_top1"]))
        if column == "integer_top1_pct":
            return 100 * float(row["integer_top1"])
        if column == "perplexity_increase":
            return 100 * (float(row["perplexity"]) / float(row["float_perplexity"]) - 1)
        return float(row[column])
    except (KeyError, TypeError, ValueError):
        return math.nan


@dataclass
class Selection:
    """What :func:`select_point` found: the point (None when none meets the constraints) and the reasons."""

    point: dict | None
    rule: SelectSpec
    declared: bool
    total: int
    meeting: list[dict] = field(default_factory=list)
    failing: dict[str, int] = field(default_factory=dict)
    scope: str = ""  # the workload the point is for, when the experiment has several

    def constraints_text(self) -> str:
        """``top-1 drop vs float <= 1 points, latency <= 5 ms`` (or ``no constraints``)."""
        parts = [
            f"{CONSTRAINTS[k][2]} {CONSTRAINTS[k][1]} {v:g} {CONSTRAINTS[k][3]}"
            for k, v in self.rule.model_dump().items()
            if k in CONSTRAINTS and v is not None
        ]
        if "all_macs_timed" in self.failing:
            parts.append(CONSTRAINTS["all_macs_timed"][2])
        return ", ".join(parts) or "no constraints"

    def objective(self) -> tuple[str, str]:
        """(column, unit) of the objective."""
        return OBJECTIVES[self.rule.minimize]


def timed(rows: list[dict]) -> list[dict]:
    """``rows`` without the points that left ops untimed (see the module docstring); rows without a MAC
    count are kept."""
    most: dict = {}
    for r in rows:
        if math.isfinite(value(r, "macs")):
            most[r.get("workload")] = max(most.get(r.get("workload"), 0.0), value(r, "macs"))
    return [
        r
        for r in rows
        if not math.isfinite(value(r, "macs")) or value(r, "macs") >= UNTIMED * most[r.get("workload")]
    ]


def default_rule(rows: list[dict], pareto_cost: str) -> SelectSpec:
    """The rule used when the experiment declares none (see the module docstring)."""
    minimize = next((k for k, (col, _) in OBJECTIVES.items() if col == pareto_cost.lstrip("-")), "energy")
    ok = [r for r in rows if r.get("status") == "ok"]
    measured = any(math.isfinite(value(r, "accuracy_drop")) for r in ok)
    perplexity = any(math.isfinite(value(r, "perplexity_increase")) for r in ok)
    return SelectSpec(
        max_accuracy_drop=1.0 if measured else None,
        max_perplexity_increase=1.0 if perplexity else None,
        minimize=minimize,
    )


def select_point(rows: list[dict], rule: SelectSpec | None, pareto_cost: str = "energy_uj") -> Selection:
    """The recommended point of ``rows`` under ``rule`` (None: :func:`default_rule`)."""
    declared = rule is not None
    rule = rule or default_rule(rows, pareto_cost)
    ok = [r for r in rows if r.get("status") == "ok"]
    failing: dict[str, int] = {}
    meeting = []
    complete = {id(r) for r in timed(ok)}
    for r in ok:
        good = True
        if id(r) not in complete:
            failing["all_macs_timed"] = failing.get("all_macs_timed", 0) + 1
            good = False
        for key, limit in rule.model_dump().items():
            if key not in CONSTRAINTS or limit is None:
                continue
            column, op, _, _ = CONSTRAINTS[key]
            v = value(r, column)
            if not (math.isfinite(v) and (v <= limit + 1e-9 if op == "<=" else v >= limit - 1e-9)):
                failing[key] = failing.get(key, 0) + 1
                good = False
        if good:
            meeting.append(r)
    column = OBJECTIVES[rule.minimize][0]
    meeting = [r for r in meeting if math.isfinite(value(r, column))]

    def key(r: dict) -> tuple:
        top1 = value(r, "integer_top1_pct")
        energy = value(r, "energy_uj")
        return (
            value(r, column),
            -top1 if math.isfinite(top1) else 0.0,
            energy if math.isfinite(energy) else 0.0,
            int(r.get("index", 0)),
        )

    meeting.sort(key=key)
    failing = {k: failing[k] for k in CONSTRAINTS if k in failing}
    return Selection(meeting[0] if meeting else None, rule, declared, len(rows), meeting, failing)


def select_points(
    rows: list[dict], rule: SelectSpec | None, pareto_cost: str = "energy_uj"
) -> list[Selection]:
    """:func:`select_point` for each workload of ``rows`` (one selection when there is one workload)."""
    workloads = list(dict.fromkeys(str(r.get("workload")) for r in rows))
    if len(workloads) <= 1:
        return [select_point(rows, rule, pareto_cost)]
    out = []
    for w in workloads:
        sel = select_point([r for r in rows if str(r.get("workload")) == w], rule, pareto_cost)
        sel.scope = w
        out.append(sel)
    return out
