"""The report's recommended point (``select:``), report.md / report.html, and issue 14's figure defects.

The rows are stored results of the shipped experiments (``tests/data/experiment/*_rows.csv``, written by
``hwsim run experiments/{default,rounding,design_space}.yaml``), so nothing here reruns a sweep except the
one CLI test of an unmet ``select:``.
"""

import itertools
import math
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from hwsim.errors import ConfigError
from hwsim.experiment.results import load_rows
from hwsim.experiment.select import select_point
from hwsim.experiment.spec import SelectSpec, load_experiment

DATA = Path(__file__).resolve().parents[1] / "data" / "experiment"


@pytest.fixture(scope="module")
def default_rows():
    return load_rows(DATA / "default_rows.csv")


def test_select_meets_every_constraint_then_minimises(default_rows):
    """Within 0.5 points of float and under 150 us, the lowest energy is Hexagon W4 per-channel (W4
    per-tensor costs the same but is 1.67 points down); at >= 99.4 % it is Hexagon W6. The Ethos-U55 W6/W4
    points, whose convolutions Vela leaves to the (untimed) host CPU, are never picked although cheapest."""
    rule = SelectSpec(max_accuracy_drop=0.5, max_latency_ms=0.15, minimize="energy")
    sel = select_point(default_rows, rule)
    p = sel.point
    assert (p["device"], p["weights_bits"], p["weights_granularity"]) == ("hexagon_like", 4, "per_channel")
    assert sel.failing == {"max_accuracy_drop": 3, "max_latency_ms": 6, "all_macs_timed": 4}
    assert len(sel.meeting) == 7 and min(r["energy_uj"] for r in default_rows) < p["energy_uj"]
    for r in sel.meeting:
        assert 100 * (r["float_top1"] - r["integer_top1"]) <= 0.5 and r["latency_ms"] <= 0.15
        assert r["energy_uj"] >= p["energy_uj"]
    strict = select_point(default_rows, SelectSpec(min_accuracy=99.4)).point
    assert (strict["device"], strict["weights_bits"]) == ("hexagon_like", 6)
    fastest = select_point(default_rows, SelectSpec(max_accuracy_drop=0.5, minimize="latency")).point
    assert (fastest["device"], fastest["weights_bits"], fastest["weights_granularity"]) == (
        "ethos_u55_128_like",
        8,
        "per_tensor",
    )


def test_no_point_meets_is_reported(default_rows, tmp_path):
    """An impossible rule gives no point, and report.md says so and why instead of naming one."""
    from hwsim.experiment.report import write_report

    (sel,) = write_report(
        default_rows, tmp_path, "default", [], "q?", select=SelectSpec(max_latency_ms=0.001)
    )
    assert sel.point is None and sel.failing == {"max_latency_ms": 18, "all_macs_timed": 4}
    text = (tmp_path / "report.md").read_text()
    assert "**None: no point meets the constraints** (latency <= 0.001 ms" in text
    assert "18 fail latency" in text


def test_report_md_names_the_point_and_why_before_the_tables(default_rows, tmp_path):
    """The question, then the recommended point with its numbers and the rule, then the Pareto table."""
    from hwsim.experiment.report import write_report

    write_report(
        default_rows,
        tmp_path,
        "default",
        [],
        "Which point?",
        select=SelectSpec(max_accuracy_drop=0.5, max_latency_ms=0.15),
    )
    text = (tmp_path / "report.md").read_text()
    order = [
        text.index(s)
        for s in (
            "**Question.** Which point?",
            "## Recommended point",
            "**hexagon_like, weights_bits 4, weights_granularity per_channel**",
            "declared in the experiment file's `select:`",
            "## Pareto points",
            "## Everything else",
            "## All points",
        )
    ]
    assert order == sorted(order)
    assert "integer top-1 99.26 % (float 99.44 %, drop 0.19 points)" in text
    assert (
        "7 of 18 measured points meet the constraints (3 fail top-1 drop vs float; 6 fail latency; "
        "4 leave some of the network's MACs untimed"
    ) in text
    assert "It is on the Pareto front" in text


def test_select_is_checked_against_the_metrics(tmp_path):
    """A constraint on a metric the experiment does not measure is an error at its line."""
    path = tmp_path / "e.yaml"
    path.write_text(
        "schema_version: 1\nname: e\nworkloads: [digits_mlp]\ndevices: [hexagon_like]\n"
        "metrics: [latency, energy]\nselect:\n  max_accuracy_drop: 1.0\n"
    )
    with pytest.raises(ConfigError, match=r"e.yaml:7: select.max_accuracy_drop: needs 'accuracy' in metrics"):
        load_experiment(path)
    path.write_text(
        "schema_version: 1\nname: e\nworkloads: [digits_mlp]\ndevices: [hexagon_like]\n"
        "select: {max_latency: 1}\n"
    )
    with pytest.raises(ConfigError, match=r"e.yaml:5: select.max_latency: unknown key; did you mean"):
        load_experiment(path)


def test_unmet_select_is_an_error_at_its_line(default_rows, tmp_path):
    """A declared rule that no point meets: a one-line error at the ``select:`` line of the experiment file
    (``hwsim run`` prints it and exits 2 after writing the results and the report)."""
    from hwsim.experiment import _say_selection

    path = tmp_path / "e.yaml"
    path.write_text(
        "schema_version: 1\nname: e\nworkloads: [digits_cnn_bn]\ndevices: [hexagon_like]\n"
        "select: {max_latency_ms: 0.001, minimize: latency}\n"
    )
    sel = select_point(default_rows, load_experiment(path).select)
    with pytest.raises(
        ConfigError,
        match=r"e.yaml:5: select: no point meets latency <= 0.001 ms.*"
        r"\(18 fail max_latency_ms, 4 fail all_macs_timed, of 18 points\); "
        r"results and report",
    ):
        _say_selection([sel], default_rows, path, None)


class _Page(HTMLParser):
    """Collects what the HTML tests look at: tags with their attributes, scripts, text."""

    def __init__(self):
        super().__init__()
        self.tags, self.scripts, self.text, self._in_script = [], [], [], False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        (self.scripts if self._in_script else self.text).append(data)


@pytest.fixture(scope="module")
def html_report(default_rows, tmp_path_factory):
    from hwsim.experiment import finish

    folder = tmp_path_factory.mktemp("html")
    figures, (sel,) = finish(
        default_rows,
        folder,
        "default",
        ["pareto"],
        "Which point?",
        ("energy_uj", "integer_top1"),
        SelectSpec(max_accuracy_drop=0.5, max_latency_ms=0.15),
    )
    return folder / "report.html", sel


def test_report_html_is_self_contained_interactive_and_names_the_point(html_report, default_rows):
    """No external resource; the recommended point's box and ringed marker; one hover point per row with
    its settings; sortable tables; the figure embedded as a data URI."""
    path, sel = html_report
    page = _Page()
    page.feed(path.read_text())
    for tag, attrs in page.tags:
        for key in ("src", "href"):
            assert not attrs.get(key) or attrs[key].startswith(("data:", "#")), (tag, attrs)
        assert tag != "link"
    box = [a for t, a in page.tags if a.get("id") == "recommended"]
    assert box and box[0]["data-run"] == sel.point["run_id"]
    points = [a for t, a in page.tags if t == "circle" and "pt" in a.get("class", "").split()]
    assert len(points) == len(default_rows)
    chosen = [a for a in points if a["data-run"] == sel.point["run_id"]][0]
    assert chosen["data-info"].startswith("hexagon_like, weights_bits 4, weights_granularity per_channel")
    assert "energy_uj: 1.675" in chosen["data-info"]
    assert sum(a.get("class") == "chosen-marker" for t, a in page.tags) == 1
    assert len({(a["cx"], a["cy"]) for a in points}) == len(points)  # no point hides another
    assert sum(1 for t, a in page.tags if t == "table" and a.get("class") == "sortable") >= 2
    assert any(t == "img" and a["src"].startswith("data:image/png;base64,") for t, a in page.tags)
    text = " ".join(page.text)
    assert "Recommended point" in text
    assert "hexagon_like, weights_bits 4, weights_granularity per_channel" in text


@pytest.mark.skipif(not shutil.which("node"), reason="node is not installed")
def test_report_html_script_parses(html_report, tmp_path):
    """The inline script is valid JavaScript (node --check)."""
    page = _Page()
    page.feed(html_report[0].read_text())
    js = tmp_path / "page.js"
    js.write_text("\n".join(page.scripts))
    r = subprocess.run(["node", "--check", str(js)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


CHROMIUM = next(
    (shutil.which(n) for n in ("chromium-headless-shell", "chromium", "chromium-browser") if shutil.which(n)),
    None,
)


@pytest.mark.skipif(CHROMIUM is None, reason="no headless Chromium (apt-get install chromium-headless-shell)")
def test_report_html_in_headless_chromium(html_report, tmp_path):
    """Opened in headless Chromium: no console error, and after its scripts ran the DOM shows the
    recommended point (the script marks the page ``data-ready`` when it has wired the plot and tables)."""
    path, sel = html_report
    r = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=2000",
            "--dump-dom",
            path.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    console = [line for line in r.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert not console, console
    assert 'data-ready="yes"' in r.stdout
    assert f'data-run="{sel.point["run_id"]}"' in r.stdout and "Recommended point" in r.stdout


def test_one_recommended_point_per_workload(tmp_path):
    """The rounding experiment runs two workloads: the report recommends a point for each (their energies
    are not alternatives to each other), each meeting the rule within its workload."""
    from hwsim.experiment.report import write_report

    rows = load_rows(DATA / "rounding_rows.csv")
    sels = write_report(rows, tmp_path, "rounding", [], "", select=SelectSpec(max_accuracy_drop=1.0))
    assert [s.scope for s in sels] == ["digits_cnn_bn", "digits_dsconv"]
    for s in sels:
        assert s.point["workload"] == s.scope and s.total == 30
        assert s.point["energy_uj"] == min(r["energy_uj"] for r in s.meeting)
    text = (tmp_path / "report.md").read_text()
    assert "## Recommended points (one per workload)" in text and "### digits_dsconv" in text


def _pairs_closer_than(centres, limit):
    return [(a, b) for a, b in itertools.combinations(centres, 2) if math.dist(a, b) < limit]


def test_energy_vs_accuracy_shows_every_point(default_rows):
    """18 points, 18 separate markers (issue 14: per-tensor and per-channel sat on top of each other, 18
    looked like 11), per-tensor hollow; the front's labels stay inside the axes."""
    import matplotlib.pyplot as plt

    from hwsim.plots.experiment import pareto_figure

    fig, ax, pts, centres = pareto_figure(default_rows)
    size = 8.0 * fig.dpi / 72
    assert len(centres) == 18 and not _pairs_closer_than(centres, size)
    hollow = [
        line for line in ax.lines if line.get_marker() not in (None, "None") and line.get_mfc() == "white"
    ]
    assert len(hollow) == 9
    renderer = fig.canvas.get_renderer()
    assert ax.texts
    for t in ax.texts:
        box = t.get_window_extent(renderer)
        assert ax.bbox.x0 <= box.x0 and box.x1 <= ax.bbox.x1 and ax.bbox.y0 <= box.y0 and box.y1 <= ax.bbox.y1
    plt.close(fig)


def test_rounding_figure_labels_name_the_swept_settings_inside_the_canvas():
    """The rounding experiment's front labels name both swept settings (rounding, semantics) and stay
    inside the axes; its 60 points (many with equal values) are all visible."""
    import matplotlib.pyplot as plt

    from hwsim.plots.experiment import pareto_figure

    fig, ax, pts, centres = pareto_figure(load_rows(DATA / "rounding_rows.csv"))
    assert len(centres) == 60 and not _pairs_closer_than(centres, 7.0 * fig.dpi / 72)
    renderer = fig.canvas.get_renderer()
    for t in ax.texts:
        assert "rounding" in t.get_text() and "semantics" in t.get_text()
        box = t.get_window_extent(renderer)
        assert ax.bbox.x0 <= box.x0 and box.x1 <= ax.bbox.x1 and ax.bbox.y0 <= box.y0 and box.y1 <= ax.bbox.y1
    plt.close(fig)


def test_breakdown_title_is_true_for_every_device(default_rows, tmp_path):
    """Devices priced at 28, 16 and 7 nm: the title names no single node, each bar names its own."""
    from hwsim.plots import experiment as plots

    captured = {}
    save = plots._save
    plots._save = lambda fig, out, stem: captured.setdefault("fig", fig) and save(fig, out, stem)
    try:
        paths = plots.plot_breakdowns(default_rows, tmp_path)
    finally:
        plots._save = save
    assert paths[0].stat().st_size > 10000
    left, right = captured["fig"].axes
    assert not re.search(r"\d nm", right.get_title()) and "each bar's node" in right.get_title()
    labels = [t.get_text() for t in left.get_yticklabels()]
    for device, node in (
        ("edge_tpu_like", "28 nm"),
        ("ethos_u55_128_like", "16 nm"),
        ("hexagon_like", "7 nm"),
    ):
        assert all(node in label for label in labels if label.startswith(device)), (device, labels)


def test_roofline_has_one_distinct_legend_entry_and_colour_per_roof(tmp_path):
    """The design-space sweep has 8 roofs (4 arrays x 2 clocks): 8 different labels in 8 colours (issue
    14: 8 identical "edge_tpu_like roof" entries in one colour), plus a marker per SRAM size."""
    from hwsim.plots import experiment as plots

    captured = {}
    save = plots._save
    plots._save = lambda fig, out, stem: captured.setdefault("fig", fig) and save(fig, out, stem)
    try:
        paths = plots.plot_roofline(load_rows(DATA / "design_space_rows.csv"), tmp_path)
    finally:
        plots._save = save
    assert paths[0].stat().st_size > 10000
    ax = captured["fig"].axes[0]
    entries = ax.get_legend().get_texts()
    roofs = [t.get_text() for t in entries if "GOPS" in t.get_text()]
    assert len(roofs) == 8 == len(set(roofs))
    assert any("clock_mhz 500" in r and "rows 128" in r and "16384 GOPS" in r for r in roofs)
    lines = [h for h in ax.get_legend().legend_handles if h.get_linestyle() == "-"]
    assert len({str(h.get_color()) for h in lines}) == 8
    assert sum("size_bytes" in t.get_text() for t in entries) == 3
    marked = [
        line for line in ax.lines if line.get_marker() not in (None, "None") and len(line.get_xydata()) == 1
    ]
    centres = [tuple(line.get_transform().transform(line.get_xydata())[0]) for line in marked]
    assert len(centres) == 24 and not _pairs_closer_than(centres, 7.0 * captured["fig"].dpi / 72)
