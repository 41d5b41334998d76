"""``hwsim bench infer``'s ONNX model and batch table: the torch-built MobileNetV2, exported by torch and
quantized by onnxruntime.quantization, is an int8 QDQ model that hwsim runs bit-exactly against ONNX Runtime,
one image and a batch (the batch table's check). At 32x32 to stay fast."""

import io
import os
from collections import Counter

import numba

import numpy as np
import pytest

from hwsim.importers import load_model
from hwsim.numerics.semantics import get_semantics
from hwsim.runtime.execute import run_graph
from tests.runtimes.conftest import require

SIZE = 32


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    require("torch")
    require("onnxruntime")
    from hwsim.bench_onnx import build_mobilenet_v2_onnx

    path = tmp_path_factory.mktemp("bench") / "mobilenet_v2.onnx"
    build_mobilenet_v2_onnx(path, SIZE)
    return path


def _onnxruntime(path, x, threads: int) -> np.ndarray:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x})[0]


def test_builder_writes_an_int8_qdq_mobilenet_v2(model):
    """Keras' MobileNetV2 layer by layer (52 convs, 17 of them depthwise, 10 residual adds, a 1280-channel
    last conv, a 1000-class classifier and softmax), every activation and weight int8 in Q/DQ pairs, the
    batch axis free."""
    import onnx
    from onnx import TensorProto, numpy_helper

    proto = onnx.load(str(model))
    kinds = Counter(n.op_type for n in proto.graph.node)
    assert {k: kinds[k] for k in ("Conv", "Add", "GlobalAveragePool", "Gemm", "Softmax")} == {
        "Conv": 52,
        "Add": 10,
        "GlobalAveragePool": 1,
        "Gemm": 1,
        "Softmax": 1,
    }
    consts = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    zero_points = {consts[n.input[2]].dtype for n in proto.graph.node if n.op_type == "QuantizeLinear"}
    assert zero_points == {np.dtype(np.int8)}
    dequantized = [consts.get(n.input[0]) for n in proto.graph.node if n.op_type == "DequantizeLinear"]
    weights = [w for w in dequantized if w is not None and w.ndim == 4]
    assert len(weights) == 52 and {w.dtype for w in weights} == {np.dtype(np.int8)}
    convs = [n for n in proto.graph.node if n.op_type == "Conv"]
    assert sum(a.name == "group" and a.i > 1 for n in convs for a in n.attribute) == 17
    (dim, *_) = proto.graph.input[0].type.tensor_type.shape.dim
    assert dim.dim_param and proto.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT
    graph = load_model(model)
    assert graph.tensor(graph.outputs[0]).shape[-1] == 1000
    assert max(graph.tensor(op.outputs[0]).shape[1] for op in graph.ops if "conv" in op.kind) == 1280


def test_hwsim_runs_one_image_bit_exactly_at_each_thread_count(model):
    """One image through run_graph equals ONNX Runtime's at 1 and 2 intra-op threads under the semantics of
    each count (its float convs split their sums by thread), and the output is not trivial."""
    graph = load_model(model)
    x = np.random.default_rng(3).normal(0, 0.8, (1, 3, SIZE, SIZE)).astype(np.float32)
    for threads in (1, 2):
        got = run_graph(graph, [x], get_semantics("onnxruntime", threads))[graph.outputs[0]]
        np.testing.assert_array_equal(got, _onnxruntime(model, x, threads))
        assert (got > 0).sum() > 50  # not all zero, as a vanishing random network's softmax would be


def test_batch_table_runs_onnxruntime_and_hwsim_on_the_same_batch(model):
    """bench_batch on the ONNX model: a row for hwsim batched and for ONNX Runtime on 1 thread and on every
    core, each ONNX Runtime output on the batch equal to hwsim's batched output (run_batch)."""
    from hwsim.bench import bench_batch

    out = io.StringIO()
    bench_batch(4, 1, out, onnx=(load_model(model), str(model)))
    rows = [line.split(" | ") for line in out.getvalue().splitlines() if line.startswith("| onnx")]
    counts = sorted({1, os.cpu_count() or 1})
    ort = [f"ONNX Runtime, {n} thread{'s' if n > 1 else ''}" for n in counts]
    ours = f"hwsim, batch over {numba.get_num_threads()} threads"
    assert [row[1] for row in rows] == [ours, *ort], out.getvalue()
    assert [row[-1].rstrip(" |") for row in rows] == ["", *["yes"] * len(counts)], out.getvalue()
    assert all(float(row[2]) > 0 for row in rows)
