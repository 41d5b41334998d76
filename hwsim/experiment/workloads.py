"""What an experiment's workload is, and what it can give: checked before any point runs.

:func:`resolve` turns a workload entry (a built-in name, a model path, or a
:class:`~hwsim.experiment.spec.WorkloadItem`) into a :class:`Workload` of one of four kinds:

=========== =========================================== ==================================================
kind        what it is                                  what a point does with it
=========== =========================================== ==================================================
builtin     ``digits_cnn_bn``, ``digits_dsconv``,        quantize with the point's recipe, score on the
            ``digits_mlp`` (scikit-learn's digits)      digits test split, simulate the integer graph
float       a float .onnx with calibration data          the same on the user's data
quantized   a .tflite, a quantized .onnx, an integer     score under ``recipe.semantics``, simulate as is
            graph .npz / .json
shapes      a layer .yaml or SCALE-Sim .csv              simulate as is
=========== =========================================== ==================================================

:func:`check_experiment` refuses, with ``file:line: field: message``, every metric and every swept axis a
workload cannot give: accuracy without labelled data, agreement with a float model that does not exist, a
``recipe.weights.bits`` axis on a model that is already quantized. Nothing is dropped silently.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hwsim.accuracy.builtin import BUILTIN_WORKLOADS, BuiltinWorkload, builtin_workload
from hwsim.config.yamlio import Loc, config_error
from hwsim.errors import ConfigError

ACCURACY_METRICS = ("accuracy", "top5", "agreement", "mse", "sqnr", "overflow")


@dataclass(frozen=True)
class Workload:
    """A resolved workload: its kind, model file and data (relative paths already joined to ``base_dir``)."""

    label: str
    kind: str  # builtin | float | quantized | shapes
    path: Path
    calibration: Any = None
    evaluation: Any = None
    base_dir: Path = Path(".")
    builtin: BuiltinWorkload | None = None  # a built-in: its data is the digits split, in its layout


def builtin_of(workload: str) -> BuiltinWorkload | None:
    """The built-in ``digits_cnn_bn`` or ``cnn_bn`` names; None for a model file."""
    return None if Path(workload).suffix else builtin_workload(workload)


def model_path(model: str, base_dir: Path) -> Path:
    """Where model ``model`` is: next to the experiment file, as given, or among the shipped workloads."""
    from hwsim.paths import data_dir

    for candidate in (base_dir / model, Path(model), data_dir("workloads") / model):
        if candidate.exists():
            return candidate
    builtins = ", ".join(w.label for w in BUILTIN_WORKLOADS.values())
    raise ConfigError(
        f"workload: {model!r} is neither a built-in ({builtins}) nor a file (looked next to "
        "the experiment file, in the working folder and in workloads/)"
    )


def resolve(entry, base_dir: str | Path) -> Workload:
    """The :class:`Workload` of a base-list entry or ``workload`` axis value."""
    from hwsim.experiment.sweep import workload_item

    base_dir = Path(base_dir)
    item = workload_item(entry)
    if item is None:
        builtin = builtin_of(str(entry))
        if builtin:
            return Workload(str(entry), "builtin", builtin.path, builtin=builtin)
        path = model_path(str(entry), base_dir)
        return Workload(str(entry), model_kind(path), path)
    path = model_path(item.model, base_dir)
    return Workload(item.label, model_kind(path), path, item.calibration, item.evaluation, base_dir)


def model_kind(path: Path) -> str:
    """``quantized``, ``float`` or ``shapes`` by the file's suffix and, for .onnx, its ops."""
    if path.suffix in (".yaml", ".yml", ".csv"):
        return "shapes"
    if path.suffix in (".tflite", ".npz", ".json"):
        return "quantized"
    if path.suffix == ".onnx":
        import onnx

        try:
            model = onnx.load(str(path), load_external_data=False)
        except Exception as exc:
            raise ConfigError(f"{path}: not a readable ONNX model ({type(exc).__name__}: {exc})") from None
        quantized = any(
            n.op_type in ("QuantizeLinear", "DequantizeLinear", "MatMulInteger", "ConvInteger")
            or n.op_type.startswith("QLinear")
            for n in model.graph.node
        )
        return "quantized" if quantized else "float"
    raise ConfigError(
        f"{path}: unknown model format {path.suffix!r} (a model is a .onnx, .tflite, an "
        "integer graph .npz / .json, a layer .yaml or a SCALE-Sim .csv)"
    )


def check_experiment(spec, path: Path) -> None:
    """Raise a located :class:`ConfigError` for the first metric or axis some workload of experiment file
    ``path`` (already validated into ``spec``) cannot give."""
    from hwsim.config.yamlio import load_yaml_with_lines

    _, lines = load_yaml_with_lines(path)
    base_dir = path.parent
    sw = spec.sweep
    axes: dict[str, Loc] = {}
    for part, names in (("grid", sw.grid), ("zip", sw.zip)):
        axes.update({name: ("sweep", part, name) for name in names})
    axes.update({name: ("sweep", "random", "axes", name) for name in sw.random.axes})
    if len(spec.recipes) > 1 and "recipe" not in axes:
        axes["recipe"] = ("recipes",)
    entries = [(w, ("workloads", i)) for i, w in enumerate(spec.workloads)]
    if "workload" in axes:
        values = {**sw.grid, **sw.zip}.get("workload") or sw.random.axes["workload"]
        entries = [(w, axes["workload"] + (j,)) for j, w in enumerate(values)]
    _check_semantics(spec, path, lines, axes)
    from hwsim.llm.experiment import lm_config_path

    for entry, loc in entries:
        if isinstance(entry, str) and lm_config_path(entry, base_dir):
            continue  # a language model: hwsim.llm.experiment measures and checks it
        try:
            workload = resolve(entry, base_dir)
        except ConfigError as exc:
            raise config_error(path, lines, loc, str(exc).removeprefix("workload: ")) from None
        except ValueError as exc:  # a mapping that is not a WorkloadItem
            raise config_error(
                path, lines, loc, f"not a workload ({str(exc).splitlines()[-1].strip()})", entry
            ) from None
        problem = _first_problem(workload, spec, axes, loc)
        if problem:
            where, message = problem
            raise config_error(path, lines, where, f"workload {workload.label!r}: {message}")


def _check_semantics(spec, path: Path, lines, axes: dict[str, Loc]) -> None:
    """Each swept ``recipe.semantics`` must name a registered runtime (an already-quantized model is scored
    under it without any recipe being validated)."""
    from hwsim.errors import RegistryError
    from hwsim.numerics.semantics import get_semantics

    if "recipe.semantics" not in axes:
        return
    sw = spec.sweep
    values = {**sw.grid, **sw.zip}.get("recipe.semantics") or sw.random.axes["recipe.semantics"]
    for j, name in enumerate(values if isinstance(values, list) else []):
        try:
            get_semantics(str(name))
        except RegistryError as exc:
            raise config_error(
                path, lines, axes["recipe.semantics"] + (j,), str(exc).strip("'\""), name
            ) from None


def _first_problem(w: Workload, spec, axes: dict[str, Loc], loc: Loc) -> tuple[Loc, str] | None:
    metrics = {m: ("metrics", i) for i, m in enumerate(spec.metrics)}
    if w.kind == "float" and w.calibration is None:
        return (
            loc,
            "a float model is quantized at every point: give calibration data "
            "({model: ..., calibration: calib.npz, evaluation: test.npz})",
        )
    for axis, loc in axes.items():
        why = _axis_problem(w, axis)
        if why:
            return loc, why
    for metric, loc in metrics.items():
        why = _metric_problem(w, metric)
        if why:
            return loc, why
    return None


def _axis_problem(w: Workload, axis: str) -> str | None:
    if w.kind in ("builtin", "float"):
        return None
    effective = ("recipe.semantics",) if w.kind == "quantized" else ()
    if axis == "recipe" or axis.startswith("recipe.") or axis == "run.accumulation_order":
        if axis in effective:
            return None
        what = (
            "is already quantized: only recipe.semantics applies to it"
            if w.kind == "quantized"
            else "has shapes only: no recipe applies to it"
        )
        return f"{w.path.name} {what} (axis {axis})"
    if axis.startswith("evaluation.") and w.kind == "shapes":
        return f"{w.path.name} has shapes only: no data is evaluated (axis {axis})"
    return None


def _metric_problem(w: Workload, metric: str) -> str | None:
    from hwsim.accuracy.data import label_dtype

    if metric not in ACCURACY_METRICS and metric != "verify":
        return None
    if w.kind == "shapes":
        return f"{w.path.name} has shapes only: it cannot give {metric!r} (metrics here: latency, energy)"
    if metric == "verify":
        return (
            None
            if w.kind in ("builtin", "float")
            else f"'verify' quantizes a float model with ONNX Runtime; {w.path.name} is already quantized"
        )
    if w.kind == "builtin":
        return None
    if metric in ("agreement", "sqnr") and w.kind == "quantized":
        return (
            f"{metric!r} compares with the float model; {w.path.name} is already quantized (no float model)"
        )
    if w.evaluation is None:
        return f"{metric!r} needs evaluation data ({{model: ..., evaluation: test.npz}})"
    dtype = label_dtype(w.evaluation, w.base_dir)
    if metric in ("accuracy", "top5") and (dtype is None or dtype.kind not in "iu"):
        return (
            f"{metric!r} needs class labels (an integer array y) in the evaluation data; "
            "without labels use 'agreement' (with the float model), with real targets 'mse'"
        )
    if metric == "mse" and (dtype is None or dtype.kind != "f"):
        return "'mse' needs real-valued targets (a float array y) in the evaluation data"
    if metric == "top5" and (width := output_width(w.path)) is not None and width < 5:
        return f"'top5' needs at least 5 classes; {w.path.name} has {width} outputs per sample"
    return None


def output_width(path: Path) -> int | None:
    """Values per sample of a model's first output (None when its shape is not known)."""
    from hwsim.importers import load_model

    graph = load_model(path)
    shape = graph.tensor(graph.outputs[0]).shape
    if not shape or any(d is None for d in shape[1:]):
        return None
    return int(math.prod(shape[1:]))
