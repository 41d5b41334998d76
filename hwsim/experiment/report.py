"""The per-experiment Markdown report."""

from __future__ import annotations

import math
from pathlib import Path

from hwsim.experiment.rows import pareto_front, swept_columns

LABELS = {
    "energy_uj": "energy (uJ/inference)",
    "integer_top1": "integer top-1 (%)",
    "perplexity": "perplexity",
    "energy_per_token_uj": "energy (uJ/token)",
    "decode_tokens_per_s": "decode tokens/s",
    "latency_ms": "latency (ms)",
    "area_mm2": "area (mm^2)",
    "power_mw": "power (mW)",
}
LLM_COLUMNS = (
    "perplexity",
    "float_perplexity",
    "agreement",
    "ttft_ms",
    "decode_tokens_per_s",
    "bound_tokens_per_s",
    "energy_per_token_uj",
    "weight_bytes_per_token",
    "kv_bytes_per_token",
)
PARETO_METRICS = (
    "integer_top1",
    "float_top1",
    *LLM_COLUMNS,
    "latency_ms",
    "energy_uj",
    "power_mw",
    "peak_power_mw",
    "area_mm2",
)
ALL_METRICS = (
    "integer_top1",
    "fake_quant_top1",
    *LLM_COLUMNS,
    "overflows",
    "bit_exact",
    "latency_ms",
    "energy_uj",
    "power_mw",
    "area_mm2",
)


def _fmt(value) -> str:
    if isinstance(value, float):
        if not math.isfinite(value):
            return ""
        return f"{value:.4g}"
    return "" if value is None else str(value)


def markdown_table(rows: list[dict], cols: list[str]) -> str:
    """A GitHub Markdown table of ``cols``."""
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        cells = []
        for c in cols:
            v = r.get(c)
            if c.endswith("top1") and isinstance(v, (int, float)):
                v = f"{100 * v:.2f}"
            cells.append(_fmt(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def pareto_table(rows: list[dict], cost: str = "energy_uj", benefit: str = "integer_top1") -> str:
    """The Markdown table of the Pareto points: swept values, accuracy, latency, energy, power, area."""
    front = pareto_front(rows, cost, benefit)
    metrics = [c for c in PARETO_METRICS if any(c in r for r in front)]
    return markdown_table(front, swept_columns(rows) + metrics)


def point_name(row: dict, cols: list[str]) -> str:
    """A point named by its swept values (``hexagon_like, weights_granularity per_tensor``)."""
    parts = [
        str(row.get(c)) if c in ("workload", "device", "recipe") else f"{c} {_fmt(row.get(c))}" for c in cols
    ]
    return ", ".join(parts) or str(row.get("run_id", "the only point"))


def _measures(row: dict) -> str:
    """The recommended point's numbers in one sentence."""
    from hwsim.experiment.select import value

    parts = []
    if math.isfinite(value(row, "integer_top1_pct")):
        drop = value(row, "accuracy_drop")
        parts.append(
            f"integer top-1 {value(row, 'integer_top1_pct'):.2f} %"
            + (
                f" (float {100 * float(row['float_top1']):.2f} %, drop {drop:.2f} points)"
                if math.isfinite(drop)
                else ""
            )
        )
    if math.isfinite(value(row, "perplexity_increase")):
        ppl, ref = float(row["perplexity"]), float(row["float_perplexity"])
        up = value(row, "perplexity_increase")
        parts.append(
            f"perplexity {ppl:.4g} (float {ref:.4g}, +{up:.2f} %), decode "
            f"{_fmt(value(row, 'decode_tokens_per_s'))} tokens/s"
        )
    for col, label, unit in (
        ("latency_ms", "latency", "ms"),
        ("energy_uj", "energy", "µJ"),
        ("power_mw", "power", "mW"),
        ("area_mm2", "area", "mm²"),
    ):
        if math.isfinite(value(row, col)):
            parts.append(f"{label} {_fmt(value(row, col))} {unit}")
    return ", ".join(parts)


def recommendation_lines(sels: list, rows: list[dict], pareto: tuple[str, str]) -> list[str]:
    """The report's "Recommended point" section (Markdown): the point, its numbers, and why; one point
    per workload when the experiment has several."""
    if len(sels) == 1:
        return ["## Recommended point", ""] + _recommendation(sels[0], rows, pareto)
    lines = ["## Recommended points (one per workload)", ""]
    for sel in sels:
        lines += [f"### {sel.scope}", ""] + _recommendation(
            sel, [r for r in rows if str(r.get("workload")) == sel.scope], pareto
        )
    return lines


def _recommendation(sel, rows: list[dict], pareto: tuple[str, str]) -> list[str]:
    from hwsim.experiment.select import CONSTRAINTS, value

    cols = [c for c in swept_columns(rows) if not (sel.scope and c == "workload")]
    column, unit = sel.objective()
    where = (
        "declared in the experiment file's `select:`"
        if sel.declared
        else "hwsim's default, as the experiment file has no `select:` section"
    )
    rule = f"{sel.constraints_text()}; then the lowest {sel.rule.minimize.replace('_', ' ')}"
    ok = [r for r in rows if r.get("status") == "ok"]
    fails = "; ".join(
        f"{n} leave some of the network's MACs untimed (ops on a host CPU hwsim does not time)"
        if k == "all_macs_timed"
        else f"{n} fail {CONSTRAINTS[k][2]}"
        for k, n in sel.failing.items()
    )
    lines: list[str] = []
    if sel.point is None:
        return lines + [
            f"**None: no point meets the constraints** ({rule}; rule {where}). Of {len(ok)} "
            f"measured points, {fails or 'none has the objective measured'}. Loosen `select:` or "
            f"widen the sweep.",
            "",
        ]
    p = sel.point
    lines += [
        f"**{point_name(p, cols)}** (point {p.get('index')}, run `{p.get('run_id')}`): {_measures(p)}.",
        "",
    ]
    objective = sel.rule.minimize.replace("_", " ")
    why = [
        f"Rule ({where}): {rule}.",
        f"{len(sel.meeting)} of {len(ok)} measured points meet the constraints"
        + (f" ({fails})" if fails else "")
        + f"; this one has the lowest {objective}, {_fmt(value(p, column))} {unit}.",
    ]
    same = [
        r
        for r in sel.meeting[1:]
        if value(r, column) == value(p, column)
        and _fmt(value(r, "integer_top1_pct")) == _fmt(value(p, "integer_top1_pct"))
    ]
    if same:
        why.append(
            f"{len(same)} other point{'s' if len(same) > 1 else ''} tie with it (the same {objective} "
            f"and top-1, e.g. {point_name(same[0], cols)}); ties go to the lower energy, then the "
            f"sweep order."
        )
    rest = [r for r in sel.meeting[1:] if not any(r is t for t in same)]
    if rest:
        a, b = value(p, column), value(rest[0], column)
        rel = f" (+{100 * (b - a) / a:.1f} %)" if a > 0 else ""
        why.append(f"Next best: {point_name(rest[0], cols)} at {_fmt(b)} {unit}{rel}.")
    front = pareto_front(rows, *pareto) if all(k.lstrip("-") in p for k in pareto) else []
    if front:
        names = [LABELS.get(k.lstrip("-"), k.lstrip("-")) for k in pareto]
        on = any(r is p or r.get("run_id") == p.get("run_id") for r in front)
        why.append(f"It is {'on' if on else 'not on'} the Pareto front of {names[0]} vs {names[1]}.")
    return lines + ["Why: " + " ".join(why), ""]


def report_sections(rows: list[dict], pareto: tuple[str, str]) -> list[tuple[str, str, list, list[str]]]:
    """The report's table sections in order: (id, title, rows, columns)."""
    ok = [r for r in rows if r.get("status") == "ok"]
    failed = [r for r in rows if r.get("status") != "ok"]
    cols = swept_columns(rows)
    out = []
    if ok and all(k.lstrip("-") in ok[0] for k in pareto):
        names = [LABELS.get(k.lstrip("-"), k.lstrip("-")) for k in pareto]
        front = pareto_front(rows, *pareto)
        metrics = [c for c in PARETO_METRICS if any(c in r for r in front)]
        out.append(("pareto", f"Pareto points ({names[0]} vs {names[1]})", front, cols + metrics))
    if any("bit_exact" in r for r in ok):
        out.append(
            (
                "bit-exactness",
                "Bit-exactness",
                ok,
                cols + ["bit_exact", "verify_ops_exact", "verify_ops", "verify_max_lsb"],
            )
        )
    if any("overflows" in r for r in ok) and len({r.get("accumulator_bits") for r in ok}) > 1:
        out.append(
            ("overflows", "Accumulator overflows", ok, cols + ["overflows", "overflow_rate", "integer_top1"])
        )
    if ok and len(ok) <= 80:
        metrics = [c for c in ALL_METRICS if any(c in r for r in ok)]
        out.append(("all", "All points", ok, cols + metrics))
    if failed:
        out.append(("failed", "Failed points", failed, ["index", "run_id"] + cols + ["error"]))
    return out


def provenance(rows: list[dict]) -> str:
    """One line: how many points ran, hwsim version, commit, seed and energy source."""
    ok = [r for r in rows if r.get("status") == "ok"]
    first = ok[0] if ok else (rows[0] if rows else {})
    return (
        f"{len(rows)} points, {len(ok)} ok, {len(rows) - len(ok)} failed. "
        f"hwsim {first.get('hwsim_version', '?')}, commit {str(first.get('git_commit', '?'))[:12]}, "
        f"seed {first.get('seed', '?')}. "
        f"Energy source: {'; '.join(sorted({str(r.get('energy_source')) for r in ok})) or 'n/a'}."
    )


def write_report(
    rows: list[dict],
    folder: str | Path,
    name: str,
    figures: list[Path],
    description: str = "",
    pareto: tuple[str, str] = ("energy_uj", "integer_top1"),
    select=None,
):
    """``report.md`` in ``folder``: the question, the recommended point and why, the Pareto table, then
    everything else (all points, failures, figures). Returns the recommendations
    (:class:`~hwsim.experiment.select.Selection`, one per workload)."""
    from hwsim.experiment.select import select_points

    folder = Path(folder)
    sels = select_points(rows, select, pareto[0])
    lines = [f"# Experiment `{name}`", ""]
    if description:
        lines += [f"**Question.** {description.strip()}", ""]
    lines += recommendation_lines(sels, rows, pareto)
    sections = report_sections(rows, pareto)
    for i, (_, title, part, cols) in enumerate(sections):
        lines += [f"## {title}", "", markdown_table(part, cols), ""]
        if i == 0:
            lines += ["## Everything else", "", provenance(rows), ""]
    if not sections:
        lines += [provenance(rows), ""]
    if figures:
        lines += ["## Figures", ""] + [f"![{p.stem}]({p.name})" for p in figures if p.suffix == ".png"] + [""]
    (folder / "report.md").write_text("\n".join(lines), encoding="utf-8")
    return sels
