"""Store Vela 5.2.0's estimates for the test models, so that the tests compare against Vela without running
it.

Usage (Vela in its own venv; CI never needs it)::

    python benchmarks/pin_vela.py --vela /work/peers/vela-venv/bin/vela

For each ``tests/data/ethos_u/*.tflite`` and each target of :data:`TARGETS`, Vela compiles the model with
``--enable-debug-db``; ``tests/data/ethos_u/vela_5.2.0.json`` then holds per model and target the
inference time, total cycles, CPU and NPU op counts and every layer's ``op_cycles`` by TFLite operator
index. Rerun after adding a model or a target.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bench_ethos_u import run_vela, vela_results  # noqa: E402

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "ethos_u"
TARGETS = [
    ("ethos-u55-64", "Ethos_U55_High_End_Embedded", "Shared_Sram"),
    ("ethos-u55-128", "Ethos_U55_High_End_Embedded", "Shared_Sram"),
    ("ethos-u55-128", "Ethos_U55_High_End_Embedded", "Sram_Only"),
    ("ethos-u65-256", "Ethos_U65_Client_Server", "Dedicated_Sram_384KB"),
    ("ethos-u65-512", "Ethos_U65_High_End", "Dedicated_Sram_384KB"),
    ("ethos-u85-256", "Ethos_U85_SYS_DRAM_Mid", "Dedicated_Sram_384KB"),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vela", default="/work/peers/vela-venv/bin/vela")
    args = parser.parse_args()
    pinned: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        for model in sorted(DATA.glob("*.tflite")):
            for target in TARGETS:
                folder = run_vela(args.vela, model, target, Path(tmp) / model.stem / ".".join(target))
                ms, layers, cpu, npu = vela_results(folder)
                cycles = sum(layers.values())
                pinned.setdefault(model.stem, {})[".".join(target)] = {
                    "inference_ms": ms,
                    "cycles": cycles,
                    "cpu_ops": cpu,
                    "npu_ops": npu,
                    "layers": {str(k): v for k, v in sorted(layers.items())},
                }
                print(f"{model.stem:28s} {'.'.join(target):60s} {ms:.4f} ms")
    out = DATA / "vela_5.2.0.json"
    out.write_text(json.dumps(pinned, indent=1, sort_keys=True) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
