"""Default bits per role and the NumPy type holding a code of a given width, shared by the shape importers.

Kept apart from :mod:`.yaml_layers` so that reading a SCALE-Sim topology imports neither pydantic nor PyYAML.
"""

from __future__ import annotations

import numpy as np

DEFAULT_PRECISION = {"weights": 8, "activations": 8, "accumulator": 32}


def dtype_for_bits(bits: int) -> np.dtype:
    """The narrowest signed NumPy integer holding ``bits``-bit codes (int4 is stored in int8, as TFLite's)."""
    for width, dtype in ((8, np.int8), (16, np.int16), (32, np.int32)):
        if bits <= width:
            return np.dtype(dtype)
    return np.dtype(np.int64)
