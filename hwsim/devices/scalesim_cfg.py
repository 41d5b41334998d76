"""Read a SCALE-Sim ``.cfg`` (v2 or v3) as a device: a systolic array, its three SRAMs and a DRAM link.

SCALE-Sim 3.0.0 (``scalesim/scale_config.py``) reads an INI file. Every key it reads is either modelled or
refused here with ``file:line: [section] Key: message``; a key it does not read is refused too (a typo would
otherwise be ignored by both tools). Keys are case-insensitive, as ConfigParser's are.

=========================  ===============================  =================================================
section                    key                              in hwsim
=========================  ===============================  =================================================
general                    run_name                         no effect: SCALE-Sim names its output folder so;
                                                            hwsim writes to ``--report-dir``
run_presets                InterfaceBandwidth               ``CALC`` or ``USER`` (case-sensitive, as SCALE-Sim
                                                            compares it; anything else is refused)
run_presets                UseRamulatorTrace                ``False``; ``True`` (DRAM latencies from Ramulator
                                                            trace files) is refused
architecture_presets       ArrayHeight, ArrayWidth          the array
architecture_presets       Ifmap/Filter/OfmapSramSzkB       the three SRAM sizes
architecture_presets       Ifmap/Filter/OfmapOffset         the operands' addresses (``memory_model:
scalesim``) architecture_presets       Dataflow                         os, ws or is architecture_presets
Bandwidth                        USER: DRAM words per cycle (its first value is the OFMAP drain rate of the
scalesim memory model) architecture_presets       Read/WriteRequestBuffer          no effect: SCALE-Sim uses
them only with Ramulator layout                     IfmapCustomLayout,               ``False``; ``True``
(bank-conflict modelling) is FilterCustomLayout               refused layout
Ifmap/FilterSRAMBankBandwidth    USER: the IFMAP/filter DRAM fetch rate of the scalesim memory model
(SCALE-Sim reads them so) layout                     Ifmap/FilterSRAMBankNum          USER: must divide the
bank bandwidth (SCALE-Sim asserts it); no other effect without custom layout layout
Ifmap/FilterSRAMBankPort         no effect without custom layout sparsity                   SparsitySupport
``false``; ``true`` is refused sparsity                   SparseRep, OptimizedMapping,     no effect: read
only with sparsity support BlockSize, RandomNumberGeneratorSeed =========================
===============================  =================================================

The device has separate ifmap/filter/ofmap SRAMs, a DRAM homing every tensor, 1-byte words (SCALE-Sim's
``word_size = 1``), a 1 GHz clock (SCALE-Sim counts cycles only) and a vector unit as wide as the array for
ops SCALE-Sim does not model. Its ``memory_model`` is ``hwsim`` (pass ``--memory-model scalesim`` for
SCALE-Sim's); hwsim's own model takes 10 words per cycle from DRAM in CALC mode, SCALE-Sim's figure there.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path

from hwsim.config import records
from hwsim.devices.schema import DeviceSpec
from hwsim.config.textfile import read_text
from hwsim.errors import ConfigError
from hwsim.devices.names import SCALESIM_NAMES

CALC_MODE_WORDS_PER_CYCLE = 10

KEYS = {  # section -> canonical key spellings SCALE-Sim 3.0.0 reads
    "general": ("run_name",),
    "run_presets": ("InterfaceBandwidth", "UseRamulatorTrace"),
    "architecture_presets": (
        "ArrayHeight",
        "ArrayWidth",
        "IfmapSramSzkB",
        "FilterSramSzkB",
        "OfmapSramSzkB",
        "IfmapOffset",
        "FilterOffset",
        "OfmapOffset",
        "Dataflow",
        "Bandwidth",
        "ReadRequestBuffer",
        "WriteRequestBuffer",
    ),
    "layout": (
        "IfmapCustomLayout",
        "FilterCustomLayout",
        "IfmapSRAMBankBandwidth",
        "IfmapSRAMBankNum",
        "IfmapSRAMBankPort",
        "FilterSRAMBankBandwidth",
        "FilterSRAMBankNum",
        "FilterSRAMBankPort",
    ),
    "sparsity": (
        "SparsitySupport",
        "SparseRep",
        "OptimizedMapping",
        "BlockSize",
        "RandomNumberGeneratorSeed",
    ),
}
_CANONICAL = {(s, k.lower()): k for s, keys in KEYS.items() for k in keys}


def _read_ini(path: Path) -> dict[tuple[str, str], tuple[str, int]]:
    """``{(section, key): (value, line)}``; unknown sections and keys, and repeated keys, are refused."""
    text = read_text(path)
    values: dict[tuple[str, str], tuple[str, int]] = {}
    section = ""
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        match = re.fullmatch(r"\[([^\]]+)\]", line)
        if match:
            section = match[1].strip().lower()
            if section not in KEYS:
                hint = _hint(section, list(KEYS))
                why = (
                    " (hwsim takes the topology on its command line)" if section == "network_presets" else ""
                )
                raise ConfigError(
                    f"{path}:{number}: [{match[1].strip()}]: unknown section{why}; "
                    f"{hint}valid: "
                    f"{', '.join(KEYS)}"
                )
            continue
        match = re.fullmatch(r"([^:=]+?)\s*[:=]\s*(.*)", line)
        if not match or not section:
            raise ConfigError(f"{path}:{number}: expected '[section]' or 'key: value' (got {line!r})")
        key = match[1].strip().lower()
        if (section, key) not in _CANONICAL:
            hint = _hint(match[1].strip(), list(KEYS[section]))
            raise ConfigError(
                f"{path}:{number}: [{section}] {match[1].strip()}: SCALE-Sim 3.0.0 does not "
                "read "
                f"this key; {hint}valid in [{section}]: {', '.join(KEYS[section])}"
            )
        if (section, key) in values:
            raise ConfigError(
                f"{path}:{number}: [{section}] {_CANONICAL[(section, key)]}: given twice "
                "(first on "
                f"line {values[(section, key)][1]})"
            )
        values[(section, key)] = (match[2].strip(), number)
    return values


def _hint(name: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(name.lower(), [v.lower() for v in valid], n=1)
    if not close:
        return ""
    return f"did you mean {next(v for v in valid if v.lower() == close[0])!r}? "


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

    def refuse(section: str, key: str, message: str) -> ConfigError:
        text, line = get(section, key)
        return ConfigError(f"{path}:{line}: [{section}] {key}: {message} (got {text!r})")

    def integer(section: str, key: str, default: str | None = None, minimum: int = 1) -> int:
        text, line = get(section, key, default)
        if not re.fullmatch(r"[0-9]+", text) or int(text) < minimum:
            what = "a positive integer" if minimum else "a non-negative integer"
            raise ConfigError(f"{path}:{line}: [{section}] {key}: expected {what} (got {text!r})")
        return int(text)

    def flag(section: str, key: str, yes: str, no: str, default: str, why: str) -> None:
        text, _ = get(section, key, default)
        if text == yes:
            raise refuse(section, key, why)
        if text != no:
            raise refuse(section, key, f"expected {yes} or {no}")

    arch, lay = "architecture_presets", "layout"
    rows, cols = integer(arch, "ArrayHeight"), integer(arch, "ArrayWidth")
    ifmap_kb, filter_kb, ofmap_kb = (
        integer(arch, k) for k in ("IfmapSramSzkB", "FilterSramSzkB", "OfmapSramSzkB")
    )
    offsets = [
        integer(arch, k, d, minimum=0)
        for k, d in (("IfmapOffset", "0"), ("FilterOffset", "10000000"), ("OfmapOffset", "20000000"))
    ]
    for key in ("ReadRequestBuffer", "WriteRequestBuffer"):
        integer(arch, key, "32")
    df_text, df_line = get(arch, "Dataflow")
    if df_text.lower() not in SCALESIM_NAMES:
        raise ConfigError(f"{path}:{df_line}: [{arch}] Dataflow: expected os, ws or is (got {df_text!r})")
    mode, mode_line = get("run_presets", "InterfaceBandwidth", "CALC")
    if mode not in ("CALC", "USER"):
        raise ConfigError(
            f"{path}:{mode_line}: [run_presets] InterfaceBandwidth: expected CALC or USER "
            "(SCALE-Sim compares it case-sensitively and stops on anything else) (got "
            f"{mode!r})"
        )
    flag(
        "run_presets",
        "UseRamulatorTrace",
        "True",
        "False",
        "False",
        "DRAM latencies from Ramulator trace files are not modelled",
    )
    flag(
        lay,
        "IfmapCustomLayout",
        "True",
        "False",
        "False",
        "custom SRAM layouts (bank conflicts) are not modelled",
    )
    flag(
        lay,
        "FilterCustomLayout",
        "True",
        "False",
        "False",
        "custom SRAM layouts (bank conflicts) are not modelled",
    )
    sparse, _ = get("sparsity", "SparsitySupport", "false")
    if sparse.lower() == "true":
        raise refuse("sparsity", "SparsitySupport", "sparse filters are not modelled")
    if sparse.lower() != "false":
        raise refuse("sparsity", "SparsitySupport", "expected true or false")
    for key in ("IfmapSRAMBankPort", "FilterSRAMBankPort"):
        integer(lay, key, "2")
    fetch = {}
    for operand in ("Ifmap", "Filter"):
        bank_bw = integer(lay, f"{operand}SRAMBankBandwidth", "10")
        banks = integer(lay, f"{operand}SRAMBankNum", "10")
        if mode == "USER" and bank_bw % banks:
            raise refuse(
                lay,
                f"{operand}SRAMBankNum",
                f"must divide {operand}SRAMBankBandwidth ({bank_bw}); SCALE-Sim stops on this in USER mode",
            )
        fetch[operand] = bank_bw
    bandwidth = float(CALC_MODE_WORDS_PER_CYCLE)
    ofmap_words = CALC_MODE_WORDS_PER_CYCLE
    if mode == "USER":
        text, line = get(arch, "Bandwidth")
        first = text.split(",")[0].strip()
        if not re.fullmatch(r"[0-9]+", first) or int(first) <= 0:
            raise ConfigError(
                f"{path}:{line}: [{arch}] Bandwidth: expected positive integers, "
                "comma-separated "
                f"(got {text!r})"
            )
        bandwidth = float(first)
        ofmap_words = int(first)
    src = f"SCALE-Sim config {path.name}"
    spec = {
        "schema_version": 1,
        "name": path.stem,
        "description": f"SCALE-Sim array {rows}x{cols} ({df_text}) from {path}",
        "clock_mhz": 1000.0,
        "mac_array": {
            "rows": rows,
            "columns": cols,
            "dataflow": SCALESIM_NAMES[df_text.lower()],
            "accumulator_bits": 32,
            "source": src,
            "precisions": [{"weights_bits": 8, "activations_bits": 8, "macs_per_pe_per_cycle": 1}],
        },
        "vector_units": [
            {
                "name": "vector",
                "vector_bits": 8 * cols,
                "ops": ["*"],
                "source": "not in SCALE-Sim; as wide as the array",
            }
        ],
        "dma": {"engines": 3, "source": "SCALE-Sim fills ifmap, filter and ofmap buffers independently"},
        "memories": [
            {
                "name": "dram",
                "kind": "off_chip",
                "read_bandwidth_bytes_per_cycle": bandwidth,
                "write_bandwidth_bytes_per_cycle": bandwidth,
                "read_ports": 3,
                "write_ports": 1,
                "holds": ["weights", "inputs", "outputs"],
                "homes": ["weights", "activations"],
                "technology": "ddr3",
                "source": f"{src}: Bandwidth ({mode}); technology ddr3 is an assumption (SCALE-Sim names no "
                "DRAM)",
            },
            {
                "name": "ifmap_sram",
                "kind": "sram",
                "size_bytes": ifmap_kb * 1024,
                "holds": ["inputs"],
                "read_bandwidth_bytes_per_cycle": rows,
                "write_bandwidth_bytes_per_cycle": bandwidth,
                "source": f"{src}: IfmapSramSzkB",
            },
            {
                "name": "filter_sram",
                "kind": "sram",
                "size_bytes": filter_kb * 1024,
                "holds": ["weights"],
                "read_bandwidth_bytes_per_cycle": cols,
                "write_bandwidth_bytes_per_cycle": bandwidth,
                "source": f"{src}: FilterSramSzkB",
            },
            {
                "name": "ofmap_sram",
                "kind": "sram",
                "size_bytes": ofmap_kb * 1024,
                "holds": ["outputs"],
                "read_bandwidth_bytes_per_cycle": bandwidth,
                "write_bandwidth_bytes_per_cycle": cols,
                "source": f"{src}: OfmapSramSzkB",
            },
            {
                "name": "rf",
                "kind": "register_file",
                "holds": ["weights", "inputs", "outputs"],
                "source": "one register per operand per PE",
            },
        ],
        "scalesim": {
            "interface_bandwidth": mode,
            "ifmap_words_per_cycle": fetch["Ifmap"],
            "filter_words_per_cycle": fetch["Filter"],
            "ofmap_words_per_cycle": ofmap_words,
            "ifmap_offset": offsets[0],
            "filter_offset": offsets[1],
            "ofmap_offset": offsets[2],
            "source": f"{src}: InterfaceBandwidth, Bandwidth, [layout] bank bandwidths, offsets",
        },
    }
    try:
        return records.validate(DeviceSpec, spec)
    except records.RecordError as exc:  # pragma: no cover - the values above were checked one by one
        raise ConfigError(f"{path}: {exc.message}") from None
