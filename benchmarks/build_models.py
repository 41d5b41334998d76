"""Build the int8 .tflite models the benchmarks need (Keras architectures, random weights).

Nothing is downloaded: ``keras.applications.<Net>(weights=None)`` or a builder of
``benchmarks/published_nets.py`` makes the architecture with random weights, and TFLite's converter
quantizes it to full int8 (int8 input and output) with a random representative dataset. Latency does not
depend on the weight values. Each model is built at the input size of the figure it is compared with.

Usage: ``python benchmarks/build_models.py OUT_DIR [NAME ...]`` (all models when no name is given). The
large ones take minutes each; run it niced, one at a time, and keep OUT_DIR outside the repository.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# name -> (keras.applications class, or a builder of benchmarks/published_nets.py with its arguments; input
# size)
MODELS = {
    "mobilenet_v1": ("MobileNet", {}, 224),
    "mobilenet_v2": ("MobileNetV2", {}, 224),
    "resnet50_v1": ("ResNet50", {}, 224),
    "resnet50_v1_299": ("ResNet50", {}, 299),
    "resnet50_v2_299": ("ResNet50V2", {}, 299),
    "resnet152_v2_299": ("ResNet152V2", {}, 299),
    "inception_resnet_v2_299": ("InceptionResNetV2", {}, 299),
    "densenet121": ("DenseNet121", {}, 224),
    "vgg16": ("VGG16", {}, 224),
    "vgg19": ("VGG19", {}, 224),
    "inception_v1": ("inception_v1", {}, 224),
    "inception_v4_299": ("inception_v4", {}, 299),
    "squeezenet": ("squeezenet", {}, 224),
    "efficientnet_edgetpu_s": ("efficientnet_edgetpu", {"variant": "s"}, 224),
    "efficientnet_edgetpu_m": ("efficientnet_edgetpu", {"variant": "m"}, 240),
    "efficientnet_edgetpu_l": ("efficientnet_edgetpu", {"variant": "l"}, 300),
    "ssd_mobilenet_v1_300": ("ssd_mobilenet", {"version": 1}, 300),
    "ssd_mobilenet_v2_300": ("ssd_mobilenet", {"version": 2}, 300),
    "deeplab_v3_mnv2_513": ("deeplab_v3_mobilenet_v2", {}, 513),
    "unet_mnv2_128": ("unet_mobilenet_v2", {}, 128),
    # Qualcomm AI Hub's networks are torchvision's: ResNets v1.5, SqueezeNet 1.1
    "resnet18_v1_5": ("resnet_v1_5", {"depth": 18}, 224),
    "resnet50_v1_5": ("resnet_v1_5", {"depth": 50}, 224),
    "resnet101_v1_5": ("resnet_v1_5", {"depth": 101}, 224),
    "squeezenet_1_1": ("squeezenet", {"version": "1.1"}, 224),
    "mobilenet_v3_large": ("MobileNetV3Large", {}, 224),
    "inception_v3_299": ("InceptionV3", {}, 299),
}


def keras_model(name: str):
    """The Keras model of ``name`` (random weights, batch 1, its table's input size)."""
    import tensorflow as tf

    source, kwargs, size = MODELS[name]
    tf.keras.utils.set_random_seed(0)
    if source[0].islower():
        from benchmarks import published_nets

        return getattr(published_nets, source)(**kwargs)
    # A static batch of 1 lets the converter fold the SHAPE/PACK ops Keras' Reshape layers would otherwise
    # emit.
    inp = tf.keras.Input(shape=(size, size, 3), batch_size=1)
    return getattr(tf.keras.applications, source)(weights=None, input_tensor=inp, **kwargs)


def randomize_batch_norms(model, rng) -> None:
    """Give every batch norm non-trivial statistics. With Keras' initial ones (mean 0, variance 1, offset 0)
    the converter drops the add of a batch norm that cannot fold into a convolution (DenseNet's and ResNet
    v2's pre-activation ones), which a trained model keeps."""
    import tensorflow as tf

    draw = {
        "gamma": lambda n: rng.uniform(0.5, 1.5, n),
        "beta": lambda n: rng.normal(0, 0.1, n),
        "moving_mean": lambda n: rng.normal(0, 0.1, n),
        "moving_variance": lambda n: rng.uniform(0.5, 1.5, n),
    }
    for layer in model.layers:
        if isinstance(layer, tf.keras.layers.BatchNormalization):  # gamma is absent when scale=False
            layer.set_weights([draw[w.name.split("/")[-1].split(":")[0]](w.shape) for w in layer.weights])


def build(name: str, out_dir: Path) -> Path:
    """Write ``out_dir/<name>_int8.tflite`` unless it exists; return its path."""
    path = out_dir / f"{name}_int8.tflite"
    if path.exists():
        return path
    import numpy as np
    import tensorflow as tf

    model = keras_model(name)
    size = MODELS[name][2]
    rng = np.random.default_rng(0)
    randomize_batch_norms(model, rng)

    def representative():
        for _ in range(4):
            yield [rng.uniform(-1, 1, (1, size, size, 3)).astype(np.float32)]

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    if all(o.dtype == tf.float32 for o in model.outputs):  # DeepLab ends in an int32 arg max
        conv.inference_output_type = tf.int8
    path.write_bytes(conv.convert())
    return path


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "benchmarks/.models")
    out.mkdir(parents=True, exist_ok=True)
    for n in sys.argv[2:] or MODELS:
        print(build(n, out), flush=True)
