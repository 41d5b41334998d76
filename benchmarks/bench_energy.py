"""Energy, power and area of every shipped device, and what pricing a run costs on top of the schedule.

Run ``python benchmarks/bench_energy.py`` (about a minute). It prints Markdown tables:

1. the literature's 45 nm ratios, computed from ``energy_models/horowitz_45nm.yaml``;
2. per device: the array's int8 peak (MACs + accumulators + PE registers + leakage, memories excluded), a
   compute-bound 3x3 convolution and MobileNetV2-224 through the whole model (memories included), and area;
3. the time :func:`hwsim.energy.account.account` takes (with ``EnergyModel.for_device``) on MobileNetV2:
   the first call in the process and the median of repeats, next to the simulation time it adds to.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hwsim.devices.model import device_names  # noqa: E402
from hwsim.energy.account import account, peak_efficiency  # noqa: E402
from hwsim.energy.area import device_area  # noqa: E402
from hwsim.energy.model import DevicePricer, EnergyModel  # noqa: E402
from hwsim.paths import data_dir  # noqa: E402
from hwsim.schedule.simulate import simulate  # noqa: E402

# Compute-bound: a small input (so the host link or flash does not dominate), then four 3x3 convolutions
# 64 -> 64 channels on 56x56 (116 M MACs each) whose weights (36 KiB) and feature maps stay on chip.
CONV = """schema_version: 1
name: conv3x3_stack
input: {shape: [1, 56, 56, 8], dtype: int8}
layers:
  - {name: stem, op: conv2d, out_channels: 64, kernel: 3, padding: same}
  - {name: conv1, op: conv2d, out_channels: 64, kernel: 3, padding: same}
  - {name: conv2, op: conv2d, out_channels: 64, kernel: 3, padding: same}
  - {name: conv3, op: conv2d, out_channels: 64, kernel: 3, padding: same}
  - {name: conv4, op: conv2d, out_channels: 64, kernel: 3, padding: same}
  - {name: pool, op: avg_pool2d, global_pool: true}
"""


def ratios() -> None:
    """The headline 45 nm ratios."""
    m = EnergyModel.load("horowitz_45nm", node_nm=45, voltage_v=0.9)
    e = lambda op, w: m.op_energy_pj(op, w)[0]  # noqa: E731
    a = lambda op, w: m.op_area_um2(op, w)[0]  # noqa: E731
    n = 1 << 20
    print("| ratio at 45 nm (horowitz_45nm) | hwsim | literature |\n|---|---|---|")
    print(f"| FP32 add / INT8 add energy | {e('fp_add', 32) / e('int_add', 8):.1f}x | 30x |")
    print(f"| FP32 mult / INT8 mult energy | {e('fp_mult', 32) / e('int_mult', 8):.1f}x | 18.5x |")
    print(f"| FP32 adder / INT8 adder area | {a('fp_add', 32) / a('int_add', 8):.1f}x | 116x |")
    print(f"| FP32 multiplier / INT8 multiplier area | {a('fp_mult', 32) / a('int_mult', 8):.1f}x | 27x |")
    print(
        f"| FP32 / INT8 / INT4 weight storage (SRAM area) | 1 : "
        f"{m.sram_area_um2(n)[0] / m.sram_area_um2(4 * n)[0]:.3f} : "
        f"{m.sram_area_um2(n // 2)[0] / m.sram_area_um2(4 * n)[0]:.3f} | 1 : 1/4 : 1/8 |"
    )
    print(
        f"| INT8 MAC (8x8 mult + 32b add) / INT4 (4x4 mult + 32b add) | "
        f"{(e('int_mult', 8) + e('int_add', 32)) / (e('int_mult', (4, 4)) + e('int_add', 32)):.2f}x | |"
    )
    print()


def devices(conv_path: Path) -> None:
    """Per-device peak, compute-bound conv, MobileNetV2 and area."""
    mnv2 = data_dir("workloads") / "mobilenet_v2_224.yaml"
    print(
        "| device | node, V | array peak TOPS/W (mW) | conv stack TOPS/W (util, avg mW) | MobileNetV2 uJ | "
        "avg / peak mW | TOPS/W | largest part | area mm2 (w/o SRAM) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name in device_names():
        conv = simulate(conv_path, name)
        model = EnergyModel.for_device(conv.device)
        pricer = DevicePricer(model, conv.device)
        peak = peak_efficiency(pricer)
        bc = account(conv, model)
        result = simulate(mnv2, name)
        b = account(result, model)
        cats = b.by_category()
        top = max(cats, key=cats.get)
        area = device_area(pricer)
        logic = sum(
            r.area_um2 for r in area.rows if not r.part.startswith("sram") and r.component != "overhead"
        )
        no_sram = logic * (1 + model.table.area_overhead_fraction.value) / 1e6
        t = model.technology
        print(
            f"| {name} | {t.node_nm:g} nm, {t.voltage_v:g} V | {peak.tops_per_w:.2f} ({peak.power_mw:.0f}) "
            "| "
            f"{bc.tops_per_w:.2f} ({conv.mac_utilization:.0%}, {bc.average_power_mw:.0f}) | "
            f"{b.total_pj / 1e6:.0f} | {b.average_power_mw:.0f} / {b.power.peak_mw:.0f} | "
            f"{b.tops_per_w:.2f} | "
            f"{top} {cats[top] / b.total_pj:.0%} | {area.total_mm2:.1f} ({no_sram:.2f}) |"
        )
    print()


def timing(repeats: int = 25) -> None:
    """Time of EnergyModel.for_device + account on MobileNetV2, against the simulation it prices."""
    mnv2 = data_dir("workloads") / "mobilenet_v2_224.yaml"
    print("| device | simulate s | energy first call ms | energy median ms | rows |\n|---|---|---|---|---|")
    for name in device_names():
        t0 = time.perf_counter()
        result = simulate(mnv2, name)
        sim_s = time.perf_counter() - t0
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            b = account(result, EnergyModel.for_device(result.device))
            times.append(time.perf_counter() - t0)
        print(
            f"| {name} | {sim_s:.3f} | {times[0] * 1e3:.2f} | {statistics.median(times) * 1e3:.2f} | "
            f"{len(b.rows)} |"
        )
    print()


def main() -> None:
    import platform

    print(f"CPU: {platform.processor() or platform.machine()}, Python {platform.python_version()}\n")
    t0 = time.perf_counter()
    EnergyModel.load("horowitz_45nm", node_nm=28, voltage_v=0.9)
    print(
        f"first load of the energy and scaling tables (YAML parse, cached after): "
        f"{(time.perf_counter() - t0) * 1e3:.1f} ms\n"
    )
    timing()
    ratios()
    with tempfile.TemporaryDirectory() as tmp:
        conv = Path(tmp) / "conv3x3_stack.yaml"
        conv.write_text(CONV, encoding="utf-8")
        devices(conv)


if __name__ == "__main__":
    main()
