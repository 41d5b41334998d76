"""16x8 models (int16 activations, int8 weights) made by the real TFLite converter run bit-exactly in hwsim,
nonlinear ops included, under TFLite's three resolvers and TFLite Micro.

A DS-CNN keyword spotter and a MobileNetV2-style net as MLPerf Tiny builds them (batch norm, softmax head;
the MobileNetV2 with global average pooling, i.e. MEAN), an elementwise mix (LEAKY_RELU, MUL, SUB, ADD,
CONCATENATION, TANH, LOGISTIC, MEAN over one axis) and TANH / LOGISTIC / SOFTMAX on every int16 code. The
converter runs once, in ``benchmarks/build_test_models.py`` (``tests/data/tflite/sixteen``).
"""

import numpy as np
import pytest

from hwsim.importers import load_model
from hwsim.verify.compare import TARGETS, verify
from tests.runtimes.conftest import convert_full_integer, require, stored_tflite

pytestmark = pytest.mark.filterwarnings("ignore:Statistics for quantized inputs:UserWarning")

SAMPLES = 2


def _conv_bn(keras, x, filters, kernel, strides=1, activation="relu", depthwise=False):
    if depthwise:
        x = keras.layers.DepthwiseConv2D(kernel, strides=strides, padding="same", use_bias=False)(x)
    else:
        x = keras.layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False)(x)
    x = keras.layers.BatchNormalization()(x)
    return keras.layers.Activation(activation)(x) if activation else x


def _ds_cnn(keras):
    i = keras.Input((49, 10, 1), batch_size=1)
    x = _conv_bn(keras, i, 24, (10, 4), strides=(2, 2))
    for _ in range(2):
        x = _conv_bn(keras, x, None, 3, depthwise=True)
        x = _conv_bn(keras, x, 24, 1)
    x = keras.layers.AveragePooling2D((x.shape[1], x.shape[2]))(x)
    return keras.Model(i, keras.layers.Dense(12, activation="softmax")(keras.layers.Flatten()(x)))


def _mobilenet_v2(keras):
    i = keras.Input((24, 24, 3), batch_size=1)
    x = _conv_bn(keras, i, 16, 3, strides=2, activation="relu6")
    for expand, out, stride in ((1, 16, 1), (3, 24, 2), (3, 24, 1)):
        y = _conv_bn(keras, x, x.shape[-1] * expand, 1, activation="relu6")
        y = _conv_bn(keras, y, None, 3, strides=stride, activation="relu6", depthwise=True)
        y = _conv_bn(keras, y, out, 1, activation=None)
        x = keras.layers.Add()([x, y]) if stride == 1 and x.shape[-1] == out else y
    x = _conv_bn(keras, x, 64, 1, activation="relu6")
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(i, keras.layers.Dense(10, activation="softmax")(x))


def _elementwise(keras):
    i = keras.Input((10, 24), batch_size=1)
    a, b = keras.layers.Dense(24)(i), keras.layers.Dense(24)(i)
    d = keras.layers.LeakyReLU(negative_slope=0.2)(keras.layers.Subtract()([a, b]))
    m = keras.layers.Multiply()([keras.layers.Activation("tanh")(a), keras.layers.Activation("sigmoid")(b)])
    s = keras.layers.Add()([d, m])
    return keras.Model(i, [keras.layers.Concatenate()([s, a]), keras.ops.mean(s, axis=1)])


def _activations(keras):
    i = keras.Input((1024,), batch_size=1)
    return keras.Model(
        i,
        [
            keras.layers.Activation("tanh")(i),
            keras.layers.Activation("sigmoid")(i),
            keras.layers.Softmax()(keras.layers.Reshape((128, 8))(i)),
        ],
    )


MODELS = {
    "ds_cnn": (_ds_cnn, 1.0),
    "mobilenet_v2": (_mobilenet_v2, 1.0),
    "elementwise": (_elementwise, 1.0),
    "activations": (_activations, 5.0),
}
EXPECTED_OPS = {
    "ds_cnn": {"CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "FULLY_CONNECTED", "SOFTMAX"},
    "mobilenet_v2": {"CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "MEAN", "FULLY_CONNECTED", "SOFTMAX"},
    "elementwise": {
        "FULLY_CONNECTED",
        "SUB",
        "LEAKY_RELU",
        "TANH",
        "LOGISTIC",
        "MUL",
        "ADD",
        "CONCATENATION",
        "QUANTIZE",
        "MEAN",
    },
    "activations": {"TANH", "LOGISTIC", "RESHAPE", "SOFTMAX"},
}


def _randomise_batch_norms(keras, model, rng):
    """Give every batch norm moving statistics and an affine part, as a trained net has (the converter
    folds them into the convolutions)."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            c = layer.gamma.shape[0]
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, c),
                    rng.uniform(-0.2, 0.2, c),
                    rng.uniform(-0.2, 0.2, c),
                    rng.uniform(0.5, 2.0, c),
                ]
            )


def convert_models():
    """``(name, .tflite bytes)``: each model converted by the real converter to 16x8 with int16 inputs and
    outputs (the build script's family ``sixteen``)."""
    tf = require("tensorflow")
    import keras

    for name, (build, span) in MODELS.items():
        keras.utils.set_random_seed(0)
        model = build(keras)
        rng = np.random.default_rng(0)
        _randomise_batch_norms(keras, model, rng)
        calib = [rng.uniform(-span, span, (1, *model.input_shape[1:])).astype(np.float32) for _ in range(8)]
        yield name, convert_full_integer(tf, model, calib, sixteen=True)


@pytest.fixture(scope="module")
def models():
    """The stored conversions of :func:`convert_models` (``tests/data/tflite/sixteen``), keyed by name."""
    return stored_tflite("sixteen", MODELS)


def _assert_exact(verification, semantics):
    assert [r.semantics for r in verification.reports] == semantics
    for report in verification.reports:
        assert report.outputs_exact, report.table()
        for row in report.ops:
            assert row.observable and row.exact == row.elements, report.table()
            assert row.isolated_exact in (None, row.elements), report.table()


@pytest.mark.parametrize("name", ["ds_cnn", "mobilenet_v2", "elementwise"])
def test_model_is_bit_exact_under_every_resolver_and_micro(models, name, tflite_interpreter):
    """Every op output, chained and isolated, equals the interpreter's under BUILTIN_REF, optimized, XNNPACK
    (which leaves int16 ops to the optimized kernels) and TFLite Micro."""
    kinds = {op.name.split(":", 1)[1] for op in load_model(models[name]).ops}
    assert kinds == EXPECTED_OPS[name]
    verification = verify(models[name], against=tflite_interpreter, samples=SAMPLES, seed=1)
    _assert_exact(verification, list(TARGETS[tflite_interpreter]))
    if tflite_interpreter == "litert":  # TFLite Micro once, beside TensorFlow's
        return
    require("tflite_micro")
    _assert_exact(verify(models[name], against="tflite-micro", samples=SAMPLES, seed=1), ["tflite-micro"])


def test_activations_on_every_int16_code(models, tflite_interpreter):
    """TANH, LOGISTIC and SOFTMAX (rows of 8) equal every interpreter on all 65,536 int16 codes."""
    codes = np.arange(-32768, 32768, dtype=np.int16).reshape(64, 1, 1024)
    kinds = {op.name.split(":", 1)[1] for op in load_model(models["activations"]).ops}
    assert kinds == EXPECTED_OPS["activations"]
    _assert_exact(
        verify(models["activations"], against=tflite_interpreter, inputs=codes),
        list(TARGETS[tflite_interpreter]),
    )
    if tflite_interpreter == "litert":
        return
    require("tflite_micro")
    _assert_exact(verify(models["activations"], against="tflite-micro", inputs=codes), ["tflite-micro"])
