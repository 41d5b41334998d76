"""Warnings for device values far outside every shipped device (``accelerators/*.yaml``).

The schema refuses what cannot be (zero, negative or non-finite clocks, sizes and bandwidths); a value that
can be but is more than :data:`FACTOR` times beyond the range the shipped devices span (a 10^9 x 10^9 MAC
array, a 1-byte SRAM, a 100 kV supply) is probably a typo or a unit mistake, and every figure computed from it
is an extrapolation. Each such field gets one ``hwsim: warning:`` line naming it. :data:`SHIPPED_RANGES` is
a table (loading every device to compute it would slow every command); a test checks it against the files.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Iterator

from hwsim.errors import HwsimWarning

FACTOR = 100
# field -> (smallest, largest) over the shipped devices ("[]": each item of a list, "[sram]": items of a kind)
SHIPPED_RANGES: dict[str, tuple[float, float]] = {
    "clock_mhz": (500.0, 1000.0),
    "mac_array.rows": (8, 64),
    "mac_array.columns": (4, 64),
    "vector_units[].vector_bits": (16, 1024),
    "memories[sram].size_bytes": (16384, 8388608),
    "memories[].read_bandwidth_bytes_per_cycle": (0.94, 256.0),
    "memories[].write_bandwidth_bytes_per_cycle": (0.94, 128.0),
    "technology.node_nm": (7.0, 28.0),
    "technology.voltage_v": (0.75, 0.9),
}


def device_values(spec: Any) -> Iterator[tuple[str, tuple, float]]:
    """``(table key, location, value)`` of every field :data:`SHIPPED_RANGES` covers, for a device spec."""
    yield "clock_mhz", ("clock_mhz",), spec.clock_mhz
    yield "mac_array.rows", ("mac_array", "rows"), spec.mac_array.rows
    yield "mac_array.columns", ("mac_array", "columns"), spec.mac_array.columns
    for i, v in enumerate(spec.vector_units):
        yield "vector_units[].vector_bits", ("vector_units", i, "vector_bits"), v.vector_bits
    for i, m in enumerate(spec.memories or ()):
        if m.kind == "sram" and m.size_bytes is not None:
            yield "memories[sram].size_bytes", ("memories", i, "size_bytes"), m.size_bytes
        for field in ("read_bandwidth_bytes_per_cycle", "write_bandwidth_bytes_per_cycle"):
            if getattr(m, field) is not None:
                yield f"memories[].{field}", ("memories", i, field), getattr(m, field)
    if spec.technology is not None:
        yield "technology.node_nm", ("technology", "node_nm"), spec.technology.node_nm
        yield "technology.voltage_v", ("technology", "voltage_v"), spec.technology.voltage_v


def outside(key: str, value: float) -> str | None:
    """Why ``value`` of field ``key`` is doubtful, or None when it is within :data:`FACTOR` x the range.

    >>> outside("memories[sram].size_bytes", 1)
    '1 is below 1/100 of the smallest shipped device (16384..8.38861e+06)'
    >>> outside("clock_mhz", 800) is None
    True
    """
    lo, hi = SHIPPED_RANGES[key]
    if value < lo / FACTOR:
        return f"{value:g} is below 1/{FACTOR} of the smallest shipped device ({lo:g}..{hi:g})"
    if value > hi * FACTOR:
        return f"{value:g} is above {FACTOR}x the largest shipped device ({lo:g}..{hi:g})"
    return None


def warn_doubtful(spec: Any, path: str | Path | None = None, where: str = "", base: Any = None) -> int:
    """Warn (:class:`~hwsim.errors.HwsimWarning`) once per doubtful field of ``spec``; how many there were.

    ``path`` is the device file (its lines are read only when there is something to say); ``where``
    prefixes fields set elsewhere (a sweep axis, ``--arena-cache-size``); fields equal to those of ``base``
    (the device before overrides, warned about when it was loaded) are skipped.
    """
    from hwsim.config.yamlio import format_loc

    before = {loc: value for _, loc, value in device_values(base)} if base is not None else {}
    found = [
        (loc, why)
        for key, loc, value in device_values(spec)
        if before.get(loc) != value and (why := outside(key, value))
    ]
    lines = _lines(path) if found and path else None
    for loc, why in found:
        at = f"{path}:{_line(lines, loc)}: " if lines is not None else f"{path}: " if path else ""
        warnings.warn(
            HwsimWarning(f"{at}{where}{format_loc(loc)}: {why}; its results are an extrapolation"),
            stacklevel=2,
        )
    return len(found)


def _lines(path: str | Path) -> dict | None:
    from hwsim.config.yamlio import load_yaml_with_lines

    path = Path(path)
    if path.suffix not in (".yaml", ".yml"):
        return None
    return load_yaml_with_lines(path)[1]


def _line(lines: dict, loc: tuple) -> int:
    while loc and loc not in lines:
        loc = loc[:-1]
    return lines.get(loc, 1)
