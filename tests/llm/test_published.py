"""Decode rates against Qualcomm AI Hub's published on-device figures (benchmarks/bench_llm.py has the table).

The Hexagon-like device reads a sustained fraction of each SoC's LPDDR5X peak, fitted on one row (Llama 3.2
1B, Snapdragon 8 Elite); the other rows check it. The simulated rates are pinned, so a change to the mapper,
the graphs or the recipe that moves them shows here.
"""

from functools import lru_cache

import pytest

from benchmarks.bench_llm import FIT, PEAK_GBPS, PUBLISHED, predict

# (model, SoC) -> simulated decode tokens/s at SUSTAINED_FRACTION (python benchmarks/bench_llm.py)
SIMULATED = {
    ("llama_3_2_1b", "Snapdragon 8 Elite"): 53.22,
    ("llama_3_2_1b", "Snapdragon 8 Elite Gen 5"): 53.22,
    ("llama_3_2_3b", "Snapdragon 8 Elite"): 21.61,
    ("llama_3_2_3b", "Snapdragon 8 Elite Gen 5"): 21.61,
    ("phi_3_5_mini", "Snapdragon 8 Gen 3"): 14.53,
    ("phi_3_5_mini", "Snapdragon 8 Elite"): 16.01,
    ("llama_3_2_3b", "Snapdragon X Elite"): 33.96,
    ("phi_3_5_mini", "Snapdragon X Elite"): 25.13,
}
# Rows the model misses by more than 25 %: the X Elite's NPU reaches a smaller share of its wider bus
MISSES = {
    ("llama_3_2_3b", "Snapdragon X Elite"),
    ("phi_3_5_mini", "Snapdragon X Elite"),
    ("llama_3_2_3b", "Snapdragon 8 Elite Gen 5"),
}


@lru_cache(maxsize=None)
def _cost(model: str, peak: float):
    soc = next(s for s, p in PEAK_GBPS.items() if p == peak)  # SoCs of one peak simulate alike
    return predict(model, soc)


@pytest.mark.parametrize("model, soc, device, folder, published_tps, published_ttft", PUBLISHED)
def test_decode_against_published(model, soc, device, folder, published_tps, published_ttft):
    """The simulated rate is pinned, bandwidth-bound (90-100 % of the sustained bound, under half the peak
    one), within 25 % of the published one except for the misses the README explains; the fitted row
    within 1 %."""
    cost = _cost(model, PEAK_GBPS[soc])
    assert cost.decode_tokens_per_s == pytest.approx(SIMULATED[model, soc], abs=0.01)
    assert 0.9 * cost.bound_tokens_per_s <= cost.decode_tokens_per_s <= cost.bound_tokens_per_s
    peak_bound = PEAK_GBPS[soc] * 1e9 / (cost.weight_bytes_per_token + cost.kv_bytes_per_token)
    assert cost.decode_tokens_per_s < 0.55 * peak_bound
    error = cost.decode_tokens_per_s / published_tps - 1
    if (model, soc) == FIT:
        assert abs(error) < 0.01
    elif (model, soc) in MISSES:
        assert abs(error) > 0.25
    else:
        assert abs(error) <= 0.25
