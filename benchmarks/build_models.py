"""Build the int8 .tflite models the scheduler benchmark needs (Keras architectures, random weights).

Nothing is downloaded: ``keras.applications.<Net>(weights=None)`` builds the architecture with random
weights, and TFLite's converter quantizes it to full int8 with a random representative dataset. Latency
does not depend on the weight values. Usage: ``python benchmarks/build_models.py OUT_DIR``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

MODELS = {
    "mobilenet_v1": ("MobileNet", {}),
    "mobilenet_v2": ("MobileNetV2", {}),
    "resnet50_v1": ("ResNet50", {}),
}


def build(name: str, out_dir: Path) -> Path:
    """Write ``out_dir/<name>_int8.tflite`` unless it exists; return its path."""
    path = out_dir / f"{name}_int8.tflite"
    if path.exists():
        return path
    import numpy as np
    import tensorflow as tf

    cls, kwargs = MODELS[name]
    tf.keras.utils.set_random_seed(0)
    # A static batch of 1 lets the converter fold the SHAPE/PACK ops Keras' Reshape layers would otherwise emit.
    inp = tf.keras.Input(shape=(224, 224, 3), batch_size=1)
    model = getattr(tf.keras.applications, cls)(weights=None, input_tensor=inp, **kwargs)
    rng = np.random.default_rng(0)

    def representative():
        for _ in range(4):
            yield [rng.uniform(-1, 1, (1, 224, 224, 3)).astype(np.float32)]

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    path.write_bytes(conv.convert())
    return path


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "benchmarks/.models")
    out.mkdir(parents=True, exist_ok=True)
    for n in MODELS:
        print(build(n, out))
