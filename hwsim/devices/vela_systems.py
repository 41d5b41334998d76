"""Vela's system configurations and memory modes (its ``vela.ini``): the memories around an Ethos-U.

A *system configuration* names the NPU clock and, for each of the two AXI ports, the memory behind it
(SRAM, DRAM, on- or off-chip flash) with its clock scale, burst length, latencies and ports used. A
*memory mode* says which port holds the read-only data (weights), which the tensor arena (feature maps),
and which the cache Vela stages data in, with the cache size for the dedicated-SRAM modes. Source of
every value: ethos-u-vela 5.2.0, ``ethosu/config_files/Arm/vela.ini``; a memory's bandwidth in bytes per
NPU cycle is ``clock_scale x AXI width x ports_used`` with an AXI width of 8 bytes for U55 systems and 16
otherwise, as ``regor_set_system_config`` (``ethosu/regor/regor.cpp``) computes it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MemoryParams:
    """One memory of a system configuration, as ``vela.ini`` gives it."""

    clock_scale: float
    burst_bytes: int
    read_latency: int
    write_latency: int
    ports_used: int = 1
    max_reads: int = 1  # outstanding transactions (the U85 estimator's channel bandwidth reads them)
    max_writes: int = 1


@dataclass(frozen=True)
class SystemConfig:
    """A ``[System_Config.*]`` section: core clock and the memory on each AXI port."""

    name: str
    core_clock_hz: float
    axi0: str
    axi1: str
    memories: dict[str, MemoryParams]


@dataclass(frozen=True)
class MemoryMode:
    """A ``[Memory_Mode.*]`` section: the port of constants, of the arena and of the cache (staging) area."""

    name: str
    const_area: str  # "Axi0" or "Axi1"
    arena_area: str
    cache_area: str
    arena_cache_bytes: int | None = None  # Vela's staging limit when the arena is not in the cache


def _sram_u55(reads: int) -> MemoryParams:
    return MemoryParams(1.0, 32, 32, 32, 1, reads, reads)


def _flash(scale: float, latency: int = 64) -> MemoryParams:
    return MemoryParams(scale, 128, latency, 0, 1, 2, 0)


def _dram(scale: float, reads: int, writes: int, ports: int = 1) -> MemoryParams:
    return MemoryParams(scale, 128, 500, 250, ports, reads, writes)


SYSTEM_CONFIGS: dict[str, SystemConfig] = {
    c.name: c
    for c in (
        SystemConfig(
            "Ethos_U55_Deep_Embedded",
            200e6,
            "Sram",
            "OffChipFlash",
            {"Sram": _sram_u55(8), "OffChipFlash": _flash(0.0625)},
        ),
        SystemConfig(
            "Ethos_U55_High_End_Embedded",
            500e6,
            "Sram",
            "OffChipFlash",
            {"Sram": _sram_u55(4), "OffChipFlash": _flash(0.125)},
        ),
        SystemConfig(
            "Ethos_U65_Embedded",
            500e6,
            "Sram",
            "OffChipFlash",
            {"Sram": _sram_u55(8), "OffChipFlash": _flash(0.0625)},
        ),
        SystemConfig(
            "Ethos_U65_Mid_End", 500e6, "Sram", "Dram", {"Sram": _sram_u55(8), "Dram": _dram(0.46875, 12, 6)}
        ),
        SystemConfig(
            "Ethos_U65_High_End",
            1e9,
            "Sram",
            "Dram",
            {"Sram": _sram_u55(16), "Dram": _dram(0.234375, 24, 12)},
        ),
        SystemConfig(
            "Ethos_U65_Client_Server",
            1e9,
            "Sram",
            "Dram",
            {"Sram": _sram_u55(16), "Dram": _dram(0.75, 24, 12)},
        ),
        SystemConfig(
            "Ethos_U85_SYS_Flash_Low",
            200e6,
            "Sram",
            "OffChipFlash",
            {"Sram": MemoryParams(1.0, 64, 8, 8, 2, 8, 8), "OffChipFlash": _flash(0.0625, 32)},
        ),
        SystemConfig(
            "Ethos_U85_SYS_Flash_High",
            500e6,
            "Sram",
            "OffChipFlash",
            {"Sram": MemoryParams(1.0, 64, 32, 32, 2, 8, 8), "OffChipFlash": _flash(0.0625)},
        ),
        SystemConfig(
            "Ethos_U85_SYS_DRAM_Low",
            500e6,
            "Sram",
            "Dram",
            {"Sram": MemoryParams(1.0, 64, 16, 16, 2, 8, 8), "Dram": _dram(0.46875, 24, 12)},
        ),
        SystemConfig(
            "Ethos_U85_SYS_DRAM_Mid",
            1e9,
            "Sram",
            "Dram",
            {"Sram": MemoryParams(1.0, 64, 32, 32, 2, 8, 8), "Dram": _dram(0.75, 64, 32)},
        ),
        SystemConfig(
            "Ethos_U85_SYS_DRAM_High",
            1e9,
            "Sram",
            "Dram",
            {"Sram": MemoryParams(1.0, 64, 32, 32, 4, 8, 8), "Dram": _dram(0.75, 64, 32, 2)},
        ),
    )
}

MEMORY_MODES: dict[str, MemoryMode] = {
    m.name: m
    for m in (
        MemoryMode("Sram_Only", "Axi0", "Axi0", "Axi0"),
        MemoryMode("Shared_Sram", "Axi1", "Axi0", "Axi0"),
        MemoryMode("Dedicated_Sram", "Axi1", "Axi1", "Axi0"),
        MemoryMode("Dedicated_Sram_256KB", "Axi1", "Axi1", "Axi0", 262144),
        MemoryMode("Dedicated_Sram_384KB", "Axi1", "Axi1", "Axi0", 393216),
        MemoryMode("Dedicated_Sram_512KB", "Axi1", "Axi1", "Axi0", 524288),
    )
}

# Vela's default staging limit (--arena-cache-size) when the memory mode gives none.
DEFAULT_ARENA_CACHE_BYTES = 4 * 1024 * 1024
