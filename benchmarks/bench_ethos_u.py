"""hwsim's vela-5.2 model against Arm Vela 5.2.0 itself: latency per network and per layer, and speed.

Usage::

    python -m venv /work/peers/vela-venv && /work/peers/vela-venv/bin/pip install ethos-u-vela==5.2.0
    python benchmarks/bench_ethos_u.py --vela /work/peers/vela-venv/bin/vela [--models DIR] [--work DIR]

Vela runs in its own venv as a subprocess (never a dependency of hwsim). The models are built by
``benchmarks/ethos_u_models.py`` with the real TFLite converter. For every model and every target (each
U55, U65 and U85 size at the system config and memory mode Vela uses when given none, plus U65 High_End
and U55 Sram_Only), Vela compiles it with ``--enable-debug-db`` and hwsim simulates it on the matching
shipped device; layers are matched by the TFLite operator index Vela records for each of its ops. The
script prints markdown tables (per network, per target, per layer) and the time of both tools as whole
commands (``--speed-only``: that part alone): each a fresh process, run alternately, median CPU seconds
(user + system, the children's own accounting) and wall seconds; hwsim once on a first run
(``HWSIM_CACHE=off``: every weight encoded) and once with its disk cache filled by an earlier run. Bytecode
is compiled for both (as ``pip install`` leaves it), whatever ``PYTHONDONTWRITEBYTECODE`` says.
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
EXTRA = [
    ("ethos-u65-256", "Ethos_U65_High_End", "Dedicated_Sram_384KB"),
    ("ethos-u65-512", "Ethos_U65_High_End", "Dedicated_Sram_384KB"),
    ("ethos-u55-64", "Ethos_U55_High_End_Embedded", "Sram_Only"),
    ("ethos-u55-128", "Ethos_U55_High_End_Embedded", "Sram_Only"),
    ("ethos-u55-256", "Ethos_U55_High_End_Embedded", "Sram_Only"),
]


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
            "--enable-debug-db",
        ],
        capture_output=True,
        text=True,
    )
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
    tables = {
        m.group(1): list(csv.DictReader(io.StringIO(m.group(2).strip())))
        for m in re.finditer(r'<table name="(\w+)">\s*<!\[CDATA\[(.*?)\]\]>', text, re.S)
    }
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
    device = override(
        load_device(device_name(acc)), {"ethos_u.system_config": system, "ethos_u.memory_mode": mode}
    )
    result = simulate(model, device, record_trace=False)
    per_layer = {}
    for layer in result.layers:
        head = layer.op.split(":", 1)[0]
        if head.isdigit():
            per_layer[int(head)] = layer.cycles
    cpu = sum(1 for layer in result.layers if layer.unit == "cpu")
    return result.time_ms, per_layer, cpu


def run_timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """CPU seconds (user + system, as the OS accounts the finished child) and wall seconds of one command."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read()
    proc.stderr.close()
    if proc.returncode:
        raise RuntimeError(f"{cmd} failed: {err[-2000:]!r}")
    return usage.ru_utime + usage.ru_stime, wall


def whole_command_times(
    commands: list[tuple[list[str], dict[str, str]]], runs: int
) -> list[tuple[float, float]]:
    """Median (CPU s, wall s) of each command, the commands run in turn ``runs`` times (after one warm-up)."""
    for cmd, env in commands:
        run_timed(cmd, env)
    times: list[list[tuple[float, float]]] = [[] for _ in commands]
    for _ in range(runs):
        for (cmd, env), out in zip(commands, times):
            out.append(run_timed(cmd, env))
    return [(statistics.median(t[0] for t in ts), statistics.median(t[1] for t in ts)) for ts in times]


def speed(models_dir: Path, work: Path, vela: str, runs: int) -> None:
    """The timing table: Vela and hwsim (first run and cached) as whole commands on the U55-128."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    first = {**env, "HWSIM_CACHE": "off"}
    print(
        f"\nWhole commands on ethos-u55-128 ({_cpu()}; load average {os.getloadavg()[0]:.1f} at the start; "
        f"median of {runs} alternate runs):\n"
    )
    print(
        "| model | vela cpu s (wall) | hwsim first run cpu s (wall) | vela / hwsim | "
        "hwsim cached cpu s (wall) | vela / hwsim |\n|---|---|---|---|---|---|"
    )
    hwsim = [sys.executable, "-m", "hwsim", "simulate"]
    for stem in TIMED:
        model = models_dir / f"{stem}.tflite"
        v_cmd = [
            vela,
            str(model),
            "--accelerator-config",
            "ethos-u55-128",
            "--output-dir",
            str(work / "timing"),
        ]
        h_cmd = [*hwsim, str(model), "--device", "ethos_u55_128_like"]
        (v, vw), (f, fw), (c, cw) = whole_command_times([(v_cmd, env), (h_cmd, first), (h_cmd, env)], runs)
        print(
            f"| {stem} | {v:.3f} ({vw:.3f}) | {f:.3f} ({fw:.3f}) | {v / f:.1f}x | {c:.3f} ({cw:.3f}) | "
            f"{v / c:.1f}x |"
        )
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vela", default="/work/peers/vela-venv/bin/vela")
    parser.add_argument("--models", default="benchmarks/.models", help="where the built .tflite files stay")
    parser.add_argument("--work", default="benchmarks/.vela", help="where Vela's outputs are kept")
    parser.add_argument("--accelerators", default=",".join(DEFAULTS))
    parser.add_argument("--timing-runs", type=int, default=5)
    parser.add_argument("--layers", action="store_true", help="print every layer's comparison")
    parser.add_argument("--speed-only", action="store_true", help="only time the whole commands")
    args = parser.parse_args()
    models_dir, work = Path(args.models), Path(args.work)
    models_dir.mkdir(parents=True, exist_ok=True)
    models = [p for n in NETWORKS for p in build(n, models_dir)]
    if args.speed_only:
        speed(models_dir, work, args.vela, args.timing_runs)
        return 0
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
        print(
            f"| {t[0]} {t[1]} {t[2]} | {statistics.median(errors[t]):.1%} | {max(errors[t]):.1%} | "
            f"{ok}/{n} ({ok / n:.1%}) |"
        )
    total_ok = sum(v[0] for v in layers_ok.values())
    total_n = sum(v[1] for v in layers_ok.values())
    print(
        f"\nall targets: {total_ok}/{total_n} NPU layers within 25% ({total_ok / total_n:.1%}); "
        f"CPU op counts differ on {len(cpu_mismatch)} model x target pairs {cpu_mismatch[:3]}"
    )
    if layer_lines:
        print("\n| model | target | operator | Vela cycles | hwsim cycles | error |")
        print("|---|---|---|---|---|---|")
        print("\n".join(layer_lines))
    speed(models_dir, work, args.vela, args.timing_runs)
    return 0


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return f"{line.split(':', 1)[1].strip()}, {os.cpu_count()} cores"
    return platform.processor()


if __name__ == "__main__":
    sys.exit(main())
