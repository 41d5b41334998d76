"""One long-lived interpreter process per TFLite interpreter, kept for every ``verify`` of a Python process.

Importing TensorFlow takes seconds (6 s on a 2-core Zen1), so starting ``hwsim.verify.tflite_runner`` anew
for each call would pay it every time. The first job for an interpreter (tensorflow, litert, tflite-micro)
starts its process; later jobs reuse it, and the processes are closed at exit. A job that kills its process
(an abort, a segfault, a Python error) fails alone: the failure carries the stderr that job produced, and
the next job starts a fresh process. Stderr goes to a temporary file, so a chatty interpreter can never fill
a pipe and stall. A lock per process serialises the callers of several threads: one process per thread
would import the interpreter once per thread, which costs more than the runs it would overlap.
"""

from __future__ import annotations

import atexit
import json
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path


class InterpreterProcess:
    """A ``python -m hwsim.verify.tflite_runner`` serving jobs, started on the first one and after a death."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._stderr = None

    @property
    def pid(self) -> int | None:
        """The serving process's id (None before the first job and after a death)."""
        return self._process.pid if self._process else None

    def run(self, resolvers: tuple[str, ...], model: Path, inputs: Path, folder: Path) -> str | None:
        """Write each resolver's tensors to ``folder``/<resolver>.npz; None when the job completed, else why
        the process died: the stderr it wrote during this job, or its exit status if it wrote none."""
        job = {
            "resolvers": list(resolvers),
            "model": str(model),
            "inputs": str(inputs),
            "folder": str(folder),
        }
        with self._lock:
            if self._process is None or self._process.poll() is not None:  # never started, or killed idle
                self._start()
            start = os.fstat(self._stderr.fileno()).st_size
            try:
                self._process.stdin.write(json.dumps(job) + "\n")
                self._process.stdin.flush()
                reply = self._process.stdout.readline()
            except BrokenPipeError:  # died before reading the job
                reply = ""
            if reply == "done\n":
                return None
            status = self._process.wait()
            size = os.fstat(self._stderr.fileno()).st_size
            said = os.pread(self._stderr.fileno(), size - start, start).decode(errors="replace").strip()
            self._stop()
            return said or f"exit status {status}"

    def close(self) -> None:
        """End the process: it exits when its stdin closes (killed if it has not within 10 s)."""
        with self._lock:
            if self._process is not None:
                self._process.stdin.close()
                try:
                    self._process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self._process.kill()
                    self._process.wait()
                self._stop()

    def _start(self) -> None:
        self._stop()
        self._stderr = tempfile.TemporaryFile()
        self._process = subprocess.Popen(
            [sys.executable, "-m", "hwsim.verify.tflite_runner"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )

    def _stop(self) -> None:
        """Release the pipes and the stderr file of a process that has exited."""
        if self._process is not None:
            for pipe in (self._process.stdin, self._process.stdout):
                try:
                    pipe.close()
                except BrokenPipeError:  # unflushed job text for a process that is gone
                    pass
            self._process = None
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None


_PROCESSES: dict[tuple[int, str], InterpreterProcess] = {}
_REGISTRY_LOCK = threading.Lock()


def interpreter_process(family: str) -> InterpreterProcess:
    """This Python process's server for ``family`` (a forked child gets its own: pipes are not shared)."""
    with _REGISTRY_LOCK:
        return _PROCESSES.setdefault((os.getpid(), family), InterpreterProcess())


@atexit.register
def _close_all() -> None:
    for (pid, _), process in list(_PROCESSES.items()):
        if pid == os.getpid():
            process.close()
