"""The few tables of a ``.tflite`` flatbuffer that hwsim reads, read straight from the bytes.

The ``tflite`` package's generated reader imports some 200 modules when imported and reads each field
through several Python calls; hwsim reads a dozen tables, so it reads them here with ``struct`` alone (a
shape-only simulation then imports no numpy). A FlatBuffers schema only ever appends fields, so a field's
slot (its position in TensorFlow Lite's ``schema.fbs``) and default never change: the slots below hold for
every file version.
"""

from __future__ import annotations

import struct

_U16 = struct.Struct("<H").unpack_from
_U32 = struct.Struct("<I").unpack_from
_I32 = struct.Struct("<i").unpack_from

# struct formats of the scalar field types
BYTE, UBYTE, BOOL, INT, UINT, FLOAT = "<b", "<B", "<?", "<i", "<I", "<f"

# Table slots (field order in schema.fbs)
MODEL_OPERATOR_CODES, MODEL_SUBGRAPHS, MODEL_BUFFERS = 1, 2, 4
SUBGRAPH_TENSORS, SUBGRAPH_INPUTS, SUBGRAPH_OUTPUTS, SUBGRAPH_OPERATORS = 0, 1, 2, 3
TENSOR_SHAPE, TENSOR_TYPE, TENSOR_BUFFER, TENSOR_NAME, TENSOR_QUANTIZATION = 0, 1, 2, 3, 4
TENSOR_SHAPE_SIGNATURE = 7
QUANT_SCALE, QUANT_ZERO_POINT, QUANT_DIMENSION = 2, 3, 6
BUFFER_DATA = 0
OPCODE_DEPRECATED_BUILTIN, OPCODE_CUSTOM_CODE, OPCODE_BUILTIN = 0, 1, 3
OPERATOR_OPCODE_INDEX, OPERATOR_INPUTS, OPERATOR_OUTPUTS, OPERATOR_BUILTIN_OPTIONS = 0, 1, 2, 4
SQUEEZE_DIMS = 0  # SqueezeOptions' one field, a vector

#: Each builtin options table hwsim reads: field -> (slot, format, default).
OPTIONS: dict[str, dict[str, tuple[int, str, object]]] = {
    "Conv2DOptions": {
        "padding": (0, BYTE, 0),
        "stride_w": (1, INT, 0),
        "stride_h": (2, INT, 0),
        "fused_activation_function": (3, BYTE, 0),
        "dilation_w_factor": (4, INT, 1),
        "dilation_h_factor": (5, INT, 1),
    },
    "DepthwiseConv2DOptions": {
        "padding": (0, BYTE, 0),
        "stride_w": (1, INT, 0),
        "stride_h": (2, INT, 0),
        "fused_activation_function": (4, BYTE, 0),
        "dilation_w_factor": (5, INT, 1),
        "dilation_h_factor": (6, INT, 1),
    },
    "FullyConnectedOptions": {
        "fused_activation_function": (0, BYTE, 0),
        "weights_format": (1, BYTE, 0),
        "keep_num_dims": (2, BOOL, False),
        "quantized_bias_type": (4, BYTE, 0),  # a TensorType: 4 is INT64, 2 INT32, 0 (FLOAT32) unset
    },
    "AddOptions": {"fused_activation_function": (0, BYTE, 0)},
    "MulOptions": {"fused_activation_function": (0, BYTE, 0)},
    "SubOptions": {"fused_activation_function": (0, BYTE, 0)},
    "Pool2DOptions": {
        "padding": (0, BYTE, 0),
        "stride_w": (1, INT, 0),
        "stride_h": (2, INT, 0),
        "filter_width": (3, INT, 0),
        "filter_height": (4, INT, 0),
        "fused_activation_function": (5, BYTE, 0),
    },
    "ConcatenationOptions": {"axis": (0, INT, 0), "fused_activation_function": (1, BYTE, 0)},
    "SoftmaxOptions": {"beta": (0, FLOAT, 0.0)},
    "ReducerOptions": {"keep_dims": (0, BOOL, False)},
    "LeakyReluOptions": {"alpha": (0, FLOAT, 0.0)},
    "BatchMatMulOptions": {"adj_x": (0, BOOL, False), "adj_y": (1, BOOL, False)},
    "StridedSliceOptions": {
        "begin_mask": (0, INT, 0),
        "end_mask": (1, INT, 0),
        "ellipsis_mask": (2, INT, 0),
        "new_axis_mask": (3, INT, 0),
        "shrink_axis_mask": (4, INT, 0),
        "offset": (5, BOOL, False),
    },
    "GatherOptions": {"axis": (0, INT, 0), "batch_dims": (1, INT, 0)},
    "PackOptions": {"axis": (1, INT, 0)},
    "TransposeConvOptions": {
        "padding": (0, BYTE, 0),
        "stride_w": (1, INT, 0),
        "stride_h": (2, INT, 0),
        "fused_activation_function": (3, BYTE, 0),
    },
    "ResizeBilinearOptions": {"align_corners": (2, BOOL, False), "half_pixel_centers": (3, BOOL, False)},
    "ResizeNearestNeighborOptions": {
        "align_corners": (0, BOOL, False),
        "half_pixel_centers": (1, BOOL, False),
    },
}

#: TensorType values (schema.fbs).
TENSOR_TYPES = {
    "FLOAT32": 0,
    "FLOAT16": 1,
    "INT32": 2,
    "UINT8": 3,
    "INT64": 4,
    "BOOL": 6,
    "INT16": 7,
    "INT8": 9,
    "INT4": 17,
}

#: BuiltinOperator values (schema.fbs) of the operators hwsim converts.
BUILTIN_OPERATORS = {
    "ADD": 0,
    "AVERAGE_POOL_2D": 1,
    "CONCATENATION": 2,
    "CONV_2D": 3,
    "DEPTHWISE_CONV_2D": 4,
    "DEQUANTIZE": 6,
    "FLOOR": 8,
    "FULLY_CONNECTED": 9,
    "L2_NORMALIZATION": 11,
    "LOGISTIC": 14,
    "MAX_POOL_2D": 17,
    "MUL": 18,
    "RELU": 19,
    "RELU_N1_TO_1": 20,
    "RELU6": 21,
    "RESHAPE": 22,
    "RESIZE_BILINEAR": 23,
    "SOFTMAX": 25,
    "TANH": 28,
    "CUSTOM": 32,
    "PAD": 34,
    "GATHER": 36,
    "TRANSPOSE": 39,
    "MEAN": 40,
    "SUB": 41,
    "DIV": 42,
    "SQUEEZE": 43,
    "STRIDED_SLICE": 45,
    "EXP": 47,
    "LOG_SOFTMAX": 50,
    "CAST": 53,
    "PRELU": 54,
    "MAXIMUM": 55,
    "ARG_MAX": 56,
    "MINIMUM": 57,
    "NEG": 59,
    "PADV2": 60,
    "SLICE": 65,
    "TRANSPOSE_CONV": 67,
    "TILE": 69,
    "EXPAND_DIMS": 70,
    "LOG": 73,
    "SUM": 74,
    "SQRT": 75,
    "RSQRT": 76,
    "SHAPE": 77,
    "POW": 78,
    "REDUCE_PROD": 81,
    "REDUCE_MAX": 82,
    "PACK": 83,
    "FLOOR_DIV": 90,
    "SQUARE": 92,
    "FILL": 94,
    "RANGE": 96,
    "RESIZE_NEAREST_NEIGHBOR": 97,
    "LEAKY_RELU": 98,
    "SQUARED_DIFFERENCE": 99,
    "MIRROR_PAD": 100,
    "ABS": 101,
    "CEIL": 104,
    "ELU": 111,
    "QUANTIZE": 114,
    "HARD_SWISH": 117,
    "BATCH_MATMUL": 126,
    "GELU": 150,
}


class Table:
    """One flatbuffer table: its fields by slot, absent ones as the schema's default."""

    __slots__ = ("buf", "pos", "_vtable", "_vtable_size")

    def __init__(self, buf: bytes, pos: int) -> None:
        self.buf, self.pos = buf, pos
        self._vtable = pos - _I32(buf, pos)[0]
        self._vtable_size = _U16(buf, self._vtable)[0]

    def _offset(self, slot: int) -> int:
        """The field's offset from the table's start; 0 when the file leaves it out."""
        at = 4 + 2 * slot
        return _U16(self.buf, self._vtable + at)[0] if at < self._vtable_size else 0

    def scalar(self, slot: int, fmt: str, default):
        """A scalar field (``fmt`` a struct format), or ``default``."""
        off = self._offset(slot)
        return struct.unpack_from(fmt, self.buf, self.pos + off)[0] if off else default

    def table(self, slot: int) -> Table | None:
        """A table field (or a union's value), or None."""
        off = self._offset(slot)
        if not off:
            return None
        at = self.pos + off
        return Table(self.buf, at + _U32(self.buf, at)[0])

    def _vector(self, slot: int) -> tuple[int, int]:
        """Start and length of a vector field ((0, 0) when absent)."""
        off = self._offset(slot)
        if not off:
            return 0, 0
        at = self.pos + off
        at += _U32(self.buf, at)[0]
        return at + 4, _U32(self.buf, at)[0]

    def tables(self, slot: int) -> list[Table]:
        """A vector of tables (empty when absent)."""
        start, n = self._vector(slot)
        buf = self.buf
        return [Table(buf, start + 4 * k + _U32(buf, start + 4 * k)[0]) for k in range(n)]

    def array(self, slot: int, code: str) -> tuple:
        """A vector of scalars (``code`` a struct format character, little-endian) as a tuple (empty when
        absent)."""
        start, n = self._vector(slot)
        return struct.unpack_from(f"<{n}{code}", self.buf, start) if n else ()

    def raw(self, slot: int, itemsize: int) -> bytes:
        """A vector of ``itemsize``-byte scalars as the file's bytes (empty when absent)."""
        start, n = self._vector(slot)
        return self.buf[start : start + n * itemsize]

    def string(self, slot: int) -> bytes:
        """A string field's bytes (empty when absent)."""
        start, n = self._vector(slot)
        return self.buf[start : start + n]

    def fields(self, spec: dict[str, tuple[int, str, object]]) -> dict[str, object]:
        """Every field of ``spec`` (name -> (slot, format, default)), by name."""
        return {name: self.scalar(slot, fmt, default) for name, (slot, fmt, default) in spec.items()}


def root(buf: bytes) -> Table:
    """The file's root table (the Model)."""
    return Table(buf, _U32(buf, 0)[0])
