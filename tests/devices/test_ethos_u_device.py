"""Ethos-U devices: clock and memories follow from the Vela system config and memory mode the device names,
and the command line and experiment sweeps switch them as Vela's own options do."""

from __future__ import annotations

import pytest
import yaml

from hwsim.cli import main
from hwsim.devices.model import load_device, override
from hwsim.errors import ConfigError
from hwsim.paths import data_dir
from hwsim.schedule.simulate import simulate

TINY = str(data_dir("workloads") / "tiny.yaml")


def _levels(device) -> dict:
    return {m.name: m for m in device.levels}


def test_u55_shared_sram_reads_weights_from_flash_and_keeps_feature_maps_in_sram():
    """vela.ini Ethos_U55_High_End_Embedded: 500 MHz, SRAM on AXI0 (scale 1.0, latency 32), flash on AXI1
    (scale 0.125, latency 64); Shared_Sram puts the read-only area on AXI1, the arena on AXI0."""
    device = load_device("ethos_u55_128_like")
    levels = _levels(device)
    assert device.spec.clock_mhz == 500
    assert list(levels) == ["flash", "sram", "shram", "rf"]
    assert (levels["flash"].homes, levels["sram"].homes) == (["weights"], ["activations"])
    assert (levels["flash"].read_bandwidth_bytes_per_cycle, levels["flash"].read_latency_cycles) == (1.0, 64)
    assert (levels["sram"].read_bandwidth_bytes_per_cycle, levels["sram"].read_latency_cycles) == (8.0, 32)
    assert levels["shram"].size_bytes == 24 * 1024  # ethos-u55-128: 24 banks of 1 KiB


def test_memory_mode_and_system_config_rederive_the_memories():
    """Sram_Only homes everything in SRAM; the U65 High_End system runs DRAM at 3.75 B/cycle, not 12."""
    sram_only = _levels(override(load_device("ethos_u55_128_like"), {"ethos_u.memory_mode": "Sram_Only"}))
    assert sram_only["sram"].homes == ["weights", "activations"] and sram_only["flash"].homes == []
    client = load_device("ethos_u65_256_like")
    high_end = override(
        client, {"ethos_u.system_config": "Ethos_U65_High_End", "ethos_u.arena_cache_size_bytes": 1 << 20}
    )
    assert _levels(client)["dram"].read_bandwidth_bytes_per_cycle == 12.0
    assert _levels(high_end)["dram"].read_bandwidth_bytes_per_cycle == 3.75
    assert _levels(high_end)["sram"].size_bytes == 1 << 20


def test_an_ethos_u_device_file_may_not_also_list_memories(tmp_path):
    """The memories follow from the system config: listing them too would be two truths."""
    spec = yaml.safe_load((data_dir("accelerators") / "ethos_u55_128_like.yaml").read_text())
    spec["clock_mhz"] = 400
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    with pytest.raises(ConfigError, match=r"mine\.yaml.*clock_mhz"):
        load_device(path)


def test_unknown_system_config_is_a_located_error_with_a_suggestion():
    with pytest.raises(ConfigError, match=r"ethos_u\.system_config.*Ethos_U55_High_End_Embedded"):
        override(load_device("ethos_u55_128_like"), {"ethos_u.system_config": "Ethos_U55_High_End_Embeded"})


def test_cli_options_switch_the_system_like_vela(capsys, tmp_path):
    """--memory-mode Sram_Only on the CLI equals the overridden device, and differs from Shared_Sram."""
    out = tmp_path / "r.json"
    assert (
        main(
            [
                "simulate",
                TINY,
                "--device",
                "ethos_u55_128_like",
                "--memory-mode",
                "Sram_Only",
                "--output",
                str(out),
            ]
        )
        == 0
    )
    import json

    cycles = json.loads(out.read_text())["cycles"]
    device = override(load_device("ethos_u55_128_like"), {"ethos_u.memory_mode": "Sram_Only"})
    assert cycles == simulate(TINY, device, record_trace=False).cycles


def test_ethos_u_options_on_another_device_are_a_one_line_error(capsys):
    assert main(["simulate", TINY, "--device", "hexagon_like", "--system-config", "Ethos_U65_High_End"]) == 2
    assert "--system-config: device hexagon_like is not an Ethos-U device" in capsys.readouterr().err


def test_an_experiment_sweeps_the_memory_mode(tmp_path):
    """``device.ethos_u.memory_mode`` is a sweep axis: each point's latency is the overridden device's."""
    import os

    from hwsim.experiment import run_experiment
    from hwsim.experiment.results import load_rows

    path = tmp_path / "modes.yaml"
    path.write_text("""\
schema_version: 1
name: modes
seed: 1
workloads: [digits_mlp]
devices: [ethos_u55_128_like]
recipes: [int8_w_per_channel]
evaluation: {calibration_samples: 16, test_samples: 16}
sweep:
  grid:
    device.ethos_u.memory_mode: [Shared_Sram, Sram_Only]
metrics: [latency]
plots: []
""")
    with open(os.devnull, "w") as sink:
        rows = load_rows(run_experiment(path, results=tmp_path / "out", out=sink) / "rows.csv")
    latency = {r["device.ethos_u.memory_mode"]: r["latency_ms"] for r in rows}
    assert set(latency) == {"Shared_Sram", "Sram_Only"} and all(r["status"] == "ok" for r in rows)
    assert latency["Shared_Sram"] != latency["Sram_Only"]
