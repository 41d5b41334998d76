"""Which TFLite operators Arm Vela 5.2.0 places on the Ethos-U NPU, and which it leaves to the CPU (and why).

Vela checks each operator of a ``.tflite`` file once, before any rewrite, against its supported-operator
rules; an operator failing any rule runs on the CPU, together with its fused activation (the activation Vela
splits off is checked too, and its failure sends the operator to the CPU as well). :func:`npu_ok` applies
those rules to an hwsim op. Sources, ethos-u-vela 5.2.0: ``SUPPORTED_OPS.md`` and, in
``ethosu/regor/tflite/``, ``tflite_supported_operators.cpp`` (rules both families share; Vela's
``SupportedOperatorChecks`` in ``compiler/tflite_graph_optimiser.cpp`` calls them),
``tflite_supported_operators_u55.cpp`` (U55 and U65) and ``tflite_supported_operators_u85.cpp`` (U85).

Operands play the roles Vela's reader gives them (``tflite_mapping.cpp``): feature maps (IFM, OFM),
weights, bias, and parameter tensors (axes, shapes, paddings, permutations), which most rules ignore.
Rules on shapes read them as Vela does: right-aligned, padded to 4-D with ones, H W C the last three axes.
Options an op does not carry (a resize's ``align_corners`` and ``half_pixel_centers``) take TF2's defaults.
"""

from __future__ import annotations

from dataclasses import dataclass

from hwsim.schedule.ethos_u import supported_rules as rules
from hwsim.workload.graph import Graph, Op, Tensor

FAMILIES = {"u55": "u55", "u65": "u55", "u85": "u85"}  # Vela checks a U65 with the U55 rules

# Kinds Vela's checker accepts at all (its s_supportedOpTypes); everything else stays on the CPU.
_COMMON = {
    "add",
    "avg_pool2d",
    "batch_matmul",
    "concat",
    "conv2d",
    "depthwise_conv2d",
    "fully_connected",
    "logistic",
    "max_pool2d",
    "mul",
    "relu",
    "relu6",
    "relu_n1_to_1",
    "reshape",
    "softmax",
    "tanh",
    "pad",
    "transpose",
    "mean",
    "sub",
    "strided_slice",
    "exp",
    "prelu",
    "maximum",
    "minimum",
    "slice",
    "tile",
    "expand_dims",
    "sum",
    "reduce_max",
    "resize_bilinear",
    "resize_nearest_neighbor",
    "rsqrt",
    "pack",
    "gelu",
    "elu",
    "leaky_relu",
    "squared_difference",
    "mirror_pad",
    "abs",
    "quantize",
    "hard_swish",
    "log",
    "neg",
}
SUPPORTED_KINDS = {"u55": frozenset(_COMMON), "u85": frozenset(_COMMON | {"gather", "div", "cast"})}

# Inputs from this index on are parameter tensors, not feature maps.
_PARAMS_FROM = {
    k: 1
    for k in (
        "reshape",
        "mean",
        "sum",
        "reduce_max",
        "transpose",
        "tile",
        "pad",
        "mirror_pad",
        "resize_bilinear",
        "resize_nearest_neighbor",
        "prelu",
        "slice",
        "strided_slice",
    )
}
# the activations Vela splits off as operators of their own
FUSED_ACTIVATIONS = {"relu", "relu6", "relu_n1_to_1"}


@dataclass(frozen=True)
class Operand:
    """One input or output of an op as Vela's checker sees it: its role and its tensor."""

    role: str  # "ifm", "ofm", "weights", "bias" or "params"
    tensor: Tensor

    @property
    def is_fm(self) -> bool:
        """True for feature maps, the operands the data-type rules look at."""
        return self.role in ("ifm", "ofm")


@dataclass(frozen=True)
class Check:
    """What a rule reads: the op, its kind, its operands, the target family ("u55" or "u85") and the name
    messages give the operator (``CONV_2D``)."""

    graph: Graph
    op: Op
    kind: str
    family: str
    operands: tuple[Operand, ...]
    name: str

    def of(self, role: str) -> list[Tensor]:
        """The tensors in ``role``, in input order."""
        return [o.tensor for o in self.operands if o.role == role]

    @property
    def ifm(self) -> Tensor:
        """The first feature-map input."""
        return self.of("ifm")[0]

    @property
    def ofm(self) -> Tensor:
        """The first output."""
        return self.of("ofm")[0]


def operands(graph: Graph, op: Op, kind: str) -> tuple[Operand, ...]:
    """``op``'s tensors in the roles Vela's TFLite reader gives them (inputs it has no role for are IFMs)."""
    out = []
    for i, name in enumerate(op.inputs):
        if not name:
            continue
        if kind in rules.WEIGHTED:
            role = ("ifm", "weights", "bias")[i] if i < 3 else "ifm"
        else:
            role = "params" if i >= _PARAMS_FROM.get(kind, len(op.inputs)) else "ifm"
        out.append(Operand(role, graph.tensors[name]))
    out += [Operand("ofm", graph.tensors[name]) for name in op.outputs]
    return tuple(out)


def npu_ok(graph: Graph, op: Op, family: str) -> str | None:
    """None when Vela 5.2.0 would run ``op`` on the NPU of ``family`` ("u55", "u65" or "u85"), else why not.

    The reason is one line naming the rule that fails first in Vela's order, e.g.
    ``"stride (4, 4) with padding (Vela U55: CONV_2D with a stride above 3 needs no padding and dilation
    1)"``. ``graph`` is read as the ``.tflite`` file it came from: tensors without quantization are
    unquantized.
    """
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {sorted(FAMILIES)} (got {family!r})")
    fam = FAMILIES[family]
    kind = op.kind
    head, sep, tail = op.name.partition(":")  # "12:CONV_2D" for an operator read from a .tflite file
    check = Check(
        graph, op, kind, fam, operands(graph, op, kind), tail if sep and head.isdigit() else kind.upper()
    )
    if kind not in SUPPORTED_KINDS[fam]:
        return f"Vela {fam.upper()} has no NPU support for {check.name}"
    reason = _first_failure(check)
    if reason is None and op.attrs.get("activation") in FUSED_ACTIVATIONS:
        out = graph.tensors[op.outputs[0]]
        kind = op.attrs["activation"]
        act = Check(graph, op, kind, fam, (Operand("ifm", out), Operand("ofm", out)), kind.upper())
        reason = _first_failure(act)
        if reason is not None:
            reason = f"its fused {act.name}: {reason}"
    return reason


def _first_failure(check: Check) -> str | None:
    for rule in rules.for_kind(check.kind, check.family):
        reason = rule(check)
        if reason is not None:
            return reason
    return None
