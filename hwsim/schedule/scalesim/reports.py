"""SCALE-Sim's three report files, written from a simulation run with ``memory_model: scalesim``.

The files, their headers and their number formats are SCALE-Sim 3.0.0's (``simulator.py``), so scripts
written for its output read hwsim's: one row per SCALE-Sim layer (a depthwise op gives one row per channel,
named ``<layer>Channel_<i>`` in SCALE-Sim's order), ``LayerID`` counting those rows from 0, every line ending
with a comma. Cycles that SCALE-Sim takes from its traces print as floats (``26.0``), counts as integers,
averages in words per cycle.
"""

from __future__ import annotations

from pathlib import Path

from hwsim.errors import ConfigError
from hwsim.schedule.scalesim.layer_sim import LayerReport

COMPUTE_HEADER = (
    "LayerID, Total Cycles (incl. prefetch), Total Cycles, Stall Cycles, Overall Util %, "
    "Mapping Efficiency %, Compute Util %,"
)
BANDWIDTH_HEADER = (
    "LayerID, Avg IFMAP SRAM BW, Avg FILTER SRAM BW, Avg OFMAP SRAM BW, Avg IFMAP DRAM BW, "
    "Avg FILTER DRAM BW, Avg OFMAP DRAM BW,"
)
DETAILED_HEADER = (
    "LayerID, SRAM IFMAP Start Cycle, SRAM IFMAP Stop Cycle, SRAM IFMAP Reads, SRAM Filter "
    "Start "
    "Cycle, SRAM Filter Stop Cycle, SRAM Filter Reads, SRAM OFMAP Start Cycle, SRAM OFMAP "
    "Stop "
    "Cycle, SRAM OFMAP Writes, DRAM IFMAP Start Cycle, DRAM IFMAP Stop Cycle, DRAM IFMAP "
    "Reads, "
    "DRAM Filter Start Cycle, DRAM Filter Stop Cycle, DRAM Filter Reads, DRAM OFMAP Start "
    "Cycle, "
    "DRAM OFMAP Stop Cycle, DRAM OFMAP Writes,"
)


def compute_row(r: LayerReport) -> list[str]:
    """COMPUTE_REPORT fields of one layer (after LayerID)."""
    return [
        str(r.total_cycles_incl_prefetch),
        str(r.total_cycles),
        str(r.stall_cycles),
        repr(r.overall_util_percent),
        repr(r.mapping_efficiency_percent),
        repr(r.compute_util_percent),
    ]


def bandwidth_row(r: LayerReport) -> list[str]:
    """BANDWIDTH_REPORT fields of one layer."""
    return [repr(float(x)) for x in r.average_bandwidths()]


def detailed_row(r: LayerReport) -> list[str]:
    """DETAILED_ACCESS_REPORT fields of one layer: (start, stop, count) for 3 SRAMs, then 3 DRAM streams."""
    out = []
    for start, stop, count in (
        r.sram_ifmap,
        r.sram_filter,
        r.sram_ofmap,
        r.dram_ifmap,
        r.dram_filter,
        r.dram_ofmap,
    ):
        out += [repr(float(start)), repr(float(stop)), str(count)]
    return out


def write_reports(result, directory: str | Path) -> list[Path]:
    """Write the three reports of ``result`` (a SimResult) into ``directory``; return their paths."""
    reports = [rep for layer in result.layers for rep in layer.reports]
    missing = [
        layer.op
        for layer in result.layers
        if layer.unit == result.device.spec.mac_array.name and layer.macs and not layer.reports
    ]
    if missing or not reports:
        raise ConfigError(
            f"--report-dir: SCALE-Sim's reports need --memory-model scalesim (device "
            f"{result.device.name} uses memory_model {result.device.spec.memory_model}); "
            f"hwsim's own model has no per-channel SCALE-Sim figures"
        )
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, header, row in (
        ("COMPUTE_REPORT.csv", COMPUTE_HEADER, compute_row),
        ("BANDWIDTH_REPORT.csv", BANDWIDTH_HEADER, bandwidth_row),
        ("DETAILED_ACCESS_REPORT.csv", DETAILED_HEADER, detailed_row),
    ):
        bodies: dict[int, str] = {}  # depthwise channels share one report object: format it once
        for rep in reports:
            if id(rep) not in bodies:
                bodies[id(rep)] = ", ".join(row(rep)) + ","
        lines = [header] + [f"{i}, {bodies[id(rep)]}" for i, rep in enumerate(reports)]
        path = directory / name
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        paths.append(path)
    return paths
