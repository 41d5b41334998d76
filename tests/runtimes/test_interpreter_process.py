"""The kept interpreter process of ``hwsim verify``: reused across calls, and a job that kills it fails alone.

Run on LiteRT (its import takes a fraction of a second); TensorFlow's and TFLite Micro's processes are the
same code serving other jobs, and the whole-model tests run through them.
"""

import errno
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from hwsim.importers import load_model
from hwsim.verify import compare
from hwsim.verify.interpreter_process import InterpreterProcess, interpreter_process
from tests.runtimes.conftest import require

GOLDEN = Path(__file__).parents[1] / "data" / "tflite" / "golden"
LITERT = compare.TARGETS["litert"]


@pytest.fixture(autouse=True)
def _litert():
    require("ai_edge_litert")


def _job(name: str, folder: Path) -> tuple:
    """Arguments of ``InterpreterProcess.run`` for the golden model ``name`` on two seeded samples."""
    model = GOLDEN / f"{name}.tflite"
    src = folder / f"{name}.inputs.npz"
    np.savez(src, **{f"input_{i}": x for i, x in enumerate(compare.random_inputs(load_model(model), 2, 0))})
    out = folder / name
    out.mkdir()
    return LITERT, model, src, out


def test_verify_calls_share_one_interpreter_process():
    """Two verify calls in one Python process run in the same interpreter process, which stays up."""
    first = compare.verify(GOLDEN / "add.tflite", against="litert", samples=2)
    pid = interpreter_process("litert").pid
    second = compare.verify(GOLDEN / "conv_k3_valid.tflite", against="litert", samples=2)
    assert first.bit_exact and second.bit_exact
    assert pid is not None and interpreter_process("litert").pid == pid
    os.kill(pid, 0)  # still running


def test_python_error_fails_its_job_alone(tmp_path):
    """LiteRT's BUILTIN_REF cannot load an int4-weight depthwise (a Python error ends the process): that
    job's resolvers report the last line the interpreter wrote, and the next job runs in a fresh process."""
    model = GOLDEN / "dw4_m1_k3_same.tflite"
    inputs = compare.random_inputs(load_model(model), 2, 0)
    (tmp_path / "a").mkdir()
    failed = compare._run_tflite(LITERT[:2], model, inputs, tmp_path / "a")
    assert failed == {r: "the interpreter failed: Registration failed." for r in LITERT[:2]}
    assert interpreter_process("litert").pid is None
    (tmp_path / "b").mkdir()
    runs = compare._run_tflite(LITERT[1:], model, inputs, tmp_path / "b")
    assert all(not isinstance(v, str) for v in runs.values()), runs
    assert interpreter_process("litert").pid is not None


def _kill_once_reading(fifo: Path, pid: int) -> None:
    """Kill ``pid`` as soon as it has opened ``fifo`` to read inputs (so in the middle of its job)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)  # succeeds once a reader has it open
            break
        except OSError as exc:
            if exc.errno != errno.ENXIO or time.monotonic() > deadline:
                raise
            time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.close(fd)


def test_death_in_a_job_fails_it_alone_and_the_next_job_restarts(tmp_path):
    """A process killed in the middle of a job (as an abort or a segfault would end it) fails that job with
    its exit status; one killed while idle is replaced unnoticed; either way the next job succeeds."""
    process = InterpreterProcess()
    try:
        assert process.run(*_job("add", tmp_path)) is None
        first = process.pid
        resolvers, model, _, out = _job("conv_k3_valid", tmp_path)
        fifo = tmp_path / "never_written.npz"
        os.mkfifo(fifo)
        killer = threading.Thread(target=_kill_once_reading, args=(fifo, first))
        killer.start()
        assert process.run(resolvers, model, fifo, out) == f"exit status {-signal.SIGKILL}"
        killer.join()
        assert process.run(*_job("maxpool_3_s2_same", tmp_path)) is None
        second = process.pid
        assert second != first
        os.kill(second, signal.SIGKILL)
        os.waitpid(second, 0)
        assert process.run(*_job("fc_k1_n5", tmp_path)) is None
        assert process.pid not in (None, first, second)
    finally:
        process.close()
    assert process.pid is None


def test_threads_share_the_process(tmp_path):
    """Jobs from several threads take turns in one process, each giving what it gives run alone."""
    names = ["add", "conv_k3_valid", "maxpool_3_s2_same", "fc_k1_n5"]
    (tmp_path / "alone").mkdir()
    (tmp_path / "threads").mkdir()
    process = InterpreterProcess()
    try:
        alone = [_job(n, tmp_path / "alone") for n in names]
        assert [process.run(*job) for job in alone] == [None] * 4
        pid = process.pid
        threads = [_job(n, tmp_path / "threads") for n in names]
        with ThreadPoolExecutor(4) as pool:
            assert list(pool.map(lambda job: process.run(*job), threads)) == [None] * 4
        assert process.pid == pid
    finally:
        process.close()
    for a, b in zip(alone, threads):
        for resolver in LITERT:
            with np.load(a[3] / f"{resolver}.npz") as x, np.load(b[3] / f"{resolver}.npz") as y:
                assert x.files == y.files
                for key in x.files:
                    np.testing.assert_array_equal(x[key], y[key])
