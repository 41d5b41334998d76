"""Shapes and kernels as the Ethos-U estimator handles them: NHWC tuples, rounding helpers, kernel geometry.

Feature-map shapes are ``(n, h, w, c)`` tuples of ints; blocks are ``(h, w, c)``. The helpers are the
integer rounding rules Vela uses everywhere (round up to a multiple, divide rounding up).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

from hwsim.schedule.ethos_u.value_ids import fields_id

Shape = tuple[int, int, int, int]


def div_up(a: int, b: int) -> int:
    """``ceil(a / b)`` for positive ints."""
    return -(-a // b)


def round_up(a: int, b: int) -> int:
    """``a`` rounded up to a multiple of ``b``."""
    return div_up(a, b) * b


def round_down(a: int, b: int) -> int:
    """``a`` rounded down to a multiple of ``b``."""
    return (a // b) * b


def elements(shape: tuple[int, ...]) -> int:
    """Number of elements of a shape."""
    return math.prod(shape)


def with_depth(shape: Shape, c: int) -> Shape:
    """``shape`` with its depth replaced."""
    return (shape[0], shape[1], shape[2], c)


def as_nhwc(shape: tuple[int | None, ...]) -> Shape:
    """A tensor shape padded or folded to 4-D NHWC (leading axes fold into N; unknown sizes count 1)."""
    dims = [int(d or 1) for d in shape] or [1]
    while len(dims) < 4:
        dims.insert(0, 1)
    if len(dims) > 4:
        dims = [math.prod(dims[:-3])] + dims[-3:]
    return (dims[0], dims[1], dims[2], dims[3])


@dataclass(frozen=True)
class Kernel:
    """A kernel's size, stride and dilation (x = width, y = height) and its padding (top, left, bottom,
    right)."""

    w: int = 1
    h: int = 1
    stride_x: int = 1
    stride_y: int = 1
    dilation_x: int = 1
    dilation_y: int = 1
    pad_top: int = 0
    pad_left: int = 0
    pad_bottom: int = 0
    pad_right: int = 0

    @cached_property
    def key(self) -> int:
        """The fields' values as one id (:mod:`.value_ids`), made once: memo keys hash it in one step."""
        return fields_id(self)

    @property
    def area(self) -> int:
        """Taps of the kernel."""
        return self.w * self.h

    @property
    def dilated_w(self) -> int:
        """Width the dilated kernel spans."""
        return (self.w - 1) * self.dilation_x + 1

    @property
    def dilated_h(self) -> int:
        """Height the dilated kernel spans."""
        return (self.h - 1) * self.dilation_y + 1


UNIT_KERNEL = Kernel()


def required_input_size(value: int, stride: int, border: int, upscale: int = 1, rounding: int = 0) -> int:
    """Input rows (or columns) needed for ``value`` output rows: ``ceil(((value-1)*stride + border +
    rounding) / upscale)``."""
    return math.ceil(((value - 1) * stride + border + rounding) / upscale)
