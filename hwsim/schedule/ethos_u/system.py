"""Vela's system configurations and memory modes (its ``vela.ini``), and the memories they give the estimator.

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

from hwsim.schedule.ethos_u.estimator import Memory


@dataclass(frozen=True)
class MemoryParams:
    """One memory of a system configuration, as ``vela.ini`` gives it."""

    clock_scale: float
    burst_bytes: int
    read_latency: int
    write_latency: int
    ports_used: int = 1
    max_reads: int = 1  # outstanding transactions; only the U85 estimator reads them (given here for U85 systems)
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


_SRAM_U55 = {"burst_bytes": 32, "read_latency": 32, "write_latency": 32}
_FLASH = {"burst_bytes": 128, "read_latency": 64, "write_latency": 0}
_DRAM = {"burst_bytes": 128, "read_latency": 500, "write_latency": 250}

SYSTEM_CONFIGS: dict[str, SystemConfig] = {c.name: c for c in (
    SystemConfig("Ethos_U55_Deep_Embedded", 200e6, "Sram", "OffChipFlash",
                 {"Sram": MemoryParams(1.0, **_SRAM_U55), "OffChipFlash": MemoryParams(0.0625, **_FLASH)}),
    SystemConfig("Ethos_U55_High_End_Embedded", 500e6, "Sram", "OffChipFlash",
                 {"Sram": MemoryParams(1.0, **_SRAM_U55), "OffChipFlash": MemoryParams(0.125, **_FLASH)}),
    SystemConfig("Ethos_U65_Embedded", 500e6, "Sram", "OffChipFlash",
                 {"Sram": MemoryParams(1.0, **_SRAM_U55), "OffChipFlash": MemoryParams(0.0625, **_FLASH)}),
    SystemConfig("Ethos_U65_Mid_End", 500e6, "Sram", "Dram",
                 {"Sram": MemoryParams(1.0, **_SRAM_U55), "Dram": MemoryParams(0.46875, **_DRAM)}),
    SystemConfig("Ethos_U65_High_End", 1e9, "Sram", "Dram",
                 {"Sram": MemoryParams(1.0, **_SRAM_U55), "Dram": MemoryParams(0.234375, **_DRAM)}),
    SystemConfig("Ethos_U65_Client_Server", 1e9, "Sram", "Dram",
                 {"Sram": MemoryParams(1.0, **_SRAM_U55), "Dram": MemoryParams(0.75, **_DRAM)}),
    SystemConfig("Ethos_U85_SYS_Flash_Low", 200e6, "Sram", "OffChipFlash",
                 {"Sram": MemoryParams(1.0, 64, 8, 8, 2, 8, 8),
                  "OffChipFlash": MemoryParams(0.0625, 128, 32, 0, 1, 2)}),
    SystemConfig("Ethos_U85_SYS_Flash_High", 500e6, "Sram", "OffChipFlash",
                 {"Sram": MemoryParams(1.0, 64, 32, 32, 2, 8, 8),
                  "OffChipFlash": MemoryParams(0.0625, 128, 64, 0, 1, 2)}),
    SystemConfig("Ethos_U85_SYS_DRAM_Low", 500e6, "Sram", "Dram",
                 {"Sram": MemoryParams(1.0, 64, 16, 16, 2, 8, 8),
                  "Dram": MemoryParams(0.46875, 128, 500, 250, 1, 24, 12)}),
    SystemConfig("Ethos_U85_SYS_DRAM_Mid", 1e9, "Sram", "Dram",
                 {"Sram": MemoryParams(1.0, 64, 32, 32, 2, 8, 8),
                  "Dram": MemoryParams(0.75, 128, 500, 250, 1, 64, 32)}),
    SystemConfig("Ethos_U85_SYS_DRAM_High", 1e9, "Sram", "Dram",
                 {"Sram": MemoryParams(1.0, 64, 32, 32, 4, 8, 8),
                  "Dram": MemoryParams(0.75, 128, 500, 250, 2, 64, 32)}),
)}

MEMORY_MODES: dict[str, MemoryMode] = {m.name: m for m in (
    MemoryMode("Sram_Only", "Axi0", "Axi0", "Axi0"),
    MemoryMode("Shared_Sram", "Axi1", "Axi0", "Axi0"),
    MemoryMode("Dedicated_Sram", "Axi1", "Axi1", "Axi0"),
    MemoryMode("Dedicated_Sram_256KB", "Axi1", "Axi1", "Axi0", 262144),
    MemoryMode("Dedicated_Sram_384KB", "Axi1", "Axi1", "Axi0", 393216),
    MemoryMode("Dedicated_Sram_512KB", "Axi1", "Axi1", "Axi0", 524288),
)}

# Vela's default staging limit (--arena-cache-size) when the memory mode gives none.
DEFAULT_ARENA_CACHE_BYTES = 4 * 1024 * 1024
SHRAM = Memory("shram", 1.0, 0, 0, 1)


@dataclass(frozen=True)
class MemorySystem:
    """The memories of one system configuration and memory mode, by role."""

    clock_hz: float
    const: Memory  # where weights and scales live
    arena: Memory  # where feature maps live
    staging: Memory  # where Vela buffers weights and caches feature maps
    staging_limit_bytes: int

    @property
    def spilling(self) -> bool:
        """True when the arena is not in the staging memory (dedicated-SRAM modes)."""
        return self.arena.name != self.staging.name

    def memories(self) -> list[Memory]:
        """The distinct memories, read-only first."""
        out: list[Memory] = []
        for m in (self.const, self.arena, self.staging):
            if m not in out:
                out.append(m)
        return out


def memory_system(system: SystemConfig, mode: MemoryMode) -> MemorySystem:
    """The memories of ``system`` in ``mode`` (AXI ports 8 bytes wide on U55 systems, 16 otherwise)."""
    axi_bytes = 8 if system.name.startswith("Ethos_U55") else 16

    def memory(area: str) -> Memory:
        name = system.axi0 if area == "Axi0" else system.axi1
        p = system.memories[name]
        return Memory(name, p.clock_scale * axi_bytes * p.ports_used, p.read_latency, p.write_latency, p.burst_bytes,
                      p.ports_used, p.max_reads, p.max_writes)

    limit = mode.arena_cache_bytes if mode.arena_cache_bytes is not None else DEFAULT_ARENA_CACHE_BYTES
    return MemorySystem(system.core_clock_hz, memory(mode.const_area), memory(mode.arena_area),
                        memory(mode.cache_area), limit)
