"""Read a SCALE-Sim topology CSV (conv or GEMM form) into a :class:`~hwsim.workload.graph.Graph` of shapes.

The format, as SCALE-Sim v2/v3 read it (``scalesim/topology_utils.py``, ``topologies/``):

* Line 1 is a header, which SCALE-Sim skips unread (its ``-i gemm`` switch picks the form); hwsim
  recognises the form from it, or takes ``input_type=``. Blank lines are skipped; every row ends with a comma,
  and SCALE-Sim drops whatever follows the last comma (its files use that for ``#dw`` notes).
* Conv form: ``Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter,
  Strides,``. The IFMAP is taken as already padded, and output = ceil((IFMAP - Filter + Stride) / Stride),
  MACs = out_h * out_w * filter_h * filter_w * channels * num_filter. That is a VALID convolution when the
  stride divides IFMAP - Filter; otherwise SCALE-Sim counts one more output row (column) than VALID, whose
  window reads past the IFMAP, and hwsim records it as explicit padding ``(0, bottom, 0, right)``. A ninth
  column is either a stride width (v1/v2's ``write_topo_file`` layout) or, when it contains ``:``, an N:M
  sparsity ratio (v3). A layer whose name contains ``DP`` is depthwise: SCALE-Sim runs it as ``Channels``
  one-channel convolutions of ``Num Filter`` filters each, so hwsim makes it a depthwise_conv2d with
  ``depth_multiplier = Num Filter``.
* GEMM form: ``Layer, M, N, K,`` (optionally ``Sparsity``). SCALE-Sim runs it as a conv with an M x K IFMAP,
  a 1 x K filter, 1 channel and N filters: an (M x K) by (K x N) product of M*N*K MACs. hwsim makes it a
  fully_connected op: input [M, K], weights [N, K], output [M, N].

SCALE-Sim's layers are independent (each row states its own IFMAP, and consecutive rows need not chain), so
each op reads its own graph input ``<layer>/ifmap`` and writes a graph output ``<layer>/ofmap``.
Tensors carry shapes and dtypes only; an N:M ratio is kept in ``attrs["sparsity"]`` while MAC counts stay
dense, as SCALE-Sim's topology MAC count is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from hwsim.config.textfile import read_text
from hwsim.config.yamlio import format_loc, show
from hwsim.errors import ConfigError
from hwsim.importers.precision import DEFAULT_PRECISION, dtype_for_bits
from hwsim.workload.graph import Graph, Op, Tensor

CONV_COLUMNS = (
    "Layer name",
    "IFMAP Height",
    "IFMAP Width",
    "Filter Height",
    "Filter Width",
    "Channels",
    "Num Filter",
    "Strides",
)
GEMM_COLUMNS = ("Layer", "M", "N", "K")


def load_scalesim_topology(
    path: str | Path,
    *,
    input_type: Literal["conv", "gemm"] | None = None,
    precision: Mapping[str, int] | None = None,
) -> Graph:
    """Parse a SCALE-Sim topology file; ``input_type`` overrides the form read from the header.

    ``precision`` gives bits per role (``weights``, ``activations``, ``accumulator``; default 8, 8, 32),
    as SCALE-Sim's topology has none.
    """
    path = Path(path)
    bits = _precision(precision)
    text = read_text(path)
    lines = text.splitlines()
    if input_type is None:
        input_type = _form(path, lines[0] if lines else "")
    elif input_type not in ("conv", "gemm"):
        raise ConfigError(f"input_type: expected 'conv' or 'gemm' (got {show(input_type)})")
    row = _conv_row if input_type == "conv" else _gemm_row
    tensors: dict[str, Tensor] = {}
    ops: list[Op] = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = _fields(line)
        name = fields[0]
        if not name:
            column = _columns(input_type)[0]
            raise ConfigError(f"{path}:{number}: {column}: expected a layer name (got {show(line)})")
        op_name = name if name not in {op.name for op in ops} else f"{name}#{number}"
        kind, x_shape, w_shape, y_shape, attrs = row(_Row(path, number, line, fields))
        attrs["precision"] = dict(bits)
        names = [f"{op_name}/ifmap", f"{op_name}/weights", f"{op_name}/ofmap"]
        roles = ("activations", "weights", "activations")
        for tname, shape, role in zip(names, (x_shape, w_shape, y_shape), roles, strict=True):
            tensors[tname] = Tensor(
                tname, shape, dtype_for_bits(bits[role]), role="weight" if role == "weights" else ""
            )
        ops.append(Op(op_name, kind, names[:2], names[2:], attrs))
    if not ops:
        raise ConfigError(f"{path}:1: the topology has no layer rows after its header")
    graph = Graph(
        tensors,
        ops,
        [op.inputs[0] for op in ops],
        [op.outputs[0] for op in ops],
        str(path),
        f"scalesim-{input_type}",
    )
    graph.check()
    return graph


def _precision(precision: Mapping[str, int] | None) -> dict[str, int]:
    if precision is None:
        return dict(DEFAULT_PRECISION)
    from pydantic import ValidationError  # only for a precision given in code: a run imports no pydantic

    from hwsim.importers.yaml_layers import PrecisionSpec

    try:
        return PrecisionSpec.model_validate(dict(precision)).resolve(DEFAULT_PRECISION)
    except ValidationError as exc:
        err = exc.errors()[0]
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = "unknown role; expected weights, activations or accumulator"
        where = format_loc(("precision", *err["loc"]))
        raise ConfigError(f"{where}: {message} (got {show(err['input'])})") from None


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().lower())


def _form(path: Path, header: str) -> str:
    cols = [_norm(c) for c in _fields(header)]
    if cols[1:4] == ["m", "n", "k"]:
        return "gemm"
    if len(cols) > 1 and cols[1] == "ifmap height":
        return "conv"
    raise ConfigError(
        f"{path}:1: header: expected SCALE-Sim's conv columns '{', '.join(CONV_COLUMNS)},' or "
        f"GEMM columns '{', '.join(GEMM_COLUMNS)},' (or pass input_type='conv'/'gemm') "
        f"(got {show(header)})"
    )


def _fields(line: str) -> list[str]:
    """Comma-separated fields; the text after the last comma (empty, or a note such as ``#dw``) is dropped."""
    parts = line.strip().split(",")
    if len(parts) > 1 and (not parts[-1].strip() or parts[-1].strip().startswith("#")):
        parts = parts[:-1]
    return [p.strip() for p in parts]


def _columns(input_type: str) -> tuple[str, ...]:
    return CONV_COLUMNS if input_type == "conv" else GEMM_COLUMNS


class _Row:
    """One data row with its location, for errors that read ``path:line: column: message (got value)``."""

    def __init__(self, path: Path, number: int, line: str, fields: list[str]):
        self.path, self.number, self.line, self.fields = path, number, line, fields

    def error(self, column: str, message: str, got) -> ConfigError:
        return ConfigError(f"{self.path}:{self.number}: {column}: {message} (got {show(got)})")

    def count(self, columns: tuple[str, ...], extra: int) -> None:
        if len(self.fields) < len(columns):
            missing = columns[len(self.fields)]
            raise self.error(
                missing, f"missing; a row gives {', '.join(columns)}, then a comma", self.line.strip()
            )
        if len(self.fields) > len(columns) + extra:
            raise self.error(
                f"column {len(columns) + extra + 1}",
                "unexpected extra column",
                self.fields[len(columns) + extra],
            )

    def positive(self, index: int, column: str) -> int:
        text = self.fields[index]
        if not re.fullmatch(r"[0-9]+", text) or int(text) < 1:
            raise self.error(column, "expected a positive integer", text)
        return int(text)

    def sparsity(self, index: int) -> tuple[int, int]:
        text = self.fields[index]
        match = re.fullmatch(r"\s*([0-9]+)\s*:\s*([0-9]+)\s*", text)
        if not match or not 1 <= int(match[1]) <= int(match[2]):
            raise self.error("Sparsity", "expected an N:M ratio with 1 <= N <= M", text)
        return int(match[1]), int(match[2])


def _conv_row(row: _Row):
    row.count(CONV_COLUMNS, 2)
    h, w, fh, fw, c, nf, sh = (row.positive(i, col) for i, col in enumerate(CONV_COLUMNS[1:], start=1))
    sw, sparsity = sh, None
    if len(row.fields) > 8:
        if ":" in row.fields[8]:
            if len(row.fields) > 9:
                raise row.error("column 10", "unexpected extra column after Sparsity", row.fields[9])
            sparsity = row.sparsity(8)
        else:
            sw = row.positive(8, "Stride Width")
            if len(row.fields) > 9:
                sparsity = row.sparsity(9)
    if fh > h:
        raise row.error("Filter Height", f"larger than the IFMAP Height ({h})", fh)
    if fw > w:
        raise row.error("Filter Width", f"larger than the IFMAP Width ({w})", fw)
    # SCALE-Sim: ofmap = ceil((ifmap - filter + stride) / stride), one more row than VALID when the stride
    # does not divide (ifmap - filter); that last window reads past the IFMAP (operand_matrix marks those
    # addresses as padding), so hwsim records it as padding at the bottom/right.
    oh, ow = -(-(h - fh + sh) // sh), -(-(w - fw + sw) // sw)
    pad_bottom, pad_right = (oh - 1) * sh + fh - h, (ow - 1) * sw + fw - w
    padding = (0, pad_bottom, 0, pad_right) if pad_bottom or pad_right else "valid"
    attrs = {
        "layout": "NHWC",
        "stride": (sh, sw),
        "dilation": (1, 1),
        "padding": padding,
        "activation": None,
        "kernel": (fh, fw),
        "in_channels": c,
    }
    if sparsity is not None:
        attrs["sparsity"] = sparsity
    if "DP" in row.fields[0]:  # SCALE-Sim's depthwise marker: one single-channel conv per input channel
        attrs["depth_multiplier"] = nf
        return "depthwise_conv2d", (1, h, w, c), (1, fh, fw, c * nf), (1, oh, ow, c * nf), attrs
    attrs["groups"] = 1
    return "conv2d", (1, h, w, c), (nf, fh, fw, c), (1, oh, ow, nf), attrs


def _gemm_row(row: _Row):
    row.count(GEMM_COLUMNS, 1)
    m, n, k = (row.positive(i, col) for i, col in enumerate(GEMM_COLUMNS[1:], start=1))
    attrs: dict = {"activation": None, "keep_num_dims": False}
    if len(row.fields) > 4:
        attrs["sparsity"] = row.sparsity(4)
    return "fully_connected", (m, k), (n, k), (m, n), attrs
