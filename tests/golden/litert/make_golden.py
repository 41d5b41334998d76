"""Regenerate the LiteRT golden cases: ``python tests/golden/litert/make_golden.py`` (needs tensorflow-cpu
for the converter and ai-edge-litert for the interpreter; both are in ``.[all]``).

Small models where LiteRT 2.3 and TensorFlow 2.21 compute differently (and controls), each with seeded
inputs and every resolver's output from both interpreters, written to ``cases.npz`` beside the models:

- ``fc16x8_nobias``: a 16x8 FULLY_CONNECTED without a bias tensor (the converter declares int64 bias);
- ``fc16x8_nobias_int32``: the same declaring int32 bias (both interpreters run their optimized kernel);
- ``bmm_rhs_zp``: an int8 BATCH_MATMUL whose rhs has a nonzero zero point;
- ``bmm_rhs_symmetric``: the same with rhs zero point 0 (XNNPACK takes it in both interpreters);
- ``fc_int4_per_tensor``: an int4-weight FULLY_CONNECTED with one weight scale and an even depth (LiteRT's
  XNNPACK runs it, TensorFlow's leaves it to the optimized kernels).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
SAMPLES = 64


def _convert(tf, model, calib, activations_16x8: bool, bias_int32: bool = False) -> bytes:
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: (list(c) for c in calib)
    ops = tf.lite.OpsSet
    converter.target_spec.supported_ops = [
        ops.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
        if activations_16x8
        else ops.TFLITE_BUILTINS_INT8
    ]
    converter.inference_input_type = converter.inference_output_type = (
        tf.int16 if activations_16x8 else tf.int8
    )
    if bias_int32:  # the converter's option for 16x8 layers: int32 bias declared in place of int64
        converter._experimental_full_integer_quantization_bias_type = tf.int32
    return converter.convert()


def build_models() -> dict[str, Path]:
    """Convert the models with TensorFlow's converter (seeded)."""
    import keras
    import tensorflow as tf

    rng = np.random.default_rng(0)
    keras.utils.set_random_seed(0)
    i = keras.Input((17,), batch_size=1)
    fc = keras.Model(i, keras.layers.Dense(9, use_bias=False)(i))
    calib = [(rng.uniform(-1, 1, (1, 17)).astype(np.float32),)] * 8
    models = {
        "fc16x8_nobias": _convert(tf, fc, calib, True),
        "fc16x8_nobias_int32": _convert(tf, fc, calib, True, bias_int32=True),
    }
    a, b = keras.Input((2, 6, 8), batch_size=1), keras.Input((2, 8, 5), batch_size=1)
    bmm = keras.Model([a, b], keras.ops.matmul(a, b))
    for name, lo in (("bmm_rhs_zp", -0.5), ("bmm_rhs_symmetric", -1.28)):
        hi = 1.5 if lo == -0.5 else 1.27  # [-1.28, 1.27] gives scale 0.01, zero point 0
        calib = []
        for _ in range(16):
            x = rng.uniform(-1, 1, (1, 2, 6, 8)).astype(np.float32)
            y = rng.uniform(lo, hi, (1, 2, 8, 5)).astype(np.float32)
            y.flat[:2] = lo, hi
            calib.append((x, y))
        models[name] = _convert(tf, bmm, calib, False)
    from tests.runtimes import tflite_cases as C

    models["fc_int4_per_tensor"] = C._convert_int4(C._f("fc_int4", 4, 64, 16, int4=True, seed=70), tf)
    paths = {}
    for name, content in models.items():
        paths[name] = HERE / f"{name}.tflite"
        paths[name].write_bytes(content)
    return paths


def main() -> None:
    """Build the models, draw inputs, run every resolver of both interpreters (in their interpreter
    processes, as hwsim verify does) and store inputs and outputs."""
    import tempfile

    from hwsim.importers import load_model
    from hwsim.verify.compare import TARGETS, _run_tflite, random_inputs

    out = {}
    for name, path in build_models().items():
        inputs = random_inputs(load_model(path), SAMPLES, seed=7)
        for i, x in enumerate(inputs):
            out[f"{name}/input_{i}"] = x
        index = _output_index(path)
        for target in ("tflite", "litert"):
            with tempfile.TemporaryDirectory() as work:
                for run, tensors in _run_tflite(TARGETS[target], path, inputs, Path(work)).items():
                    if isinstance(tensors, str):
                        raise SystemExit(f"{name}: {run}: {tensors}")
                    out[f"{name}/{run}"] = tensors[f"t{index}"]
    np.savez_compressed(HERE / "cases.npz", **out)


def _output_index(path: Path) -> int:
    """The flatbuffer index of the model's output tensor."""
    import tflite

    sub = tflite.Model.GetRootAsModel(path.read_bytes(), 0).Subgraphs(0)
    return int(sub.Outputs(0))


if __name__ == "__main__":
    main()
