"""A decoder-only language model's shape, from hwsim's YAML or from a Hugging Face style ``config.json``.

The families phones run differ in a few switches, which is all a cost model and a reference forward pass
need: grouped-query attention (``kv_heads`` < ``heads``), the FFN kind (SwiGLU for Llama, Qwen, Mistral,
Phi-3; GeGLU for Gemma; a plain GELU MLP for Phi-2), the norm (RMSNorm or LayerNorm), RoPE, tied
embeddings. A YAML file::

    schema_version: 1
    name: llama_3_2_1b
    family: llama
    layers: 16
    hidden: 2048
    heads: 32
    kv_heads: 8
    ffn: 8192
    ffn_kind: swiglu
    vocab: 128256
    context: 131072
    rope_theta: 500000
    tie_embeddings: true

A ``config.json`` is read for the keys Hugging Face ``transformers`` writes (``num_hidden_layers``,
``hidden_size``, ``num_attention_heads``, ``num_key_value_heads``, ``intermediate_size``, ``hidden_act``,
``vocab_size``, ``max_position_embeddings``, ``rope_theta``, ``tie_word_embeddings``, ``head_dim``,
``model_type``); it is never downloaded, the user gives the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hwsim.config.yamlio import at_field, load_spec
from hwsim.errors import ConfigError

SCHEMA_VERSION = 1
Positive = Annotated[int, Field(ge=1)]

# model_type of transformers' config -> (family, FFN kind, norm)
HF_FAMILIES = {
    "llama": ("llama", "swiglu", "rmsnorm"),
    "mistral": ("llama", "swiglu", "rmsnorm"),
    "qwen2": ("qwen", "swiglu", "rmsnorm"),
    "qwen3": ("qwen", "swiglu", "rmsnorm"),
    "phi3": ("phi", "swiglu", "rmsnorm"),
    "phi": ("phi", "gelu", "layernorm"),
    "gemma": ("gemma", "geglu", "rmsnorm"),
    "gemma2": ("gemma", "geglu", "rmsnorm"),
    "gemma3_text": ("gemma", "geglu", "rmsnorm"),
}


class LMSpec(BaseModel):
    """A decoder-only transformer: sizes, attention grouping, FFN kind, positions; optional trained weights.

    ``attention_bias``: the Q, K and V projections add a bias (Qwen2). ``weights`` (an ``.npz`` of
    Hugging Face-named float tensors, relative to the file) and ``eval_text`` make the model runnable for
    quality (:mod:`hwsim.llm.model`); without them it is a cost-only shape.
    ``tokenizer: printable_ascii`` maps newline and the 95 printable ASCII characters to ids 0..95.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = SCHEMA_VERSION
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")]
    family: Literal["llama", "qwen", "phi", "gemma", "custom"] = "custom"
    layers: Positive
    hidden: Positive
    heads: Positive
    kv_heads: Positive
    head_dim: Positive | None = None
    ffn: Positive
    ffn_kind: Literal["swiglu", "geglu", "gelu"] = "swiglu"
    norm: Literal["rmsnorm", "layernorm"] = "rmsnorm"
    norm_eps: Annotated[float, Field(gt=0)] = 1e-5
    vocab: Positive
    context: Positive = 2048
    positional: Literal["rope"] = "rope"
    rope_theta: Annotated[float, Field(gt=0)] = 10000.0
    tie_embeddings: bool = False
    attention_bias: bool = False
    weights: str | None = None
    eval_text: str | None = None
    tokenizer: Literal["printable_ascii"] | None = None
    source: str = ""

    @model_validator(mode="after")
    def _check(self) -> "LMSpec":
        if self.heads % self.kv_heads:
            raise at_field(
                ("kv_heads",), f"must divide heads ({self.heads}) for grouped-query attention", self.kv_heads
            )
        if self.head_dim is None and self.hidden % self.heads:
            raise at_field(
                ("heads",), f"must divide hidden ({self.hidden}) unless head_dim is given", self.heads
            )
        if self.dim % 2:
            raise at_field(("head_dim",), "RoPE rotates pairs: the head dimension must be even", self.dim)
        runnable = {self.weights is None, self.eval_text is None, self.tokenizer is None}
        if len(runnable) > 1:
            raise at_field(
                ("weights",), "weights, eval_text and tokenizer go together (a runnable model)", self.weights
            )
        llama_style = not self.attention_bias and self.ffn_kind == "swiglu" and self.norm == "rmsnorm"
        if self.weights is not None and not llama_style:
            raise at_field(
                ("weights",),
                "hwsim runs Llama-style weights (SwiGLU, RMSNorm, no attention "
                "bias); other families are shapes for cost studies",
                self.weights,
            )
        return self

    @property
    def dim(self) -> int:
        """The head dimension."""
        return self.head_dim or self.hidden // self.heads

    @property
    def group(self) -> int:
        """Query heads per KV head (1: multi-head attention, ``heads``: multi-query)."""
        return self.heads // self.kv_heads

    def parameters(self) -> int:
        """Parameters (embedding and head counted once when tied)."""
        attn = self.hidden * self.dim * (2 * self.heads + 2 * self.kv_heads)
        attn += self.dim * (self.heads + 2 * self.kv_heads) if self.attention_bias else 0
        ffn = self.hidden * self.ffn * (2 if self.ffn_kind == "gelu" else 3)
        norms = 2 * self.hidden
        table = self.vocab * self.hidden
        return self.layers * (attn + ffn + norms) + self.hidden + table * (1 if self.tie_embeddings else 2)

    def base_dir(self) -> Path:
        """The folder relative paths (``weights``, ``eval_text``) start from."""
        return Path(self.source).parent if self.source else Path(".")


def load_lm_config(source: str | Path) -> LMSpec:
    """An :class:`LMSpec` from a YAML file, a Hugging Face ``config.json``, or a shipped workload name.

    Errors read ``file:line: field: message (got value)`` (``file: field: ...`` for JSON, which has no lines
    that PyYAML keeps).
    """
    path = _resolve(source)
    if path.suffix == ".json":
        spec = from_hf_config(path)
    else:
        spec = load_spec(LMSpec, path)
    return spec.model_copy(update={"source": str(path)})


def _resolve(source: str | Path) -> Path:
    path = Path(source)
    if path.is_dir() and (path / "config.json").exists():
        return path / "config.json"
    if path.is_file():
        return path
    from hwsim.paths import data_dir

    folder = data_dir("workloads")
    for candidate in (folder / path, folder / f"{source}.yaml", folder / str(source) / "config.json"):
        if candidate.is_file():
            return candidate
    raise ConfigError(f"model: {str(source)!r} is neither a file nor a language model in workloads/")


def from_hf_config(path: Path) -> LMSpec:
    """The :class:`LMSpec` a Hugging Face ``config.json`` describes (families in :data:`HF_FAMILIES`)."""
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: not a readable JSON config ({exc})") from None
    if not isinstance(cfg, dict):
        raise ConfigError(f"{path}: expected a JSON object (got {type(cfg).__name__})")
    cfg = {**cfg.get("text_config", {}), **cfg} if "num_hidden_layers" not in cfg else cfg
    model_type = cfg.get("model_type")
    if model_type not in HF_FAMILIES:
        raise ConfigError(
            f"{path}: model_type: hwsim reads {', '.join(sorted(HF_FAMILIES))} (got {model_type!r})"
        )
    family, ffn_kind, norm = HF_FAMILIES[model_type]

    def need(key: str):
        if key not in cfg:
            raise ConfigError(f"{path}: {key}: required field is missing")
        return cfg[key]

    heads = need("num_attention_heads")
    data = {
        "name": Path(path).parent.name.replace(" ", "_") or model_type,
        "family": family,
        "layers": need("num_hidden_layers"),
        "hidden": need("hidden_size"),
        "heads": heads,
        "kv_heads": cfg.get("num_key_value_heads") or heads,
        "ffn": need("intermediate_size"),
        "ffn_kind": ffn_kind,
        "norm": norm,
        "vocab": need("vocab_size"),
        "context": cfg.get("max_position_embeddings", 2048),
        "rope_theta": cfg.get("rope_theta", (cfg.get("rope_parameters") or {}).get("rope_theta", 10000.0)),
        "tie_embeddings": cfg.get("tie_word_embeddings", family == "gemma"),
        "attention_bias": cfg.get("attention_bias", model_type == "qwen2"),  # Qwen2 has Q/K/V biases
        "norm_eps": cfg.get("rms_norm_eps", cfg.get("layer_norm_eps", 1e-5)),
    }
    if cfg.get("head_dim"):
        data["head_dim"] = cfg["head_dim"]
    import re

    if not re.fullmatch(r"[A-Za-z0-9_.-]+", data["name"]):
        data["name"] = model_type
    from pydantic import ValidationError

    try:
        return LMSpec.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "(config)"
        raise ConfigError(
            f"{path}: {field}: {err['msg'].removeprefix('Value error, ')} (got {err.get('input')!r})"
        ) from None
