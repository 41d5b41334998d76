"""Compile the kernels a run will call before it calls them: in background processes, into the shared cache.

On a fresh machine numba compiles the default experiment's six kernel signatures one after the other in the
one process that runs it, about 30 s on a 2-core Zen1, most of the first command. ``hwsim run`` instead
calls :func:`start` first: one process per core (at most two) compiles a share of :data:`DEFAULT_RUN`,
heaviest first, into hwsim's cache (:mod:`hwsim.numerics.jit_cache`) while the run reads its experiment,
builds its graphs and simulates its devices. A call the run then makes with one of those signatures waits
for the process compiling it and loads the result; any other signature compiles at once, as ever.
``hwsim warmup`` does the same in the foreground. A marker file per signature and CPU in the cache folder
lets the next run skip work already done; the cache itself still decides, so a wrong marker only costs
time. tests/numerics/test_warmup.py checks :data:`DEFAULT_RUN` against the calls the run makes.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from importlib import import_module

import numba
from numba import types

from hwsim.numerics import jit_cache, simd
from hwsim.numerics.kernel_records import StageArgs


def _array(dtype: str, ndim: int, readonly: bool = False) -> types.Array:
    return types.Array(getattr(types, dtype), ndim, "C", readonly=readonly)


_I64 = types.int64


#: a layer's requantizer as the fused kernels take it (``StageArgs``): read-only per-channel arrays, six ints
_STAGE_FIELDS = (_array("int64", 1, True), _array("int64", 1, True), _array("float32", 1, True), *[_I64] * 6)


def _stage() -> types.NamedTuple:
    """The requantizer as one record (the BLAS and integer kernels; the SIMD kernel takes its fields)."""
    return types.NamedTuple(_STAGE_FIELDS, StageArgs)


# (module in hwsim.numerics, kernel, argument types, seconds it took to compile on a 2-core Zen1): the
# calls `hwsim run experiments/default.yaml` makes (every array a kernel only reads reaches it read-only).
def _gemm(isa: str | None) -> tuple:
    """The default run's fully-connected GEMM: the SIMD kernel where the host runs one (its packed weights'
    type is the instruction's), the float32 BLAS tiles otherwise."""
    if isa is None:
        return (
            "kernels_fused",
            "gemm_requantize",
            (
                _array("int8", 2, True),
                _array("float32", 3),
                _I64,
                _array("int32", 1, True),
                _array("int64", 1, True),
                _array("int64", 1),
                _stage(),
                _array("int8", 2),
            ),
            20.0,
        )
    operands = (
        _array("int8", 2, True),
        _I64,
        _array("int16" if isa == "avx2" else "int8", 2, True),
        *[_I64] * 3,
    )
    corrections = (_array("int32", 1, True), _array("int64", 1, True), types.boolean)
    return (
        "kernels_simd",
        "gemm_requantize_simd",
        (*operands, *corrections, *_STAGE_FIELDS, _array("int8", 2)),
        25.0,  # with the requantizer it shares with the BLAS tiles (at load 2.6)
    )


def entries(isa: str | None) -> tuple:
    """(module, kernel, signature, compile seconds) of every call the default experiment makes, for a host
    whose SIMD kernel runs on ``isa`` (None: none)."""
    return (
        _gemm(isa),
        (
            "kernels_fused",
            "requantize_gemm",
            (
                _array("int64", 2),
                _array("int64", 1, True),
                _array("int64", 1, True),
                _array("int64", 1),
                _stage(),
                _array("int8", 2),
            ),
            8.6,
        ),
        ("kernels", "im2col", (_array("int8", 4), *[_I64] * 11), 3.0),
        (
            "kernels",
            "quantize",
            (
                _array("float32", 1, True),
                _array("float32", 1),
                _array("int64", 1),
                _I64,
                _I64,
                _I64,
                _I64,
                _array("float64", 1),
            ),
            1.3,
        ),
        (
            "kernels",
            "quantize",
            (
                _array("float32", 1),
                _array("float32", 1),
                _array("int64", 1),
                _I64,
                _I64,
                _I64,
                _I64,
                _array("float64", 1),
            ),
            0.4,
        ),
        ("kernels", "dequantize", (_array("int8", 1), _array("float32", 1), _array("int64", 1)), 0.4),
    )


DEFAULT_RUN = entries(simd.instruction())


def shares(entries, workers: int) -> list[list[int]]:
    """Indices of ``entries`` split over ``workers`` processes, heaviest first onto the least loaded, so the
    longest share is as short as the entries allow."""
    loads, split = [0.0] * workers, [[] for _ in range(workers)]
    for i in sorted(range(len(entries)), key=lambda i: -entries[i][3]):
        w = loads.index(min(loads))
        split[w].append(i)
        loads[w] += entries[i][3]
    return [s for s in split if s]


def _cpu() -> str:
    """The CPU numba compiles for (its name and features, as numba keys cache entries)."""
    import llvmlite.binding as ll

    return (numba.config.CPU_NAME or ll.get_host_cpu_name()) + (
        numba.config.CPU_FEATURES or ll.get_host_cpu_features().flatten()
    )


def _marker(entry, cpu: str):
    """The file that says ``entry`` was compiled for ``cpu`` into this cache folder."""
    module, name, signature, _ = entry
    key = hashlib.sha256(f"{module}.{name}{signature}|{cpu}".encode()).hexdigest()[:20]
    return jit_cache.cache_folder() / f"warm-{key}"


def missing(entries=DEFAULT_RUN) -> list[int]:
    """Indices of the entries not yet compiled into the cache for this CPU (all of them when no marker)."""
    cpu = _cpu()
    return [i for i, entry in enumerate(entries) if not _marker(entry, cpu).exists()]


def start(workers: int | None = None, quiet: bool = True) -> list[subprocess.Popen]:
    """Start compiling the missing entries of :data:`DEFAULT_RUN` in background processes (one per core, at
    most two); returns them. Nothing when all are compiled, when the user chose ``NUMBA_CACHE_DIR`` (then a
    miss would not know to wait for them), or under ``HWSIM_WARMUP=off`` (the test suite, whose processes
    already use every core). ``quiet``: their output is dropped (a share that fails leaves its kernels to
    compile on first use)."""
    off = os.environ.get("HWSIM_WARMUP", "").lower() in ("off", "0", "false", "no")
    if off or jit_cache.cache_folder() is None or numba.config.DISABLE_JIT:
        return []
    todo = missing()
    if not todo:
        return []
    workers = workers or min(2, os.cpu_count() or 1)
    processes = []
    for share in shares([DEFAULT_RUN[i] for i in todo], workers):
        indices = [todo[i] for i in share]
        drop = subprocess.DEVNULL if quiet else None
        process = subprocess.Popen(
            [sys.executable, "-m", "hwsim.numerics.warmup", *map(str, indices)],
            stdin=subprocess.DEVNULL,
            stdout=drop,
            stderr=drop,
        )
        jit_cache._background.update({DEFAULT_RUN[i][:3]: process for i in indices})
        processes.append(process)
    return processes


def compile_entries(indices: list[int]) -> None:
    """Compile the entries ``indices`` of :data:`DEFAULT_RUN` (loading those cached), then mark them."""
    cpu = _cpu()
    for i in indices:
        module, name, signature, _ = entry = DEFAULT_RUN[i]
        getattr(import_module(f"hwsim.numerics.{module}"), name).compile(signature)
        if jit_cache.cache_folder() is not None:
            _marker(entry, cpu).touch()


def main(argv: list[str]) -> int:
    """``python -m hwsim.numerics.warmup i j ...``: one background share (see :func:`start`)."""
    compile_entries([int(i) for i in argv])
    return 0


def wait(processes: list[subprocess.Popen]) -> float:
    """Wait for ``processes``; the seconds waited."""
    t0 = time.perf_counter()
    for process in processes:
        process.wait()
    return time.perf_counter() - t0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
