"""The experiment file (``experiments/*.yaml``), schema version 1: what to combine, sweep and report.

An experiment names base workloads, devices, energy settings and quantization recipes, then axes that
change any field of any of them by a dotted path, combined as a grid, zipped lists or seeded random
samples::

    schema_version: 1
    name: default
    seed: 0
    workloads:                                 # built-in digits_* names, model files, or the user's model +
    data
      - digits_cnn_bn
      - {model: my_net.onnx, calibration: calib.npz, evaluation: test.npz}   # a float ONNX model
      - {model: my_net_int8.tflite, evaluation: test.npz}                   # an already-quantized model
    devices: [edge_tpu_like, ethos_u55_128_like, hexagon_like]
    recipes: [w8a8_per_channel]                # presets, recipe files, or inline mappings
    energy: {node_nm: 22}                     # default: each device's own technology
    evaluation: {calibration_samples: 128, test_samples: 270}
    sweep:
      grid:                                    # cartesian product (first axis outermost)
        recipe.weights.bits: [8, 6, 4]
        recipe.weights: [{granularity: per_tensor}, {granularity: per_channel}]   # a mapping merges
      zip: {}                                  # lists of equal length, taken together
      random: {samples: 0, axes: {}}  # each axis a list to choose from or {low, high[, log, integer]}
    metrics: [accuracy, latency, energy, overflow]
    plots: [pareto, breakdown, roofline]
    select: {max_accuracy_drop: 1.0, max_latency_ms: 5, minimize: energy}   # the report's recommended point

A float model is quantized at every point with the point's recipe (calibrated on ``calibration``), scored
on ``evaluation``, and its integer graph is what the simulator and the energy model see. An
already-quantized model (.tflite, quantized .onnx, an integer graph .npz / .json) is scored under
``recipe.semantics``; a layer .yaml or SCALE-Sim .csv has shapes only. Data is a .npz (``x``, ``y``), a .npy
or an image folder (:class:`hwsim.accuracy.data.ImageFolderSpec`). What a workload cannot give (a metric
without data or labels, a recipe axis on a model that is already quantized) is an error before the run
(:func:`hwsim.experiment.workloads.check_experiment`).

Axis paths start with ``workload``, ``device``, ``recipe`` (whole items: a name or file) or with
``recipe.``, ``device.``, ``energy.``, ``evaluation.``, ``run.`` followed by field names. A list of named
items is indexed by name or position: ``device.memories.sram.size_bytes``, ``device.memories.1.banks``.
Sweep parts combine by product: every grid point x every zip entry x every random sample. The base lists
(``workloads``, ``devices``, ``recipes``) are themselves grid axes, outermost, unless an axis names them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hwsim.accuracy.data import ImageFolderSpec
from hwsim.config.yamlio import at_field, load_spec

SCHEMA_VERSION = 1
METRICS = ("accuracy", "top5", "agreement", "mse", "sqnr", "latency", "energy", "overflow", "verify")
Metric = Literal["accuracy", "top5", "agreement", "mse", "sqnr", "latency", "energy", "overflow", "verify"]
PLOTS = ("pareto", "breakdown", "roofline", "overflow", "llm")
ROOTS = ("workload", "device", "recipe", "energy", "evaluation", "run")
ORDERS = ("natural", "reversed", "channel_outer")


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class EnergySpec(_Spec):
    """The energy table (None: hwsim's default) and the technology to price at: node and supply voltage
    (None: the device file's ``technology``)."""

    node_nm: Annotated[float, Field(gt=0)] | None = None
    voltage_v: Annotated[float, Field(gt=0)] | None = None
    table: str | None = None


class EvaluationSpec(_Spec):
    """How much data accuracy runs use, at most: calibration samples (the built-in workloads take them from
    the training split) and test samples (fewer when the data holds fewer)."""

    calibration_samples: Annotated[int, Field(ge=1)] = 128
    test_samples: Annotated[int, Field(ge=1)] = 270


class WorkloadItem(_Spec):
    """The user's model and data: ``model`` (float .onnx; or an already-quantized .tflite / .onnx / integer
    graph, which needs only ``evaluation``), ``calibration`` and ``evaluation`` data (a .npz with ``x`` and
    ``y``, a .npy, or an image folder mapping), and a ``name`` for the rows (default: the model's file
    stem). Paths are relative to the experiment file."""

    model: str
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.+-]+$")] | None = None
    calibration: str | ImageFolderSpec | None = None
    evaluation: str | ImageFolderSpec | None = None

    @property
    def label(self) -> str:
        """How rows name the workload."""
        return self.name or Path(self.model).stem


class RunOptions(_Spec):
    """Per-point options that are neither recipe nor device fields.

    ``accumulation_order``: the order a MAC op's register adds its products (only matters for a narrow
    saturating or wrapping accumulator): ``natural`` (the im2col order ky, kx, c), ``reversed``, or
    ``channel_outer`` (input channel outermost, as an array that folds channels onto rows feeds them).
    ``verify``: for the bit-exactness experiment, quantize the float workload with ONNX Runtime's
    ``quantize_static`` in this ``format`` and activation type, then compare hwsim with ONNX Runtime.
    Language-model workloads (:mod:`hwsim.llm.experiment`): ``lm_prefill_tokens`` and ``lm_kv_len`` (the
    prompt of the prefill and the cache length of a decode step), ``lm_quality_model`` (the runnable model
    the recipe's perplexity is measured on) and ``lm_windows`` (its evaluation windows).
    """

    accumulation_order: Literal["natural", "reversed", "channel_outer"] = "natural"
    verify_format: Literal["QDQ", "QOperator"] = "QDQ"
    verify_activation_type: Literal["QUInt8", "QInt8"] = "QUInt8"
    verify_per_channel: bool = True
    verify_samples: Annotated[int, Field(ge=1, le=64)] = 8
    lm_prefill_tokens: Annotated[int, Field(ge=1, le=1_000_000)] = 128
    lm_kv_len: Annotated[int, Field(ge=1, le=10_000_000)] = 1024
    lm_quality_model: str = "stdlib_lm"
    lm_windows: Annotated[int, Field(ge=1, le=4096)] = 16


class RandomAxis(_Spec):
    """A range to sample: uniform in [low, high], in log space if ``log``, rounded if ``integer``."""

    low: float
    high: float
    log: bool = False
    integer: bool = False

    @model_validator(mode="after")
    def _ordered(self):
        if self.high < self.low:
            raise at_field(("high",), f"must be >= low ({self.low})", self.high)
        if self.log and self.low <= 0:
            raise at_field(("low",), "a log range needs low > 0", self.low)
        return self


class RandomSpec(_Spec):
    """``samples`` points drawn with the experiment's seed; each axis is a list of choices or a range."""

    samples: Annotated[int, Field(ge=0, le=100000)] = 0
    axes: dict[str, list[Any] | RandomAxis] = {}


class SweepSpec(_Spec):
    """The axes to sweep: a grid (cartesian product), zipped lists, random samples; combined by product."""

    grid: dict[str, Annotated[list[Any], Field(min_length=1)]] = {}
    zip: dict[str, Annotated[list[Any], Field(min_length=1)]] = {}
    random: RandomSpec = RandomSpec()

    @model_validator(mode="after")
    def _check(self):
        for part in ("grid", "zip"):
            for path in getattr(self, part):
                _check_path(path, (part, path))
        for path in self.random.axes:
            _check_path(path, ("random", "axes", path))
        lengths = {k: len(v) for k, v in self.zip.items()}
        if len(set(lengths.values())) > 1:
            first = next(iter(lengths))
            for k, n in lengths.items():
                if n != lengths[first]:
                    raise at_field(
                        ("zip", k), f"zipped lists must have equal lengths ({first} has {lengths[first]})", n
                    )
        names = [*self.grid, *self.zip, *self.random.axes]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise at_field(
                    ("zip" if name in self.zip else "random",), "an axis may appear in one part only", name
                )
        return self


def _check_path(path: str, loc: tuple) -> None:
    root = path.split(".")[0]
    if root not in ROOTS:
        import difflib

        close = difflib.get_close_matches(root, ROOTS, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise at_field(loc, f"an axis path starts with one of {', '.join(ROOTS)}; {hint}", path)
    if root in ("energy", "evaluation", "run"):
        model = {"energy": EnergySpec, "evaluation": EvaluationSpec, "run": RunOptions}[root]
        rest = path.split(".")[1:]
        if len(rest) != 1 or rest[0] not in model.model_fields:
            import difflib

            close = difflib.get_close_matches(rest[-1] if rest else "", list(model.model_fields), n=1)
            hint = f"; did you mean '{root}.{close[0]}'?" if close else ""
            raise at_field(loc, f"unknown field{hint} (valid: {', '.join(model.model_fields)})", path)


class SelectSpec(_Spec):
    """How the report picks its recommended point: every constraint given must hold, then the lowest
    ``minimize`` wins. ``max_accuracy_drop``: integer top-1 below the float model, in percentage points;
    ``min_accuracy``: integer top-1 in %; ``max_perplexity_increase``: a language model's perplexity above
    its float model's, in %."""

    max_accuracy_drop: Annotated[float, Field(ge=0)] | None = None
    max_perplexity_increase: Annotated[float, Field(ge=0)] | None = None
    min_accuracy: Annotated[float, Field(ge=0, le=100)] | None = None
    max_latency_ms: Annotated[float, Field(gt=0)] | None = None
    max_energy_uj: Annotated[float, Field(gt=0)] | None = None
    max_power_mw: Annotated[float, Field(gt=0)] | None = None
    max_area_mm2: Annotated[float, Field(gt=0)] | None = None
    minimize: Literal["energy", "latency", "power", "area", "accuracy_drop"] = "energy"


SELECT_NEEDS = {
    "max_accuracy_drop": "accuracy",
    "min_accuracy": "accuracy",
    "max_perplexity_increase": "accuracy",
    "max_energy_uj": "energy",
    "max_power_mw": "energy",
    "max_area_mm2": "energy",
    "accuracy_drop": "accuracy",
    "energy": "energy",
    "power": "energy",
    "area": "energy",
}  # latency: every point is simulated


class ExperimentSpec(_Spec):
    """A whole experiment file."""

    schema_version: Literal[1]
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")]
    description: str = ""
    seed: int = 0
    workloads: Annotated[list[str | WorkloadItem], Field(min_length=1)]
    devices: Annotated[list[str], Field(min_length=1)]
    recipes: Annotated[list[str | dict[str, Any]], Field(min_length=1)] = ["int8_w_per_channel"]
    energy: EnergySpec = EnergySpec()
    evaluation: EvaluationSpec = EvaluationSpec()
    run: RunOptions = RunOptions()
    sweep: SweepSpec = SweepSpec()
    metrics: list[Metric] = ["accuracy", "latency", "energy"]
    plots: list[Literal["pareto", "breakdown", "roofline", "overflow", "llm"]] = [
        "pareto",
        "breakdown",
        "roofline",
    ]
    pareto: tuple[str, str] = ("energy_uj", "integer_top1")  # (cost to minimise, benefit; "-x" minimises x)
    select: SelectSpec | None = None  # the report's recommended point (None: the default rule of .select)

    @model_validator(mode="after")
    def _check(self):
        for i, r in enumerate(self.recipes):
            if isinstance(r, dict) and "name" not in r:
                raise at_field(("recipes", i), "an inline recipe needs a name (it labels the rows)", r)
        for key in sorted(self.select.model_fields_set) if self.select else ():
            v = getattr(self.select, key)
            need = SELECT_NEEDS.get(v if key == "minimize" else key)
            if v is not None and need is not None and need not in self.metrics:
                raise at_field(("select", key), f"needs '{need}' in metrics (metrics: {self.metrics})", v)
        return self


def load_experiment(path: str | Path) -> ExperimentSpec:
    """Read and validate an experiment file; errors read ``file:line: field.path: message (got value)``."""
    return load_spec(ExperimentSpec, Path(path))
