"""Figures of an experiment's results table (never a rerun): energy vs accuracy with the Pareto front,
latency and energy breakdowns, a roofline, and accumulator overflows vs width. Each writes PNG and SVG.

Every function takes the rows of :func:`hwsim.experiment.results.load_rows` and an output folder, and
returns the paths it wrote (none when the rows lack the columns it needs).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from hwsim.experiment.report import pareto_front  # noqa: E402

MARKERS = "osD^vP*Xh<>"
COLORS = plt.get_cmap("tab10").colors
CATEGORY_COLORS = {"multiplier": "#4C72B0", "accumulator": "#64B5CD", "idle": "#BBBBBB", "vector": "#55A868",
                   "register_file": "#8172B2", "sram": "#CCB974", "dram": "#C44E52", "flash": "#DA8BC3",
                   "link": "#937860", "leakage": "#333333"}
GRAN = {"per_tensor": "pt", "per_channel": "pc", "per_group": "pg"}


def _ok(rows: list[dict], *keys: str) -> list[dict]:
    out = []
    for r in rows:
        if r.get("status") != "ok":
            continue
        try:
            if all(math.isfinite(float(r[k])) for k in keys):
                out.append(r)
        except (KeyError, TypeError, ValueError):
            continue
    return out


def _log_x(ax) -> None:
    """Log x axis with plain-number major ticks and no minor tick labels (they overlap)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def short_source(text: str) -> str:
    """The energy source without its bracketed justification, and ``scaled by ...`` shortened."""
    text = str(text).split(" [")[0]
    return text.replace(" scaled by scaling_stillmaker_baas_2017", "").replace("scaled by ", "")


def point_label(r: dict) -> str:
    """A short name of a point's quantization: ``W8A8 pc``."""
    gran = GRAN.get(str(r.get("weights_granularity")), str(r.get("weights_granularity", "")))
    return f"W{r.get('weights_bits')}A{r.get('activations_bits')} {gran}"


def _save(fig, out: Path, stem: str) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{stem}.png", out / f"{stem}.svg"]
    fig.savefig(paths[0], dpi=110, bbox_inches="tight")
    fig.savefig(paths[1], bbox_inches="tight")
    plt.close(fig)
    return paths


def _styles(values: list) -> dict:
    return {v: i for i, v in enumerate(dict.fromkeys(values))}


def plot_pareto(rows: list[dict], out: str | Path, cost: str = "energy_uj", benefit: str = "integer_top1") -> list[Path]:
    """Energy per inference (log x) vs integer top-1: colour = device, marker = weight bits; the Pareto
    front is a dashed line through black-edged points, each labelled."""
    pts = _ok(rows, cost, benefit)
    if not pts:
        return []
    dev = _styles([r["device"] for r in pts])
    bits = _styles([r.get("weights_bits") for r in pts])
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for r in pts:
        ax.scatter(float(r[cost]), 100 * float(r[benefit]), s=46, color=COLORS[dev[r["device"]] % 10],
                   marker=MARKERS[bits[r.get("weights_bits")] % len(MARKERS)], alpha=0.85, zorder=2)
    front = pareto_front(pts, cost, benefit)
    ax.plot([float(r[cost]) for r in front], [100 * float(r[benefit]) for r in front], "k--", lw=1, zorder=1,
            label="Pareto front")
    ax.scatter([float(r[cost]) for r in front], [100 * float(r[benefit]) for r in front], s=90, facecolors="none",
               edgecolors="k", linewidths=1.4, zorder=3)
    labels: dict[tuple[float, float], list[str]] = {}
    for r in front:
        labels.setdefault((float(r[cost]), 100 * float(r[benefit])), []).append(f"{point_label(r)}")
    for (x, y), names in labels.items():
        ax.annotate(" = ".join(names), (x, y), textcoords="offset points", xytext=(7, -12), fontsize=8)
    _log_x(ax)
    ax.set_xlabel("energy per inference (µJ, log scale)" if cost == "energy_uj" else cost)
    ax.set_ylabel("top-1 accuracy, integer datapath (%)")
    sources = {short_source(r.get("energy_source", "")) for r in pts}
    source = sources.pop() if len(sources) == 1 else \
        f"{short_source(pts[0].get('energy_source', '')).split()[0]}, each device's node"
    ax.set_title(f"Energy vs accuracy ({len(pts)} points; energy: {source})", fontsize=10)
    handles = [plt.Line2D([], [], color=COLORS[i % 10], marker="o", ls="", label=d) for d, i in dev.items()]
    handles += [plt.Line2D([], [], color="0.4", marker=MARKERS[i % len(MARKERS)], ls="", label=f"{b}-bit weights")
                for b, i in bits.items()]
    handles += [plt.Line2D([], [], color="k", ls="--", label="Pareto front")]
    ax.legend(handles=handles, fontsize=8, loc="best")
    ax.grid(True, which="both", alpha=0.3)
    return _save(fig, Path(out), "energy_vs_accuracy")


def _bar_labels(pts: list[dict]) -> list[str]:
    """One label per point from the columns that vary (quantization shown as ``W8A8 pc``)."""
    from hwsim.experiment.report import swept_columns

    quant = {"weights_bits", "weights_granularity", "activations_bits", "recipe.weights.bits",
             "recipe.weights.granularity", "recipe.weights", "recipe.activations.bits"}
    cols = swept_columns(pts)
    labels = []
    for r in pts:
        parts = [str(r[c]) if c in ("device", "workload", "recipe") else f"{c.split('.')[-1]}={r.get(c)}"
                 for c in cols if c not in quant]
        if any(c in quant for c in cols):
            parts.append(point_label(r))
        labels.append(" | ".join(parts) or point_label(r))
    return labels


def plot_breakdowns(rows: list[dict], out: str | Path, limit: int = 40) -> list[Path]:
    """Per point, latency split into compute and memory stall (left) and energy by component (right)."""
    pts = _ok(rows, "latency_ms")[:limit]
    if not pts:
        return []
    has_energy = all("energy_by_component_pj" in r for r in pts)
    fig, axes = plt.subplots(1, 2 if has_energy else 1, figsize=(11 if has_energy else 6.5, 0.32 * len(pts) + 1.6),
                             sharey=True, squeeze=False)
    y = range(len(pts))
    ax = axes[0][0]
    scale = [float(r["latency_ms"]) / max(float(r["cycles"]), 1) for r in pts]
    comp = [float(r["compute_cycles"]) * s for r, s in zip(pts, scale)]
    stall = [float(r["stall_cycles"]) * s for r, s in zip(pts, scale)]
    ax.barh(y, comp, color="#4C72B0", label="compute")
    ax.barh(y, stall, left=comp, color="#DD8452", label="memory stall")
    ax.set_yticks(list(y))
    ax.set_yticklabels(_bar_labels(pts), fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("latency per inference (ms)")
    ax.set_title("Latency breakdown", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(True, axis="x", alpha=0.3)
    if has_energy:
        ax = axes[0][1]
        parts = [json.loads(r["energy_by_component_pj"]) if isinstance(r["energy_by_component_pj"], str)
                 else r["energy_by_component_pj"] for r in pts]
        cats = [c for c in CATEGORY_COLORS if any(c in p for p in parts)]
        cats += sorted({c for p in parts for c in p} - set(cats))
        left = [0.0] * len(pts)
        for c in cats:
            vals = [p.get(c, 0.0) / 1e6 for p in parts]
            ax.barh(y, vals, left=left, color=CATEGORY_COLORS.get(c), label=c.replace("_", " "))
            left = [a + b for a, b in zip(left, vals)]
        ax.set_xlabel("energy per inference (µJ)")
        ax.set_title(f"Energy breakdown ({short_source(pts[0].get('energy_source', ''))})", fontsize=10)
        ax.legend(fontsize=8, loc="lower right")
        ax.grid(True, axis="x", alpha=0.3)
    return _save(fig, Path(out), "breakdown")


def plot_roofline(rows: list[dict], out: str | Path) -> list[Path]:
    """Achieved GOPS vs operational intensity (ops per off-chip byte), log-log, under each device's roof."""
    pts = _ok(rows, "macs", "latency_ms", "offchip_bytes", "peak_gmacs_per_s", "offchip_gbytes_per_s")
    pts = [r for r in pts if float(r["offchip_bytes"]) > 0 and float(r["latency_ms"]) > 0]
    if not pts:
        return []
    dev = _styles([r["device"] for r in pts])
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    xs = [2 * float(r["macs"]) / float(r["offchip_bytes"]) for r in pts]
    lo, hi = min(xs) / 10, max(xs) * 10
    seen = set()
    for r, x in zip(pts, xs):
        c = COLORS[dev[r["device"]] % 10]
        gops = 2 * float(r["macs"]) / (float(r["latency_ms"]) * 1e-3) / 1e9
        ax.scatter(x, gops, color=c, s=40, zorder=3)
        key = (r["device"], r["peak_gmacs_per_s"], r["offchip_gbytes_per_s"])
        if key not in seen:
            seen.add(key)
            peak, bw = 2 * float(r["peak_gmacs_per_s"]), float(r["offchip_gbytes_per_s"])
            grid = [lo * (hi / lo) ** (i / 100) for i in range(101)]
            ax.plot(grid, [min(peak, g * bw) for g in grid], color=c, lw=1.2, label=f"{r['device']} roof")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("operational intensity (ops per off-chip byte)")
    ax.set_ylabel("achieved performance (GOPS, 2 ops per MAC)")
    ax.set_title("Roofline: whole-network points under each device's roof", fontsize=10)
    ax.legend(fontsize=8, loc="best")
    ax.grid(True, which="both", alpha=0.3)
    return _save(fig, Path(out), "roofline")


def plot_overflow(rows: list[dict], out: str | Path) -> list[Path]:
    """Overflow rate (log) and integer top-1 vs accumulator width, one line per order and overflow mode."""
    pts = _ok(rows, "accumulator_bits", "overflow_rate")
    if len({r["accumulator_bits"] for r in pts}) < 2:
        return []
    groups: dict[str, list[dict]] = {}
    for r in pts:
        key = f"{r.get('workload')} {r.get('accumulation_order', 'natural')} order, {r.get('accumulator_overflow')}"
        groups.setdefault(key, []).append(r)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.4))
    floor = min([float(r["overflow_rate"]) for r in pts if float(r["overflow_rate"]) > 0] or [1e-6]) / 10
    for i, (key, rs) in enumerate(sorted(groups.items())):
        rs = sorted(rs, key=lambda r: int(r["accumulator_bits"]))
        bits = [int(r["accumulator_bits"]) for r in rs]
        style = dict(color=COLORS[i % 10], marker=MARKERS[i % len(MARKERS)], label=key)
        a1.plot(bits, [max(float(r["overflow_rate"]), floor) for r in rs], **style)
        if all("integer_top1" in r for r in rs):
            a2.plot(bits, [100 * float(r["integer_top1"]) for r in rs], **style)
    widths = sorted({int(r["accumulator_bits"]) for r in pts})
    for ax in (a1, a2):
        ax.set_xticks(widths)
    a1.set_yscale("log")
    a1.axhline(floor, color="0.6", lw=0.8, ls=":")
    a1.text(a1.get_xlim()[0], floor, " no overflow", va="bottom", fontsize=7, color="0.4")
    a1.set_xlabel("accumulator width (bits)")
    a1.set_ylabel("overflows per accumulation (log)")
    a1.set_title("Accumulator overflow rate", fontsize=10)
    a2.set_xlabel("accumulator width (bits)")
    a2.set_ylabel("top-1 accuracy, integer datapath (%)")
    a2.set_title("Accuracy as the accumulator narrows", fontsize=10)
    for ax in (a1, a2):
        ax.grid(True, which="both", alpha=0.3)
    a2.legend(fontsize=7, loc="lower right")
    return _save(fig, Path(out), "overflow_vs_width")


def llm_label(r: dict) -> str:
    """A language-model point's quantization: ``W4 g32 A16 KV8 gptq``."""
    group = r.get("group_size")
    kv = r.get("kv_bits")
    gptq = " gptq" if str(r.get("recipe.gptq", r.get("gptq", ""))) not in ("", "None", "nan") else ""
    g = f" g{int(float(group))}" if group not in (None, "") and str(group) != "nan" else ""
    return f"W{r.get('weights_bits')}{g} A{r.get('activations_bits')} KV{kv}{gptq}"


def plot_llm(rows: list[dict], out: str | Path) -> list[Path]:
    """Perplexity (integer path) vs energy per decoded token and vs decode tokens/s, side by side: colour =
    device, marker = KV-cache bits; the float model's perplexity is a grey line, the Pareto points are
    black-edged and labelled."""
    pts = _ok(rows, "perplexity", "energy_per_token_uj", "decode_tokens_per_s")
    if not pts:
        return []
    dev = _styles([r["device"] for r in pts])
    kv = _styles([r.get("kv_bits") for r in pts])
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8), sharey=True)
    for ax, cost in zip(axes, ("energy_per_token_uj", "-decode_tokens_per_s")):
        key = cost.lstrip("-")
        for r in pts:
            ax.scatter(float(r[key]), float(r["perplexity"]), s=46, color=COLORS[dev[r["device"]] % 10],
                       marker=MARKERS[kv[r.get("kv_bits")] % len(MARKERS)], alpha=0.85, zorder=2)
        front = pareto_front(pts, cost, "-perplexity")
        ax.scatter([float(r[key]) for r in front], [float(r["perplexity"]) for r in front], s=90,
                   facecolors="none", edgecolors="k", linewidths=1.4, zorder=3)
        for r in front:
            ax.annotate(llm_label(r), (float(r[key]), float(r["perplexity"])), textcoords="offset points",
                        xytext=(6, 4), fontsize=7)
        ax.axhline(float(pts[0]["float_perplexity"]), color="0.5", lw=1, ls=":", label="float model")
        ax.set_xlabel("energy per decoded token (µJ, log scale)" if key == "energy_per_token_uj"
                      else "decode tokens/s (log scale)")
        _log_x(ax)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel(f"perplexity, integer path ({pts[0].get('quality_model', '')})")
    handles = [plt.Line2D([], [], color=COLORS[i % 10], marker="o", ls="", label=d) for d, i in dev.items()]
    handles += [plt.Line2D([], [], color="0.4", marker=MARKERS[i % len(MARKERS)], ls="", label=f"KV {k}-bit")
                for k, i in kv.items()]
    handles += [plt.Line2D([], [], color="0.5", ls=":", label="float model")]
    axes[1].legend(handles=handles, fontsize=8, loc="best")
    models = sorted({str(r.get("model")) for r in pts})
    fig.suptitle(f"Perplexity vs cost per token ({len(pts)} points; cost of {', '.join(models)}, "
                 f"decode at KV length {pts[0].get('kv_len')})", fontsize=10)
    return _save(fig, Path(out), "perplexity_vs_cost")


PLOTTERS = {"pareto": plot_pareto, "breakdown": plot_breakdowns, "roofline": plot_roofline,
            "overflow": plot_overflow, "llm": plot_llm}


def draw(rows: list[dict], out: str | Path, which: list[str] | None = None) -> list[Path]:
    """Every plot in ``which`` (None: all that the columns allow; an empty list draws none); the paths written."""
    paths: list[Path] = []
    for name in list(PLOTTERS) if which is None else which:
        paths += PLOTTERS[name](rows, out)
    return paths
