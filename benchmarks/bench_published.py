"""hwsim against published silicon: Coral's Edge TPU table and Qualcomm AI Hub's Hexagon figures, and the
fit of each device's fitted constants.

Run from the repository root with hwsim's venv active::

    python benchmarks/bench_published.py export --models DIR  # Keras -> int8 -> workloads/published/*.yaml
    python benchmarks/bench_published.py table [--device hexagon_like]  # published ms, hwsim ms, error
    python benchmarks/bench_published.py fit [--device hexagon_like]    # refit the fitted constants
    python benchmarks/bench_published.py fit --device hexagon_like --variant prefetch  # a mechanism, refitted
    python benchmarks/bench_published.py host-rate  # Edge TPU host's MAC rate, Coral's desktop-CPU column
    python benchmarks/bench_published.py conv-stack  # a third-party USB Accelerator measurement, held back

``fit --variant`` refits with a mechanism the shipped device file leaves out (``VARIANTS``) and prints the
table at the refitted values, so its held-back rows can be compared with the shipped fit's.

``export`` builds each network with the TFLite converter (``benchmarks/build_models.py``, cached in DIR;
keep DIR outside the repository) and writes its shapes as a layer file, the workload the table and the tests
simulate. ``table`` and ``fit`` only read those layer files. Nothing here runs in the test suite.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import math
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.published_figures import (  # noqa: E402
    CONV_STACK_MS,
    CONV_STACK_SOURCE,
    CORAL_DESKTOP_CPU_MS,
    CORAL_USB,
    HEXAGON,
    Figure,
    conv_stack_yaml,
)
from hwsim.devices.model import Device, load_device  # noqa: E402
from hwsim.importers.yaml_layers import dump_layers_yaml, graph_to_layers, load_layers_yaml  # noqa: E402
from hwsim.schedule.simulate import simulate  # noqa: E402

PUBLISHED = ROOT / "workloads" / "published"
# Coral's SSD models end in TFLite's detection post-processing custom op, which the Object Detection API's
# exporter adds and a Keras build cannot emit: it is appended to the layer file (boxes, scores -> 10
# detections).
POSTPROCESS = {"ssd_mobilenet_v1_300", "ssd_mobilenet_v2_300"}


def export(figures: tuple[Figure, ...], models: Path) -> None:
    """Build each figure's network (cached .tflite in ``models``) and write its layer file."""
    from benchmarks.build_models import MODELS, build
    from hwsim.importers import load_model

    PUBLISHED.mkdir(parents=True, exist_ok=True)
    networks: dict[str, list[Figure]] = {}
    for fig in figures:
        networks.setdefault(fig.network, []).append(fig)
    for network, figs in networks.items():
        graph = load_model(build(network, models))
        spec = graph_to_layers(graph, network)
        source, kwargs, size = MODELS[network]
        args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
        keras = (
            f"benchmarks/published_nets.py {source}({args})"
            if source[0].islower()
            else f"keras.applications.{source}(weights=None{', ' + args if args else ''})"
        )
        compared = "\n".join(f"  {f.label}: {f.source} ({f.published_ms} ms)" for f in figs)
        header = (
            f"{network} at {size}x{size}, shapes only. Compared with:\n{compared}\n"
            f"Written by benchmarks/bench_published.py export: {keras},\nrandom weights, TFLite int8 "
            "(benchmarks/build_models.py), then hwsim.importers.yaml_layers.graph_to_layers."
        )
        if network in POSTPROCESS:
            layer_of = {op.outputs[0]: f"{op.kind}_{i}" for i, op in enumerate(graph.ops)}
            boxes = next(layer_of[n] for n in graph.outputs if graph.tensor(n).shape[-1] == 4)
            scores = next(layer_of[n] for n in graph.outputs if graph.tensor(n).shape[-1] != 4)
            spec["layers"].append(
                {
                    "name": "detection_postprocess",
                    "op": "detection_postprocess",
                    "inputs": [boxes, scores],
                    "max_detections": 10,
                }
            )
            header += (
                "\nThe last layer stands for TFLite_Detection_PostProcess, which Coral's SSD models end in."
            )
        (PUBLISHED / f"{network}.yaml").write_text(dump_layers_yaml(spec, header))
        print(f"wrote workloads/published/{network}.yaml ({len(spec['layers'])} layers)", flush=True)


def simulated_ms(figures: tuple[Figure, ...], device: Device) -> dict[str, float]:
    """hwsim's latency of each figure's layer file on ``device``."""
    return {
        f.network: simulate(
            load_layers_yaml(PUBLISHED / f"{f.network}.yaml"), device, record_trace=False
        ).time_ms
        for f in figures
    }


def table(figures: tuple[Figure, ...], device: Device) -> list[str]:
    """The README table: every figure, hwsim's latency and the signed error, then summaries."""
    ms = simulated_ms(figures, device)
    lines = ["| network | input | published ms | hwsim ms | error | rows |", "|---|---|---|---|---|---|"]
    for f in figures:
        err = ms[f.network] / f.published_ms - 1
        lines.append(
            f"| {f.label} | {f.input_size}x{f.input_size} | {f.published_ms:g} | "
            f"{ms[f.network]:.3g} | "
            f"{err:+.0%} | {'fit' if f.fit else 'held back'} |"
        )
    for title, rows in (("all rows", figures), ("held-back rows", [f for f in figures if not f.fit])):
        errs = [abs(ms[f.network] / f.published_ms - 1) for f in rows]
        lines.append(
            f"\n{title} ({len(rows)}): median |error| {statistics.median(errs):.1%}, "
            f"max |error| {max(errs):.1%}"
        )
    return lines


def _memory(device: Device, index: int, bytes_per_cycle: float) -> Device:
    """``device`` with level ``index`` reading and writing at ``bytes_per_cycle``."""
    memories = list(device.spec.memories)
    memories[index] = dataclasses.replace(
        memories[index],
        read_bandwidth_bytes_per_cycle=bytes_per_cycle,
        write_bandwidth_bytes_per_cycle=bytes_per_cycle,
    )
    return Device(dataclasses.replace(device.spec, memories=memories), device.path)


def _top(device: Device, **fields) -> Device:
    return Device(dataclasses.replace(device.spec, **fields), device.path)


def _lanes(device: Device, lanes: int) -> Device:
    return _top(device, mac_array=dataclasses.replace(device.spec.mac_array, spatial_lanes=lanes))


# The fitted constants of each device: name -> (grid, how a value is set). The per-inference overhead, which
# adds to every row exactly, is fitted by a fine scan at each grid point.
KNOBS = {
    "edge_tpu_like": {
        "host bandwidth_bytes_per_cycle": (
            [round(0.80 + 0.01 * i, 2) for i in range(21)],
            lambda d, v: _memory(d, 0, v),
        ),
        "layer_overhead_cycles": (list(range(0, 10001, 250)), lambda d, v: _top(d, layer_overhead_cycles=v)),
    },
    "hexagon_like": {
        "mac_array.spatial_lanes": (list(range(4, 33)), _lanes),
        # sd8g2: <= 67
        "ddr bandwidth_bytes_per_cycle": (list(range(25, 68, 3)), lambda d, v: _memory(d, 0, v)),
    },
}


def _prefetch(device: Device) -> Device:
    return _top(device, dma=dataclasses.replace(device.spec.dma, prefetch_next_weights=True))


# Mechanisms tried on a device (issue 13), each refitted on the same rows: name -> (device change, knobs
# added to or replacing the device's KNOBS).
VARIANTS = {
    "hexagon_like": {
        # dma.prefetch_next_weights: the next layer's first weight tiles load under the current layer
        "prefetch": (_prefetch, {}),
        # a per-op dispatch cost (layer_overhead_cycles; no published figure) as a fourth fitted constant,
        # on a coarser grid of the other two
        "per-op": (
            lambda d: d,
            {
                "mac_array.spatial_lanes": (list(range(16, 33, 2)), _lanes),
                "ddr bandwidth_bytes_per_cycle": (list(range(49, 68, 3)), lambda d, v: _memory(d, 0, v)),
                "layer_overhead_cycles": (
                    [0, 250, 500, 750, 1000, 1500],
                    lambda d, v: _top(d, layer_overhead_cycles=v),
                ),
            },
        ),
    },
}


def fit(figures: tuple[Figure, ...], device: Device, knobs: dict | None = None) -> list[str]:
    """Least squares in log error over the fit rows (``Figure.fit``) of the device's KNOBS (or ``knobs``) on
    their grid and of ``inference_overhead_cycles`` (1 us steps up to 1 ms); then the table at the fitted
    values."""
    rows = [f for f in figures if f.fit]
    graphs = {f.network: load_layers_yaml(PUBLISHED / f"{f.network}.yaml") for f in rows}
    knobs = knobs or KNOBS[device.name]
    best = None
    for values in itertools.product(*(grid for grid, _ in knobs.values())):
        trial = _top(device, inference_overhead_cycles=0)
        for (_, setter), value in zip(knobs.values(), values):
            trial = setter(trial, value)
        base = {n: simulate(g, trial, record_trace=False).time_ms for n, g in graphs.items()}
        for inference_us in range(1001):
            loss = sum(math.log((base[f.network] + inference_us / 1000) / f.published_ms) ** 2 for f in rows)
            if best is None or loss < best[0]:
                best = (loss, values, inference_us)
    loss, values, inference_us = best
    settings = ", ".join(f"{name} {value}" for name, value in zip(knobs, values))
    line = (
        f"fit on {', '.join(f.label for f in rows)}: {settings}, inference_overhead_cycles "
        f"{round(inference_us * device.clock_mhz)} ({inference_us} us); sum of squared log errors "
        f"{loss:.2e}"
    )
    fitted = _top(device, inference_overhead_cycles=round(inference_us * device.clock_mhz))
    for (_, setter), value in zip(knobs.values(), values):
        fitted = setter(fitted, value)
    return [line, "", *table(figures, fitted)]


def host_rate(device: Device) -> list[str]:
    """The host CPU's MAC rate from Coral's "Desktop CPU" column: each network's MACs over its CPU-only time,
    and the median, as ``macs_per_lane_per_cycle`` of the device's ``on_host`` unit."""
    from hwsim.schedule.edgetpu_compiler import host_unit

    lines, rates = [], []
    for network, ms in CORAL_DESKTOP_CPU_MS.items():
        macs = load_layers_yaml(PUBLISHED / f"{network}.yaml").mac_count()
        rates.append(macs / ms / 1e6)
        lines.append(f"{network}: {macs / 1e9:.2f} GMAC in {ms:g} ms, {rates[-1]:.2f} GMAC/s")
    unit = device.vector_unit(host_unit(device))
    lanes = max(1, unit.vector_bits // 8) * unit.count
    per_cycle = statistics.median(rates) * 1e9 / (device.clock_mhz * 1e6)
    lines.append(
        f"median {statistics.median(rates):.2f} GMAC/s = {per_cycle:.2f} MACs per "
        f"{device.clock_mhz:g} MHz device cycle = macs_per_lane_per_cycle {per_cycle / lanes:.2f} "
        f"over {lanes} lanes"
    )
    return lines


def conv_stack(device: Device) -> list[str]:
    """The held-back conv-stack measurement (CONV_STACK_MS): measured ms, hwsim ms, signed error."""
    import tempfile

    lines = [
        f"source: {CONV_STACK_SOURCE}",
        "| 7x7 conv layers | measured ms | hwsim ms | error |",
        "|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for layers, measured in CONV_STACK_MS.items():
            path = Path(tmp) / f"conv_stack_{layers}.yaml"
            path.write_text(conv_stack_yaml(layers))
            ms = simulate(load_layers_yaml(path), device, record_trace=False).time_ms
            lines.append(f"| {layers} | {measured:g} | {ms:.3g} | {ms / measured - 1:+.1%} |")
    return lines


TABLES = {"edge_tpu_like": CORAL_USB, "hexagon_like": HEXAGON}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("export", "table", "fit", "host-rate", "conv-stack"))
    parser.add_argument("--models", default=str(ROOT / "benchmarks" / ".models"))
    parser.add_argument("--device", default="edge_tpu_like", choices=sorted(TABLES))
    parser.add_argument(
        "--variant",
        choices=sorted({v for variants in VARIANTS.values() for v in variants}),
        help="fit: refit with this mechanism (VARIANTS) instead of the device file as shipped",
    )
    parser.add_argument("networks", nargs="*", help="export only these networks (default: every table's)")
    args = parser.parse_intermixed_args()
    if args.action == "export":
        figures = CORAL_USB + HEXAGON
        export(
            tuple(f for f in figures if not args.networks or f.network in args.networks), Path(args.models)
        )
        return 0
    figures = TABLES[args.device]
    device = load_device(args.device)
    if args.action in ("host-rate", "conv-stack"):
        print("\n".join((host_rate if args.action == "host-rate" else conv_stack)(device)))
        return 0
    if args.action == "table":
        print("\n".join(table(figures, device)))
        return 0
    knobs = None
    if args.variant:
        if args.variant not in VARIANTS.get(args.device, {}):
            parser.error(f"--variant {args.variant} is not defined for {args.device}")
        change, extra = VARIANTS[args.device][args.variant]
        device, knobs = change(device), {**KNOBS[args.device], **extra}
    print("\n".join(fit(figures, device, knobs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
