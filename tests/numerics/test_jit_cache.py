"""Compiled kernels persist across processes: hwsim's cache folder (named by the sources' content, so a copy
of the package at another path finds it), its fallbacks, corrupt files compiled again, and real cache hits
in a fresh process for a parallel kernel and for the AVX-512 VNNI intrinsic kernel, keyed by the target
CPU; and one compiled kernel whether a layer's operands are frozen or writable."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numba
import numpy as np
import pytest

from hwsim.numerics import jit_cache, kernels_fused, kernels_simd
from hwsim.numerics import quantized as Q

ROOT = Path(__file__).resolve().parents[2]

# Compiles (does not run) the kernels named in argv for the CPU named by NUMBA_CPU_NAME (dot_simd, parallel
# and built on an LLVM intrinsic, needs an AVX-512 VNNI CPU); prints each one's cache hits and misses.
_PROBE = """
import json, sys
from importlib import import_module
from numba import types
i64, u8, i8 = types.int64, types.uint8[:, ::1], types.int8[:, ::1]
signatures = {"wrap32": ("kernels", (i64,)), "dot_simd": ("kernels_simd", (u8, i64, i8, i64, i64, i64))}
stats = {}
for name in sys.argv[1:]:
    module, sig = signatures[name]
    kernel = getattr(import_module("hwsim.numerics." + module), name)
    kernel.compile(sig)
    stats[name] = [sum(kernel.stats.cache_hits.values()), sum(kernel.stats.cache_misses.values())]
print(json.dumps(stats))
"""


def _fresh_env(home: Path, package_root: Path = ROOT, **extra: str) -> dict:
    """A fresh user's environment: home ``home``, no cache folder chosen, hwsim imported from
    ``package_root``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in (
            "NUMBA_CACHE_DIR",
            "HWSIM_CACHE_DIR",
            "XDG_CACHE_HOME",
            "NUMBA_CPU_NAME",
            "NUMBA_CPU_FEATURES",
        )
    }
    return dict(env, HOME=str(home), PYTHONPATH=str(package_root), **extra)


def _probe(home: Path, cpu: str | None, *names: str, package_root: Path = ROOT) -> dict:
    """Run the probe for ``cpu`` (its LLVM name; its own default features, not the host's; None: the host)."""
    extra = {} if cpu is None else {"NUMBA_CPU_NAME": cpu, "NUMBA_CPU_FEATURES": ""}
    run = subprocess.run(
        [sys.executable, "-c", _PROBE, *names],
        env=_fresh_env(home, package_root, **extra),
        cwd=home,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout)


def _package_copy(to: Path) -> Path:
    """A copy of hwsim's sources at another path (a second clone or venv), without compiled files."""
    shutil.copytree(ROOT / "hwsim", to / "hwsim", ignore=shutil.ignore_patterns("__pycache__"))
    return to


@pytest.mark.skipif(numba.config.DISABLE_JIT, reason="nothing is compiled with the JIT off")
def test_fresh_process_loads_kernels_compiled_by_another(tmp_path):
    """Cold: every kernel compiled (a miss). Warm, in a new process: loaded (a hit, no miss), the parallel
    intrinsic kernel too. Another target CPU does not reuse the entries: it compiles anew."""
    vnni_cpu, names = "icelake-server", ("wrap32", "dot_simd")  # compiled on any x86 host, never run
    assert _probe(tmp_path, vnni_cpu, *names) == {name: [0, 1] for name in names}
    assert _probe(tmp_path, vnni_cpu, *names) == {name: [1, 0] for name in names}
    assert _probe(tmp_path, "x86-64", "wrap32") == {"wrap32": [0, 1]}
    assert any((tmp_path / ".cache" / "hwsim" / "numba").rglob("kernels_simd.dot_simd-*.nbc"))


@pytest.mark.skipif(numba.config.DISABLE_JIT, reason="nothing is compiled with the JIT off")
def test_a_copy_of_the_package_elsewhere_loads_the_kernels_the_first_compiled(tmp_path):
    """The fresh-venv case: a second process imports hwsim from a copy of its sources at another path (a
    second clone, another venv), with no NUMBA_CACHE_DIR, and loads what the first compiled into
    ~/.cache/hwsim. A copy with an edited kernel source compiles anew (it cannot load stale code)."""
    home = tmp_path / "home"
    home.mkdir()
    assert _probe(home, None, "wrap32") == {"wrap32": [0, 1]}
    copy = _package_copy(tmp_path / "clone")
    assert _probe(home, None, "wrap32", package_root=copy) == {"wrap32": [1, 0]}
    edited = _package_copy(tmp_path / "edited")
    with open(edited / "hwsim" / "numerics" / "kernels_nonlinear.py", "a") as f:
        f.write("\n# an edit\n")
    assert _probe(home, None, "wrap32", package_root=edited) == {"wrap32": [0, 1]}
    assert len(list((home / ".cache" / "hwsim" / "numba").glob("*/*"))) == 2  # one folder per source hash


@pytest.mark.skipif(numba.config.DISABLE_JIT, reason="nothing is compiled with the JIT off")
def test_a_corrupt_cache_file_is_compiled_again(tmp_path):
    """A data file with one byte flipped, or a truncated index, is a miss: the kernel compiles as if
    nothing were cached, and the rewritten entry is a hit for the next process."""
    assert _probe(tmp_path, None, "wrap32") == {"wrap32": [0, 1]}
    folder = next((tmp_path / ".cache" / "hwsim" / "numba").glob("*/*"))
    data = next(folder.glob("kernels.wrap32-*.nbc"))
    blob = bytearray(data.read_bytes())
    blob[len(blob) // 2] ^= 0x40
    data.write_bytes(bytes(blob))
    assert _probe(tmp_path, None, "wrap32") == {"wrap32": [0, 1]}
    assert _probe(tmp_path, None, "wrap32") == {"wrap32": [1, 0]}
    index = next(folder.glob("kernels.wrap32-*.nbi"))
    index.write_bytes(index.read_bytes()[:-7])
    assert _probe(tmp_path, None, "wrap32") == {"wrap32": [0, 1]}


def test_source_hash_follows_every_kernel_source(tmp_path):
    """Editing any kernels*.py, not only the file a kernel is in, moves the cache to a new folder."""
    for name in ("kernels.py", "kernels_fused.py", "ops.py"):
        (tmp_path / name).write_text("x = 1\n")
    before = jit_cache.source_hash(tmp_path)
    (tmp_path / "ops.py").write_text("x = 2\n")
    assert jit_cache.source_hash(tmp_path) == before
    (tmp_path / "kernels.py").write_text("x = 2\n")
    assert jit_cache.source_hash(tmp_path) != before


def test_unwritable_folders_are_skipped(tmp_path):
    """A folder that cannot be made (here a file stands in its way, which stops root too) falls through to
    the next; none writable gives None."""
    blocker = tmp_path / "package"
    blocker.write_text("")
    fallback = tmp_path / "user" / "numba-x"
    assert jit_cache.first_writable([blocker / "__pycache__", fallback]) == fallback
    assert fallback.is_dir()
    assert jit_cache.first_writable([blocker / "a", blocker / "b"]) is None


def test_folder_is_hwsims_unless_the_user_chose_one(tmp_path):
    """Without NUMBA_CACHE_DIR every kernel's cache is ~/.cache/hwsim/numba/<python>-<numba>/<hash> (under
    $XDG_CACHE_HOME or $HWSIM_CACHE_DIR when set), with checked files; with it, numba's own under it."""
    probe = (
        "from hwsim.numerics import kernels as k; "
        "print(k.wrap32._cache.cache_path, type(k.fit._cache).__name__)"
    )
    versions = f"py{sys.version_info[0]}{sys.version_info[1]}-numba{numba.__version__}"
    tag = jit_cache.source_hash()[:16]
    cases = [
        ({}, tmp_path / ".cache" / "hwsim", "KernelCache"),
        ({"XDG_CACHE_HOME": str(tmp_path / "x")}, tmp_path / "x" / "hwsim", "KernelCache"),
        ({"HWSIM_CACHE_DIR": str(tmp_path / "h")}, tmp_path / "h", "KernelCache"),
    ]
    cases = [(extra, root / "numba" / versions / tag, cache) for extra, root, cache in cases]
    for extra, folder, cache in [
        *cases,
        ({"NUMBA_CACHE_DIR": str(tmp_path / "n")}, tmp_path / "n", "FunctionCache"),
    ]:
        run = subprocess.run(
            [sys.executable, "-c", probe],
            env=_fresh_env(tmp_path, **extra),
            capture_output=True,
            text=True,
            check=True,
        )
        path, kind = run.stdout.split()
        assert Path(path).is_relative_to(folder) and kind == cache, (extra, run.stdout)


def _signatures_added(run) -> set:
    """The kernel signatures ``run()`` made the fused and SIMD kernels compile (or load)."""
    kernels = (
        kernels_fused.gemm_requantize,
        kernels_fused.requantize_gemm,
        kernels_fused.depthwise_requantize,
        kernels_simd.gemm_requantize_simd,
    )
    before = {(k.py_func.__name__, s) for k in kernels for s in k.signatures}
    run()
    return {(k.py_func.__name__, s) for k in kernels for s in k.signatures} - before


@pytest.mark.skipif(numba.config.DISABLE_JIT, reason="nothing is compiled with the JIT off")
def test_frozen_and_writable_operands_share_one_compiled_kernel(rng):
    """A layer's weights and inputs reach the kernels read-only whether the caller's arrays are frozen (a
    model's tensors) or not: both run one machine code (numba compiles per argument type, read-only
    included, and each fused kernel costs 5-25 s to compile)."""
    quant = Q.LayerQuant(
        Q.QParams.of(0.02, 3), Q.QParams.of(rng.uniform(0.001, 0.02, 6)), Q.QParams.of(0.05, -4)
    )
    weights = {
        "fully_connected": rng.integers(-127, 128, (6, 19)).astype(np.int8),
        "depthwise_conv2d": rng.integers(-127, 128, (1, 3, 3, 6)).astype(np.int8),
    }
    inputs = {
        "fully_connected": rng.integers(-128, 128, (3, 19)).astype(np.int8),
        "depthwise_conv2d": rng.integers(-128, 128, (1, 5, 5, 6)).astype(np.int8),
    }

    def run(kind, frozen):
        w, x = weights[kind].copy(), inputs[kind].copy()
        w.flags.writeable = x.flags.writeable = not frozen
        return Q.prepare_layer(kind, np.int8, w, None, quant)(x)

    for kind in weights:
        first = run(kind, frozen=True)
        added = _signatures_added(lambda: np.testing.assert_array_equal(run(kind, frozen=False), first))
        assert added == set(), f"{kind}: writable operands compiled {added}"
