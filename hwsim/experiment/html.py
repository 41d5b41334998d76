"""``report.html``: the experiment report as one self-contained page (no network access needed to open it).

The same content as ``report.md`` (the question, the recommended point and why, the Pareto front, then
everything else), with an interactive Pareto plot (an inline SVG: hovering a point shows its settings and
numbers, the recommended point is ringed), tables sortable by a click on a column header, and the figures
embedded as base64 PNG. The script is plain inline JavaScript, the styles inline CSS; nothing is fetched.
"""

from __future__ import annotations

import base64
import html
import math
import re
from pathlib import Path

from hwsim.experiment.report import (
    LABELS,
    _fmt,
    point_name,
    provenance,
    recommendation_lines,
    report_sections,
)
from hwsim.experiment.rows import pareto_front, swept_columns

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em auto;max-width:1100px;color:#222;
padding:0 1em}
h1{font-size:1.6em}h2{font-size:1.2em;border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
#recommended{background:#eef6ee;border:1px solid #7a7;border-radius:6px;padding:.6em 1em}
#recommended.none{background:#fbeeee;border-color:#c77}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}
th,td{border:1px solid #ccc;padding:.2em .5em;text-align:right}
th{background:#f3f3f3;cursor:pointer;user-select:none}
th.asc::after{content:" \\25B2"}th.desc::after{content:" \\25BC"}
td:first-child,th:first-child{text-align:left}tr.chosen td{background:#e3f3e3;font-weight:600}
#tip{position:fixed;display:none;background:#fff;border:1px solid #888;border-radius:4px;padding:.4em .6em;
font-size:.8em;pointer-events:none;box-shadow:0 2px 6px rgba(0,0,0,.2);white-space:pre}
svg text{font-size:11px}img{max-width:100%}code{background:#f4f4f4;padding:0 .2em}
"""

SCRIPT = """
(function () {
  var tip = document.getElementById('tip');
  document.querySelectorAll('#pareto-plot .pt').forEach(function (c) {
    c.addEventListener('mouseenter', function () { tip.textContent = c.getAttribute('data-info');
      tip.style.display = 'block'; });
    c.addEventListener('mousemove', function (e) { tip.style.left = (e.clientX + 14) + 'px';
      tip.style.top = (e.clientY + 14) + 'px'; });
    c.addEventListener('mouseleave', function () { tip.style.display = 'none'; });
  });
  document.querySelectorAll('table.sortable').forEach(function (table) {
    table.querySelectorAll('th').forEach(function (th, col) {
      th.addEventListener('click', function () {
        var asc = !th.classList.contains('asc');
        table.querySelectorAll('th').forEach(function (h) { h.classList.remove('asc', 'desc'); });
        th.classList.add(asc ? 'asc' : 'desc');
        var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = a.cells[col].getAttribute('data-v'), y = b.cells[col].getAttribute('data-v');
          var nx = parseFloat(x), ny = parseFloat(y), r;
          if (!isNaN(nx) && !isNaN(ny)) { r = nx - ny; } else { r = String(x).localeCompare(String(y)); }
          return asc ? r : -r;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });
  document.body.setAttribute('data-ready', 'yes');
})();
"""

W, H, LEFT, RIGHT, TOP, BOTTOM = 900, 420, 70, 190, 20, 50  # the legend sits right of the plot
COLORS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)


def _cell(row: dict, col: str) -> tuple[str, str]:
    """(shown text, sort key) of one table cell; top-1 columns shown in %."""
    v = row.get(col)
    if col.endswith("top1") and isinstance(v, (int, float)):
        v = 100 * v
        return f"{v:.2f}", f"{v:.6g}"
    text = _fmt(v)
    return text, text


def html_table(rows: list[dict], cols: list[str], chosen: set[str]) -> str:
    """A sortable table; the recommended point's row is marked."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = []
    for r in rows:
        cls = ' class="chosen"' if r.get("run_id") in chosen else ""
        cells = "".join(
            f'<td data-v="{html.escape(k)}">{html.escape(t)}</td>' for t, k in (_cell(r, c) for c in cols)
        )
        body.append(f"<tr{cls}>{cells}</tr>")
    return f'<table class="sortable"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _value(row: dict, key: str) -> float:
    try:
        v = float(row[key.lstrip("-")])
    except (KeyError, TypeError, ValueError):
        return math.nan
    return 100 * v if key.lstrip("-").endswith("top1") else v


def _scale(values: list[float], lo_px: float, hi_px: float, log: bool):
    lo, hi = min(values), max(values)
    if log:
        lo, hi = math.log10(lo), math.log10(hi)
    pad = (hi - lo) * 0.06 or (abs(hi) * 0.05 or 1.0)
    lo, hi = lo - pad, hi + pad

    def f(v: float) -> float:
        t = math.log10(v) if log else v
        return lo_px + (t - lo) / (hi - lo) * (hi_px - lo_px)

    return f, (lo, hi)


def _ticks(lo: float, hi: float, log: bool) -> list[float]:
    if log:
        out = [m * 10**e for e in range(math.floor(lo), math.ceil(hi) + 1) for m in (1, 2, 5)]
        return [v for v in out if lo <= math.log10(v) <= hi]
    step = 10 ** math.floor(math.log10((hi - lo) / 4 or 1))
    for m in (1, 2, 5, 10):
        if (hi - lo) / (step * m) <= 6:
            step *= m
            break
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step) + 1)]


def pareto_svg(rows: list[dict], cost: str, benefit: str, chosen: set[str]) -> str:
    """The interactive scatter: cost (log when it spans > 10x) vs benefit, colour = device, the Pareto
    front as a dashed line; each point's ``data-info`` holds its settings for the hover box."""
    pts = [
        r
        for r in rows
        if r.get("status") == "ok" and math.isfinite(_value(r, cost)) and math.isfinite(_value(r, benefit))
    ]
    if not pts:
        return ""
    xs, ys = [_value(r, cost) for r in pts], [_value(r, benefit) for r in pts]
    log = min(xs) > 0 and max(xs) / min(xs) > 10
    fx, (xlo, xhi) = _scale(xs, LEFT, W - RIGHT, log)
    fy, (ylo, yhi) = _scale(ys, H - BOTTOM, TOP, False)
    devices = list(dict.fromkeys(str(r.get("device")) for r in pts))
    cols = swept_columns(rows)
    parts = [
        f'<svg id="pareto-plot" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
        f'xmlns="http://www.w3.org/2000/svg" role="img">',
        f'<rect x="{LEFT}" y="{TOP}" width="{W - LEFT - RIGHT}" height="{H - TOP - BOTTOM}" fill="none" '
        f'stroke="#999"/>',
    ]
    for t in _ticks(xlo, xhi, log):
        x = fx(t)
        parts.append(
            f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{H - BOTTOM}" stroke="#eee"/>'
            f'<text x="{x:.1f}" y="{H - BOTTOM + 14}" text-anchor="middle">{t:g}</text>'
        )
    for t in _ticks(ylo, yhi, False):
        y = fy(t)
        parts.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{W - RIGHT}" y2="{y:.1f}" stroke="#eee"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{t:g}</text>'
        )
    xlabel = LABELS.get(cost.lstrip("-"), cost.lstrip("-")) + (", log scale" if log else "")
    ylabel = LABELS.get(benefit.lstrip("-"), benefit.lstrip("-"))
    parts.append(
        f'<text x="{(LEFT + W - RIGHT) / 2}" y="{H - 12}" text-anchor="middle">'
        f"{html.escape(xlabel)}</text>"
        f'<text transform="translate(16,{(TOP + H - BOTTOM) / 2}) rotate(-90)" text-anchor="middle">'
        f"{html.escape(ylabel)}</text>"
    )
    front = pareto_front(pts, cost, benefit)
    if len(front) > 1:
        path = " ".join(f"{fx(_value(r, cost)):.1f},{fy(_value(r, benefit)):.1f}" for r in front)
        parts.append(f'<polyline points="{path}" fill="none" stroke="#000" stroke-dasharray="5,4"/>')
    from hwsim.experiment.select import timed
    from hwsim.plots.experiment import spread

    complete = {id(r) for r in timed(pts)}
    centres = [(fx(_value(r, cost)), -fy(_value(r, benefit))) for r in pts]  # y up, as spread expects
    offsets = spread(centres, 13.0)
    for r, (x, y), (dx, dy) in zip(pts, centres, offsets):
        info = [point_name(r, cols)] + [
            f"{k}: {_cell(r, k)[0]}"
            for k in ("integer_top1", "float_top1", "latency_ms", "energy_uj", "power_mw", "area_mm2")
            if k in r
        ]
        x, y = x + dx, -(y + dy)
        color = COLORS[devices.index(str(r.get("device"))) % len(COLORS)]
        if id(r) not in complete:  # not comparable: drawn hollow, and the hover says why
            info.append("some ops untimed (host CPU): not comparable, never recommended")
        on_front = any(f.get("run_id") == r.get("run_id") for f in front)
        fill = (
            f'fill="{color}" fill-opacity="0.8"'
            if id(r) in complete
            else 'fill="#fff" stroke-dasharray="2,2"'
        )
        parts.append(
            f'<circle class="pt" cx="{x:.1f}" cy="{y:.1f}" r="6" {fill} '
            f'stroke="{"#000" if on_front else (color if id(r) not in complete else "none")}" '
            f'data-run="{html.escape(str(r.get("run_id")))}" '
            f'data-info="{html.escape(chr(10).join(info))}"><title>{html.escape(info[0])}</title>'
            f"</circle>"
        )
        if r.get("run_id") in chosen:
            parts.append(
                f'<circle class="chosen-marker" cx="{x:.1f}" cy="{y:.1f}" r="11" fill="none" '
                f'stroke="#c00" stroke-width="2.5"/>'
            )
    for i, d in enumerate(devices):
        y = TOP + 14 + 16 * i
        parts.append(
            f'<circle cx="{W - RIGHT + 16}" cy="{y - 4}" r="5" fill="{COLORS[i % len(COLORS)]}"/>'
            f'<text x="{W - RIGHT + 26}" y="{y}">{html.escape(d)}</text>'
        )
    y = TOP + 14 + 16 * len(devices)
    if len(complete) < len(pts):
        parts.append(
            f'<circle cx="{W - RIGHT + 16}" cy="{y - 4}" r="5" fill="#fff" stroke="#555" '
            f'stroke-dasharray="2,2"/><text x="{W - RIGHT + 26}" y="{y}">some ops untimed</text>'
        )
        y += 16
    parts.append(
        f'<circle cx="{W - RIGHT + 16}" cy="{y - 4}" r="7" fill="none" stroke="#c00" '
        f'stroke-width="2"/>'
        f'<text x="{W - RIGHT + 26}" y="{y}">recommended</text></svg>'
    )
    return "".join(parts)


def _markdown_inline(text: str) -> str:
    """The few Markdown marks the report's sentences use (**bold**, `code`), as HTML."""
    text = html.escape(text)
    text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", text)


def write_html(
    rows: list[dict],
    folder: str | Path,
    name: str,
    figures: list[Path],
    description: str,
    pareto: tuple[str, str],
    sels: list,
) -> Path:
    """Write ``report.html`` in ``folder`` (see the module docstring); the path."""
    folder = Path(folder)
    chosen = {s.point.get("run_id") for s in sels if s.point}
    lines = [line for line in recommendation_lines(sels, rows, pareto) if line]
    body = [f"<h1>Experiment <code>{html.escape(name)}</code></h1>"]
    if description:
        body.append(f"<p><strong>Question.</strong> {html.escape(description.strip())}</p>")
    body.append(f"<h2>{html.escape(lines[0].lstrip('# '))}</h2>")
    body.append(
        f'<div id="recommended"{"" if all(s.point for s in sels) else " class=none"} '
        f'data-run="{html.escape(" ".join(s.point.get("run_id") for s in sels if s.point))}">'
        + "".join(
            f"<h3>{html.escape(line.lstrip('# '))}</h3>"
            if line.startswith("### ")
            else f"<p>{_markdown_inline(line)}</p>"
            for line in lines[1:]
        )
        + "</div>"
    )
    svg = pareto_svg(rows, *pareto, chosen)
    sections = report_sections(rows, pareto)
    for i, (sid, title, part, cols) in enumerate(sections):
        body.append(f'<h2 id="{sid}">{html.escape(title)}</h2>')
        if i == 0 and svg:
            body.append(
                "<p>Hover a point for its settings; the ringed one is recommended; black-edged "
                "points are on the Pareto front.</p>" + svg
            )
        body.append(html_table(part, cols, chosen))
        if i == 0:
            body.append(f"<h2>Everything else</h2><p>{html.escape(provenance(rows))}</p>")
    if not sections:
        body.append(f"<p>{html.escape(provenance(rows))}</p>")
    pngs = [p for p in figures if p.suffix == ".png" and p.exists()]
    if pngs:
        body.append("<h2>Figures</h2>")
        for p in pngs:
            data = base64.b64encode(p.read_bytes()).decode("ascii")
            body.append(
                f'<figure><img alt="{html.escape(p.stem)}" src="data:image/png;base64,{data}">'
                f"<figcaption>{html.escape(p.stem)}</figcaption></figure>"
            )
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>Experiment {html.escape(name)}</title><style>{STYLE}</style></head><body>"
        + "\n".join(body)
        + '<div id="tip"></div>'
        + f"<script>{SCRIPT}</script></body></html>\n"
    )
    path = folder / "report.html"
    path.write_text(page, encoding="utf-8")
    return path
