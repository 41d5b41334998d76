"""hwsim: bit-accurate simulation of quantized networks on edge AI accelerators.

Answer before silicon or deployment: quantized this way, what accuracy is kept, and what latency,
energy, power and area does it cost on that MAC array?
"""

__version__ = "0.1.0"

import os as _os

# OpenBLAS's workers spin for about 2**28 cycles (0.1 s) after each multi-threaded call before they sleep;
# numba's and hwsim's own threads started meanwhile (an ordered GEMM right after an exact one) share the
# cores with them. 2**4 cycles: they sleep at once. A default only: it acts if OpenBLAS is not loaded yet
# (hwsim imported before numpy, as by the ``hwsim`` command), and a user's own setting wins.
_os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

from hwsim import class_cache as _class_cache

_class_cache.install()  # before any of hwsim's dataclasses is defined
