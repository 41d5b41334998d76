"""hwsim against published silicon: Coral's Edge TPU benchmark table (and the fit of its device constants).

Run from the repository root with hwsim's venv active::

    python benchmarks/bench_published.py export --models DIR   # Keras -> int8 .tflite -> workloads/published/*.yaml
    python benchmarks/bench_published.py table                 # published ms, hwsim ms, signed error, by row
    python benchmarks/bench_published.py fit                   # refit the fitted constants on the fit rows

``export`` builds each network with the TFLite converter (``benchmarks/build_models.py``, cached in DIR;
keep DIR outside the repository) and writes its shapes as a layer file, the workload the table and the tests
simulate. ``table`` and ``fit`` only read those layer files. Nothing here runs in the test suite.
"""

from __future__ import annotations

import argparse
import itertools
import math
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.published_figures import CORAL_USB, Figure  # noqa: E402
from hwsim.devices.model import Device, load_device  # noqa: E402
from hwsim.importers.yaml_layers import dump_layers_yaml, graph_to_layers, load_layers_yaml  # noqa: E402
from hwsim.schedule.simulate import simulate  # noqa: E402

PUBLISHED = ROOT / "workloads" / "published"
# Coral's SSD models end in TFLite's detection post-processing custom op, which the Object Detection API's
# exporter adds and a Keras build cannot emit: it is appended to the layer file (boxes, scores -> 10 detections).
POSTPROCESS = {"ssd_mobilenet_v1_300", "ssd_mobilenet_v2_300"}


def export(figures: tuple[Figure, ...], models: Path) -> None:
    """Build each figure's network (cached .tflite in ``models``) and write its layer file."""
    from benchmarks.build_models import MODELS, build
    from hwsim.importers import load_model

    PUBLISHED.mkdir(parents=True, exist_ok=True)
    for fig in figures:
        graph = load_model(build(fig.network, models))
        spec = graph_to_layers(graph, fig.network)
        source, kwargs, size = MODELS[fig.network]
        args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
        header = (f"{fig.label} at {size}x{size}, shapes only, compared with {fig.source} ({fig.published_ms} ms).\n"
                  f"Written by benchmarks/bench_published.py export: Keras {source}({args}) with random weights, "
                  "TFLite int8,\nthen hwsim's layer writer (hwsim.importers.yaml_layers.graph_to_layers).")
        if fig.network in POSTPROCESS:
            layer_of = {op.outputs[0]: f"{op.kind}_{i}" for i, op in enumerate(graph.ops)}
            boxes = next(layer_of[n] for n in graph.outputs if graph.tensor(n).shape[-1] == 4)
            scores = next(layer_of[n] for n in graph.outputs if graph.tensor(n).shape[-1] != 4)
            spec["layers"].append({"name": "detection_postprocess", "op": "detection_postprocess",
                                   "inputs": [boxes, scores], "max_detections": 10})
            header += "\nThe last layer stands for TFLite_Detection_PostProcess, which Coral's SSD models end in."
        (PUBLISHED / f"{fig.network}.yaml").write_text(dump_layers_yaml(spec, header))
        print(f"wrote workloads/published/{fig.network}.yaml ({len(spec['layers'])} layers)", flush=True)


def simulated_ms(figures: tuple[Figure, ...], device: Device) -> dict[str, float]:
    """hwsim's latency of each figure's layer file on ``device``."""
    return {f.network: simulate(load_layers_yaml(PUBLISHED / f"{f.network}.yaml"), device,
                                record_trace=False).time_ms for f in figures}


def table(figures: tuple[Figure, ...], device: Device) -> list[str]:
    """The README table: every figure, hwsim's latency and the signed error, then summaries."""
    ms = simulated_ms(figures, device)
    lines = ["| network | input | published ms | hwsim ms | error | rows |", "|---|---|---|---|---|---|"]
    for f in figures:
        err = ms[f.network] / f.published_ms - 1
        lines.append(f"| {f.label} | {f.input_size}x{f.input_size} | {f.published_ms:g} | {ms[f.network]:.2f} | "
                     f"{err:+.0%} | {'fit' if f.fit else 'held back'} |")
    for title, rows in (("all rows", figures), ("held-back rows", [f for f in figures if not f.fit])):
        errs = [abs(ms[f.network] / f.published_ms - 1) for f in rows]
        lines.append(f"\n{title} ({len(rows)}): median |error| {statistics.median(errs):.1%}, "
                     f"max |error| {max(errs):.1%}")
    return lines


def _with(device: Device, usb_bytes_per_cycle: float, layer_cycles: int, inference_cycles: int) -> Device:
    memories = list(device.spec.memories)
    memories[0] = memories[0].model_copy(update={"read_bandwidth_bytes_per_cycle": usb_bytes_per_cycle,
                                                 "write_bandwidth_bytes_per_cycle": usb_bytes_per_cycle})
    spec = device.spec.model_copy(update={"memories": memories, "layer_overhead_cycles": layer_cycles,
                                          "inference_overhead_cycles": inference_cycles})
    return Device(spec, device.path)


def fit(figures: tuple[Figure, ...], device: Device) -> list[str]:
    """Grid search of the USB payload rate and the two overheads, least squares in log error, fit rows only."""
    rows = [f for f in figures if f.fit]
    best = None
    for usb, layer, inference in itertools.product(
            [round(0.80 + 0.02 * i, 2) for i in range(11)], range(0, 6001, 500), range(0, 300001, 25000)):
        ms = simulated_ms(tuple(rows), _with(device, usb, layer, inference))
        loss = sum(math.log(ms[f.network] / f.published_ms) ** 2 for f in rows)
        if best is None or loss < best[0]:
            best = (loss, usb, layer, inference)
    loss, usb, layer, inference = best
    return [f"fit on {', '.join(f.label for f in rows)}: host read/write_bandwidth_bytes_per_cycle {usb} "
            f"({usb * device.clock_mhz:.0f} MB/s), layer_overhead_cycles {layer}, inference_overhead_cycles "
            f"{inference} (sum of squared log errors {loss:.4f})"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("export", "table", "fit"))
    parser.add_argument("--models", default=str(ROOT / "benchmarks" / ".models"))
    parser.add_argument("--device", default="edge_tpu_like")
    args = parser.parse_args()
    if args.action == "export":
        export(CORAL_USB, Path(args.models))
        return 0
    device = load_device(args.device)
    print("\n".join(table(CORAL_USB, device) if args.action == "table" else fit(CORAL_USB, device)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
