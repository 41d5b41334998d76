"""The Edge TPU compiler's placement decisions, on hwsim's mapper: which ops the Edge TPU runs, which
weights stay on chip, and what crosses USB each inference (``performance_model: edgetpu_compiler``).

It follows what Coral documents of the Edge TPU Compiler (version 16) and its runtime; the timed tiles of
each Edge TPU layer are hwsim's own (:func:`hwsim.schedule.mapper.plan_op`), played by the same simulator:

* **One Edge TPU segment.** The compiler maps ops to the Edge TPU until the first op it does not
  support; that op and every op after it run on the host CPU, "even if supported operations occur later"
  (Coral, "TensorFlow models on the Edge TPU", model requirements). "After" is in the data flow, not in the
  file's op order: Coral's own compiled DeepLab v3 (``deeplabv3_mnv2_pascal_quant_edgetpu.tflite``,
  google-coral/edgetpu test_data) runs the 1x1 convolution that follows its first unmapped op in the file
  but does not read it on the Edge TPU (the segment's second output). So the host runs the ops that are not
  supported and every op that reads, directly or not, what one of them wrote. The Edge TPU supports the ops
  listed by the device's MAC array and on-chip vector units, except a bilinear resize with
  ``align_corners`` (:func:`unmapped_reason`); the host is the vector unit marked ``on_host``: its work is
  timed (elements at its lanes, MACs at its ``macs_per_lane_per_cycle``), its energy and area are not the
  device's.
* **Feature maps first, then parameters.** On-chip memory holds the feature maps; the compiler reserves
  room for them before it caches parameters, so the "on-chip memory available for caching model
  parameters" it reports shrinks as feature maps grow (8 MiB less 1.75 MiB for ResNet-50 at 224x224 in a
  published compiler log). Here the reserve is the largest activation working set of one op (its inputs
  and outputs, the mapper's own rule for homing feature maps), counting only ops whose working set fits
  the memory; the rest live in host memory and cross USB.
* **Parameter caching.** What remains, up to the level's ``persistent_weights_bytes``, caches whole layers'
  parameters in graph order (a layer too large for what is left streams whole, as the compiler's logs show
  for one 64 MiB layer); the others stream from host memory over USB every inference ("off-chip memory
  used for streaming uncached model parameters").
* **USB.** The graph's inputs, its outputs and every tensor the host segment reads are homed in host
  memory, so they cross the link (the device's outermost level) as DMA transfers.
* **Overheads.** ``layer_overhead_cycles`` per Edge TPU layer and ``inference_overhead_cycles`` per
  inference come from the device file (see :mod:`hwsim.schedule.mapper`).
"""

from __future__ import annotations

import dataclasses
import math

from hwsim.devices.model import Device
from hwsim.errors import ConfigError
from hwsim.schedule.counts import ActionCounts
from hwsim.schedule.mapper import (
    VIEW_OPS,
    LayerPlan,
    Mapping,
    Tile,
    act_bytes_by_op,
    assign_homes,
    overhead_plan,
    plan_op,
    tensor_bytes,
    tensor_elems,
    vector_passes,
)
from hwsim.workload.graph import Graph, Op
from hwsim.workload.opdefs import mac_count, schedule_kind


def plan_edgetpu(graph: Graph, device: Device) -> list[LayerPlan]:
    """Layer plans of ``graph`` as the Edge TPU compiler would place it on ``device`` (module docstring)."""
    host = host_unit(device)
    on_host = host_ops(graph, device)
    tpu = edgetpu_segment(graph, device)
    placed = cache_parameters(tpu, device)
    homes = assign_homes(tpu, placed)
    plans = [plan_op(tpu, op, placed, homes) for op in tpu.ops]
    plans += [host_plan(graph, op, device, host, on_host[op.name]) for op in graph.ops if op.name in on_host]
    head = overhead_plan(device)
    return ([head] if head else []) + plans


def host_unit(device: Device) -> str:
    """The name of the device's ``on_host`` vector unit (the host CPU that runs what the Edge TPU cannot)."""
    hosts = [v.name for v in device.spec.vector_units if v.on_host]
    if len(hosts) != 1:
        raise ConfigError(
            f"{device.path or device.name}: the edgetpu_compiler performance model needs "
            "exactly one "
            f"vector unit with on_host: true (the host CPU); found {len(hosts)}"
        )
    return hosts[0]


# The Edge TPU Compiler's message for a bilinear resize it leaves to the CPU (google-coral/edgetpu#63).
IMPRECISE_RESIZE = "Image-interpolation layer won't run precisely enough on Edge TPU"
AFTER_UNMAPPED = "reads the output of an op the Edge TPU does not run (one Edge TPU segment)"


def unmapped_reason(op: Op, device: Device) -> str:
    """Why the compiler leaves ``op`` itself to the CPU, or "" when the Edge TPU runs it.

    An op no Edge TPU unit lists is not supported. A bilinear resize is refused when the compiler judges
    its interpolation imprecise on the Edge TPU; Coral documents that this depends on the sizes without
    giving the rule (supported-operations table), and its compiler says so in the message above. Coral's
    compiled DeepLab v3 leaves all three of its resizes to the CPU (1x1 to 33x33, 33x33 to itself, 33x33 to
    513x513); all have ``align_corners``, which is what sets them apart from the 64x64 to 128x128 upsampling
    the compiler maps in google-coral/edgetpu#31. So ``align_corners`` is the condition here: an
    assumption that fits those two published cases, not Coral's rule.
    """
    if op.kind in VIEW_OPS:
        return ""
    if device.unit_for(schedule_kind(op.kind)) == host_unit(device):
        return "not among the Edge TPU's supported operations"
    if op.kind == "resize_bilinear" and op.attrs.get("align_corners"):
        return IMPRECISE_RESIZE
    return ""


def host_ops(graph: Graph, device: Device) -> dict[str, str]:
    """The ops the host runs, by name in graph order, each with its reason: those the Edge TPU does not run
    and every op that reads (through any chain of ops) what one of them wrote."""
    tainted: set[str] = set()
    out: dict[str, str] = {}
    for op in graph.ops:
        reason = unmapped_reason(op, device)
        if not reason and any(n in tainted for n in op.inputs if n):
            reason = AFTER_UNMAPPED
        if reason:
            out[op.name] = reason
            tainted.update(op.outputs)
    return out


def edgetpu_segment(graph: Graph, device: Device) -> Graph:
    """The Edge TPU segment as a graph: its outputs are the graph's and whatever the host segment reads."""
    later = host_ops(graph, device)
    ops = [op for op in graph.ops if op.name not in later]
    produced = {n for op in ops for n in op.outputs}
    read_later = {n for op in graph.ops if op.name in later for n in op.inputs if n}
    outputs = [n for n in graph.tensors if n in produced and (n in read_later or n in graph.outputs)]
    return Graph(graph.tensors, ops, list(graph.inputs), outputs, graph.source, graph.format)


def activation_reserve_bytes(graph: Graph, capacity_bytes: int) -> int:
    """The largest activation working set (inputs and outputs) of one op that fits ``capacity_bytes``."""
    return max((b for b in act_bytes_by_op(graph).values() if b <= capacity_bytes), default=0)


def cache_parameters(graph: Graph, device: Device) -> Device:
    """``device`` with its parameter cache set to what the compiler caches for ``graph``.

    The cache level is the one with ``persistent_weights_bytes``; its budget is that value, or the level's
    size less the feature-map reserve when smaller. Whole layers are cached in graph order while they fit
    (:func:`hwsim.schedule.mapper.assign_homes`); the returned device's ``persistent_weights_bytes`` is what
    they occupy, so that the rest of the level is left to feature maps and streamed tiles.
    """
    levels = device.levels
    cache = [i for i, m in enumerate(levels) if m.persistent_weights_bytes]
    if len(cache) != 1 or levels[cache[0]].size_bytes is None:
        raise ConfigError(
            f"{device.path or device.name}: the edgetpu_compiler performance model needs one "
            "on-chip "
            "level with persistent_weights_bytes (the parameter cache)"
        )
    level = levels[cache[0]]
    budget = min(
        level.persistent_weights_bytes, level.size_bytes - activation_reserve_bytes(graph, level.size_bytes)
    )
    budgeted = _with_cache(device, cache[0], max(budget, 0))
    homes = assign_homes(graph, budgeted)
    cached = sum(
        tensor_bytes(t) for n, t in graph.tensors.items() if t.is_parameter and homes.get(n) == cache[0]
    )
    return _with_cache(device, cache[0], cached)


def _with_cache(device: Device, index: int, nbytes: int) -> Device:
    memories = list(device.spec.memories)
    memories[index] = dataclasses.replace(memories[index], persistent_weights_bytes=nbytes)
    return Device(dataclasses.replace(device.spec, memories=memories), device.path)


def host_plan(graph: Graph, op: Op, device: Device, host: str, reason: str = "") -> LayerPlan:
    """One op on the host CPU: its elements at the host unit's lanes per device cycle, or its MACs at
    ``lanes x macs_per_lane_per_cycle`` when it has more; no device traffic. ``reason`` says why it is there.

    The host's energy is not the device's, so the plan has no action counts.
    """
    if op.kind in VIEW_OPS:
        return LayerPlan(op.name, op.kind, "", 0, "", 0, [], Mapping(unit="(view)"), ActionCounts())
    unit = device.vector_unit(host)
    acts = [n for n in op.inputs if n and not graph.tensors[n].is_parameter]
    elems_in = sum(tensor_elems(graph.tensors[n]) for n in acts)
    elems_out = sum(tensor_elems(graph.tensors[n]) for n in op.outputs)
    lanes = max(1, unit.vector_bits // 8) * unit.count
    macs = mac_count(graph, op)
    cycles = max(
        1,
        math.ceil(max(elems_in, elems_out * vector_passes(op, elems_in, elems_out)) / lanes),
        math.ceil(macs / (lanes * unit.macs_per_lane_per_cycle)),
    )
    return LayerPlan(
        op.name,
        op.kind,
        host,
        macs,
        "",
        cycles,
        [Tile(cycles, 0)],
        Mapping(unit=host, loop_order="elements", tile={"elements": elems_out}, reason=reason),
        ActionCounts(),
    )
