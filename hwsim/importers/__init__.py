"""Model importers: files users bring, read into one :class:`~hwsim.workload.graph.Graph`."""

from __future__ import annotations

from pathlib import Path

from hwsim.errors import ConfigError
from hwsim.workload.graph import Graph

DEFAULT_SEMANTICS = {"tflite": "tflite-reference", "onnx": "onnxruntime"}


def load_model(path: str | Path) -> Graph:
    """Load a model file by its suffix (``.tflite``, ``.onnx``)."""
    path = Path(path)
    if path.suffix == ".tflite":
        from hwsim.importers.tflite_file import load_tflite

        return load_tflite(path)
    if path.suffix == ".onnx":
        from hwsim.importers.onnx_file import load_onnx

        return load_onnx(path)
    raise ConfigError(f"{path}: unknown model format {path.suffix!r}; hwsim reads .tflite and .onnx")
