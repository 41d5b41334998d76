"""Small experiment files for the tests (a few points each, 64 test samples) and a helper to run the CLI."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SMALL = """\
schema_version: 1
name: small
seed: 3
workloads: [digits_mlp]
devices: [hexagon_like, ethos_u55_64_like]
recipes: [int8_w_per_channel]
evaluation: {calibration_samples: 32, test_samples: 64}
sweep:
  grid:
    recipe.weights.bits: [8, 4]
  zip:
    recipe.accumulator.bits: [32, 14]
    recipe.accumulator.overflow: [saturate, wrap]
metrics: [accuracy, latency, energy, overflow]
plots: [pareto, breakdown, roofline, overflow]
"""


@pytest.fixture
def small_experiment(tmp_path) -> Path:
    """A 8-point experiment file (MLP, two devices, two weight widths, two accumulators)."""
    path = tmp_path / "small.yaml"
    path.write_text(SMALL)
    return path


@pytest.fixture
def small_tables_experiment(tmp_path) -> Path:
    """:func:`small_experiment` without figures (half of each run's time), for tests that compare tables."""
    path = tmp_path / "small_tables.yaml"
    path.write_text(SMALL.replace("plots: [pareto, breakdown, roofline, overflow]", "plots: []"))
    return path


def cli(*args, cwd=None, **kwargs) -> subprocess.CompletedProcess:
    """Run ``python -m hwsim ARGS`` with this checkout first on the path."""
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run(
        [sys.executable, "-m", "hwsim", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        **kwargs,
    )


def table(folder: Path, drop=()) -> list[dict]:
    """The rows of a results folder from its CSV, without the columns in ``drop``."""
    from hwsim.experiment.results import load_rows

    rows = load_rows(folder / "rows.csv")
    return [{k: v for k, v in r.items() if k not in drop} for r in rows]
