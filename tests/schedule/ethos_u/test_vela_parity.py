"""hwsim's vela-5.2 model against Vela 5.2.0's own estimates, per network and per layer, without Vela.

``tests/data/ethos_u/vela_5.2.0.json`` holds what Vela reported for the test models on six targets
(``python benchmarks/pin_vela.py`` regenerates it). Each model is simulated on the shipped device of the
accelerator, switched to the target's system config and memory mode, and compared: the network's
cycles, every NPU layer's cycles (matched by TFLite operator index) and the number of CPU ops.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hwsim.devices.model import load_device, override
from hwsim.schedule.simulate import simulate

DATA = Path(__file__).parents[2] / "data" / "ethos_u"
PINNED = json.loads((DATA / "vela_5.2.0.json").read_text())
CASES = [(model, target) for model, targets in sorted(PINNED.items()) for target in sorted(targets)]


def _simulate(model: str, target: str):
    acc, system, mode = target.split(".")
    device = override(
        load_device(acc.replace("-", "_") + "_like"),
        {"ethos_u.system_config": system, "ethos_u.memory_mode": mode},
    )
    return simulate(DATA / f"{model}.tflite", device, record_trace=False)


@pytest.mark.parametrize(
    "model,target", CASES, ids=[f"{m}-{t.split('.')[0]}-{t.split('.')[2]}" for m, t in CASES]
)
def test_network_and_layers_match_vela(model, target):
    """Network cycles within 1% of Vela's, every NPU layer within 25% and 95% of them within 2%."""
    vela = PINNED[model][target]
    result = _simulate(model, target)
    assert result.cycles == pytest.approx(vela["cycles"], rel=0.01)
    ours = {int(r.op.split(":")[0]): r.cycles for r in result.layers}
    errors = [abs(ours.get(int(k), 0) / v - 1) for k, v in vela["layers"].items() if v]
    assert max(errors) <= 0.25
    assert sum(e <= 0.02 for e in errors) >= 0.95 * len(errors)
    assert sum(r.unit == "cpu" for r in result.layers) == vela["cpu_ops"]


def test_a_layer_is_exactly_vela():
    """The first convolution of the keyword-spotting net takes exactly Vela's cycles on the U55-128."""
    target = "ethos-u55-128.Ethos_U55_High_End_Embedded.Shared_Sram"
    result = _simulate("kws_ds_cnn", target)
    assert result.layers[0].cycles == PINNED["kws_ds_cnn"][target]["layers"]["0"]
