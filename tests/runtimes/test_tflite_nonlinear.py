"""Int8 models with TFLite's nonlinear ops, made by the real converter, run bit-exactly in hwsim.

Every op output of each model equals the interpreter's under BUILTIN_REF (tflite-reference), optimized
(tflite-optimized) and XNNPACK (xnnpack): a transformer encoder block (multi-head attention with
BATCH_MATMUL and SOFTMAX, layer norms as MEAN / SQUARED_DIFFERENCE / RSQRT / MUL, residual adds, a
feed-forward pair), a MobileNet-style model ending in GlobalAveragePooling2D (MEAN), a MobileNetV3-style
model (HARD_SWISH, squeeze-excite with LOGISTIC and MUL, TANH / LOGISTIC heads), an elementwise mix (SUB,
MUL, LEAKY_RELU, RELU, RELU6, TRANSPOSE, GATHER, STRIDED_SLICE) and the table activations on every int8 code.
The converter runs once, in ``benchmarks/build_test_models.py`` (``tests/data/tflite/nonlinear``).
"""

import numpy as np
import pytest

from hwsim.importers import load_model
from hwsim.verify.compare import TARGETS, verify
from tests.runtimes.conftest import convert_full_integer, require, stored_tflite

pytestmark = pytest.mark.filterwarnings("ignore:Statistics for quantized inputs:UserWarning")

SAMPLES = 6


def _transformer(keras):
    i = keras.Input((12, 32), batch_size=1)
    a = keras.layers.MultiHeadAttention(2, 16)(i, i)
    x = keras.layers.LayerNormalization()(keras.layers.Add()([i, a]))
    f = keras.layers.Dense(64, activation="relu")(x)
    f = keras.layers.Dense(32)(f)
    return keras.Model(i, keras.layers.LayerNormalization()(keras.layers.Add()([x, f])))


def _mobilenet_gap(keras):
    i = keras.Input((20, 20, 3), batch_size=1)
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu6")(i)
    x = keras.layers.DepthwiseConv2D(3, padding="same", activation="relu6")(x)
    x = keras.layers.Conv2D(24, 1, activation="relu6")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(i, keras.layers.Dense(10)(x))


def _mobilenet_v3(keras):
    i = keras.Input((16, 16, 3), batch_size=1)
    x = keras.layers.Conv2D(24, 3, strides=2, padding="same")(i)
    x = keras.layers.Activation("hard_swish")(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same")(x)
    x = keras.layers.Activation("hard_swish")(x)
    s = keras.layers.GlobalAveragePooling2D(keepdims=True)(x)  # 24 channels: a block of 16 and a tail of 8
    s = keras.layers.Conv2D(8, 1, activation="relu")(s)
    s = keras.layers.Conv2D(24, 1, activation="sigmoid")(s)
    x = keras.layers.Multiply()([x, s])
    x = keras.layers.Conv2D(20, 1)(x)
    x = keras.layers.Activation("hard_swish")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    a = keras.layers.Dense(8, activation="tanh")(x)
    b = keras.layers.Dense(8, activation="sigmoid")(x)
    return keras.Model(i, keras.layers.Concatenate()([a, b]))


def _elementwise_mix(keras):
    i = keras.Input((10, 24), batch_size=1)
    a = keras.layers.Dense(24)(i)
    b = keras.layers.Dense(24)(i)
    d = keras.layers.LeakyReLU(negative_slope=0.2)(keras.layers.Subtract()([a, b]))
    t = keras.layers.Permute((2, 1))(d)
    r = keras.layers.ReLU()(t)
    r6 = keras.layers.ReLU(max_value=6.0)(keras.layers.Reshape((10, 24))(t))
    return keras.Model(
        i, [r6[:, 2:8, 4:20], keras.ops.take(r, [0, 3, 5, 7], axis=1), keras.layers.Multiply()([a, b])]
    )


def _activations(keras):
    i = keras.Input((256,), batch_size=1)
    return keras.Model(i, [keras.layers.Activation(name)(i) for name in ("sigmoid", "tanh", "hard_swish")])


MODELS = {
    "transformer": (_transformer, 2.0),
    "mobilenet_gap": (_mobilenet_gap, 1.0),
    "mobilenet_v3": (_mobilenet_v3, 1.0),
    "elementwise_mix": (_elementwise_mix, 1.0),
    "activations": (_activations, 5.0),
}
EXPECTED_OPS = {
    "transformer": {
        "FULLY_CONNECTED",
        "RESHAPE",
        "TRANSPOSE",
        "BATCH_MATMUL",
        "MUL",
        "SOFTMAX",
        "ADD",
        "MEAN",
        "DEQUANTIZE",
        "NEG",
        "QUANTIZE",
        "SQUARED_DIFFERENCE",
        "RSQRT",
    },
    "mobilenet_gap": {"CONV_2D", "DEPTHWISE_CONV_2D", "MEAN", "FULLY_CONNECTED"},
    "mobilenet_v3": {
        "CONV_2D",
        "HARD_SWISH",
        "DEPTHWISE_CONV_2D",
        "MEAN",
        "LOGISTIC",
        "MUL",
        "FULLY_CONNECTED",
        "TANH",
        "QUANTIZE",
        "CONCATENATION",
    },
    "elementwise_mix": {
        "FULLY_CONNECTED",
        "MUL",
        "SUB",
        "LEAKY_RELU",
        "RELU",
        "RELU6",
        "TRANSPOSE",
        "GATHER",
        "RESHAPE",
        "STRIDED_SLICE",
    },
    "activations": {"LOGISTIC", "TANH", "HARD_SWISH"},
}


def convert_models():
    """``(name, .tflite bytes)``: each model converted to full-integer int8 by the real converter (seeded;
    the build script's family ``nonlinear``)."""
    tf = require("tensorflow")
    import keras

    for name, (build, span) in MODELS.items():
        keras.utils.set_random_seed(0)
        model = build(keras)
        rng = np.random.default_rng(0)
        calib = [rng.uniform(-span, span, (1, *model.input_shape[1:])).astype(np.float32) for _ in range(16)]
        yield name, convert_full_integer(tf, model, calib)


@pytest.fixture(scope="module")
def models():
    """The stored conversions of :func:`convert_models` (``tests/data/tflite/nonlinear``), keyed by name."""
    return stored_tflite("nonlinear", MODELS)


def _assert_exact(verification, interpreter):
    reports = verification.reports
    assert [r.semantics for r in reports] == list(TARGETS[interpreter])
    for report in reports:
        assert report.outputs_exact, report.table()
        for row in report.ops:
            assert row.observable and row.exact == row.elements, report.table()
            assert row.isolated_exact in (None, row.elements), report.table()


@pytest.mark.parametrize("name", [n for n in MODELS if n != "activations"])
def test_model_is_bit_exact_under_every_resolver(models, name, tflite_interpreter):
    """Every op output of the model, chained and isolated, equals the interpreter's (TensorFlow's and
    LiteRT's) under all three resolvers."""
    kinds = {op.name.split(":", 1)[1] for op in load_model(models[name]).ops}
    assert kinds == EXPECTED_OPS[name]
    verification = verify(models[name], against=tflite_interpreter, samples=SAMPLES, seed=1)
    _assert_exact(verification, tflite_interpreter)


def test_table_activations_on_every_int8_code(models, tflite_interpreter):
    """LOGISTIC, TANH and HARD_SWISH match the interpreter on all 256 input codes under all three
    resolvers."""
    codes = np.arange(-128, 128, dtype=np.int8)[None]
    _assert_exact(verify(models["activations"], against=tflite_interpreter, inputs=codes), tflite_interpreter)
