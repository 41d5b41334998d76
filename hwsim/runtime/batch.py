"""Batched integer inference: a batch of inputs through :func:`run_graph`, spread over threads.

A layer's own parallel loop pays a fork and a join on every call, which costs more than the work in the
small layers that make up most of an edge model. Across a batch there is a cheaper split: each thread runs
whole images (or whole chunks, for a graph with a free batch axis), every layer single-threaded, and no
thread waits for another until the batch is done. The kernels release the GIL (numba ``nogil``), numba's
thread count is per thread, and BLAS is held to one thread for the whole batch, so the threads do not
oversubscribe the cores. Results do not depend on the split: each image's arithmetic is the same.
"""

from __future__ import annotations

import contextvars
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

from hwsim.errors import ConfigError
from hwsim.numerics.semantics import Semantics
from hwsim.numerics.threads import single_threaded_blas
from hwsim.runtime.execute import run_graph
from hwsim.workload.graph import Graph


def run_batch(
    graph: Graph,
    x: np.ndarray,
    semantics: str | Semantics,
    *,
    threads: int | None = None,
    every_tensor: bool = False,
) -> dict[str, np.ndarray]:
    """Run a single-input ``graph`` on the batch ``x`` (axis 0) and return its outputs stacked along axis 0
    (every computed tensor with ``every_tensor``).

    A model whose input has a fixed batch of 1 (a TFLite file's) runs image by image; one whose batch axis
    is free runs a chunk per thread. ``threads`` defaults to numba's thread count; with one thread, or a
    single image or chunk, the layers keep their own threads instead.
    """
    if len(graph.inputs) != 1:
        raise ConfigError(
            f"{graph.source}: batched runs take single-input models (this one has {len(graph.inputs)})"
        )
    x = np.asarray(x)
    shape = graph.tensor(graph.inputs[0]).shape
    if x.ndim != len(shape) or not len(x):
        raise ConfigError(
            f"input: expected a batch of {len(shape)}-D inputs along axis 0 (got shape {x.shape})"
        )
    threads = max(1, threads or numba.get_num_threads())
    step = 1 if shape[0] == 1 else -(-len(x) // threads)
    chunks = [x[i : i + step] for i in range(0, len(x), step)]
    keep = None if every_tensor else list(graph.outputs)

    def run(chunk: np.ndarray, layer_threads: int) -> dict[str, np.ndarray]:
        numba.set_num_threads(layer_threads)  # per thread: the caller's own count is left alone
        values = run_graph(graph, [chunk], semantics)
        return {name: values[name] for name in (keep or values)}

    parts: list[dict[str, np.ndarray]] = []
    with single_threaded_blas():
        if not _threads_may_share_kernels():  # numba's threading layer starts on the first parallel kernel
            parts.append(run(chunks[0], numba.get_num_threads()))
        rest = chunks[len(parts) :]
        workers = min(threads, len(rest)) if _threads_may_share_kernels() else 1
        if workers <= 1:
            parts += [run(chunk, numba.get_num_threads()) for chunk in rest]
        else:
            with ThreadPoolExecutor(workers) as pool:  # each task in a copy of this context: BLAS held to 1
                tasks = [pool.submit(contextvars.copy_context().run, run, chunk, 1) for chunk in rest]
                parts += [task.result() for task in tasks]
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


def _threads_may_share_kernels() -> bool:
    """Whether several threads may run numba's parallel kernels at once: under OpenMP and TBB yes, under
    numba's own workqueue no (it aborts the process); False too before the layer has started."""
    try:
        return numba.threading_layer() in ("omp", "tbb")
    except ValueError:
        return False
