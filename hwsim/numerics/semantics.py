"""Named runtime semantics: which requantizer, multiplier encoding and dot-product arithmetic a runtime uses.

A user selects the arithmetic of the runtime they deploy on by name (``tflite-reference``, ``xnnpack``,
``onnxruntime``...). Each entry records what was measured against that runtime (see ``shared/NUMERICS.md``
and the golden tests in ``tests/numerics``). ``onnxruntime`` and ``pytorch`` resolve to the host CPU's
variant, since their uint8 x int8 products depend on VNNI.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Mapping

from hwsim.errors import ConfigError
from hwsim.numerics.cpu import has_int8_dot_product
from hwsim.numerics.formats import RoundingMode
from hwsim.numerics.requant_kinds import RequantKind
from hwsim.registry import Registry

OPS = ("conv2d", "depthwise_conv2d", "fully_connected", "add")
K = RequantKind


def _table(conv: K, depthwise: K, fc: K, add: K) -> Mapping[str, K]:
    return MappingProxyType(dict(zip(OPS, (conv, depthwise, fc, add))))


@dataclass(frozen=True)
class Semantics:
    """The integer arithmetic of one runtime (and resolver or build).

    ``requant`` maps an op to its requantizer for 8-bit activations, ``requant_16x8`` for int16 activations.
    ``multiplier`` is ``"tflite"`` (M, e from a double real multiplier), ``"float32"``
    (float32(float32(sx * sw) / sy)) or ``"float32-reciprocal"`` (float32(sx * sw) * float32(1 / sy),
    qnnpack). ``add_form`` names the ADD arithmetic: ``tflite-shifted`` (reference),
    ``tflite-shifted-blocked16`` (optimized: whole blocks of 16 elements fold the input shift into one
    rounding, the tail as reference), ``xnnpack`` or ``float`` (ONNX Runtime). ``channel_tail`` maps an op to
    (block, requantizer): output channels past the last whole block use that requantizer (the optimized
    depthwise kernel's scalar tail). ``fallback`` names the semantics of the kernels that run what a delegate
    does not take: XNNPACK takes no op with 16-bit activations and of the int4-weight ops only
    ``int4_fully_connected`` ones, so TFLite's optimized kernels run the others. ``int4_fully_connected``
    (XNNPACK): the delegate itself runs an int4-weight fully-connected whose weights have one scale per output
    channel and whose depth K is even (its packed rows then start on a byte), with its own requantizer; a
    per-tensor one or an odd K falls back (TFLite 2.21, measured). ``float_bias``: the runtime keeps a layer's
    bias in float32 and adds bias / (sx * sw) to the accumulator in float, unrounded (PyTorch's fbgemm and x86
    engines; :mod:`hwsim.numerics.float_bias`); the layers then take ``float_bias=`` in place of int32 bias
    codes. ``intra_op_threads`` (ONNX Runtime): the session's ``intra_op_num_threads``, which decides how MLAS
    splits a float Conv's output pixels into segments and so how it blocks K; None is ONNX Runtime's default,
    one thread per physical core (``cpu.physical_cores``). ``no_bias_16x8`` overrides the 16x8 requantizer of
    an op that has no bias (TFLite's optimized 16x8 fully-connected kernel runs only without one).
    ``tflite_kernels`` names the TFLite kernel family computing the ops of :mod:`hwsim.runtime.nonlinear`
    (softmax, mean, mul, batch_matmul...): ``"reference"``, ``"optimized"`` or ``"xnnpack"``. ``u8s8`` is
    ``"exact"`` or ``"avx2-pairwise16"``. ``quantize_method`` is how its QUANTIZE turns floats into codes
    (``ops.quantize``'s ``method``: PyTorch multiplies by a float32 reciprocal and adds the zero point in one
    fused rounding). ``depthwise_fast_u8s8``, where set, is the u8 x s8 arithmetic of a depthwise fast path
    that runs whatever the CPU (fbgemm's: groups == C with C % 8 == 0, C or 2C outputs, 3x3 or 5x5 taps,
    padding k // 2, stride <= 2, no dilation, adjacent taps summed in pairs with int16 saturation even on VNNI
    CPUs). ``exact_depthwise`` names the depthwise convs (groups == input channels) that run on a kernel of
    their own whose u8 x s8 products are exact on every CPU; the others run as one GEMM per group with
    ``u8s8``: ``"multiplier-1"`` (ONNX Runtime: MLAS' depthwise kernel takes one output channel per group; a
    depth multiplier of 2 or more is a grouped GEMM, pair-saturated on AVX2 CPUs, measured on an AMD Zen1) or
    ``"none"`` (fbgemm: outside its fast path a depthwise conv is a grouped im2col GEMM, pair-saturated along
    the (ky, kx) taps on AVX2 CPUs without VNNI, measured on an AMD Zen1). ``mul_multiplier`` is how MUL's
    real multiplier s1 * s2 / so is computed before it is encoded: in float32 (the TFLite interpreter's
    prepare step) or in double (TFLite Micro's); they part by 1 LSB now and then. ``declared_bias_type``:
    ``no_bias_16x8`` applies only where the op's options do not declare int64 bias (``quantized_bias_type``,
    which TFLite's converter writes on every 16x8 fully-connected, bias tensor or not): LiteRT 2.3 keeps the
    reference kernel for those, TensorFlow 2.21 looks at the bias tensor alone. ``asymmetric_rhs_bmm``:
    the delegate (XNNPACK) takes an int8 BATCH_MATMUL whose rhs has a nonzero zero point (TensorFlow 2.21's,
    which then drops it); False: it refuses such a node and ``fallback``'s kernels run it (LiteRT 2.3).
    ``int4_per_tensor_fc``: the delegate runs an int4-weight fully-connected of even depth whose weights have
    one scale for the whole tensor too (LiteRT 2.3), with the same float32 requantizer.
    ``xnnpack_convert_rounding``: how XNNPACK's reference int32 -> int8 convert (the last step of its int8
    MEAN) rounds: C ``round()``, ties away from zero, in TensorFlow 2.21's XNNPACK; ``nearbyint``, ties to
    even, in LiteRT 2.3's (measured on every channel sum, ``tests/runtimes/test_tflite_xnnpack_mean.py``).
    """

    name: str
    description: str
    requant: Mapping[str, RequantKind]
    requant_16x8: Mapping[str, RequantKind]
    multiplier: str
    quantize_rounding: RoundingMode
    u8s8: str = "exact"
    max_shift: int = 31
    add_form: str = "tflite-shifted"
    channel_tail: Mapping[str, tuple[int, RequantKind]] = field(default_factory=dict)
    fallback: str | None = None
    no_bias_16x8: Mapping[str, RequantKind] = field(default_factory=dict)
    tflite_kernels: str = "reference"
    depthwise_fast_u8s8: str | None = None
    quantize_method: str = "divide"
    exact_depthwise: str = "multiplier-1"
    mul_multiplier: str = "float32"
    int4_fully_connected: bool = False
    float_bias: bool = False
    intra_op_threads: int | None = None
    declared_bias_type: bool = False
    int4_per_tensor_fc: bool = False
    asymmetric_rhs_bmm: bool = True
    xnnpack_convert_rounding: RoundingMode = RoundingMode.HALF_AWAY

    def requantizer(self, op: str, activation_bits: int) -> RequantKind:
        """The requantizer for ``op`` with ``activation_bits``-bit activations."""
        table = self.requant_16x8 if activation_bits > 8 else self.requant
        if op not in table:
            raise ConfigError(
                f"op: {op!r} has no requantizer in semantics {self.name!r}; known: {', '.join(table)}"
            )
        return table[op]


SEMANTICS: Registry[Semantics] = Registry("semantics")

_TFLITE_16X8 = _table(K.INT16_MULTIPLIER, K.INT16_MULTIPLIER, K.SINGLE_AWAY, K.GEMMLOWP_DOUBLE)
_FLOAT = _table(K.FLOAT32_SCALE, K.FLOAT32_SCALE, K.FLOAT32_SCALE, K.FLOAT32_SCALE)

SEMANTICS.add(
    "tflite-reference",
    Semantics(
        "tflite-reference",
        "TFLite interpreter, BUILTIN_REF op resolver (reference kernels)",
        _table(K.GEMMLOWP_DOUBLE, K.GEMMLOWP_DOUBLE, K.SINGLE_AWAY, K.GEMMLOWP_DOUBLE),
        _TFLITE_16X8,
        "tflite",
        RoundingMode.HALF_AWAY,
    ),
)
SEMANTICS.add(
    "tflite-optimized",
    Semantics(
        "tflite-optimized",
        "TFLite interpreter, BUILTIN_WITHOUT_DEFAULT_DELEGATES (optimized kernels, no XNNPACK)",
        _table(K.DOUBLE_HALF_UP, K.DOUBLE_HALF_UP, K.DOUBLE_HALF_UP, K.GEMMLOWP_DOUBLE),
        _TFLITE_16X8,
        "tflite",
        RoundingMode.HALF_AWAY,
        add_form="tflite-shifted-blocked16",
        channel_tail=MappingProxyType({"depthwise_conv2d": (8, K.GEMMLOWP_DOUBLE)}),
        tflite_kernels="optimized",
        no_bias_16x8=MappingProxyType({"fully_connected": K.DOUBLE_HALF_UP}),
    ),
)
SEMANTICS.add(
    "xnnpack",
    Semantics(
        "xnnpack",
        "TFLite interpreter with its default resolver (XNNPACK delegate for int8 conv, depthwise, FC, "
        "add, per-channel int4-weight FC; other int4-weight and int16 ops fall back to the optimized "
        "kernels)",
        _table(K.FLOAT32_SCALE, K.FLOAT32_SCALE, K.FLOAT32_SCALE, K.GEMMLOWP_DOUBLE),
        _TFLITE_16X8,
        "float32",
        RoundingMode.HALF_AWAY,
        add_form="xnnpack",
        fallback="tflite-optimized",
        tflite_kernels="xnnpack",
        int4_fully_connected=True,
    ),
)
SEMANTICS.add(
    "tflite-micro",
    Semantics(
        "tflite-micro",
        "TFLite Micro interpreter (the tflite-micro package): gemmlowp rounding everywhere",
        _table(K.GEMMLOWP_DOUBLE, K.GEMMLOWP_DOUBLE, K.GEMMLOWP_DOUBLE, K.GEMMLOWP_DOUBLE),
        _table(K.INT16_MULTIPLIER, K.INT16_MULTIPLIER, K.INT16_MULTIPLIER, K.GEMMLOWP_DOUBLE),
        "tflite",
        RoundingMode.HALF_AWAY,
        mul_multiplier="double",
    ),
)
# LiteRT (the ai-edge-litert package, 2.3.0): TensorFlow 2.21's arithmetic but for two ops, measured on the
# whole-model and single-op tests (tests/runtimes/test_litert.py pins the cases).
_LITERT = (
    (
        "reference",
        "tflite-reference",
        "BUILTIN_REF op resolver: the same arithmetic as TensorFlow 2.21's",
        {},
    ),
    (
        "optimized",
        "tflite-optimized",
        "optimized kernels: a 16x8 fully-connected declaring int64 bias (the converter's) runs the "
        "reference kernel, bias tensor or not",
        {"declared_bias_type": True},
    ),
    (
        "xnnpack",
        "xnnpack",
        "default resolver (XNNPACK): an int8 BATCH_MATMUL whose rhs has a nonzero zero point is not "
        "delegated (the optimized kernels run it, zero point included); an int4-weight fully-connected of "
        "even depth is, per-tensor weights too",
        {
            "asymmetric_rhs_bmm": False,
            "fallback": "litert-optimized",
            "int4_per_tensor_fc": True,
            "xnnpack_convert_rounding": RoundingMode.HALF_EVEN,
        },
    ),
)
for _resolver, _base, _what, _changes in _LITERT:
    SEMANTICS.add(
        f"litert-{_resolver}",
        replace(
            SEMANTICS.get(_base),
            name=f"litert-{_resolver}",
            description=f"LiteRT 2.3 interpreter (ai-edge-litert), {_what}",
            **_changes,
        ),
    )
SEMANTICS.add(
    "cmsis-nn",
    Semantics(
        "cmsis-nn",
        "TFLITE_SINGLE_ROUNDING builds (CMSIS-NN, Ethos-U software fallback); read from the sources, "
        "no live reference",
        _table(K.SINGLE_HALF_UP, K.SINGLE_HALF_UP, K.SINGLE_HALF_UP, K.SINGLE_HALF_UP),
        _table(K.SINGLE_HALF_UP, K.SINGLE_HALF_UP, K.SINGLE_HALF_UP, K.SINGLE_HALF_UP),
        "tflite",
        RoundingMode.HALF_AWAY,
        max_shift=30,
        mul_multiplier="double",
    ),
)
for _variant, _u8s8, _where in (
    ("vnni", "exact", "CPUs with AVX-512 VNNI, AVX-VNNI or AMX"),
    ("avx2", "avx2-pairwise16", "AVX2 CPUs without VNNI"),
):
    SEMANTICS.add(
        f"onnxruntime-{_variant}",
        Semantics(
            f"onnxruntime-{_variant}",
            f"ONNX Runtime (MLAS) on {_where}",
            _FLOAT,
            _FLOAT,
            "float32",
            RoundingMode.HALF_EVEN,
            u8s8=_u8s8,
            add_form="float",
        ),
    )
    SEMANTICS.add(
        f"pytorch-fbgemm-{_variant}",
        Semantics(
            f"pytorch-fbgemm-{_variant}",
            f"PyTorch quantized ops, fbgemm/x86 engine, on {_where}",
            _FLOAT,
            _FLOAT,
            "float32",
            RoundingMode.HALF_EVEN,
            u8s8=_u8s8,
            add_form="float",
            depthwise_fast_u8s8="avx2-pairwise16",
            quantize_method="reciprocal-fma",
            exact_depthwise="none",
            float_bias=True,
        ),
    )
_FLOAT64 = _table(K.FLOAT64_PRODUCT, K.FLOAT64_PRODUCT, K.FLOAT64_PRODUCT, K.FLOAT32_SCALE)
SEMANTICS.add(
    "onnx-reference",
    Semantics(
        "onnx-reference",
        "onnx.reference (the ONNX specification's Python evaluator): the float32 multiplier "
        "applied to the int32 accumulator in double",
        _FLOAT64,
        _FLOAT64,
        "float32",
        RoundingMode.HALF_EVEN,
        add_form="float",
    ),
)
SEMANTICS.add(
    "pytorch-qnnpack",
    Semantics(
        "pytorch-qnnpack",
        "PyTorch quantized ops, qnnpack engine (exact on every CPU; reciprocal output scale)",
        _FLOAT,
        _FLOAT,
        "float32-reciprocal",
        RoundingMode.HALF_EVEN,
        add_form="float",
    ),
)

HOST_ALIASES = ("onnxruntime", "pytorch")


def get_semantics(name: str, intra_op_threads: int | None = None) -> Semantics:
    """Look up semantics by name; ``onnxruntime`` and ``pytorch`` pick this host's CPU variant.
    ``intra_op_threads`` sets an ONNX Runtime session's thread count (0: its default, as in ONNX Runtime)."""
    if name in HOST_ALIASES:
        variant = "vnni" if has_int8_dot_product() else "avx2"
        name = f"onnxruntime-{variant}" if name == "onnxruntime" else f"pytorch-fbgemm-{variant}"
    sem = SEMANTICS.get(name)
    if intra_op_threads is None:
        return sem
    if not sem.name.startswith("onnxruntime-"):
        raise ConfigError(
            f"--ort-threads: sets ONNX Runtime's intra-op threads; semantics {sem.name!r} has none"
        )
    if intra_op_threads < 0:
        raise ConfigError(
            f"--ort-threads: expected 0 (ONNX Runtime's default) or more (got {intra_op_threads})"
        )
    return replace(sem, intra_op_threads=intra_op_threads or None)


def resolve(semantics: str | Semantics) -> Semantics:
    """``semantics`` itself, or the semantics of that name."""
    return semantics if isinstance(semantics, Semantics) else get_semantics(semantics)
