"""XNNPACK's own int4-weight fully-connected, against the live TFLite interpreter.

TFLite's default resolver hands an int4-weight FULLY_CONNECTED to XNNPACK when its weights have one scale per
output channel and its depth K is even, and XNNPACK then requantizes with its float32 scale; a per-tensor
one, or one of odd K, stays with the optimized kernels (two half-up roundings). The models are one FC each,
converted by the real converter in its low-bit QAT mode (per-tensor INT4 weights); the per-channel and
bias-less variants are the same flatbuffer with per-channel weight scales written in, or the bias input cut.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from tests.runtimes import tflite_cases as C
from tests.runtimes.conftest import require

# name -> (rows, depth K, units, activation, per-channel weights, bias, delegated to XNNPACK)
CASES = {
    "pt_k64_bias": (64, 64, 16, None, False, True, False),
    "pc_k64_bias": (64, 64, 16, None, True, True, True),
    "pc_k64_nobias": (64, 64, 16, None, True, False, True),
    "pc_k300_relu6": (7, 300, 10, "relu6", True, True, True),
    "pc_k18_n33_nobias": (4, 18, 33, None, True, False, True),
    "pc_k17_odd": (33, 17, 33, None, True, True, False),
}


def _variant(content: bytes, per_channel: bool, bias: bool, seed: int) -> bytes:
    """``content`` with per-channel weight scales (bias scales sx * sw[c] to match), or without its bias."""
    import flatbuffers
    from tensorflow.lite.python import schema_py_generated as schema

    flat = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(bytearray(content), 0))
    graph = flat.subgraphs[0]
    op = graph.operators[0]
    x_i, w_i, b_i = (int(i) for i in op.inputs)
    w_q, b_q = graph.tensors[w_i].quantization, graph.tensors[b_i].quantization
    if per_channel:
        units = graph.tensors[w_i].shape[0]
        gains = np.random.default_rng(seed).uniform(0.3, 1.7, units).astype(np.float32)
        sw = np.float32(w_q.scale[0]) * gains
        sx = np.float32(graph.tensors[x_i].quantization.scale[0])
        w_q.scale, w_q.zeroPoint, w_q.quantizedDimension = sw.tolist(), [0] * units, 0
        b_q.scale, b_q.zeroPoint = (sx * sw).tolist(), [0] * units
    if not bias:
        op.inputs = np.array([x_i, w_i, -1], np.int32)
    builder = flatbuffers.Builder(0)
    builder.Finish(flat.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Each case written as a .tflite file, with its seeded full-range int8 input."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    tf = require("tensorflow")
    folder = tmp_path_factory.mktemp("int4_fc")
    out, converted = {}, {}
    for seed, (name, (rows, depth, units, act, per_channel, bias, _)) in enumerate(CASES.items(), 70):
        key = (rows, depth, units, act)  # one conversion per layer; its variants are flatbuffer edits
        if key not in converted:
            converted[key] = C._convert_int4(
                C._f(name, rows, depth, units, activation=act, int4=True, seed=seed), tf
            )
        base = converted[key]
        path = folder / f"{name}.tflite"
        path.write_bytes(_variant(base, per_channel, bias, seed))
        x = np.random.default_rng(seed).integers(-128, 128, (rows, depth), dtype=np.int64).astype(np.int8)
        x.reshape(-1)[:2] = (-128, 127)
        out[name] = (path, x)
    return out


def _interpreter(path, resolver: str, x: np.ndarray, which: str = "tflite") -> tuple[np.ndarray, list[str]]:
    if which == "litert":
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
    else:
        import tensorflow as tf

        Interpreter, OpResolverType = tf.lite.Interpreter, tf.lite.experimental.OpResolverType
    kind = getattr(OpResolverType, resolver)
    interp = Interpreter(model_path=str(path), experimental_op_resolver_type=kind, num_threads=1)
    interp.allocate_tensors()
    interp.set_tensor(interp.get_input_details()[0]["index"], x)
    interp.invoke()
    ops = [o["op_name"] for o in interp._get_ops_details()]
    return interp.get_tensor(interp.get_output_details()[0]["index"]).copy(), ops


@pytest.mark.parametrize("name", list(CASES))
def test_int4_fully_connected_under_default_and_optimized_resolvers(models, name, tflite_interpreter):
    """The live default resolver delegates exactly the per-channel, even-K cases (TensorFlow 2.21) or every
    even-K case (LiteRT 2.3), and hwsim's ``xnnpack`` and ``tflite-optimized`` (``litert-xnnpack`` and
    ``litert-optimized``) reproduce every output element of the interpreter."""
    from hwsim.importers import load_model
    from hwsim.runtime.execute import run_graph

    path, x = models[name]
    *_, delegated = CASES[name]
    litert = tflite_interpreter == "litert"
    auto, ops = _interpreter(path, "AUTO", x, tflite_interpreter)
    optimized, _ = _interpreter(path, "BUILTIN_WITHOUT_DEFAULT_DELEGATES", x, tflite_interpreter)
    assert ("DELEGATE" in ops) == (delegated or (litert and CASES[name][1] % 2 == 0)), ops
    graph = load_model(path)
    w_t = graph.tensor(graph.ops[0].inputs[1])
    assert w_t.bits == 4 and w_t.quant.scale.size == (CASES[name][2] if CASES[name][4] else 1)
    runs = ("litert-xnnpack", "litert-optimized") if litert else ("xnnpack", "tflite-optimized")
    for semantics, want in zip(runs, (auto, optimized)):
        got = run_graph(graph, [x], semantics)[graph.outputs[0]]
        assert np.array_equal(got, want), (semantics, int(np.abs(got.astype(int) - want).max()))


def test_delegated_cases_differ_from_the_optimized_kernels(models):
    """XNNPACK's float32 requantizer is a different function: on these cases it parts from the optimized
    kernels, so the test above tells the two apart."""
    differ = [
        name
        for name, case in CASES.items()
        if case[-1]
        and not np.array_equal(
            *(
                _interpreter(models[name][0], r, models[name][1])[0]
                for r in ("AUTO", "BUILTIN_WITHOUT_DEFAULT_DELEGATES")
            )
        )
    ]
    assert len(differ) >= 3, differ
