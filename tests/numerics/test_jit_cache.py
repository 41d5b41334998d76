"""Compiled kernels persist across processes: hwsim's cache folder, its fallbacks, and real cache hits in a
fresh process for a parallel kernel and for the AVX-512 VNNI intrinsic kernel, keyed by the target CPU."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numba
import pytest

from hwsim.numerics import jit_cache

ROOT = Path(__file__).resolve().parents[2]

# Compiles (does not run) the kernels named in argv for the CPU named by NUMBA_CPU_NAME (dot_vnni, parallel
# and built on an LLVM intrinsic, needs an AVX-512 VNNI CPU); prints each one's cache hits and misses.
_PROBE = """
import json, sys
from numba import types
from hwsim.numerics import kernels, kernels_vnni
i64, u8, i8 = types.int64, types.uint8[:, ::1], types.int8[:, ::1]
signatures = {"wrap32": (kernels.wrap32, (i64,)),
              "dot_vnni": (kernels_vnni.dot_vnni, (u8, i64, i8, i64, i64, i64))}
stats = {}
for name in sys.argv[1:]:
    kernel, sig = signatures[name]
    kernel.compile(sig)
    stats[name] = [sum(kernel.stats.cache_hits.values()), sum(kernel.stats.cache_misses.values())]
print(json.dumps(stats))
"""


def _probe(cache: Path, cpu: str, *names: str) -> dict:
    """Run the probe for ``cpu`` (its LLVM name; its own default features, not the host's)."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache), PYTHONPATH=str(ROOT), NUMBA_CPU_NAME=cpu,
               NUMBA_CPU_FEATURES="")
    run = subprocess.run([sys.executable, "-c", _PROBE, *names], env=env, cwd=ROOT, capture_output=True,
                         text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout)


@pytest.mark.skipif(numba.config.DISABLE_JIT, reason="nothing is compiled with the JIT off")
def test_fresh_process_loads_kernels_compiled_by_another(tmp_path):
    """Cold: every kernel compiled (a miss). Warm, in a new process: loaded (a hit, no miss), the parallel
    intrinsic kernel too. Another target CPU does not reuse the entries: it compiles anew."""
    vnni_cpu, names = "icelake-server", ("wrap32", "dot_vnni")  # compiled on any x86 host, never run
    assert _probe(tmp_path, vnni_cpu, *names) == {name: [0, 1] for name in names}
    assert _probe(tmp_path, vnni_cpu, *names) == {name: [1, 0] for name in names}
    assert _probe(tmp_path, "x86-64", "wrap32") == {"wrap32": [0, 1]}
    assert any(tmp_path.rglob("kernels_vnni.dot_vnni-*.nbc"))


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
    """Without NUMBA_CACHE_DIR the kernels go to the package's __pycache__/numba-<hash> (or the first writable
    fallback); with it, there."""
    probe = "import hwsim.numerics.kernels, numba; print(numba.config.CACHE_DIR)"
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["PYTHONPATH"] = str(ROOT)
    default = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True,
                             check=True)
    folders = jit_cache.candidates(jit_cache.source_hash())
    assert folders[0] == ROOT / "hwsim" / "numerics" / "__pycache__" / f"numba-{jit_cache.source_hash()}"
    assert default.stdout.strip() == str(jit_cache.first_writable(folders))  # the package's, if writable
    env["NUMBA_CACHE_DIR"] = str(tmp_path)
    chosen = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True,
                            check=True)
    assert chosen.stdout.strip() == str(tmp_path)
