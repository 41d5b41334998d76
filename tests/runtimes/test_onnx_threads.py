"""ONNX Runtime's float Conv depends on the session's intra-op threads; hwsim follows the count it is given.

MLAS splits an ungrouped float Conv's output pixels into one segment per thread, and each segment picks its
own K blocks, so the float32 sums (and their rounding) change with ``intra_op_num_threads``. The model is a
QDQ input, DequantizeLinear weights (not constants, as in a QDQ model) and a float Conv of depth 288 on 8x8
pixels: one thread sums K in blocks of 256 + 32, two threads (32 pixels each) in one block of 288.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.runtimes.conftest import require

C, H = 32, 8


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """The one-Conv QDQ model, written to a file, and 4 seeded Gaussian samples."""
    onnx = require("onnx")
    require("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.integers(-127, 128, (C, C, 3, 3)).astype(np.int8), "wq"),
        numpy_helper.from_array(rng.uniform(0.001, 0.01, C).astype(np.float32), "ws"),
        numpy_helper.from_array(np.zeros(C, np.int8), "wz"),
        numpy_helper.from_array(np.float32(0.02), "xs"),
        numpy_helper.from_array(np.int8(3), "xz"),
        numpy_helper.from_array(rng.normal(size=C).astype(np.float32), "b"),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
        helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"]),
        helper.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["wd"], axis=0),
        helper.make_node("Conv", ["xd", "wd", "b"], ["y"], pads=[1] * 4),
    ]
    x, y = (helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, C, H, H]) for n in "xy")
    graph = helper.make_graph(nodes, "conv", [x], [y], inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(proto)
    path = tmp_path_factory.mktemp("threads") / "conv.onnx"
    onnx.save(proto, str(path))
    return path, np.random.default_rng(7).normal(0, 1, (4, 1, C, H, H)).astype(np.float32)


def _onnxruntime(path, xs, threads: int) -> np.ndarray:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return np.stack([session.run(None, {"x": x})[0] for x in xs])


def _hwsim(path, xs, threads) -> np.ndarray:
    from hwsim.importers import load_model
    from hwsim.numerics.semantics import get_semantics
    from hwsim.runtime.execute import run_graph

    graph = load_model(path)
    assert [op.kind for op in graph.ops] == ["quantize", "dequantize", "dequantize", "conv2d_f32"]
    sem = get_semantics("onnxruntime", threads)
    return np.stack([run_graph(graph, [x], sem)[graph.outputs[0]] for x in xs])


def test_float_conv_follows_the_sessions_thread_count(model):
    """One and two intra-op threads give different float32 outputs in ONNX Runtime; hwsim told the same count
    reproduces each bit for bit, and ONNX Runtime's default (0) equals hwsim's default (one per physical
    core)."""
    path, xs = model
    one, two = _onnxruntime(path, xs, 1), _onnxruntime(path, xs, 2)
    assert (one != two).mean() > 0.3  # the thread count matters on this model
    assert np.array_equal(_hwsim(path, xs, 1), one)
    assert np.array_equal(_hwsim(path, xs, 2), two)
    assert np.array_equal(_hwsim(path, xs, None), _onnxruntime(path, xs, 0))


def test_verify_runs_both_sides_with_the_given_threads(model):
    """``verify(..., intra_op_threads=1)`` sets the session option and hwsim's count alike: outputs exact."""
    from hwsim.verify.compare import verify

    path, xs = model
    result = verify(path, against="onnxruntime", inputs=xs, intra_op_threads=1)
    (report,) = result.reports
    assert report.outputs_exact, report.table()


def test_threads_are_refused_where_no_onnx_runtime_runs():
    """A thread count for a semantics without ONNX Runtime's pool is a one-line error."""
    from hwsim.errors import ConfigError
    from hwsim.numerics.semantics import get_semantics

    with pytest.raises(ConfigError, match="--ort-threads"):
        get_semantics("xnnpack", 2)
    assert get_semantics("onnxruntime", 0).intra_op_threads is None  # 0 is ONNX Runtime's default
