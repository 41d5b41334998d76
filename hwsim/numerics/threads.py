"""How the kernels share the cores with BLAS.

The fused GEMM calls BLAS from inside numba's parallel tiles, so each tile's product must run on its own
thread: a multi-threaded BLAS there would put two thread pools on the same cores. threadpoolctl (a declared
dependency) caps every loaded BLAS at one thread for the duration of a call, or of a
whole graph run; outside it, BLAS keeps its own setting.
"""

from __future__ import annotations

import contextlib
import importlib
import contextvars
from typing import Iterator

_INSIDE: contextvars.ContextVar[bool] = contextvars.ContextVar("hwsim_single_threaded_blas", default=False)
_CONTROLLER = None


def _controller():
    global _CONTROLLER
    if _CONTROLLER is None:
        from threadpoolctl import ThreadpoolController

        importlib.import_module("scipy.linalg.cython_blas")  # numba's np.dot calls this BLAS: load it first

        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER


def blas_limited() -> bool:
    """True inside a :func:`single_threaded_blas` block."""
    return _INSIDE.get()


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Run the block with every BLAS library limited to one thread (re-entrant: nested blocks cost
    nothing)."""
    if _INSIDE.get():
        yield
        return
    token = _INSIDE.set(True)
    try:
        with _controller().limit(limits=1, user_api="blas"):
            yield
    finally:
        _INSIDE.reset(token)
