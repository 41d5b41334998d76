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
layers no later layer reads. Weight and bias tensors exist with their shapes and ``data=None``, so later
stages can count weight bytes; ops carry the attributes the TFLite importer produces, plus
``attrs["precision"]`` (bits per role). Every error is a :class:`~hwsim.errors.ConfigError` reading
``file:line: layers[3].kernel: what was expected (got value)``.
"""

from __future__ import annotations

import difflib
import math
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from hwsim.config.yamlio import Loc, config_error, load_yaml_with_lines, unknown_key_message, unwrap_type
from hwsim.errors import ConfigError
from hwsim.workload.graph import Graph, Op, Tensor

SCHEMA_VERSION = 1
FORMAT = "hwsim-layers"
DEFAULT_PRECISION = {"weights": 8, "activations": 8, "accumulator": 32}



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
        message = ("expected a mapping with schema_version, name, input and layers "
                   f"(got a {type(got).__name__})")
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
                tp = next((m for m in members if _tag(m) == item["op"]), None)
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


def _tag(model: type[BaseModel]) -> str:
    return typing.get_args(model.model_fields["op"].annotation)[0]


# --------------------------------------------------------------------------------------------------------
# Schema (pydantic v2, extra="forbid", frozen)
# --------------------------------------------------------------------------------------------------------

def _pair(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value, value]
    if (isinstance(value, (list, tuple)) and len(value) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value)):
        return tuple(value)
    raise PydanticCustomError("pair", "expected a positive int or a list [height, width] of them")


def _padding(value: Any) -> Any:
    if value in ("same", "valid"):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return (value,) * 4
    if (isinstance(value, (list, tuple)) and len(value) == 4
            and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)):
        return tuple(value)
    raise PydanticCustomError("padding", "expected 'same', 'valid', a non-negative int or a list "
                                         "[top, bottom, left, right] of them")


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
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


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


class AddLayer(_Layer):
    """Elementwise add of two inputs (NumPy broadcasting)."""

    op: Literal["add"]
    activation: Activation = None


class _Pool(_Layer):
    kernel: Pair | None = None
    global_pool: bool = False
    stride: Pair | None = None  # defaults to the kernel
    padding: Padding = "valid"
    activation: Activation = None

    @model_validator(mode="after")
    def _kernel_or_global(self):
        if (self.kernel is None) == (not self.global_pool):
            raise PydanticCustomError("pool_window", "give either kernel or global_pool: true (not both, not "
                                                     "neither)")
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
    Conv2dLayer | DepthwiseConv2dLayer | FullyConnectedLayer | BatchMatmulLayer | AddLayer | AvgPool2dLayer
    | MaxPool2dLayer | ReshapeLayer | ConcatLayer,
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

def dtype_for_bits(bits: int) -> np.dtype:
    """The narrowest signed NumPy integer holding ``bits``-bit codes (int4 is stored in int8, as TFLite's)."""
    for width, dtype in ((8, np.int8), (16, np.int16), (32, np.int32)):
        if bits <= width:
            return np.dtype(dtype)
    return np.dtype(np.int64)


def load_layers_yaml(path: str | Path) -> Graph:
    """Parse a YAML layer description into a graph of shapes (no weight data)."""
    path = Path(path)
    data, lines = load_yaml_with_lines(path, "a mapping with schema_version, name, input and layers")
    spec = validate(LayersFileSpec, data, lines, path)
    return _Builder(spec, lines, path).build()


class _Builder:
    def __init__(self, spec: LayersFileSpec, lines: dict[Loc, int], path: Path):
        self.spec, self.lines, self.path = spec, lines, path
        self.default = spec.precision.resolve(DEFAULT_PRECISION) if spec.precision \
            else dict(DEFAULT_PRECISION)
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
                    raise self.error(at + ("inputs", j), f"no earlier layer or input has this name{hint}",
                                     name)
            read.update(names)
            precision = layer.precision.resolve(self.default) if layer.precision else dict(self.default)
            ins = [self.tensors[n] for n in names]
            out_shape, attrs, weights = _INFER[layer.op](self, layer, ins, at, precision)
            attrs["precision"] = precision
            op_inputs = list(names)
            for suffix, shape, bits in weights:
                tname = f"{layer.name}/{suffix}"
                self.tensors[tname] = Tensor(tname, shape, dtype_for_bits(bits),
                                             role="bias" if suffix == "bias" else "weight")
                op_inputs.append(tname)
            self.tensors[layer.name] = Tensor(layer.name, out_shape, dtype_for_bits(precision["activations"]))
            self.ops.append(Op(layer.name, layer.op, op_inputs, [layer.name], attrs))
            self.defined[layer.name] = i
            previous = layer.name
        outputs = [layer.name for layer in self.spec.layers if layer.name not in read]
        graph = Graph(self.tensors, self.ops, [inp.name], outputs, str(self.path), FORMAT)
        graph.check()
        return graph

    # helpers used by the shape rules -------------------------------------------------------------------
    def arity(self, layer, ins: list[Tensor], at: Loc, low: int, high: int | None = None) -> None:
        high = low if high is None else high
        if not low <= len(ins) <= high:
            count = str(low) if low == high else (f"{low} or more" if high > 99 else f"{low} to {high}")
            raise self.error(at + ("inputs",), f"{layer.op} takes {count} input{'s' * (count != '1')}",
                             [t.name for t in ins])

    def nhwc(self, layer, x: Tensor, at: Loc) -> tuple[int, int, int, int]:
        if len(x.shape) != 4:
            raise self.error(at + ("inputs",), f"{layer.op} needs a 4-D NHWC input; {x.name!r} has shape "
                                               f"{list(x.shape)}", x.name)
        return tuple(int(d) for d in x.shape)  # type: ignore[return-value]

    def window(self, layer, hw: tuple[int, int], kernel, stride, padding, dilation,
               at: Loc) -> tuple[int, int]:
        from hwsim.numerics.ops import output_size, resolve_padding

        pads = resolve_padding(padding, hw, kernel, stride, dilation)
        out = (output_size(hw[0], kernel[0], stride[0], dilation[0], pads[0], pads[1]),
               output_size(hw[1], kernel[1], stride[1], dilation[1], pads[2], pads[3]))
        if min(out) < 1:
            raise self.error(at + ("kernel",), f"the window does not fit the {hw[0]}x{hw[1]} input with this "
                                               f"padding and dilation (output {out[0]}x{out[1]})",
                             list(kernel))
        return out


def _conv2d(b: _Builder, layer: Conv2dLayer, ins, at, precision):
    b.arity(layer, ins, at, 1)
    n, h, w, c = b.nhwc(layer, ins[0], at)
    if c % layer.groups or layer.out_channels % layer.groups:
        raise b.error(at + ("groups",), f"groups must divide the input channels ({c}) and out_channels "
                                        f"({layer.out_channels})", layer.groups)
    oh, ow = b.window(layer, (h, w), layer.kernel, layer.stride, layer.padding, layer.dilation, at)
    k = layer.out_channels
    weights = [("weights", (k, *layer.kernel, c // layer.groups), precision["weights"])]
    if layer.bias:
        weights.append(("bias", (k,), precision["accumulator"]))
    attrs = {"layout": "NHWC", "stride": layer.stride, "dilation": layer.dilation, "padding": layer.padding,
             "activation": layer.activation, "kernel": layer.kernel, "groups": layer.groups, "in_channels": c}
    return (n, oh, ow, k), attrs, weights


def _depthwise(b: _Builder, layer: DepthwiseConv2dLayer, ins, at, precision):
    b.arity(layer, ins, at, 1)
    n, h, w, c = b.nhwc(layer, ins[0], at)
    oh, ow = b.window(layer, (h, w), layer.kernel, layer.stride, layer.padding, layer.dilation, at)
    k = c * layer.depth_multiplier
    weights = [("weights", (1, *layer.kernel, k), precision["weights"])]
    if layer.bias:
        weights.append(("bias", (k,), precision["accumulator"]))
    attrs = {"layout": "NHWC", "stride": layer.stride, "dilation": layer.dilation, "padding": layer.padding,
             "depth_multiplier": layer.depth_multiplier, "activation": layer.activation,
             "kernel": layer.kernel, "in_channels": c}
    return (n, oh, ow, k), attrs, weights


def _fully_connected(b: _Builder, layer: FullyConnectedLayer, ins, at, precision):
    b.arity(layer, ins, at, 1)
    shape = tuple(int(d) for d in ins[0].shape)
    depth, rows = shape[-1], math.prod(shape[:-1])
    out = (*shape[:-1], layer.units) if layer.keep_num_dims else (rows, layer.units)
    weights = [("weights", (layer.units, depth), precision["weights"])]
    if layer.bias:
        weights.append(("bias", (layer.units,), precision["accumulator"]))
    return out, {"activation": layer.activation, "keep_num_dims": layer.keep_num_dims}, weights


def _batch_matmul(b: _Builder, layer: BatchMatmulLayer, ins, at, precision):
    if layer.units is None:
        b.arity(layer, ins, at, 2)
    else:
        b.arity(layer, ins, at, 1)
    a = tuple(int(d) for d in ins[0].shape)
    if len(a) < 2:
        raise b.error(at + ("inputs",), f"batch_matmul needs inputs of rank 2 or more; {ins[0].name!r} has "
                                        f"shape {list(a)}", ins[0].name)
    m, depth = (a[-1], a[-2]) if layer.adj_x else (a[-2], a[-1])
    weights = []
    if layer.units is None:
        bshape = tuple(int(d) for d in ins[1].shape)
        if len(bshape) < 2:
            raise b.error(at + ("inputs",), "batch_matmul needs inputs of rank 2 or more; "
                                            f"{ins[1].name!r} has shape {list(bshape)}", ins[1].name)
    else:
        bshape = (layer.units, depth) if layer.adj_y else (depth, layer.units)
        weights.append(("weights", bshape, precision["weights"]))
    b_depth, n = (bshape[-1], bshape[-2]) if layer.adj_y else (bshape[-2], bshape[-1])
    if b_depth != depth:
        raise b.error(at + ("inputs",), f"the inner dimensions differ: A{list(a)} gives depth {depth}, "
                                        f"B{list(bshape)} gives {b_depth}", [t.name for t in ins])
    try:
        batch = np.broadcast_shapes(a[:-2], bshape[:-2])
    except ValueError:
        raise b.error(at + ("inputs",), f"the batch dimensions {list(a[:-2])} and {list(bshape[:-2])} do not "
                                        "broadcast", [t.name for t in ins]) from None
    return (*batch, m, n), {"depth": depth, "adj_x": layer.adj_x, "adj_y": layer.adj_y}, weights


def _add(b: _Builder, layer: AddLayer, ins, at, precision):
    b.arity(layer, ins, at, 2)
    try:
        out = np.broadcast_shapes(ins[0].shape, ins[1].shape)
    except ValueError:
        raise b.error(at + ("inputs",), f"shapes {list(ins[0].shape)} and {list(ins[1].shape)} do not "
                                        "broadcast", [t.name for t in ins]) from None
    return tuple(int(d) for d in out), {"activation": layer.activation}, []


def _pool(b: _Builder, layer: _Pool, ins, at, precision):
    b.arity(layer, ins, at, 1)
    n, h, w, c = b.nhwc(layer, ins[0], at)
    if layer.global_pool:
        kernel, stride, padding = (h, w), (1, 1), "valid"
    else:
        kernel, stride, padding = layer.kernel, layer.stride or layer.kernel, layer.padding
    oh, ow = b.window(layer, (h, w), kernel, stride, padding, (1, 1), at)
    attrs = {"layout": "NHWC", "stride": stride, "padding": padding, "kernel": kernel,
             "activation": layer.activation}
    return (n, oh, ow, c), attrs, []


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
        raise b.error(at + ("shape",), f"holds {known} elements, the input {list(ins[0].shape)} has {size}",
                      list(layer.shape))
    return tuple(shape), {}, []


def _concat(b: _Builder, layer: ConcatLayer, ins, at, precision):
    b.arity(layer, ins, at, 2, 1 << 30)
    rank = len(ins[0].shape)
    if not -rank <= layer.axis < rank:
        raise b.error(at + ("axis",), f"expected an axis of the rank-{rank} inputs", layer.axis)
    axis = layer.axis % rank
    for t in ins[1:]:
        same = len(t.shape) == rank and all(d == e for k, (d, e) in enumerate(zip(t.shape, ins[0].shape,
                                                                                  strict=True)) if k != axis)
        if not same:
            raise b.error(at + ("inputs",), f"shapes must match except along axis {axis}: "
                                            f"{list(ins[0].shape)} and {list(t.shape)}",
                          [x.name for x in ins])
    out = list(ins[0].shape)
    out[axis] = sum(int(t.shape[axis]) for t in ins)
    return tuple(out), {"axis": axis, "activation": layer.activation}, []


_INFER = {"conv2d": _conv2d, "depthwise_conv2d": _depthwise, "fully_connected": _fully_connected,
          "batch_matmul": _batch_matmul, "add": _add, "avg_pool2d": _pool, "max_pool2d": _pool,
          "reshape": _reshape, "concat": _concat}
