"""hwsim: bit-accurate simulation of quantized networks on edge AI accelerators.

Answer before silicon or deployment: quantized this way, what accuracy is kept, and what latency,
energy, power and area does it cost on that MAC array?
"""

__version__ = "0.1.0"

from hwsim import class_cache as _class_cache

_class_cache.install()  # before any of hwsim's dataclasses is defined
