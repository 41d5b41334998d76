"""Scheduler benchmark: SCALE-Sim exactness and speed, MobileNetV2 per device, estimates vs Vela's.

Run from the repository root with hwsim's venv active::

    python benchmarks/bench_scheduler.py [--scalesim /work/scalesim-venv/bin/python]
        [--vela /work/vela-venv/bin/vela] [--models DIR] [--parts exact,speed,devices,published]

SCALE-Sim 3.0.0 and ethos-u-vela each live in their own venv (SCALE-Sim needs numpy < 2.3) and run here as
subprocesses. The int8 .tflite models are built by ``benchmarks/build_models.py`` (Keras architectures,
random weights; latency does not depend on weight values). Nothing here runs in the test suite.
"""

from __future__ import annotations

import argparse
import csv
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_scalesim import CFG  # noqa: E402  (SCALE-Sim .cfg template)
from hwsim.devices.model import device_names, load_device  # noqa: E402
from hwsim.importers import load_model  # noqa: E402
from hwsim.importers.scalesim_csv import load_scalesim_topology  # noqa: E402
from hwsim.schedule.simulate import simulate  # noqa: E402

# Coral's published Edge TPU figures are compared in benchmarks/bench_published.py (each at its own input
# size).
VELA_TARGETS = {  # hwsim device -> (vela accelerator, system config, memory mode)
    "ethos_u55_128_like": ("ethos-u55-128", "Ethos_U55_High_End_Embedded", "Shared_Sram"),
    "ethos_u55_256_like": ("ethos-u55-256", "Ethos_U55_High_End_Embedded", "Shared_Sram"),
    "ethos_u65_256_like": ("ethos-u65-256", "Ethos_U65_High_End", "Dedicated_Sram_384KB"),
}


def topology_from_graph(graph, path: Path) -> Path:
    """Write a SCALE-Sim conv topology of ``graph``'s MAC ops (padded IFMAPs, depthwise marked ``DP``)."""
    from hwsim.numerics.ops import resolve_padding

    rows = [
        "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,"
    ]
    for op in graph.ops:
        if op.kind in ("conv2d", "depthwise_conv2d"):
            _, h, w, c = graph.tensor(op.inputs[0]).shape
            kh, kw = op.attrs["kernel"]
            s = op.attrs["stride"][0]
            pads = resolve_padding(op.attrs["padding"], (h, w), (kh, kw), op.attrs["stride"], (1, 1))
            hp, wp = h + pads[0] + pads[1], w + pads[2] + pads[3]
            if op.kind == "depthwise_conv2d":
                rows.append(
                    f"{op.name}_DP,{hp},{wp},{kh},{kw},{c},{op.attrs.get('depth_multiplier', 1)},{s},"
                )
            else:
                k = graph.tensor(op.outputs[0]).shape[-1]
                rows.append(f"{op.name},{hp},{wp},{kh},{kw},{c},{k},{s},")
        elif op.kind == "fully_connected":
            k, c = graph.tensor(op.inputs[1]).shape
            rows.append(f"{op.name},1,1,1,1,{c},{k},1,")
    path.write_text("\n".join(rows) + "\n")
    return path


def run_scalesim(python: str, cfg: Path, topo: Path, out: Path) -> tuple[list[int], float]:
    """Run SCALE-Sim; return its per-layer "Total Cycles" (depthwise channels summed) and wall seconds."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        [
            python,
            "-m",
            "scalesim.scale",
            "-c",
            str(cfg),
            "-t",
            str(topo),
            "-l",
            str(topo),
            "-p",
            str(out),
            "-s",
            "N",
        ],
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - t0
    if proc.returncode:
        raise RuntimeError(proc.stdout[-2000:] + proc.stderr[-2000:])
    report = next(out.glob("*/COMPUTE_REPORT.csv"))
    per_row = [int(r[2]) for r in list(csv.reader(report.open()))[1:]]
    names = [line.split(",")[0].strip() for line in topo.read_text().splitlines()[1:] if line.strip()]
    chans = [
        int(line.split(",")[5]) if "DP" in line.split(",")[0] else 1
        for line in topo.read_text().splitlines()[1:]
        if line.strip()
    ]
    cycles, i = [], 0
    for _name, n in zip(names, chans, strict=True):
        cycles.append(sum(per_row[i : i + n]) + 0)
        i += n
    return cycles, seconds


def part_exact(args, work: Path) -> list[str]:
    """hwsim's compute cycles against SCALE-Sim's per layer, OS/WS/IS, on ResNet-18 and MobileNetV2."""
    out = [
        "### SCALE-Sim exactness (per-layer compute cycles)",
        "",
        "| topology | array | dataflow | layers | equal | max abs diff |",
        "|---|---|---|---|---|---|",
    ]
    mnv2 = topology_from_graph(
        load_model(ROOT / "workloads/mobilenet_v2_224.yaml"), work / "mobilenet_v2.csv"
    )
    for topo_path in (ROOT / "workloads/scalesim_resnet18.csv", mnv2):
        for df in ("os", "ws", "is"):
            cfg = work / f"{topo_path.stem}_{df}.cfg"
            cfg.write_text(
                CFG.format(name=f"{topo_path.stem}_{df}", side=32, kb=(256, 256, 128), df=df, mode="CALC")
            )
            ss, _ = run_scalesim(args.scalesim, cfg, topo_path, work / f"out_{topo_path.stem}_{df}")
            graph = load_scalesim_topology(topo_path)
            res = simulate(graph, load_device(cfg), record_trace=False)
            chans = [
                op.attrs.get("in_channels", 1) if op.kind == "depthwise_conv2d" else 1 for op in graph.ops
            ]
            # SCALE-Sim reports one row per depthwise channel, each one less than its cycle count
            hw = [layer.compute_cycles - n for layer, n in zip(res.layers, chans, strict=True)]
            equal = sum(a == b for a, b in zip(hw, ss, strict=True))
            diff = max(abs(a - b) for a, b in zip(hw, ss, strict=True))
            out.append(f"| {topo_path.name} | 32x32 | {df} | {len(ss)} | {equal}/{len(ss)} | {diff} |")
            print(out[-1], flush=True)
    return out + [""]


def part_speed(args, work: Path) -> list[str]:
    """SCALE-Sim and hwsim on MobileNetV2 with the same 32x32 array, side by side."""
    topo = topology_from_graph(load_model(ROOT / "workloads/mobilenet_v2_224.yaml"), work / "mnv2_speed.csv")
    out = [
        "### Speed against SCALE-Sim (MobileNetV2-224, 32x32 array, same topology and config)",
        "",
        "| dataflow | SCALE-Sim s | hwsim cold s | hwsim warm s | ratio (SCALE-Sim / hwsim warm) |",
        "|---|---|---|---|---|",
    ]
    for df in args.speed_dataflows.split(","):
        cfg = work / f"speed_{df}.cfg"
        cfg.write_text(CFG.format(name=f"speed_{df}", side=32, kb=(256, 256, 128), df=df, mode="CALC"))
        graph = load_scalesim_topology(topo)
        t0 = time.perf_counter()
        simulate(graph, load_device(cfg))
        cold = time.perf_counter() - t0
        warm = min(_timed(lambda: simulate(load_scalesim_topology(topo), load_device(cfg))) for _ in range(5))
        _, ss = run_scalesim(args.scalesim, cfg, topo, work / f"speed_out_{df}")
        out.append(f"| {df} | {ss:.1f} | {cold:.3f} | {warm:.3f} | {ss / warm:,.0f}x |")
        print(out[-1], flush=True)
    return out + [""]


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def part_devices(args, work: Path) -> list[str]:
    """MobileNetV2 (layer YAML) on every shipped device: simulated latency and warm wall time (load + map +
    sim)."""
    out = [
        "### MobileNetV2-224 on each shipped device",
        "",
        "| device | simulated latency ms | MAC util | memory stall | hwsim warm s (best of 5) | events |",
        "|---|---|---|---|---|---|",
    ]
    path = ROOT / "workloads/mobilenet_v2_224.yaml"
    for name in device_names():
        simulate(path, name)
        warm = min(_timed(lambda n=name: simulate(path, n)) for _ in range(5))
        r = simulate(path, name)
        out.append(
            f"| {name} | {r.time_ms:.3f} | {r.mac_utilization:.1%} | {r.stall_cycles / r.cycles:.0%} "
            "| "
            f"{warm:.3f} | {len(r.trace)} |"
        )
        print(out[-1], flush=True)
    return out + [""]


def run_vela(vela: str, model: Path, target: tuple[str, str, str], out: Path) -> float:
    """Vela's estimated inference time in ms (from its summary CSV)."""
    acc, system, mode = target
    proc = subprocess.run(
        [
            vela,
            str(model),
            "--accelerator-config",
            acc,
            "--system-config",
            system,
            "--memory-mode",
            mode,
            "--output-dir",
            str(out),
        ],
        capture_output=True,
        text=True,
    )
    if proc.returncode:
        raise RuntimeError(proc.stdout[-2000:] + proc.stderr[-2000:])
    summary = next(out.glob("*_summary_*.csv"))
    row = next(csv.DictReader(summary.open()))
    return float(row["inference_time"]) * 1000


def part_published(args, work: Path) -> list[str]:
    """hwsim against Vela's Ethos-U estimates, with errors (Coral's figures:
    benchmarks/bench_published.py)."""
    out = [
        "### Estimates against Vela",
        "",
        "| model | device | reference | reference ms | hwsim ms | error |",
        "|---|---|---|---|---|---|",
    ]
    for model in ("mobilenet_v1", "mobilenet_v2", "resnet50_v1"):
        path = Path(args.models) / f"{model}_int8.tflite"
        graph = load_model(path)
        for dev, target in VELA_TARGETS.items():
            ref = run_vela(args.vela, path, target, work / f"vela_{model}_{dev}")
            r = simulate(graph, dev, record_trace=False)
            out.append(
                f"| {model} | {dev} | Vela 5.2.0 {target[0]} {target[1]} {target[2]} | {ref:.2f} | "
                f"{r.time_ms:.2f} | {(r.time_ms - ref) / ref:+.0%} |"
            )
            print(out[-1], flush=True)
    return out + [""]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scalesim", default="/work/scalesim-venv/bin/python")
    parser.add_argument("--vela", default="/work/vela-venv/bin/vela")
    parser.add_argument("--models", default=str(ROOT / "benchmarks/.models"))
    parser.add_argument("--parts", default="exact,speed,devices,published")
    parser.add_argument("--speed-dataflows", default="ws")
    args = parser.parse_args()
    lines = [
        f"CPU: {_cpu()}, Python {platform.python_version()}, one run of benchmarks/bench_scheduler.py",
        "",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if "published" in args.parts:
            from benchmarks.build_models import build

            for m in ("mobilenet_v1", "mobilenet_v2", "resnet50_v1"):
                build(m, Path(args.models))
        for part in args.parts.split(","):
            lines += {
                "exact": part_exact,
                "speed": part_speed,
                "devices": part_devices,
                "published": part_published,
            }[part](args, work)
    print("\n".join(lines))
    return 0


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip() + f" ({_ncpu()} cores)"
    except OSError:
        pass
    return platform.processor() or "unknown"


def _ncpu() -> int:
    import os

    return os.cpu_count() or 1


if __name__ == "__main__":
    sys.exit(main())
