"""Accuracy evaluation: shipped workloads, top-1 on the integer path, per-layer errors."""

import json

import numpy as np
import pytest

from hwsim.accuracy.datasets import digits_split
from hwsim.accuracy.evaluate import evaluate, sqnr_db
from hwsim.accuracy.metrics import top_k
from hwsim.importers import load_model
from hwsim.paths import data_dir
from hwsim.quant.convert import quantize_model
from hwsim.quant.recipe import PRESETS
from hwsim.runtime.execute import run_graph
from hwsim.runtime.float_exec import run_float

WORKLOADS = ("cnn_bn", "dsconv", "mlp")


@pytest.mark.parametrize("name", WORKLOADS)
def test_shipped_model_has_its_recorded_float_accuracy(name):
    """Each shipped ONNX file is small and reaches the float test accuracy its training record states."""
    folder = data_dir("workloads")
    record = json.loads((folder / f"digits_{name}.json").read_text())
    assert (folder / f"digits_{name}.onnx").stat().st_size < 200_000
    test = digits_split("test", record["input_layout"])
    g = load_model(folder / f"digits_{name}.onnx")
    assert top_k(run_float(g, [test.x])["logits"], test.y, 1) == pytest.approx(
        record["float_test_accuracy"], abs=1e-6
    )


def test_split_is_disjoint_and_fixed():
    """Train and test do not overlap, calibration is inside train, and the sizes are 1257 / 540 / 256."""
    tr, te, cal = (
        digits_split("train", "flat"),
        digits_split("test", "flat"),
        digits_split("calibration", "flat"),
    )
    assert (len(tr.y), len(te.y), len(cal.y)) == (1257, 540, 256)
    train_rows = {r.tobytes() for r in tr.x}
    assert all(r.tobytes() in train_rows for r in cal.x)
    assert np.array_equal(cal.x, tr.x[:256])


@pytest.fixture(scope="module")
def cnn():
    """The W8A8 per-channel CNN and 200 test samples."""
    test = digits_split("test")
    qm = quantize_model(
        data_dir("workloads") / "digits_cnn_bn.onnx",
        PRESETS["int8_w_per_channel"],
        digits_split("calibration").x,
    )
    return qm, test.x[:200], test.y[:200]


def test_integer_accuracy_is_the_share_of_argmax_matches(cnn):
    """The reported integer top-1 equals the share of samples whose integer logits' argmax is the label,
    computed here from run_graph's output codes by hand."""
    qm, x, y = cnn
    rep = evaluate(qm, x, y)
    values = run_graph(qm.integer_graph, [x], "tflite-reference")
    codes = values[qm.integer_graph.ops[-1].inputs[0]]
    assert codes.dtype == np.int8
    hand = sum(int(np.argmax(codes[i]) == y[i]) for i in range(len(y))) / len(y)
    assert rep.integer_top1 == hand
    fq = qm.run_fake_quant(x)["logits"].argmax(1)
    assert rep.agreement == (fq == codes.argmax(1)).mean()


def test_per_layer_report(cnn):
    """Every computing layer is reported; int8 SQNRs are high and errors are stated in LSB of the tensor."""
    qm, x, y = cnn
    rep = evaluate(qm, x, y)
    assert [r.op for r in rep.layers] == [op.name for op in qm.graph.ops if op.kind not in ("flatten",)]
    assert all(r.sqnr_int_db > 25 for r in rep.layers)
    assert all(0 < r.mean_abs_err_lsb < r.max_err_lsb for r in rep.layers)
    assert "SQNR" in rep.table() and "integer" in rep.table()


def test_sqnr_of_identical_signals_is_infinite():
    """No noise means infinite SQNR."""
    assert sqnr_db(np.ones(3), np.ones(3)) == float("inf")


@pytest.mark.parametrize("name", WORKLOADS)
def test_entropy_calibration_keeps_min_max_accuracy(name):
    """KL (entropy) calibration at W8A8 per-tensor scores within 0.5 points of min-max on every shipped
    workload (dsconv lost 9 points before the zero bin was taken out of the KL search)."""
    from hwsim.quant.recipe import QuantRecipe

    layout = json.loads((data_dir("workloads") / f"digits_{name}.json").read_text())["input_layout"]
    test, calib = digits_split("test", layout), digits_split("calibration", layout).x
    path = data_dir("workloads") / f"digits_{name}.onnx"
    top1 = {}
    for method in ("minmax", "entropy"):
        recipe = QuantRecipe.model_validate(
            {
                "name": method,
                "weights": {"bits": 8, "granularity": "per_tensor"},
                "activations": {"bits": 8, "calibration": method},
            }
        )
        top1[method] = evaluate(
            quantize_model(path, recipe, calib), test.x, test.y, per_layer=False
        ).integer_top1
    assert abs(top1["entropy"] - top1["minmax"]) <= 0.005
