"""The device description schema (``accelerators/*.yaml``), version 1: frozen records, no extra keys.

A device has a clock, one MAC array, optional vector units, DMA engines and a memory hierarchy listed from
the outermost level (off-chip DRAM, flash or a host link) to the innermost (register files)::

    schema_version: 1
    name: my_npu
    clock_mhz: 500
    mac_array:
      rows: 16
      columns: 16
      dataflow: weight_stationary          # output_stationary | weight_stationary | input_stationary |
      dot_product accumulator_bits: 32 precisions:                          # operand pairs and their rate in
      MACs per PE per cycle
        - {weights_bits: 8, activations_bits: 8, macs_per_pe_per_cycle: 1}
        - {weights_bits: 4, activations_bits: 8, macs_per_pe_per_cycle: 2}
      ops: [conv2d, depthwise_conv2d, fully_connected, batch_matmul]
    vector_units:
      - {name: vpu, vector_bits: 256, count: 1, ops: ["*"]}
    dma: {engines: 2}
    memories:
      - {name: dram, kind: off_chip, read_bandwidth_bytes_per_cycle: 8, write_bandwidth_bytes_per_cycle: 8,
         read_latency_cycles: 100, write_latency_cycles: 100, holds: [weights, inputs, outputs],
         homes: [weights, activations]}
      - {name: sram, kind: sram, size_bytes: 524288, banks: 8, read_bandwidth_bytes_per_cycle: 64,
         write_bandwidth_bytes_per_cycle: 64, holds: [weights, inputs, outputs], homes: [activations]}
      - {name: rf, kind: register_file, holds: [weights, inputs, outputs]}

``performance_model`` names how layers become timed plans (``hwsim.schedule.models``: ``hwsim``, hwsim's own
mapper, the default; ``edgetpu_compiler``, the Edge TPU compiler's placement). ``holds`` lists the operands a
level stages (tiles of weights, inputs, outputs); ``homes`` the tensors that may live there whole
(``weights``: a layer's weights; ``activations``: feature maps between layers). ``layer_overhead_cycles`` is
spent by each layer's unit before its first tile, ``inference_overhead_cycles`` once per inference (the
runtime's start and round trip); both default to 0. A vector unit with ``on_host: true`` is the host's CPU,
which a performance model may give the ops the device cannot run: it is timed, but its energy and area are not
the device's. Each sub-section takes a ``source:`` string saying where its numbers come from.

The sections are :mod:`hwsim.config.records` (dataclasses checked against their annotations), not pydantic
models: every simulation reads a device, and importing pydantic would cost it more than the rest of a small
network's simulation. Cross-field rules are the records' ``__post_init__``.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Literal

from hwsim.config.records import Ge, Gt, Le, MinLen
from hwsim.config.yamlio import at_field

SCHEMA_VERSION = 1
Operand = Literal["weights", "inputs", "outputs"]
Home = Literal["weights", "activations"]
PositiveInt = Annotated[int, Ge(1)]
PositiveFloat = Annotated[float, Gt(0)]
_spec = dataclasses.dataclass(frozen=True, kw_only=True)


@_spec
class PrecisionRateSpec:
    """One supported operand pair and its throughput: MACs per processing element per cycle."""

    weights_bits: Annotated[int, Ge(1), Le(32)]
    activations_bits: Annotated[int, Ge(1), Le(32)]
    macs_per_pe_per_cycle: PositiveFloat = 1.0

    def __post_init__(self) -> None:
        rate = self.macs_per_pe_per_cycle
        inv = 1 / rate
        if not (rate >= 1 and rate == int(rate)) and not (inv == int(inv)):
            raise at_field(
                ("macs_per_pe_per_cycle",), "expected a whole number or 1/n (e.g. 2, 1, 0.5)", rate
            )


@_spec
class MacArraySpec:
    """The MAC array: ``rows x columns`` PEs (x ``spatial_lanes`` for ``dot_product``), dataflow and
    precisions.

    ``depthwise`` says how a systolic array runs a depthwise convolution: ``per_channel`` as SCALE-Sim does
    (one single-channel convolution per channel, one after another), or ``block_diagonal`` (``n`` channels
    per fold, their ``taps`` on ``n * taps`` rows and their filters on ``n`` columns, the rest of the block
    zero), n = min(rows // taps, columns).

    ``weight_double_buffering`` (weight-stationary only) loads the next fold's weights while the current
    fold streams, as the TPU's matrix unit does with its second weight tile (Jouppi et al., ISCA 2017): the
    folds of one op then follow each other every ``max(P, rows)`` cycles and the array fills and drains
    once per op (``2 * rows + columns - 2``), instead of SCALE-Sim's ``2 * rows + columns + P - 2`` per fold.
    """

    name: str = "mac_array"
    rows: PositiveInt
    columns: PositiveInt
    spatial_lanes: PositiveInt = 1
    dataflow: str
    accumulator_bits: Annotated[int, Ge(8), Le(64)]
    precisions: Annotated[list[PrecisionRateSpec], MinLen(1)]
    ops: Annotated[list[str], MinLen(1)] = dataclasses.field(
        default_factory=lambda: ["conv2d", "depthwise_conv2d", "fully_connected", "batch_matmul"]
    )
    depthwise: Literal["per_channel", "block_diagonal"] = "per_channel"
    weight_double_buffering: bool = False
    source: str = ""

    def __post_init__(self) -> None:
        from hwsim.devices.names import DATAFLOW_NAMES

        if self.dataflow not in DATAFLOW_NAMES:
            import difflib

            close = difflib.get_close_matches(self.dataflow, DATAFLOW_NAMES, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise at_field(
                ("dataflow",), f"unknown dataflow; {hint}valid: {', '.join(DATAFLOW_NAMES)}", self.dataflow
            )
        if self.spatial_lanes != 1 and self.dataflow != "dot_product":
            raise at_field(
                ("spatial_lanes",), "only a dot_product array has spatial lanes", self.spatial_lanes
            )
        if self.weight_double_buffering and self.dataflow != "weight_stationary":
            raise at_field(
                ("weight_double_buffering",),
                "only a weight_stationary array double-buffers its weights",
                self.weight_double_buffering,
            )


@_spec
class VectorUnitSpec:
    """A SIMD unit (elementwise, pooling, depthwise): ``vector_bits`` wide, ``count`` of them in parallel."""

    name: str
    vector_bits: Annotated[int, Ge(8)]
    count: PositiveInt = 1
    ops: Annotated[list[str], MinLen(1)]
    macs_per_lane_per_cycle: PositiveFloat = 1.0
    on_host: bool = False  # the host processor (a CPU fallback), not the device: timed, but no energy or area
    source: str = ""


@_spec
class DmaSpec:
    """DMA engines moving tiles between memory levels; each transfer also pays ``setup_cycles``.

    ``prefetch_next_weights``: once a layer's own loads are done, the engines fetch the next layer's first
    weight tiles while it computes, into the on-chip memory the layer leaves free (off by default: each
    layer then fetches its weights itself, after the previous layer ends).
    """

    engines: PositiveInt
    setup_cycles: Annotated[int, Ge(0)] = 0
    prefetch_next_weights: bool = False
    source: str = ""


@_spec
class MemorySpec:
    """One memory level. Bandwidths are per port, in bytes per device clock cycle."""

    name: str
    kind: Literal["off_chip", "sram", "register_file"]
    size_bytes: PositiveInt | None = None
    banks: PositiveInt = 1
    read_ports: PositiveInt = 1
    write_ports: PositiveInt = 1
    read_bandwidth_bytes_per_cycle: PositiveFloat | None = None
    write_bandwidth_bytes_per_cycle: PositiveFloat | None = None
    read_latency_cycles: Annotated[int, Ge(0)] = 0
    write_latency_cycles: Annotated[int, Ge(0)] = 0
    holds: Annotated[list[Operand], MinLen(1)]
    homes: list[Home] = dataclasses.field(default_factory=list)
    persistent_weights_bytes: Annotated[int, Ge(0)] = 0
    # off-chip technology an energy table prices (ddr3, lpddr5x, usb3_host, ...)
    technology: str | None = None
    source: str = ""

    def __post_init__(self) -> None:
        if self.kind == "sram" and self.size_bytes is None:
            raise at_field(("size_bytes",), "an sram level needs its size")
        if self.kind != "register_file":
            for field in ("read_bandwidth_bytes_per_cycle", "write_bandwidth_bytes_per_cycle"):
                if getattr(self, field) is None:
                    raise at_field((field,), f"a {self.kind} level needs its bandwidth")
        if self.kind == "register_file" and self.homes:
            raise at_field(("homes",), "a register file cannot home whole tensors", self.homes)
        if self.persistent_weights_bytes:
            if "weights" not in self.homes:
                raise at_field(("persistent_weights_bytes",), "needs 'weights' in homes", self.homes)
            if self.size_bytes is not None and self.persistent_weights_bytes > self.size_bytes:
                raise at_field(
                    ("persistent_weights_bytes",),
                    f"larger than size_bytes ({self.size_bytes})",
                    self.persistent_weights_bytes,
                )


@_spec
class TechnologySpec:
    """The silicon the device is priced at by :mod:`hwsim.energy`: node, supply and process flavour."""

    node_nm: PositiveFloat
    voltage_v: PositiveFloat
    flavor: Literal["lp", "hp"] = "lp"
    source: str = ""


@_spec
class EthosUSpec:
    """An Arm Ethos-U NPU as Vela names it: accelerator config, system config and memory mode (vela.ini)."""

    accelerator: str
    system_config: str
    memory_mode: str
    arena_cache_size_bytes: PositiveInt | None = None  # Vela's --arena-cache-size
    source: str = ""

    def __post_init__(self) -> None:
        from hwsim.devices.vela_systems import MEMORY_MODES, SYSTEM_CONFIGS
        from hwsim.schedule.ethos_u.arch import ACCELERATORS

        accelerators = ACCELERATORS
        if self.accelerator not in ACCELERATORS:
            from hwsim.schedule.ethos_u.arch_u85 import U85_ACCELERATORS

            accelerators = {**ACCELERATORS, **U85_ACCELERATORS}
        for field, names in (
            ("accelerator", accelerators),
            ("system_config", SYSTEM_CONFIGS),
            ("memory_mode", MEMORY_MODES),
        ):
            value = getattr(self, field)
            if value not in names:
                import difflib

                close = difflib.get_close_matches(value, list(names), n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise at_field(
                    (field,), f"unknown {field.replace('_', ' ')}; {hint}valid: {', '.join(names)}", value
                )


@_spec
class ScaleSimMemorySpec:
    """SCALE-Sim 3.0.0's memory parameters, used with ``memory_model: scalesim`` (filled from a ``.cfg``).

    ``interface_bandwidth`` is SCALE-Sim's ``InterfaceBandwidth``: ``CALC`` (DRAM bandwidth estimated, reads
    never stall, the OFMAP drains one array row per cycle) or ``USER`` (the IFMAP and filter buffers fetch
    ``ifmap_words_per_cycle`` and ``filter_words_per_cycle``, SCALE-Sim's ``[layout]
    IfmapSRAMBankBandwidth`` and ``FilterSRAMBankBandwidth``; the OFMAP drains ``ofmap_words_per_cycle``,
    the first ``Bandwidth`` value). The offsets place each operand in SCALE-Sim's address space.
    """

    interface_bandwidth: Literal["CALC", "USER"] = "CALC"
    ifmap_words_per_cycle: PositiveInt = 10
    filter_words_per_cycle: PositiveInt = 10
    ofmap_words_per_cycle: PositiveInt = 10
    ifmap_offset: Annotated[int, Ge(0)] = 0
    filter_offset: Annotated[int, Ge(0)] = 10_000_000
    ofmap_offset: Annotated[int, Ge(0)] = 20_000_000
    source: str = ""


def scalesim_memory_problem(spec: DeviceSpec) -> str | None:
    """Why SCALE-Sim's memory model cannot run on ``spec`` (os/ws/is array, one SRAM per operand), or None."""
    if spec.mac_array.dataflow not in ("output_stationary", "weight_stationary", "input_stationary"):
        return (
            f"scalesim needs a systolic array (output_, weight_ or input_stationary), not "
            f"{spec.mac_array.dataflow}"
        )
    readers: dict[int, str] = {}
    for operand in ("inputs", "weights", "outputs"):
        i = max(i for i, m in enumerate(spec.memories) if operand in m.holds and m.kind != "register_file")
        level = spec.memories[i]
        if level.kind != "sram":
            return (
                f"scalesim needs an SRAM buffer for {operand} (its ifmap, filter and ofmap SRAMs); "
                f"{operand} "
                f"are read from {level.name!r}, a {level.kind} level"
            )
        if i in readers:
            return (
                f"scalesim needs one SRAM per operand (its ifmap, filter and ofmap SRAMs); {readers[i]} "
                "and "
                f"{operand} share {level.name!r}"
            )
        readers[i] = operand
    return None


@_spec
class DeviceSpec:
    """A whole device file.

    With an ``ethos_u`` section, ``clock_mhz`` and ``memories`` follow from its Vela system configuration and
    memory mode (:mod:`hwsim.devices.ethos_u`) and the file gives neither.

    ``memory_model`` picks how memory traffic and stalls are modelled: ``hwsim`` (hwsim's own tiling and DMA
    simulation, the default) or ``scalesim`` (SCALE-Sim 3.0.0's double-buffered SRAMs, parameters in
    ``scalesim``; the device needs one SRAM per operand and an os/ws/is array).
    """

    schema_version: Literal[1]
    name: str
    description: str = ""
    sources: dict[str, str] = dataclasses.field(default_factory=dict)
    clock_mhz: PositiveFloat | None = None  # required unless an ethos_u section derives it
    mac_array: MacArraySpec
    vector_units: list[VectorUnitSpec] = dataclasses.field(default_factory=list)
    dma: DmaSpec
    memories: Annotated[list[MemorySpec], MinLen(2)] | None = None  # likewise
    technology: TechnologySpec | None = None
    performance_model: str = "hwsim"
    ethos_u: EthosUSpec | None = None
    memory_model: Literal["hwsim", "scalesim"] = "hwsim"
    scalesim: ScaleSimMemorySpec = ScaleSimMemorySpec()
    layer_overhead_cycles: Annotated[int, Ge(0)] = 0  # each layer's unit, before its first tile
    inference_overhead_cycles: Annotated[int, Ge(0)] = 0  # once per inference, before the first layer
    overhead_source: str = ""

    @staticmethod
    def before_validation(data):
        """An ``ethos_u`` section's derived clock and memories, added before the fields are checked."""
        if isinstance(data, dict) and isinstance(data.get("ethos_u"), dict):
            for field in ("clock_mhz", "memories"):
                if field in data:
                    raise at_field(
                        (field,),
                        "an Ethos-U device takes its clock and memories from "
                        "ethos_u.system_config and ethos_u.memory_mode; remove this field",
                    )
            from hwsim.config.records import RecordError, validate

            try:
                section = validate(EthosUSpec, data["ethos_u"])
            except RecordError:  # the ethos_u field's own validation reports it, at its line
                return data
            from hwsim.devices.ethos_u import derived_fields

            data = {**data, **derived_fields(dataclasses.asdict(section))}
        return data

    def __post_init__(self) -> None:
        self._known_model()
        self._hierarchy()
        self._scalesim_memory()

    def _scalesim_memory(self) -> None:
        if self.memory_model != "scalesim":
            return
        if self.performance_model not in ("hwsim", "scalesim-3.0"):
            raise at_field(
                ("memory_model",),
                "scalesim replaces the whole layer plan; it cannot be "
                "combined "
                f"with performance_model {self.performance_model!r}",
                self.memory_model,
            )
        problem = scalesim_memory_problem(self)
        if problem:
            raise at_field(("memory_model",), problem, self.memory_model)

    def _known_model(self) -> None:
        from hwsim.devices.names import PERF_MODEL_NAMES

        if self.performance_model not in PERF_MODEL_NAMES:
            import difflib

            close = difflib.get_close_matches(self.performance_model, PERF_MODEL_NAMES, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise at_field(
                ("performance_model",),
                f"unknown performance model; {hint}valid: {', '.join(PERF_MODEL_NAMES)}",
                self.performance_model,
            )

    def _hierarchy(self) -> None:
        for field in ("clock_mhz", "memories"):
            if getattr(self, field) is None and self.ethos_u is None:
                raise at_field((field,), "required field is missing (or give an ethos_u section)")
        if self.memories is None:
            return
        names = [m.name for m in self.memories]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise at_field(("memories", i, "name"), "duplicate memory name", name)
        units = [self.mac_array.name] + [v.name for v in self.vector_units]
        for i, name in enumerate(units[1:]):
            if name in units[: i + 1] or name in names:
                raise at_field(
                    ("vector_units", i, "name"),
                    "duplicate unit name (units and memories share one namespace)",
                    name,
                )
        if self.memories[0].kind != "off_chip":
            raise at_field(
                ("memories", 0, "kind"), "the first (outermost) level must be off_chip", self.memories[0].kind
            )
        seen_rf = False
        for i, m in enumerate(self.memories):
            if m.kind == "register_file":
                seen_rf = True
            elif seen_rf:
                raise at_field(("memories", i, "kind"), "register files must come last (innermost)", m.kind)
        for operand in ("weights", "inputs", "outputs"):
            if not any(operand in m.holds for m in self.memories if m.kind != "register_file"):
                raise at_field(("memories",), f"no off-chip or sram level holds {operand}")
        for home in ("weights", "activations"):
            if not any(home in m.homes for m in self.memories):
                raise at_field(("memories",), f"no level homes {home} (add it to a level's homes)")
        for i, m in enumerate(self.memories):
            for h in m.homes:
                need = ("weights",) if h == "weights" else ("inputs", "outputs")
                for op in need:
                    if op not in m.holds:
                        raise at_field(("memories", i, "homes"), f"homes {h} but does not hold {op}", m.homes)
