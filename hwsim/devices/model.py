"""The runtime device built from a validated :class:`~hwsim.devices.schema.DeviceSpec`, and how to find one.

``load_device("edge_tpu_like")`` reads ``accelerators/edge_tpu_like.yaml``; a path to a ``.yaml`` file or
to a SCALE-Sim ``.cfg`` works too. ``device_names()`` lists the shipped devices.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hwsim.config import records
from hwsim.config.dotted import set_path
from hwsim.config.yamlio import load_spec
from hwsim.devices.sanity import warn_doubtful
from hwsim.devices.schema import DeviceSpec, MemorySpec, PrecisionRateSpec
from hwsim.errors import ConfigError, RegistryError
from hwsim.paths import data_dir

OPERANDS = ("weights", "inputs", "outputs")


@dataclass(frozen=True, eq=False)
class Device:
    """A device ready for the mapper and the simulator: the spec plus derived lookups (hashed by identity)."""

    spec: DeviceSpec
    path: str = ""
    _read_level: dict[str, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        levels = self.spec.memories
        for operand in OPERANDS:
            idx = max(i for i, m in enumerate(levels) if operand in m.holds and m.kind != "register_file")
            self._read_level[operand] = idx

    @property
    def name(self) -> str:
        """The device's name."""
        return self.spec.name

    @property
    def clock_mhz(self) -> float:
        """Clock in MHz (cycles per microsecond)."""
        return self.spec.clock_mhz

    @property
    def levels(self) -> list[MemorySpec]:
        """Memory levels, outermost first."""
        return list(self.spec.memories)

    def read_level(self, operand: str) -> int:
        """Index of the level a compute unit reads ``operand`` from: the innermost non-register level
        holding it."""
        return self._read_level[operand]

    def home_levels(self, home: str) -> list[int]:
        """Indices of the levels that may home ``home`` ("weights" or "activations"), outermost first."""
        return [i for i, m in enumerate(self.spec.memories) if home in m.homes]

    @property
    def register_file(self) -> MemorySpec | None:
        """The innermost register-file level, if the device declares one."""
        rfs = [m for m in self.spec.memories if m.kind == "register_file"]
        return rfs[-1] if rfs else None

    def unit_for(self, op_kind: str) -> str:
        """Name of the compute unit that runs ``op_kind``: the first listing it, else the first with
        ``"*"``."""
        units = [(self.spec.mac_array.name, self.spec.mac_array.ops)] + [
            (v.name, v.ops) for v in self.spec.vector_units
        ]
        for name, ops in units:
            if op_kind in ops:
                return name
        for name, ops in units:
            if "*" in ops:
                return name
        raise ConfigError(
            f"{self.path or self.name}: no compute unit runs {op_kind!r}; add it to the ops of "
            f"mac_array or a vector unit (or '*')"
        )

    def vector_unit(self, name: str):
        """The vector unit spec called ``name``."""
        return next(v for v in self.spec.vector_units if v.name == name)

    def precision(self, weights_bits: int, activations_bits: int) -> PrecisionRateSpec:
        """The fastest supported pair that covers the given bits (e.g. int4 weights run on an int8 path)."""
        fits = [
            p
            for p in self.spec.mac_array.precisions
            if p.weights_bits >= weights_bits and p.activations_bits >= activations_bits
        ]
        if not fits:
            have = ", ".join(f"{p.weights_bits}x{p.activations_bits}" for p in self.spec.mac_array.precisions)
            hint = (
                "; a float model: quantize it first (hwsim quantize MODEL --calib calib.npz --output "
                "int.npz) and pass that file"
                if max(weights_bits, activations_bits) >= 32
                else ""
            )
            raise ConfigError(
                f"{self.path or self.name}: mac_array.precisions: no operand pair covers "
                f"{weights_bits}-bit weights x {activations_bits}-bit activations (supported: "
                f"{have}){hint}"
            )
        return max(fits, key=lambda p: (p.macs_per_pe_per_cycle, -p.weights_bits, -p.activations_bits))

    @property
    def peak_macs_per_cycle(self) -> float:
        """MACs per cycle of the array at its fastest listed precision... at 8x8 when listed."""
        a = self.spec.mac_array
        pes = a.rows * a.columns * a.spatial_lanes
        eight = [p for p in a.precisions if p.weights_bits == 8 and p.activations_bits == 8]
        rate = eight[0].macs_per_pe_per_cycle if eight else max(p.macs_per_pe_per_cycle for p in a.precisions)
        return pes * rate

    @property
    def peak_ops_per_s(self) -> float:
        """Peak int8 operations per second (2 per MAC)."""
        return 2 * self.peak_macs_per_cycle * self.clock_mhz * 1e6

    @property
    def offchip_bytes_per_s(self) -> float:
        """Read bandwidth of the outermost level, all ports, in bytes per second."""
        m = self.spec.memories[0]
        return (m.read_bandwidth_bytes_per_cycle or 0) * m.read_ports * self.clock_mhz * 1e6


def override(device: Device, overrides: dict[str, Any], where: str = "") -> Device:
    """``device`` with fields set by dotted path (``ethos_u.memory_mode``, ``memories.sram.size_bytes``).

    An Ethos-U device's clock and memories are derived again from its (possibly changed) ``ethos_u`` section.
    """
    if not overrides:
        return device
    data = dataclasses.asdict(device.spec)
    if data.get("ethos_u"):
        data.pop("clock_mhz")
        data.pop("memories")
    for field_path, value in overrides.items():
        set_path(data, field_path.split("."), value, f"{where}device.{field_path}")
    try:
        changed = Device(records.validate(DeviceSpec, data), device.path)
    except records.RecordError as exc:
        raise ConfigError(f"{where}device {device.name} with {overrides}: {exc}") from None
    warn_doubtful(changed.spec, where=f"{where}device {device.name} with {overrides}: ", base=device.spec)
    return changed


def with_memory_model(device: Device, memory_model: str) -> Device:
    """The same device with another ``memory_model`` (``--memory-model``); errors name the option.

    A valid choice on a device without derived fields is set directly (the spec's own cross-field checks
    run as it is rebuilt); anything else goes through the whole validation, whose message is the one given.
    """
    allowed = typing.get_args(records.fields_of(DeviceSpec)["memory_model"][0])
    if memory_model in allowed and device.spec.ethos_u is None:
        try:
            return Device(dataclasses.replace(device.spec, memory_model=memory_model), device.path)
        except ValueError:
            pass  # re-checked below, for the located message
    data = dataclasses.asdict(device.spec)
    if data.get("ethos_u"):
        data.pop("clock_mhz")
        data.pop("memories")
    try:
        spec = records.validate(DeviceSpec, {**data, "memory_model": memory_model})
    except records.RecordError as exc:
        raise ConfigError(
            f"--memory-model {memory_model}: device {device.path or device.name}: {exc.message}"
        ) from None
    return Device(spec, device.path)


def device_names() -> list[str]:
    """Names of the shipped devices (``accelerators/*.yaml``), sorted."""
    return sorted(p.stem for p in data_dir("accelerators").glob("*.yaml"))


def device_files() -> list[Path]:
    """Paths of the shipped device files, sorted."""
    return sorted(data_dir("accelerators").glob("*.yaml"))


def load_device(name_or_path: str | Path) -> Device:
    """A shipped device by name, or a device file (``.yaml``, or a SCALE-Sim ``.cfg``) by path."""
    text = str(name_or_path)
    path = Path(text)
    if path.suffix == ".cfg":
        from hwsim.devices.scalesim_cfg import load_scalesim_cfg

        return _checked(Device(load_scalesim_cfg(path), str(path)))
    if path.suffix in (".yaml", ".yml") or path.exists():
        return _checked(Device(load_spec(DeviceSpec, path), str(path)))
    names = device_names()
    if text not in names:
        import difflib

        close = difflib.get_close_matches(text, names, n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise RegistryError(
            f"unknown device {text!r}.{hint} Valid: {', '.join(names)} (or a path to a "
            ".yaml device file or a SCALE-Sim .cfg)"
        )
    path = data_dir("accelerators") / f"{text}.yaml"
    return Device(load_spec(DeviceSpec, path), str(path))


def _checked(device: Device) -> Device:
    """``device``, after a warning for each value far outside the shipped devices (:mod:`.sanity`)."""
    warn_doubtful(device.spec, device.path)
    return device
