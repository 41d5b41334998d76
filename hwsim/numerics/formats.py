"""Integer formats, rounding and overflow modes: the vocabulary every kernel is parameterised by.

Enums are ``IntEnum`` so that numba kernels receive them as plain integers.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from hwsim.errors import ConfigError


class RoundingMode(enum.IntEnum):
    """How a real number becomes an integer.

    Tie cases (the value halfway between two integers) for x in [-2.5, -1.5, -0.5, 0.5, 1.5, 2.5]:

    ============== ===============================
    HALF_EVEN      -2, -2, -0,  0, 2, 2   (IEEE default, numpy.rint, ONNX, XNNPACK)
    HALF_AWAY      -3, -2, -1,  1, 2, 3   (C round(), TFLite's TfLiteRound)
    HALF_UP        -2, -1,  0,  1, 2, 3   (floor(x + 0.5); gemmlowp-style "add half then shift")
    FLOOR          -3, -2, -1,  0, 1, 2   (arithmetic right shift)
    CEIL           -2, -1,  0,  1, 2, 3
    TO_ZERO        -2, -1,  0,  0, 1, 2   (C integer division, truncation)
    STOCHASTIC     floor(x + u), u ~ U[0, 1) from a seeded generator: unbiased in expectation
    ============== ===============================
    """

    HALF_EVEN = 0
    HALF_AWAY = 1
    HALF_UP = 2
    FLOOR = 3
    CEIL = 4
    TO_ZERO = 5
    STOCHASTIC = 6


class OverflowMode(enum.IntEnum):
    """What a register does with a value outside its range.

    SATURATE clamps to [min, max]; WRAP keeps the low ``bits`` bits (two's complement);
    EXACT keeps the true value (a wider register) and only counts how often the range was left.
    """

    SATURATE = 0
    WRAP = 1
    EXACT = 2


class Granularity(enum.Enum):
    """Which elements share one scale and zero point."""

    PER_TENSOR = "per_tensor"
    PER_CHANNEL = "per_channel"
    PER_GROUP = "per_group"


def parse_enum(enum_type: type[enum.Enum], value: object, what: str) -> enum.Enum:
    """Accept an enum member or its (case-insensitive) name, e.g. ``"half_even"``; name the field on error."""
    if isinstance(value, enum_type):
        return value
    if isinstance(value, str):
        key = value.strip().upper().replace("-", "_")
        if key in enum_type.__members__:
            return enum_type[key]
        if isinstance(enum_type, type) and issubclass(enum_type, enum.Enum):
            for member in enum_type:
                if str(member.value).upper() == key:
                    return member
    valid = ", ".join(m.name.lower() for m in enum_type)
    raise ConfigError(f"{what}: expected one of {valid} (got {value!r})")


@dataclass(frozen=True)
class IntFormat:
    """A two's-complement (signed) or plain binary (unsigned) integer register of ``bits`` bits (2..64).

    Data formats go up to 32 bits; accumulators up to 64 (TFLite's 16x8 kernels accumulate in int64).

    ``narrow_range`` drops the most negative code of a signed format so the range is symmetric
    (int8 narrow: [-127, 127]), as TFLite requires for int8 weights.

    >>> IntFormat(8).min, IntFormat(8).max
    (-128, 127)
    >>> IntFormat(8, narrow_range=True).min
    -127
    >>> IntFormat(4, signed=False).max, IntFormat(4, signed=False, narrow_range=True).min
    (15, 1)
    >>> IntFormat(32).storage_dtype, IntFormat(4).storage_dtype, IntFormat(9, signed=False).storage_dtype
    (dtype('int32'), dtype('int8'), dtype('uint16'))
    """

    bits: int
    signed: bool = True
    narrow_range: bool = False

    def __post_init__(self) -> None:
        if (
            not isinstance(self.bits, (int, np.integer))
            or not 2 <= self.bits <= 64
            or (self.bits == 64 and not self.signed)
        ):
            raise ConfigError(f"bits: expected an integer from 2 to 64 (63 unsigned) (got {self.bits!r})")

    @property
    def min(self) -> int:
        """Smallest representable code."""
        if self.signed:
            return -(1 << (self.bits - 1)) + (1 if self.narrow_range else 0)
        return 1 if self.narrow_range else 0

    @property
    def max(self) -> int:
        """Largest representable code."""
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    @property
    def storage_dtype(self) -> np.dtype:
        """The smallest numpy dtype holding every code (int4 values are stored one per int8)."""
        for width in (8, 16, 32, 64):
            if self.bits <= width:
                return np.dtype(f"{'int' if self.signed else 'uint'}{width}")
        raise AssertionError("unreachable: bits <= 64")  # pragma: no cover

    @property
    def name(self) -> str:
        """Short name such as ``int8``, ``uint4`` or ``int8n`` (narrow)."""
        return f"{'int' if self.signed else 'uint'}{self.bits}{'n' if self.narrow_range else ''}"

    @classmethod
    def parse(cls, text: str) -> "IntFormat":
        """Parse ``int8``, ``uint4``, ``int8n`` (narrow range) or ``i16``.

        >>> IntFormat.parse("uint8"), IntFormat.parse("int4n").narrow_range
        (IntFormat(bits=8, signed=False, narrow_range=False), True)
        """
        raw = text.strip().lower()
        narrow = raw.endswith("n") and not raw.endswith("in")
        core = raw[:-1] if narrow else raw
        for prefix, signed in (("uint", False), ("int", True), ("u", False), ("i", True)):
            if core.startswith(prefix) and core[len(prefix) :].isdigit():
                return cls(int(core[len(prefix) :]), signed, narrow)
        raise ConfigError(f"integer format: expected a name like int8, uint4 or int8n (got {text!r})")

    def __str__(self) -> str:
        return self.name


INT32 = IntFormat(32)
INT16 = IntFormat(16)
INT8 = IntFormat(8)
UINT8 = IntFormat(8, signed=False)
INT4 = IntFormat(4)
