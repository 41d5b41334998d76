"""Small Keras models with an unknown batch size, converted by the real TFLite converter once per session."""

import numpy as np
import pytest

from tests.runtimes.conftest import require


def _reshapes(keras):
    """Conv, Reshape, Dense on the sequence, Flatten: SHAPE -> STRIDED_SLICE -> PACK -> RESHAPE chains and the
    converter's Tensordot (GATHER, REDUCE_PROD, CONCATENATION), which flattens the batch into the rows."""
    i = keras.Input((8, 6, 3))
    x = keras.layers.Reshape((6, 16))(keras.layers.Conv2D(4, 3)(i))
    x = keras.layers.Flatten()(keras.layers.Dense(3)(x))
    return keras.Model(i, keras.layers.Dense(5)(x))


def _mobilenet(keras):
    """keras.applications.MobileNet at alpha 0.25 (its head ends in a Reshape), no softmax."""
    return keras.applications.MobileNet(
        input_shape=(32, 32, 3), alpha=0.25, weights=None, classes=4, classifier_activation=None
    )


def _mobilenet_v2(keras):
    """keras.applications.MobileNetV2 at alpha 0.35."""
    return keras.applications.MobileNetV2(
        input_shape=(32, 32, 3), alpha=0.35, weights=None, classes=4, classifier_activation=None
    )


def _attention(keras):
    """MultiHeadAttention (self-attention) on 8 tokens of 16."""
    i = keras.Input((8, 16))
    return keras.Model(i, keras.layers.MultiHeadAttention(num_heads=2, key_dim=4)(i, i))


def _upsample(keras):
    """UpSampling2D (EXPAND_DIMS, TILE and shape arithmetic) and Maximum: TILE and MAXIMUM have no kernel."""
    i = keras.Input((8, 8, 3))
    x = keras.layers.UpSampling2D()(keras.layers.Conv2D(4, 3, padding="same")(i))
    return keras.Model(i, keras.layers.Maximum()([x, keras.layers.Conv2D(4, 1)(x)]))


def _space_to_depth(keras):
    """SPACE_TO_DEPTH, an op hwsim does not read."""
    import tensorflow as tf

    i = keras.Input((4, 4, 2))
    return keras.Model(
        i, keras.layers.Lambda(lambda t: tf.nn.space_to_depth(t, 2))(keras.layers.Conv2D(2, 1)(i))
    )


BUILDERS = {
    f.__name__.lstrip("_"): f
    for f in (_reshapes, _mobilenet, _mobilenet_v2, _attention, _upsample, _space_to_depth)
}


@pytest.fixture(scope="session")
def keras_models(tmp_path_factory):
    """Each model converted to full-integer int8 (int8 input and output), as benchmarks/ethos_u_models.py
    does."""
    tf = require("tensorflow")
    import keras

    folder = tmp_path_factory.mktemp("keras")
    paths = {}
    for name, build in BUILDERS.items():
        keras.utils.set_random_seed(0)
        model = build(keras)
        rng = np.random.default_rng(0)
        shape = [1 if d is None else d for d in model.input_shape]
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: (
            [rng.uniform(-1, 1, shape).astype(np.float32)] for _ in range(4)
        )
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = converter.inference_output_type = tf.int8
        paths[name] = folder / f"{name}.tflite"
        paths[name].write_bytes(converter.convert())
    return paths
