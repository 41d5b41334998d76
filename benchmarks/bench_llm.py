"""Language-model decode on the Hexagon-like device against Qualcomm's published on-device figures, and how
long hwsim takes to simulate a 1B-class model.

Run from the repository root with hwsim's venv active::

    python benchmarks/bench_llm.py

Published: Qualcomm AI Hub's ``perf.yaml`` of its Llama 3.2 exports (w4a16, context 4096, measured with
Genie on the phones named), GitHub ``quic/ai-hub-models`` at commit 33c3d03. The device is
``hexagon_like`` with its off-chip read bandwidth set to the phone's LPDDR5X peak (Snapdragon 8 Elite:
LPDDR5X-5300, 64-bit, 84.8 GB/s), the recipe ``experiments/recipes/qnn_w4a16.yaml``, the KV cache read at
its full 4096 positions (a fixed-size cache, as the exported token generator takes it). Nothing here runs
in the test suite; ``tests/llm/test_published.py`` checks the same comparison.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hwsim.devices.model import load_device, override  # noqa: E402
from hwsim.llm.config import load_lm_config  # noqa: E402
from hwsim.llm.cost import lm_cost  # noqa: E402
from hwsim.llm.graphs import Precision, decode_graph, prefill_graph  # noqa: E402
from hwsim.quant.recipe import load_recipe  # noqa: E402
from hwsim.schedule.simulate import simulate  # noqa: E402

SOURCE = "github.com/quic/ai-hub-models@33c3d03 qai_hub_models/models/llama_v3_2_{1b,3b}_instruct/perf.yaml"
# (model, phone, LPDDR bytes/s, published decode tokens/s, published time to first token for 128 tokens, ms)
PUBLISHED = [
    ("llama_3_2_1b", "Snapdragon 8 Elite QRD", 84.8e9, 53.6399, 37.0651),
    ("llama_3_2_3b", "Snapdragon 8 Elite QRD", 84.8e9, 23.4718, 88.195),
]


def predict(model: str, bandwidth_bytes_per_s: float):
    """hwsim's cost of ``model`` under the AI Hub recipe on the Hexagon-like device at that bandwidth."""
    device = load_device("hexagon_like")
    per_cycle = bandwidth_bytes_per_s / (device.clock_mhz * 1e6)
    device = override(device, {"memories.ddr.read_bandwidth_bytes_per_cycle": per_cycle})
    prec = Precision.of_recipe(load_recipe(ROOT / "experiments" / "recipes" / "qnn_w4a16.yaml"))
    return lm_cost(load_lm_config(model), device, prec, prefill_tokens=128, kv_len=4096)


def main() -> None:
    print(f"published: {SOURCE}")
    print(f"{'model':14s} {'phone':24s} {'GB/s':>6s} {'pub tok/s':>9s} {'hwsim':>7s} {'bound':>7s} "
          f"{'pub/hwsim':>9s} {'pub TTFT':>8s} {'hwsim TTFT':>10s}")
    for model, phone, bw, tps, ttft in PUBLISHED:
        c = predict(model, bw)
        print(f"{model:14s} {phone:24s} {bw / 1e9:6.1f} {tps:9.1f} {c.decode_tokens_per_s:7.1f} "
              f"{c.bound_tokens_per_s:7.1f} {tps / c.decode_tokens_per_s:9.2f} {ttft:8.1f} {c.ttft_ms:10.1f}")
    spec = load_lm_config("llama_3_2_1b")
    prec = Precision(4, 32, 16, 8)
    graphs = (prefill_graph(spec, 128, prec), decode_graph(spec, 1024, prec))
    device = load_device("hexagon_like")
    for g in graphs:
        simulate(g, device, record_trace=False)  # warm the mapper's caches and imports once
    t0 = time.perf_counter()
    for g in graphs:
        simulate(g, device, record_trace=False)
    seconds = time.perf_counter() - t0
    print(f"simulating Llama 3.2 1B prefill (128 tokens) + decode (KV 1024): {seconds:.2f} s "
          f"({sum(len(g.ops) for g in graphs)} ops)")


if __name__ == "__main__":
    main()
