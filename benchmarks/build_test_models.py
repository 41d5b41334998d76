"""Build the .tflite models the tests read (``tests/data/tflite/<family>/<name>.tflite``).

TFLite's converter only makes the tests' inputs (the interpreters they compare hwsim with still run live),
and converting all 69 models costs about two CPU minutes (117 s of user time, measured), which every test run
paid; so it runs here, once. Each family is the ``convert_models()``
of the test module that reads it: seeded Keras models (``keras.utils.set_random_seed(0)``, seeded weights and
calibration data), so a rebuild with the same TensorFlow writes the same models. test_tflite_golden converts
three cases again live and fails when they no longer match the stored ones (a changed case or TensorFlow):
then rebuild that family and review the golden tests' results.

Usage: ``python benchmarks/build_test_models.py [FAMILY ...]`` (every family when none is given).
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]

#: family (folder under tests/data/tflite) -> the test module whose convert_models() makes it
FAMILIES = {
    "golden": "tests.runtimes.test_tflite_golden",
    "models": "tests.runtimes.test_tflite_models",
    "sixteen": "tests.runtimes.test_tflite_16x8",
    "nonlinear": "tests.runtimes.test_tflite_nonlinear",
    "mean": "tests.runtimes.test_tflite_xnnpack_mean",
    "schedule_only": "tests.runtimes.test_tflite_schedule_only",
    "keras": "tests.workload.conftest",
    "placement": "tests.schedule.ethos_u.placement_models",
}


def build(family: str) -> list[Path]:
    """Write every model of ``family``, replacing the stored ones; returns their paths."""
    module = importlib.import_module(FAMILIES[family])
    folder = ROOT / "tests" / "data" / "tflite" / family
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.tflite"):
        old.unlink()
    paths = []
    for name, content in module.convert_models():
        paths.append(folder / f"{name}.tflite")
        paths[-1].write_bytes(content)
    return paths


def main(argv: list[str]) -> int:
    unknown = [f for f in argv if f not in FAMILIES]
    if unknown:
        print(f"unknown families {unknown}; known: {', '.join(FAMILIES)}", file=sys.stderr)
        return 2
    sys.path.insert(0, str(ROOT))
    for family in argv or FAMILIES:
        paths = build(family)
        size = sum(p.stat().st_size for p in paths)
        print(f"{family}: {len(paths)} models, {size / 1024:.0f} KiB", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
