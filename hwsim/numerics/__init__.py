"""The bit-accurate integer layer: formats, rounding, quantization, MAC kernels and requantizers.

It imports nothing else from hwsim but errors and the registry, so it can be verified on its own.
"""

from hwsim.numerics import jit_cache  # noqa: F401  first: it sets numba's cache folder before any kernel exists
from hwsim.numerics.formats import Granularity, IntFormat, OverflowMode, RoundingMode
from hwsim.numerics.ops import (
    Accumulator,
    MacResult,
    conv2d,
    depthwise_conv2d,
    dequantize,
    fake_quantize,
    matmul,
    pack_int4,
    pool2d,
    prepack,
    qparams_from_range,
    quantize,
    unpack_int4,
)
from hwsim.numerics.requant_kinds import RequantKind, quantize_multiplier

__all__ = [
    "Accumulator", "Granularity", "IntFormat", "MacResult", "OverflowMode", "RequantKind", "RoundingMode",
    "conv2d", "depthwise_conv2d", "dequantize", "fake_quantize", "matmul", "pack_int4", "pool2d", "prepack",
    "qparams_from_range", "quantize", "quantize_multiplier", "unpack_int4",
]
