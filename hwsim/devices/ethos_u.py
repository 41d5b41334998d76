"""An Ethos-U device's clock and memories, derived from the Vela system configuration and memory mode.

A device file with an ``ethos_u:`` section (``accelerator``, ``system_config``, ``memory_mode``) lists no
``clock_mhz`` or ``memories`` of its own: they follow from Vela's ``vela.ini``
(:mod:`hwsim.devices.vela_systems`), so that one name switches the whole memory system, as
``--system-config`` does for Vela. The memory behind each AXI port becomes a level (flash or DRAM off
chip, SRAM on chip), followed by the NPU's internal buffers (the U55/U65 SHRAM, the U85's RAMs) and its
registers; a level homes the weights when the memory mode puts the read-only area there, and the feature
maps when it puts the arena or the cache there.
"""

from __future__ import annotations

from hwsim.devices.vela_systems import DEFAULT_ARENA_CACHE_BYTES, MEMORY_MODES, SYSTEM_CONFIGS

LEVEL_NAMES = {"Sram": "sram", "Dram": "dram", "OffChipFlash": "flash", "OnChipFlash": "onchip_flash"}
TECHNOLOGY = {"Dram": "lpddr", "OffChipFlash": "qspi_nor_flash", "OnChipFlash": "qspi_nor_flash"}
OPERANDS = ["weights", "inputs", "outputs"]


def derived_fields(ethos_u: dict) -> dict:
    """``clock_mhz`` and ``memories`` of a device from its ``ethos_u`` section (names already validated)."""
    system = SYSTEM_CONFIGS[ethos_u["system_config"]]
    mode = MEMORY_MODES[ethos_u["memory_mode"]]
    width = 8 if system.name.startswith("Ethos_U55") else 16
    port = {"Axi0": system.axi0, "Axi1": system.axi1}
    cache_bytes = ethos_u.get("arena_cache_size_bytes") or mode.arena_cache_bytes or DEFAULT_ARENA_CACHE_BYTES
    source = f"vela.ini System_Config.{system.name}, Memory_Mode.{mode.name} (ethos-u-vela 5.2.0)"
    levels = []
    for name in sorted({system.axi0, system.axi1}, key=lambda n: n == "Sram"):  # off chip first
        p = system.memories[name]
        bandwidth = p.clock_scale * width * p.ports_used
        homes = []
        if port[mode.const_area] == name:
            homes.append("weights")
        if port[mode.arena_area] == name or (port[mode.cache_area] == name and name == "Sram"):
            homes.append("activations")
        level = {
            "name": LEVEL_NAMES[name],
            "kind": "sram" if name == "Sram" else "off_chip",
            "read_bandwidth_bytes_per_cycle": bandwidth,
            "write_bandwidth_bytes_per_cycle": bandwidth,
            "read_latency_cycles": p.read_latency,
            "write_latency_cycles": p.write_latency,
            "holds": OPERANDS,
            "homes": homes,
            "source": source,
        }
        if name == "Sram":
            level["size_bytes"] = cache_bytes
            level["banks"] = 8
        else:
            level["technology"] = TECHNOLOGY[name]
        levels.append(level)
    levels.append(_npu_buffer(ethos_u["accelerator"]))
    levels.append(
        {
            "name": "rf",
            "kind": "register_file",
            "holds": OPERANDS,
            "source": "MAC operand and accumulator registers",
        }
    )
    return {"clock_mhz": system.core_clock_hz / 1e6, "memories": levels}


def _npu_buffer(accelerator: str) -> dict:
    """The NPU's internal buffer level: the U55/U65 shared buffer (SHRAM), or the U85's IFM, accumulator,
    output and chaining RAMs together (sizes from Vela's accelerator config; bandwidth an assumption)."""
    from hwsim.schedule.ethos_u.arch import ACCELERATORS

    common = {
        "read_bandwidth_bytes_per_cycle": 64,
        "write_bandwidth_bytes_per_cycle": 64,
        "read_ports": 2,
        "write_ports": 2,
        "holds": OPERANDS,
    }
    if accelerator in ACCELERATORS:
        banks = ACCELERATORS[accelerator].shram_banks
        return {
            "name": "shram",
            "kind": "sram",
            "size_bytes": banks * 1024,
            "banks": banks,
            **common,
            "source": "SHRAM banks of 1 KiB (Vela's accelerator config); its bandwidth is an assumption",
        }
    from hwsim.schedule.ethos_u.arch_u85 import U85_ACCELERATORS

    c = U85_ACCELERATORS[accelerator]
    size = c.ifm_ram_bytes + c.acc_ram_bytes + c.ob_ram_bytes + c.cb_ram_bytes
    return {
        "name": "npu_buffers",
        "kind": "sram",
        "size_bytes": size,
        "banks": 4,
        **common,
        "source": "IFM, accumulator, output and chaining RAMs (Vela's U85 accelerator config); their "
        "bandwidth is an assumption",
    }
