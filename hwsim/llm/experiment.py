"""Language-model points of an experiment: quality of the shipped small LM, cost of the named model.

A workload that names a language model (an LM ``.yaml``, a ``config.json`` or a shipped name such as
``llama_3_2_1b``) makes :func:`hwsim.experiment.runner.run_one` call :func:`measure_lm`: the point's recipe
quantizes the runnable model ``run.lm_quality_model`` (perplexity, next-token agreement on the integer path)
and sets the bits of the named model's prefill and decode graphs on the point's device (time to first
token, decode tokens/s, energy per token, bytes per token, bandwidth bound). Quality and cost are cached per
process: quality does not depend on the device, cost does not depend on the rounding method.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

from hwsim.llm.config import LMSpec, load_lm_config


def lm_config_path(workload: str, base_dir: str | Path) -> Path | None:
    """The LM config file ``workload`` names, or None when it is not a language model."""
    from hwsim.paths import data_dir

    folder = data_dir("workloads")
    for c in (
        Path(base_dir) / workload,
        Path(workload),
        folder / workload,
        folder / f"{workload}.yaml",
        folder / workload / "config.json",
    ):
        if c.is_dir():
            c = c / "config.json"
        if c.is_file() and c.suffix in (".json", ".yaml", ".yml") and _declares_heads(c):
            return c
    return None


def _declares_heads(path: Path) -> bool:
    """True for hwsim's LM YAML (``kv_heads``) and a Hugging Face config (``num_attention_heads``)."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))  # JSON is YAML
    except (OSError, yaml.YAMLError):
        return False
    return isinstance(data, dict) and ("kv_heads" in data or "num_attention_heads" in data)


@functools.lru_cache(maxsize=64)
def _quality(model: str, recipe_json: str, windows: int) -> dict:
    from hwsim.llm.quality import evaluate_lm
    from hwsim.quant.recipe import QuantRecipe

    spec = load_lm_config(model)
    q = evaluate_lm(spec, QuantRecipe.model_validate_json(recipe_json), windows_count=windows)
    return {
        "quality_model": spec.name,
        "quality_tokens": q.tokens,
        "float_perplexity": q.float_perplexity,
        "perplexity": q.perplexity,
        "agreement": q.agreement,
    }


@functools.lru_cache(maxsize=64)
def _cost(path: str, device, prec, prefill: int, kv_len: int, energy_json: str) -> dict:
    from hwsim.llm.cost import lm_cost

    spec = load_lm_config(path)
    row = lm_cost(spec, device, prec, prefill_tokens=prefill, kv_len=kv_len, energy=json.loads(energy_json))
    out = row.as_row()
    del out["model"], out["device"]
    return out


def measure_lm(spec, path: Path, device, metrics: tuple[str, ...]) -> dict:
    """The columns of one LM point (see the module docstring); ``spec`` is the point's RunSpec."""
    from hwsim.llm.graphs import Precision
    from hwsim.llm.quantize import check_lm_recipe

    recipe = spec.recipe
    check_lm_recipe(recipe)
    lm: LMSpec = load_lm_config(path)
    run = spec.run
    out: dict = {"model": lm.name, "parameters": lm.parameters()}
    if "accuracy" in metrics:
        out.update(_quality(run.lm_quality_model, recipe.model_dump_json(), run.lm_windows))
    if {"latency", "energy"} & set(metrics):
        cost = _cost(
            str(path),
            device,
            Precision.of_recipe(recipe),
            run.lm_prefill_tokens,
            run.lm_kv_len,
            spec.energy.model_dump_json(),
        )
        out.update(cost)
        out["latency_ms"] = cost["decode_ms"]  # the generic columns: one decoded token is one inference
        out["energy_uj"] = cost["energy_per_token_uj"]
    return out
