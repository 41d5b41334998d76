"""Window geometry of convolutions and pools: padding, stride, dilation -> output size.

Plain Python (no numba, no kernels), so shape inference in the importers can use it without loading the
integer datapath.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwsim.errors import ConfigError
from hwsim.numerics.kernel_records import KernelWindow


def output_size(size: int, kernel: int, stride: int, dilation: int, pad_before: int, pad_after: int) -> int:
    """Number of output positions along one spatial axis."""
    effective = dilation * (kernel - 1) + 1
    return (size + pad_before + pad_after - effective) // stride + 1


def resolve_padding(
    padding,
    in_hw: tuple[int, int],
    kernel_hw: tuple[int, int],
    stride: tuple[int, int],
    dilation: tuple[int, int],
) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) from "valid", "same" (TFLite/ONNX SAME_UPPER: extra row at the end)
    or 4 ints."""
    if isinstance(padding, str):
        mode = padding.lower()
        if mode == "valid":
            return (0, 0, 0, 0)
        if mode == "same":
            pads = []
            for size, k, s, d in zip(in_hw, kernel_hw, stride, dilation):
                out = -(-size // s)
                total = max((out - 1) * s + d * (k - 1) + 1 - size, 0)
                pads += [total // 2, total - total // 2]
            return (pads[0], pads[1], pads[2], pads[3])
        raise ConfigError(
            f"padding: expected 'valid', 'same' or (top, bottom, left, right) (got {padding!r})"
        )
    pads = tuple(int(p) for p in padding)
    if len(pads) != 4 or min(pads) < 0:
        raise ConfigError(
            f"padding: expected 4 non-negative ints (top, bottom, left, right) (got {padding!r})"
        )
    return pads  # type: ignore[return-value]


def pair(value, name: str) -> tuple[int, int]:
    pair = (value, value) if np.isscalar(value) else tuple(value)
    if len(pair) != 2 or min(pair) < 1:
        raise ConfigError(f"{name}: expected a positive int or a pair of them (got {value!r})")
    return int(pair[0]), int(pair[1])


@dataclass(frozen=True)
class ConvGeometry:
    """Resolved spatial geometry of a 2-D convolution or pooling window."""

    kernel: tuple[int, int]
    stride: tuple[int, int]
    dilation: tuple[int, int]
    pads: tuple[int, int, int, int]
    out_hw: tuple[int, int]

    def window(self) -> KernelWindow:
        """The geometry as the depthwise kernels take it (the bottom and right padding follow from it)."""
        return KernelWindow(*self.stride, *self.dilation, self.pads[0], self.pads[2], *self.out_hw)


def conv_geometry(in_hw, kernel_hw, stride=1, padding="valid", dilation=1) -> ConvGeometry:
    """Check and resolve stride, dilation and padding into output size."""
    stride, dilation = pair(stride, "stride"), pair(dilation, "dilation")
    pads = resolve_padding(padding, in_hw, kernel_hw, stride, dilation)
    out_h = output_size(in_hw[0], kernel_hw[0], stride[0], dilation[0], pads[0], pads[1])
    out_w = output_size(in_hw[1], kernel_hw[1], stride[1], dilation[1], pads[2], pads[3])
    if out_h < 1 or out_w < 1:
        raise ConfigError(
            f"padding: a {kernel_hw} window does not fit a {in_hw} input (output {out_h}x{out_w})"
        )
    return ConvGeometry(tuple(kernel_hw), stride, dilation, pads, (out_h, out_w))
