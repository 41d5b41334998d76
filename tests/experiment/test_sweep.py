"""Expansion of experiment files into points, and config errors that name file:line."""

import pytest

from hwsim.errors import ConfigError
from hwsim.experiment.spec import ExperimentSpec, load_experiment
from hwsim.experiment.sweep import expand


def _spec(**sweep) -> ExperimentSpec:
    return ExperimentSpec.model_validate(
        {
            "schema_version": 1,
            "name": "t",
            "seed": 7,
            "workloads": ["digits_mlp"],
            "devices": ["hexagon_like", "edge_tpu_like"],
            "sweep": sweep,
        }
    )


def test_grid_is_the_product_in_file_order():
    """A grid gives every combination, base lists outermost, then the axes in file order."""
    pts = expand(
        _spec(
            grid={"recipe.weights.bits": [8, 4], "recipe.weights.granularity": ["per_tensor", "per_channel"]}
        )
    )
    assert len(pts) == 8
    assert [p.index for p in pts] == list(range(8))
    assert [(p.device, p.recipe.weights.bits, p.recipe.weights.granularity) for p in pts[:4]] == [
        ("hexagon_like", 8, "per_tensor"),
        ("hexagon_like", 8, "per_channel"),
        ("hexagon_like", 4, "per_tensor"),
        ("hexagon_like", 4, "per_channel"),
    ]


def test_zip_takes_lists_together_and_mapping_values_merge():
    """Zipped lists advance together; a mapping value merges into the recipe section it addresses."""
    pts = expand(
        _spec(
            zip={
                "recipe.weights": [
                    {"granularity": "per_group", "group_size": 16},
                    {"granularity": "per_tensor"},
                ],
                "recipe.accumulator.bits": [16, 24],
            }
        )
    )
    assert len(pts) == 4
    w = pts[0].recipe.weights
    assert (w.granularity, w.group_size, w.bits, pts[0].recipe.accumulator.bits) == ("per_group", 16, 8, 16)
    assert pts[1].recipe.weights.granularity == "per_tensor"


def test_random_samples_are_seeded_and_stable():
    """Random samples depend only on the seed: two expansions give the same points and run ids."""
    sweep = {
        "random": {
            "samples": 5,
            "axes": {
                "device.clock_mhz": {"low": 100, "high": 1000, "log": True},
                "recipe.weights.bits": [4, 6, 8],
            },
        }
    }
    a, b = expand(_spec(**sweep)), expand(_spec(**sweep))
    assert [p.run_id for p in a] == [p.run_id for p in b]
    assert len({p.device_overrides["clock_mhz"] for p in a}) > 1
    assert all(100 <= p.device_overrides["clock_mhz"] <= 1000 for p in a)


def test_run_id_ignores_index_and_duplicates_collapse():
    """Identical points collapse into one; the run id is the content hash, not the position."""
    pts = expand(_spec(grid={"recipe.weights.bits": [8, 8, 4]}))
    assert len(pts) == 4
    assert len({p.run_id for p in pts}) == 4


def test_unknown_key_names_file_line_and_suggestion(tmp_path):
    """A misspelt key reads file:line: field: unknown key; did you mean ..."""
    path = tmp_path / "bad.yaml"
    path.write_text(
        "schema_version: 1\nname: bad\nworkloads: [digits_mlp]\ndevices: [hexagon_like]\nseeed: 3\n"
    )
    with pytest.raises(ConfigError, match=r"bad.yaml:5: seeed: unknown key; did you mean 'seed'\?"):
        load_experiment(path)


def test_bad_axis_root_is_located(tmp_path):
    """An axis path with an unknown root names the sweep section's line and the valid roots."""
    path = tmp_path / "bad.yaml"
    path.write_text(
        "schema_version: 1\nname: bad\nworkloads: [digits_mlp]\ndevices: [hexagon_like]\n"
        "sweep:\n  grid:\n    recipee.weights.bits: [8]\n"
    )
    with pytest.raises(ConfigError, match=r"bad.yaml:6: sweep.grid.*did you mean 'recipe'"):
        load_experiment(path)


def test_zip_lengths_must_match(tmp_path):
    """Zipped lists of different lengths are an error naming the shorter axis."""
    path = tmp_path / "bad.yaml"
    path.write_text(
        "schema_version: 1\nname: bad\nworkloads: [digits_mlp]\ndevices: [hexagon_like]\n"
        "sweep:\n  zip:\n    recipe.weights.bits: [8, 4]\n    run.accumulation_order: [natural]\n"
    )
    with pytest.raises(ConfigError, match=r"bad.yaml:\d+: sweep.zip.*equal lengths"):
        load_experiment(path)


def test_shipped_experiments_validate_and_expand():
    """Every file in experiments/ loads and expands to at least one point."""
    from hwsim.paths import data_dir

    files = sorted(data_dir("experiments").glob("*.yaml"))
    assert len(files) >= 5
    for f in files:
        assert expand(load_experiment(f), f.parent), f


def test_resume_adopts_rows_of_results_written_before_run_fail_left(tmp_path):
    """Each point knows the id it had before ``run.fail`` left RunOptions (pinned: the ids hwsim at 4f6d630
    gave experiments/default.yaml), and a results table takes such a row as the point's own."""
    from hwsim.experiment.results import ResultTable
    from hwsim.paths import data_dir

    path = data_dir("experiments") / "default.yaml"
    pts = expand(load_experiment(path), path.parent)
    assert (pts[0].legacy_run_id, pts[-1].legacy_run_id) == ("80cde1c3d384f9ca", "423a7235bd57dabe")
    assert pts[0].run_id != pts[0].legacy_run_id
    table = ResultTable(tmp_path)
    table.rows = {"80cde1c3d384f9ca": {"run_id": "80cde1c3d384f9ca", "index": 0, "status": "ok"}}
    table.adopt({p.legacy_run_id: p.run_id for p in pts})
    assert table.rows == {pts[0].run_id: {"run_id": pts[0].run_id, "index": 0, "status": "ok"}}
