"""Experiments on the user's own model and data: a float ONNX model with .npz data, an already-quantized
.tflite scored against the TFLite interpreter, and what --dry-run refuses."""

import numpy as np
import pytest

from tests.experiment.conftest import ROOT, table

WORKLOADS = ROOT / "workloads"
TFLITE = ROOT / "tests" / "data" / "ethos_u" / "kws_ds_cnn.tflite"

USER_ONNX = f"""\
schema_version: 1
name: user_onnx
workloads:
  - {{model: {WORKLOADS}/digits_mobilenet.onnx, calibration: {WORKLOADS}/digits_calibration.npz,
     evaluation: {WORKLOADS}/digits_test.npz}}
devices: [hexagon_like]
recipes: [int8_w_per_tensor]
evaluation: {{calibration_samples: 64, test_samples: 96}}
sweep:
  grid:
    recipe.weights.bits: [8, 4, 2]
metrics: [accuracy, top5, agreement, sqnr, latency, energy]
plots: []
"""


def hwsim(capsys, *args) -> tuple[int, str, str]:
    """``hwsim ARGS`` in this process (a fresh interpreter per command would double the test's time):
    (exit code, stdout, stderr)."""
    from hwsim.cli import main

    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_user_onnx_experiment_quantizes_each_point_and_times_its_integer_graph(tmp_path, capsys):
    """The bits axis reaches the user's model: lower weight bits lose accuracy, and the simulated integer
    graph reads fewer weight bytes and runs faster on a device with an int4 rate, so energy falls."""
    path = tmp_path / "user_onnx.yaml"
    path.write_text(USER_ONNX)
    code, _, err = hwsim(capsys, "run", path, "--results", tmp_path / "out")
    assert code == 0, err
    rows = {r["weights_bits"]: r for r in table(tmp_path / "out")}
    assert set(rows) == {8, 4, 2} and all(r["status"] == "ok" for r in rows.values())
    w8, w4, w2 = rows[8], rows[4], rows[2]
    for column in (
        "float_top1",
        "fake_quant_top1",
        "integer_top1",
        "agreement",
        "integer_top5",
        "integer_agreement",
        "integer_sqnr_db",
        "latency_ms",
        "energy_uj",
    ):
        assert all(r[column] == r[column] for r in rows.values()), column  # present and not NaN
    assert w8["float_top1"] == w4["float_top1"] == w2["float_top1"] > 0.98  # 95 of the 96 test digits
    assert (
        w8["integer_top1"] > w2["integer_top1"]
        and w8["integer_sqnr_db"] > w4["integer_sqnr_db"] > w2["integer_sqnr_db"]
    )
    assert w8["energy_uj"] > w4["energy_uj"] and w8["latency_ms"] > w4["latency_ms"]
    assert w8["workload"] == "digits_mobilenet" and w8["cpu_ops"] == 0


def test_experiment_row_equals_accuracy_of_the_file_quantize_writes(tmp_path, capsys):
    """`hwsim quantize --output` writes the integer graph an experiment point scores: `hwsim accuracy` on that
    file, and an experiment on it, give the point's scores, latency and energy; infer / simulate / energy
    read it."""
    data = {"calib": tmp_path / "calib.npz", "test": tmp_path / "test.npz"}
    with np.load(WORKLOADS / "digits_calibration.npz") as c, np.load(WORKLOADS / "digits_test.npz") as t:
        np.savez(data["calib"], x=c["x"][:64])
        np.savez(data["test"], x=t["x"][:96], y=t["y"][:96])
        np.save(tmp_path / "one.npy", t["x"][:1])
    model = WORKLOADS / "digits_mobilenet.onnx"
    code, _, err = hwsim(
        capsys,
        "quantize",
        model,
        "--recipe",
        "int8_w_per_tensor",
        "--calib",
        data["calib"],
        "--output",
        tmp_path / "int.npz",
    )
    assert code == 0, err
    code, accuracy, err = hwsim(capsys, "accuracy", tmp_path / "int.npz", "--eval", data["test"])
    assert code == 0, err
    exp = tmp_path / "exp.yaml"
    exp.write_text(f"""\
schema_version: 1
name: file
workloads:
  - {{model: {model}, calibration: calib.npz, evaluation: test.npz, name: float}}
  - {{model: int.npz, evaluation: test.npz, name: file}}
devices: [hexagon_like]
recipes: [int8_w_per_tensor]
evaluation: {{calibration_samples: 64, test_samples: 96}}
metrics: [accuracy, latency, energy]
plots: []
""")
    code, _, err = hwsim(capsys, "run", exp, "--results", tmp_path / "out")
    assert code == 0, err
    rows = {r["workload"]: r for r in table(tmp_path / "out")}
    assert f"top-1: integer {100 * rows['float']['integer_top1']:.2f} %" in accuracy
    for column in ("integer_top1", "integer_top5", "latency_ms", "energy_uj"):  # the same integer graph
        assert rows["float"][column] == rows["file"][column], column
    for args in (
        ("infer", "--input", tmp_path / "one.npy", "--output", tmp_path / "y.npy"),
        ("simulate", "--device", "edge_tpu_like"),
        ("energy", "--device", "hexagon_like"),
    ):
        code, _, err = hwsim(capsys, args[0], tmp_path / "int.npz", *args[1:])
        assert code == 0, (args, err)
    assert np.load(tmp_path / "y.npy").shape == (1, 10)


def _tflite_labels(x: np.ndarray) -> np.ndarray:
    """The TFLite interpreter's own top-1 on ``x`` (the reference an already-quantized model is scored by)."""
    from tests.runtimes.conftest import require

    tf = require("tensorflow")
    interp = tf.lite.Interpreter(model_path=str(TFLITE))
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    interp.resize_tensor_input(inp["index"], list(x.shape))
    interp.allocate_tensors()
    scale, zero = inp["quantization"]
    codes = np.clip(np.round(x / scale) + zero, -128, 127).astype(np.int8)
    interp.set_tensor(inp["index"], codes)
    interp.invoke()
    return interp.get_tensor(out["index"]).argmax(axis=1)


def test_quantized_tflite_experiment_scores_under_each_semantics(tmp_path, capsys):
    """An already-quantized .tflite with .npz data: scored under each swept semantics (under TFLite's own
    optimized kernels it agrees with the interpreter on every sample), timed and priced on each device."""
    x = np.random.default_rng(0).normal(0, 1.5, (48, 49, 10, 1)).astype(np.float32)
    np.savez(tmp_path / "kws.npz", x=x, y=_tflite_labels(x))
    path = tmp_path / "tflite.yaml"
    path.write_text(f"""\
schema_version: 1
name: tflite
workloads: [{{model: {TFLITE}, evaluation: kws.npz, name: kws}}]
devices: [ethos_u55_128_like, hexagon_like]
sweep: {{grid: {{recipe.semantics: [tflite-optimized, tflite-reference, cmsis-nn]}}}}
metrics: [accuracy, top5, latency, energy]
plots: []
""")
    code, _, err = hwsim(capsys, "run", path, "--results", tmp_path / "out")
    assert code == 0, err
    rows = table(tmp_path / "out")
    assert len(rows) == 6 and all(r["status"] == "ok" and r["workload"] == "kws" for r in rows)
    by = {(r["device"], r["semantics"]): r for r in rows}
    assert by["hexagon_like", "tflite-optimized"]["integer_top1"] == 1.0
    assert {r["integer_top1"] for r in rows if r["semantics"] == "tflite-optimized"} == {1.0}
    assert all(r["integer_top1"] > 0.9 for r in rows)  # the other runtimes' arithmetic differs a little
    assert all(
        r["recipe"] == "(as quantized)" and r["energy_uj"] > 0 and r["integer_top5"] == 1.0 for r in rows
    )


@pytest.mark.parametrize(
    "change, where, message",
    [
        ("sweep: {grid: {recipe.weights.bits: [8, 4]}}", ":6:", "already quantized: only recipe.semantics"),
        ("metrics: [agreement]", ":6:", "'agreement' compares with the float model"),
        ("metrics: [mse]", ":6:", "'mse' needs real-valued targets"),
        ("sweep: {grid: {recipe.semantics: [tflite-optimised]}}", ":6:", "Did you mean 'tflite-optimized'"),
    ],
)
def test_dry_run_refuses_what_a_quantized_workload_cannot_give(tmp_path, capsys, change, where, message):
    """A swept axis or a metric a workload cannot give is an error at --dry-run, located, never dropped."""
    np.savez(tmp_path / "d.npz", x=np.zeros((2, 49, 10, 1), np.float32), y=np.zeros(2, np.int64))
    path = tmp_path / "bad.yaml"
    path.write_text(
        f"schema_version: 1\nname: bad\nworkloads: [{{model: {TFLITE}, evaluation: d.npz}}]\n"
        f"devices: [hexagon_like]\nplots: []\n{change}\n"
    )
    code, _, err = hwsim(capsys, "run", path, "--dry-run")
    assert code == 2 and err.startswith("hwsim: error: ")
    assert where in err and message in err and err.count("\n") == 1, err


def test_dry_run_refuses_top5_of_fewer_than_five_classes(tmp_path, capsys):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.ones((4, 2), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "two",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 2])],
        [w],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "two.onnx")
    np.savez(tmp_path / "d.npz", x=np.zeros((2, 4), np.float32), y=np.zeros(2, np.int64))
    path = tmp_path / "bad.yaml"
    path.write_text(
        "schema_version: 1\nname: bad\nworkloads: [{model: two.onnx, calibration: d.npz, "
        "evaluation: d.npz}]\ndevices: [hexagon_like]\nmetrics: [accuracy, top5]\n"
    )
    code, _, err = hwsim(capsys, "run", path, "--dry-run")
    assert code == 2 and ":5:" in err, err
    assert "'top5' needs at least 5 classes; two.onnx has 2 outputs" in err, err


def test_dry_run_refuses_accuracy_without_labels_or_calibration(tmp_path, capsys):
    """Accuracy of unlabelled data, and a float model without calibration data, name their line."""
    np.savez(tmp_path / "nolabels.npz", x=np.zeros((2, 1, 8, 8), np.float32))
    model = WORKLOADS / "digits_mobilenet.onnx"
    cases = [
        (
            f"[{{model: {model}, calibration: nolabels.npz, evaluation: nolabels.npz}}]",
            "[accuracy]",
            ":5:",
            "'accuracy' needs class labels",
        ),
        (f"[{{model: {model}, evaluation: nolabels.npz}}]", "[agreement]", ":3:", "give calibration data"),
        (f"[{ROOT}/workloads/tiny.yaml]", "[latency, accuracy]", ":5:", "has shapes only"),
    ]
    for workloads, metrics, where, message in cases:
        path = tmp_path / "bad.yaml"
        path.write_text(
            f"schema_version: 1\nname: bad\nworkloads: {workloads}\ndevices: [hexagon_like]\n"
            f"metrics: {metrics}\nplots: []\n"
        )
        code, _, err = hwsim(capsys, "run", path, "--dry-run")
        assert code == 2 and where in err and message in err, err


def test_image_folder_evaluation_scores_like_the_same_data_as_npz(tmp_path, capsys):
    """The digits saved as gray PNGs (codes 0..16) with a labels CSV and ``scale: 1/16`` are the .npz
    inputs exactly, so the two workload items score the same."""
    from PIL import Image

    with np.load(WORKLOADS / "digits_test.npz") as t:
        x, y = t["x"][:32], t["y"][:32]
    np.savez(tmp_path / "test.npz", x=x, y=y)
    (tmp_path / "img").mkdir()
    for i, image in enumerate(x):
        Image.fromarray(np.rint(image[0] * 16).astype(np.uint8)).save(tmp_path / "img" / f"{i:02d}.png")
    (tmp_path / "labels.csv").write_text("".join(f"{i:02d}.png,{label}\n" for i, label in enumerate(y)))
    model, calib = WORKLOADS / "digits_cnn_bn.onnx", WORKLOADS / "digits_calibration.npz"
    path = tmp_path / "folder.yaml"
    path.write_text(f"""\
schema_version: 1
name: folder
workloads:
  - {{model: {model}, calibration: {calib}, evaluation: test.npz, name: npz}}
  - {{model: {model}, calibration: {calib}, name: png,
     evaluation: {{images: img, labels: labels.csv, color: gray, scale: 0.0625, layout: NCHW}}}}
devices: [hexagon_like]
evaluation: {{calibration_samples: 32}}
metrics: [accuracy, latency]
plots: []
""")
    code, _, err = hwsim(capsys, "run", path, "--results", tmp_path / "out")
    assert code == 0, err
    rows = {r["workload"]: r for r in table(tmp_path / "out")}
    assert rows["npz"]["samples"] == rows["png"]["samples"] == 32 and rows["npz"]["integer_top1"] > 0.9
    for column in ("float_top1", "fake_quant_top1", "integer_top1"):
        assert rows["npz"][column] == rows["png"][column], column
