"""ONNX models on an Ethos-U device, timed as the TFLite file their full-integer conversion would be.

``tests/data/ethos_u/onnx`` holds model pairs (``benchmarks/build_onnx_pairs.py``): one network written in
torch, exported to ONNX and quantized by onnxruntime.quantization (QDQ, int8), and in Keras with the same
weights, converted to int8 TFLite by TensorFlow Lite's converter; ``vela_5.2.0.json`` holds what Vela 5.2.0
reports for the TFLite files. The conversion itself (:mod:`hwsim.workload.as_tflite`) is also checked on
small graphs written by hand.
"""

from __future__ import annotations

import doctest
import json
from pathlib import Path

import numpy as np
import pytest

from hwsim.devices.model import load_device, override
from hwsim.importers import load_model
from hwsim.schedule.simulate import simulate
from hwsim.workload import nhwc
from hwsim.workload.as_tflite import as_tflite
from hwsim.workload.graph import Graph, Op, QuantInfo, Tensor

DATA = Path(__file__).parents[2] / "data" / "ethos_u" / "onnx"
PINNED = json.loads((DATA / "vela_5.2.0.json").read_text())
TARGETS = sorted(PINNED["residual_cnn"])
# ONNX node -> operator index of the same layer in the TFLite twin
LAYERS = {
    "residual_cnn": {
        "x_QuantizeLinear": 0,
        "/c1/Conv": 1,
        "/pool/MaxPool": 2,
        "/dw/Conv": 3,
        "/pw/Conv": 4,
        "/c3/Conv": 5,
        "/Add": 6,
        "/GlobalAveragePool": 7,
        "/fc/Gemm": 8,
        "/Softmax": 9,
        "y_DequantizeLinear": 10,
    },
    "strided_flatten": {
        "x_QuantizeLinear": 0,
        "/c1/Conv": 2,
        "/dw/Conv": 3,
        "/pw/Conv": 4,
        "/Softmax": 5,
        "/Flatten": 6,
        "/fc/Gemm": 8,
        "y_DequantizeLinear": 9,
    },
}


def _device(target: str):
    acc, system, mode = target.split(".")
    return override(
        load_device(acc.replace("-", "_") + "_like"),
        {"ethos_u.system_config": system, "ethos_u.memory_mode": mode},
    )


@pytest.fixture(scope="module")
def timed():
    """(model, target) -> (the ONNX file's layers by name, the TFLite file's layers by operator index)."""
    out = {}
    for model in LAYERS:
        for target in TARGETS:
            onnx = simulate(DATA / f"{model}.onnx", _device(target), record_trace=False)
            tflite = simulate(DATA / f"{model}.tflite", _device(target), record_trace=False)
            out[model, target] = (
                {r.op: r for r in onnx.layers},
                {int(r.op.split(":")[0]): r for r in tflite.layers},
            )
    return out


# -- the real models -----------------------------------------------------------------------------------------
def test_converted_graph_is_the_tflite_twin():
    """The residual CNN's conversion has the TFLite file's ops, output shapes, int8 types, weight shapes and
    per-channel axes (its global pool a MEAN keeping H and W, then the Flatten as a RESHAPE view)."""
    converted = as_tflite(load_model(DATA / "residual_cnn.onnx")).graph
    twin = load_model(DATA / "residual_cnn.tflite")
    ours = [op for op in converted.ops if op.kind != "reshape"]
    assert [op.kind for op in ours] == [op.kind for op in twin.ops]
    for a, b in zip(ours, twin.ops):
        ya, yb = converted.tensors[a.outputs[0]], twin.tensors[b.outputs[0]]
        assert ya.dtype == yb.dtype
        assert ya.shape == yb.shape or (
            a.kind == "mean" and ya.shape == (1, 1, 1, 32) and yb.shape == (1, 32)
        )
        if b.kind in ("conv2d", "depthwise_conv2d", "fully_connected"):
            wa, wb = converted.tensors[a.inputs[1]], twin.tensors[b.inputs[1]]
            assert (wa.shape, wa.dtype, wa.quant.axis) == (wb.shape, wb.dtype, wb.quant.axis)
            assert a.attrs.get("padding") == b.attrs.get("padding")


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.split(".")[0])
def test_residual_cnn_layers_are_the_tflite_paths_and_velas(timed, target):
    """Every layer of the ONNX model takes the cycles of its TFLite twin's layer, which are Vela's; the ops
    a conversion removes (Dequantize/Quantize around ONNX Runtime's float Add, the Flatten) take none."""
    onnx, tflite = timed["residual_cnn", target]
    vela = PINNED["residual_cnn"][target]["layers"]
    for name, index in LAYERS["residual_cnn"].items():
        assert onnx[name].cycles == tflite[index].cycles == vela[str(index)], name
    assert sum(r.cycles for r in onnx.values()) == sum(r.cycles for r in tflite.values())
    assert all(r.cycles == 0 for name, r in onnx.items() if name not in LAYERS["residual_cnn"])


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.split(".")[0])
def test_strided_flatten_layers_are_the_tflite_paths_and_velas(timed, target):
    """Every layer equals its twin's and Vela's: the stride-2 convolution with torch's pads is the Keras
    twin's PAD and VALID convolution, which Vela folds into one padded convolution; the channel softmax; the
    Flatten as the TRANSPOSE of NCHW order (the twin's RESHAPE after it is a view)."""
    onnx, tflite = timed["strided_flatten", target]
    vela = PINNED["strided_flatten"][target]
    for name, index in LAYERS["strided_flatten"].items():
        assert onnx[name].cycles == tflite[index].cycles == vela["layers"][str(index)], name
    assert tflite[1].cycles == tflite[7].cycles == 0  # the PAD (folded) and the RESHAPE
    assert sum(r.cycles for r in onnx.values()) == vela["cycles"]
    assert (
        sum(r.unit == "cpu" for r in onnx.values())
        == sum(r.unit == "cpu" for r in tflite.values())
        == vela["cpu_ops"]
    )
    assert set(onnx["/Flatten"].mapping.loop_order.split(" + ")) == {"Transpose"}  # done in two on a U55


def test_one_plan_per_onnx_node_by_name(timed):
    """The result has one layer per op of the imported ONNX graph, in order, named by its node."""
    graph = load_model(DATA / "residual_cnn.onnx")
    onnx, _ = timed["residual_cnn", TARGETS[0]]
    assert list(onnx) == [op.name for op in graph.ops]
    assert onnx["x_QuantizeLinear"].unit == "cpu" and onnx["/Flatten"].mapping.unit == "(view)"


# -- the conversion on small graphs --------------------------------------------------------------------------
def _q(zero: int = 0) -> QuantInfo:
    return QuantInfo(np.array([0.05], np.float32), np.array([zero], np.int64))


def _graph(ops: list[Op], shapes: dict[str, tuple], consts: dict | None = None, dtype=np.int8) -> Graph:
    """An ONNX-style graph: activations of ``shapes`` (quantized ``dtype``), constants, the first op's
    input."""
    tensors = {
        n: Tensor(n, s, np.dtype(dtype), _q(128 if dtype == np.uint8 else 0)) for n, s in shapes.items()
    }
    for name, (data, quant) in (consts or {}).items():
        tensors[name] = Tensor(name, data.shape, data.dtype, quant, data)
    out = ops[-1].outputs[0]
    return Graph(tensors, ops, [ops[0].inputs[0]], [out], "test.onnx", "onnx")


def _conv(name: str, x: str, y: str, w: str, pads=(1, 1, 1, 1), stride=(1, 1)) -> Op:
    return Op(
        name,
        "conv2d",
        [x, w],
        [y],
        {
            "layout": "NCHW",
            "kernel": (3, 3),
            "stride": stride,
            "dilation": (1, 1),
            "padding": pads,
            "activation": None,
        },
    )


def _weights(out_c: int, in_c: int) -> tuple:
    data = np.arange(out_c * 9 * in_c, dtype=np.int64).reshape(out_c, 3, 3, in_c).astype(np.int8)
    return data, QuantInfo(np.full(out_c, 0.01, np.float32), np.zeros(out_c, np.int64), 0)


def test_feature_maps_are_nhwc_and_weights_tflites():
    """NCHW maps become NHWC; depthwise [H, W, C] weights [1, H, W, C] with the channel axis 3; uint8
    tensors int8 with the zero point less 128."""
    dw_w = np.ones((3, 3, 4), np.int8), QuantInfo(np.full(4, 0.01, np.float32), np.zeros(4, np.int64), 2)
    ops = [
        _conv("c", "x", "y", "w"),
        Op(
            "d",
            "depthwise_conv2d",
            ["y", "dw"],
            ["z"],
            {
                "layout": "NCHW",
                "kernel": (3, 3),
                "stride": (1, 1),
                "dilation": (1, 1),
                "padding": "same",
                "depth_multiplier": 1,
            },
        ),
    ]
    g = _graph(
        ops,
        {"x": (1, 3, 8, 6), "y": (1, 4, 8, 6), "z": (1, 4, 8, 6)},
        {"w": _weights(4, 3), "dw": dw_w},
        np.uint8,
    )
    t = as_tflite(g).graph
    assert [t.tensors[n].shape for n in ("x", "y", "z", "w", "dw")] == [
        (1, 8, 6, 3),
        (1, 8, 6, 4),
        (1, 8, 6, 4),
        (4, 3, 3, 3),
        (1, 3, 3, 4),
    ]
    assert t.tensors["dw"].quant.axis == 3 and t.tensors["w"].quant.axis == 0
    assert t.tensors["y"].dtype == np.int8 and int(t.tensors["y"].quant.zero_point[0]) == 0
    assert [op.attrs["layout"] for op in t.ops] == ["NHWC", "NHWC"] and t.format == "tflite"


@pytest.mark.parametrize("size,expected", [(7, "same"), (8, (1, 0, 1, 0))])
def test_explicit_pads(size, expected):
    """A stride-2 3x3 convolution padded 1 all round: SAME on an odd input; on an even one the padding
    Vela keeps when it folds the converter's PAD into the convolution (bottom and right unused)."""
    out = (size + 1) // 2
    g = _graph(
        [_conv("c", "x", "y", "w", stride=(2, 2))],
        {"x": (1, 3, size, size), "y": (1, 4, out, out)},
        {"w": _weights(4, 3)},
    )
    assert as_tflite(g).graph.ops[0].attrs["padding"] == expected


def _pooled(hw: int, tail: list[Op], shapes: dict) -> Graph:
    pool = Op(
        "p",
        "max_pool2d",
        [
            "x",
        ],
        ["m"],
        {"layout": "NCHW", "kernel": (2, 2), "stride": (2, 2), "dilation": (1, 1), "padding": (0, 0, 0, 0)},
    )
    return _graph([pool, *tail], {"x": (1, 4, 2 * hw, 2 * hw), "m": (1, 4, hw, hw), **shapes})


@pytest.mark.parametrize(
    "hw,kinds", [(2, ["max_pool2d", "transpose", "reshape"]), (1, ["max_pool2d", "reshape"])]
)
def test_flatten_of_a_map_keeps_nchw_order(hw, kinds):
    """A Flatten reads the map through a transpose back to NCHW, which is a plain RESHAPE when H = W = 1."""
    g = _pooled(hw, [Op("f", "flatten", ["m"], ["v"], {"axis": 1})], {"v": (1, 4 * hw * hw)})
    converted = as_tflite(g)
    assert [op.kind for op in converted.graph.ops] == kinds
    assert converted.origin == [0] + [1] * (len(kinds) - 1)
    if hw == 2:
        assert (
            converted.graph.ops[1].attrs["perm"] == nhwc.TO_NCHW
            and converted.graph.ops[1].name == "f/to_nchw"
        )


def test_transpose_to_nhwc_at_the_end_is_a_view():
    """ONNX's own NCHW -> NHWC transpose of a map is already TFLite's order: a RESHAPE of equal shapes."""
    g = _pooled(2, [Op("t", "transpose", ["m"], ["o"], {"perm": (0, 2, 3, 1)})], {"o": (1, 2, 2, 4)})
    t = as_tflite(g).graph
    assert [op.kind for op in t.ops] == ["max_pool2d", "reshape"] and t.tensors["o"].shape == t.tensors[
        "m"
    ].shape


@pytest.mark.parametrize("axis,kinds", [(1, ["softmax"]), (-1, ["transpose", "softmax", "transpose"])])
def test_softmax_axis(axis, kinds):
    """A softmax over a map's channels is TFLite's SOFTMAX over its last axis; over W, transposes around
    it."""
    g = _pooled(
        2, [Op("s", "qlinear_softmax", ["m"], ["o"], {"axis": axis, "opset": 13})], {"o": (1, 4, 2, 2)}
    )
    assert [op.kind for op in as_tflite(g).graph.ops[1:]] == kinds


def test_float_qdq_add_is_an_int8_add_and_broadcast_constant_is_nhwc():
    """DequantizeLinear -> float Add -> QuantizeLinear is one int8 ADD; a Dequantize something else reads
    stays; a [C, 1, 1] constant added to a map becomes [1, 1, 1, C]."""
    ops = [
        _conv("c", "x", "y", "w"),
        Op("dq", "dequantize", ["y"], ["yf"]),
        Op("a", "add_f32", ["yf", "yf"], ["sf"]),
        Op("q", "quantize", ["sf"], ["s"]),
        Op("b", "qlinear_add", ["s", "k"], ["o"], {"activation": None}),
        Op("m", "mul_f32", ["yf", "yf"], ["out"]),
    ]
    g = _graph(
        ops,
        {"x": (1, 3, 4, 4), "y": (1, 4, 4, 4), "s": (1, 4, 4, 4), "o": (1, 4, 4, 4)},
        {"w": _weights(4, 3), "k": (np.arange(4, dtype=np.int8).reshape(4, 1, 1), _q())},
    )
    for name, shape in (("yf", (1, 4, 4, 4)), ("sf", (1, 4, 4, 4)), ("out", (1, 4, 4, 4))):
        g.tensors[name] = Tensor(name, shape, np.dtype(np.float32))
    g.outputs = ["o", "out"]
    converted = as_tflite(g)
    t = converted.graph
    assert [(op.name, op.kind) for op in t.ops] == [
        ("c", "conv2d"),
        ("dq", "dequantize"),
        ("a", "add"),
        ("b", "add"),
        ("m", "mul"),
    ]
    assert t.ops[2].inputs == ["y", "y"] and t.ops[2].outputs == ["s"] and converted.origin == [0, 1, 2, 4, 5]
    assert t.tensors["k#4d"].shape == (1, 1, 1, 4) and t.tensors["k#4d"].data.ravel().tolist() == [0, 1, 2, 3]


def test_float_only_kinds_carry_a_cpu_reason():
    """A float op TFLite has no builtin for is kept, with why Vela leaves it to the CPU."""
    g = _pooled(
        2,
        [Op("dq", "dequantize", ["m"], ["f"]), Op("e", "erf_f32", ["f"], ["o"])],
        {"f": (1, 4, 2, 2), "o": (1, 4, 2, 2)},
    )
    t = as_tflite(g).graph
    assert "Erf" in t.ops[-1].attrs["cpu_reason"] and t.tensors["o"].shape == (1, 2, 2, 4)


def test_layout_arithmetic_examples():
    """The docstring examples of hwsim.workload.nhwc hold."""
    result = doctest.testmod(nhwc)
    assert result.failed == 0 and result.attempted > 0
