"""`hwsim simulate/energy --output r.json|r.csv`: per-layer results other tools read, consistent with the
SimResult."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import pytest

from hwsim.cli import main
from hwsim.energy.account import account
from hwsim.energy.model import EnergyModel
from hwsim.paths import data_dir
from hwsim.schedule.result_files import layer_rows
from hwsim.schedule.simulate import simulate

TINY = str(data_dir("workloads") / "tiny.yaml")
DEVICE = "ethos_u55_128_like"


@pytest.fixture(scope="module")
def result():
    """tiny.yaml simulated on an Ethos-U55 (the run the CLI repeats)."""
    return simulate(TINY, DEVICE)


def _csv_rows(path: Path) -> list[dict]:
    """CSV rows with numbers parsed back (empty cells, the null operator index, become None)."""

    def parse(value: str):
        if value == "":
            return None
        try:
            return int(value)
        except ValueError:
            try:
                return float(value)
            except ValueError:
                return value

    with path.open(newline="") as fh:
        return [{k: parse(v) for k, v in row.items()} for row in csv.DictReader(fh)]


def test_simulate_json_has_the_totals_and_every_layer(tmp_path, result, capsys):
    """The JSON's latency, cycles, MACs and layers are the SimResult's; per-level bytes sum to its totals."""
    assert main(["simulate", TINY, "--device", DEVICE, "--output", str(tmp_path / "r.json")]) == 0
    assert f"wrote {tmp_path / 'r.json'}" in capsys.readouterr().out
    data = json.loads((tmp_path / "r.json").read_text())
    assert (data["model"], data["device"], data["cycles"], data["macs"]) == (
        TINY,
        DEVICE,
        result.cycles,
        result.macs,
    )
    assert data["latency_ms"] == pytest.approx(result.time_ms)
    layers = data["layers"]
    assert [(r["name"], r["kind"], r["cycles"], r["macs"]) for r in layers] == [
        (x.op, x.kind, x.cycles, x.macs) for x in result.layers
    ]
    # YAML layers have no index
    assert all(r["operator_index"] is None and r["unit"] == "npu" for r in layers)
    for (level, action), total in result.totals.bytes_moved().items():
        assert sum(r[f"{level}_{action}_bytes"] for r in layers) == total
    assert {k for k in layers[0] if k.endswith("_bytes")} == {
        f"{m.name}_{a}_bytes" for m in result.device.levels for a in ("read", "write")
    }


def test_simulate_csv_rows_are_the_json_layers(tmp_path):
    """`--output r.csv` writes one row per layer with exactly the fields and values of the JSON's layers."""
    assert main(["simulate", TINY, "--device", DEVICE, "--output", str(tmp_path / "r.csv")]) == 0
    assert main(["simulate", TINY, "--device", DEVICE, "--output", str(tmp_path / "r.json")]) == 0
    assert _csv_rows(tmp_path / "r.csv") == json.loads((tmp_path / "r.json").read_text())["layers"]


def test_energy_outputs_add_energy_per_layer_and_totals(tmp_path, result):
    """`hwsim energy --output` adds energy_pj per layer (summing to the total) and the run's energy
    figures."""
    assert main(["energy", TINY, "--device", DEVICE, "--output", str(tmp_path / "e.json")]) == 0
    assert main(["energy", TINY, "--device", DEVICE, "--output", str(tmp_path / "e.csv")]) == 0
    data = json.loads((tmp_path / "e.json").read_text())
    breakdown = account(result, EnergyModel.for_device(result.device))
    assert data["energy_pj"] == pytest.approx(breakdown.total_pj)
    assert sum(r["energy_pj"] for r in data["layers"]) == pytest.approx(breakdown.total_pj)
    assert data["tops_per_w"] == pytest.approx(breakdown.tops_per_w) and data["cycles"] == result.cycles
    assert {"leakage_pj", "average_power_mw", "peak_power_mw", "edp_pj_s", "technology"} <= set(data)
    assert _csv_rows(tmp_path / "e.csv") == data["layers"]


def test_layers_carry_the_operator_index_and_the_cpu_unit(result):
    """A layer named "7:CONV_2D" reports operator index 7; a layer a performance model left to the CPU says
    cpu."""
    layers = [replace(result.layers[0], op="7:CONV_2D", unit="cpu"), *result.layers[1:]]
    rows = layer_rows(replace(result, layers=layers))
    assert (rows[0]["operator_index"], rows[0]["name"], rows[0]["unit"]) == (7, "7:CONV_2D", "cpu")
    assert rows[1]["operator_index"] is None and rows[1]["unit"] == "npu"


@pytest.mark.parametrize("command", ["simulate", "energy"])
@pytest.mark.parametrize(
    "output,message",
    [
        ("missing/r.json", "folder '{tmp}/missing' does not exist"),
        ("r.txt", "expected a .json or .csv file (got '.txt')"),
        pytest.param(
            "/proc/r.json",
            "cannot write there",
            marks=pytest.mark.skipif(not Path("/proc/self").exists(), reason="needs Linux's /proc"),
        ),
    ],
)
def test_output_path_is_checked_before_any_work(tmp_path, capsys, command, output, message):
    """A bad --output is a one-line error, exit 2, before the model is even read (here it does not exist)."""
    path = output if output.startswith("/") else str(tmp_path / output)
    assert main([command, str(tmp_path / "absent.tflite"), "--device", DEVICE, "--output", path]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"hwsim: error: --output {path}: ") and message.format(tmp=tmp_path) in err
    assert len(err.strip().splitlines()) == 1 and not Path(path).exists()
