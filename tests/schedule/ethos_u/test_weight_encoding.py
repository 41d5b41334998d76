"""Encoded weight streams against Vela 5.2.0's own numbers, and hand-derived cases."""

from __future__ import annotations

import dataclasses
import functools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tflite

from hwsim.schedule.ethos_u import weight_encoding as we
from hwsim.schedule.ethos_u import weight_format as wf
from hwsim.schedule.ethos_u.arch import ACCELERATORS
from hwsim.schedule.ethos_u.blocks import BlockConfig
from hwsim.schedule.ethos_u.geometry import Kernel

DATA = Path(__file__).parents[2] / "data" / "ethos_u"
VELA = json.loads((DATA / "vela_weight_encoding.json").read_text())
ROWS = [dict(zip(VELA["columns"], row)) for row in VELA["rows"]]
MODELS = sorted({row["model"] for row in ROWS})


@functools.cache
def _model_weights(model: str) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Weight tensor and zero points of every TFLite operator that has constant weights, by operator index."""
    buf = (DATA / f"{model}.tflite").read_bytes()
    m = tflite.Model.GetRootAsModel(buf, 0)
    g = m.Subgraphs(0)
    out = {}
    for i in range(g.OperatorsLength()):
        op = g.Operators(i)
        if op.InputsLength() < 2 or op.Inputs(1) < 0:
            continue
        t = g.Tensors(op.Inputs(1))
        data = m.Buffers(t.Buffer()).DataAsNumpy()
        if t.Type() != tflite.TensorType.INT8 or not isinstance(data, np.ndarray):
            continue
        q = t.Quantization()
        zp = q.ZeroPointAsNumpy() if q is not None and q.ZeroPointLength() else np.zeros(1)
        out[i] = (data.view(np.int8).reshape(t.ShapeAsNumpy()), np.asarray(zp, np.int64))
    return out


def _params(row: dict) -> we.EncodingParams:
    names = ("ofm_ublock_depth", "ifm_ublock_depth", "ifm_block_depth", "macs", "fast", "sparse")
    return we.EncodingParams(
        row["family"],
        row["cores"],
        row["ofm_block_depth"],
        row["traversal"],
        row["ifm_bits"],
        tuple(row["dilation"]),
        stride=tuple(row["stride"]),
        **{name: row[name] for name in names},
    )


@pytest.mark.parametrize("model", MODELS)
def test_vela_encoded_sizes(model):
    """Every weighted op of the model, under every block config and format Vela chose on the 16
    accelerator configurations, encodes to Vela's total, largest-slice, distinct and zero-run counts."""
    weights = _model_weights(model)
    wrong = []
    for row in (r for r in ROWS if r["model"] == model):
        w, zp = weights[row["op"]]
        got = we.encode_weights(row["op_type"], w, zp, _params(row), row["depth_slices"])
        got_row = {
            "total_weight_bytes": got.total_weight_bytes,
            "max_range_bytes": got.max_range_bytes,
            "distinct_weights": got.distinct_weights,
            "zero_count": got.zero_count,
            "sub_streams": got.sub_streams,
        }
        want = {k: row[k] for k in got_row}
        if got_row != want:
            wrong.append((row["op"], row["accelerators"], want, got_row))
    assert wrong == []


# Ethos_U85_SYS_DRAM_Mid (vela.ini) holds the weights in DRAM: 16-byte AXI x 1 port x 0.75 clock scale,
# 128-byte bursts, 500-cycle reads, 64 outstanding; read buffers of the weight and fast-weight channels
# per configuration from ethos_u85.cpp.
_DRAM = {
    "bandwidth_bytes_per_cycle": 12.0,
    "burst_bytes": 128,
    "read_latency_cycles": 500,
    "max_reads": 64,
    "ports": 1,
}
_CHANNEL_RBS = {128: (128, 128), 256: (128, 128), 512: (256, 256), 1024: (416, 208), 2048: (512, 256)}


def test_vela_fast_format_choice():
    """On U85 convolutions Vela picks the fast format exactly when :func:`weight_format.prefers_fast`
    does, judged on one whole-depth slice as Vela's scheduler judges it."""
    rows = [r for r in ROWS if r["family"] == "u85" and r["op_type"] != "DepthwiseConv2D" and not r["sparse"]]
    assert any(r["fast"] for r in rows) and any(not r["fast"] for r in rows)
    wrong = []
    for row in rows:
        w, zp = _model_weights(row["model"])[row["op"]]
        p = _params(row)
        whole = [0, row["depth_slices"][-1]]
        default = we.encode_weights(row["op_type"], w, zp, dataclasses.replace(p, fast=False), whole)
        fast = we.encode_weights(row["op_type"], w, zp, dataclasses.replace(p, fast=True), whole)
        weight_rb, fast_rb = _CHANNEL_RBS[row["macs"]]
        channels = [
            wf.WeightChannel(wf.channel_bytes_per_cycle(**_DRAM, channel_read_buffers=rb), 500)
            for rb in (weight_rb, fast_rb)
        ]
        if wf.prefers_fast(default, fast, row["cores"], *channels) != row["fast"]:
            wrong.append((row["model"], row["op"], row["accelerators"]))
    assert wrong == []


def test_single_channel_one_stream():
    """A 1x1 convolution with one OFM channel of eight 1s sends 256 values in one stream, also on two cores.

    Depth-first order walks a 32-deep IFM block in four 8-deep micro-blocks for each of the 8 OFM
    channels of the micro-block: 4 * 8 * 8 = 256 values, the eight weights first, then zeros. The codec
    makes that 48 bytes (see ``test_one_channel_stream``), and the one channel's scales take 10 bytes,
    padded to 16: a 64-byte slice. Only one core has a channel, so only one stream exists.
    """
    w = np.ones((1, 1, 1, 8), np.int8)
    for cores in (1, 2):
        params = we.EncodingParams("u65", cores, 8, "DepthFirst", 8)
        got = we.encode_weights("Conv2D", w, 0, params, [0, 1])
        assert (got.total_weight_bytes, got.total_source_bytes, got.max_range_bytes) == (48, 256, 64)
        assert (got.sub_streams, got.distinct_weights, got.zero_count) == (1, 2, 248)


def test_distinct_count_stops_past_sixteen():
    """Weights 0..99 count as 64 distinct values: Vela counts 64-value words in order and stops once past 16.

    Values -256..-1 fill words 0-3 (empty here), 0..63 word 4 (64 values): the count is then past 16,
    so word 5 (64..99) is never counted.
    """
    w = np.arange(100, dtype=np.int8).reshape(1, 100)
    params = we.EncodingParams("u55", 1, 8, "DepthFirst", 8)
    got = we.encode_weights("FullyConnected", w, 0, params, [0, 1])
    assert got.distinct_weights == 64


def test_depth_slices_and_double_buffer():
    """Two slices of 8 and 4 channels: each is its own scales and weights, and the two halves of the
    double buffer hold the even and the odd slice."""
    w = (np.arange(12 * 16) % 7 - 3).astype(np.int8).reshape(12, 1, 1, 16)
    p = we.EncodingParams("u55", 1, 8, "DepthFirst", 8)
    got = we.encode_weights("Conv2D", w, 0, p, [0, 8, 12])
    first = we.encode_weights("Conv2D", w[:8], 0, p, [0, 8])
    second = we.encode_weights("Conv2D", w[8:], 0, p, [0, 4])
    assert got.range_sizes == (first.allocation_bytes, second.allocation_bytes)
    assert got.double_buffer_sizes == got.range_sizes
    assert got.total_weight_bytes == first.total_weight_bytes + second.total_weight_bytes


@pytest.mark.parametrize(
    "params, channels, expected",
    [
        (we.EncodingParams("u55", 2, 16, "DepthFirst"), 5, ((64,), 2)),
        (
            we.EncodingParams("u85", 2, 16, "DepthFirst", ofm_ublock_depth=16, ifm_block_depth=32, macs=512),
            20,
            ((320,), 1),
        ),
    ],
)
def test_scales_only(params, channels, expected):
    """Scales alone: U55 gives each core its own channels (3 and 2 on two cores: 30 and 20 bytes, each
    padded to 32); U85 writes one block rounded up to the 16-deep micro-block (20 -> 32 channels, 320 B)."""
    got = we.encode_scales(channels, params, [0, channels])
    assert (got.range_sizes, got.sub_streams) == expected
    assert got.total_weight_bytes == 0


def test_dense_weights_are_not_sparse():
    """Dense weights asked for in the 2:4 sparse format are refused, as Vela's encoder refuses them."""
    w = np.ones((16, 1, 1, 16), np.int8)
    p = we.EncodingParams(
        "u85", 1, 16, "DepthFirst", 8, ofm_ublock_depth=16, ifm_block_depth=128, macs=256, sparse=True
    )
    with pytest.raises(we.WeightsNotSparse):
        we.encode_weights("Conv2D", w, 0, p, [0, 16])


def test_identical_weights_hit_the_cache():
    """Equal weights in another array give the very same result object: encodings are cached on the bytes."""
    w = (np.arange(64) % 5).astype(np.int8).reshape(4, 1, 1, 16)
    p = we.EncodingParams("u55", 1, 8, "DepthFirst", 8)
    assert we.encode_weights("Conv2D", w, 0, p, [0, 4]) is we.encode_weights("Conv2D", w.copy(), 0, p, [0, 4])


def test_params_from_block_config():
    """U55-32's 4-deep OFM micro-block reaches the encoding parameters from the accelerator config."""
    block = BlockConfig((2, 2, 16), (2, 2, 32), "PartKernel", False, 0)
    p = we.u55_encoding_params(ACCELERATORS["ethos-u55-32"], block, 8, Kernel(3, 3, dilation_x=2))
    assert (p.ofm_ublock_depth, p.ifm_ublock_depth, p.ofm_block_depth, p.dilation) == (4, 8, 16, (2, 1))


@pytest.mark.parametrize("slices", [[0, 4], [0, 16, 8], [1, 16]])
def test_bad_depth_slices(slices):
    """Depth slices that do not rise from 0 to the channel count are refused, naming what was given."""
    with pytest.raises(ValueError, match="depth_slices must rise strictly from 0 to the 16 OFM channels"):
        we.encode_weights(
            "Conv2D", np.ones((16, 1, 1, 8), np.int8), 0, we.EncodingParams("u55", 1, 8, "DepthFirst"), slices
        )


def test_fast_format_is_u85_only():
    """U55 has no fast weight format: asking for it is an error."""
    with pytest.raises(ValueError, match="U85 only"):
        we.EncodingParams("u55", 1, 8, "DepthFirst", fast=True)


def test_encoding_does_not_import_numba():
    """The weight encoder and format choice run on numpy alone (the simulate path must not load numba)."""
    code = (
        "import sys, hwsim.schedule.ethos_u.weight_encoding, hwsim.schedule.ethos_u.weight_format; "
        "print('numba' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
