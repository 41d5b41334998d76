"""Model importers: files users bring, read into one :class:`~hwsim.workload.graph.Graph`."""

from __future__ import annotations

from pathlib import Path

from hwsim.errors import ConfigError
from hwsim.workload.graph import Graph

DEFAULT_SEMANTICS = {"tflite": "tflite-reference", "onnx": "onnxruntime"}


def load_model(path: str | Path) -> Graph:
    """Load a model file by its suffix (``.tflite``, ``.onnx``, ``.yaml``/``.yml``, SCALE-Sim ``.csv``)."""
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
    raise ConfigError(f"{path}: unknown model format {path.suffix!r}; hwsim reads .tflite, .onnx, "
                      ".yaml/.yml (layer shapes) and .csv (SCALE-Sim topology)")
