"""Single-op TFLite models for the golden tests: their specs, how to build them, and how to run them.

The module has three roles:

* ``CASES``: one :class:`Case` per single-layer Keras model (conv, depthwise, dense, add, pooling; int8 and
  16x8), with the calibration data that gives it the property it covers (extreme zero points, saturation).
* In the test process: :func:`convert` builds and converts a case with the real ``tf.lite.TFLiteConverter``,
  :func:`read_model` reads the op, its options and every tensor's codes, scales and zero points back, and
  :func:`hwsim_output` computes the same layer with :mod:`hwsim.numerics.quantized`.
* As a script (``python tflite_cases.py DIR RESOLVER/NAME...``): runs each saved model under its resolver in
  turn and writes one ``.npz`` of outputs per job, or its Python error to a ``.error``, so that one process
  serves TensorFlow's three resolvers (one TensorFlow import) and a runtime aborting the process loses only
  the model it was running. It imports only numpy and the interpreters it needs (tensorflow, tflite_micro).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field

import numpy as np

# Resolver name -> hwsim semantics. "micro" is the TFLite Micro interpreter of the tflite-micro package.
RESOLVERS = {
    "builtin_ref": "tflite-reference",
    "builtin_without_default_delegates": "tflite-optimized",
    "auto": "xnnpack",
    "micro": "tflite-micro",
}
TF_RESOLVER_TYPES = {
    "builtin_ref": "BUILTIN_REF",
    "builtin_without_default_delegates": "BUILTIN_WITHOUT_DEFAULT_DELEGATES",
    "auto": "AUTO",
}

# TFLite schema enums (schema_py_generated), repeated here so the runner script needs no schema import.
ACTIVATIONS = {0: None, 1: "relu", 2: "relu_n1_to_1", 3: "relu6"}
PADDINGS = {0: "same", 1: "valid"}


@dataclass(frozen=True)
class Case:
    """A single-layer model: ``op`` with Keras ``params``, input shape(s) with batch, and its calibration.

    ``calib`` picks the representative data: ``uniform`` (reals in [-1, 1]), ``positive`` ([0, 1]: input
    zero point -128), ``negative`` ([-1, 0]: zero point 127), ``constant`` (only constant images -1, 0, 1:
    the output range is too narrow for random inputs, so outputs saturate at both ends), ``pinned`` (an add
    whose ``params["ranges"]`` fix both input ranges and the output range exactly, for chosen scale ratios).
    ``int16`` converts with 16-bit activations and 8-bit weights (16x8). ``grid`` feeds an add every pair of
    int8 codes (shape (1, 256, 256, 1)) instead of random codes. ``int4`` builds the layer from fake-quant ops
    (4-bit weights, 8-bit activations) and converts it with the converter's experimental low-bit QAT mode,
    which stores the weights as INT4 tensors; the input range is [-1, 1] and the output range is fixed from a
    float run so that a few outputs saturate.
    """

    name: str
    op: str  # conv2d, depthwise_conv2d, fully_connected, add, avg_pool, max_pool
    shape: tuple[int, ...]
    params: dict = field(default_factory=dict)
    activation: str | None = None
    calib: str = "uniform"
    int16: bool = False
    seed: int = 0
    grid: bool = False
    int4: bool = False

    @property
    def tflite_op(self) -> str:
        return {
            "conv2d": "CONV_2D",
            "depthwise_conv2d": "DEPTHWISE_CONV_2D",
            "fully_connected": "FULLY_CONNECTED",
            "add": "ADD",
            "avg_pool": "AVERAGE_POOL_2D",
            "max_pool": "MAX_POOL_2D",
        }[self.op]

    @property
    def inputs(self) -> int:
        return 2 if self.op == "add" else 1


def _c(name, shape, filters, kernel, **kw):
    return Case(
        name,
        "conv2d",
        shape,
        {
            "filters": filters,
            "kernel": kernel,
            "strides": kw.pop("strides", 1),
            "padding": kw.pop("padding", "valid"),
            "dilation": kw.pop("dilation", 1),
        },
        **kw,
    )


def _d(name, shape, multiplier, kernel, **kw):
    return Case(
        name,
        "depthwise_conv2d",
        shape,
        {
            "depth_multiplier": multiplier,
            "kernel": kernel,
            "strides": kw.pop("strides", 1),
            "padding": kw.pop("padding", "valid"),
            "dilation": kw.pop("dilation", 1),
        },
        **kw,
    )


def _f(name, rows, depth, units, **kw):
    return Case(name, "fully_connected", (rows, depth), {"units": units}, **kw)


def _p(name, kind, shape, pool, strides, padding, **kw):
    return Case(name, kind, shape, {"pool": pool, "strides": strides, "padding": padding}, **kw)


CASES: tuple[Case, ...] = (
    # int8 conv2d: per-channel weights, strides, SAME/VALID, dilation, fused activations, extreme zero points
    _c("conv_k3_valid", (4, 34, 34, 3), 8, 3, seed=1),
    _c("conv_k3_same_s2_relu", (2, 40, 38, 4), 6, 3, strides=2, padding="same", activation="relu", seed=2),
    _c(
        "conv_k3_same_d2_relu6_pos",
        (1, 11, 11, 3),
        4,
        3,
        padding="same",
        dilation=2,
        activation="relu6",
        calib="positive",
        seed=3,
    ),
    _c("conv_k5x3_valid_s21_sat", (2, 24, 16, 3), 5, (5, 3), strides=(2, 1), calib="constant", seed=4),
    _c("conv_k1_same_neg", (2, 48, 48, 8), 7, 1, padding="same", calib="negative", seed=5),
    _c(
        "conv_k2_same_d21_relu_sat",
        (1, 9, 10, 2),
        3,
        2,
        padding="same",
        dilation=(2, 1),
        activation="relu",
        calib="constant",
        seed=6,
    ),
    _c("conv_k3_valid_s3_k48", (1, 13, 13, 16), 8, 3, strides=3, seed=7),
    # int8 depthwise: multipliers 1..3
    _d("dw_m1_k3_same", (2, 32, 32, 8), 1, 3, padding="same", seed=11),
    _d(
        "dw_m2_k3_valid_s2_relu_pos",
        (2, 11, 10, 3),
        2,
        3,
        strides=2,
        activation="relu",
        calib="positive",
        seed=12,
    ),
    _d(
        "dw_m3_k3_same_d2_relu6",
        (1, 32, 32, 4),
        3,
        3,
        padding="same",
        dilation=2,
        activation="relu6",
        seed=13,
    ),
    _d("dw_m1_k5_same_s2_sat", (2, 11, 11, 5), 1, 5, strides=2, padding="same", calib="constant", seed=14),
    _d("dw_m2_k2x3_same_neg", (1, 40, 40, 6), 2, (2, 3), padding="same", calib="negative", seed=15),
    _d("dw_m1_c1_k3_same_s2", (4, 96, 96, 1), 1, 3, strides=2, padding="same", seed=16),
    _d("dw_m1_c13_k3_same", (1, 40, 40, 13), 1, 3, padding="same", seed=18),
    _d("dw_m3_k3_valid_sat_relu6", (1, 8, 8, 3), 3, 3, activation="relu6", calib="constant", seed=17),
    # int8 fully connected
    _f("fc_k64_n32", 2048, 64, 32, seed=21),
    _f("fc_k300_n10_relu_pos", 128, 300, 10, activation="relu", calib="positive", seed=22),
    _f("fc_k4096_n8_sat", 16, 4096, 8, calib="constant", seed=23),
    _f("fc_k128_n12_relu6_neg", 1024, 128, 12, activation="relu6", calib="negative", seed=24),
    _f("fc_k1_n5", 6, 1, 5, seed=25),
    # int8 add of two inputs (different ranges, so different scales and zero points)
    Case("add", "add", (2, 6, 5, 4), seed=31),
    Case("add_relu_sat", "add", (2, 5, 5, 3), activation="relu", calib="constant", seed=32),
    Case("add_relu6_pos", "add", (1, 7, 4, 6), activation="relu6", calib="positive", seed=33),
    # every pair of codes, with scale ratios s1/so = 1/3 and s2/so = 5/6 (many exact and near ties)
    Case(
        "add_grid_thirds",
        "add",
        (1, 256, 256, 1),
        {"ranges": ((-1.0, 1.0), (-2.0, 3.0), (-2.5, 3.5))},
        calib="pinned",
        grid=True,
        seed=34,
    ),
    # every pair of codes, s1/so = 1/4 and s2/so = 1, input 1 zero point -128, fused ReLU
    Case(
        "add_grid_quarters_relu",
        "add",
        (1, 256, 256, 1),
        {"ranges": ((0.0, 2.0), (-4.0, 4.0), (-4.0, 4.0))},
        activation="relu",
        calib="pinned",
        grid=True,
        seed=35,
    ),
    # int8 pooling
    _p("avgpool_2_s2_valid", "avg_pool", (2, 8, 8, 4), 2, 2, "valid", seed=41),
    _p("avgpool_3_s1_same", "avg_pool", (2, 32, 32, 8), 3, 1, "same", seed=42),
    _p("avgpool_3x2_s2_same_pos", "avg_pool", (1, 9, 8, 5), (3, 2), 2, "same", calib="positive", seed=43),
    _p("maxpool_3_s2_same", "max_pool", (2, 9, 9, 4), 3, 2, "same", seed=44),
    _p("maxpool_2_s2_valid_neg", "max_pool", (1, 8, 6, 3), 2, 2, "valid", calib="negative", seed=45),
    # 16x8: int16 activations, int8 weights, int64 bias
    _c("conv16_k3_same_relu", (2, 32, 32, 3), 8, 3, padding="same", activation="relu", int16=True, seed=51),
    _c("conv16_k3_valid_s2_sat", (2, 21, 21, 4), 6, 3, strides=2, calib="constant", int16=True, seed=52),
    _c(
        "conv16_k3_same_d2_relu6",
        (1, 10, 10, 2),
        4,
        3,
        padding="same",
        dilation=2,
        activation="relu6",
        int16=True,
        seed=53,
    ),
    _d("dw16_m1_k3_same", (2, 32, 32, 8), 1, 3, padding="same", int16=True, seed=54),
    _d("dw16_m2_k3_valid_s2_relu6", (1, 11, 11, 3), 2, 3, strides=2, activation="relu6", int16=True, seed=55),
    _d(
        "dw16_m3_k3_same_d2_sat",
        (1, 9, 9, 2),
        3,
        3,
        padding="same",
        dilation=2,
        calib="constant",
        int16=True,
        seed=56,
    ),
    _f("fc16_k64_n32", 2048, 64, 32, int16=True, seed=57),
    _f("fc16_k4096_n8_relu_sat", 16, 4096, 8, activation="relu", calib="constant", int16=True, seed=58),
    # int4 weights (int8 activations): per-channel conv and depthwise, per-tensor FC
    _c("conv4_k3_same", (2, 24, 24, 4), 8, 3, padding="same", int4=True, seed=61),
    _c("conv4_k3_valid_s2_relu6", (1, 25, 25, 3), 5, 3, strides=2, activation="relu6", int4=True, seed=62),
    _d("dw4_m1_k3_same", (2, 24, 24, 8), 1, 3, padding="same", int4=True, seed=63),
    _d("dw4_m2_k3_valid_relu", (1, 20, 20, 5), 2, 3, activation="relu", int4=True, seed=64),
    _f("fc4_k64_n16", 512, 64, 16, int4=True, seed=65),
)
CASES_BY_NAME = {c.name: c for c in CASES}


# ---------------------------------------------------------------------------------------------- building
def _weights(case: Case, rng: np.random.Generator, shape: tuple[int, ...], out_axis: int) -> np.ndarray:
    """Weights with a different magnitude per output channel, so per-channel scales really differ."""
    w = rng.uniform(-1.0, 1.0, shape)
    gains = np.exp(rng.uniform(np.log(0.05), np.log(1.0), shape[out_axis]))
    view = [1] * len(shape)
    view[out_axis] = shape[out_axis]
    w = w * gains.reshape(view) / np.sqrt(np.prod(shape) / shape[out_axis])
    if case.calib == "constant":
        # Zero-sum kernels: constant calibration images then give outputs near the bias only, so random inputs
        # overshoot the calibrated output range and saturate at both ends.
        w -= w.mean(axis=tuple(a for a in range(len(shape)) if a != out_axis), keepdims=True)
    return w.astype(np.float32)


def _bias(case: Case, rng: np.random.Generator, channels: int) -> np.ndarray:
    """Seeded biases; small ones for ``constant`` calibration, whose output range they alone set."""
    bound = 0.06 if case.calib == "constant" else 0.3
    return rng.uniform(-bound, bound, channels).astype(np.float32)


def build_keras(case: Case, keras):
    """The one-layer Keras model of ``case`` with seeded weights and biases."""
    rng = np.random.default_rng(case.seed)
    p = case.params
    batch, *shape = case.shape
    act = {None: None, "relu": "relu", "relu6": "relu6"}[case.activation]
    inp = keras.Input(tuple(shape), batch_size=batch)
    if case.op == "conv2d":
        layer = keras.layers.Conv2D(
            p["filters"],
            p["kernel"],
            strides=p["strides"],
            padding=p["padding"],
            dilation_rate=p["dilation"],
            activation=act,
        )
        out = layer(inp)
        kernel = _weights(case, rng, layer.kernel.shape, 3)
        layer.set_weights([kernel, _bias(case, rng, p["filters"])])
        return keras.Model(inp, out)
    if case.op == "depthwise_conv2d":
        layer = keras.layers.DepthwiseConv2D(
            p["kernel"],
            strides=p["strides"],
            padding=p["padding"],
            depth_multiplier=p["depth_multiplier"],
            dilation_rate=p["dilation"],
            activation=act,
        )
        out = layer(inp)
        kh, kw, c, m = layer.kernel.shape
        kernel = _weights(case, rng, (kh, kw, c * m), 2).reshape(kh, kw, c, m)
        layer.set_weights([kernel, _bias(case, rng, c * m)])
        return keras.Model(inp, out)
    if case.op == "fully_connected":
        layer = keras.layers.Dense(p["units"], activation=act)
        out = layer(inp)
        kernel = _weights(case, rng, layer.kernel.shape, 1)
        layer.set_weights([kernel, _bias(case, rng, p["units"])])
        return keras.Model(inp, out)
    if case.op == "add":
        inp2 = keras.Input(tuple(shape), batch_size=batch)
        out = keras.layers.Add()([inp, inp2])
        if case.activation:
            out = keras.layers.ReLU(max_value=6.0 if case.activation == "relu6" else None)(out)
        return keras.Model([inp, inp2], out)
    pool = keras.layers.AveragePooling2D if case.op == "avg_pool" else keras.layers.MaxPooling2D
    return keras.Model(inp, pool(p["pool"], strides=p["strides"], padding=p["padding"])(inp))


def representative(case: Case):
    """The calibration data generator of ``case`` (seeded)."""
    rng = np.random.default_rng(case.seed + 1000)
    lo, hi = {
        "uniform": (-1.0, 1.0),
        "positive": (0.0, 1.0),
        "negative": (-1.0, 0.0),
        "constant": (-1.0, 1.0),
        "pinned": (-1.0, 1.0),
    }[case.calib]
    # The second input of an add gets a wider range, so its scale and zero point differ from the first's.
    ranges = [(lo, hi), (lo * 3.0, hi * 3.0) if case.calib != "uniform" else (-0.5, 2.5)][: case.inputs]

    def sample():
        if case.calib == "pinned":
            # Three samples whose min/max are exactly the given ranges: input 1 alone, input 2 alone, and a
            # pair of sums at the ends of the output range (each summand inside its input's range).
            (lo1, hi1), (lo2, hi2), (lo, hi) = case.params["ranges"]
            pairs = (((lo1, hi1), (0.0, 0.0)), ((0.0, 0.0), (lo2, hi2)), ((lo1, hi1), (lo - lo1, hi - hi1)))
            for x1, x2 in pairs:
                pair = []
                for v in (x1, x2):
                    x = np.zeros(case.shape, np.float32)
                    x.reshape(-1)[:2] = v
                    pair.append(x)
                yield pair
            return
        if case.calib == "constant":
            # Constant images at both ends of each input's range; an add's two inputs get opposite signs, so
            # its calibrated output range is half of what random inputs reach.
            for v in (-1.0, 0.0, 1.0):
                yield [
                    np.full(case.shape, sign * v * r[1], np.float32) for sign, r in zip((1.0, -1.0), ranges)
                ]
            return
        for _ in range(16):
            yield [rng.uniform(a, b, case.shape).astype(np.float32) for a, b in ranges]

    return sample


def convert(case: Case, tf, keras) -> bytes:
    """Full-integer conversion (int8, or 16x8 with ``case.int16``) of the case's Keras model."""
    if case.int4:
        return _convert_int4(case, tf)
    keras.utils.clear_session()
    converter = tf.lite.TFLiteConverter.from_keras_model(build_keras(case, keras))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative(case)
    if case.int16:
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
        ]
        converter.inference_input_type = converter.inference_output_type = tf.int16
    else:
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = converter.inference_output_type = tf.int8
    return converter.convert()


def _convert_int4(case: Case, tf) -> bytes:
    """A fake-quant graph (weights 4 bits, narrow range; activations 8 bits) converted in low-bit QAT mode."""
    rng = np.random.default_rng(case.seed)
    p = case.params
    conv_like = case.op in ("conv2d", "depthwise_conv2d")
    if case.op == "conv2d":
        kh, kw = (p["kernel"],) * 2 if isinstance(p["kernel"], int) else p["kernel"]
        w = _weights(case, rng, (kh, kw, case.shape[3], p["filters"]), 3)
        bound = np.abs(w).max(axis=(0, 1, 2))
    elif case.op == "depthwise_conv2d":
        kh, kw = (p["kernel"],) * 2 if isinstance(p["kernel"], int) else p["kernel"]
        w = _weights(case, rng, (kh, kw, case.shape[3] * p["depth_multiplier"]), 2)
        bound = np.abs(w).max(axis=(0, 1))
    else:
        w = _weights(case, rng, (case.shape[1], p["units"]), 1)
        bound = float(np.abs(w).max())  # per-tensor: the converter cannot transpose per-channel FC weights
    bias = _bias(case, rng, w.shape[-1])
    strides = p.get("strides", 1)
    strides = (1, *strides, 1) if isinstance(strides, tuple) else (1, strides, strides, 1)
    dilation = p.get("dilation", 1)
    dilation = dilation if isinstance(dilation, tuple) else (dilation, dilation)

    def layer(x, wq):
        if case.op == "conv2d":
            y = tf.nn.conv2d(x, wq, strides, p["padding"].upper(), dilations=dilation)
        elif case.op == "depthwise_conv2d":
            wq = tf.reshape(wq, (kh, kw, case.shape[3], p["depth_multiplier"]))
            y = tf.nn.depthwise_conv2d(x, wq, strides, p["padding"].upper(), dilations=dilation)
        else:
            y = tf.matmul(x, wq)
        y = y + bias
        return {None: y, "relu": tf.nn.relu(y), "relu6": tf.nn.relu6(y)}[case.activation]

    def quantize_weights(weights):
        if conv_like:
            return tf.quantization.fake_quant_with_min_max_vars_per_channel(
                weights, -bound, bound, num_bits=4, narrow_range=True
            )
        return tf.quantization.fake_quant_with_min_max_vars(
            weights, -bound, bound, num_bits=4, narrow_range=True
        )

    # The output range: what the float layer reaches on random inputs, shrunk a little so that some saturate.
    probe = layer(tf.constant(rng.uniform(-1, 1, case.shape).astype(np.float32)), tf.constant(w)).numpy()
    lo, hi = 0.9 * min(float(probe.min()), 0.0), 0.9 * max(float(probe.max()), 0.0)

    @tf.function(input_signature=[tf.TensorSpec(case.shape, tf.float32)])
    def model(x):
        x = tf.quantization.fake_quant_with_min_max_vars(x, -1.0, 1.0, num_bits=8)
        y = layer(x, quantize_weights(tf.constant(w)))
        return tf.quantization.fake_quant_with_min_max_vars(y, lo, hi, num_bits=8)

    converter = tf.lite.TFLiteConverter.from_concrete_functions([model.get_concrete_function()], model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter._experimental_low_bit_qat = True
    converter.inference_input_type = converter.inference_output_type = tf.int8
    return converter.convert()


def make_inputs(case: Case, dtype) -> list[np.ndarray]:
    """Seeded integer codes over the full range of ``dtype``; the first two elements are its min and max.

    A ``grid`` case gets every pair of codes instead: input 1 runs over rows, input 2 over columns.
    """
    rng = np.random.default_rng(case.seed + 2000)
    info = np.iinfo(dtype)
    if case.grid:
        codes = np.arange(info.min, info.max + 1)
        return [
            np.repeat(codes, codes.size).reshape(case.shape).astype(dtype),
            np.tile(codes, codes.size).reshape(case.shape).astype(dtype),
        ]
    out = []
    for _ in range(case.inputs):
        x = rng.integers(info.min, info.max + 1, case.shape, dtype=np.int64)
        flat = x.reshape(-1)
        flat[0], flat[1] = info.min, info.max
        out.append(x.astype(dtype))
    return out


# ---------------------------------------------------------------------------------------------- reading
@dataclass
class Tensor:
    """One tensor of a model: index, dtype, codes (constants only), scales and zero points."""

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    scales: np.ndarray
    zero_points: np.ndarray
    data: np.ndarray | None = None


@dataclass
class Model:
    """A single-op model read back from TFLite: the op, its options, operand tensors and graph inputs."""

    op: str
    options: dict
    operands: list[Tensor]  # the op's inputs in op order (bias included)
    output: Tensor
    graph_inputs: list[int]  # tensor indices of the graph inputs, in subgraph order
    ops: list[str]
    tensor_types: dict[int, str]  # tensor index -> schema TensorType name (INT8, INT4, INT32...)


def read_model(content: bytes, tf) -> Model:
    """Read the op, its builtin options and every operand's quantization back from ``content``.

    Tensor codes and quantization come from ``tf.lite.Interpreter`` (builtin kernels, no delegate);
    the options (stride, padding, dilation, multiplier, fused activation) from the flatbuffer.
    """
    from tensorflow.lite.python import schema_py_generated as schema

    # Not BUILTIN_REF: it has no kernel for int4-weight DEPTHWISE_CONV_2D (version 7).
    kind = tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    interp = tf.lite.Interpreter(model_content=content, experimental_op_resolver_type=kind)
    interp.allocate_tensors()
    details = {d["index"]: d for d in interp.get_tensor_details()}
    ops = interp._get_ops_details()

    def tensor(idx: int, const: bool) -> Tensor:
        d = details[idx]
        q = d["quantization_parameters"]
        return Tensor(
            idx,
            d["name"],
            tuple(int(s) for s in d["shape"]),
            np.dtype(d["dtype"]),
            np.asarray(q["scales"], np.float32),
            np.asarray(q["zero_points"], np.int64),
            np.array(interp.get_tensor(idx)) if const else None,
        )

    graph_inputs = [int(d["index"]) for d in interp.get_input_details()]
    op = ops[0]
    operands = [tensor(int(i), int(i) not in graph_inputs) for i in op["inputs"]]
    output = tensor(int(op["outputs"][0]), False)

    flat = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(bytearray(content), 0))
    opts = flat.subgraphs[0].operators[0].builtinOptions
    options = {k: v for k, v in vars(opts).items()} if opts is not None else {}
    if "fusedActivationFunction" in options:
        options["activation"] = ACTIVATIONS[options["fusedActivationFunction"]]
    if "padding" in options:
        options["padding"] = PADDINGS[options["padding"]]
    type_names = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    types = {i: type_names[t.type] for i, t in enumerate(flat.subgraphs[0].tensors)}
    return Model(op["op_name"], options, operands, output, graph_inputs, [o["op_name"] for o in ops], types)


# ---------------------------------------------------------------------------------------------- hwsim
def _qp(t: Tensor):
    from hwsim.numerics import quantized as Q

    return Q.QParams.of(t.scales, t.zero_points)


def hwsim_output(case: Case, model: Model, inputs: dict[int, np.ndarray], semantics: str) -> np.ndarray:
    """The op computed by hwsim under ``semantics``, with every parameter read back from the model."""
    from hwsim.numerics import ops
    from hwsim.numerics import quantized as Q
    from hwsim.numerics.formats import INT8, INT16

    o = model.options
    fmt = INT16 if model.output.dtype == np.int16 else INT8
    act = o.get("activation")
    weight_bits = 4 if case.int4 else 8
    if model.op in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        x_t, w_t, b_t = model.operands
        quant = Q.LayerQuant(
            _qp(x_t),
            _qp(w_t),
            _qp(model.output),
            fmt,
            activation=act,
            semantics=semantics,
            weight_bits=weight_bits,
        )
        geometry = dict(
            stride=(o["strideH"], o["strideW"]),
            padding=o["padding"],
            dilation=(o["dilationHFactor"], o["dilationWFactor"]),
        )
        x = inputs[x_t.index]
        if model.op == "CONV_2D":
            return Q.conv2d(x, w_t.data, b_t.data, quant, **geometry)
        return Q.depthwise_conv2d(
            x, w_t.data, b_t.data, quant, depth_multiplier=o["depthMultiplier"], **geometry
        )
    if model.op == "FULLY_CONNECTED":
        x_t, w_t, b_t = model.operands
        quant = Q.LayerQuant(
            _qp(x_t),
            _qp(w_t),
            _qp(model.output),
            fmt,
            activation=act,
            semantics=semantics,
            weight_bits=weight_bits,
        )
        return Q.fully_connected(inputs[x_t.index], w_t.data, b_t.data, quant)
    if model.op == "ADD":
        a_t, b_t = model.operands
        return Q.add(
            inputs[a_t.index],
            inputs[b_t.index],
            x1_q=_qp(a_t),
            x2_q=_qp(b_t),
            y_q=_qp(model.output),
            y_fmt=fmt,
            activation=act,
            semantics=semantics,
        )
    if model.op in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
        (x_t,) = model.operands
        lo, hi = Q.activation_range(act, float(model.output.scales[0]), int(model.output.zero_points[0]), fmt)
        return ops.pool2d(
            inputs[x_t.index],
            (o["filterHeight"], o["filterWidth"]),
            kind="avg" if model.op == "AVERAGE_POOL_2D" else "max",
            stride=(o["strideH"], o["strideW"]),
            padding=o["padding"],
            fmt=fmt,
            act_min=lo,
            act_max=hi,
        )
    raise ValueError(f"no hwsim mapping for op {model.op}")


# ---------------------------------------------------------------------------------------------- runner
def _run_tf(resolver: str, content: bytes, inputs) -> tuple[np.ndarray, np.ndarray]:
    """The output of a model under one of TensorFlow's resolvers, and the ops it ran after delegation."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    kind = getattr(tf.lite.experimental.OpResolverType, TF_RESOLVER_TYPES[resolver])
    interp = tf.lite.Interpreter(model_content=content, experimental_op_resolver_type=kind, num_threads=1)
    interp.allocate_tensors()
    for i, d in enumerate(interp.get_input_details()):
        interp.set_tensor(d["index"], inputs[f"in{i}"])
    interp.invoke()
    out = interp.get_tensor(interp.get_output_details()[0]["index"])
    return out, np.array([o["op_name"] for o in interp._get_ops_details()])


def _run_micro(resolver: str, content: bytes, inputs) -> tuple[np.ndarray, np.ndarray]:
    """The output of a model under TFLite Micro's interpreter."""
    from tflite_micro.python.tflite_micro import runtime

    interp = runtime.Interpreter.from_bytes(content, arena_size=8 << 20)
    for i in range(len(inputs)):
        interp.set_input(inputs[f"in{i}"], i)
    interp.invoke()
    return np.array(interp.get_output(0)), np.array(["MICRO"])


def main(argv: list[str]) -> int:
    """Run each job ``RESOLVER/NAME`` of argv[1:] on the models and inputs saved in the folder argv[0]."""
    import traceback

    folder = argv[0]
    for job in argv[1:]:
        resolver, name = job.split("/")
        os.makedirs(os.path.join(folder, resolver), exist_ok=True)
        print("START", job, flush=True)
        with open(os.path.join(folder, f"{name}.tflite"), "rb") as f:
            content = f.read()
        with np.load(os.path.join(folder, f"{name}.inputs.npz")) as npz:
            inputs = dict(npz)
        try:
            out, ops = (_run_micro if resolver == "micro" else _run_tf)(resolver, content, inputs)
        except Exception:  # the model's own failure (say, an op the resolver lacks): the next one runs
            with open(os.path.join(folder, f"{job}.error"), "w") as f:
                f.write(traceback.format_exc())
            continue
        np.savez(os.path.join(folder, f"{job}.npz"), out=out, ops=ops)
    print("DONE", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
