"""Whole int8 and 16x8 models made with the real TFLite converter run bit-exactly in hwsim under every
resolver. The converter runs once, in ``benchmarks/build_test_models.py`` (``tests/data/tflite/models``);
test_float_input_quantize_on_ties still converts its model live.

Models: MobileNetV1-style and V2-style (depthwise, inverted residual), ResNet-style (residual add), DS-CNN
keyword spotting and an MLP autoencoder (digits data). hwsim verify runs each interpreter in a subprocess.
"""

import subprocess
import sys

import numpy as np
import pytest

from hwsim.importers import load_model
from hwsim.verify.compare import TARGETS, verify
from tests.runtimes.conftest import convert_full_integer, require, stored_tflite

SAMPLES = 12


def _mobilenet_v1(keras):
    i = keras.Input((32, 32, 3), batch_size=1)
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu6")(i)
    for filters, stride in ((24, 1), (32, 2), (32, 1)):
        x = keras.layers.DepthwiseConv2D(3, strides=stride, padding="same", activation="relu6")(x)
        x = keras.layers.Conv2D(filters, 1, activation="relu6")(x)
    x = keras.layers.AveragePooling2D(x.shape[1])(x)
    x = keras.layers.Reshape((32,))(x)
    return keras.Model(i, keras.layers.Dense(10)(x))


def _mobilenet_v2(keras):
    i = keras.Input((24, 24, 3), batch_size=1)
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu6")(i)
    for expand, out, stride in ((2, 16, 1), (3, 24, 2), (3, 24, 1)):
        y = keras.layers.Conv2D(x.shape[-1] * expand, 1, activation="relu6")(x)
        y = keras.layers.DepthwiseConv2D(3, strides=stride, padding="same", activation="relu6")(y)
        y = keras.layers.Conv2D(out, 1)(y)
        x = keras.layers.Add()([x, y]) if stride == 1 and x.shape[-1] == out else y
    x = keras.layers.AveragePooling2D(x.shape[1])(x)
    return keras.Model(i, keras.layers.Dense(10)(keras.layers.Reshape((24,))(x)))


def _resnet(keras):
    i = keras.Input((16, 16, 8), batch_size=1)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(i)
    for _ in range(2):
        y = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(x)
        y = keras.layers.Conv2D(16, 3, padding="same")(y)
        x = keras.layers.ReLU()(keras.layers.Add()([x, y]))
    x = keras.layers.MaxPooling2D(2)(x)
    return keras.Model(i, keras.layers.Dense(10)(keras.layers.Flatten()(x)))


def _ds_cnn(keras):
    i = keras.Input((49, 10, 1), batch_size=1)  # 49 MFCC frames x 10 coefficients, as in "Hello Edge"
    x = keras.layers.Conv2D(32, (10, 4), strides=(2, 2), padding="same", activation="relu")(i)
    for _ in range(2):
        x = keras.layers.DepthwiseConv2D(3, padding="same", activation="relu")(x)
        x = keras.layers.Conv2D(32, 1, activation="relu")(x)
    x = keras.layers.AveragePooling2D((x.shape[1], x.shape[2]))(x)
    return keras.Model(i, keras.layers.Dense(12)(keras.layers.Flatten()(x)))


def _mlp_autoencoder(keras):
    i = keras.Input((64,), batch_size=1)  # an 8x8 digits image
    x = i
    for units in (32, 8, 32):
        x = keras.layers.Dense(units, activation="relu")(x)
    return keras.Model(i, keras.layers.Dense(64)(x))


MODELS = {
    "mobilenet_v1": _mobilenet_v1,
    "mobilenet_v2": _mobilenet_v2,
    "resnet": _resnet,
    "ds_cnn": _ds_cnn,
    "mlp_autoencoder": _mlp_autoencoder,
}


def _calibration(name, shape, rng):
    if name == "mlp_autoencoder":
        from hwsim.accuracy.datasets import digits

        return [d.reshape(1, 64).astype(np.float32) / 16.0 for d in digits()[0][:32]]
    return [rng.uniform(-1, 1, (1, *shape)).astype(np.float32) for _ in range(16)]


KEYS = [m + v for m in MODELS for v in ("", "-16x8")]


def convert_models():
    """``(key, .tflite bytes)``: each model converted by the real converter to full-integer int8 (key
    ``name``) and to 16x8 (int16 activations, int8 weights; key ``name-16x8``); the build script's family."""
    tf = require("tensorflow")
    import keras

    for name, build in MODELS.items():
        keras.utils.set_random_seed(0)
        model = build(keras)
        calib = _calibration(name, model.input_shape[1:], np.random.default_rng(0))
        yield name, convert_full_integer(tf, model, calib)
        yield f"{name}-16x8", convert_full_integer(tf, model, calib, sixteen=True)


@pytest.fixture(scope="module")
def models():
    """The stored conversions of :func:`convert_models` (``tests/data/tflite/models``), keyed as it keys."""
    return stored_tflite("models", KEYS)


@pytest.mark.parametrize("name", KEYS)
def test_model_is_bit_exact_under_every_resolver(models, name, tflite_interpreter):
    """Every op output of the model equals the interpreter's (TensorFlow's and LiteRT's), for BUILTIN_REF,
    optimized and XNNPACK."""
    reports = verify(models[name], against=tflite_interpreter, samples=SAMPLES, seed=1).reports
    assert [r.semantics for r in reports] == list(TARGETS[tflite_interpreter])
    for report in reports:
        assert report.outputs_exact, report.table()
        for row in report.ops:
            assert row.observable and row.exact == row.elements, report.table()


def test_mac_count_of_a_known_model(models):
    """The MLP autoencoder's MACs are the sum of its dense layers: 64*32 + 32*8 + 8*32 + 32*64."""
    assert load_model(models["mlp_autoencoder"]).mac_count() == 64 * 32 + 32 * 8 + 8 * 32 + 32 * 64


def _cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "hwsim", *map(str, args)], capture_output=True, text=True, cwd=cwd
    )


def test_infer_cli_writes_the_interpreter_output(models, tmp_path):
    """`hwsim infer` writes the same int8 logits as `hwsim verify` compared, and dequantizes on request."""
    x = np.random.default_rng(3).integers(-128, 128, (1, 16, 16, 8)).astype(np.int8)
    np.save(tmp_path / "x.npy", x)
    run = _cli("infer", models["resnet"], "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy")
    assert run.returncode == 0, run.stderr
    y = np.load(tmp_path / "y.npy")
    assert y.dtype == np.int8 and y.shape == (1, 10)
    run = _cli(
        "infer",
        models["resnet"],
        "--input",
        tmp_path / "x.npy",
        "--output",
        tmp_path / "r.npy",
        "--dequantize",
    )
    assert run.returncode == 0 and np.load(tmp_path / "r.npy").dtype == np.float32
    run = _cli("verify", models["resnet"], "--input", tmp_path / "x.npy")
    assert run.returncode == 0 and "BIT-EXACT" in run.stdout


def test_bad_inputs_give_one_line_errors(models, tmp_path):
    """A truncated file, a wrong input shape, a wrong dtype and float64 reals (only float32 ones are
    quantized) each give one line naming the problem, exit 2."""
    truncated = tmp_path / "truncated.tflite"
    truncated.write_bytes(models["resnet"].read_bytes()[:200])
    np.save(tmp_path / "x.npy", np.zeros((1, 16, 16, 8), np.int8))
    np.save(tmp_path / "shape.npy", np.zeros((1, 15, 16, 8), np.int8))
    np.save(tmp_path / "dtype.npy", np.zeros((1, 16, 16, 8), np.int16))
    np.save(tmp_path / "f64.npy", np.zeros((1, 16, 16, 8), np.float64))
    cases = [
        (truncated, "x.npy", "damaged or truncated"),
        (models["resnet"], "shape.npy", "expected shape"),
        (models["resnet"], "dtype.npy", "expected dtype int8"),
        (models["resnet"], "f64.npy", "expected int8 codes or float32 reals to quantize (got float64)"),
    ]
    for model, x, message in cases:
        run = _cli("infer", model, "--input", tmp_path / x, "--output", tmp_path / "y.npy")
        assert run.returncode == 2
        assert message in run.stderr and len(run.stderr.strip().splitlines()) == 1, run.stderr
    not_tflite = tmp_path / "model.tflite"
    not_tflite.write_bytes(b"\x00" * 64)
    run = _cli("infer", not_tflite, "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy")
    assert run.returncode == 2 and "not a TFLite flatbuffer" in run.stderr


def test_runtime_disagreements_are_located(models):
    """On MobileNetV1 the three resolvers part ways on some layers; verify names each pair, op and LSB."""
    result = verify(models["mobilenet_v1"], against="tflite", samples=SAMPLES, seed=1)
    assert result.bit_exact
    assert result.disagreements, "the resolvers were expected to differ somewhere on this model"
    resolvers = {"tflite-reference", "tflite-optimized", "xnnpack"}
    for row in result.disagreements:
        assert {row.first, row.second} <= resolvers and 0 < row.differing <= row.elements and row.max_lsb >= 1
    assert {row.op for row in result.disagreements} <= {
        op.name for op in load_model(models["mobilenet_v1"]).ops
    }


def test_float_input_quantize_on_ties(tmp_path):
    """A float-input model's QUANTIZE on exact ties: BUILTIN_REF rounds x / s half away from zero, XNNPACK
    rounds x * float32(1 / s) half to even; hwsim reproduces both (optimized's block tail is not modelled)."""
    tf = require("tensorflow")
    import keras

    keras.utils.set_random_seed(0)
    i = keras.Input((64,), batch_size=1)
    model = keras.Model(i, keras.layers.Dense(8)(i))
    rng = np.random.default_rng(0)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: (
        [rng.uniform(-1, 1, (1, 64)).astype(np.float32)] for _ in range(8)
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    path = tmp_path / "float_io.tflite"
    path.write_bytes(converter.convert())
    graph = load_model(path)
    assert graph.ops[0].kind == "quantize"
    q = graph.tensor(graph.ops[0].outputs[0]).quant
    scale, zero = float(q.scale[0]), int(q.zero_point[0])
    codes = rng.integers(-100, 100, (6, 1, 64))
    ties = ((codes - zero + 0.5) * scale).astype(np.float32)  # exact half-way points (scale is a float32)
    result = verify(path, against="tflite", inputs=ties)
    by_name = {r.semantics: r for r in result.reports}
    for name in ("tflite-reference", "xnnpack"):
        assert by_name[name].outputs_exact, by_name[name].table()
    assert any(r.differing for r in result.disagreements if r.op.endswith("QUANTIZE"))
