"""Vela's float32 arithmetic in plain Python floats, without numpy scalars (a microsecond each, and an
import a cached Ethos-U85 run does not otherwise need).

A float32 sum, product or quotient of two float32 values is their double result rounded to float32: the
double has more than twice float32's precision plus two bits, so rounding twice gives the same float as
rounding once.
"""

from __future__ import annotations

import struct

_F32 = struct.Struct("f")
F32_EXACT = 1 << 24  # every int of at most this magnitude is a float32


def to_f32(x: float) -> float:
    """``x`` rounded to float32 (to nearest, ties to even)."""
    return _F32.unpack(_F32.pack(x))[0]
