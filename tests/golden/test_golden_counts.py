"""Golden counts: per shipped device and workload, each layer's cycles, action counts and energy, pinned
exactly.

One JSON file per device under ``tests/golden/counts/`` (so one device's figures can be regenerated alone)
holds, for a conv net (ResNet-18, SCALE-Sim topology), a depthwise net (MobileNetV2-224) and a transformer
block, every layer's simulated cycles, stall cycles, ``(component, action, bits)`` counts and energy in pJ
(default energy table at the device's technology). After an intended change, regenerate and review the diff::

    pytest tests/golden --update-golden                 # every device
    pytest tests/golden --update-golden -k ethos_u55    # only the devices whose name matches
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hwsim.devices.model import device_files, load_device
from hwsim.energy.account import account
from hwsim.energy.model import EnergyModel
from hwsim.paths import data_dir
from hwsim.schedule.simulate import simulate

COUNTS_DIR = Path(__file__).parent / "counts"
WORKLOADS = {
    "conv_resnet18": "scalesim_resnet18.csv",
    "depthwise_mobilenet_v2": "mobilenet_v2_224.yaml",
    "transformer_block": "transformer_block.yaml",
}


def figures(device_name: str) -> dict:
    """Every pinned figure of one device: per workload, per layer cycles, stalls, counts and pJ."""
    device = load_device(device_name)
    out = {"device": device_name, "workloads": {}}
    for key, file in WORKLOADS.items():
        result = simulate(data_dir("workloads") / file, device)
        energy = account(result, EnergyModel.for_device(device)).by_layer()
        out["workloads"][key] = {
            "file": f"workloads/{file}",
            "cycles": result.cycles,
            "layers": [
                {
                    "op": layer.op,
                    "cycles": layer.cycles,
                    "stall_cycles": layer.stall_cycles,
                    "counts": {f"{c} {a} {b}": n for (c, a, b), n in layer.counts},
                    "energy_pj": energy.get(layer.op, 0.0),
                }
                for layer in result.layers
            ],
        }
    return out


@pytest.mark.parametrize("name", [p.stem for p in device_files()])
def test_golden_counts(name, update_golden):
    """Cycles, stall cycles, action counts and pJ of every layer equal the device's golden file exactly."""
    path = COUNTS_DIR / f"{name}.json"
    got = figures(name)
    if update_golden:
        path.write_text(json.dumps(got, indent=1) + "\n", encoding="utf-8")
    expected = json.loads(path.read_text(encoding="utf-8"))
    for key, want in expected["workloads"].items():
        have = got["workloads"][key]
        assert [layer["op"] for layer in have["layers"]] == [layer["op"] for layer in want["layers"]], key
        for mine, gold in zip(have["layers"], want["layers"], strict=True):
            assert mine == gold, f"{name} {key} layer {gold['op']}"
        assert have["cycles"] == want["cycles"], key
    assert set(got["workloads"]) == set(expected["workloads"])


def test_every_device_has_a_golden_file():
    """Each shipped device has its golden file and no golden file is left for a device that is gone."""
    assert sorted(p.stem for p in COUNTS_DIR.glob("*.json")) == sorted(p.stem for p in device_files())
