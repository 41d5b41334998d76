"""Quantization recipes: what to quantize how, as data (YAML or Python), never as classes.

A :class:`QuantRecipe` names the bit-width, granularity, range method and scheme of the weights, the
bit-width and calibration of the activations, the accumulator register, the post-training techniques to
apply (batch-norm folding, cross-layer equalization, bias correction, AdaRound, LLM.int8 outliers), and
per-layer overrides, and for language models the KV-cache format and GPTQ. Every model is pydantic with
``extra="forbid"`` and ``frozen=True``; a YAML file loads through :func:`load_recipe`, whose errors read
``file:line: field.path: message (got value)``.
Presets (:data:`PRESETS`) follow Brevitas' naming order (bits, role, granularity), e.g.
``int8_w_per_channel``.

A minimal recipe file::

    schema_version: 1
    name: w4a8_mse_adaround
    weights: {bits: 4, granularity: per_channel, range: mse}
    activations: {bits: 8, calibration: mse}
    adaround: {iterations: 1000}
    overrides:
      - {layer: "/0/Conv", weights: {bits: 8}}   # first layer at 8 bits
"""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from hwsim.errors import ConfigError
from hwsim.numerics.formats import IntFormat

SCHEMA_VERSION = 1


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class WeightSpec(_Spec):
    """How a layer's weights become integers.

    ``scheme`` uniform: ``bits`` 2..16 on an even grid; log2: sign + (bits-1)-bit exponent (powers of two,
    bits 3..5); kmeans: a 2**bits-entry codebook per output channel (centroids stored as int8);
    binary (bits 1) / ternary (bits 2): {-a, a} / {-a, 0, a} per output channel.
    ``range``: minmax, or mse (clip each channel's range to minimise the weights' squared error).
    """

    bits: int = Field(8, ge=1, le=16)
    granularity: Literal["per_tensor", "per_channel", "per_group"] = "per_channel"
    group_size: int | None = Field(None, ge=16, le=256)
    symmetric: bool = True
    narrow_range: bool = True
    power_of_two: bool = False
    range: Literal["minmax", "mse"] = "minmax"
    scheme: Literal["uniform", "log2", "kmeans", "binary", "ternary"] = "uniform"

    @model_validator(mode="after")
    def _consistent(self) -> "WeightSpec":
        if self.granularity == "per_group" and self.group_size is None:
            raise ValueError("per_group granularity needs group_size (16..256)")
        if self.granularity != "per_group" and self.group_size is not None:
            raise ValueError(f"group_size is only used with granularity per_group (got {self.granularity})")
        need = {"binary": (1, 1), "ternary": (2, 2), "log2": (3, 5), "kmeans": (1, 8), "uniform": (2, 16)}
        lo, hi = need[self.scheme]
        if not lo <= self.bits <= hi:
            raise ValueError(f"scheme {self.scheme} needs bits in {lo}..{hi} (got {self.bits})")
        if self.scheme != "uniform" and self.granularity == "per_group":
            raise ValueError(f"scheme {self.scheme} is per_tensor or per_channel, not per_group")
        return self

    @property
    def fmt(self) -> IntFormat:
        """The integer format of the codes of a uniform scheme."""
        return IntFormat(self.bits, True, self.narrow_range and self.symmetric)


class ActivationSpec(_Spec):
    """How activations become integers: bits, symmetry, and how their range is calibrated.

    ``calibration``: minmax; moving_average (exponential average of per-batch min/max, ``momentum``);
    percentile (``percentile`` of the values, e.g. 99.99); mse (clipping that minimises squared error);
    entropy (TensorRT's KL-divergence threshold). ``dynamic``: ranges are taken per input at run time
    (weights stay static), the layer outputs stay float.
    """

    bits: int = Field(8, ge=2, le=16)
    symmetric: bool = False
    power_of_two: bool = False
    calibration: Literal["minmax", "moving_average", "percentile", "mse", "entropy"] = "minmax"
    percentile: float = Field(99.99, gt=50.0, le=100.0)
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    dynamic: bool = False

    @property
    def fmt(self) -> IntFormat:
        """The integer format of the activation codes (signed, TFLite-style; asymmetric uses a zero point)."""
        return IntFormat(self.bits, True)


class AccumulatorSpec(_Spec):
    """The MAC accumulator register: width and overflow behaviour."""

    bits: int = Field(32, ge=8, le=64)
    overflow: Literal["saturate", "wrap", "exact"] = "saturate"


class AdaRoundSpec(_Spec):
    """AdaRound (Nagel et al., ICML 2020): learn up/down rounding per weight on calibration data."""

    iterations: int = Field(1000, ge=1, le=100000)
    reg_weight: float = Field(0.01, gt=0.0)
    beta_start: float = Field(20.0, gt=0.0)
    beta_end: float = Field(2.0, gt=0.0)
    warmup: float = Field(0.2, ge=0.0, lt=1.0)
    learning_rate: float = Field(1e-2, gt=0.0)
    max_rows: int = Field(4096, ge=16)
    seed: int = 0


class OutlierSpec(_Spec):
    """LLM.int8() (Dettmers et al., 2022): input columns with any |x| >= threshold run at ``bits``."""

    threshold: float = Field(6.0, gt=0.0)
    bits: int = Field(16, ge=8, le=16)


class KVCacheSpec(_Spec):
    """KV-cache quantization for language models: keys and values stored as ``bits``-bit codes with one
    symmetric scale per (KV head, token), so appending a token never rescales the cache."""

    bits: int = Field(8, ge=2, le=8)


class GptqSpec(_Spec):
    """GPTQ (Frantar et al., ICLR 2023): quantize a layer's weight columns in order and spread each column's
    rounding error over the columns not yet quantized, through the inverse Hessian of the layer's inputs
    (from ``calibration_tokens`` of calibration text); ``damp`` adds that fraction of the mean diagonal."""

    damp: float = Field(0.01, gt=0.0, le=1.0)
    calibration_tokens: int = Field(2048, ge=16, le=1_000_000)


class SmoothQuantSpec(_Spec):
    """SmoothQuant (Xiao et al., ICML 2023) for language models: move activation outliers into the weights
    with a per-input-channel factor s = max|x|^alpha / max|w|^(1 - alpha), folded into the norm before
    the Q/K/V and gate/up projections (``calibration_tokens`` of calibration text give max|x|)."""

    alpha: float = Field(0.5, ge=0.0, le=1.0)
    calibration_tokens: int = Field(2048, ge=16, le=1_000_000)


class QatSpec(_Spec):
    """Quantization-aware training through PyTorch (straight-through estimator, LSQ learnable scales)."""

    epochs: int = Field(10, ge=1, le=1000)
    learning_rate: float = Field(1e-3, gt=0.0)
    batch: int = Field(64, ge=1)
    seed: int = 0


class LayerOverride(_Spec):
    """Per-layer settings: ``layer`` is a glob over op names (``/3/Conv``, ``*Gemm``). Fields given here
    replace the recipe's; ``activations`` applies to the layer's input tensor (the operand it multiplies)."""

    layer: str
    weights: dict[str, Any] | None = None
    activations: dict[str, Any] | None = None
    accumulator: dict[str, Any] | None = None


class QuantRecipe(_Spec):
    """A whole post-training (and optionally QAT) quantization recipe."""

    schema_version: Literal[1] = SCHEMA_VERSION
    name: str = "custom"
    description: str = ""
    semantics: str = "tflite-reference"
    weights: WeightSpec = WeightSpec()
    activations: ActivationSpec = ActivationSpec()
    output_bits: int | None = Field(None, ge=2, le=16)
    bias_bits: int = Field(32, ge=8, le=32)
    accumulator: AccumulatorSpec = AccumulatorSpec()
    rounding: Literal["half_even", "half_away", "half_up"] = "half_even"
    fold_batchnorm: Literal[True] = True
    equalize: bool = False
    equalize_iterations: int = Field(20, ge=1, le=1000)
    bias_correction: bool = False
    adaround: AdaRoundSpec | None = None
    outliers: OutlierSpec | None = None
    kv_cache: KVCacheSpec | None = None
    gptq: GptqSpec | None = None
    smoothquant: SmoothQuantSpec | None = None
    qat: QatSpec | None = None
    overrides: tuple[LayerOverride, ...] = ()

    @field_validator("semantics")
    @classmethod
    def _known_semantics(cls, name: str) -> str:
        from hwsim.errors import RegistryError
        from hwsim.numerics.semantics import get_semantics

        try:
            get_semantics(name)
        except RegistryError as exc:  # pydantic locates ValueErrors only
            raise ValueError(str(exc)) from None
        return name

    @model_validator(mode="after")
    def _consistent(self) -> "QuantRecipe":
        if self.outliers is not None and not self.activations.dynamic:
            raise ValueError(
                "outliers (LLM.int8) pick columns per input at run time: set activations.dynamic"
            )
        if self.gptq is not None and (self.adaround is not None or self.weights.scheme != "uniform"):
            raise ValueError("gptq rounds a uniform grid itself: use it without adaround, scheme uniform")
        if self.adaround is not None and self.weights.scheme != "uniform":
            raise ValueError(f"adaround rounds a uniform grid (weights.scheme is {self.weights.scheme})")
        for i, o in enumerate(self.overrides):
            try:
                self.layer_specs(o.layer)
            except ValueError as exc:
                raise ValueError(f"overrides[{i}]: {exc}") from None
        return self

    def layer_specs(self, op_name: str) -> tuple[WeightSpec, ActivationSpec, AccumulatorSpec]:
        """The weight, input-activation and accumulator specs of the op called ``op_name`` (overrides applied
        in order, the last matching one winning per field)."""
        w, a, acc = self.weights.model_dump(), self.activations.model_dump(), self.accumulator.model_dump()
        for o in self.overrides:
            if fnmatch.fnmatchcase(op_name, o.layer):
                w.update(o.weights or {})
                a.update(o.activations or {})
                acc.update(o.accumulator or {})
        return WeightSpec(**w), ActivationSpec(**a), AccumulatorSpec(**acc)

    def with_overrides(self, overrides: list[LayerOverride], name: str | None = None) -> "QuantRecipe":
        """A copy with ``overrides`` appended (used by the mixed-precision search)."""
        data = self.model_dump()
        data["overrides"] = [*data["overrides"], *(o.model_dump() for o in overrides)]
        data["name"] = name or self.name
        return QuantRecipe.model_validate(data)

    def to_yaml(self) -> str:
        """The recipe as YAML, with only fields that differ from the defaults."""
        import yaml

        return yaml.safe_dump(self.model_dump(exclude_defaults=True, mode="json"), sort_keys=False)


def _preset(name: str, **fields) -> QuantRecipe:
    return QuantRecipe.model_validate({"name": name, **fields})


def _llm_presets() -> list[QuantRecipe]:
    """Language-model recipes (hwsim.llm): per-token dynamic activations, as phone LLM runtimes run them."""
    a16 = {"bits": 16, "dynamic": True, "symmetric": True}
    a8 = {"bits": 8, "dynamic": True, "symmetric": True}
    g32 = {"bits": 4, "granularity": "per_group", "group_size": 32}
    return [
        _preset(
            "int4_w_per_group32_a16",
            description="LLM W4A16 (QNN-style): 4-bit weights per group of 32, 16-bit activations per token",
            weights=g32,
            activations=a16,
        ),
        _preset(
            "int4_w_per_group32_a16_gptq",
            description="LLM W4A16 with GPTQ rounding",
            weights=g32,
            activations=a16,
            gptq={},
        ),
        _preset(
            "int4_w_per_group32_a8_kv8",
            description="LLM W4A8 (ExecuTorch 8da4w) with an int8 KV cache",
            weights=g32,
            activations=a8,
            kv_cache={"bits": 8},
        ),
        _preset(
            "int8_w_per_channel_a8_per_token",
            description="LLM W8A8: per-channel weights, activations per token",
            activations=a8,
        ),
    ]


PRESETS: dict[str, QuantRecipe] = {
    p.name: p
    for p in (
        _preset("int8_w_per_channel", description="W8A8, per-channel symmetric weights, min-max activations"),
        _preset("int8_w_per_tensor", weights={"granularity": "per_tensor"}),
        _preset(
            "int8_w_per_tensor_cle",
            weights={"granularity": "per_tensor"},
            equalize=True,
            bias_correction=True,
        ),
        _preset("int8_dynamic", activations={"dynamic": True}),
        _preset("int8_llm_int8", activations={"dynamic": True, "symmetric": True}, outliers={}),
        _preset(
            "int4_w_per_channel_mse_adaround",
            weights={"bits": 4, "range": "mse"},
            activations={"calibration": "mse"},
            adaround={},
        ),
        _preset(
            "int4_w_per_group32",
            weights={"bits": 4, "granularity": "per_group", "group_size": 32, "range": "mse"},
        ),
        _preset(
            "int8_a16",
            description="8-bit weights, 16-bit activations (TFLite 16x8)",
            activations={"bits": 16, "symmetric": True},
            accumulator={"bits": 64},
        ),
        *_llm_presets(),
    )
}


def load_recipe(source: str | Path) -> QuantRecipe:
    """A preset by name, or a recipe YAML file; errors name ``file:line: field``."""
    if isinstance(source, str) and source in PRESETS:
        return PRESETS[source]
    path = Path(source)
    if not path.suffix and not path.exists():
        import difflib

        close = difflib.get_close_matches(str(source), PRESETS, n=2)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ConfigError(
            f"recipe: {source!r} is neither a preset nor a file.{hint} Presets: {', '.join(PRESETS)}"
        )
    from hwsim.config.yamlio import load_yaml_with_lines, validate

    data, lines = load_yaml_with_lines(path)
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}:1: expected a mapping with schema_version, name, weights, activations "
            f"(got a {type(data).__name__})"
        )
    return validate(QuantRecipe, data, lines, path)
