"""Language-model decode on the Hexagon-like device against Qualcomm's published on-device figures, and how
long hwsim takes to simulate a 1B-class model.

Run from the repository root with hwsim's venv active::

    python benchmarks/bench_llm.py          # the table (README, "Against published figures")
    python benchmarks/bench_llm.py fit      # re-fit SUSTAINED_FRACTION on the one FIT figure

Published: Qualcomm AI Hub's ``perf.yaml`` of its w4a16 exports (context 4096, measured on the devices
named), GitHub ``quic/ai-hub-models`` at commit 33c3d03 (v0.46.0, 2026-02-11). The device is
``hexagon_like`` with its off-chip read bandwidth set to what its NPU sustains of the phone's LPDDR5X peak
(``PEAK_GBPS`` x ``SUSTAINED_FRACTION``), the recipe ``experiments/recipes/qnn_w4a16.yaml``, the KV cache
read at its full 4096 positions (a fixed-size cache, as the exported token generator takes it).

``SUSTAINED_FRACTION`` is the one fitted constant: the share of the LPDDR peak the NPU's reads reach while
decoding (DRAM refresh, bank and page conflicts, and the SoC fabric between the NPU and the memory
controller). No measurement of it for a Hexagon NPU was found, so it is fitted on Llama 3.2 1B on the
Snapdragon 8 Elite alone and checked on the other rows. Nothing here runs in the test suite;
``tests/llm/test_published.py`` pins the same comparison.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hwsim.devices.model import load_device, override  # noqa: E402
from hwsim.llm.config import load_lm_config  # noqa: E402
from hwsim.llm.cost import LMCost, lm_cost  # noqa: E402
from hwsim.llm.graphs import Precision, decode_graph, prefill_graph  # noqa: E402
from hwsim.quant.recipe import load_recipe  # noqa: E402
from hwsim.schedule.simulate import simulate  # noqa: E402

AIHUB = "github.com/quic/ai-hub-models@33c3d03 qai_hub_models/models/{}/perf.yaml"
# Peak LPDDR5X bandwidth of each SoC: data rate x bus width, as published.
PEAK_GBPS = {
    "Snapdragon 8 Gen 3": 76.8,  # LPDDR5X up to 4800 MHz (9600 MT/s) x 8 B (droidholic.com, 2023-10-25,
    # "Snapdragon 8 Gen 3 goes official")
    "Snapdragon 8 Elite": 84.8,  # LPDDR5X-5300 (10600 MT/s), dual channel = 64-bit (hi-tech.ua, 2024-10-23)
    "Snapdragon 8 Elite Gen 5": 84.8,  # LPDDR5X at up to 5,300 MHz (lowyat.net, 2025-09, 8 Elite Gen 5)
    "Snapdragon X Elite": 136.5,  # LPDDR5X 8533 MT/s, 8 x 16-bit channels, "136 GB/s" (mspoweruser.com,
    # 2023-10, Qualcomm's X Elite spec sheet)
}
FIT = ("llama_3_2_1b", "Snapdragon 8 Elite")
# fitted on FIT alone (``bench_llm.py fit``: 0.544): the NPU streams 46 of 84.8 GB/s
SUSTAINED_FRACTION = 0.54
# (model, SoC, the AI Hub device it ran on, AI Hub model folder, decode tokens/s, TTFT for 128 tokens in ms)
PUBLISHED = [
    (
        "llama_3_2_1b",
        "Snapdragon 8 Elite",
        "Snapdragon 8 Elite QRD",
        "llama_v3_2_1b_instruct",
        53.6399,
        37.0651,
    ),
    (
        "llama_3_2_1b",
        "Snapdragon 8 Elite Gen 5",
        "Snapdragon 8 Elite Gen 5 QRD",
        "llama_v3_2_1b_instruct",
        64.04112,
        30.937,
    ),
    (
        "llama_3_2_3b",
        "Snapdragon 8 Elite",
        "Snapdragon 8 Elite QRD",
        "llama_v3_2_3b_instruct",
        23.4718,
        88.195,
    ),
    (
        "llama_3_2_3b",
        "Snapdragon 8 Elite Gen 5",
        "Snapdragon 8 Elite Gen 5 QRD",
        "llama_v3_2_3b_instruct",
        29.48402,
        58.016,
    ),
    ("phi_3_5_mini", "Snapdragon 8 Gen 3", "Samsung Galaxy S24", "phi_3_5_mini_instruct", 13.01, 146.9056),
    (
        "phi_3_5_mini",
        "Snapdragon 8 Elite",
        "Snapdragon 8 Elite QRD",
        "phi_3_5_mini_instruct",
        14.73,
        119.5948,
    ),
    (
        "llama_3_2_3b",
        "Snapdragon X Elite",
        "Snapdragon X Elite CRD",
        "llama_v3_2_3b_instruct",
        18.4176,
        125.936,
    ),
    ("phi_3_5_mini", "Snapdragon X Elite", "Snapdragon X Elite CRD", "phi_3_5_mini_instruct", 6.2, 185.833),
]


def predict(model: str, soc: str, fraction: float = SUSTAINED_FRACTION) -> LMCost:
    """hwsim's cost of ``model`` under the AI Hub recipe on the Hexagon-like device reading ``fraction`` of
    the
    SoC's peak LPDDR bandwidth (its ``bound_tokens_per_s`` is at that sustained bandwidth)."""
    device = load_device("hexagon_like")
    per_cycle = PEAK_GBPS[soc] * 1e9 * fraction / (device.clock_mhz * 1e6)
    device = override(device, {"memories.ddr.read_bandwidth_bytes_per_cycle": per_cycle})
    prec = Precision.of_recipe(load_recipe(ROOT / "experiments" / "recipes" / "qnn_w4a16.yaml"))
    return lm_cost(load_lm_config(model), device, prec, prefill_tokens=128, kv_len=4096)


def peak_bound(cost: LMCost, soc: str) -> float:
    """The physical bound: tokens/s if every byte a token reads came at the LPDDR peak."""
    return PEAK_GBPS[soc] * 1e9 / (cost.weight_bytes_per_token + cost.kv_bytes_per_token)


def fit() -> float:
    """The sustained fraction at which the FIT row's simulated decode rate equals the published one."""
    model, soc = FIT
    target = next(row[4] for row in PUBLISHED if row[:2] == FIT)
    lo, hi = 0.2, 1.0
    for _ in range(12):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if predict(model, soc, mid).decode_tokens_per_s < target else (lo, mid)
    return (lo + hi) / 2


def main() -> None:
    if sys.argv[1:] == ["fit"]:
        print(f"sustained fraction fitted on {FIT}: {fit():.4f}")
        return
    print(f"published: {AIHUB.format('<model>')}; sustained fraction {SUSTAINED_FRACTION} (fitted on {FIT})")
    print(
        f"{'model':14s} {'SoC':26s} {'peak GB/s':>9s} {'pub tok/s':>9s} {'hwsim':>7s} {'peak bound':>10s} "
        f"{'error':>7s} {'pub TTFT':>8s} {'hwsim TTFT':>10s}"
    )
    for model, soc, _, _, tps, ttft in PUBLISHED:
        c = predict(model, soc)
        err = c.decode_tokens_per_s / tps - 1
        print(
            f"{model:14s} {soc:26s} {PEAK_GBPS[soc]:9.1f} {tps:9.2f} {c.decode_tokens_per_s:7.2f} "
            f"{peak_bound(c, soc):10.1f} {err:+7.1%} {ttft:8.1f} {c.ttft_ms:10.1f}"
        )
    spec = load_lm_config("llama_3_2_1b")
    prec = Precision(4, 32, 16, 8)
    graphs = (prefill_graph(spec, 128, prec), decode_graph(spec, 1024, prec))
    device = load_device("hexagon_like")
    for g in graphs:
        simulate(g, device, record_trace=False)  # warm the mapper's caches and imports once
    t0, w0 = time.process_time(), time.perf_counter()
    for g in graphs:
        simulate(g, device, record_trace=False)
    cpu, wall = time.process_time() - t0, time.perf_counter() - w0
    print(
        f"simulating Llama 3.2 1B prefill (128 tokens) + decode (KV 1024): {cpu:.2f} s CPU, {wall:.2f} s "
        f"wall ({sum(len(g.ops) for g in graphs)} ops)"
    )


if __name__ == "__main__":
    main()
