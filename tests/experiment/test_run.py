"""Running experiments: determinism, failing points, resume after SIGKILL, Dask, figures and ``hwsim
plot``."""

import os
import signal
import subprocess
import sys
import time

import pytest

from hwsim.experiment import run_experiment
from tests.experiment.conftest import ROOT, SMALL, cli, table


def test_two_runs_with_the_same_seed_give_identical_tables(small_tables_experiment, tmp_path):
    """The same experiment run twice (one in-process, one with 2 worker processes) writes identical CSVs."""
    a = run_experiment(small_tables_experiment, results=tmp_path / "a", out=open(os.devnull, "w"))
    b = run_experiment(small_tables_experiment, results=tmp_path / "b", jobs=2, out=open(os.devnull, "w"))
    assert (a / "rows.csv").read_text() == (b / "rows.csv").read_text()
    rows = table(a)
    assert len(rows) == 8 and all(r["status"] == "ok" for r in rows)
    for col in (
        "integer_top1",
        "latency_ms",
        "energy_uj",
        "power_mw",
        "area_mm2",
        "overflows",
        "git_commit",
        "input_hashes",
        "seed",
        "hwsim_version",
        "recipe.weights.bits",
    ):
        assert col in rows[0], col
    narrow = [r for r in rows if r["accumulator_bits"] == 14]
    assert any(r["overflows"] > 0 for r in narrow)  # a 14-bit register overflows on 64-input dot products
    assert all(r["overflows"] == 0 for r in rows if r["accumulator_bits"] == 32)


def test_failing_point_is_recorded_and_the_sweep_goes_on(small_tables_experiment, tmp_path, failing_points):
    """A point that raises becomes an error row with its message (and no measured column); the other
    points still run."""
    failing_points(lambda spec: spec.device == "ethos_u55_64_like")
    folder = run_experiment(small_tables_experiment, results=tmp_path / "out", out=open(os.devnull, "w"))
    rows = table(folder)
    assert len(rows) == 8
    failed = [r for r in rows if r["status"] == "error"]
    assert len(failed) == 4 and {r["device"] for r in failed} == {"ethos_u55_64_like"}
    assert all("RuntimeError: this point fails on purpose" in r["error"] for r in failed)
    assert all("latency_ms" not in r and r["weights_bits"] in (8, 4) for r in failed)
    assert all(r["status"] == "ok" for r in rows if r["device"] == "hexagon_like")
    assert "## Failed points" in (folder / "report.md").read_text()


SLOWER = """\
schema_version: 1
name: slower
workloads: [digits_cnn_bn]
devices: [hexagon_like]
evaluation: {calibration_samples: 64, test_samples: 540}
sweep:
  grid:
    recipe.weights.bits: [8, 6, 4]
    recipe.weights.granularity: [per_tensor, per_channel]
    recipe.accumulator.bits: [32, 16]
metrics: [accuracy, latency, energy, overflow]
plots: []
"""


def test_resume_after_sigkill_equals_an_uninterrupted_run(tmp_path):
    """`hwsim run` killed with SIGKILL after some rows, then `--resume`d, ends with the uninterrupted
    table."""
    small_experiment = tmp_path / "slower.yaml"
    small_experiment.write_text(SLOWER)
    full = run_experiment(small_experiment, results=tmp_path / "full", out=open(os.devnull, "w"))
    out = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "hwsim", "run", str(small_experiment), "--results", str(out)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # Killed at its first row: a cold start (kernels compiling) on a loaded machine can take minutes, and
    # waiting for more rows only risks the run finishing before the kill.
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        lines = (out / "rows.jsonl").read_text().count("\n") if (out / "rows.jsonl").exists() else 0
        if lines >= 1 or proc.poll() is not None:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = (out / "rows.jsonl").read_text().count("\n")
    assert 1 <= done < 12, f"killed after {done} rows"
    r = cli("run", small_experiment, "--results", out, "--resume")
    assert r.returncode == 0, r.stderr
    assert f"{done} already done, running {12 - done}" in r.stdout
    assert (out / "rows.csv").read_text() == (full / "rows.csv").read_text()


def test_dask_local_cluster_gives_the_same_table(small_tables_experiment, tmp_path):
    """Points run on a real distributed.LocalCluster with 2 worker processes give the local table."""
    distributed = pytest.importorskip("distributed")
    local = run_experiment(small_tables_experiment, results=tmp_path / "local", out=open(os.devnull, "w"))
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as c:
        remote = run_experiment(
            small_tables_experiment,
            results=tmp_path / "dask",
            executor="dask",
            scheduler=c.scheduler_address,
            out=open(os.devnull, "w"),
        )
    assert (remote / "rows.csv").read_text() == (local / "rows.csv").read_text()


def test_plots_render_and_hwsim_plot_redraws_from_results(small_experiment, tmp_path):
    """Each figure is written as non-empty PNG and SVG; `hwsim plot` redraws them from rows.parquet alone."""
    folder = run_experiment(small_experiment, results=tmp_path / "r", out=open(os.devnull, "w"))
    names = ("energy_vs_accuracy", "breakdown", "roofline", "overflow_vs_width")
    for name in names:
        for ext in ("png", "svg"):
            assert (folder / f"{name}.{ext}").stat().st_size > 1000, (name, ext)
    report = (folder / "report.md").read_text()
    assert "## Pareto points" in report and "| hexagon_like |" in report or "| ethos_u55_64_like |" in report
    redraw = tmp_path / "redraw"
    redraw.mkdir()
    (redraw / "rows.parquet").write_bytes((folder / "rows.parquet").read_bytes())
    r = cli("plot", redraw / "rows.parquet")
    assert r.returncode == 0, r.stderr
    for name in names:
        assert (redraw / f"{name}.png").stat().st_size > 1000, name
    assert (redraw / "report.md").exists()


def test_dry_run_lists_points_and_bad_files_exit_2(small_experiment, tmp_path):
    """`--dry-run` prints one line per point; a config error is one line on stderr with exit status 2."""
    r = cli("run", small_experiment, "--dry-run")
    assert r.returncode == 0 and "small: 8 points" in r.stdout
    assert len([line for line in r.stdout.splitlines() if line.startswith("  ")]) == 8
    bad = tmp_path / "bad.yaml"
    bad.write_text(SMALL.replace("seed: 3", "seed: three"))
    r = cli("run", bad)
    assert r.returncode == 2
    assert "bad.yaml:3: seed: Input should be a valid integer" in r.stderr


ORDERS = """\
schema_version: 1
name: orders
workloads: [digits_mlp]
devices: [hexagon_like]
recipes: [{name: narrow, accumulator: {bits: 14, overflow: saturate}}]
evaluation: {calibration_samples: 32, test_samples: 64}
sweep:
  grid:
    run.accumulation_order: [natural, reversed]
metrics: [accuracy, latency, overflow]
plots: []
"""


def test_points_in_threads_equal_points_in_turn(tmp_path):
    """Points run in two threads of one process (as on a Dask worker, with no lock) give the rows they give
    one after the other, and a point's accumulation order never reaches the cached model the others use."""
    from concurrent.futures import ThreadPoolExecutor

    from hwsim.experiment import runner
    from hwsim.experiment.spec import load_experiment
    from hwsim.experiment.sweep import expand

    path = tmp_path / "orders.yaml"
    path.write_text(ORDERS)
    points = expand(load_experiment(path), tmp_path)
    runner._QM_CACHE.data.clear()
    runner._EVAL_CACHE.data.clear()
    serial = [runner.run_one(p).as_dict() for p in points]
    assert [r["status"] for r in serial] == ["ok", "ok"], serial
    assert serial[0]["overflows"] != serial[1]["overflows"]  # a 14-bit saturating register: the order matters
    runner._EVAL_CACHE.data.clear()  # score again, sharing the cached quantized model
    with ThreadPoolExecutor(2) as pool:
        threaded = [r.as_dict() for r in pool.map(runner.run_one, points)]
    assert threaded == serial
    (qm,) = runner._QM_CACHE.data.values()
    orders = [op.attrs["accumulator"].order for op in qm.integer_graph.ops if "accumulator" in op.attrs]
    assert orders and all(order is None for order in orders)
