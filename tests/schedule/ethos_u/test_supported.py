"""Which TFLite operators Vela 5.2.0 runs on the NPU and which it leaves to the CPU, reproduced by ``npu_ok``.

The models of ``placement_models.py`` are converted once by the TFLite converter
(``tests/data/tflite/placement``); Vela's placement of each of their operators was pinned by
``benchmarks/pin_vela_placement.py``
(``tests/data/ethos_u/vela_placement.json``). The other tests check one rule each on hand-made graphs, on both
sides of its limit.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hwsim.importers import load_model
from hwsim.importers.tflite_file import load_tflite
from hwsim.schedule.ethos_u.lowering import lower
from hwsim.schedule.ethos_u.supported import npu_ok
from hwsim.workload.graph import Graph, Op, QuantInfo, Tensor
from tests.runtimes.conftest import stored_tflite
from tests.schedule.ethos_u.placement_models import MODELS

ROOT = Path(__file__).parents[3]
PINNED = json.loads((ROOT / "tests" / "data" / "ethos_u" / "vela_placement.json").read_text())


@pytest.fixture(scope="module")
def models() -> dict[str, Path]:
    """The placement models as stored (``benchmarks/build_test_models.py placement``)."""
    return stored_tflite("placement", MODELS)


@pytest.mark.parametrize("family", ["u55", "u85"])
@pytest.mark.parametrize("model", list(MODELS))
def test_placement_equals_vela(models, model, family):
    """Every operator hwsim reads is placed where Vela placed it; hwsim reads every operator Vela left to
    the CPU."""
    pinned = PINNED[model]
    graph = load_tflite(models[model])
    wrong, seen = [], set()
    for op in graph.ops:
        index = op.operator_index
        seen.add(index)
        expected = f"{index}:{pinned['operators'][index]}"
        assert op.name == expected, (
            "the converter wrote other operators than when pinned: rerun the pin script"
        )
        reason = npu_ok(graph, op, family)
        if (reason is not None) != (pinned[family][index] == "cpu"):
            wrong.append((op.name, pinned[family][index], reason))
    assert wrong == []
    assert [i for i, p in enumerate(pinned[family]) if p == "cpu" and i not in seen] == []


def test_lowering_makes_rejected_operators_cpu_ops_with_the_reason(models):
    """Each operator Vela rejects becomes one CPU op carrying the rule; other CPU ops are ops hwsim cannot
    lower yet."""
    graph = load_tflite(models["int8"])
    for family in ("u55", "u85"):
        reasons: dict[int, list[str]] = {}
        for vop in lower(graph, family):
            if not vop.npu:
                reasons.setdefault(vop.source, []).append(vop.cpu_reason)
        rejected = {i: npu_ok(graph, op, family) for i, op in enumerate(graph.ops)}
        assert {i: r for i, r in reasons.items() if rejected[i]} == {i: [r] for i, r in rejected.items() if r}
        assert all(r[0].startswith("hwsim does not lower") for i, r in reasons.items() if not rejected[i])


def test_simulate_shows_each_cpu_op_with_its_rule(models):
    """The reason reaches the user: under the op in the printed table and as ``cpu_reason`` in the rows."""
    from hwsim.schedule.result_files import layer_rows
    from hwsim.schedule.simulate import simulate

    graph = load_tflite(models["int8"])
    result = simulate(graph, "ethos_u55_128_like", record_trace=False)
    rows = {r["name"]: r for r in layer_rows(result)}
    table = result.table()
    for op in graph.ops:
        reason = npu_ok(graph, op, "u55")
        if reason is not None:
            assert rows[op.name]["unit"] == "cpu" and rows[op.name]["cpu_reason"] == reason
            assert f"    cpu: {reason}" in table
    assert all(r["cpu_reason"] is None for r in rows.values() if r["unit"] == "npu")


def test_rules_apply_to_tflite_graphs_only():
    """A layer-YAML workload is lowered as before: its 4-bit depthwise weights stay on the NPU."""
    graph = load_model(ROOT / "workloads" / "tiny.yaml")
    assert all(vop.npu for vop in lower(graph, "u55"))


# -- single rules on hand-made graphs ----------------------------------------------------------------------
def _t(name, shape, dtype="int8", scale=0.05, zero=0, data=None, bits=None) -> Tensor:
    """A tensor; ``scale=None`` leaves it unquantized, a list of scales quantizes it per axis."""
    quant = None
    if scale is not None:
        scales = np.atleast_1d(np.asarray(scale, np.float32))
        quant = QuantInfo(
            scales,
            np.broadcast_to(np.asarray(zero, np.int64), scales.shape).copy(),
            0 if scales.size > 1 else None,
        )
    return Tensor(name, tuple(shape), np.dtype(dtype), quant, data, bits)


TFLITE_NAMES = {
    "conv2d": "CONV_2D",
    "depthwise_conv2d": "DEPTHWISE_CONV_2D",
    "avg_pool2d": "AVERAGE_POOL_2D",
    "max_pool2d": "MAX_POOL_2D",
}


def _check(kind, ins, outs, family="u55", **attrs) -> str | None:
    """``npu_ok`` of one op of ``kind`` reading ``ins`` and writing ``outs`` in a graph read from a .tflite
    file."""
    tensors = {t.name: t for t in ins + outs}
    op = Op(
        f"0:{TFLITE_NAMES.get(kind, kind.upper())}",
        kind,
        [t.name for t in ins],
        [t.name for t in outs],
        attrs,
    )
    graph = Graph(
        tensors,
        [op],
        [t.name for t in ins if not t.is_constant],
        [t.name for t in outs],
        "test.tflite",
        "tflite",
    )
    return npu_ok(graph, op, family)


def _conv(
    ifm,
    out_hw,
    kernel=(1, 1),
    stride=(1, 1),
    padding="valid",
    family="u55",
    weights=None,
    bias=None,
    out_channels=4,
    kind="conv2d",
    dilation=(1, 1),
):
    """``npu_ok`` of a convolution of ``ifm`` (its weights all 1 unless given, a zero int32 bias unless
    given)."""
    cin = ifm.shape[-1]
    shape = (1, *kernel, cin * out_channels) if kind == "depthwise_conv2d" else (out_channels, *kernel, cin)
    w = weights or _t("w", shape, data=np.ones(shape, np.int8))
    b = bias or _t(
        "b",
        (shape[-1] if kind == "depthwise_conv2d" else out_channels,),
        "int32",
        scale=None,
        data=np.zeros(shape[-1] if kind == "depthwise_conv2d" else out_channels, np.int32),
    )
    out = _t("y", (1, *out_hw, shape[-1] if kind == "depthwise_conv2d" else out_channels), ifm.dtype.name)
    return _check(
        kind, [ifm, w, b], [out], family, kernel=kernel, stride=stride, padding=padding, dilation=dilation
    )


def _unary(kind, shape=(1, 8, 8, 4), dtype="int8", family="u55", out_shape=None, out_dtype=None, **attrs):
    return _check(
        kind, [_t("x", shape, dtype)], [_t("y", out_shape or shape, out_dtype or dtype)], family, **attrs
    )


def _binary(kind, dtype="int8", family="u55", scale=0.05, zero=0, **attrs):
    shape = (1, 8, 8, 4)
    ins = [_t("a", shape, dtype, scale, zero), _t("b", shape, dtype, scale, zero)]
    return _check(kind, ins, [_t("y", shape, dtype, scale, zero)], family, **attrs)


def test_family_names():
    """A U65 is checked with the U55 rules, a U85 with its own, and any other family is refused."""
    ifm = _t("x", (1, 16, 16, 8))
    dw = [
        _conv(ifm, (4, 4), (3, 3), (4, 4), "same", fam, kind="depthwise_conv2d", out_channels=1)
        for fam in ("u55", "u65", "u85")
    ]
    assert dw[0] == dw[1] == "stride (4, 4) (Vela U55: DEPTHWISE_CONV_2D strides must be in 1..3)"
    assert dw[2] is None
    with pytest.raises(ValueError, match="family must be one of"):
        _unary("relu", family="u75")


def test_operator_kinds_without_npu_support():
    """GATHER runs on a U85 only, SQRT on neither, and the reason names the TFLite operator."""
    table, idx = _t("t", (10, 8)), _t("i", (4,), "int32", scale=None)
    gather = [
        _check("gather", [table, idx], [_t("y", (4, 8))], fam, axis=0, batch_dims=0) for fam in ("u55", "u85")
    ]
    assert gather == ["Vela U55 has no NPU support for GATHER", None]
    assert _unary("sqrt", family="u85") == "Vela U85 has no NPU support for SQRT"


def test_feature_map_types():
    """Float feature maps stay on the CPU; bool ones are accepted by a U85 only."""
    assert "feature maps must be" in _unary("relu", dtype="float32")
    assert "feature maps must be" in _unary("reshape", dtype="bool", family="u55")
    assert (
        _check("reshape", [_t("x", (1, 8, 8, 4), "bool", None)], [_t("y", (1, 256), "bool", None)], "u85")
        is None
    )


def test_quantization_is_required_except_for_int32_and_some_kinds():
    """An unquantized int8 ADD stays on the CPU, an int32 one does not; TRANSPOSE needs no quantization."""
    assert "has no quantization" in _binary("add", scale=None)
    assert _binary("add", dtype="int32", scale=None) is None
    assert _unary("transpose", dtype="int8", perm=(0, 2, 1, 3)) is None
    x = _t("x", (1, 8, 8, 4), scale=None)
    assert _check("transpose", [x], [_t("y", (1, 8, 8, 4), scale=None)], perm=(0, 2, 1, 3)) is None


def test_per_axis_quantization_only_for_weighted_operators():
    """Per-axis scales stop an ADD but not a convolution's weights."""
    shape = (1, 8, 8, 4)
    ins = [_t("a", shape, scale=[0.1, 0.2, 0.3, 0.4]), _t("b", shape)]
    assert "quantized per axis" in _check("add", ins, [_t("y", shape)])
    w = _t("w", (4, 1, 1, 4), scale=[0.1, 0.2, 0.3, 0.4], data=np.ones((4, 1, 1, 4), np.int8))
    assert _conv(_t("x", shape), (8, 8), weights=w) is None


def test_scales_of_2_to_the_32_or_more_are_refused():
    """A scale just below 2**32 still has a non-negative shift in Vela's fixed point; 2**32 has not."""
    ins = [_t("x", (1, 4), scale=2.0**32 * 0.99)]
    assert _check("relu", ins, [_t("y", (1, 4))]) is None
    ins = [_t("x", (1, 4), scale=2.0**32)]
    assert "scale of 2**32 or more" in _check("relu", ins, [_t("y", (1, 4))])


def test_dynamic_and_missing_shapes():
    """Only the batch may be unknown, and a computed scalar has no shape for Vela."""
    assert _unary("relu", shape=(None, 8, 8, 4)) is None
    assert "only the first dimension" in _unary("relu", shape=(1, None, 8, 4))
    assert "computed scalar" in _unary("relu", shape=())


def test_weights_must_be_8_bit():
    """Int4 weights (held in int8 by hwsim) send a convolution to the CPU."""
    w = _t("w", (4, 1, 1, 8), data=np.ones((4, 1, 1, 8), np.int8), bits=4)
    assert (
        _conv(_t("x", (1, 8, 8, 8)), (8, 8), weights=w) == "int4 weights (Vela: weight tensors must be 8-bit)"
    )


@pytest.mark.parametrize(
    "cin, zero, ok", [(65536, 0, True), (65537, 0, False), (65536, [-1, 0, 0, 0], False)]
)
def test_weight_sum_limit(cin, zero, ok):
    """A channel's sum of |weight - zero point| may reach 127 * 2**16 with an 8-bit IFM, not pass it."""
    shape = (4, 1, 1, cin)
    w = _t("w", shape, scale=[0.01] * 4, zero=zero, data=np.full(shape, 127, np.int8))
    reason = _conv(_t("x", (1, 1, 1, cin)), (1, 1), weights=w)
    assert (reason is None) == ok


def test_weight_sum_limit_of_16_bit_ifm_is_larger_on_u85():
    """With an int16 IFM the U85 allows 127 * 2**24, the U55 still 127 * 2**16."""
    shape = (1, 1, 1, 65537)
    w = _t("w", shape, data=np.full(shape, 127, np.int8))
    b = _t("b", (1,), "int64", scale=None, data=np.zeros(1, np.int64))
    ifm = _t("x", (1, 1, 1, 65537), "int16")
    assert "weight sum" in _conv(ifm, (1, 1), weights=w, bias=b, out_channels=1)
    assert _conv(ifm, (1, 1), weights=w, bias=b, out_channels=1, family="u85") is None


def test_bias_rules():
    """The bias is a constant int32 or int64 vector; an int64 bias above 2**40 - 1 fits a U85 only."""
    ifm = _t("x", (1, 8, 8, 4))
    assert "bias tensors must be int32 or int64" in _conv(
        ifm, (8, 8), bias=_t("b", (4,), "int16", None, data=np.zeros(4, np.int16))
    )
    assert "must be constant" in _conv(ifm, (8, 8), bias=_t("b", (4,), "int32", None))
    assert "channel axis" in _conv(
        ifm, (8, 8), bias=_t("b", (2, 4), "int32", None, data=np.zeros((2, 4), np.int32))
    )
    big = _t("b", (4,), "int64", None, data=np.full(4, 1 << 40, np.int64))
    assert "at most 1099511627775" in _conv(ifm, (8, 8), bias=big)
    assert _conv(ifm, (8, 8), bias=big, family="u85") is None


def test_u55_strides_above_3():
    """A stride of 4 is fine without padding or when the output is one pixel wide; with padding only on a
    U85."""
    ifm = _t("x", (1, 16, 16, 8))
    assert _conv(ifm, (4, 4), (1, 1), (4, 4), "same") is None  # 1x1 kernel: SAME adds no padding
    assert "needs no padding and dilation 1" in _conv(ifm, (4, 4), (5, 5), (4, 4), "same")
    assert _conv(ifm, (3, 3), (5, 5), (4, 4), "valid") is None
    assert _conv(ifm, (4, 4), (5, 5), (4, 4), "same", family="u85") is None
    # padded, but one output pixel
    assert _conv(_t("x", (1, 2, 2, 8)), (1, 1), (3, 3), (4, 4), "same") is None
    assert "needs no padding and dilation 1" in _conv(ifm, (2, 2), (3, 3), (4, 4), "valid", dilation=(2, 2))


@pytest.mark.parametrize(
    "kind, kernel, padding, ok",
    [
        ("avg_pool2d", (8, 8), "same", True),
        ("avg_pool2d", (9, 9), "same", False),
        ("avg_pool2d", (9, 9), "valid", True),
        ("avg_pool2d", (256, 256), "valid", True),
        ("max_pool2d", (257, 1), "valid", False),
        ("max_pool2d", (256, 257), "valid", False),
        ("max_pool2d", (9, 9), "same", True),
    ],
)
def test_pool_kernels(kind, kernel, padding, ok):
    """Padded average pools take kernels up to 8x8; any pool up to 256 high and 65536 in area."""
    ifm = _t("x", (1, 300, 300, 4))
    reason = _check(kind, [ifm], [_t("y", (1, 1, 1, 4))], kernel=kernel, stride=(1, 1), padding=padding)
    assert (reason is None) == ok


@pytest.mark.parametrize(
    "shape, axes, dtype, ok",
    [
        ((1, 16, 16, 8), (1, 2), "int8", True),
        ((1, 16, 16, 8), (3,), "int8", False),
        ((1, 16, 1, 8), (-1,), "int8", True),
        ((1, 2, 4097, 4), (2,), "int8", False),
        ((2, 8, 8, 4), (1, 2), "int8", False),
        ((1, 256, 256, 1), (1, 2), "int16", True),
        ((1, 256, 257, 1), (1, 2), "int16", False),
        ((1, 8, 8, 4), (1, 2), "int32", False),
    ],
)
def test_mean(shape, axes, dtype, ok):
    """MEAN needs batch 1, reduced axes up to 4096, a depth reduction only beside a unit axis, and few
    elements."""
    out = tuple(1 if i in {a % len(shape) for a in axes} else d for i, d in enumerate(shape))
    reason = _check(
        "mean",
        [_t("x", shape, dtype), _t("axes", (len(axes),), "int32", None, data=np.array(axes))],
        [_t("y", out, dtype)],
        "u85",
        axes=axes,
        keep_dims=True,
    )
    assert (reason is None) == ok


@pytest.mark.parametrize(
    "shape, strides, begin, ok",
    [
        ((1, 16, 16, 8), (1, 2, 2, 1), (0, 0, 0, 0), True),
        ((1, 16, 16, 8), (1, 1, 1, 2), (0, 0, 0, 0), False),
        ((1, 16, 16, 8), (1, -1, 1, 1), (0, 0, 0, 0), False),
        ((16, 8), (2, 1), (0, 0), True),
        ((16, 8), (1, 2), (0, 0), False),
    ],
)
def test_strided_slice_strides(shape, strides, begin, ok):
    """Strides only over H and W (the first of two axes is W), never negative."""
    n = len(shape)
    params = [_t(f"p{i}", (n,), "int32", None, data=np.zeros(n, np.int32)) for i in range(3)]
    reason = _check(
        "strided_slice",
        [_t("x", shape), *params],
        [_t("y", shape)],
        begin=begin,
        end=(0,) * n,
        strides=strides,
        begin_mask=(1 << n) - 1,
        end_mask=(1 << n) - 1,
        shrink_axis_mask=0,
    )
    assert (reason is None) == ok


@pytest.mark.parametrize(
    "shape, perm, dtype, u55_ok",
    [
        ((1, 8, 8, 4), (0, 3, 1, 2), "int32", False),
        ((1, 8, 8, 4), (0, 2, 1, 3), "int32", True),
        ((1, 8, 8, 40000), (0, 1, 2, 3), "int32", False),
        ((2, 300, 300, 1), (0, 2, 1, 3), "int8", False),
        ((1, 300, 300, 2), (0, 2, 1, 3), "int8", True),
        ((70000, 2), (1, 0), "int16", False),
    ],
)
def test_u55_transpose_shapes(shape, perm, dtype, u55_ok):
    """The U55 transposes 32-bit maps in three ways and bounds the other axes; the U85 has no such limit."""
    out = tuple(shape[a] for a in perm)
    ins = [_t("x", shape, dtype, None), _t("perm", (len(perm),), "int32", None, data=np.array(perm))]
    results = [
        _check("transpose", ins, [_t("y", out, dtype, None)], fam, perm=perm) for fam in ("u55", "u85")
    ]
    assert ((results[0] is None) == u55_ok, results[1]) == (True, None)


def test_resize_scale_factors_and_options():
    """U55: equal H and W factors of 2, 4 or 8 (2 with half-pixel centers); U85: a power of two, one option
    at most."""

    def resize(kind, out, family="u55", **options):
        ins = [_t("x", (1, 16, 16, 4)), _t("size", (2,), "int32", None, data=np.array(out))]
        return _check(kind, ins, [_t("y", (1, *out, 4))], family, **options)

    assert resize("resize_bilinear", (32, 32)) is None  # TF2's defaults: half-pixel centers
    assert "2 with half-pixel centers" in resize("resize_bilinear", (64, 64))
    assert resize("resize_bilinear", (64, 64), half_pixel_centers=False) is None
    assert resize("resize_bilinear", (31, 31), align_corners=True, half_pixel_centers=False) is None
    assert "scale factor 2.06667" in resize(
        "resize_bilinear", (32, 32), align_corners=True, half_pixel_centers=False
    )
    assert "scales H and W alike" in resize("resize_nearest_neighbor", (32, 16))
    assert resize("resize_nearest_neighbor", (48, 48), "u85") is None
    assert "integer power of two" in resize("resize_bilinear", (48, 48), "u85")
    assert "one of them at most" in resize("resize_bilinear", (32, 32), "u85", align_corners=True)


def test_fused_activation_is_checked_too():
    """An int32 ADD runs on a U55, but not with a fused ReLU, which Vela checks as an operator of its own."""
    assert _binary("add", dtype="int32", scale=None) is None
    reason = _binary("add", dtype="int32", scale=None, activation="relu")
    assert reason.startswith("its fused RELU: int32 IFM")
    assert _binary("add", dtype="int32", scale=None, activation="relu", family="u85") is None


def test_maximum_needs_inputs_quantized_as_its_output():
    """MAXIMUM and MINIMUM take inputs only with the output's scale and zero point."""
    assert _binary("maximum") is None
    shape = (1, 8, 8, 4)
    ins = [_t("a", shape, scale=0.05), _t("b", shape, scale=0.1)]
    assert "quantized as its output" in _check("minimum", ins, [_t("y", shape, scale=0.05)])


def test_zero_points():
    """U55: int32 maps need zero point 0; U85: an int16 IFM needs 0, except in an average pool."""
    assert "zero point" in _binary("add", dtype="int32", scale=0.5, zero=3)
    assert _binary("add", dtype="int16", zero=5) is None
    assert "zero point" in _binary("add", dtype="int16", zero=5, family="u85")
    ifm, out = _t("x", (1, 8, 8, 4), "int16", zero=5), _t("y", (1, 4, 4, 4), "int16", zero=5)
    assert _check("avg_pool2d", [ifm], [out], "u85", kernel=(2, 2), stride=(2, 2), padding="valid") is None


def test_u85_gather_axis_must_equal_batch_dims():
    """GATHER along the first axis (also given as -2 on a matrix) runs on a U85; along another axis it does
    not."""
    table, idx = _t("t", (10, 8)), _t("i", (4,), "int32", scale=None)
    assert _check("gather", [table, idx], [_t("y", (4, 8))], "u85", axis=-2, batch_dims=0) is None
    assert "GATHER axis must equal batch_dims" in _check(
        "gather", [table, idx], [_t("y", (10, 4))], "u85", axis=1, batch_dims=0
    )


def test_u55_matrix_products_take_int8():
    """A 16-bit BATCH_MATMUL, or FULLY_CONNECTED on computed weights, stays on a U55 CPU but not a U85's."""
    a, b = _t("a", (1, 16, 32), "int16"), _t("b", (1, 32, 8), "int16")
    results = [_check("batch_matmul", [a, b], [_t("y", (1, 16, 8), "int16")], fam) for fam in ("u55", "u85")]
    assert results == ["int16 IFM (Vela U55: matrix products take int8 feature maps)", None]
    w = _t("w", (8, 32), "int8")
    fc = _check("fully_connected", [_t("x", (1, 32), "int16"), w], [_t("y", (1, 8), "int16")])
    assert fc == "int16 IFM (Vela U55: matrix products take int8 feature maps)"
    w = _t("w", (8, 32), "int8", data=np.ones((8, 32), np.int8))
    assert _check("fully_connected", [_t("x", (1, 32), "int16"), w], [_t("y", (1, 8), "int16")]) is None


def test_per_operator_type_and_shape_rules():
    """LOG, GELU, ELU and RSQRT take only some types; SOFTMAX up to 65536 pixels; PAD needs int32 or int64
    paddings."""
    assert _unary("log", dtype="int16") is None
    assert "must match and be int8 or uint8" in _unary("gelu", dtype="int16")
    assert "must match and be int8" in _unary("elu", out_dtype="uint8")
    assert "IFM and OFM shapes must match" in _unary("log", out_shape=(1, 8, 8, 2))
    assert "RSQRT takes int8 or int16" in _unary("rsqrt", dtype="uint8")
    assert _unary("softmax", shape=(1, 256, 256, 2)) is None
    assert "H*W at most 65536" in _unary("softmax", shape=(1, 256, 257, 2))
    pads = _t("p", (4, 2), "int16", None, data=np.zeros((4, 2), np.int16))
    assert "paddings must be int32 or int64" in _check(
        "pad", [_t("x", (1, 8, 8, 4)), pads], [_t("y", (1, 8, 8, 4))]
    )
