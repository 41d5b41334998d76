"""Save and load an integer graph made by :func:`hwsim.quant.convert.quantize_model`.

``.npz``: every constant tensor's data under ``tensor:<name>`` and, under ``graph``, a JSON document with
the ops (kind, inputs, outputs, attributes), the tensors (shape, dtype, bits, scale, zero point, axis),
inputs, outputs and the recipe. ``.json``: the same document with constant data inline (for small models
and for reading). :func:`load_integer_graph` gives back a :class:`~hwsim.workload.graph.Graph` that
:func:`hwsim.runtime.execute.run_graph` runs with the same results.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hwsim.errors import ConfigError
from hwsim.numerics.formats import IntFormat
from hwsim.numerics.accumulator import Accumulator
from hwsim.workload.graph import Graph, Op, QuantInfo, Tensor

FORMAT = "hwsim-integer-graph"


def _attr_out(value):
    if isinstance(value, Accumulator):
        return {"__accumulator__": {"bits": value.fmt.bits, "overflow": value.overflow.name.lower()}}
    if isinstance(value, np.ndarray):
        return {"__array__": value.tolist(), "dtype": str(value.dtype)}
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    return value


def _attr_in(value):
    if isinstance(value, dict) and "__accumulator__" in value:
        acc = value["__accumulator__"]
        return Accumulator(IntFormat(acc["bits"]), acc["overflow"])
    if isinstance(value, dict) and "__array__" in value:
        return np.asarray(value["__array__"], value["dtype"])
    if isinstance(value, list) and all(isinstance(v, (int, float)) for v in value):
        return tuple(value)
    return value


def save_integer_graph(graph: Graph, path: str | Path, recipe: dict | None = None) -> Path:
    """Write ``graph`` to ``path`` (.npz or .json)."""
    path = Path(path)
    if path.suffix not in (".npz", ".json"):
        raise ConfigError(f"output: expected a .npz or .json file name (got {path.name!r})")
    inline = path.suffix == ".json"
    tensors = {}
    arrays = {}
    for name, t in graph.tensors.items():
        entry = {"shape": [d for d in t.shape], "dtype": str(t.dtype), "bits": t.bits}
        if t.quant is not None:
            entry.update(
                scale=np.asarray(t.quant.scale).tolist(),
                zero_point=np.asarray(t.quant.zero_point).tolist(),
                axis=t.quant.axis,
            )
        if t.data is not None:
            if inline:
                entry["data"] = t.data.tolist()
            else:
                arrays[f"tensor:{name}"] = t.data
        tensors[name] = entry
    doc = {
        "format": FORMAT,
        "version": 1,
        "source": graph.source,
        "graph_format": graph.format,
        "inputs": graph.inputs,
        "outputs": graph.outputs,
        "recipe": recipe,
        "tensors": tensors,
        "ops": [
            {
                "name": op.name,
                "kind": op.kind,
                "inputs": op.inputs,
                "outputs": op.outputs,
                "attrs": {k: _attr_out(v) for k, v in op.attrs.items() if k != "float_weight_rows"},
            }
            for op in graph.ops
        ],
    }
    if inline:
        path.write_text(json.dumps(doc))
    else:
        np.savez_compressed(path, graph=np.array(json.dumps(doc)), **arrays)
    return path


def load_integer_graph(path: str | Path) -> Graph:
    """Read a graph written by :func:`save_integer_graph`."""
    path = Path(path)
    try:
        if path.suffix == ".json":
            doc, arrays = json.loads(path.read_text()), {}
        else:
            with np.load(path) as z:
                arrays = {k: z[k] for k in z.files}
            doc = json.loads(str(arrays.pop("graph")))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: not an hwsim integer graph ({exc})") from None
    except KeyError:
        raise ConfigError(
            f"{path}: not an hwsim integer graph (no 'graph' entry; `hwsim quantize --output` "
            "writes them, data files go to --calib / --eval)"
        ) from None
    if doc.get("format") != FORMAT:
        raise ConfigError(f"{path}: format is {doc.get('format')!r}, expected {FORMAT!r}")
    tensors = {}
    for name, e in doc["tensors"].items():
        dtype = np.dtype(e["dtype"])
        quant = (
            QuantInfo(np.asarray(e["scale"], np.float32), np.asarray(e["zero_point"], np.int64), e["axis"])
            if "scale" in e
            else None
        )
        data = arrays.get(f"tensor:{name}")
        if data is None and "data" in e:
            data = np.asarray(e["data"], dtype)
        tensors[name] = Tensor(name, tuple(e["shape"]), dtype, quant, data, e["bits"])
    ops = [
        Op(o["name"], o["kind"], o["inputs"], o["outputs"], {k: _attr_in(v) for k, v in o["attrs"].items()})
        for o in doc["ops"]
    ]
    semantics = (doc.get("recipe") or {}).get("semantics") or ""
    return Graph(
        tensors, ops, doc["inputs"], doc["outputs"], doc["source"], doc["graph_format"], semantics=semantics
    )
