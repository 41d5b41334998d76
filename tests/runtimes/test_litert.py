"""LiteRT 2.3 (ai-edge-litert) against TensorFlow 2.21: the ops where their interpreters part, pinned.

``tests/golden/litert/`` holds five small models made by TensorFlow's converter and, for seeded inputs,
the output of every resolver of both interpreters (``make_golden.py`` regenerates them):

- a 16x8 FULLY_CONNECTED without bias tensor, whose options declare int64 bias: LiteRT's optimized
  resolver runs the reference kernel (one rounding, ties away), TensorFlow's its optimized one (two
  roundings, ties up), 2 of 576 outputs apart; declaring int32 bias, both run the optimized kernel;
- an int8 BATCH_MATMUL whose rhs zero point is -64: TensorFlow's XNNPACK delegate takes it and drops the
  zero point (3,769 of 3,840 outputs off the reference), LiteRT's refuses it and its optimized kernel runs;
- the same with rhs zero point 0: both delegate it (float32 scale, 8 of 3,840 outputs off the reference);
- an int4-weight FULLY_CONNECTED with per-tensor weights and an even depth: LiteRT's XNNPACK runs it,
  TensorFlow's leaves it to the optimized kernels.

hwsim reproduces each run under the semantics of that name, without any runtime installed; where LiteRT is
installed, it still gives the stored outputs.
"""

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hwsim.importers import load_model
from hwsim.numerics import quantized as Q
from hwsim.numerics.formats import IntFormat
from hwsim.numerics.reference import requantize_scalar
from hwsim.numerics.requant_kinds import RequantKind, quantize_multiplier, tflite_multiplier
from hwsim.runtime.execute import run_graph
from hwsim.verify.compare import TARGETS
from hwsim.workload.graph import Graph, Op, QuantInfo, Tensor
from tests.runtimes.conftest import require

GOLDEN = Path(__file__).parents[1] / "golden" / "litert"
CASES = ("fc16x8_nobias", "fc16x8_nobias_int32", "bmm_rhs_zp", "bmm_rhs_symmetric", "fc_int4_per_tensor")
RUNS = TARGETS["tflite"] + TARGETS["litert"]


@pytest.fixture(scope="module")
def stored():
    with np.load(GOLDEN / "cases.npz") as z:
        return {k: z[k] for k in z.files}


def _inputs(stored, case):
    return [stored[f"{case}/input_{i}"] for i in range(2) if f"{case}/input_{i}" in stored]


def _hwsim(case, inputs, semantics):
    graph = load_model(GOLDEN / f"{case}.tflite")
    out = graph.outputs[0]
    return np.stack([run_graph(graph, [x[s] for x in inputs], semantics)[out] for s in range(len(inputs[0]))])


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("run", RUNS)
def test_hwsim_reproduces_every_stored_run(stored, case, run):
    """Under the semantics named after the run (interpreter and resolver), hwsim gives the stored output."""
    np.testing.assert_array_equal(_hwsim(case, _inputs(stored, case), run), stored[f"{case}/{run}"])


@pytest.mark.parametrize(
    "case, tensorflow, litert",
    [
        ("fc16x8_nobias", "tflite-optimized", "litert-optimized"),
        ("bmm_rhs_zp", "xnnpack", "litert-xnnpack"),
        ("fc_int4_per_tensor", "xnnpack", "litert-xnnpack"),
    ],
)
def test_tensorflow_semantics_miss_litert(stored, case, tensorflow, litert):
    """TensorFlow's semantics do not reproduce LiteRT's output there, so LiteRT needs its own."""
    theirs = stored[f"{case}/{litert}"]
    assert (stored[f"{case}/{tensorflow}"] != theirs).any()
    assert (_hwsim(case, _inputs(stored, case), tensorflow) != theirs).any()


def test_live_litert_gives_the_stored_outputs(stored, tmp_path):
    """The installed LiteRT (in its interpreter process, as hwsim verify runs it) still computes what is
    pinned: a release that changes its arithmetic fails here. TensorFlow's runs are held to hwsim by the
    whole-model tests."""
    require("ai_edge_litert")
    from hwsim.verify.compare import _run_tflite

    for case in CASES:
        model = GOLDEN / f"{case}.tflite"
        runs = _run_tflite(TARGETS["litert"], model, _inputs(stored, case), tmp_path)
        index = load_model(model).file_index[load_model(model).outputs[0]]
        for name in TARGETS["litert"]:
            assert not isinstance(runs[name], str), runs[name]
            np.testing.assert_array_equal(runs[name][f"t{index}"], stored[f"{case}/{name}"], err_msg=case)


@st.composite
def fc16x8_cases(draw):
    """A 16x8 fully-connected without bias: int16 inputs over the whole range, int8 per-channel weights."""
    rows, depth, units = draw(st.integers(1, 16)), draw(st.integers(1, 64)), draw(st.integers(1, 16))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    x = rng.integers(-32768, 32768, (rows, depth)).astype(np.int16)
    w = rng.integers(-127, 128, (units, depth)).astype(np.int8)
    sx, sy = (float(np.float32(draw(st.floats(1e-5, 1e-3)))) for _ in range(2))
    sw = rng.uniform(1e-3, 1e-2, units).astype(np.float32)
    return x, w, sx, sw, sy


def _fc16x8_reference(x, w, sx, sw, sy, kind: RequantKind) -> np.ndarray:
    """acc = x . w in int64, requantized per channel by the scalar twin (``reference.requantize_scalar``)."""
    acc = x.astype(np.int64) @ w.astype(np.int64).T
    y = np.empty_like(acc)
    for c in range(acc.shape[1]):
        m, e = quantize_multiplier(tflite_multiplier(sx, sw[c], sy))
        for r in range(acc.shape[0]):
            y[r, c] = requantize_scalar(int(acc[r, c]), m, e, 0.0, int(kind))
    return np.clip(y, -32768, 32767).astype(np.int16)


@given(
    fc16x8_cases(), st.sampled_from([("int64", RequantKind.SINGLE_AWAY), (None, RequantKind.DOUBLE_HALF_UP)])
)
def test_litert_optimized_16x8_fc_follows_the_declared_bias_type(case, declared):
    """litert-optimized's 16x8 fully-connected without bias (hwsim's kernels) equals the scalar twin's
    single rounding when the op declares int64 bias, and the optimized kernels' double rounding when not."""
    x, w, sx, sw, sy = case
    bias_type, kind = declared
    quant = Q.LayerQuant(
        Q.QParams.of(sx),
        Q.QParams.of(sw),
        Q.QParams.of(sy),
        IntFormat(16, True),
        None,
        "litert-optimized",
        bias_type=bias_type,
    )
    np.testing.assert_array_equal(
        Q.fully_connected(x, w, None, quant), _fc16x8_reference(x, w, sx, sw, sy, kind)
    )


def _bmm_graph(zl: int, zr: int, sl: float, sr: float, sy: float, zy: int) -> Graph:
    def tensor(name, shape, scale, zero):
        return Tensor(
            name, shape, np.dtype(np.int8), QuantInfo(np.array([scale], np.float32), np.array([zero]))
        )

    tensors = {
        "a": tensor("a", (1, 2, 3, 5), sl, zl),
        "b": tensor("b", (1, 2, 5, 4), sr, zr),
        "y": tensor("y", (1, 2, 3, 4), sy, zy),
    }
    op = Op("0:BATCH_MATMUL", "batch_matmul", ["a", "b"], ["y"], {"adj_x": False, "adj_y": False})
    return Graph(tensors, [op], ["a", "b"], ["y"], format="tflite")


@given(
    st.integers(-128, 127),
    st.integers(-128, 127),
    st.integers(-20, 20),
    st.floats(0.001, 0.05),
    st.integers(0, 2**32 - 1),
)
def test_litert_xnnpack_batch_matmul_falls_back_on_an_asymmetric_rhs(zl, zr, zy, sy, seed):
    """litert-xnnpack's BATCH_MATMUL equals XNNPACK's (float32 scale) when the rhs zero point is 0 and the
    optimized kernels' (gemmlowp, zero point subtracted) otherwise."""
    graph = _bmm_graph(zl, zr, 0.0078, 0.0113, sy, zy)
    rng = np.random.default_rng(seed)
    a = rng.integers(-128, 128, (1, 2, 3, 5)).astype(np.int8)
    b = rng.integers(-128, 128, (1, 2, 5, 4)).astype(np.int8)
    expected = run_graph(graph, [a, b], "xnnpack" if zr == 0 else "tflite-optimized")["y"]
    np.testing.assert_array_equal(run_graph(graph, [a, b], "litert-xnnpack")["y"], expected)


def test_verify_all_runs_whichever_interpreter_is_installed(monkeypatch):
    """``hwsim verify`` (``all``) on a .tflite runs LiteRT alone where TensorFlow is missing, noting the
    skip, and says in one error when neither interpreter is installed."""
    require("ai_edge_litert")
    from hwsim.errors import RuntimeUnavailable
    from hwsim.verify import compare

    real = compare._run_tflite
    missing = {"tflite", "tflite-micro"}  # TFLite Micro left out too: this test is about the two others

    def run_tflite(resolvers, *args):
        if any(resolvers == TARGETS[t] for t in missing):
            raise RuntimeUnavailable(f"{resolvers[0]} is not installed (test)")
        return real(resolvers, *args)

    monkeypatch.setattr(compare, "_run_tflite", run_tflite)
    model = GOLDEN / "bmm_rhs_zp.tflite"
    result = compare.verify(model, samples=2)
    assert [r.semantics for r in result.reports] == list(TARGETS["litert"]) and result.bit_exact
    assert set(result.skipped) == {"tflite", "tflite-micro"}
    missing.add("litert")
    with pytest.raises(RuntimeUnavailable, match="no TFLite interpreter is installed"):
        compare.verify(model, samples=2)
