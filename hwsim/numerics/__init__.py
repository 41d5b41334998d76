"""The bit-accurate integer layer: formats, rounding, quantization, MAC kernels and requantizers.

It imports nothing else from hwsim but errors and the registry, so it can be verified on its own. The
names below load on first use (PEP 562): importing ``hwsim.numerics.formats`` or ``.geometry`` for shapes
and formats must not load numba and the kernels, which only the values branch (``hwsim.runtime``) needs.
"""

from importlib import import_module

_HOME = {
    "Granularity": "formats",
    "IntFormat": "formats",
    "OverflowMode": "formats",
    "RoundingMode": "formats",
    "Accumulator": "ops",
    "MacResult": "ops",
    "conv2d": "ops",
    "depthwise_conv2d": "ops",
    "dequantize": "ops",
    "fake_quantize": "ops",
    "matmul": "ops",
    "pack_int4": "ops",
    "pool2d": "ops",
    "prepack": "ops",
    "qparams_from_range": "ops",
    "quantize": "ops",
    "unpack_int4": "ops",
    "RequantKind": "requant_kinds",
    "quantize_multiplier": "requant_kinds",
}
__all__ = sorted(_HOME)


def __getattr__(name: str):
    if name in _HOME:
        return getattr(import_module(f"hwsim.numerics.{_HOME[name]}"), name)
    raise AttributeError(f"module 'hwsim.numerics' has no attribute {name!r}")
