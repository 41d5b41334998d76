"""The built-in workloads: float models shipped in ``workloads/`` (``digits_<name>.onnx``), trained on the
digits split of :mod:`hwsim.accuracy.datasets`. The one list of them, read by the experiments,
``hwsim quantize`` and the quantization table. No numpy here: ``hwsim --help`` lists these names.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class BuiltinWorkload:
    """A shipped float model and the layout in which its input takes the digits."""

    name: str  # the short name: cnn_bn
    layout: str  # "image" (NCHW [N, 1, 8, 8]) or "flat" ([N, 64])

    @property
    def label(self) -> str:
        """The name an experiment file uses: ``digits_cnn_bn``."""
        return f"digits_{self.name}"

    @property
    def path(self) -> Path:
        """The shipped model file."""
        from hwsim.paths import data_dir

        return data_dir("workloads") / f"{self.label}.onnx"

    def split(self, part: str):
        """The :class:`~hwsim.accuracy.datasets.Split` ``part`` (train, calibration, test) in this model's
        layout."""
        from hwsim.accuracy.datasets import digits_split

        return digits_split(part, self.layout)


BUILTIN_WORKLOADS = {
    w.name: w
    for w in (
        BuiltinWorkload("cnn_bn", "image"),
        BuiltinWorkload("dsconv", "image"),
        BuiltinWorkload("mlp", "flat"),
    )
}


def builtin_workload(name: str) -> BuiltinWorkload | None:
    """The built-in workload ``digits_<short>`` or ``<short>`` names (None for anything else)."""
    return BUILTIN_WORKLOADS.get(name.removeprefix("digits_"))
