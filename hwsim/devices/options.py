"""Command-line options that change a device before it is simulated (shared by ``simulate`` and ``energy``).

Registering the options imports nothing but argparse: the device model (YAML, the schema) loads only when a
command runs, so that building the parser stays cheap.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from hwsim.guards import positive_int

if TYPE_CHECKING:
    from hwsim.devices.model import Device


def add_device_options(p: argparse.ArgumentParser) -> None:
    """``--device``, ``--memory-model``, and the Ethos-U options Vela itself takes (system config, memory
    mode, cache size)."""
    p.add_argument(
        "--device",
        required=True,
        help="a shipped device (see `hwsim list devices`), a device .yaml or a SCALE-Sim .cfg",
    )
    p.add_argument(
        "--memory-model",
        choices=["hwsim", "scalesim"],
        default=None,
        help="memory traffic and stalls by hwsim's own model or SCALE-Sim 3.0.0's (default: the "
        "device's memory_model, hwsim unless it says otherwise)",
    )
    p.add_argument(
        "--system-config",
        default=None,
        help="Ethos-U devices: a Vela system config (e.g. Ethos_U65_High_End) instead of the device's",
    )
    p.add_argument(
        "--memory-mode",
        default=None,
        help="Ethos-U devices: a Vela memory mode (Shared_Sram, Dedicated_Sram_384KB, Sram_Only ...)",
    )
    p.add_argument(
        "--arena-cache-size",
        type=positive_int,
        default=None,
        help="Ethos-U devices: bytes of SRAM Vela may stage in (its --arena-cache-size)",
    )


def device_from_args(args: argparse.Namespace) -> Device:
    """The device ``args`` name, with its ``--memory-model`` and the Ethos-U options applied (one-line errors
    name the option)."""
    from hwsim.devices.model import load_device, override, with_memory_model

    device = load_device(args.device)
    if args.memory_model:
        device = with_memory_model(device, args.memory_model)
    changes = {
        "system_config": args.system_config,
        "memory_mode": args.memory_mode,
        "arena_cache_size_bytes": args.arena_cache_size,
    }
    changes = {k: v for k, v in changes.items() if v is not None}
    if not changes:
        return device
    if device.spec.ethos_u is None:
        flag = "--" + next(iter(changes)).replace("_bytes", "").replace("_", "-")
        from hwsim.errors import ConfigError

        raise ConfigError(
            f"{flag}: device {device.name} is not an Ethos-U device (it has no ethos_u section)"
        )
    return override(device, {f"ethos_u.{k}": v for k, v in changes.items()}, "")
