"""Small TFLite models whose operators probe Vela's placement rules, built with the real TFLite converter.

Each model is a list of cases, each a TensorFlow function of its own inputs (so that one case's float ops
cannot drag another's into float), converted in one file: full int8, 16x8 (int16 activations, int8
weights) or float. Weights and calibration data are seeded, so a converter of the same version writes the
same operators in the same order. They are converted once, into ``tests/data/tflite/placement`` (by
``benchmarks/build_test_models.py placement``), and the placement Vela gave each operator index of those
files is pinned (``tests/data/ethos_u/vela_placement.json``, written by ``benchmarks/pin_vela_placement.py``).

``int8_shape_only`` uses operators hwsim's importer reads with their shapes only (resize, tile, sum ...).
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

Case = tuple[Callable, list[tuple[tuple[int, ...], str]]]  # a function and its inputs' (shape, dtype)
FM = ((1, 16, 16, 8), "float32")


def _w(tf, shape, seed, scale=0.3):
    """Seeded uniform weights as a constant."""
    return tf.constant(np.random.default_rng(seed).uniform(-scale, scale, shape).astype(np.float32))


def int8_cases(tf) -> list[Case]:
    """Operators hwsim's importer reads with their attributes: convolutions, pools, MEAN, data movement."""
    conv = tf.nn.conv2d
    big = tf.ones((3, 3, 8192, 1))  # every weight 127: 73728 * 127 > 127 * 2**16, the weight-sum limit
    return [
        (lambda x: conv(x, _w(tf, (5, 5, 8, 8), 1), 4, "SAME"), [FM]),  # stride 4 with padding
        (lambda x: conv(x, _w(tf, (4, 4, 8, 8), 2), 4, "VALID"), [FM]),  # stride 4, no padding
        (lambda x: tf.nn.relu6(conv(x, _w(tf, (1, 1, 8, 16), 3), 2, "SAME")), [FM]),
        (lambda x: conv(x, big, 1, "VALID"), [((1, 3, 3, 8192), "float32")]),
        (lambda x: conv(x, _w(tf, (3, 3, 8, 8), 10), 1, "VALID", dilations=3), [((1, 17, 17, 8), "float32")]),
        (lambda x: conv(x, _w(tf, (33, 33, 4, 4), 11, 0.05), 1, "VALID"), [((1, 40, 40, 4), "float32")]),
        (lambda x: tf.nn.depthwise_conv2d(x, _w(tf, (3, 3, 8, 1), 4), [1, 4, 4, 1], "SAME"), [FM]),
        (lambda x: tf.nn.depthwise_conv2d(x, _w(tf, (3, 3, 8, 2), 5), [1, 2, 2, 1], "SAME"), [FM]),
        (lambda x: tf.nn.max_pool2d(x, 2, 4, "VALID"), [FM]),
        (lambda x: tf.nn.max_pool2d(x, 3, 2, "SAME"), [FM]),
        (lambda x: tf.nn.avg_pool2d(x, 9, 1, "SAME"), [FM]),  # padded kernel above 8
        (lambda x: tf.nn.avg_pool2d(x, 5, 4, "SAME"), [FM]),  # stride 4 with padding
        (lambda x: tf.nn.avg_pool2d(x, 16, 16, "VALID"), [FM]),
        (lambda x: tf.reduce_mean(x, [1, 2], keepdims=True), [FM]),
        (lambda x: tf.reduce_mean(x, [3]), [FM]),  # over depth, no axis of 1
        (lambda x: tf.reduce_mean(x, [1]), [FM]),
        (lambda x: tf.reduce_mean(x, [2]), [((1, 2, 5000, 4), "float32")]),  # an axis above 4096
        (lambda x: tf.reduce_mean(x, [1, 2]), [((2, 8, 8, 4), "float32")]),  # batch 2
        (lambda x: tf.nn.relu(conv(x, _w(tf, (3, 3, 4, 4), 6), 1, "SAME")), [((2, 8, 8, 4), "float32")]),
        (lambda x: tf.nn.softmax(x), [FM]),
        (lambda x: tf.nn.softmax(x), [((1, 257, 256, 2), "float32")]),  # H*W above 65536
        (lambda x, y: tf.concat([x, y], 0), [FM, FM]),
        (lambda x, y: tf.concat([x, y], 3), [FM, FM]),
        (lambda x: tf.transpose(x, [0, 2, 1, 3]), [FM]),
        (lambda x: tf.transpose(x, [3, 1, 2, 0]), [FM]),
        (lambda x: tf.transpose(x, [0, 2, 1, 3]), [((2, 300, 300, 1), "float32")]),  # N*C*... above 65536
        (lambda x: x[:, ::2, :, :], [FM]),
        (lambda x: x[:, :, :, ::2], [FM]),  # stride over depth
        (lambda x: x[:, 1:5, 2:, 3:7], [FM]),
        (lambda x: tf.slice(x, [0, 1, 1, 1], [1, 4, 4, 4]), [FM]),
        (lambda x: tf.pad(x, [[0, 0], [1, 2], [1, 1], [0, 0]]), [FM]),
        (lambda x: tf.gather(x, [0, 2, 1], axis=3), [FM]),
        (lambda t, i: tf.gather(t, i, axis=0), [((10, 8), "float32"), ((4,), "int32")]),  # dynamic indices
        (lambda a, b: tf.matmul(a, b), [((1, 16, 32), "float32"), ((1, 32, 8), "float32")]),
        (lambda a, b: tf.matmul(a, b), [((4, 32), "float32"), ((32, 8), "float32")]),
        (lambda x: tf.matmul(x, _w(tf, (64, 16), 7)), [((1, 64), "float32")]),
        (lambda x: tf.matmul(x, tf.ones((66000, 1))), [((1, 66000), "float32")]),  # weight sum
        (lambda x: tf.nn.leaky_relu(x, 0.2), [FM]),
        (lambda x: x * tf.nn.relu6(x + 3.0) / 6.0, [FM]),
        (lambda x: tf.nn.sigmoid(x), [FM]),
        (lambda x: tf.nn.tanh(x), [FM]),
        (lambda x: tf.math.rsqrt(tf.nn.relu(x) + 0.5), [FM]),
        (lambda x, y: tf.math.squared_difference(x, y), [FM, FM]),
        (lambda x, y: tf.nn.relu(x - y), [FM, FM]),
        (lambda x: tf.math.negative(x), [FM]),  # the converter leaves it in float
        (lambda a, b: a + b, [((1, 8, 8, 4), "int32")] * 2),
        (lambda a, b: a * b, [((1, 8, 8, 4), "int32")] * 2),
        (lambda a, b: tf.concat([a, b], 3), [((1, 8, 8, 4), "int32")] * 2),
        (lambda a: tf.transpose(a, [0, 1, 3, 2]), [((1, 8, 8, 4), "int32")]),
        (lambda a: tf.transpose(a, [0, 3, 1, 2]), [((1, 8, 8, 4), "int32")]),
    ]


def int8_shape_only_cases(tf) -> list[Case]:
    """Operators hwsim's importer reads with their shapes only."""
    resize = tf.image.resize  # TF2: half_pixel_centers, no align_corners
    return [
        (lambda x: resize(x, (32, 32), "bilinear"), [FM]),
        (lambda x: resize(x, (48, 48), "bilinear"), [FM]),
        (lambda x: resize(x, (64, 64), "bilinear"), [FM]),
        (lambda x: resize(x, (32, 32), "nearest"), [FM]),
        (lambda x: resize(x, (48, 48), "nearest"), [FM]),
        (lambda x: resize(x, (128, 128), "nearest"), [FM]),
        (lambda x: resize(x, (32, 16), "nearest"), [FM]),
        (lambda x: tf.tile(x, [1, 2, 1, 1]), [FM]),
        (lambda x, y: tf.stack([x, y], 1), [FM, FM]),
        (lambda x: tf.reduce_sum(x, [1, 2]), [FM]),
        (lambda x: tf.reduce_max(x, [3]), [FM]),
        (lambda x, y: tf.maximum(x, y), [FM, FM]),
        (lambda x: tf.minimum(x, 0.25), [FM]),
        (lambda x: tf.pad(x, [[0, 0], [1, 2], [1, 1], [0, 0]], "REFLECT"), [FM]),
        (lambda x: tf.math.abs(x), [FM]),
        (lambda x: tf.math.exp(x), [FM]),
        (lambda x: tf.math.log(tf.nn.relu(x) + 1.0), [FM]),
        (lambda x: tf.math.sqrt(tf.nn.relu(x)), [FM]),
        (lambda x: tf.nn.elu(x), [FM]),
        (lambda x: tf.math.floor(x), [FM]),
        (lambda x: tf.math.square(x), [FM]),
        (lambda x: tf.nn.l2_normalize(x, -1), [FM]),
        (lambda x: tf.nn.log_softmax(x), [FM]),
        (lambda x, y: x / (tf.nn.relu(y) + 1.0), [FM, FM]),
        (lambda a, b: tf.nn.relu(a * b), [((1, 8, 8, 4), "int32")] * 2),  # the converter makes it a MAXIMUM
        (lambda a: tf.reduce_sum(a, [1, 2]), [((1, 8, 8, 4), "int32")]),
        (lambda a: tf.tile(a, [1, 2, 1, 1]), [((1, 8, 8, 4), "int32")]),
        (lambda a: tf.cast(a, tf.int8), [((1, 8, 8, 4), "int32")]),
    ]


def int16_cases(tf) -> list[Case]:
    """16x8 operators, where Vela's limits differ from int8 (MEAN elements, matrix products, weight sums)."""
    big = tf.ones((3, 3, 8192, 1))
    return [
        (lambda x: tf.reduce_mean(x, [1, 2]), [((1, 256, 257, 1), "float32")]),  # 65792 elements
        (lambda x: tf.reduce_mean(x, [1, 2]), [FM]),
        (lambda a, b: tf.matmul(a, b), [((1, 16, 32), "float32"), ((1, 32, 8), "float32")]),
        (lambda a, b: tf.matmul(a, b), [((4, 32), "float32"), ((32, 8), "float32")]),
        (lambda x: tf.nn.conv2d(x, big, 1, "VALID"), [((1, 3, 3, 8192), "float32")]),
        (lambda x: tf.nn.conv2d(x, _w(tf, (3, 3, 8, 8), 8), 1, "SAME"), [FM]),
        (lambda x: tf.nn.softmax(x), [FM]),
        (lambda x, y: x + y, [FM, FM]),
        (lambda x: tf.nn.tanh(x), [FM]),
    ]


def float_cases(tf) -> list[Case]:
    """An unquantized model: float feature maps, which Vela never runs on the NPU."""
    return [
        (lambda x: tf.nn.relu(tf.nn.conv2d(x, _w(tf, (3, 3, 8, 8), 9), 1, "SAME")), [FM]),
        (lambda x, y: x + y, [FM, FM]),
        (lambda x: tf.reduce_mean(x, [1, 2]), [FM]),
    ]


MODELS: dict[str, tuple[Callable, str]] = {
    "int8": (int8_cases, "int8"),
    "int8_shape_only": (int8_shape_only_cases, "int8"),
    "int16": (int16_cases, "16x8"),
    "float": (float_cases, "float"),
}


def convert(tf, cases: list[Case], mode: str, seed: int = 0) -> bytes:
    """One .tflite file computing every case on its own inputs: ``mode`` "int8", "16x8" or "float"."""
    specs = [spec for _, inputs in cases for spec in inputs]

    def model(*xs):
        outs, i = [], 0
        for fn, inputs in cases:
            outs.append(fn(*xs[i : i + len(inputs)]))
            i += len(inputs)
        return outs

    concrete = tf.function(model).get_concrete_function(*[tf.TensorSpec(s, getattr(tf, d)) for s, d in specs])
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete])
    if mode != "float":
        rng = np.random.default_rng(seed)

        def representative():  # one sample: enough for ranges, and calibration is most of the conversion time
            yield [
                rng.uniform(-1, 1, s).astype(np.float32)
                if d == "float32"
                else rng.integers(0, 2, s).astype(d)
                for s, d in specs
            ]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        int16 = mode == "16x8"
        ops = tf.lite.OpsSet
        converter.target_spec.supported_ops = [
            ops.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
            if int16
            else ops.TFLITE_BUILTINS_INT8
        ]
        converter.inference_input_type = converter.inference_output_type = tf.int16 if int16 else tf.int8
    return converter.convert()


def convert_models():
    """``(name, .tflite bytes)`` of every model of :data:`MODELS` (``benchmarks/build_test_models.py``'s
    family ``placement``, which the tests and the pin script read)."""
    import tensorflow as tf

    for name, (cases, mode) in MODELS.items():
        yield name, convert(tf, cases(tf), mode)
