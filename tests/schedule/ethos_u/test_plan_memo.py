"""The Ethos-U families memoise estimates and block configs across plans (hwsim.schedule.ethos_u.family):
a plan made after other plans in the process must equal one made with every memo cleared."""

from __future__ import annotations

from pathlib import Path

import pytest

from hwsim.devices.model import load_device, override
from hwsim.importers import load_model
from hwsim.schedule import models
from hwsim.schedule.ethos_u.blocks import find_block_config
from hwsim.schedule.ethos_u.family import family

ROOT = Path(__file__).resolve().parents[3]


def _fresh_plan(graph, device):
    family.cache_clear()
    find_block_config.cache_clear()
    return models.plan(graph, device)


@pytest.mark.parametrize("name", ["ethos_u65_256_like", "ethos_u85_256_like"])
def test_memoised_plans_equal_fresh_ones(name):
    """Planning one network under three memory modes in turn (they share the accelerator's memos, so keys
    that missed a memory's speed would leak one mode's estimates into the next) gives the fresh plans."""
    graph = load_model(ROOT / "workloads" / "transformer_block.yaml")
    base = load_device(name)
    devices = [
        override(base, {"ethos_u.memory_mode": mode})
        for mode in ("Shared_Sram", "Dedicated_Sram", "Sram_Only")
    ]
    fresh = [_fresh_plan(graph, d) for d in devices]
    family.cache_clear()
    warm = [models.plan(graph, d) for d in devices] + [models.plan(graph, d) for d in devices]
    assert warm == fresh + fresh
    assert fresh[0] != fresh[1]  # the modes do time differently


def test_a_network_with_other_weights_is_not_planned_from_the_memos():
    """The family's encodings and per-op memos key on the weights' digest: the same network with one layer's
    weights zeroed (the same shapes, memories and op groups), planned after the original, gets its fresh
    plan."""
    import numpy as np

    path = ROOT / "tests" / "data" / "ethos_u" / "kws_ds_cnn.tflite"
    device = load_device("ethos_u85_256_like")
    original, other = load_model(path), load_model(path)
    weights = max((t for t in other.tensors.values() if t.is_constant), key=lambda t: t.data.size)
    weights.data = np.zeros_like(weights.data)
    fresh = _fresh_plan(other, device)
    family.cache_clear()
    planned = models.plan(original, device)
    assert models.plan(other, device) == fresh
    assert fresh != planned  # the zeroed weights do plan differently
