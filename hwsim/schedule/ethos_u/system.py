"""The memories the Ethos-U estimator sees for a system configuration and memory mode, by role.

A memory's bandwidth in bytes per NPU cycle is ``clock_scale x AXI width x ports_used``, with an AXI
width of 8 bytes for U55 systems and 16 otherwise, as ``regor_set_system_config``
(``ethosu/regor/regor.cpp``) computes it; the values come from :mod:`hwsim.devices.vela_systems`.
"""

from __future__ import annotations

from dataclasses import dataclass

from hwsim.devices.vela_systems import DEFAULT_ARENA_CACHE_BYTES, MemoryMode, SystemConfig
from hwsim.schedule.ethos_u.estimator import Memory


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


def axi_bytes(system: SystemConfig) -> int:
    """AXI port width Vela assumes for a system: 8 bytes for U55 systems, 16 otherwise."""
    return 8 if system.name.startswith("Ethos_U55") else 16


def memory_system(
    system: SystemConfig, mode: MemoryMode, arena_cache_bytes: int | None = None
) -> MemorySystem:
    """The memories of ``system`` in ``mode``; ``arena_cache_bytes`` overrides the staging limit."""
    width = axi_bytes(system)

    def memory(area: str) -> Memory:
        name = system.axi0 if area == "Axi0" else system.axi1
        p = system.memories[name]
        return Memory(
            name,
            p.clock_scale * width * p.ports_used,
            p.read_latency,
            p.write_latency,
            p.burst_bytes,
            p.ports_used,
            p.max_reads,
            p.max_writes,
        )

    limit = arena_cache_bytes or mode.arena_cache_bytes or DEFAULT_ARENA_CACHE_BYTES
    return MemorySystem(
        system.core_clock_hz, memory(mode.const_area), memory(mode.arena_area), memory(mode.cache_area), limit
    )
