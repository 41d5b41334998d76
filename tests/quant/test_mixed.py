"""Mixed precision: sensitivity ranking and bit allocation under a budget."""

import numpy as np
import pytest

from hwsim.errors import ConfigError
from hwsim.quant.mixed import allocate_bits, layer_sensitivity, mac_layers
from hwsim.quant.recipe import QuantRecipe
from tests.quant.graphs import mlp


@pytest.fixture(scope="module")
def case():
    """A small MLP, its calibration data, and its sensitivity table."""
    g = mlp(seed=3)
    x = np.random.default_rng(4).normal(size=(128, 16)).astype(np.float32)
    recipe = QuantRecipe()
    return g, x, recipe, layer_sensitivity(g, recipe, x, bits=(2, 4, 8))


def test_sensitivity_has_every_layer_and_width(case):
    """One row per (layer, width); fewer bits never give a higher output SQNR for the same layer."""
    g, _, _, sens = case
    assert {(s.layer, s.bits) for s in sens} == {(n, b) for n, _, _ in mac_layers(g) for b in (2, 4, 8)}
    for name, _, _ in mac_layers(g):
        by_bits = {s.bits: s.sqnr_db for s in sens if s.layer == name}
        assert by_bits[2] <= by_bits[4] <= by_bits[8] + 1e-9


@pytest.mark.parametrize("kind", ["size_bytes", "bitops"])
def test_allocation_meets_the_budget_as_a_recipe(case, kind):
    """The allocation's cost is within the budget and its recipe carries the widths as overrides."""
    g, x, recipe, sens = case
    layers = mac_layers(g)
    full = sum(n for _, n, _ in layers) if kind == "size_bytes" else sum(m * 64 for _, _, m in layers)
    budget = full * (5 / 8) if kind == "size_bytes" else full * 5 / 8
    alloc = allocate_bits(g, recipe, x, budget=budget, budget_kind=kind, bits=(2, 4, 8), sensitivity=sens)
    assert alloc.cost <= budget
    for name, b in alloc.bits.items():
        assert alloc.recipe.layer_specs(name)[0].bits == b


def test_impossible_budget_is_an_error(case):
    """A budget below everything-at-the-narrowest says so."""
    g, x, recipe, sens = case
    with pytest.raises(ConfigError, match="below the cost"):
        allocate_bits(g, recipe, x, budget=1.0, bits=(2, 4, 8), sensitivity=sens)
