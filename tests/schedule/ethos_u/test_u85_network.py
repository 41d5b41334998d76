"""The Ethos-U85 scheduling pipeline against Vela 5.2.0, and the op-group packing rules it follows.

``tests/data/ethos_u/vela_u85.json`` holds what Vela 5.2.0 reported on the five U85 sizes (system config
``Ethos_U85_SYS_DRAM_Mid``, memory mode ``Dedicated_Sram_384KB``): every shipped test model's network
cycles; for a few layers their cycles, op group, weight format, buffering and depth slices; and the NPU
cycles of a lone LUT op, whose table load they include. The other tests build small graphs by hand, each
checking one packing rule (Vela's ``SchedulerPacking::CanPack`` and ``EthosU85OpGroup``) or what a chain
changes downstream.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pytest

from hwsim.devices.vela_systems import MEMORY_MODES, SYSTEM_CONFIGS
from hwsim.importers import load_model
from hwsim.schedule.ethos_u.family import family
from hwsim.schedule.ethos_u.formats import assign_formats
from hwsim.schedule.ethos_u.lowering import lower
from hwsim.schedule.ethos_u.network import OpResult, estimate
from hwsim.schedule.ethos_u.scheduler import Schedule, Scheduler
from hwsim.schedule.ethos_u.system import memory_system
from hwsim.workload.graph import Graph, Op, QuantInfo, Tensor

DATA = Path(__file__).parents[2] / "data" / "ethos_u"
PINNED = json.loads((DATA / "vela_u85.json").read_text())
SYSTEM, MODE = PINNED["system"].split(".")
NETWORKS = [(model, acc) for model, sizes in sorted(PINNED["networks"].items()) for acc in sorted(sizes)]
LAYERS = PINNED["layers"]


def _schedule(graph: Graph, accelerator: str) -> tuple[Scheduler, Schedule, list[OpResult]]:
    """The vela-5.2 pipeline on one U85 size: lowered, laid out, scheduled and estimated."""
    fam = family(accelerator)
    ops = lower(graph, fam.name)
    assign_formats(ops, fam.name)
    sched = Scheduler(fam, memory_system(SYSTEM_CONFIGS[SYSTEM], MEMORY_MODES[MODE]), ops)
    chosen = sched.schedule()
    return sched, chosen, estimate(sched, chosen.costs)


@functools.cache
def _test_model(model: str, accelerator: str) -> tuple[Graph, list[OpResult]]:
    graph = load_model(DATA / f"{model}.tflite")
    return graph, _schedule(graph, accelerator)[2]


def _format_name(result: OpResult) -> str:
    """Vela's name of the op's weight format ("" without weights)."""
    if result.cost is None or result.op.weights is None:
        return ""
    fmt = result.cost.weight_format
    return ("Fast" if fmt.fast else "Default") + ("|Sparse2_4" if fmt.sparse else "")


@pytest.mark.parametrize("model,accelerator", NETWORKS, ids=[f"{m}-{a}" for m, a in NETWORKS])
def test_network_cycles_equal_vela(model, accelerator):
    """The network takes exactly Vela's cycles: its op groups, weight formats, buffering and cascades are
    Vela's."""
    _, results = _test_model(model, accelerator)
    assert sum(r.total_cycles for r in results) == PINNED["networks"][model][accelerator]


@pytest.mark.parametrize(
    "layer", LAYERS, ids=[f"{x['model']}-{x['accelerator']}-op{x['operator_index']}" for x in LAYERS]
)
def test_layer_equals_vela(layer):
    """The layer's cycles, op group, weight format, weight buffering and depth slices are the ones Vela
    chose."""
    graph, results = _test_model(layer["model"], layer["accelerator"])
    mine = [r for r in results if graph.ops[r.op.source].operator_index == layer["operator_index"]]
    first = mine[0]
    assert sum(r.total_cycles for r in mine) == layer["op_cycles"]
    assert first.npu_cycles == layer["npu_cycles"]
    if not layer["group"]:  # chained into the op before it, which is charged for it
        assert first.op.parent is not None and first.cost is None
        return
    assert ([m.type for m in first.op.group] or [first.op.type]) == layer["group"]
    assert _format_name(first) == layer["weight_format"]
    assert first.cost.buffering == layer["weight_buffering"]
    assert first.cost.depth_slices == layer["depth_slices"]
    assert (first.cost.cascade != 0) == layer["cascaded"]


@pytest.mark.parametrize(
    "case", PINNED["lut_ops"]["cases"], ids=lambda c: f"{c['accelerator']}-int{c['bits']}"
)
def test_lut_op_loads_its_table_as_vela(case):
    """A lone LUT op first copies its table into the LUT RAM; its NPU cycles, that copy included, are
    Vela's."""
    shape, dtype = tuple(PINNED["lut_ops"]["shape"]), f"int{case['bits']}"
    graph = Graph(
        {"x": _t("x", shape, dtype), "y": _t("y", shape, dtype)},
        [Op("0:logistic", "logistic", ["x"], ["y"])],
        ["x"],
        ["y"],
        "hand-made",
        "",
    )
    sched, _, results = _schedule(graph, case["accelerator"])
    assert [r.npu_cycles for r in results] == [case["npu_cycles"]]
    assert sched.fam.lut_transfer(sched.mem.const, case["bits"]) > 0


# -- packing rules on hand-made graphs ---------------------------------------------------------------------
def _t(name: str, shape, dtype: str = "int8", data: np.ndarray | None = None) -> Tensor:
    return Tensor(
        name, tuple(shape), np.dtype(dtype), QuantInfo(np.array([0.05], np.float32), np.array([0])), data
    )


class _Net:
    """A small int8 graph built op by op on (1, 8, 8, 16) feature maps."""

    def __init__(self) -> None:
        self.tensors: dict[str, Tensor] = {"x": _t("x", (1, 8, 8, 16))}
        self.ops: list[Op] = []

    def op(self, kind: str, inputs: list[str], out: Tensor, **attrs) -> str:
        self.tensors[out.name] = out
        self.ops.append(Op(f"{len(self.ops)}:{kind}", kind, inputs, [out.name], attrs))
        return out.name

    def conv(self, x: str, name: str, activation: str | None = None) -> str:
        weights = np.random.default_rng(len(self.ops)).integers(-127, 128, (16, 1, 1, 16)).astype(np.int8)
        self.tensors[f"{name}_w"] = _t(f"{name}_w", weights.shape, data=weights)
        return self.op(
            "conv2d",
            [x, f"{name}_w"],
            _t(name, (1, 8, 8, 16)),
            kernel=(1, 1),
            stride=(1, 1),
            padding="valid",
            activation=activation,
        )

    def binary(self, kind: str, a: str, b: str, name: str, activation: str | None = None) -> str:
        return self.op(kind, [a, b], _t(name, (1, 8, 8, 16)), activation=activation)

    def scalar(self, name: str) -> str:
        self.tensors[name] = _t(name, (1,), data=np.array([3], np.int8))
        return name

    def graph(self, inputs: list[str], outputs: list[str]) -> Graph:
        return Graph(self.tensors, self.ops, inputs, outputs, "hand-made", "")


def _residual() -> Graph:
    """x -> conv a -> conv b; add(b, a) with a ReLU: the Add can chain into conv b, its ReLU fuse after it."""
    net = _Net()
    a = net.conv("x", "a")
    b = net.conv(a, "b")
    net.binary("add", b, a, "y", activation="relu")
    return net.graph(["x"], ["y"])


def _primaries(ops) -> list[list[str]]:
    """Each primary op's group as op types (a lone op as itself)."""
    return [[m.type for m in op.group] or [op.type] for op in ops if op.parent is None]


def test_activation_fuses_into_its_producer():
    """A convolution's ReLU runs in its output stage: one op, the ReLU recorded in its group and as its
    activation."""
    net = _Net()
    net.conv("x", "y", activation="relu")
    ops = lower(net.graph(["x"], ["y"]), "u85")
    assert _primaries(ops) == [["Conv2D", "Relu"]]
    assert ops[0].activation == "Relu" and ops[0].ofm.tensor.name == "y"


def test_residual_add_chains_into_the_convolution_before_it():
    """The Add reads conv b's output from the chaining buffer: it joins conv b's group, shares its index and
    neither conv b's output nor the Add's pre-ReLU output is written to memory."""
    ops = lower(_residual(), "u85")
    _, conv_b, add = ops
    assert _primaries(ops) == [["Conv2D"], ["Conv2D", "Add", "Relu"]]
    assert add.parent is conv_b and add.index == conv_b.index == 1
    assert [t.name for t in conv_b.internal_tensors()] == ["b", "2:add/Add_act"]
    assert conv_b.final_ofm.tensor.name == "y"


def test_u55_chains_nothing():
    """On U55/U65 the Add stays an op of its own, its ReLU fused into it."""
    ops = lower(_residual(), "u55")
    assert [(op.type, op.activation, op.parent) for op in ops] == [
        ("Conv2D", None, None),
        ("Conv2D", None, None),
        ("Add", "Relu", None),
    ]


def test_a_map_with_two_readers_is_not_chained():
    """Conv a's output is read by conv b and by the Add, so nothing joins conv a."""
    assert _primaries(lower(_residual(), "u85"))[0] == ["Conv2D"]


def test_a_graph_output_is_not_chained():
    """Conv b's output is also a graph output, so the Add after it stays an op of its own."""
    graph = _residual()
    graph.outputs.append("b")
    assert _primaries(lower(graph, "u85")) == [["Conv2D"], ["Conv2D"], ["Add", "Relu"]]


def test_a_reshape_after_a_convolution_keeps_the_activation_apart():
    """A ReLU reading a convolution's output through a reshape cannot fuse: the convolution's output depends
    on its
    shape."""
    net = _Net()
    y = net.conv("x", "y")
    flat = net.op("reshape", [y], _t("flat", (1, 4, 16, 16)))
    net.op("relu", [flat], _t("z", (1, 4, 16, 16)))
    assert _primaries(lower(net.graph(["x"], ["z"]), "u85")) == [["Conv2D"], ["Relu"]]


def test_a_chain_holds_at_most_four_ops():
    """A convolution followed by four multiplies by a constant: three chain into it, the fourth starts a
    new group."""
    net = _Net()
    out = net.conv("x", "c")
    for i in range(4):
        out = net.binary("mul", out, net.scalar(f"k{i}"), f"m{i}")
    assert _primaries(lower(net.graph(["x"], [out]), "u85")) == [["Conv2D", "Mul", "Mul", "Mul"], ["Mul"]]


def test_chained_maps_take_no_memory():
    """A map passed within an op group has no live range, stays out of the staging SRAM, and the chained Add
    reports no
    cycles of its own: its primary is charged for it."""
    sched, chosen, results = _schedule(_residual(), "ethos-u85-256")
    conv_b = sched.ops[1]
    chained = conv_b.internal_tensors()
    ranges = sched.live_ranges(chosen)
    assert all(id(t) not in ranges.by_tensor and t.memory == "arena" for t in chained)
    assert [(r.op.type, r.total_cycles == 0, r.traffic == {}) for r in results] == [
        ("Conv2D", False, False),
        ("Conv2D", False, False),
        ("Add", True, True),
    ]
