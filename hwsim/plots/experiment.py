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

from hwsim.experiment.rows import pareto_front, swept_columns  # noqa: E402
from hwsim.experiment.select import timed  # noqa: E402

MARKERS = "osD^vP*Xh<>"
COLORS = plt.get_cmap("tab10").colors
CATEGORY_COLORS = {
    "multiplier": "#4C72B0",
    "accumulator": "#64B5CD",
    "idle": "#BBBBBB",
    "vector": "#55A868",
    "register_file": "#8172B2",
    "sram": "#CCB974",
    "dram": "#C44E52",
    "flash": "#DA8BC3",
    "link": "#937860",
    "leakage": "#333333",
}
GRAN = {"per_tensor": "pt", "per_channel": "pc", "per_group": "pg"}
DPI = 110


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


def node_of(source: str) -> str:
    """The technology of a shortened energy source (``28 nm, 0.9 V``).

    >>> node_of("horowitz_45nm to 28 nm, 0.9 V (lp)")
    '28 nm, 0.9 V'
    """
    import re

    m = re.search(r"to ([\d.]+ ?nm(?:, [\d.]+ ?V)?)", source)
    return m.group(1) if m else source


def point_label(r: dict) -> str:
    """A short name of a point's quantization: ``W8A8 pc``."""
    gran = GRAN.get(str(r.get("weights_granularity")), str(r.get("weights_granularity", "")))
    return f"W{r.get('weights_bits')}A{r.get('activations_bits')} {gran}"


def _save(fig, out: Path, stem: str) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{stem}.png", out / f"{stem}.svg"]
    fig.savefig(paths[0], dpi=DPI, bbox_inches="tight")
    fig.savefig(paths[1], bbox_inches="tight")
    plt.close(fig)
    return paths


def _styles(values: list) -> dict:
    return {v: i for i, v in enumerate(dict.fromkeys(values))}


def spread(centres, gap_px: float) -> list[tuple[float, float]]:
    """Pixel offsets that set points closer than ``gap_px`` side by side (up to four in a row, more in a
    near-square block, highest points on top) centred on the group's mean position, so no marker hides
    another; the rest stay put. A block that comes to touch another point joins its group, and the groups
    are laid out again until no two markers are closer than the gap."""

    def close(a, b) -> bool:
        return abs(a[0] - b[0]) < gap_px - 1e-6 and abs(a[1] - b[1]) < gap_px - 1e-6

    groups = [[i] for i in range(len(centres))]
    pos = list(centres)
    while True:
        merged = False
        for a in range(len(groups)):
            for b in range(a + 1, len(groups)):
                if any(close(pos[i], pos[j]) for i in groups[a] for j in groups[b]):
                    groups[a] += groups.pop(b)
                    merged = True
                    break
            if merged:
                break
        if not merged:
            return [(p[0] - c[0], p[1] - c[1]) for p, c in zip(pos, centres)]
        for g in groups:
            pos = _layout(g, centres, pos, gap_px)


def _layout(g: list[int], centres, pos: list, gap_px: float) -> list:
    """``pos`` with the members of group ``g`` laid out in rows around their mean position."""
    pos = list(pos)
    if len(g) == 1:
        pos[g[0]] = centres[g[0]]
        return pos
    gx = sum(centres[j][0] for j in g) / len(g)
    gy = sum(centres[j][1] for j in g) / len(g)
    per_row = len(g) if len(g) <= 4 else math.ceil(math.sqrt(len(g)))
    rows = math.ceil(len(g) / per_row)
    for k, j in enumerate(sorted(g, key=lambda j: (-round(centres[j][1]), centres[j][0], j))):
        in_row = min(per_row, len(g) - (k // per_row) * per_row)
        pos[j] = (
            gx + (k % per_row - (in_row - 1) / 2) * gap_px,
            gy + ((rows - 1) / 2 - k // per_row) * gap_px,
        )
    return pos


def _dodge(ax, xy: list[tuple[float, float]], gap_px: float) -> list[tuple[float, float]]:
    """:func:`spread` for points given in data coordinates of ``ax`` (offsets in pixels, y up)."""
    return spread([tuple(p) for p in ax.transData.transform(xy)], gap_px)


def varying_settings(rows: list[dict]) -> list[str]:
    """The swept columns that differ between rows, except the quantization ones (:func:`point_label` names
    those together)."""
    return [c for c in swept_columns(rows) if c not in QUANT]


QUANT = {
    "weights_bits",
    "weights_granularity",
    "activations_bits",
    "recipe.weights.bits",
    "recipe.weights.granularity",
    "recipe.weights",
    "recipe.activations.bits",
}


def settings(r: dict, cols: list[str], quant: bool) -> list[tuple[str, str]]:
    """A point's swept settings as (name, value) pairs: ``("", "W4A8 pc"), ("rounding", "half_up")``
    (quantization, device and workload without a name)."""
    parts = [("", point_label(r))] if quant else []
    return parts + [
        ("" if c in ("device", "workload", "recipe") else c.split(".")[-1], str(r.get(c))) for c in cols
    ]


def group_label(points: list[list[tuple[str, str]]], width: int = 48) -> str:
    """One label for the points at one place: settings they share said once, those that differ as the list
    of values (or their count when more than three), wrapped at ``width`` characters.

    >>> group_label([[("", "W6A8 pt"), ("", "hexagon_like")], [("", "W6A8 pc"), ("", "hexagon_like")]])
    'W6A8 pt = W6A8 pc, hexagon_like'
    """
    import textwrap

    parts = []
    for k, (name, _) in enumerate(points[0]):
        values = list(dict.fromkeys(p[k][1] for p in points))
        shown = " = ".join(values) if len(values) <= 3 else f"any of {len(values)}"
        parts.append(f"{name} {shown}" if name else shown)
    text = ", ".join(parts)
    if len(points) > 3:
        text = f"{len(points)} points: {text}"
    return "\n".join(textwrap.wrap(text, width, break_on_hyphens=False))


def pareto_figure(rows: list[dict], cost: str = "energy_uj", benefit: str = "integer_top1"):
    """The energy-vs-accuracy figure and where each point's marker is drawn (pixels): ``(fig, ax, pts,
    centres)``; None when no row has both values. Colour = device, marker = weight bits, filled =
    per-channel and hollow = per-tensor weights; points that would overlap are set side by side."""
    pts = _ok(rows, cost, benefit)
    if not pts:
        return None
    dev = _styles([r["device"] for r in pts])
    bits = _styles([r.get("weights_bits") for r in pts])
    grans = list(dict.fromkeys(str(r.get("weights_granularity")) for r in pts))
    fig, ax = plt.subplots(figsize=(8.5, 5.2), dpi=DPI)  # the dpi it is saved at: placement is in pixels
    xy = [(float(r[cost]), 100 * float(r[benefit])) for r in pts]
    xs, ys = [p[0] for p in xy], [p[1] for p in xy]
    log = min(xs) > 0 and max(xs) / min(xs) > 5
    if log:
        _log_x(ax)
    span = (max(ys) - min(ys)) or 1.0
    ax.set_xlim(
        min(xs) / 1.25 if log else min(xs) - 0.08 * (max(xs) - min(xs) or 1),
        max(xs) * 1.25 if log else max(xs) + 0.08 * (max(xs) - min(xs) or 1),
    )
    ax.set_ylim(min(ys) - 0.1 * span, max(ys) + 0.12 * span)
    size_pt = 8.0
    gap_px = size_pt * fig.dpi / 72 * 1.15
    offsets = _dodge(ax, xy, gap_px)
    centres = []
    from matplotlib.transforms import offset_copy

    complete = {id(r) for r in timed(pts)}
    for r, (x, y), (dx, dy) in zip(pts, xy, offsets):
        hollow = len(grans) > 1 and str(r.get("weights_granularity")) == "per_tensor"
        color = COLORS[dev[r["device"]] % 10]
        tr = offset_copy(ax.transData, fig=fig, x=dx * 72 / fig.dpi, y=dy * 72 / fig.dpi, units="points")
        ax.plot(
            [x],
            [y],
            marker=MARKERS[bits[r.get("weights_bits")] % len(MARKERS)],
            ms=size_pt,
            ls="",
            mfc="white" if hollow else color,
            mec=color,
            mew=1.6,
            alpha=0.9,
            zorder=3,
            transform=tr,
        )
        if id(r) not in complete:
            ax.plot(
                [x], [y], marker="x", ms=size_pt * 0.6, ls="", color="0.15", mew=1.2, zorder=4, transform=tr
            )
        cx, cy = ax.transData.transform((x, y))
        centres.append((cx + dx, cy + dy))
    front = pareto_front(pts, cost, benefit)
    ax.plot([float(r[cost]) for r in front], [100 * float(r[benefit]) for r in front], "k--", lw=1, zorder=1)
    cols = varying_settings(pts)
    quant = any(c in QUANT for c in swept_columns(pts))
    _label_front(fig, ax, pts, front, xy, centres, [settings(r, cols, quant) for r in pts])
    unit = "energy per inference (µJ" + (", log scale)" if log else ")")
    ax.set_xlabel(unit if cost == "energy_uj" else cost)
    ax.set_ylabel("top-1 accuracy, integer datapath (%)")
    sources = {short_source(r.get("energy_source", "")) for r in pts}
    source = (
        sources.pop()
        if len(sources) == 1
        else f"{short_source(pts[0].get('energy_source', '')).split()[0]}, each device's node"
    )
    ax.set_title(f"Energy vs accuracy ({len(pts)} points; energy: {source})", fontsize=10)
    handles = [plt.Line2D([], [], color=COLORS[i % 10], marker="o", ls="", label=d) for d, i in dev.items()]
    handles += [
        plt.Line2D([], [], color="0.4", marker=MARKERS[i % len(MARKERS)], ls="", label=f"{b}-bit weights")
        for b, i in bits.items()
    ]
    if len(grans) > 1:
        handles += [
            plt.Line2D([], [], color="0.4", marker="o", ls="", mfc=fill, label=label)
            for fill, label in (("0.4", "per-channel (filled)"), ("white", "per-tensor (hollow)"))
        ]
    if len(complete) < len(pts):
        handles += [plt.Line2D([], [], color="0.15", marker="x", ls="", label="some ops untimed (host CPU)")]
    handles += [plt.Line2D([], [], color="k", ls="--", label="Pareto front (labelled)")]
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    ax.grid(True, which="both", alpha=0.3)
    return fig, ax, pts, centres


def _label_front(fig, ax, pts: list[dict], front: list[dict], xy: list, centres: list, labels: list) -> None:
    """One label per place on the front (points at the same place share it: :func:`group_label`), at the
    first of several spots around the points (below or above, right or left, then further away) where it
    stays inside the axes and covers no marker and no earlier label."""
    from matplotlib.transforms import Bbox

    places: dict[tuple[float, float], list[int]] = {}
    for r in front:  # the front's points at one place have equal values (else one would dominate)
        i = pts.index(r)
        places.setdefault(tuple(round(v) for v in ax.transData.transform(xy[i])), []).append(i)
    renderer = fig.canvas.get_renderer()
    half = 6.0 * fig.dpi / 72  # about a marker's half width
    placed = [Bbox([[x - half, y - half], [x + half, y + half]]) for x, y in centres]
    inside = ax.bbox
    for idx in places.values():
        x0, x1 = min(centres[i][0] for i in idx), max(centres[i][0] for i in idx)
        y0, y1 = min(centres[i][1] for i in idx), max(centres[i][1] for i in idx)
        text = group_label([labels[i] for i in idx])
        spots = [
            (side, down, away) for away in range(6) for down in (True, False) for side in ("right", "left")
        ]
        chosen = None
        for side, down, away in spots:
            anchor = ((x0 if side == "right" else x1), (y0 if down else y1))
            dy = -(13 + 11 * away) if down else 7 + 11 * away
            ann = ax.annotate(
                text,
                ax.transData.inverted().transform(anchor),
                xytext=(4 if side == "right" else -4, dy),
                textcoords="offset points",
                ha="left" if side == "right" else "right",
                va="top" if down else "bottom",
                fontsize=7.5,
                bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.85},
            )
            box = ann.get_window_extent(renderer).padded(3)  # the text, its white box and a margin
            fits = inside.x0 <= box.x0 and box.x1 <= inside.x1 and inside.y0 <= box.y0 and box.y1 <= inside.y1
            if fits and not any(box.overlaps(b) for b in placed):
                chosen = box
                break
            ann.remove()
        if chosen is None:  # nowhere free: the first spot, inside the axes
            ann = ax.annotate(
                text,
                ax.transData.inverted().transform((x0, y0)),
                xytext=(4, -13),
                textcoords="offset points",
                va="top",
                fontsize=7.5,
                bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.85},
            )
            chosen = ann.get_window_extent(renderer)
        placed.append(chosen)


def plot_pareto(
    rows: list[dict], out: str | Path, cost: str = "energy_uj", benefit: str = "integer_top1"
) -> list[Path]:
    """Energy per inference vs integer top-1 (:func:`pareto_figure`), written as PNG and SVG."""
    made = pareto_figure(rows, cost, benefit)
    return _save(made[0], Path(out), "energy_vs_accuracy") if made else []


def _bar_labels(pts: list[dict]) -> list[str]:
    """One label per point from the columns that vary (quantization shown as ``W8A8 pc``)."""
    quant = QUANT
    cols = swept_columns(pts)
    labels = []
    for r in pts:
        parts = [
            str(r[c]) if c in ("device", "workload", "recipe") else f"{c.split('.')[-1]}={r.get(c)}"
            for c in cols
            if c not in quant
        ]
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
    fig, axes = plt.subplots(
        1,
        2 if has_energy else 1,
        figsize=(11 if has_energy else 6.5, 0.32 * len(pts) + 1.6),
        sharey=True,
        squeeze=False,
    )
    y = range(len(pts))
    ax = axes[0][0]
    scale = [float(r["latency_ms"]) / max(float(r["cycles"]), 1) for r in pts]
    comp = [float(r["compute_cycles"]) * s for r, s in zip(pts, scale)]
    stall = [float(r["stall_cycles"]) * s for r, s in zip(pts, scale)]
    ax.barh(y, comp, color="#4C72B0", label="compute")
    ax.barh(y, stall, left=comp, color="#DD8452", label="memory stall")
    ax.set_yticks(list(y))
    sources = [short_source(r.get("energy_source", "")) for r in pts]
    labels = _bar_labels(pts)
    if len(set(sources)) > 1:  # each bar says its own technology; the title only what they share
        labels = [f"{label} ({node_of(src)})" for label, src in zip(labels, sources)]
    complete = {id(r) for r in timed(pts)}
    labels = [label if id(r) in complete else f"{label} [ops untimed]" for r, label in zip(pts, labels)]
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("latency per inference (ms)")
    ax.set_title("Latency breakdown", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(True, axis="x", alpha=0.3)
    if has_energy:
        ax = axes[0][1]
        parts = [
            json.loads(r["energy_by_component_pj"])
            if isinstance(r["energy_by_component_pj"], str)
            else r["energy_by_component_pj"]
            for r in pts
        ]
        cats = [c for c in CATEGORY_COLORS if any(c in p for p in parts)]
        cats += sorted({c for p in parts for c in p} - set(cats))
        left = [0.0] * len(pts)
        for c in cats:
            vals = [p.get(c, 0.0) / 1e6 for p in parts]
            ax.barh(y, vals, left=left, color=CATEGORY_COLORS.get(c), label=c.replace("_", " "))
            left = [a + b for a, b in zip(left, vals)]
        ax.set_xlabel("energy per inference (µJ)")
        shared = sources[0] if len(set(sources)) == 1 else f"{sources[0].split()[0]} at each bar's node"
        ax.set_title(f"Energy breakdown ({shared})", fontsize=10)
        ax.legend(fontsize=8, loc="lower right")
        ax.grid(True, axis="x", alpha=0.3)
    return _save(fig, Path(out), "breakdown")


def _roof_key(r: dict) -> tuple:
    return (r["device"], float(r["peak_gmacs_per_s"]), float(r["offchip_gbytes_per_s"]))


def plot_roofline(rows: list[dict], out: str | Path) -> list[Path]:
    """Achieved GOPS vs operational intensity (ops per off-chip byte), log-log, under each roof.

    One colour per distinct roof (device, peak rate, off-chip bandwidth), labelled with its numbers and the
    swept settings that set it; the settings that vary under one roof get one marker each. Points that
    would overlap are set side by side."""
    pts = _ok(rows, "macs", "latency_ms", "offchip_bytes", "peak_gmacs_per_s", "offchip_gbytes_per_s")
    pts = [r for r in pts if min(float(r["offchip_bytes"]), float(r["latency_ms"]), float(r["macs"])) > 0]
    if not pts:
        return []
    roofs = _styles([_roof_key(r) for r in pts])
    cols = [c for c in swept_columns(pts) if c != "device"]
    per_roof = [
        c for c in cols if all(len({str(r.get(c)) for r in pts if _roof_key(r) == k}) == 1 for k in roofs)
    ]
    within = [c for c in cols if c not in per_roof]
    marks = _styles([tuple(str(r.get(c)) for c in within) for r in pts])
    palette = (
        COLORS
        if len(roofs) <= 10
        else [plt.get_cmap("viridis")(i / (len(roofs) - 1)) for i in range(len(roofs))]
    )
    fig, ax = plt.subplots(figsize=(9.5, 5.2), dpi=DPI)
    xy = [
        (
            2 * float(r["macs"]) / float(r["offchip_bytes"]),
            2 * float(r["macs"]) / (float(r["latency_ms"]) * 1e-3) / 1e9,
        )
        for r in pts
    ]
    lo, hi = min(x for x, _ in xy) / 10, max(x for x, _ in xy) * 10
    grid = [lo * (hi / lo) ** (i / 200) for i in range(201)]
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ceiling = max(2 * k[1] for k in roofs)
    ax.set_ylim(min(y for _, y in xy) / 3, ceiling * 2)
    handles = []
    for key, i in roofs.items():
        device, peak, bw = key
        group = next(r for r in pts if _roof_key(r) == key)
        setting = ", ".join(f"{'.'.join(c.split('.')[1:][-2:]) or c} {group.get(c)}" for c in per_roof)
        label = f"{device}{': ' + setting if setting else ''} ({2 * peak:g} GOPS, {bw:g} GB/s)"
        (line,) = ax.plot(grid, [min(2 * peak, g * bw) for g in grid], color=palette[i], lw=1.2, label=label)
        handles.append(line)
    size_pt = 7.0
    offsets = _dodge(ax, xy, size_pt * fig.dpi / 72 * 1.15)
    from matplotlib.transforms import offset_copy

    for r, (x, y), (dx, dy) in zip(pts, xy, offsets):
        tr = offset_copy(ax.transData, fig=fig, x=dx * 72 / fig.dpi, y=dy * 72 / fig.dpi, units="points")
        ax.plot(
            [x],
            [y],
            ls="",
            marker=MARKERS[marks[tuple(str(r.get(c)) for c in within)] % len(MARKERS)],
            ms=size_pt,
            color=palette[roofs[_roof_key(r)]],
            mec="k",
            mew=0.5,
            zorder=3,
            transform=tr,
        )
    if len(marks) > 1:
        handles += [
            plt.Line2D(
                [],
                [],
                color="0.4",
                ls="",
                marker=MARKERS[i % len(MARKERS)],
                label=", ".join(f"{c.split('.')[-1]} {v}" for c, v in zip(within, values)),
            )
            for values, i in marks.items()
        ]
    ax.set_xlabel("operational intensity (ops per off-chip byte)")
    ax.set_ylabel("achieved performance (GOPS, 2 ops per MAC)")
    ax.set_title(f"Roofline: {len(pts)} whole-network points under {len(roofs)} roofs", fontsize=10)
    ax.legend(handles=handles, fontsize=7.5, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    ax.grid(True, which="both", alpha=0.3)
    return _save(fig, Path(out), "roofline")


def plot_overflow(rows: list[dict], out: str | Path) -> list[Path]:
    """Overflow rate (log) and integer top-1 vs accumulator width, one line per order and overflow mode."""
    pts = _ok(rows, "accumulator_bits", "overflow_rate")
    if len({r["accumulator_bits"] for r in pts}) < 2:
        return []
    groups: dict[str, list[dict]] = {}
    for r in pts:
        key = (
            f"{r.get('workload')} {r.get('accumulation_order', 'natural')} order, "
            f"{r.get('accumulator_overflow')}"
        )
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
            ax.scatter(
                float(r[key]),
                float(r["perplexity"]),
                s=46,
                color=COLORS[dev[r["device"]] % 10],
                marker=MARKERS[kv[r.get("kv_bits")] % len(MARKERS)],
                alpha=0.85,
                zorder=2,
            )
        front = pareto_front(pts, cost, "-perplexity")
        ax.scatter(
            [float(r[key]) for r in front],
            [float(r["perplexity"]) for r in front],
            s=90,
            facecolors="none",
            edgecolors="k",
            linewidths=1.4,
            zorder=3,
        )
        for r in front:
            ax.annotate(
                llm_label(r),
                (float(r[key]), float(r["perplexity"])),
                textcoords="offset points",
                xytext=(6, 4),
                fontsize=7,
            )
        ax.axhline(float(pts[0]["float_perplexity"]), color="0.5", lw=1, ls=":", label="float model")
        ax.set_xlabel(
            "energy per decoded token (µJ, log scale)"
            if key == "energy_per_token_uj"
            else "decode tokens/s (log scale)"
        )
        _log_x(ax)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel(f"perplexity, integer path ({pts[0].get('quality_model', '')})")
    handles = [plt.Line2D([], [], color=COLORS[i % 10], marker="o", ls="", label=d) for d, i in dev.items()]
    handles += [
        plt.Line2D([], [], color="0.4", marker=MARKERS[i % len(MARKERS)], ls="", label=f"KV {k}-bit")
        for k, i in kv.items()
    ]
    handles += [plt.Line2D([], [], color="0.5", ls=":", label="float model")]
    axes[1].legend(handles=handles, fontsize=8, loc="best")
    models = sorted({str(r.get("model")) for r in pts})
    fig.suptitle(
        f"Perplexity vs cost per token ({len(pts)} points; cost of {', '.join(models)}, "
        f"decode at KV length {pts[0].get('kv_len')})",
        fontsize=10,
    )
    return _save(fig, Path(out), "perplexity_vs_cost")


PLOTTERS = {
    "pareto": plot_pareto,
    "breakdown": plot_breakdowns,
    "roofline": plot_roofline,
    "overflow": plot_overflow,
    "llm": plot_llm,
}


def draw(rows: list[dict], out: str | Path, which: list[str] | None = None) -> list[Path]:
    """Every plot in ``which`` (None: all the columns allow; an empty list draws none); the paths written."""
    paths: list[Path] = []
    for name in list(PLOTTERS) if which is None else which:
        paths += PLOTTERS[name](rows, out)
    return paths
