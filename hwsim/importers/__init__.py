"""Model importers: files users bring, read into one :class:`~hwsim.workload.graph.Graph`."""

from __future__ import annotations

from pathlib import Path

from hwsim.errors import ConfigError
from hwsim.workload.graph import Graph

DEFAULT_SEMANTICS = {"tflite": "tflite-reference", "onnx": "onnxruntime"}


def load_model(path: str | Path) -> Graph:
    """Load a model file by its suffix (``.tflite``, ``.onnx``, ``.yaml``/``.yml``, SCALE-Sim ``.csv``, and
    hwsim's integer graphs ``.npz`` / ``.json``)."""
    path = Path(path)
    if path.suffix == ".tflite":
        from hwsim.importers.tflite_file import load_tflite

        return load_tflite(path)
    if path.suffix == ".onnx":
        from hwsim.importers.onnx_file import load_onnx

        return load_onnx(path)
    if path.suffix in (".yaml", ".yml"):
        from hwsim.importers.yaml_layers import load_layers_yaml

        return load_layers_yaml(path)
    if path.suffix == ".csv":
        from hwsim.importers.scalesim_csv import load_scalesim_topology

        return load_scalesim_topology(path)
    if path.suffix in (".npz", ".json"):
        from hwsim.quant.graph_io import load_integer_graph

        return load_integer_graph(path)
    raise ConfigError(
        f"{path}: unknown model format {path.suffix!r}; hwsim reads .tflite, .onnx, the "
        ".npz / .json integer graphs `hwsim quantize --output` writes, .yaml/.yml (layer "
        "shapes) and .csv (SCALE-Sim topology)"
    )


def default_semantics(graph: Graph) -> str:
    """The semantics a model runs under unless told: the one it was quantized for (an hwsim integer graph
    records its recipe's), else its runtime's (``tflite-reference`` for .tflite, this host's
    ``onnxruntime``)."""
    return graph.semantics or DEFAULT_SEMANTICS[graph.format]
