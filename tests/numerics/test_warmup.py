"""The background warm-up: its signatures are exactly the calls the default experiment makes, a call waits
for the process compiling its signature (and loads its result), and the split over processes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numba
import pytest
import yaml

from hwsim.numerics import simd, warmup

ROOT = Path(__file__).resolve().parents[2]

# Runs an experiment with the JIT off and records the argument types (as numba types them) of every call
# into a kernels*.py function made from outside those modules.
_RECORD = """
import json, sys
from functools import wraps
import numba
from hwsim.numerics import kernels, kernels_fused, kernels_nonlinear, kernels_ordered, kernels_simd
calls, depth = set(), [0]
def recording(module, fn):
    @wraps(fn)
    def call(*args):
        if depth[0] == 0:
            calls.add(repr((module.__name__.rpartition(".")[2], fn.__name__,
                            tuple(numba.typeof(a) for a in args))))
        depth[0] += 1
        try:
            return fn(*args)
        finally:
            depth[0] -= 1
    return call
for module in (kernels, kernels_fused, kernels_nonlinear, kernels_ordered, kernels_simd):
    for name, fn in list(vars(module).items()):
        if callable(fn) and getattr(fn, "__module__", None) == module.__name__ and not isinstance(fn, type):
            setattr(module, name, recording(module, fn))
from hwsim.cli import main
assert main(["run", sys.argv[1], "--results", sys.argv[2]]) == 0
print(json.dumps(sorted(calls)))
"""


def _env(**extra: str) -> dict:
    chosen = ("NUMBA_CACHE_DIR", "HWSIM_CACHE_DIR", "XDG_CACHE_HOME")
    env = {k: v for k, v in os.environ.items() if k not in chosen and k != "HWSIM_WARMUP"}
    return dict(env, PYTHONPATH=str(ROOT), **extra)


def _small_default(tmp_path: Path) -> Path:
    """The default experiment made quick (see below), written into ``tmp_path``."""
    experiment = yaml.safe_load((ROOT / "experiments" / "default.yaml").read_text())
    experiment["sweep"]["grid"]["recipe.weights.bits"] = [8]
    experiment.update(
        devices=experiment["devices"][:1],
        plots=[],
        select=None,
        evaluation={"calibration_samples": 32, "test_samples": 64},
    )
    experiment["recipes"] = [str(ROOT / "experiments" / r) for r in experiment["recipes"]]
    path = tmp_path / "default_small.yaml"
    path.write_text(yaml.safe_dump({k: v for k, v in experiment.items() if v is not None}))
    return path


def _run_small_default(tmp_path: Path, script: str, **env: str):
    """What ``script`` prints last (JSON) after running the quick default experiment on two threads."""
    run = subprocess.run(
        [sys.executable, "-c", script, str(_small_default(tmp_path)), str(tmp_path / "results")],
        env=_env(NUMBA_NUM_THREADS="2", HWSIM_CACHE="off", **env),
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.splitlines()[-1])


def test_default_run_is_the_default_experiments_calls(tmp_path):
    """The default experiment calls the kernels with exactly the signatures of DEFAULT_RUN: no more (they
    would compile in the foreground) and no fewer (compiled for nothing). Made quick: 8-bit weights only
    (the bit width is a value, not a type), one device (the values branch does not depend on it), and 64
    test images on two threads, so that each thread's chunk (32 rows) takes the BLAS path that 540 images
    take on up to 17 threads. Without the JIT no SIMD kernel runs: the entries of a host without one."""
    recorded = set(_run_small_default(tmp_path, _RECORD, NUMBA_DISABLE_JIT="1"))
    assert recorded == {repr(entry[:3]) for entry in warmup.entries(None)}


_COMPILED = """
import json, sys
from hwsim.cli import main
from hwsim.numerics import kernels_fused, kernels_simd
assert main(["run", sys.argv[1], "--results", sys.argv[2]]) == 0
print(json.dumps([[repr(s) for s in k.signatures] for k in (kernels_simd.gemm_requantize_simd,
                                                            kernels_fused.gemm_requantize)]))
"""


def test_default_run_gemm_is_the_hosts_simd_entry(tmp_path):
    """With the JIT on, the default run's GEMM is the host's SIMD kernel with exactly the signature its
    warm-up entry compiles, and the float32 BLAS tiles are never called (the same small run as above)."""
    isa = simd.instruction()
    if isa is None:
        pytest.skip("no SIMD kernel here: the JIT-free run above already checks the BLAS entry")
    simd_calls, blas_calls = _run_small_default(tmp_path, _COMPILED, HWSIM_WARMUP="off")
    assert simd_calls == [repr(warmup.entries(isa)[0][2])] and blas_calls == []


_WAIT = """
import json, subprocess, sys
from numba import types
from hwsim.numerics import jit_cache, kernels
later = ("import time; time.sleep(2); from numba import types; from hwsim.numerics import kernels; "
         "kernels.{}.compile((types.int64,) * {})")
stats = []
for name, n, registered in (("wrap32", 1, True), ("_trunc_div", 2, False)):
    process = subprocess.Popen([sys.executable, "-c", later.format(name, n)])
    if registered:
        jit_cache._background[("kernels", name, (types.int64,) * n)] = process
    kernel = getattr(kernels, name)
    kernel.compile((types.int64,) * n)
    stats.append([sum(kernel.stats.cache_hits.values()), sum(kernel.stats.cache_misses.values())])
    process.wait()
print(json.dumps(stats))
"""


@pytest.mark.skipif(numba.config.DISABLE_JIT, reason="nothing is compiled with the JIT off")
def test_a_call_waits_for_the_background_process_compiling_its_signature(tmp_path):
    """A signature a warm-up process is compiling is loaded from the cache once that process is done (a
    hit, no compile of its own); a signature no process was given compiles at once (a miss)."""
    run = subprocess.run(
        [sys.executable, "-c", _WAIT],
        env=_env(HOME=str(tmp_path)),
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert json.loads(run.stdout) == [[1, 0], [0, 1]]


@pytest.mark.skipif(numba.config.DISABLE_JIT, reason="nothing is compiled with the JIT off")
def test_compiled_entries_are_marked_for_the_next_run(tmp_path):
    """After a share is compiled, the next run's start() leaves its entries out."""
    dequantize = next(i for i, e in enumerate(warmup.DEFAULT_RUN) if e[1] == "dequantize")
    probe = "from hwsim.numerics import warmup; print(warmup.missing())"
    env = _env(HOME=str(tmp_path))
    run = dict(env=env, capture_output=True, text=True, check=True)
    before = subprocess.run([sys.executable, "-c", probe], **run)
    subprocess.run([sys.executable, "-m", "hwsim.numerics.warmup", str(dequantize)], **run)
    after = subprocess.run([sys.executable, "-c", probe], **run)
    assert json.loads(before.stdout) == list(range(len(warmup.DEFAULT_RUN)))
    assert json.loads(after.stdout) == [i for i in range(len(warmup.DEFAULT_RUN)) if i != dequantize]


def test_shares_put_the_heaviest_entries_on_the_least_loaded_process():
    entries = [
        ("m", name, (), cost)
        for name, cost in [("a", 20.0), ("b", 8.6), ("c", 3.0), ("d", 1.3), ("e", 0.4), ("f", 0.4)]
    ]
    assert warmup.shares(entries, 2) == [[0], [1, 2, 3, 4, 5]]
    assert warmup.shares(entries, 3) == [[0], [1], [2, 3, 4, 5]]
    assert warmup.shares(entries[:1], 2) == [[0]]
