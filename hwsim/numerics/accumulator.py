"""The accumulator register (:class:`Accumulator`) and what a MAC op returns (:class:`MacResult`).

No kernels here: a graph file names its ops' accumulators, and loading it must not load numba.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hwsim.errors import ConfigError
from hwsim.numerics.formats import INT32, IntFormat, OverflowMode, parse_enum


@dataclass(frozen=True)
class Accumulator:
    """The accumulator register: its format, what it does on overflow, and the order of accumulation.

    ``order`` is a permutation of the reduction index (None: 0, 1, ..., K-1), since with a narrow saturating
    register the result depends on it (a dataflow decides it). ``bias_last`` adds the bias after the
    products instead of loading it first. EXACT keeps the true sum and counts the excursions.
    """

    fmt: IntFormat = INT32
    overflow: OverflowMode = OverflowMode.EXACT
    order: tuple[int, ...] | None = None
    bias_last: bool = False

    def __post_init__(self) -> None:
        fmt = self.fmt if isinstance(self.fmt, IntFormat) else IntFormat.parse(self.fmt)
        object.__setattr__(self, "fmt", fmt)
        object.__setattr__(self, "overflow", parse_enum(OverflowMode, self.overflow, "accumulator.overflow"))

    def k_order(self, depth: int) -> np.ndarray:
        """The reduction order as an index array, checked to be a permutation of range(depth)."""
        if self.order is None:
            return np.arange(depth, dtype=np.int64)
        order = np.asarray(self.order, np.int64)
        if order.shape != (depth,) or not np.array_equal(np.sort(order), np.arange(depth)):
            raise ConfigError(
                f"accumulator.order: expected a permutation of range({depth}) (got {len(order)} indices)"
            )
        return order


@dataclass(frozen=True)
class MacResult:
    """Accumulators (int64 holding the register's value) and how many accumulations left its range."""

    acc: np.ndarray
    overflows: int = 0
    path: str = field(default="ordered", compare=False)
