"""Encoded size of a weight stream under Arm's MLW codec, as Vela 5.2.0 runs it.

Placeholder while the ordering is validated.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SYMBOLS = 512  # weight values -256..255, as the codec indexes them


@dataclass(frozen=True)
class CodecResult:
    """One encoded stream: its size in bytes (padded to 16), the values it contains, zeros sent as runs."""

    size_bytes: int
    used: np.ndarray
    zero_count: int


def encode(values: np.ndarray) -> CodecResult:
    raise NotImplementedError


def encode_fast(values: np.ndarray, no_palette: bool = False) -> int:
    raise NotImplementedError
