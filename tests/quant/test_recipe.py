"""Recipes: presets, YAML files with located errors, overrides."""

from pathlib import Path

import pytest

from hwsim.errors import ConfigError
from hwsim.paths import data_dir
from hwsim.quant.recipe import PRESETS, LayerOverride, QuantRecipe, load_recipe

RECIPES = sorted((data_dir("experiments") / "recipes").glob("*.yaml"))


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_round_trip_through_yaml(name, tmp_path):
    """Every preset written as YAML loads back to an equal recipe."""
    path = tmp_path / "r.yaml"
    path.write_text("schema_version: 1\n" + PRESETS[name].to_yaml())
    assert load_recipe(path) == PRESETS[name]


@pytest.mark.parametrize("path", RECIPES, ids=[p.name for p in RECIPES])
def test_shipped_recipe_files_load(path):
    """Each recipe in experiments/recipes validates."""
    assert isinstance(load_recipe(path), QuantRecipe)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    return path


def test_bad_value_names_file_line_and_field(tmp_path):
    """A wrong type reports file:line: weights.bits and the value."""
    path = _write(tmp_path, "schema_version: 1\nname: x\nweights:\n  bits: 4.5\n")
    with pytest.raises(ConfigError, match=r"bad.yaml:4: weights.bits: .*\(got 4.5\)"):
        load_recipe(path)


def test_unknown_key_suggests_the_closest(tmp_path):
    """A misspelt key is reported on its line with a did-you-mean."""
    path = _write(tmp_path, "schema_version: 1\nweights: {bits: 4, granularty: per_tensor}\n")
    with pytest.raises(
        ConfigError,
        match=r"bad.yaml:2: weights.granularty: unknown key; did you mean "
        r"'granularity'",
    ):
        load_recipe(path)


def test_per_group_needs_group_size(tmp_path):
    """Cross-field rules raise with the field's location."""
    path = _write(tmp_path, "schema_version: 1\nweights:\n  granularity: per_group\n")
    with pytest.raises(ConfigError, match=r"bad.yaml:2: weights: per_group granularity needs group_size"):
        load_recipe(path)


def test_group_size_range_is_checked():
    """Group sizes outside 16..256 are refused."""
    with pytest.raises(ValueError, match="group_size"):
        QuantRecipe.model_validate({"weights": {"granularity": "per_group", "group_size": 8}})


def test_outliers_need_dynamic_activations():
    """LLM.int8 outliers are only accepted with dynamic activations."""
    with pytest.raises(ValueError, match="dynamic"):
        QuantRecipe.model_validate({"outliers": {}})


def test_unknown_preset_is_a_helpful_error():
    """A name that is neither a preset nor a file lists the presets and the near miss."""
    with pytest.raises(ConfigError, match="Did you mean 'int8_w_per_channel'"):
        load_recipe("int8_w_per_chanel")


def test_overrides_apply_in_order_by_glob():
    """Later matching overrides win per field; non-matching layers keep the recipe's specs."""
    r = QuantRecipe.model_validate(
        {
            "weights": {"bits": 8},
            "overrides": [
                {"layer": "/1/*", "weights": {"bits": 4}},
                {"layer": "/1/Conv", "weights": {"range": "mse"}},
                {"layer": "*Gemm", "activations": {"bits": 16}},
            ],
        }
    )
    w, a, _ = r.layer_specs("/1/Conv")
    assert (w.bits, w.range, a.bits) == (4, "mse", 8)
    assert r.layer_specs("/9/Gemm")[1].bits == 16
    assert r.layer_specs("/2/Conv")[0].bits == 8
    more = r.with_overrides([LayerOverride(layer="/2/Conv", weights={"bits": 2})])
    assert more.layer_specs("/2/Conv")[0].bits == 2


def test_invalid_override_is_reported():
    """An override whose merged spec is invalid names the override."""
    with pytest.raises(ValueError, match=r"overrides\[0\]"):
        QuantRecipe.model_validate({"overrides": [{"layer": "*", "weights": {"bits": 40}}]})


def test_unknown_semantics_is_located(tmp_path):
    """A misspelt semantics name is reported on its line with the valid names."""
    path = _write(tmp_path, "schema_version: 1\nname: x\nsemantics: tflite-referense\n")
    with pytest.raises(
        ConfigError,
        match=r"bad.yaml:3: semantics: unknown semantics "
        r"'tflite-referense'.*tflite-reference",
    ):
        load_recipe(path)
