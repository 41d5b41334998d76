"""``hwsim infer``: one model, one input, the output a runtime would give (same function as the CLI)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hwsim.errors import ConfigError
from hwsim.importers import default_semantics, load_model
from hwsim.numerics.ops import dequantize as dequantize_codes
from hwsim.numerics.semantics import Semantics, get_semantics
from hwsim.runtime.batch import run_batch
from hwsim.workload.graph import Graph


def infer(
    model: str | Path,
    x: np.ndarray,
    semantics: str | None = None,
    dequantize: bool = False,
    intra_op_threads: int | None = None,
) -> np.ndarray:
    """Run ``model`` on ``x`` (a single-input model) under ``semantics`` and return its first output.

    ``x`` may hold a batch along axis 0 even where the model takes one image: the images are spread over
    threads (:func:`hwsim.runtime.batch.run_batch`) and the outputs stacked.
    A float32 input to an integer model is quantized with the input tensor's parameters first (other float
    types are refused: a float64 array is most often data that was never meant for this model). With
    ``dequantize`` the integer output codes are turned into reals with the output tensor's parameters.
    ``intra_op_threads`` is the ONNX Runtime session's thread count to reproduce (its float Convs depend on
    it).
    """
    graph = load_model(model)
    sem = get_semantics(semantics or default_semantics(graph), intra_op_threads)
    return run_model(graph, x, sem, dequantize)


def run_model(
    graph: Graph, x: np.ndarray, semantics: str | Semantics, dequantize: bool = False
) -> np.ndarray:
    """The first output of single-input ``graph`` on ``x`` (see :func:`infer`)."""
    if len(graph.inputs) != 1:
        raise ConfigError(f"{graph.source}: takes single-input models (this one has {len(graph.inputs)})")
    t = graph.tensor(graph.inputs[0])
    x = np.asarray(x)
    if np.issubdtype(x.dtype, np.floating) and np.issubdtype(t.dtype, np.integer) and x.dtype != np.float32:
        raise ConfigError(
            f"input {t.name!r}: expected {t.dtype} codes or float32 reals to quantize "
            f"(got {x.dtype}); convert with x.astype(np.float32) or quantize it yourself"
        )
    if np.issubdtype(x.dtype, np.floating) and np.issubdtype(t.dtype, np.integer):
        from hwsim.numerics.ops import quantize

        x = quantize(
            x.astype(np.float32),
            t.quant.scale,
            t.quant.zero_point,
            f"{'int' if np.issubdtype(t.dtype, np.signedinteger) else 'uint'}{t.dtype.itemsize * 8}",
            rounding="half_away",
        )
    elif np.issubdtype(x.dtype, np.floating) and np.issubdtype(t.dtype, np.floating):
        x = x.astype(t.dtype)
    y = run_batch(graph, x, semantics)[graph.outputs[0]]
    out_t = graph.tensor(graph.outputs[0])
    if dequantize and out_t.quant is not None:
        return dequantize_codes(y, out_t.quant.scale, out_t.quant.zero_point, axis=out_t.quant.axis)
    return y


def run_samples(graph: Graph, x: np.ndarray, semantics: str, batch: int = 256) -> np.ndarray:
    """Real outputs of ``graph`` for every sample of ``x`` (first axis): in batches when the input's
    batch is dynamic, one sample at a time when the file fixes it to 1 (as TFLite converters do)."""
    first = graph.tensor(graph.inputs[0]).shape[0] if graph.tensor(graph.inputs[0]).shape else None
    step = batch if first is None else int(first)
    if len(x) % step and first is not None:
        raise ConfigError(
            f"{graph.source}: the model takes batches of {first}; {len(x)} samples do not divide"
        )
    return np.concatenate(
        [
            run_model(graph, x[i : i + step], semantics, dequantize=True).astype(np.float32)
            for i in range(0, len(x), step)
        ]
    )
