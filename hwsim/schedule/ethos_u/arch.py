"""The Ethos-U accelerator configurations as Arm Vela 5.2.0 (its Regor core) describes them.

Each :class:`EthosUConfig` holds what Vela's estimator and block-config search read from the hardware:
MACs per core and cores, the OFM and IFM micro-blocks (the output and input volume one step of the MAC
engine covers), the shared buffer (SHRAM) banks and the granules each buffer kind is rounded to, and the
output and activation cycle tables (cycles per output element of each output stage). Source of every
number: ethos-u-vela 5.2.0, ``ethosu/regor/architecture/ethosu55/ethos_u55.cpp`` (``s_EthosU55Configs``,
``s_EthosU55PerfInfo``), ``ethosu65/ethos_u65.cpp`` and ``ethosu85/ethos_u85.cpp``.
"""

from __future__ import annotations

from dataclasses import dataclass

# SHRAM granule index per buffer kind, the order of Vela's EthosU55SHRamElements.
IFM8, IFM16, IFM8_EW, IFM16_EW, IFM32, ACC16, ACC32, ACC40 = range(8)
SHRAM_ELEMENT_BITS = (8, 16, 8, 16, 32, 16, 32, 40)

# Output cycle table index (EstimateAOCyclesPerElement): which output stage an op uses.
(
    OUT_EW32_UNARY,
    OUT_EW32_BINARY,
    OUT_MUL32,
    OUT_MUL_OR_ACC40,
    OUT_ADD_SIMPLE,
    OUT_ADD,
    OUT_MAXPOOL,
    OUT_OTHER,
) = range(8)
# Activation cycle table index: a LUT (sigmoid, tanh, table), a clamp (ReLU family), none.
ACT_LUT, ACT_CLAMP, ACT_NONE = range(3)


@dataclass(frozen=True)
class EthosUConfig:
    """One accelerator configuration (``ethos-u55-128`` ...), as Vela's estimator sees it."""

    name: str
    family: str  # "u55", "u65" or "u85"
    macs: int  # MACs per cycle of one core
    cores: int
    ofm_ublock: tuple[int, int, int]  # (height, width, depth)
    ifm_ublock: tuple[int, int, int]
    shram_banks: int
    shram_granules: tuple[int, ...]  # per SHRAM buffer kind, in units of banks
    output_cycles: tuple[float, ...]  # cycles per output element, by output-stage index
    activation_cycles: tuple[float, ...]  # cycles per output element, by activation index

    @property
    def total_macs(self) -> int:
        """MACs per cycle over all cores."""
        return self.macs * self.cores

    @property
    def is_u55_32(self) -> bool:
        """The smallest U55 has its own pipeline delays (Vela's ``IsU55_32``)."""
        return self.family == "u55" and self.macs == 32


_U55_OUT = {
    32: ((2.0, 3.0, 3.0, 3.0, 4.0, 6.0, 1.0, 2.0), (1.0, 1.0, 0.0)),
    64: ((1.0, 1.5, 1.5, 1.5, 2.0, 3.0, 0.5, 1.0), (1.0, 1.0, 0.0)),
    128: ((0.75, 1.25, 0.75, 0.75, 1.0, 1.5, 0.25, 0.5), (1.0, 0.5, 0.0)),
    256: ((0.625, 1.125, 0.5, 0.375, 0.5, 0.75, 0.125, 0.25), (1.0, 0.25, 0.0)),
}
_U65_512_OUT = ((0.3125, 0.5625, 0.25, 0.1875, 0.25, 0.375, 0.0625, 0.125), (0.5, 0.125, 0.0))

ACCELERATORS: dict[str, EthosUConfig] = {
    "ethos-u55-32": EthosUConfig(
        "ethos-u55-32", "u55", 32, 1, (1, 1, 4), (1, 1, 8), 16, (2, 2, 2, 2, 4, 4, 4, 4), *_U55_OUT[32]
    ),
    "ethos-u55-64": EthosUConfig(
        "ethos-u55-64", "u55", 64, 1, (1, 1, 8), (1, 1, 8), 16, (2, 2, 2, 2, 4, 4, 4, 8), *_U55_OUT[64]
    ),
    "ethos-u55-128": EthosUConfig(
        "ethos-u55-128", "u55", 128, 1, (1, 2, 8), (1, 2, 8), 24, (4, 4, 4, 4, 8, 4, 8, 12), *_U55_OUT[128]
    ),
    "ethos-u55-256": EthosUConfig(
        "ethos-u55-256", "u55", 256, 1, (2, 2, 8), (2, 2, 8), 48, (8, 8, 8, 8, 16, 8, 16, 20), *_U55_OUT[256]
    ),
    "ethos-u65-256": EthosUConfig(
        "ethos-u65-256", "u65", 256, 1, (2, 2, 8), (2, 2, 8), 48, (8, 8, 8, 8, 16, 8, 16, 20), *_U55_OUT[256]
    ),
    "ethos-u65-512": EthosUConfig(
        "ethos-u65-512", "u65", 256, 2, (2, 2, 8), (2, 2, 8), 48, (8, 8, 8, 8, 16, 8, 16, 20), *_U65_512_OUT
    ),
}
