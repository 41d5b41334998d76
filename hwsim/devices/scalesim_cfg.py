"""Read a SCALE-Sim ``.cfg`` (v2 or v3) as a device: a systolic array, its three SRAMs and a DRAM link.

SCALE-Sim (``scalesim/scale_config.py``) reads an INI file; the keys hwsim uses are, in
``[architecture_presets]``: ``ArrayHeight``, ``ArrayWidth``, ``IfmapSramSzkB``, ``FilterSramSzkB``,
``OfmapSramSzkB``, ``Dataflow`` (os/ws/is) and, when ``[run_presets] InterfaceBandwidth`` is ``USER``,
``Bandwidth`` (words per cycle). Other keys (offsets, request buffers, layout, sparsity) are accepted and
ignored. Keys are case-insensitive, as ConfigParser's are.

The device has separate ifmap/filter/ofmap SRAMs (double-buffered, as SCALE-Sim's), a DRAM homing every
tensor, 1-byte words (SCALE-Sim's ``word_size = 1``), a 1 GHz clock (SCALE-Sim counts cycles only) and a
vector unit as wide as the array for ops SCALE-Sim does not model. In CALC mode SCALE-Sim estimates the DRAM
bandwidth; hwsim then uses 10 words per cycle, SCALE-Sim's own placeholder in that mode.
"""

from __future__ import annotations

import re
from pathlib import Path

from hwsim.config import records
from hwsim.devices.schema import DeviceSpec
from hwsim.errors import ConfigError
from hwsim.schedule.systolic import SCALESIM_NAMES

CALC_MODE_WORDS_PER_CYCLE = 10


def _read_ini(path: Path) -> dict[tuple[str, str], tuple[str, int]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the file ({exc.strerror})") from None
    values: dict[tuple[str, str], tuple[str, int]] = {}
    section = ""
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        match = re.fullmatch(r"\[([^\]]+)\]", line)
        if match:
            section = match[1].strip().lower()
            continue
        match = re.fullmatch(r"([^:=]+?)\s*[:=]\s*(.*)", line)
        if not match or not section:
            raise ConfigError(f"{path}:{number}: expected '[section]' or 'key: value' (got {line!r})")
        values[(section, match[1].strip().lower())] = (match[2].strip(), number)
    return values


def load_scalesim_cfg(path: str | Path) -> DeviceSpec:
    """Parse a SCALE-Sim config into a :class:`DeviceSpec` (errors name the file, line and key)."""
    path = Path(path)
    ini = _read_ini(path)

    def get(section: str, key: str, default: str | None = None) -> tuple[str, int]:
        if (section, key.lower()) in ini:
            return ini[(section, key.lower())]
        if default is not None:
            return default, 0
        raise ConfigError(f"{path}:1: [{section}] {key}: required key is missing")

    def integer(section: str, key: str, default: str | None = None) -> int:
        text, line = get(section, key, default)
        if not re.fullmatch(r"[0-9]+", text) or int(text) < 1:
            raise ConfigError(f"{path}:{line}: [{section}] {key}: expected a positive integer (got {text!r})")
        return int(text)

    arch = "architecture_presets"
    rows, cols = integer(arch, "ArrayHeight"), integer(arch, "ArrayWidth")
    ifmap_kb, filter_kb, ofmap_kb = (integer(arch, k) for k in ("IfmapSramSzkB", "FilterSramSzkB",
                                                                 "OfmapSramSzkB"))
    df_text, df_line = get(arch, "Dataflow")
    if df_text.lower() not in SCALESIM_NAMES:
        raise ConfigError(f"{path}:{df_line}: [{arch}] Dataflow: expected os, ws or is (got {df_text!r})")
    mode, _ = get("run_presets", "InterfaceBandwidth", "CALC")
    bandwidth = float(CALC_MODE_WORDS_PER_CYCLE)
    if mode.upper() == "USER":
        text, line = get(arch, "Bandwidth")
        first = text.split(",")[0].strip()
        if not re.fullmatch(r"[0-9]+(\.[0-9]*)?", first) or float(first) <= 0:
            raise ConfigError(f"{path}:{line}: [{arch}] Bandwidth: expected a positive number (got {text!r})")
        bandwidth = float(first)
    src = f"SCALE-Sim config {path.name}"
    spec = {
        "schema_version": 1, "name": path.stem,
        "description": f"SCALE-Sim array {rows}x{cols} ({df_text}) from {path}",
        "clock_mhz": 1000.0,
        "mac_array": {"rows": rows, "columns": cols, "dataflow": SCALESIM_NAMES[df_text.lower()],
                      "accumulator_bits": 32, "source": src,
                      "precisions": [{"weights_bits": 8, "activations_bits": 8, "macs_per_pe_per_cycle": 1}]},
        "vector_units": [{"name": "vector", "vector_bits": 8 * cols, "ops": ["*"],
                          "source": "not in SCALE-Sim; as wide as the array"}],
        "dma": {"engines": 3, "source": "SCALE-Sim fills ifmap, filter and ofmap buffers independently"},
        "memories": [
            {"name": "dram", "kind": "off_chip", "read_bandwidth_bytes_per_cycle": bandwidth,
             "write_bandwidth_bytes_per_cycle": bandwidth, "read_ports": 3, "write_ports": 1,
             "holds": ["weights", "inputs", "outputs"], "homes": ["weights", "activations"],
             "source": f"{src}: Bandwidth ({mode})"},
            {"name": "ifmap_sram", "kind": "sram", "size_bytes": ifmap_kb * 1024, "holds": ["inputs"],
             "read_bandwidth_bytes_per_cycle": rows, "write_bandwidth_bytes_per_cycle": bandwidth,
             "source": f"{src}: IfmapSramSzkB"},
            {"name": "filter_sram", "kind": "sram", "size_bytes": filter_kb * 1024, "holds": ["weights"],
             "read_bandwidth_bytes_per_cycle": cols, "write_bandwidth_bytes_per_cycle": bandwidth,
             "source": f"{src}: FilterSramSzkB"},
            {"name": "ofmap_sram", "kind": "sram", "size_bytes": ofmap_kb * 1024, "holds": ["outputs"],
             "read_bandwidth_bytes_per_cycle": bandwidth, "write_bandwidth_bytes_per_cycle": cols,
             "source": f"{src}: OfmapSramSzkB"},
            {"name": "rf", "kind": "register_file", "holds": ["weights", "inputs", "outputs"],
             "source": "one register per operand per PE"},
        ],
    }
    try:
        return records.validate(DeviceSpec, spec)
    except records.RecordError as exc:  # pragma: no cover - the values above were checked one by one
        raise ConfigError(f"{path}: {exc.message}") from None
