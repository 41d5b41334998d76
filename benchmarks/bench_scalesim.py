"""SCALE-Sim 3.0.0 beside ``hwsim --memory-model scalesim``: every report field per layer, and speed.

Run from the repository root with hwsim's venv active::

    python benchmarks/bench_scalesim.py [--scalesim /work/peers/scalesim-venv/bin/python]
        [--runs benchmarks/.scalesim-runs] [--arrays 16,32] [--topologies ds_cnn_kws,...] [--pin FILE]

For each topology x dataflow (os, ws, is) x interface bandwidth (CALC, USER) x array size, SCALE-Sim runs as
a whole command in its own venv (its Python API with ``save_disk_space=True``: no traces, as a user would
run it for reports), once; its output folder is kept under ``--runs`` and reused by later runs of this
script (delete it to measure SCALE-Sim again). hwsim then runs the same ``.cfg`` and ``.csv`` twice: in this
process (load + simulate + write the reports; best of 3, hwsim's caches cleared before each) and as a
whole ``python -m hwsim simulate ... --memory-model scalesim --report-dir`` command. Every field of
COMPUTE_REPORT.csv, BANDWIDTH_REPORT.csv and DETAILED_ACCESS_REPORT.csv is compared as text, row by row
(one row per SCALE-Sim layer: depthwise channels each have their row). ``--pin FILE`` writes SCALE-Sim's
rows as JSON for the tests (``tests/schedule/data/scalesim_3_0_0_bench.json``; rows after ``LayerID`` as
``[repeat, line]``). Nothing here runs in the test suite.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hwsim.devices.model import load_device, with_memory_model  # noqa: E402
from hwsim.importers import load_model  # noqa: E402
from hwsim.schedule.scalesim import model as scalesim_model  # noqa: E402
from hwsim.schedule.scalesim.reports import write_reports  # noqa: E402
from hwsim.schedule.simulate import simulate  # noqa: E402

TOPOLOGIES = {  # name -> (file, SCALE-Sim input type)
    "ds_cnn_kws": ("workloads/ds_cnn_kws.csv", "conv"),
    "resnet18_layers": ("workloads/resnet18_layers.csv", "conv"),
    "bert_block_gemm": ("workloads/bert_block_gemm.csv", "gemm"),
}
ARRAYS = {16: (32, 32, 16), 32: (128, 128, 64)}  # array side -> ifmap, filter, ofmap SRAM kB
REPORTS = ("COMPUTE_REPORT", "BANDWIDTH_REPORT", "DETAILED_ACCESS_REPORT")

CFG = """[general]
run_name = {name}

[architecture_presets]
ArrayHeight:    {side}
ArrayWidth:     {side}
IfmapSramSzkB:    {kb[0]}
FilterSramSzkB:   {kb[1]}
OfmapSramSzkB:    {kb[2]}
IfmapOffset:    0
FilterOffset:   10000000
OfmapOffset:    20000000
Bandwidth : 10
Dataflow : {df}
ReadRequestBuffer: 32
WriteRequestBuffer: 32

[layout]
IfmapCustomLayout: False
IfmapSRAMBankBandwidth: 10
IfmapSRAMBankNum: 10
IfmapSRAMBankPort: 2
FilterCustomLayout: False
FilterSRAMBankBandwidth: 10
FilterSRAMBankNum: 10
FilterSRAMBankPort: 2

[sparsity]
SparsitySupport : false
SparseRep : ellpack_block
OptimizedMapping : false
BlockSize : 8
RandomNumberGeneratorSeed : 40

[run_presets]
InterfaceBandwidth: {mode}
UseRamulatorTrace: False
"""

SCALESIM_DRIVER = (
    "import sys; from scalesim.scale_sim import scalesim; "
    "s = scalesim(save_disk_space=True, verbose=False, config=sys.argv[1], "
    "topology=sys.argv[2], "
    "layout=sys.argv[2], input_type_gemm=sys.argv[4] == 'gemm'); "
    "s.run_scale(top_path=sys.argv[3])"
)


def read_report_rows(folder: Path) -> dict[str, list[list[str]]]:
    """Each report's rows as lists of fields (LayerID and the trailing empty field dropped)."""
    out = {}
    for name in REPORTS:
        path = next(folder.glob(f"**/{name}.csv"))
        out[name] = [[f.strip() for f in line.split(",")[1:-1]] for line in path.read_text().splitlines()[1:]]
    return out


def run_lengths(folder: Path) -> dict[str, list]:
    """Each report as its header and ``[repeat, line]`` pairs (a depthwise layer's channels repeat one
    line)."""
    out = {}
    for name in REPORTS:
        lines = next(folder.glob(f"**/{name}.csv")).read_text().splitlines()
        rows: list = []
        for line in lines[1:]:
            body = line.split(",", 1)[1]
            if rows and rows[-1][1] == body:
                rows[-1][0] += 1
            else:
                rows.append([1, body])
        out[name] = [lines[0], *rows]
    return out


def run_scalesim(python: str, cfg: Path, topo: Path, form: str, out: Path) -> float:
    """Run SCALE-Sim once into ``out`` (skipped when ``out`` holds its reports); return its wall seconds."""
    stamp = out / "wall_seconds.json"
    if stamp.exists():
        return json.loads(stamp.read_text())["seconds"]
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    proc = subprocess.run(
        [python, "-c", SCALESIM_DRIVER, str(cfg), str(topo), str(out), form], capture_output=True, text=True
    )
    seconds = time.perf_counter() - t0
    if proc.returncode:
        raise RuntimeError(f"SCALE-Sim failed on {cfg} {topo}:\n{proc.stderr[-3000:]}")
    stamp.write_text(json.dumps({"seconds": seconds}))
    return seconds


def run_hwsim_in_process(cfg: Path, topo: Path, out: Path) -> float:
    """Best of 3 cold runs: load the topology and the device, simulate with SCALE-Sim's memory model, write
    the reports."""
    best = float("inf")
    for _ in range(3):
        scalesim_model.clear_caches()
        t0 = time.perf_counter()
        device = with_memory_model(load_device(cfg), "scalesim")
        result = simulate(load_model(topo), device, record_trace=False)
        write_reports(result, out)
        best = min(best, time.perf_counter() - t0)
    return best


def run_hwsim_command(cfg: Path, topo: Path, out: Path) -> float:
    """The whole ``python -m hwsim simulate ... --memory-model scalesim --report-dir`` command, wall
    seconds."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "hwsim",
            "simulate",
            str(topo),
            "--device",
            str(cfg),
            "--memory-model",
            "scalesim",
            "--report-dir",
            str(out),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    if proc.returncode:
        raise RuntimeError(proc.stderr[-3000:])
    return time.perf_counter() - t0


def compare(ss: dict, hw: dict) -> tuple[int, int, list[str]]:
    """(rows, rows equal in all three reports, a description of each differing field)."""
    rows = len(ss["COMPUTE_REPORT"])
    diffs, equal = [], 0
    for i in range(rows):
        ok = True
        for name in REPORTS:
            a = ss[name][i]
            b = hw[name][i] if i < len(hw[name]) else []
            if a != b:
                ok = False
                diffs.append(f"row {i} {name}: SCALE-Sim {a} hwsim {b}")
        equal += ok
    if len(hw["COMPUTE_REPORT"]) != rows:
        diffs.append(f"SCALE-Sim {rows} rows, hwsim {len(hw['COMPUTE_REPORT'])}")
    return rows, equal, diffs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scalesim", default="/work/peers/scalesim-venv/bin/python")
    parser.add_argument("--runs", default=str(ROOT / "benchmarks/.scalesim-runs"))
    parser.add_argument("--arrays", default="16,32")
    parser.add_argument("--topologies", default=",".join(TOPOLOGIES))
    parser.add_argument("--dataflows", default="os,ws,is")
    parser.add_argument("--modes", default="CALC,USER")
    parser.add_argument("--pin", default=None, help="write SCALE-Sim's report rows to this JSON file")
    parser.add_argument(
        "--scalesim-only", action="store_true", help="only run (and keep) SCALE-Sim's outputs"
    )
    args = parser.parse_args()
    runs = Path(args.runs)
    runs.mkdir(parents=True, exist_ok=True)
    head = (
        "| topology | array | dataflow | bandwidth | SCALE-Sim layers | all fields equal | SCALE-Sim s | "
        "hwsim in-process s | ratio | hwsim command s | ratio |"
    )
    lines = [
        f"CPU: {_cpu()}, Python {platform.python_version()}; `python benchmarks/bench_scalesim.py`",
        "",
        head,
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    print("\n".join(lines), flush=True)
    pinned, all_diffs = {}, []
    totals = [0, 0, 0.0, 0.0, 0.0]
    for topo_name in args.topologies.split(","):
        file, form = TOPOLOGIES[topo_name]
        topo = ROOT / file
        for side in (int(a) for a in args.arrays.split(",")):
            for df in args.dataflows.split(","):
                for mode in args.modes.split(","):
                    name = f"{topo_name}_{side}x{side}_{df}_{mode.lower()}"
                    cfg = runs / f"{name}.cfg"
                    cfg.write_text(CFG.format(name=name, side=side, kb=ARRAYS[side], df=df, mode=mode))
                    ss_seconds = run_scalesim(args.scalesim, cfg, topo, form, runs / name)
                    if args.scalesim_only:
                        print(f"{name}: SCALE-Sim {ss_seconds:.1f} s", flush=True)
                        continue
                    ss = read_report_rows(runs / name)
                    with tempfile.TemporaryDirectory() as tmp:
                        hw_seconds = run_hwsim_in_process(cfg, topo, Path(tmp) / "a")
                        cmd_seconds = run_hwsim_command(cfg, topo, Path(tmp) / "b")
                        hw = read_report_rows(Path(tmp) / "b")
                    rows, equal, diffs = compare(ss, hw)
                    all_diffs += [f"{name}: {d}" for d in diffs]
                    pinned[name] = {
                        "topology": file,
                        "cfg": cfg.read_text().splitlines(),
                        "seconds": round(ss_seconds, 1),
                        "reports": run_lengths(runs / name),
                    }
                    for i, v in enumerate((rows, equal, ss_seconds, hw_seconds, cmd_seconds)):
                        totals[i] += v
                    line = (
                        f"| {topo_name} | {side}x{side} | {df} | {mode} | {rows} | {equal}/{rows} | "
                        f"{ss_seconds:.1f} | {hw_seconds:.4f} | {ss_seconds / hw_seconds:,.0f}x | "
                        f"{cmd_seconds:.2f} | {ss_seconds / cmd_seconds:,.0f}x |"
                    )
                    lines.append(line)
                    print(line, flush=True)
    rows, equal, ss_s, hw_s, cmd_s = totals
    if args.scalesim_only:
        return 0
    lines.append(
        f"| **all** | | | | {rows} | {equal}/{rows} | {ss_s:.1f} | {hw_s:.3f} | {ss_s / hw_s:,.0f}x "
        "| "
        f"{cmd_s:.1f} | {ss_s / cmd_s:,.0f}x |"
    )
    print(lines[-1])
    if all_diffs:
        print("\nDifferences:\n" + "\n".join(all_diffs[:200]))
    if args.pin:
        Path(args.pin).write_text(json.dumps(pinned, indent=1) + "\n")
        print(f"wrote {args.pin}")
    return 0


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                import os

                return line.split(":", 1)[1].strip() + f" ({os.cpu_count()} cores)"
    except OSError:
        pass
    return platform.processor() or "unknown"


if __name__ == "__main__":
    sys.exit(main())
