"""A simulation's results as a file other tools read: JSON (totals and a ``layers`` list) or CSV (a row per
layer).

Both formats carry the same per-layer fields: ``operator_index`` (the op's index in the model file, from its
name ``"12:CONV_2D"``; null where the op has none), so that per-layer numbers can be matched with another
tool's (Vela's) by index; ``name`` and ``kind``; ``unit``, ``"npu"`` for ops the device runs and ``"cpu"``
for ops a performance model leaves to the host CPU (``LayerPlan.unit == "cpu"``); ``cpu_reason``, the rule
that put a CPU op there (Vela's, on Ethos-U devices; null for NPU ops); ``cycles``, ``macs``; and
``<level>_read_bytes`` / ``<level>_write_bytes`` for every memory level of the device, outermost first (from
the layer's action counts, so register files count too).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import TYPE_CHECKING

from hwsim.errors import ConfigError
from hwsim.workload.graph import operator_index

if TYPE_CHECKING:
    from hwsim.schedule.simulate import SimResult

SUFFIXES = (".json", ".csv")
LAYER_FIELDS = ("operator_index", "name", "kind", "unit", "cpu_reason", "cycles", "macs")


def check_output_path(path: str | Path) -> Path:
    """``path`` if a results file (.json or .csv) can be written there; checked before any work, so a long run
    cannot end in a failed write (:func:`hwsim.guards.check_output_file`)."""
    from hwsim.guards import check_output_file

    return check_output_file(path, "--output", SUFFIXES)


def memory_columns(result: SimResult) -> list[str]:
    """The byte columns of ``result``'s device: read and write of each memory level, outermost first."""
    return [f"{level.name}_{action}_bytes" for level in result.device.levels for action in ("read", "write")]


def layer_rows(result: SimResult) -> list[dict]:
    """One dict per layer, in the simulated order (see the module docstring for the fields)."""
    columns = memory_columns(result)
    rows = []
    for layer in result.layers:
        moved = {f"{level}_{action}_bytes": n for (level, action), n in layer.counts.bytes_moved().items()}
        cpu = layer.unit == "cpu"
        values = (
            operator_index(layer.op),
            layer.op,
            layer.kind,
            "cpu" if cpu else "npu",
            layer.mapping.reason if cpu else None,
            layer.cycles,
            layer.macs,
        )
        rows.append({**dict(zip(LAYER_FIELDS, values)), **{c: moved.get(c, 0) for c in columns}})
    return rows


def summary(result: SimResult) -> dict:
    """The run's totals: model, device, clock, latency, cycles and MACs."""
    return {
        "model": result.model,
        "device": result.device.name,
        "clock_mhz": result.device.clock_mhz,
        "latency_ms": result.time_ms,
        "cycles": result.cycles,
        "macs": result.macs,
    }


def write_results(path: str | Path, totals: dict, rows: list[dict]) -> Path:
    """Write ``totals`` and ``rows`` as JSON (``{**totals, "layers": rows}``) or the rows as CSV, by
    suffix."""
    path = Path(path)
    try:
        if path.suffix.lower() == ".json":
            path.write_text(json.dumps({**totals, "layers": rows}, indent=1) + "\n", encoding="utf-8")
        else:
            with path.open("w", newline="", encoding="utf-8") as fh:
                writer = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else list(LAYER_FIELDS))
                writer.writeheader()
                writer.writerows(rows)
    except OSError as exc:
        raise ConfigError(f"--output {path}: cannot write the results ({exc.strerror})") from None
    return path
