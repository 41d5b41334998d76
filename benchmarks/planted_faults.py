"""Planted faults in the numba kernels: do the kernel tests catch each one?

Each fault is a one-line change to a kernel (a tie sent the wrong way, a zero point dropped, a sign
flipped) of the kind a refactor can introduce without crashing anything. For each fault this script copies
the package and its tests to a temporary folder, plants the fault there (the source tree is never touched),
runs the tests that hold that kernel to its reference twin, and reports the fault caught (a test failed),
missed (every test passed) or broken (the fault's text is no longer in the kernel, or pytest itself
failed). A kernel test suite that misses a fault here has a hole.

    python benchmarks/planted_faults.py              # all faults, one after the other
    python benchmarks/planted_faults.py -k rounding  # the faults whose name contains "rounding"

Every run compiles the planted kernels afresh (numba's cache folder follows the kernel sources), so a fault
takes from 30 s to a few minutes; ``-x`` stops each run at its first failing test.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Fault:
    """A kernel fault: ``old`` (found exactly once in ``path``) becomes ``new``; ``tests`` should catch it."""

    name: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]


FAULTS = [
    Fault(
        "rounding: half-even ties to odd",
        "hwsim/numerics/kernels.py",
        "(d == 0.5 and f % 2 != 0)",
        "(d == 0.5 and f % 2 == 0)",
        ("tests/numerics/test_rounding.py",),
    ),
    Fault(
        "wrap: register one code short",
        "hwsim/numerics/kernels.py",
        "return (v - lo) % (hi - lo + 1) + lo",
        "return (v - lo) % (hi - lo) + lo",
        ("tests/numerics/test_rounding.py", "tests/numerics/test_mac.py"),
    ),
    Fault(
        "gemmlowp divide-by-POT: ties up, not away",
        "hwsim/numerics/kernels.py",
        "threshold = (mask >> 1) + (1 if x < 0 else 0)",
        "threshold = mask >> 1",
        ("tests/numerics/test_requant.py", "tests/numerics/test_fused.py"),
    ),
    Fault(
        "requantizer: negative nudge off by one",
        "hwsim/numerics/kernels.py",
        "q = ab + ((np.int64(1) << 30) if ab >= 0 else 1 - (np.int64(1) << 30))",
        "q = ab + ((np.int64(1) << 30) if ab >= 0 else -(np.int64(1) << 30))",
        ("tests/numerics/test_requant.py", "tests/numerics/test_fused.py"),
    ),
    Fault(
        "float32 requantizer: floor for rint",
        "hwsim/numerics/kernels.py",
        "v = min(max(np.rint(np.float32(acc[c]) * np.float32(scale[c])), flo), fhi)",
        "v = min(max(np.floor(np.float32(acc[c]) * np.float32(scale[c])), flo), fhi)",
        ("tests/numerics/test_requant.py", "tests/numerics/test_fused.py"),
    ),
    Fault(
        "im2col: padding reads 0, not the zero point",
        "hwsim/numerics/kernels.py",
        "dst[col + c] = pad_value",
        "dst[col + c] = 0",
        ("tests/numerics/test_mac.py",),
    ),
    Fault(
        "depthwise: multiplier > 1 reads the wrong channel",
        "hwsim/numerics/kernels.py",
        "acc[o] += (np.int32(xr[o // multiplier]) - zx) * wr[o]",
        "acc[o] += (np.int32(xr[o % multiplier]) - zx) * wr[o]",
        ("tests/numerics/test_mac.py", "tests/numerics/test_fused.py"),
    ),
    Fault(
        "depthwise 3x3 runs: the input zero point left out of the folded bias",
        "hwsim/numerics/kernels_fused.py",
        "folded[o] = np.int32(np.int64(bias[o]) - np.int64(x_zp) * total)",
        "folded[o] = np.int32(np.int64(bias[o]))",
        ("tests/numerics/test_fused.py",),
    ),
    Fault(
        "XNNPACK add, int32 lanes: the rounding term dropped",
        "hwsim/numerics/kernels.py",
        "bias = np.int32(half - np.int64(z1) * m1 - np.int64(z2) * m2)",
        "bias = np.int32(-np.int64(z1) * m1 - np.int64(z2) * m2)",
        ("tests/numerics/test_mac.py",),
    ),
    Fault(
        "fused GEMM: weight zero point added, not subtracted",
        "hwsim/numerics/kernels_fused.py",
        "                    acc[j] -= pzw[j] * rs",
        "                    acc[j] += pzw[j] * rs",
        ("tests/numerics/test_fused.py",),
    ),
    Fault(
        "SIMD AVX2: second half of a column block read from the first's weights",
        "hwsim/numerics/kernels_simd.py",
        "ir.Constant(_I32, 32 * h)",
        "ir.Constant(_I32, 0 * h)",
        ("tests/numerics/test_fused.py",),
    ),
    Fault(
        "SIMD whole tiles: rows read as if no columns were padding",
        "hwsim/numerics/kernels_simd.py",
        "src, dst = raw[i * width : i * width + cols]",
        "src, dst = raw[i * cols : i * cols + cols]",
        ("tests/numerics/test_fused.py",),
    ),
    Fault(
        "softmax: ties of the output rounded down",
        "hwsim/numerics/kernels_nonlinear.py",
        "rounded = math.floor(abs(p) + 0.5)",
        "rounded = math.floor(abs(p))",
        ("tests/numerics/test_fixed_point.py",),
    ),
    Fault(
        "ordered: wrap mask one code short",
        "hwsim/numerics/kernels_ordered.py",
        "fitted = lane(((v - lo) & mask) + lo)",
        "fitted = lane(((v - lo) & (mask >> 1)) + lo)",
        ("tests/numerics/test_ordered_lanes.py",),
    ),
    Fault(
        "ordered: unchecked steps one code past the bound",
        "hwsim/numerics/kernels_ordered.py",
        "if bound[r] + reach <= limit:",
        "if bound[r] + reach <= limit + 1:",
        ("tests/numerics/test_ordered_lanes.py", "tests/numerics/test_mac.py"),
    ),
    Fault(
        "ordered: lane counters not emptied between chunks",
        "hwsim/numerics/kernels_ordered.py",
        "                    total += count[r, j]\n                    count[r, j] = 0",
        "                    total += count[r, j]",
        ("tests/numerics/test_ordered_lanes.py",),
    ),
]


def plant(fault: Fault, tree: Path) -> None:
    """Write ``fault`` into the copy at ``tree``; its text must occur exactly once."""
    path = tree / fault.path
    text = path.read_text()
    if text.count(fault.old) != 1:
        raise ValueError(f"{fault.path}: {fault.old!r} occurs {text.count(fault.old)} times (expected once)")
    path.write_text(text.replace(fault.old, fault.new))


def copy_tree(dest: Path) -> None:
    """The package, its tests and pyproject.toml (pytest's settings), without caches."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis")
    for name in ("hwsim", "tests"):
        shutil.copytree(ROOT / name, dest / name, ignore=ignore)
    shutil.copy2(ROOT / "pyproject.toml", dest / "pyproject.toml")


def run(fault: Fault) -> tuple[str, float, str]:
    """(verdict, seconds, last line of pytest's output) for one fault."""
    with tempfile.TemporaryDirectory(prefix="hwsim-fault-") as tmp:
        tree = Path(tmp)
        copy_tree(tree)
        try:
            plant(fault, tree)
        except ValueError as exc:
            return "broken", 0.0, str(exc)
        env = {**os.environ, "PYTHONPATH": str(tree)}
        env.pop("NUMBA_CACHE_DIR", None)  # the copy's own cache folder, so the planted kernel compiles
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-x", "-q", "-n", "0", "-p", "no:cacheprovider", *fault.tests],
            cwd=tree,
            env=env,
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - start
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    verdict = {0: "MISSED", 1: "caught"}.get(proc.returncode, "broken")
    return verdict, seconds, lines[-1] if lines else proc.stderr.strip()[-200:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-k", default="", help="run only the faults whose name contains this")
    args = parser.parse_args(argv)
    faults = [f for f in FAULTS if args.k in f.name]
    print("| fault | kernel | verdict | seconds | pytest |\n|---|---|---|---:|---|", flush=True)
    verdicts = []
    for fault in faults:
        verdict, seconds, last = run(fault)
        verdicts.append(verdict)
        print(f"| {fault.name} | {Path(fault.path).name} | {verdict} | {seconds:.0f} | {last} |", flush=True)
    print(f"\ncaught {verdicts.count('caught')} of {len(faults)}", flush=True)
    return 0 if verdicts.count("caught") == len(faults) else 1


if __name__ == "__main__":
    sys.exit(main())
