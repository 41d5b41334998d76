"""Shape rules (hwsim.workload.shapes) against numpy's own results, and the importer's numba-free int4
unpacking."""

import doctest

import numpy as np
import pytest

from hwsim.errors import ConfigError
from hwsim.importers import tflite_file
from hwsim.numerics.ops import unpack_int4
from hwsim.runtime.execute import OP_IMPLS
from hwsim.workload import graph, shapes
from hwsim.workload.graph import Graph, Op, Tensor
from hwsim.workload.shapes import SHAPE_RULES, broadcast, output_shape


def _graph(op: Op, inputs: dict[str, tuple], consts: dict[str, np.ndarray] | None = None) -> Graph:
    tensors = {n: Tensor(n, s, np.dtype(np.int8)) for n, s in inputs.items()}
    tensors.update({n: Tensor(n, v.shape, v.dtype, data=v) for n, v in (consts or {}).items()})
    tensors[op.outputs[0]] = Tensor(op.outputs[0], (), np.dtype(np.int8))
    return Graph(tensors, [op], list(inputs), op.outputs, "test.tflite")


@pytest.mark.parametrize("module", [shapes, graph, tflite_file], ids=lambda m: m.__name__)
def test_docstring_examples(module):
    """Every docstring example of the module gives the output it shows."""
    result = doctest.testmod(module)
    assert result.failed == 0 and result.attempted > 0


def test_every_runnable_op_kind_has_a_shape_rule():
    """Each op kind the executor runs also has a shape rule, so an importer can give its output shape."""
    quant_only = {"conv2d_per_group", "fully_connected_per_group"}
    assert set(OP_IMPLS.names()) - quant_only <= set(SHAPE_RULES.names())


@pytest.mark.parametrize("padding", ["same", "valid", (1, 2, 0, 3)])
@pytest.mark.parametrize(
    "size,kernel,stride,dilation", [(7, 3, 2, 1), (16, 3, 1, 2), (5, 5, 3, 1), (1, 1, 1, 1)]
)
def test_conv_output_size_counts_the_windows(size, kernel, stride, dilation, padding):
    """The output size along rows and columns is the number of window positions over the padded input."""
    rows = []
    for axis in (0, 1):
        if padding == "same":
            out = -(-size // stride)
            total = max((out - 1) * stride + dilation * (kernel - 1) + 1 - size, 0)
            before, after = total // 2, total - total // 2
        else:
            before, after = (0, 0) if padding == "valid" else padding[2 * axis : 2 * axis + 2]
        span = dilation * (kernel - 1) + 1
        rows.append(len(range(0, size + before + after - span + 1, stride)))
        assert shapes.spatial_size(size, kernel, stride, dilation, padding, axis) == rows[-1]
    op = Op(
        "c",
        "conv2d",
        ["x", "w"],
        ["y"],
        {
            "layout": "NCHW",
            "kernel": (kernel, kernel),
            "stride": (stride,) * 2,
            "dilation": (dilation,) * 2,
            "padding": padding,
        },
    )
    conv_graph = _graph(op, {"x": (None, 3, size, size), "w": (8, kernel, kernel, 3)})
    assert output_shape(conv_graph, op) == (None, 8, *rows)


@pytest.mark.parametrize(
    "begin,end,strides,begin_mask,end_mask,shrink",
    [
        ((0,), (1,), (1,), 0, 0, 1),
        ((1, 0), (3, 4), (1, 2), 0, 2, 0),
        ((-1, 0), (0, -1), (-1, 1), 1, 0, 0),
        ((0, 2), (5, 3), (2, 1), 0, 0, 2),
    ],
)
def test_strided_slice_shape_is_numpys(begin, end, strides, begin_mask, end_mask, shrink):
    """STRIDED_SLICE's shape rule gives the shape of the same slice taken by numpy."""
    x = np.zeros((6, 5))
    index = []
    for i in range(2):
        if i >= len(begin):
            index.append(slice(None))
        elif shrink >> i & 1:
            index.append(begin[i])
        else:
            index.append(
                slice(
                    None if begin_mask >> i & 1 else begin[i],
                    None if end_mask >> i & 1 else end[i],
                    strides[i],
                )
            )
    op = Op(
        "s",
        "strided_slice",
        ["x"],
        ["y"],
        {
            "begin": begin,
            "end": end,
            "strides": strides,
            "offset": False,
            "begin_mask": begin_mask,
            "end_mask": end_mask,
            "shrink_axis_mask": shrink,
        },
    )
    assert output_shape(_graph(op, {"x": x.shape}), op) == x[tuple(index)].shape


def test_unknown_batch_is_carried_or_taken_at_one():
    """An unknown batch passes through reshapes that copy it, and counts 1 where it is flattened into rows."""
    fc = Op("f", "fully_connected", ["x", "w"], ["y"], {"keep_num_dims": False})
    assert output_shape(_graph(fc, {"x": (None, 8), "w": (3, 8)}), fc) == (None, 3)
    assert output_shape(_graph(fc, {"x": (None, 6, 8), "w": (3, 8)}), fc) == (6, 3)
    reshape = Op("r", "reshape", ["x", "s"], ["y"])
    assert output_shape(
        _graph(reshape, {"x": (None, 6, 4)}, {"s": np.array([-1, 8], np.int32)}), reshape
    ) == (3, 8)
    squeeze = Op("q", "reshape", ["x"], ["y"], {"squeeze_dims": ()})
    assert output_shape(_graph(squeeze, {"x": (None, 1, 1, 5)}), squeeze) == (None, 5)
    assert broadcast((None, 1, 8), (4, 1)) == (None, 4, 8)


def test_shapes_that_do_not_broadcast_are_an_error_naming_the_op():
    """ADD of (2, 3) and (4, 3) is refused with the op and both shapes named."""
    add = Op("7:ADD", "add", ["a", "b"], ["y"])
    message = r"test.tflite: operator 7 \(ADD, output 'y'\): shapes \(2, 3\) and \(4, 3\) do not broadcast"
    with pytest.raises(ConfigError, match=message):
        output_shape(_graph(add, {"a": (2, 3), "b": (4, 3)}), add)


def test_int4_unpacking_without_the_kernels_matches_them(rng):
    """The importer's numpy unpacking of TFLite int4 buffers gives the codes hwsim.numerics.ops gives."""
    packed = rng.integers(0, 256, 37, dtype=np.uint8)
    for count in (0, 1, 73, 74):
        assert np.array_equal(tflite_file.unpack_int4_codes(packed, count), unpack_int4(packed, count))
