"""Mixed precision: per-layer sensitivity, and a bit allocation under a size or energy budget.

:func:`layer_sensitivity` quantizes one layer's weights at a time to each candidate width (every other
layer as the recipe says) and measures the SQNR of the model's output against the float model on
calibration data (fake-quant). :func:`allocate_bits` starts every layer at the widest candidate and
greedily narrows the layer whose next step down costs the least output noise per saved unit of the
budget (noise powers of single-layer errors add, to first order), until the budget holds; it returns
the allocation as per-layer overrides of the recipe, so the result is itself a YAML-expressible recipe.

Budgets: ``size_bytes`` (weight storage) or ``bitops`` (MACs x weight bits x activation bits, the usual
energy proxy of mixed-precision search, e.g. HAQ and EdMIPS; hwsim's energy models will replace it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwsim.errors import ConfigError
from hwsim.quant.convert import QuantizedModel, load_float_graph, quantize_model
from hwsim.quant.ptq import MAC_KINDS, prepare
from hwsim.quant.recipe import LayerOverride, QuantRecipe
from hwsim.workload.graph import Graph


@dataclass(frozen=True)
class Sensitivity:
    """Output SQNR (dB) when only ``layer``'s weights use ``bits``."""

    layer: str
    bits: int
    sqnr_db: float


@dataclass(frozen=True)
class Allocation:
    """A per-layer bit allocation and what it costs."""

    bits: dict[str, int]
    cost: float
    budget: float
    budget_kind: str
    predicted_noise: float
    recipe: QuantRecipe


def _output_sqnr(qm: QuantizedModel, x: np.ndarray, reference: np.ndarray) -> float:
    from hwsim.accuracy.evaluate import sqnr_db

    return sqnr_db(reference, qm.run_fake_quant(x)[qm.graph.outputs[0]])


def mac_layers(graph: Graph) -> list[tuple[str, int, int]]:
    """(op name, weight count, MACs per sample) of each MAC op of the prepared graph."""
    g = prepare(graph)
    out = []
    for op in g.ops:
        if op.kind not in MAC_KINDS:
            continue
        w = g.tensor(op.inputs[1]).data
        y = g.tensor(op.outputs[0]).shape
        positions = int(np.prod([d for d in y[2:] if d])) if op.kind != "fully_connected" else 1
        per_out = w.size // (w.shape[-1] if op.kind == "depthwise_conv2d" else w.shape[0])
        channels = w.shape[-1] if op.kind == "depthwise_conv2d" else w.shape[0]
        out.append((op.name, int(w.size), int(positions * channels * per_out)))
    return out


def layer_sensitivity(model, recipe: QuantRecipe, calibration: np.ndarray,
                      bits: tuple[int, ...] = (2, 3, 4, 6, 8)) -> list[Sensitivity]:
    """Output SQNR with one layer at a time at each width in ``bits``, sorted most sensitive first."""
    graph = load_float_graph(model)
    base = quantize_model(graph, recipe, calibration)
    reference = base.run_float(calibration)[base.graph.outputs[0]]
    rows = []
    for name, _, _ in mac_layers(graph):
        for b in bits:
            r = recipe.with_overrides([LayerOverride(layer=name, weights={"bits": b})])
            rows.append(Sensitivity(name, b, _output_sqnr(quantize_model(graph, r, calibration), calibration,
                                                          reference)))
    lowest = min(bits)
    worst = {s.layer: s.sqnr_db for s in rows if s.bits == lowest}
    return sorted(rows, key=lambda s: (worst[s.layer], s.layer, s.bits))


def allocate_bits(model, recipe: QuantRecipe, calibration: np.ndarray, *, budget: float,
                  budget_kind: str = "size_bytes", bits: tuple[int, ...] = (2, 3, 4, 6, 8),
                  sensitivity: list[Sensitivity] | None = None) -> Allocation:
    """Greedy per-layer weight widths whose cost is within ``budget`` (see the module docstring)."""
    if budget_kind not in ("size_bytes", "bitops"):
        raise ConfigError(f"budget_kind: expected size_bytes or bitops (got {budget_kind!r})")
    graph = load_float_graph(model)
    sens = sensitivity or layer_sensitivity(graph, recipe, calibration, bits)
    noise = {(s.layer, s.bits): 10 ** (-s.sqnr_db / 10) if np.isfinite(s.sqnr_db) else 0.0 for s in sens}
    layers = mac_layers(graph)
    choices = sorted(bits)
    act_bits = {name: recipe.layer_specs(name)[1].bits for name, _, _ in layers}

    def cost(alloc: dict[str, int]) -> float:
        if budget_kind == "size_bytes":
            return sum(n_w * alloc[name] for name, n_w, _ in layers) / 8.0
        return float(sum(macs * alloc[name] * act_bits[name] for name, _, macs in layers))

    alloc = {name: choices[-1] for name, _, _ in layers}
    while cost(alloc) > budget:
        best, best_ratio = None, np.inf
        for name, _, _ in layers:
            i = choices.index(alloc[name])
            if i == 0:
                continue
            trial = dict(alloc, **{name: choices[i - 1]})
            saved = cost(alloc) - cost(trial)
            extra = noise[(name, choices[i - 1])] - noise[(name, alloc[name])]
            ratio = max(extra, 0.0) / saved if saved > 0 else np.inf
            if ratio < best_ratio:
                best, best_ratio = trial, ratio
        if best is None:
            raise ConfigError(f"budget: {budget} {budget_kind} is below the cost with every layer at "
                              f"{choices[0]} bits ({cost(alloc)})")
        alloc = best
    overrides = [LayerOverride(layer=name, weights={"bits": b}) for name, b in alloc.items()
                 if b != recipe.layer_specs(name)[0].bits]
    predicted = sum(noise[(name, b)] for name, b in alloc.items())
    return Allocation(alloc, cost(alloc), budget, budget_kind, predicted,
                      recipe.with_overrides(overrides, name=f"{recipe.name}+mixed"))
