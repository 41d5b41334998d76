"""Language-model points in an experiment: quality and cost columns, the figure, the report's picked point."""

import csv
import os

import yaml

from hwsim.experiment import run_experiment
from hwsim.experiment.spec import load_experiment
from hwsim.experiment.sweep import expand
from hwsim.paths import data_dir


def test_small_lm_sweep(tmp_path):
    """Two KV-cache formats of the shipped small LM on the Hexagon-like device: each row has perplexity,
    agreement, decode tokens/s under its bound and energy per token; the report recommends the cheapest
    point within 1 % of the float perplexity (the default rule when perplexity is measured)."""
    exp = {
        "schema_version": 1,
        "name": "lm_small",
        "workloads": ["stdlib_lm"],
        "devices": ["hexagon_like"],
        "recipes": ["int4_w_per_group32_a16"],
        "run": {"lm_windows": 2, "lm_kv_len": 128, "lm_prefill_tokens": 16},
        "sweep": {"grid": {"recipe.kv_cache": [None, {"bits": 4}]}},
        "plots": ["llm"],
        "pareto": ["energy_per_token_uj", "-perplexity"],
    }
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(exp))
    folder = run_experiment(path, results=tmp_path / "out", out=open(os.devnull, "w"))
    rows = list(csv.DictReader(open(folder / "rows.csv")))
    assert [r["status"] for r in rows] == ["ok", "ok"]
    for r in rows:
        assert 1 < float(r["float_perplexity"]) <= float(r["perplexity"]) * 1.05
        assert 0.5 < float(r["agreement"]) <= 1
        assert 0 < float(r["decode_tokens_per_s"]) <= float(r["bound_tokens_per_s"])
        assert float(r["energy_per_token_uj"]) > 0 and int(r["prefill_tokens"]) == 16
    assert int(rows[1]["kv_bytes_per_token"]) < int(rows[0]["kv_bytes_per_token"]) / 3
    assert (folder / "perplexity_vs_cost.png").exists()
    report = (folder / "report.md").read_text()
    assert "energy (uJ/token) vs perplexity" in report
    assert "perplexity increase vs float <= 1 %" in report and "## Recommended point" in report


def test_shipped_experiment_expands():
    """edge_llm.yaml: weights (4, 4 GPTQ, 8) x group (32, 128) x KV (16, 8, 4) x two devices."""
    path = data_dir("experiments") / "edge_llm.yaml"
    points = expand(load_experiment(path), path.parent)
    assert len(points) == 36
    assert {(p.recipe.weights.bits, p.recipe.gptq is not None) for p in points} == {
        (4, False),
        (4, True),
        (8, False),
    }
