"""hwsim's vela-5.2 model against Arm Vela 5.2.0 itself: latency per network and per layer, and speed.

Usage::

    python -m venv /work/peers/vela-venv && /work/peers/vela-venv/bin/pip install ethos-u-vela==5.2.0
    python benchmarks/bench_ethos_u.py --vela /work/peers/vela-venv/bin/vela [--models DIR] [--work DIR]

Vela runs in its own venv as a subprocess (never a dependency of hwsim). The models are built by
``benchmarks/ethos_u_models.py`` with the real TFLite converter. For every model and every target (each
U55, U65 and U85 size at the system config and memory mode Vela uses when given none, plus U65 High_End
and U55 Sram_Only), Vela compiles it with ``--enable-debug-db`` and hwsim simulates it on the matching
shipped device; layers are matched by the TFLite operator index Vela records for each of its ops. The
script prints markdown tables (per network, per target, per layer) and the wall time of both tools as
whole commands, measured alternately in one run.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.ethos_u_models import NETWORKS, build  # noqa: E402

# (vela accelerator, system config, memory mode) -> hwsim device and its overrides
DEFAULTS = {
    "ethos-u55-32": ("Ethos_U55_High_End_Embedded", "Shared_Sram"),
    "ethos-u55-64": ("Ethos_U55_High_End_Embedded", "Shared_Sram"),
    "ethos-u55-128": ("Ethos_U55_High_End_Embedded", "Shared_Sram"),
    "ethos-u55-256": ("Ethos_U55_High_End_Embedded", "Shared_Sram"),
    "ethos-u65-256": ("Ethos_U65_Client_Server", "Dedicated_Sram_384KB"),
    "ethos-u65-512": ("Ethos_U65_Client_Server", "Dedicated_Sram_384KB"),
    "ethos-u85-128": ("Ethos_U85_SYS_DRAM_Mid", "Dedicated_Sram_384KB"),
    "ethos-u85-256": ("Ethos_U85_SYS_DRAM_Mid", "Dedicated_Sram_384KB"),
    "ethos-u85-512": ("Ethos_U85_SYS_DRAM_Mid", "Dedicated_Sram_384KB"),
    "ethos-u85-1024": ("Ethos_U85_SYS_DRAM_Mid", "Dedicated_Sram_384KB"),
    "ethos-u85-2048": ("Ethos_U85_SYS_DRAM_Mid", "Dedicated_Sram_384KB"),
}
TIMED = ("kws_ds_cnn", "ic_resnet8", "vww_mobilenet_v1_025", "ad_fc_autoencoder", "mobilenet_v2_100_224")
EXTRA = [("ethos-u65-256", "Ethos_U65_High_End", "Dedicated_Sram_384KB"),
         ("ethos-u65-512", "Ethos_U65_High_End", "Dedicated_Sram_384KB"),
         ("ethos-u55-64", "Ethos_U55_High_End_Embedded", "Sram_Only"),
         ("ethos-u55-128", "Ethos_U55_High_End_Embedded", "Sram_Only"),
         ("ethos-u55-256", "Ethos_U55_High_End_Embedded", "Sram_Only")]


def targets(accelerators: list[str]) -> list[tuple[str, str, str]]:
    """The (accelerator, system config, memory mode) triples compared, defaults first."""
    out = [(a, *DEFAULTS[a]) for a in accelerators]
    return out + [t for t in EXTRA if t[0] in accelerators]


def device_name(accelerator: str) -> str:
    """The shipped hwsim device of a Vela accelerator config."""
    return accelerator.replace("-", "_") + "_like"


def run_vela(vela: str, model: Path, target: tuple[str, str, str], out: Path) -> Path:
    """Compile ``model`` with Vela into ``out`` (kept across runs); return the folder."""
    if (out / "done").exists():
        return out
    out.mkdir(parents=True, exist_ok=True)
    acc, system, mode = target
    proc = subprocess.run([vela, str(model), "--accelerator-config", acc, "--system-config", system,
                           "--memory-mode", mode, "--output-dir", str(out), "--enable-debug-db"],
                          capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"vela failed on {model.name} {target}: {proc.stderr[-2000:]}")
    (out / "stdout.txt").write_text(proc.stdout)
    (out / "done").write_text("")
    return out


def vela_results(folder: Path) -> tuple[float, dict[int, int], int, int]:
    """Vela's inference time (ms), op cycles per TFLite operator index, CPU and NPU op counts."""
    summary = next(folder.glob("*_summary_*.csv"))
    rows = list(csv.reader(summary.open()))
    fields = dict(zip(rows[0], rows[1]))
    text = next(folder.glob("*_debug.xml")).read_text()
    tables = {m.group(1): list(csv.DictReader(io.StringIO(m.group(2).strip())))
              for m in re.finditer(r'<table name="(\w+)">\s*<!\[CDATA\[(.*?)\]\]>', text, re.S)}
    source = {r["id"]: int(r["ext_key"]) for r in tables["source"]}
    per_layer: dict[int, int] = defaultdict(int)
    for r in tables["perf"]:
        per_layer[source[r["source_id"]]] += int(r["op_cycles"])
    out = (folder / "stdout.txt").read_text()
    cpu = int(re.search(r"CPU operators = (\d+)", out).group(1))
    npu = int(re.search(r"NPU operators = (\d+)", out).group(1))
    return float(fields["inference_time"]) * 1e3, dict(per_layer), cpu, npu


def hwsim_results(model: Path, target: tuple[str, str, str]) -> tuple[float, dict[int, int], int]:
    """hwsim's latency (ms), cycles per TFLite operator index and its CPU op count."""
    from hwsim.devices.model import load_device, override
    from hwsim.schedule.simulate import simulate

    acc, system, mode = target
    device = override(load_device(device_name(acc)), {"ethos_u.system_config": system,
                                                      "ethos_u.memory_mode": mode})
    result = simulate(model, device, record_trace=False)
    per_layer = {}
    for layer in result.layers:
        head = layer.op.split(":", 1)[0]
        if head.isdigit():
            per_layer[int(head)] = layer.cycles
    cpu = sum(1 for layer in result.layers if layer.unit == "cpu")
    return result.time_ms, per_layer, cpu


def wall_times(cmd_a: list[str], cmd_b: list[str], runs: int) -> tuple[float, float]:
    """Median wall seconds of two whole commands, run alternately."""
    a, b = [], []
    for _ in range(runs):
        for cmd, out in ((cmd_a, a), (cmd_b, b)):
            t0 = time.perf_counter()
            subprocess.run(cmd, capture_output=True, check=True)
            out.append(time.perf_counter() - t0)
    return statistics.median(a), statistics.median(b)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vela", default="/work/peers/vela-venv/bin/vela")
    parser.add_argument("--models", default="benchmarks/.models", help="where the built .tflite files stay")
    parser.add_argument("--work", default="benchmarks/.vela", help="where Vela's outputs are kept")
    parser.add_argument("--accelerators", default=",".join(DEFAULTS))
    parser.add_argument("--timing-runs", type=int, default=5)
    parser.add_argument("--layers", action="store_true", help="print every layer's comparison")
    args = parser.parse_args()
    models_dir, work = Path(args.models), Path(args.work)
    models_dir.mkdir(parents=True, exist_ok=True)
    models = [p for n in NETWORKS for p in build(n, models_dir)]
    tgts = targets(args.accelerators.split(","))
    vela_version = subprocess.run([args.vela, "--version"], capture_output=True, text=True).stdout.strip()
    print(f"CPU: {_cpu()}, Python {platform.python_version()}; Vela {vela_version}")
    print("\n| model | " + " | ".join(f"{a} {s.split('_', 2)[-1]} {m}" for a, s, m in tgts) + " |")
    print("|---|" + "---|" * len(tgts))
    errors: dict[tuple, list[float]] = defaultdict(list)
    layers_ok: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    cpu_mismatch = []
    layer_lines = []
    for model in models:
        cells = []
        for t in tgts:
            folder = run_vela(args.vela, model, t, work / model.stem / ".".join(t))
            v_ms, v_layers, v_cpu, _ = vela_results(folder)
            h_ms, h_layers, h_cpu = hwsim_results(model, t)
            err = h_ms / v_ms - 1
            errors[t].append(abs(err))
            cells.append(f"{v_ms:.3f} / {h_ms:.3f} ({err:+.1%})")
            if v_cpu != h_cpu:
                cpu_mismatch.append((model.stem, t, v_cpu, h_cpu))
            for index, v in v_layers.items():
                if v == 0:
                    continue
                h = h_layers.get(index, 0)
                ok = abs(h / v - 1) <= 0.25
                layers_ok[t][0] += ok
                layers_ok[t][1] += 1
                if args.layers or not ok:
                    row = (model.stem, " ".join(t), index, v, h, f"{h / v - 1:+.1%}")
                    layer_lines.append("| " + " | ".join(map(str, row)) + " |")
        print(f"| {model.stem} | " + " | ".join(cells) + " |")
    print("\n| target | median abs error | max abs error | layers within 25% |")
    print("|---|---|---|---|")
    for t in tgts:
        ok, n = layers_ok[t]
        print(f"| {t[0]} {t[1]} {t[2]} | {statistics.median(errors[t]):.1%} | {max(errors[t]):.1%} | "
              f"{ok}/{n} ({ok / n:.1%}) |")
    total_ok = sum(v[0] for v in layers_ok.values())
    total_n = sum(v[1] for v in layers_ok.values())
    print(f"\nall targets: {total_ok}/{total_n} NPU layers within 25% ({total_ok / total_n:.1%}); "
          f"CPU op counts differ on {len(cpu_mismatch)} model x target pairs {cpu_mismatch[:3]}")
    if layer_lines:
        print("\n| model | target | operator | Vela cycles | hwsim cycles | error |")
        print("|---|---|---|---|---|---|")
        print("\n".join(layer_lines))
    print("\nWhole commands (median of alternate runs):\n")
    print("| model | vela s | hwsim simulate s | vela / hwsim |\n|---|---|---|---|")
    hwsim = [sys.executable, "-m", "hwsim", "simulate"]
    for stem in TIMED:
        model = models_dir / f"{stem}.tflite"
        tmp = work / "timing"
        vela = [args.vela, str(model), "--accelerator-config", "ethos-u55-128", "--output-dir", str(tmp)]
        v, h = wall_times(vela, [*hwsim, str(model), "--device", "ethos_u55_128_like"], args.timing_runs)
        print(f"| {stem} | {v:.3f} | {h:.3f} | {v / h:.1f}x |")
    return 0


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return f"{line.split(':', 1)[1].strip()}, {os.cpu_count()} cores"
    return platform.processor()


if __name__ == "__main__":
    sys.exit(main())
