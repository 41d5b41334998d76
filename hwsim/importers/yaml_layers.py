"""Read a native YAML layer description (shapes, no weights) into a :class:`~hwsim.workload.graph.Graph`.

For performance-only studies a user writes what they know about a network: its input shape and, per layer,
the op and its geometry. Shapes are inferred (NHWC), so the file stays short::

    schema_version: 1
    name: tiny
    input: {shape: [1, 16, 16, 3], dtype: int8}
    precision: {weights: 8, activations: 8, accumulator: 32}   # default of every layer (optional)
    layers:
      - {name: conv1, op: conv2d, out_channels: 8, kernel: 3, stride: 2, padding: same, activation: relu6}
      - {name: dw1, op: depthwise_conv2d, kernel: 3, padding: same, precision: {weights: 4}}
      - {name: pool, op: avg_pool2d, global_pool: true}
      - {name: fc, op: fully_connected, units: 10, inputs: [pool]}

``inputs`` names earlier layers (or the input); it defaults to the previous layer. Graph outputs are the
layers no later layer reads. Ops: ``conv2d``, ``depthwise_conv2d``, ``transpose_conv2d``, ``fully_connected``,
``batch_matmul``; ``add``, ``sub``, ``mul`` (of two layers, or of one and a ``constant`` operand of a given
shape); ``relu``, ``relu6``, ``logistic``, ``tanh``, ``hard_swish``, ``softmax``; ``avg_pool2d``,
``max_pool2d``, ``mean``; ``reshape``, ``concat``, ``pad``; ``resize_bilinear``, ``resize_nearest_neighbor``;
``arg_max``; ``detection_postprocess`` (SSD's box decoding and non-maximum suppression).
:func:`graph_to_layers` writes any NHWC graph made of these ops back as such a file (a shape-only copy of an
imported model). Weight and bias tensors exist with their shapes and ``data=None``, so later
stages can count weight bytes; ops carry the attributes the TFLite importer produces, plus
``attrs["precision"]`` (bits per role). Every error is a :class:`~hwsim.errors.ConfigError` reading
``file:line: layers[3].kernel: what was expected (got value)``.
"""

from __future__ import annotations

import difflib
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import numpy as np
import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from hwsim.config.yamlio import Loc, config_error, load_yaml_with_lines, unknown_key_message, unwrap_type
from hwsim.errors import ConfigError
from hwsim.importers.precision import DEFAULT_PRECISION, dtype_for_bits
from hwsim.workload.graph import Graph, Op, Tensor

SCHEMA_VERSION = 1
FORMAT = "hwsim-layers"


# --------------------------------------------------------------------------------------------------------
# YAML with line numbers (PyYAML's composed nodes carry start_mark.line)
# --------------------------------------------------------------------------------------------------------


def validate(spec: type[BaseModel], data: Any, lines: dict[Loc, int], path: Path) -> Any:
    """Validate ``data`` with the pydantic model ``spec``; the first problem becomes a located ConfigError.

    An unknown key is reported before the "missing field" it usually explains, with the closest valid key.
    """
    try:
        return spec.model_validate(data)
    except ValidationError as exc:
        errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
        raise _located(spec, data, errors[0], lines, path) from None


def _located(spec: type[BaseModel], data: Any, err: dict, lines: dict[Loc, int], path: Path) -> ConfigError:
    loc, model = _strip_tags(spec, data, tuple(err["loc"]))
    kind, message, got = err["type"], err["msg"], err.get("input", ...)
    if kind == "extra_forbidden":
        message = unknown_key_message(str(loc[-1]), model.model_fields if model is not None else ())
    elif kind == "union_tag_invalid":
        tags = [t.strip("'") for t in err["ctx"]["expected_tags"].split(", ")]
        close = difflib.get_close_matches(str(err["ctx"]["tag"]), tags, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        message = f"unknown op; {hint}valid ops: {', '.join(tags)}"
        loc, got = loc + ("op",), err["ctx"]["tag"]
    elif kind == "union_tag_not_found":
        loc, message, got = loc + ("op",), "every layer needs an op", ...
    elif kind == "missing":
        message, got = "required field is missing", ...
    elif kind in ("model_type", "dict_type") and not loc:
        message = (
            f"expected a mapping with schema_version, name, input and layers (got a {type(got).__name__})"
        )
        got = ...
    else:
        message = message.removeprefix("Value error, ")
    return config_error(path, lines, loc, message, got)


def _strip_tags(spec: type[BaseModel], data: Any, loc: Loc) -> tuple[Loc, type[BaseModel] | None]:
    """Drop pydantic's discriminated-union tags from ``loc``; also return the model owning its last key."""
    out: list = []
    model: type[BaseModel] | None = spec
    tp: Any = spec
    i = 0
    while i < len(loc):
        part = loc[i]
        tp = unwrap_type(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            model = tp
            field = tp.model_fields.get(str(part))
            tp = field.annotation if field is not None else None
        elif typing.get_origin(tp) in (list, tuple) and isinstance(part, int):
            tp = typing.get_args(tp)[0]
            out.append(part)
            item = data[part] if isinstance(data, list) and part < len(data) else None
            members = _union_members(tp)
            if members and i + 1 < len(loc) and isinstance(item, dict) and loc[i + 1] == item.get("op"):
                tp = next((m for m in members if item["op"] in _tags(m)), None)
                i += 1  # skip the tag
            data = item
            i += 1
            continue
        else:
            tp = None
        out.append(part)
        data = data.get(part) if isinstance(data, dict) else None
        i += 1
    return tuple(out), model


def _union_members(tp: Any) -> list[type[BaseModel]]:
    tp = unwrap_type(tp)
    if typing.get_origin(tp) in (Union, types.UnionType):
        return [a for a in typing.get_args(tp) if isinstance(a, type) and issubclass(a, BaseModel)]
    return []


def _tags(model: type[BaseModel]) -> tuple[str, ...]:
    return typing.get_args(model.model_fields["op"].annotation)


# --------------------------------------------------------------------------------------------------------
# Schema (pydantic v2, extra="forbid", frozen)
# --------------------------------------------------------------------------------------------------------


def _pair(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value, value]
    if (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value)
    ):
        return tuple(value)
    raise PydanticCustomError("pair", "expected a positive int or a list [height, width] of them")


def _padding(value: Any) -> Any:
    if value in ("same", "valid"):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return (value,) * 4
    if (
        isinstance(value, (list, tuple))
        and len(value) == 4
        and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)
    ):
        return tuple(value)
    raise PydanticCustomError(
        "padding", "expected 'same', 'valid', a non-negative int or a list [top, bottom, left, right] of them"
    )


def _explicit_padding(value: Any) -> Any:
    padding = _padding(value)
    if isinstance(padding, tuple):
        return padding
    raise PydanticCustomError(
        "padding", "expected a non-negative int or a list [top, bottom, left, right] of them"
    )


def _name(value: Any) -> Any:
    if isinstance(value, str) and value and "/" not in value and not any(c.isspace() for c in value):
        return value
    raise PydanticCustomError("name", "expected a non-empty name without '/' or spaces")


Pair = Annotated[tuple[int, int], BeforeValidator(_pair)]
Padding = Annotated[Literal["same", "valid"] | tuple[int, int, int, int], BeforeValidator(_padding)]
Name = Annotated[str, BeforeValidator(_name)]
PositiveInt = Annotated[int, Field(ge=1)]
Activation = Literal["relu", "relu6", "relu_n1_to_1"] | None


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class PrecisionSpec(_Spec):
    """Bits per role; a field left out takes the file's default (itself 8, 8 and 32 when not given)."""

    weights: Annotated[int, Field(ge=1, le=32)] | None = None
    activations: Annotated[int, Field(ge=1, le=32)] | None = None
    accumulator: Annotated[int, Field(ge=1, le=64)] | None = None

    def resolve(self, base: dict[str, int]) -> dict[str, int]:
        """These bits over ``base``."""
        return {role: getattr(self, role) if getattr(self, role) is not None else base[role] for role in base}


class InputSpec(_Spec):
    """The graph input: NHWC shape (batch first) and element type."""

    name: Name = "input"
    shape: Annotated[list[PositiveInt], Field(min_length=1)]
    dtype: Literal["int8", "uint8", "int16", "int32", "float16", "float32"] = "int8"


class _Layer(_Spec):
    name: Name
    inputs: Annotated[list[str], Field(min_length=1)] | None = None
    precision: PrecisionSpec | None = None


class _Window(_Layer):
    stride: Pair = (1, 1)
    padding: Padding = "valid"
    dilation: Pair = (1, 1)
    activation: Activation = None
    bias: bool = True


class Conv2dLayer(_Window):
    """A 2-D convolution; ``groups`` > 1 makes it grouped."""

    op: Literal["conv2d"]
    out_channels: PositiveInt
    kernel: Pair
    groups: PositiveInt = 1


class DepthwiseConv2dLayer(_Window):
    """A depthwise convolution: ``depth_multiplier`` output channels per input channel."""

    op: Literal["depthwise_conv2d"]
    kernel: Pair
    depth_multiplier: PositiveInt = 1


class FullyConnectedLayer(_Layer):
    """TFLite FULLY_CONNECTED: the last input dimension is the depth; the rest become rows."""

    op: Literal["fully_connected"]
    units: PositiveInt
    activation: Activation = None
    bias: bool = True
    keep_num_dims: bool = False


class BatchMatmulLayer(_Layer):
    """A[..., M, C] x B[..., C, N]; B is the second input, or a weight matrix of ``units`` columns."""

    op: Literal["batch_matmul"]
    units: PositiveInt | None = None
    adj_x: bool = False
    adj_y: bool = False


class _Binary(_Layer):
    """Elementwise op of two inputs, or of one input and a constant operand of shape ``constant``
    (a parameter, e.g. a batch norm's per-channel scale that follows a ReLU and cannot fold into a conv)."""

    activation: Activation = None
    constant: Annotated[list[PositiveInt], Field(min_length=1)] | None = None


class AddLayer(_Binary):
    """Elementwise add (NumPy broadcasting)."""

    op: Literal["add"]


class MulLayer(_Binary):
    """Elementwise multiply (NumPy broadcasting)."""

    op: Literal["mul"]


class SubLayer(_Binary):
    """Elementwise subtract (NumPy broadcasting)."""

    op: Literal["sub"]


class ElementwiseLayer(_Layer):
    """A one-input op that keeps the shape: an activation function or softmax over the last axis."""

    op: Literal["relu", "relu6", "logistic", "tanh", "hard_swish", "softmax"]


class PadLayer(_Layer):
    """Zero padding of an NHWC input: ``padding`` is [top, bottom, left, right] (TFLite PAD)."""

    op: Literal["pad"]
    padding: Annotated[tuple[int, int, int, int], BeforeValidator(_explicit_padding)]


class MeanLayer(_Layer):
    """Mean over ``axes`` (TFLite MEAN; [1, 2] is a global average pool)."""

    op: Literal["mean"]
    axes: Annotated[list[int], Field(min_length=1)]
    keep_dims: bool = False


class TransposeConv2dLayer(_Layer):
    """A transposed convolution (TFLite TRANSPOSE_CONV): the output is ``stride`` times the input."""

    op: Literal["transpose_conv2d"]
    out_channels: PositiveInt
    kernel: Pair
    stride: Pair = (1, 1)
    padding: Literal["same", "valid"] = "same"
    activation: Activation = None
    bias: bool = True


class ResizeLayer(_Layer):
    """Resize of an NHWC input to ``size`` [height, width] (TFLite RESIZE_BILINEAR /
    RESIZE_NEAREST_NEIGHBOR)."""

    op: Literal["resize_bilinear", "resize_nearest_neighbor"]
    size: Pair
    align_corners: bool = False
    half_pixel_centers: bool = False


class ArgMaxLayer(_Layer):
    """Index of the largest element along ``axis`` (int32 output, the axis removed)."""

    op: Literal["arg_max"]
    axis: int = -1


class DetectionPostprocessLayer(_Layer):
    """SSD post-processing (TFLite's TFLite_Detection_PostProcess custom op): box decoding and non-maximum
    suppression over the inputs [box encodings, class scores]. Outputs, float32: the layer itself holds
    boxes [1, max_detections, 4]; ``<name>/classes``, ``<name>/scores`` [1, max_detections] and
    ``<name>/count`` [1] are graph outputs too. The anchors are a parameter of [anchors, 4]."""

    op: Literal["detection_postprocess"]
    max_detections: PositiveInt = 10


class _Pool(_Layer):
    kernel: Pair | None = None
    global_pool: bool = False
    stride: Pair | None = None  # defaults to the kernel
    padding: Padding = "valid"
    activation: Activation = None

    @model_validator(mode="after")
    def _kernel_or_global(self):
        if (self.kernel is None) == (not self.global_pool):
            raise PydanticCustomError(
                "pool_window", "give either kernel or global_pool: true (not both, not neither)"
            )
        if self.global_pool and (self.stride is not None or self.padding != "valid"):
            raise PydanticCustomError("pool_window", "a global pool takes no stride or padding")
        return self


class AvgPool2dLayer(_Pool):
    """Average pooling over a window (or the whole feature map with ``global_pool: true``)."""

    op: Literal["avg_pool2d"]


class MaxPool2dLayer(_Pool):
    """Max pooling over a window (or the whole feature map with ``global_pool: true``)."""

    op: Literal["max_pool2d"]


class ReshapeLayer(_Layer):
    """A new shape (batch included) with at most one -1."""

    op: Literal["reshape"]
    shape: Annotated[list[int], Field(min_length=1)]


class ConcatLayer(_Layer):
    """Concatenation of two or more inputs along ``axis`` (default: channels)."""

    op: Literal["concat"]
    axis: int = -1
    activation: Activation = None


LayerSpec = Annotated[
    Conv2dLayer
    | DepthwiseConv2dLayer
    | FullyConnectedLayer
    | BatchMatmulLayer
    | AddLayer
    | MulLayer
    | SubLayer
    | ElementwiseLayer
    | AvgPool2dLayer
    | MaxPool2dLayer
    | ReshapeLayer
    | ConcatLayer
    | PadLayer
    | MeanLayer
    | TransposeConv2dLayer
    | ResizeLayer
    | ArgMaxLayer
    | DetectionPostprocessLayer,
    Field(discriminator="op"),
]


class LayersFileSpec(_Spec):
    """A whole file: ``schema_version``, ``name``, ``input``, default ``precision`` and ``layers``."""

    schema_version: Literal[1]
    name: str
    input: InputSpec
    precision: PrecisionSpec | None = None
    layers: Annotated[list[LayerSpec], Field(min_length=1)]


# --------------------------------------------------------------------------------------------------------
# Graph building: shape inference, weights without data, TFLite-style attrs
# --------------------------------------------------------------------------------------------------------


def load_layers_yaml(path: str | Path) -> Graph:
    """Parse a YAML layer description into a graph of shapes (no weight data)."""
    path = Path(path)
    data, lines = load_yaml_with_lines(path, "a mapping with schema_version, name, input and layers")
    spec = validate(LayersFileSpec, data, lines, path)
    return _Builder(spec, lines, path).build()


@dataclass(frozen=True)
class _Const:
    """An operand the layer owns: a weight or bias (shape only), or a small constant whose value is known
    (a pad's paddings, a resize's size), named ``<layer>/<suffix>``."""

    suffix: str
    shape: tuple[int, ...]
    bits: int = 32
    data: np.ndarray | None = None

    @property
    def role(self) -> str:
        return "" if self.data is not None else ("bias" if self.suffix == "bias" else "weight")


@dataclass
class _Inferred:
    """What a shape rule returns: the output shape, the op's attrs and its operands in the runtime's order
    (layer inputs by name, owned constants as :class:`_Const`), plus any further outputs."""

    shape: tuple[int, ...]
    attrs: dict
    operands: list
    dtype: np.dtype | None = None  # default: the layer's activation precision
    more_outputs: list[tuple[str, tuple[int, ...], np.dtype]] = field(default_factory=list)


def _ints(values) -> np.ndarray:
    return np.asarray(values, dtype=np.int32)


class _Builder:
    def __init__(self, spec: LayersFileSpec, lines: dict[Loc, int], path: Path):
        self.spec, self.lines, self.path = spec, lines, path
        self.default = (
            spec.precision.resolve(DEFAULT_PRECISION) if spec.precision else dict(DEFAULT_PRECISION)
        )
        self.tensors: dict[str, Tensor] = {}
        self.ops: list[Op] = []
        self.defined: dict[str, int] = {}  # layer name -> index (-1 for the graph input)

    def error(self, loc: Loc, message: str, got: Any = ...) -> ConfigError:
        return config_error(self.path, self.lines, loc, message, got)

    def build(self) -> Graph:
        inp = self.spec.input
        self.tensors[inp.name] = Tensor(inp.name, tuple(inp.shape), np.dtype(inp.dtype))
        self.defined[inp.name] = -1
        previous = inp.name
        read: set[str] = set()
        extra_outputs: list[str] = []
        for i, layer in enumerate(self.spec.layers):
            at: Loc = ("layers", i)
            if layer.name in self.defined:
                first = self.defined[layer.name]
                where = "the input" if first < 0 else f"layers[{first}]"
                raise self.error(at + ("name",), f"duplicate name, already used by {where}", layer.name)
            names = layer.inputs if layer.inputs is not None else [previous]
            for j, name in enumerate(names):
                if name not in self.defined:
                    close = difflib.get_close_matches(name, list(self.defined), n=1)
                    hint = f"; did you mean {close[0]!r}?" if close else ""
                    raise self.error(
                        at + ("inputs", j), f"no earlier layer or input has this name{hint}", name
                    )
            read.update(names)
            precision = layer.precision.resolve(self.default) if layer.precision else dict(self.default)
            ins = [self.tensors[n] for n in names]
            out = _INFER[layer.op](self, layer, ins, at, precision)
            out.attrs["precision"] = precision
            op_inputs = []
            for operand in out.operands:
                if isinstance(operand, _Const):
                    tname = f"{layer.name}/{operand.suffix}"
                    dtype = np.dtype(np.int32) if operand.data is not None else dtype_for_bits(operand.bits)
                    self.tensors[tname] = Tensor(
                        tname, operand.shape, dtype, data=operand.data, role=operand.role
                    )
                    operand = tname
                op_inputs.append(operand)
            dtype = out.dtype if out.dtype is not None else dtype_for_bits(precision["activations"])
            self.tensors[layer.name] = Tensor(layer.name, out.shape, dtype)
            outputs = [layer.name]
            for suffix, shape, more_dtype in out.more_outputs:
                outputs.append(f"{layer.name}/{suffix}")
                self.tensors[outputs[-1]] = Tensor(outputs[-1], shape, more_dtype)
            extra_outputs += outputs[1:]
            self.ops.append(Op(layer.name, layer.op, op_inputs, outputs, out.attrs))
            self.defined[layer.name] = i
            previous = layer.name
        outputs = [layer.name for layer in self.spec.layers if layer.name not in read] + extra_outputs
        graph = Graph(self.tensors, self.ops, [inp.name], outputs, str(self.path), FORMAT)
        graph.check()
        return graph

    # helpers used by the shape rules -------------------------------------------------------------------
    def arity(self, layer, ins: list[Tensor], at: Loc, low: int, high: int | None = None) -> None:
        high = low if high is None else high
        if not low <= len(ins) <= high:
            count = str(low) if low == high else (f"{low} or more" if high > 99 else f"{low} to {high}")
            raise self.error(
                at + ("inputs",),
                f"{layer.op} takes {count} input{'s' * (count != '1')}",
                [t.name for t in ins],
            )

    def nhwc(self, layer, x: Tensor, at: Loc) -> tuple[int, int, int, int]:
        if len(x.shape) != 4:
            raise self.error(
                at + ("inputs",),
                f"{layer.op} needs a 4-D NHWC input; {x.name!r} has shape {list(x.shape)}",
                x.name,
            )
        return tuple(int(d) for d in x.shape)  # type: ignore[return-value]

    def axis(self, layer, axis: int, rank: int, at: Loc, key: str = "axis") -> int:
        if not -rank <= axis < rank:
            raise self.error(at + (key,), f"expected an axis of the rank-{rank} inputs", axis)
        return axis % rank

    def window(
        self, layer, hw: tuple[int, int], kernel, stride, padding, dilation, at: Loc
    ) -> tuple[int, int]:
        from hwsim.numerics.geometry import output_size, resolve_padding

        pads = resolve_padding(padding, hw, kernel, stride, dilation)
        out = (
            output_size(hw[0], kernel[0], stride[0], dilation[0], pads[0], pads[1]),
            output_size(hw[1], kernel[1], stride[1], dilation[1], pads[2], pads[3]),
        )
        if min(out) < 1:
            raise self.error(
                at + ("kernel",),
                f"the window does not fit the {hw[0]}x{hw[1]} input with this "
                f"padding and dilation (output {out[0]}x{out[1]})",
                list(kernel),
            )
        return out


def _names(ins: list[Tensor]) -> list[str]:
    return [t.name for t in ins]


def _weights(layer, shape: tuple[int, ...], precision: dict, bias_units: int | None) -> list[_Const]:
    """A layer's weight tensor, and its bias (accumulator-wide) when the layer has one."""
    consts = [_Const("weights", shape, precision["weights"])]
    if bias_units is not None and layer.bias:
        consts.append(_Const("bias", (bias_units,), precision["accumulator"]))
    return consts


def _conv2d(b: _Builder, layer: Conv2dLayer, ins, at, precision):
    b.arity(layer, ins, at, 1)
    n, h, w, c = b.nhwc(layer, ins[0], at)
    if c % layer.groups or layer.out_channels % layer.groups:
        raise b.error(
            at + ("groups",),
            f"groups must divide the input channels ({c}) and out_channels ({layer.out_channels})",
            layer.groups,
        )
    oh, ow = b.window(layer, (h, w), layer.kernel, layer.stride, layer.padding, layer.dilation, at)
    k = layer.out_channels
    attrs = {
        "layout": "NHWC",
        "stride": layer.stride,
        "dilation": layer.dilation,
        "padding": layer.padding,
        "activation": layer.activation,
        "kernel": layer.kernel,
        "groups": layer.groups,
        "in_channels": c,
    }
    return _Inferred(
        (n, oh, ow, k),
        attrs,
        _names(ins) + _weights(layer, (k, *layer.kernel, c // layer.groups), precision, k),
    )


def _depthwise(b: _Builder, layer: DepthwiseConv2dLayer, ins, at, precision):
    b.arity(layer, ins, at, 1)
    n, h, w, c = b.nhwc(layer, ins[0], at)
    oh, ow = b.window(layer, (h, w), layer.kernel, layer.stride, layer.padding, layer.dilation, at)
    k = c * layer.depth_multiplier
    attrs = {
        "layout": "NHWC",
        "stride": layer.stride,
        "dilation": layer.dilation,
        "padding": layer.padding,
        "depth_multiplier": layer.depth_multiplier,
        "activation": layer.activation,
        "kernel": layer.kernel,
        "in_channels": c,
    }
    return _Inferred(
        (n, oh, ow, k), attrs, _names(ins) + _weights(layer, (1, *layer.kernel, k), precision, k)
    )


def _fully_connected(b: _Builder, layer: FullyConnectedLayer, ins, at, precision):
    b.arity(layer, ins, at, 1)
    shape = tuple(int(d) for d in ins[0].shape)
    depth, rows = shape[-1], math.prod(shape[:-1])
    out = (*shape[:-1], layer.units) if layer.keep_num_dims else (rows, layer.units)
    return _Inferred(
        out,
        {"activation": layer.activation, "keep_num_dims": layer.keep_num_dims},
        _names(ins) + _weights(layer, (layer.units, depth), precision, layer.units),
    )


def _batch_matmul(b: _Builder, layer: BatchMatmulLayer, ins, at, precision):
    if layer.units is None:
        b.arity(layer, ins, at, 2)
    else:
        b.arity(layer, ins, at, 1)
    a = tuple(int(d) for d in ins[0].shape)
    if len(a) < 2:
        raise b.error(
            at + ("inputs",),
            f"batch_matmul needs inputs of rank 2 or more; {ins[0].name!r} has shape {list(a)}",
            ins[0].name,
        )
    m, depth = (a[-1], a[-2]) if layer.adj_x else (a[-2], a[-1])
    operands: list = _names(ins)
    if layer.units is None:
        bshape = tuple(int(d) for d in ins[1].shape)
        if len(bshape) < 2:
            raise b.error(
                at + ("inputs",),
                f"batch_matmul needs inputs of rank 2 or more; {ins[1].name!r} has shape {list(bshape)}",
                ins[1].name,
            )
    else:
        bshape = (layer.units, depth) if layer.adj_y else (depth, layer.units)
        operands.append(_Const("weights", bshape, precision["weights"]))
    b_depth, n = (bshape[-1], bshape[-2]) if layer.adj_y else (bshape[-2], bshape[-1])
    if b_depth != depth:
        raise b.error(
            at + ("inputs",),
            f"the inner dimensions differ: A{list(a)} gives depth {depth}, B{list(bshape)} gives {b_depth}",
            [t.name for t in ins],
        )
    try:
        batch = np.broadcast_shapes(a[:-2], bshape[:-2])
    except ValueError:
        raise b.error(
            at + ("inputs",),
            f"the batch dimensions {list(a[:-2])} and {list(bshape[:-2])} do not broadcast",
            [t.name for t in ins],
        ) from None
    return _Inferred((*batch, m, n), {"depth": depth, "adj_x": layer.adj_x, "adj_y": layer.adj_y}, operands)


def _binary(b: _Builder, layer: _Binary, ins, at, precision):
    b.arity(layer, ins, at, 1 if layer.constant else 2)
    operands: list = _names(ins)
    shapes = [t.shape for t in ins]
    if layer.constant:
        shapes.append(tuple(layer.constant))
        operands.append(_Const("constant", tuple(layer.constant), precision["weights"]))
    try:
        out = np.broadcast_shapes(*shapes)
    except ValueError:
        where = ("constant",) if layer.constant else ("inputs",)
        got = list(layer.constant) if layer.constant else [t.name for t in ins]
        raise b.error(
            at + where, f"shapes {list(shapes[0])} and {list(shapes[1])} do not broadcast", got
        ) from None
    return _Inferred(tuple(int(d) for d in out), {"activation": layer.activation}, operands)


def _elementwise(b: _Builder, layer: ElementwiseLayer, ins, at, precision):
    b.arity(layer, ins, at, 1)
    attrs = {"beta": 1.0} if layer.op == "softmax" else {}
    return _Inferred(tuple(int(d) for d in ins[0].shape), attrs, _names(ins))


def _pool(b: _Builder, layer: _Pool, ins, at, precision):
    b.arity(layer, ins, at, 1)
    n, h, w, c = b.nhwc(layer, ins[0], at)
    if layer.global_pool:
        kernel, stride, padding = (h, w), (1, 1), "valid"
    else:
        kernel, stride, padding = layer.kernel, layer.stride or layer.kernel, layer.padding
    oh, ow = b.window(layer, (h, w), kernel, stride, padding, (1, 1), at)
    attrs = {
        "layout": "NHWC",
        "stride": stride,
        "padding": padding,
        "kernel": kernel,
        "activation": layer.activation,
    }
    return _Inferred((n, oh, ow, c), attrs, _names(ins))


def _reshape(b: _Builder, layer: ReshapeLayer, ins, at, precision):
    b.arity(layer, ins, at, 1)
    size = math.prod(int(d) for d in ins[0].shape)
    shape = list(layer.shape)
    if shape.count(-1) > 1 or any(d == 0 or d < -1 for d in shape):
        raise b.error(at + ("shape",), "expected positive sizes and at most one -1", shape)
    known = math.prod(d for d in shape if d != -1)
    if -1 in shape:
        if size % known:
            raise b.error(at + ("shape",), f"cannot hold the {size} elements of {list(ins[0].shape)}", shape)
        shape[shape.index(-1)] = size // known
    elif known != size:
        raise b.error(
            at + ("shape",),
            f"holds {known} elements, the input {list(ins[0].shape)} has {size}",
            list(layer.shape),
        )
    return _Inferred(tuple(shape), {}, _names(ins) + [_Const("shape", (len(shape),), data=_ints(shape))])


def _concat(b: _Builder, layer: ConcatLayer, ins, at, precision):
    b.arity(layer, ins, at, 2, 1 << 30)
    rank = len(ins[0].shape)
    axis = b.axis(layer, layer.axis, rank, at)
    for t in ins[1:]:
        same = len(t.shape) == rank and all(
            d == e for k, (d, e) in enumerate(zip(t.shape, ins[0].shape, strict=True)) if k != axis
        )
        if not same:
            raise b.error(
                at + ("inputs",),
                f"shapes must match except along axis {axis}: {list(ins[0].shape)} and {list(t.shape)}",
                [x.name for x in ins],
            )
    out = list(ins[0].shape)
    out[axis] = sum(int(t.shape[axis]) for t in ins)
    return _Inferred(tuple(out), {"axis": axis, "activation": layer.activation}, _names(ins))


def _pad(b: _Builder, layer: PadLayer, ins, at, precision):
    b.arity(layer, ins, at, 1)
    n, h, w, c = b.nhwc(layer, ins[0], at)
    top, bottom, left, right = layer.padding
    paddings = _ints([[0, 0], [top, bottom], [left, right], [0, 0]])
    return _Inferred(
        (n, h + top + bottom, w + left + right, c),
        {},
        _names(ins) + [_Const("paddings", (4, 2), data=paddings)],
    )


def _mean(b: _Builder, layer: MeanLayer, ins, at, precision):
    b.arity(layer, ins, at, 1)
    rank = len(ins[0].shape)
    axes = sorted({b.axis(layer, a, rank, at, "axes") for a in layer.axes})
    out = [1 if k in axes else int(d) for k, d in enumerate(ins[0].shape) if layer.keep_dims or k not in axes]
    return _Inferred(
        tuple(out),
        {"axes": tuple(axes), "keep_dims": layer.keep_dims},
        _names(ins) + [_Const("axes", (len(axes),), data=_ints(axes))],
    )


def _transpose_conv2d(b: _Builder, layer: TransposeConv2dLayer, ins, at, precision):
    b.arity(layer, ins, at, 1)
    n, h, w, c = b.nhwc(layer, ins[0], at)
    (sy, sx), (fy, fx) = layer.stride, layer.kernel
    if layer.padding == "same":
        oh, ow = h * sy, w * sx
    else:
        oh, ow = (h - 1) * sy + fy, (w - 1) * sx + fx
    k = layer.out_channels
    attrs = {
        "layout": "NHWC",
        "stride": layer.stride,
        "padding": layer.padding,
        "activation": layer.activation,
        "kernel": layer.kernel,
        "in_channels": c,
    }
    operands = [
        _Const("output_shape", (4,), data=_ints([n, oh, ow, k])),
        _Const("weights", (k, fy, fx, c), precision["weights"]),
        ins[0].name,
    ]
    if layer.bias:
        operands.append(_Const("bias", (k,), precision["accumulator"]))
    return _Inferred((n, oh, ow, k), attrs, operands)


def _resize(b: _Builder, layer: ResizeLayer, ins, at, precision):
    b.arity(layer, ins, at, 1)
    n, _, _, c = b.nhwc(layer, ins[0], at)
    attrs = {
        "size": tuple(layer.size),
        "align_corners": layer.align_corners,
        "half_pixel_centers": layer.half_pixel_centers,
    }
    return _Inferred((n, *layer.size, c), attrs, _names(ins) + [_Const("size", (2,), data=_ints(layer.size))])


def _arg_max(b: _Builder, layer: ArgMaxLayer, ins, at, precision):
    b.arity(layer, ins, at, 1)
    rank = len(ins[0].shape)
    axis = b.axis(layer, layer.axis, rank, at)
    out = tuple(int(d) for k, d in enumerate(ins[0].shape) if k != axis)
    return _Inferred(
        out,
        {"axis": axis},
        _names(ins) + [_Const("axis", (1,), data=_ints([axis]))],
        dtype=np.dtype(np.int32),
    )


def _detection_postprocess(b: _Builder, layer: DetectionPostprocessLayer, ins, at, precision):
    b.arity(layer, ins, at, 2)
    boxes, scores = ins
    if (
        len(boxes.shape) != 3
        or boxes.shape[-1] != 4
        or len(scores.shape) != 3
        or scores.shape[1] != boxes.shape[1]
    ):
        raise b.error(
            at + ("inputs",),
            "expected box encodings [1, anchors, 4] and class scores "
            f"[1, anchors, classes] (got {list(boxes.shape)} and "
            f"{list(scores.shape)})",
            _names(ins),
        )
    anchors, m = int(boxes.shape[1]), layer.max_detections
    f32 = np.dtype(np.float32)
    more = [("classes", (1, m), f32), ("scores", (1, m), f32), ("count", (1,), f32)]
    return _Inferred(
        (1, m, 4),
        {"max_detections": m},
        _names(ins) + [_Const("anchors", (anchors, 4), 8)],
        dtype=f32,
        more_outputs=more,
    )


_INFER = {
    "conv2d": _conv2d,
    "depthwise_conv2d": _depthwise,
    "fully_connected": _fully_connected,
    "batch_matmul": _batch_matmul,
    "add": _binary,
    "mul": _binary,
    "sub": _binary,
    "relu": _elementwise,
    "relu6": _elementwise,
    "logistic": _elementwise,
    "tanh": _elementwise,
    "hard_swish": _elementwise,
    "softmax": _elementwise,
    "avg_pool2d": _pool,
    "max_pool2d": _pool,
    "reshape": _reshape,
    "concat": _concat,
    "pad": _pad,
    "mean": _mean,
    "transpose_conv2d": _transpose_conv2d,
    "resize_bilinear": _resize,
    "resize_nearest_neighbor": _resize,
    "arg_max": _arg_max,
    "detection_postprocess": _detection_postprocess,
}


# --------------------------------------------------------------------------------------------------------
# Writing: a graph's shapes as a layer file (a shape-only copy of an imported model)
# --------------------------------------------------------------------------------------------------------


def graph_to_layers(graph: Graph, name: str) -> dict:
    """A layer-file mapping with the shapes, geometry and op sequence of an NHWC ``graph``.

    Layers are named ``<kind>_<index>``; ``inputs`` is written only where a layer does not read just the
    previous one. Loading the result gives a graph with the same ops, shapes and parameter sizes (without
    the values). An op or tensor the format cannot express raises a ConfigError naming it.
    """
    if len(graph.inputs) != 1:
        raise ConfigError(f"{graph.source}: a layer file has one input (the graph has {len(graph.inputs)})")
    x = graph.tensor(graph.inputs[0])
    spec: dict = {
        "schema_version": SCHEMA_VERSION,
        "name": name,
        "input": {"name": "input", "shape": [int(d or 1) for d in x.shape], "dtype": str(x.dtype)},
        "precision": dict(DEFAULT_PRECISION),
        "layers": [],
    }
    layer_of = {graph.inputs[0]: "input"}
    previous = "input"
    for index, op in enumerate(graph.ops):
        write = _WRITERS.get(op.kind)
        if write is None:
            raise ConfigError(
                f"{graph.source}: op {op.name!r} ({op.kind}) has no layer-file form; layer "
                "files "
                f"hold {', '.join(sorted(_WRITERS))}"
            )
        layer_name = f"{op.kind}_{index}"
        acts = [n for n in op.inputs if n and not graph.tensors[n].is_parameter]
        layer = {"name": layer_name, "op": op.kind}
        sources = [layer_of[n] for n in acts]
        if sources != [previous]:
            layer["inputs"] = sources
        layer.update(write(graph, op))
        bits = _weight_bits(graph, op)
        if bits != DEFAULT_PRECISION["weights"]:
            layer["precision"] = {"weights": bits}
        spec["layers"].append(layer)
        layer_of[op.outputs[0]] = previous = layer_name
    return spec


def dump_layers_yaml(spec: dict, header: str = "") -> str:
    """YAML text of a layer-file mapping: one flow-style line per layer, ``header`` as leading comments."""
    comments = "".join(f"# {line}".rstrip() + "\n" for line in header.splitlines())
    top = {k: v for k, v in spec.items() if k != "layers"}
    lines = [
        comments + yaml.safe_dump(top, sort_keys=False, default_flow_style=None, width=1000).rstrip(),
        "layers:",
    ]
    for layer in spec["layers"]:
        lines.append(
            "  - " + yaml.safe_dump(layer, sort_keys=False, default_flow_style=True, width=1000).strip()
        )
    return "\n".join(lines) + "\n"


_WEIGHTED = (
    "conv2d",
    "depthwise_conv2d",
    "fully_connected",
    "transpose_conv2d",
    "batch_matmul",
    "add",
    "mul",
    "sub",
)


def _weight_bits(graph: Graph, op: Op) -> int:
    """Bits of the op's weight (or constant operand); the default for ops without one."""
    if op.kind not in _WEIGHTED:
        return DEFAULT_PRECISION["weights"]
    weights = [
        graph.tensors[n]
        for n in op.inputs
        if n
        and graph.tensors[n].is_parameter
        and graph.tensors[n].role != "bias"
        and graph.tensors[n].dtype != np.int32
    ]
    return int(weights[0].bits or weights[0].dtype.itemsize * 8) if weights else DEFAULT_PRECISION["weights"]


def _has_bias(op: Op, index: int) -> bool:
    return len(op.inputs) > index and bool(op.inputs[index])


def _window(op: Op) -> dict:
    a = op.attrs
    out = {"kernel": list(a["kernel"]), "stride": list(a["stride"]), "padding": _padding_out(a["padding"])}
    if tuple(a.get("dilation", (1, 1))) != (1, 1):
        out["dilation"] = list(a["dilation"])
    return out


def _padding_out(padding) -> Any:
    return padding if isinstance(padding, str) else [int(p) for p in padding]


def _activation_out(op: Op) -> dict:
    return {"activation": op.attrs["activation"]} if op.attrs.get("activation") else {}


def _write_conv(graph, op):
    out = {"out_channels": int(graph.tensor(op.outputs[0]).shape[-1]), **_window(op)}
    if op.attrs.get("groups", 1) != 1:
        out["groups"] = int(op.attrs["groups"])
    return {**out, **_activation_out(op), **({} if _has_bias(op, 2) else {"bias": False})}


def _write_depthwise(graph, op):
    out = _window(op)
    if op.attrs.get("depth_multiplier", 1) != 1:
        out["depth_multiplier"] = int(op.attrs["depth_multiplier"])
    return {**out, **_activation_out(op), **({} if _has_bias(op, 2) else {"bias": False})}


def _write_fully_connected(graph, op):
    out = {"units": int(graph.tensor(op.inputs[1]).shape[0]), **_activation_out(op)}
    if op.attrs.get("keep_num_dims"):
        out["keep_num_dims"] = True
    return {**out, **({} if _has_bias(op, 2) else {"bias": False})}


def _write_binary(graph, op):
    consts = [graph.tensors[n] for n in op.inputs if n and graph.tensors[n].is_parameter]
    out = {"constant": [int(d) for d in consts[0].shape] or [1]} if consts else {}
    return {**out, **_activation_out(op)}


def _write_pool(graph, op):
    return {**_window(op), **_activation_out(op)}


def _write_pad(graph, op):
    paddings = graph.tensor(op.inputs[1]).data
    if paddings is None or paddings[0].any() or paddings[3].any():
        raise ConfigError(f"{graph.source}: op {op.name!r} (pad) pads more than height and width")
    return {"padding": [int(paddings[1][0]), int(paddings[1][1]), int(paddings[2][0]), int(paddings[2][1])]}


def _write_resize(graph, op):
    out = {"size": [int(v) for v in op.attrs["size"]]}
    for key in ("align_corners", "half_pixel_centers"):
        if op.attrs.get(key):
            out[key] = True
    return out


_WRITERS = {
    "conv2d": _write_conv,
    "depthwise_conv2d": _write_depthwise,
    "fully_connected": _write_fully_connected,
    "add": _write_binary,
    "mul": _write_binary,
    "sub": _write_binary,
    **{k: (lambda graph, op: {}) for k in ("relu", "relu6", "logistic", "tanh", "hard_swish", "softmax")},
    "avg_pool2d": _write_pool,
    "max_pool2d": _write_pool,
    "reshape": lambda graph, op: {"shape": [int(d or 1) for d in graph.tensor(op.outputs[0]).shape]},
    "concat": lambda graph, op: {"axis": int(op.attrs["axis"]), **_activation_out(op)},
    "pad": _write_pad,
    "mean": lambda graph, op: {
        "axes": [int(a) for a in op.attrs["axes"]],
        **({"keep_dims": True} if op.attrs.get("keep_dims") else {}),
    },
    "transpose_conv2d": lambda graph, op: {
        "out_channels": int(graph.tensor(op.outputs[0]).shape[-1]),
        "kernel": list(op.attrs["kernel"]),
        "stride": list(op.attrs["stride"]),
        "padding": op.attrs["padding"],
        **_activation_out(op),
        **({} if _has_bias(op, 3) else {"bias": False}),
    },
    "resize_bilinear": _write_resize,
    "resize_nearest_neighbor": _write_resize,
    "arg_max": lambda graph, op: {"axis": int(op.attrs["axis"])},
    "detection_postprocess": lambda graph, op: {"max_detections": int(graph.tensor(op.outputs[0]).shape[1])},
}
