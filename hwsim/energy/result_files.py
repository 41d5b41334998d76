"""``hwsim energy --output``: the simulation's result file (:mod:`hwsim.schedule.result_files`) with energy
added.

Each layer gains ``energy_pj`` (its priced actions plus leakage over its time, as the ``by layer`` table); the
totals gain the technology, ``energy_pj``, ``leakage_pj``, ``average_power_mw``, ``peak_power_mw``,
``edp_pj_s`` and ``tops_per_w``.
"""

from __future__ import annotations

from hwsim.energy.account import EnergyBreakdown
from hwsim.schedule.result_files import layer_rows, summary
from hwsim.schedule.simulate import SimResult


def energy_results(result: SimResult, breakdown: EnergyBreakdown) -> tuple[dict, list[dict]]:
    """(totals, per-layer rows) of ``result`` priced as ``breakdown``, for
    :func:`~hwsim.schedule.result_files.write_results`."""
    per_layer = breakdown.by_layer()
    rows = [
        {**row, "energy_pj": per_layer.get(layer.op, 0.0)}
        for row, layer in zip(layer_rows(result), result.layers)
    ]
    totals = {
        **summary(result),
        "technology": breakdown.technology,
        "energy_pj": breakdown.total_pj,
        "leakage_pj": breakdown.leakage_pj,
        "average_power_mw": breakdown.average_power_mw,
        "peak_power_mw": breakdown.power.peak_mw if breakdown.power else None,
        "edp_pj_s": breakdown.edp_pj_s,
        "tops_per_w": breakdown.tops_per_w,
    }
    return totals, rows
