"""Build the .tflite models the Ethos-U benchmark compares on (real TFLite converter, random weights).

Nothing is downloaded. Each network is its standard architecture built in Keras with random weights and
converted by TFLite's converter, as a user would: full-integer int8 (``<name>.tflite``) and, for some,
16x8 (int16 activations, int8 weights: ``<name>_16x8.tflite``). Two weight variants test Vela's weight
encoder: ``_sparse24`` (2 of every 4 weights along the input channels are zero, as 2:4 structured pruning
leaves them) and ``_16level`` (each layer's weights take 16 values, as weight clustering leaves them).

* the MLPerf Tiny v1.0 reference networks: keyword spotting DS-CNN (``kws_ds_cnn``), image classification
  ResNet-8 (``ic_resnet8``), visual wake words MobileNetV1 0.25 at 96x96 (``vww_mobilenet_v1_025``) and the
  anomaly-detection FC autoencoder (``ad_fc_autoencoder``);
* Keras' MobileNet 0.25 at 128 and 1.0 at 224, MobileNetV2 1.0 at 224 (``keras.applications``, built with
  an unknown batch size, so the converter emits the SHAPE arithmetic of their Reshape layers);
* a transformer encoder block (multi-head attention, layer norm, GELU-free ReLU MLP) on 64 tokens of 128;
* ``cascade_net``: small weights on 160x160 maps, which Vela cascades when its SRAM holds 384 KiB.

Usage: ``python benchmarks/ethos_u_models.py OUT_DIR [NAME ...]``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def kws_ds_cnn(keras):
    """MLPerf Tiny keyword spotting: DS-CNN (64 filters) on 49x10 MFCC, 12 classes."""
    L = keras.layers
    i = keras.Input((49, 10, 1))
    x = L.Conv2D(64, (10, 4), strides=(2, 2), padding="same")(i)
    x = L.ReLU()(L.BatchNormalization()(x))
    for _ in range(4):
        x = L.ReLU()(L.BatchNormalization()(L.DepthwiseConv2D(3, padding="same")(x)))
        x = L.ReLU()(L.BatchNormalization()(L.Conv2D(64, 1)(x)))
    x = L.AveragePooling2D(pool_size=(x.shape[1], x.shape[2]))(x)
    x = L.Flatten()(x)
    return keras.Model(i, L.Softmax()(L.Dense(12)(x)))


def ic_resnet8(keras):
    """MLPerf Tiny image classification: ResNet-8 on 32x32x3 CIFAR-10."""
    L = keras.layers
    i = keras.Input((32, 32, 3))
    x = L.ReLU()(L.BatchNormalization()(L.Conv2D(16, 3, padding="same")(i)))
    for filters, stride in ((16, 1), (32, 2), (64, 2)):
        y = L.ReLU()(L.BatchNormalization()(L.Conv2D(filters, 3, strides=stride, padding="same")(x)))
        y = L.BatchNormalization()(L.Conv2D(filters, 3, padding="same")(y))
        if stride != 1:
            x = L.Conv2D(filters, 1, strides=stride)(x)
        x = L.ReLU()(L.Add()([x, y]))
    x = L.AveragePooling2D(pool_size=x.shape[1])(x)
    x = L.Flatten()(x)
    return keras.Model(i, L.Softmax()(L.Dense(10)(x)))


def vww_mobilenet_v1_025(keras):
    """MLPerf Tiny visual wake words: MobileNetV1 alpha 0.25 on 96x96x3, 2 classes."""
    return keras.applications.MobileNet(input_shape=(96, 96, 3), alpha=0.25, weights=None, classes=2)


def ad_fc_autoencoder(keras):
    """MLPerf Tiny anomaly detection: the FC autoencoder on 640 log-mel features."""
    L = keras.layers
    i = keras.Input((640,))
    x = i
    for units in (128, 128, 128, 128, 8, 128, 128, 128, 128):
        x = L.ReLU()(L.BatchNormalization()(L.Dense(units)(x)))
    return keras.Model(i, L.Dense(640)(x))


def mobilenet_v1_025_128(keras):
    """Keras MobileNet alpha 0.25 at 128x128."""
    return keras.applications.MobileNet(input_shape=(128, 128, 3), alpha=0.25, weights=None)


def mobilenet_v1_100_224(keras):
    """Keras MobileNet alpha 1.0 at 224x224."""
    return keras.applications.MobileNet(input_shape=(224, 224, 3), alpha=1.0, weights=None)


def mobilenet_v2_100_224(keras):
    """Keras MobileNetV2 alpha 1.0 at 224x224."""
    return keras.applications.MobileNetV2(input_shape=(224, 224, 3), alpha=1.0, weights=None)


def transformer_block(keras):
    """One transformer encoder block: 4-head self-attention and a 512-wide MLP on 64 tokens of width 128."""
    L = keras.layers
    i = keras.Input((64, 128), batch_size=1)
    a = L.MultiHeadAttention(num_heads=4, key_dim=32)(i, i)
    x = L.LayerNormalization()(L.Add()([i, a]))
    m = L.Dense(128)(L.Dense(512, activation="relu")(x))
    return keras.Model(i, L.LayerNormalization()(L.Add()([x, m])))


def cascade_net(keras):
    """Small weights on large maps (160x160x16 is 400 KiB): Vela cascades it in a 384 KiB SRAM."""
    L = keras.layers
    i = keras.Input((160, 160, 3))
    x = L.Conv2D(16, 3, padding="same", activation="relu")(i)
    x = L.DepthwiseConv2D(3, padding="same", activation="relu")(x)
    x = L.Conv2D(16, 1, activation="relu")(x)
    x = L.Conv2D(32, 3, strides=2, padding="same", activation="relu")(x)
    x = L.GlobalAveragePooling2D()(x)
    return keras.Model(i, L.Dense(10)(x))


NETWORKS = {
    f.__name__: f
    for f in (
        kws_ds_cnn,
        ic_resnet8,
        vww_mobilenet_v1_025,
        ad_fc_autoencoder,
        mobilenet_v1_025_128,
        mobilenet_v1_100_224,
        mobilenet_v2_100_224,
        transformer_block,
        cascade_net,
    )
}
INT16 = ("kws_ds_cnn", "ic_resnet8", "ad_fc_autoencoder", "vww_mobilenet_v1_025")
WEIGHT_VARIANTS = ("kws_ds_cnn", "ic_resnet8", "vww_mobilenet_v1_025")


def _sparse24(w):
    """Zero the two smallest of every four weights along the input-channel axis (2:4 structured sparsity)."""
    import numpy as np

    if w.ndim < 2 or w.shape[-2] % 4:
        return w
    axis = w.ndim - 2
    moved = np.moveaxis(w, axis, -1)
    groups = moved.reshape(*moved.shape[:-1], -1, 4)
    order = np.argsort(np.abs(groups), axis=-1)
    mask = np.ones_like(groups, dtype=bool)
    np.put_along_axis(mask, order[..., :2], False, axis=-1)
    return np.moveaxis((groups * mask).reshape(moved.shape), -1, axis)


def _16level(w):
    """Snap each weight to the nearest of 16 evenly spaced values over the tensor's range (clustering)."""
    import numpy as np

    if w.ndim < 2:
        return w
    lo, hi = float(w.min()), float(w.max())
    levels = np.linspace(lo, hi, 16)
    return levels[np.abs(w[..., None] - levels).argmin(-1)].astype(w.dtype)


def _set_weights(model, transform) -> None:
    for layer in model.layers:
        weights = layer.get_weights()
        if weights:
            layer.set_weights([transform(w) for w in weights])


def _convert(model, path: Path, int16: bool, seed: int = 0) -> Path:
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    shape = [1 if d is None else d for d in model.input_shape]

    def representative():
        for _ in range(8):
            yield [rng.uniform(-1, 1, shape).astype(np.float32)]

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    if int16:
        conv.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
        ]
        conv.inference_input_type = conv.inference_output_type = tf.int16
    else:
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = conv.inference_output_type = tf.int8
    path.write_bytes(conv.convert())
    return path


def variants(name: str) -> list[str]:
    """The model files built for network ``name`` (stems)."""
    out = [name]
    if name in INT16:
        out.append(f"{name}_16x8")
    if name in WEIGHT_VARIANTS:
        out += [f"{name}_sparse24", f"{name}_16level"]
    return out


def build(name: str, out_dir: Path) -> list[Path]:
    """Write every variant of network ``name`` that is missing in ``out_dir``; return all their paths."""
    paths = [out_dir / f"{stem}.tflite" for stem in variants(name)]
    if all(p.exists() for p in paths):
        return paths
    import keras

    for path in paths:
        if path.exists():
            continue
        keras.utils.set_random_seed(0)
        model = NETWORKS[name](keras)
        if path.stem.endswith("_sparse24"):
            _set_weights(model, _sparse24)
        elif path.stem.endswith("_16level"):
            _set_weights(model, _16level)
        _convert(model, path, int16=path.stem.endswith("_16x8"))
    return paths


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "benchmarks/.models")
    out.mkdir(parents=True, exist_ok=True)
    for n in sys.argv[2:] or NETWORKS:
        for p in build(n, out):
            print(p, p.stat().st_size)
