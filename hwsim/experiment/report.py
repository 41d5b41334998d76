"""The Pareto front of a results table and the per-experiment Markdown report."""

from __future__ import annotations

import math
from pathlib import Path

LABELS = {"energy_uj": "energy (uJ/inference)", "integer_top1": "integer top-1 (%)",
          "perplexity": "perplexity", "energy_per_token_uj": "energy (uJ/token)", "decode_tokens_per_s": "decode tokens/s",
          "latency_ms": "latency (ms)", "area_mm2": "area (mm^2)", "power_mw": "power (mW)"}


LLM_COLUMNS = ("perplexity", "float_perplexity", "agreement", "ttft_ms", "decode_tokens_per_s",
               "bound_tokens_per_s", "energy_per_token_uj", "weight_bytes_per_token", "kv_bytes_per_token")


def _num(row: dict, key: str) -> float:
    if key.startswith("-"):  # a metric to minimise, given as the benefit
        return -_num(row, key[1:])
    try:
        value = float(row.get(key, math.nan))
    except (TypeError, ValueError):
        return math.nan
    return value


def pareto_front(rows: list[dict], cost: str = "energy_uj", benefit: str = "integer_top1") -> list[dict]:
    """Rows no other row beats: lower or equal ``cost`` and higher or equal ``benefit``, one strictly
    (``-latency_ms`` as the benefit means lower latency is better).

    Sorted by cost. Rows missing either value are ignored.

    >>> rows = [{"e": 1, "a": 0.9}, {"e": 2, "a": 0.95}, {"e": 3, "a": 0.94}, {"e": 1.5, "a": 0.9}]
    >>> [r["e"] for r in pareto_front(rows, "e", "a")]
    [1, 2]
    """
    ok = [r for r in rows if r.get("status", "ok") == "ok" and math.isfinite(_num(r, cost))
          and math.isfinite(_num(r, benefit))]
    front = []
    for r in ok:
        c, b = _num(r, cost), _num(r, benefit)
        dominated = any((_num(o, cost) <= c and _num(o, benefit) >= b) and (_num(o, cost) < c or _num(o, benefit) > b)
                        for o in ok)
        if not dominated:
            front.append(r)
    return sorted(front, key=lambda r: (_num(r, cost), -_num(r, benefit), r.get("index", 0)))


def _fmt(value) -> str:
    if isinstance(value, float):
        if not math.isfinite(value):
            return ""
        return f"{value:.4g}"
    return "" if value is None else str(value)


def swept_columns(rows: list[dict]) -> list[str]:
    """Columns describing the point that vary across rows (workload, device, recipe fields, axes)."""
    candidates = ["workload", "device", "recipe", "weights_bits", "weights_granularity", "activations_bits",
                  "accumulator_bits", "accumulator_overflow", "accumulation_order", "rounding", "node_nm"]
    varying = [c for c in candidates if len({str(r.get(c)) for r in rows}) > 1]
    seen = {tuple(str(r.get(c)) for r in rows) for c in varying}
    for k in columns_of(rows):
        if "." in k and len({str(r.get(k)) for r in rows}) > 1:
            values = tuple(str(r.get(k)) for r in rows)
            if values not in seen:  # an axis not already shown by a named column
                seen.add(values)
                varying.append(k)
    return varying


def columns_of(rows: list[dict]) -> list[str]:
    """All keys in first-seen order."""
    cols: dict[str, None] = {}
    for r in rows:
        cols.update(dict.fromkeys(r))
    return list(cols)


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
    metrics = [c for c in ("integer_top1", "float_top1", *LLM_COLUMNS, "latency_ms", "energy_uj", "power_mw",
                           "peak_power_mw", "area_mm2")
               if any(c in r for r in front)]
    return markdown_table(front, swept_columns(rows) + metrics)


def _picked(ok: list[dict], rows: list[dict]) -> list[str]:
    """The language-model section: the point :func:`hwsim.llm.experiment.pick_point` picks, and why."""
    if not any("perplexity" in r for r in ok):
        return []
    from hwsim.llm.experiment import BUDGET, pick_point

    best = pick_point(ok)
    head = [f"## Picked point (lowest energy per token within {BUDGET:.0%} of the float perplexity)", ""]
    if best is None:
        return head + ["No point has a perplexity within the budget.", ""]
    cols = swept_columns(rows) + [c for c in LLM_COLUMNS if c in best]
    return head + [markdown_table([best], cols), ""]


def write_report(rows: list[dict], folder: str | Path, name: str, figures: list[Path], description: str = "",
                 pareto: tuple[str, str] = ("energy_uj", "integer_top1")) -> Path:
    """``report.md`` in ``folder``: what ran, failures, the Pareto table and the figures."""
    folder = Path(folder)
    ok = [r for r in rows if r.get("status") == "ok"]
    failed = [r for r in rows if r.get("status") != "ok"]
    lines = [f"# Experiment `{name}`", ""]
    if description:
        lines += [description.strip(), ""]
    first = ok[0] if ok else (rows[0] if rows else {})
    lines += [f"{len(rows)} points, {len(ok)} ok, {len(failed)} failed. hwsim {first.get('hwsim_version', '?')}, "
              f"commit {str(first.get('git_commit', '?'))[:12]}, seed {first.get('seed', '?')}. "
              f"Energy source: {'; '.join(sorted({str(r.get('energy_source')) for r in ok})) or 'n/a'}.", ""]
    if ok and all(k.lstrip("-") in ok[0] for k in pareto):
        names = [LABELS.get(k.lstrip("-"), k.lstrip("-")) for k in pareto]
        lines += [f"## Pareto points ({names[0]} vs {names[1]})", "",
                  pareto_table(rows, *pareto), ""]
    if any("bit_exact" in r for r in ok):
        cols = swept_columns(rows) + ["bit_exact", "verify_ops_exact", "verify_ops", "verify_max_lsb"]
        lines += ["## Bit-exactness", "", markdown_table(ok, cols), ""]
    if any("overflows" in r for r in ok) and any(r.get("accumulator_bits") != ok[0].get("accumulator_bits") for r in ok):
        cols = swept_columns(rows) + ["overflows", "overflow_rate", "integer_top1"]
        lines += ["## Accumulator overflows", "", markdown_table(ok, cols), ""]
    lines += _picked(ok, rows)
    if ok and len(ok) <= 80:
        cols = [c for c in ("integer_top1", "fake_quant_top1", "agreement", "overflows", "bit_exact",
                            *LLM_COLUMNS, "latency_ms", "energy_uj", "power_mw", "area_mm2")
                if any(c in r for r in ok)]
        cols = list(dict.fromkeys(cols))
        lines += ["## All points", "", markdown_table(ok, swept_columns(rows) + cols), ""]
    if failed:
        lines += ["## Failed points", "", markdown_table(failed, ["index", "run_id"] + swept_columns(rows) + ["error"]),
                  ""]
    if figures:
        lines += ["## Figures", ""] + [f"![{p.stem}]({p.name})" for p in figures if p.suffix == ".png"] + [""]
    path = folder / "report.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
