"""SCALE-Sim topology CSVs (conv and GEMM forms): shapes, MAC counts equal to SCALE-Sim's, and every error."""

import math
import re

import numpy as np
import pytest

from hwsim.errors import ConfigError
from hwsim.importers import load_model
from hwsim.importers.scalesim_csv import load_scalesim_topology
from hwsim.importers.yaml_layers import load_layers_yaml
from hwsim.numerics.ops import conv_geometry
from hwsim.paths import data_dir
from hwsim.workload.opdefs import loop_dims, mac_count

RESNET18 = data_dir("workloads") / "scalesim_resnet18.csv"
CONV = "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
GEMM = "Layer, M, N, K,\n"


def _write(tmp_path, text: str, name: str = "t.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def _raises(tmp_path, text: str, message: str, **kwargs):
    """Assert loading ``text`` fails with ``path:`` + ``message`` (a literal, not a regex)."""
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError, match="^" + re.escape(f"{path}:{message}")):
        load_scalesim_topology(path, **kwargs)


def _scalesim_macs(text: str) -> list[int]:
    """SCALE-Sim's own count (topology_utils.topo_calc_hyperparams), transcribed for conv rows."""
    macs = []
    for row in text.splitlines()[1:]:
        if row.strip():
            h, w, fh, fw, c, nf, s = (int(v) for v in row.split(",")[:-1][1:8])
            oh, ow = math.ceil((h - fh + s) / s), math.ceil((w - fw + s) / s)
            macs.append(oh * ow * fh * fw * c * nf)
    return macs


# ---- the shipped topology ----------------------------------------------------------------------------------


def test_resnet18_macs_equal_scalesims():
    """Every layer of the shipped ResNet-18 topology has SCALE-Sim's MAC count; the total is 1,471,181,568."""
    graph = load_scalesim_topology(RESNET18)
    assert [mac_count(graph, op) for op in graph.ops] == _scalesim_macs(RESNET18.read_text())
    assert graph.mac_count() == 1_471_181_568
    assert len(graph.ops) == 21 and graph.format == "scalesim-conv"


def test_resnet18_loop_dims_by_hand():
    """Loop dims of three rows, by hand: ceil((224 - 7 + 2) / 2) = 110; a 1x1/2 on 56 gives 29; FC is 1x1."""
    graph = load_scalesim_topology(RESNET18)
    ops = {op.name: op for op in graph.ops}
    assert loop_dims(graph, ops["Conv1"]) == {
        "B": 1,
        "G": 1,
        "K": 64,
        "C": 3,
        "OY": 110,
        "OX": 110,
        "FY": 7,
        "FX": 7,
    }
    assert loop_dims(graph, ops["Conv3_s"]) == {
        "B": 1,
        "G": 1,
        "K": 128,
        "C": 64,
        "OY": 29,
        "OX": 29,
        "FY": 1,
        "FX": 1,
    }
    assert loop_dims(graph, ops["FC"]) == {
        "B": 1,
        "G": 1,
        "K": 1000,
        "C": 512,
        "OY": 1,
        "OX": 1,
        "FY": 1,
        "FX": 1,
    }


def test_ceil_mode_rows_carry_bottom_right_padding():
    """Where SCALE-Sim's ceil output exceeds VALID, attrs hold (0, 1, 0, 1); the kernels' geometry agrees."""
    graph = load_scalesim_topology(RESNET18)
    ops = {op.name: op for op in graph.ops}
    assert ops["Conv1"].attrs["padding"] == (0, 1, 0, 1) and ops["Conv2_1a"].attrs["padding"] == "valid"
    for op in graph.ops:
        x, y = graph.tensor(op.inputs[0]).shape, graph.tensor(op.outputs[0]).shape
        geo = conv_geometry(x[1:3], op.attrs["kernel"], op.attrs["stride"], op.attrs["padding"])
        assert geo.out_hw == y[1:3], op.name


def test_layers_are_independent_inputs_and_outputs():
    """Each row reads its own graph input and writes its own graph output; weights have shapes, no data."""
    graph = load_scalesim_topology(RESNET18)
    op = graph.ops[0]
    assert op.inputs == ["Conv1/ifmap", "Conv1/weights"] and op.outputs == ["Conv1/ofmap"]
    assert graph.inputs[:2] == ["Conv1/ifmap", "Conv2_1a/ifmap"] and len(graph.outputs) == 21
    assert graph.tensor("Conv1/ifmap").shape == (1, 224, 224, 3)
    assert graph.tensor("Conv1/weights").shape == (64, 7, 7, 3)
    assert all(t.data is None and t.quant is None and t.dtype == np.int8 for t in graph.tensors.values())
    assert op.attrs == {
        "layout": "NHWC",
        "stride": (2, 2),
        "dilation": (1, 1),
        "padding": (0, 1, 0, 1),
        "activation": None,
        "kernel": (7, 7),
        "in_channels": 3,
        "groups": 1,
        "precision": {"weights": 8, "activations": 8, "accumulator": 32},
    }


def test_load_model_dispatches_csv(tmp_path):
    """load_model reads a .csv file as a SCALE-Sim topology."""
    assert load_model(RESNET18).mac_count() == 1_471_181_568


# ---- conv form ---------------------------------------------------------------------------------------------


def test_scalesim_test_csv_row(tmp_path):
    """SCALE-Sim's own test.csv row (Inc5b_3x3) is a 5x5x384 VALID conv of 16,588,800 MACs."""
    path = _write(tmp_path, CONV + "Inc5b_3x3, 7, 7, 3, 3, 192, 384, 1,\n")
    graph = load_scalesim_topology(path)
    assert graph.tensor("Inc5b_3x3/ofmap").shape == (1, 5, 5, 384)
    assert graph.mac_count() == 5 * 5 * 3 * 3 * 192 * 384 == 16_588_800


def test_same_layer_in_yaml_and_scalesim_agree(tmp_path):
    """A VALID conv written in the YAML format and in SCALE-Sim's has the same loop dims and weight shape."""
    csv = _write(tmp_path, CONV + "L, 7, 7, 3, 3, 192, 384, 1,\n")
    yml = _write(
        tmp_path,
        "schema_version: 1\nname: t\ninput: {shape: [1, 7, 7, 192]}\nlayers:\n"
        "  - {name: L, op: conv2d, out_channels: 384, kernel: 3, bias: false}\n",
        "t.yaml",
    )
    a, b = load_scalesim_topology(csv), load_layers_yaml(yml)
    assert loop_dims(a, a.ops[0]) == loop_dims(b, b.ops[0])
    assert a.tensor("L/weights").shape == b.tensor("L/weights").shape


def test_dp_rows_are_depthwise(tmp_path):
    """A name containing 'DP' is depthwise: Channels one-channel convs of Num Filter filters each."""
    path = _write(tmp_path, CONV + "Conv2_DP, 112, 112, 3, 3, 32, 2, 1,\n")
    graph = load_scalesim_topology(path)
    op = graph.ops[0]
    assert op.kind == "depthwise_conv2d"
    assert op.attrs["depth_multiplier"] == 2 and op.attrs["in_channels"] == 32
    assert graph.tensor("Conv2_DP/weights").shape == (1, 3, 3, 64)
    # SCALE-Sim: 32 layers of ofmap 110x110 x 3x3 x 1 channel x 2 filters
    assert graph.mac_count() == 32 * (110 * 110 * 3 * 3 * 1 * 2)


def test_notes_blank_lines_and_indentation_are_ignored(tmp_path):
    """Text after the last comma (SCALE-Sim's '#dw' notes), blank lines and leading tabs are ignored."""
    path = _write(
        tmp_path, CONV + "\nConv2_dw, 112, 112, 3, 3, 1, 1, 1,#dw\n\n\tConv3, 112, 112, 1, 1, 32, 64, 1,\n"
    )
    graph = load_scalesim_topology(path)
    assert [op.name for op in graph.ops] == ["Conv2_dw", "Conv3"]
    assert graph.ops[0].kind == "conv2d"  # lowercase 'dw' is not SCALE-Sim's depthwise marker
    assert graph.mac_count() == 110 * 110 * 9 + 112 * 112 * 32 * 64


def test_row_without_trailing_comma_keeps_its_last_column(tmp_path):
    """A row missing the trailing comma still reads its stride (SCALE-Sim would drop that column)."""
    path = _write(tmp_path, CONV + "C, 9, 9, 3, 3, 2, 4, 2\n")
    assert load_scalesim_topology(path).ops[0].attrs["stride"] == (2, 2)


def test_ninth_column_stride_width_or_sparsity(tmp_path):
    """A ninth integer column is the stride width; an N:M ninth (or tenth) column is a sparsity ratio."""
    path = _write(
        tmp_path,
        CONV + "A, 9, 9, 3, 3, 2, 4, 2, 1,\nB, 5, 5, 3, 3, 2, 6, 1, 2:4,\nC, 9, 9, 3, 3, 2, 4, 2, 1, 1:2,\n",
    )
    graph = load_scalesim_topology(path)
    a, b, c = graph.ops
    assert a.attrs["stride"] == (2, 1) and graph.tensor("A/ofmap").shape == (1, 4, 7, 4)
    assert b.attrs["sparsity"] == (2, 4) and "sparsity" not in a.attrs and c.attrs["sparsity"] == (1, 2)
    assert mac_count(graph, b) == 3 * 3 * 3 * 3 * 2 * 6  # dense, as SCALE-Sim's topology MAC count


def test_duplicate_names_get_their_line(tmp_path):
    """A repeated layer name gets '#<line>' so tensor names stay unique."""
    path = _write(tmp_path, CONV + "X, 5, 5, 1, 1, 1, 1, 1,\nX, 5, 5, 1, 1, 1, 1, 1,\n")
    assert [op.name for op in load_scalesim_topology(path).ops] == ["X", "X#3"]


def test_precision_argument_sets_dtypes_and_attrs(tmp_path):
    """precision= sets each role's bits in attrs and the tensors' dtypes."""
    path = _write(tmp_path, CONV + "X, 5, 5, 1, 1, 1, 1, 1,\n")
    graph = load_scalesim_topology(path, precision={"weights": 4, "activations": 16})
    assert graph.ops[0].attrs["precision"] == {"weights": 4, "activations": 16, "accumulator": 32}
    assert graph.tensor("X/weights").dtype == np.int8 and graph.tensor("X/ofmap").dtype == np.int16


def test_input_type_overrides_the_header(tmp_path):
    """input_type='conv' reads a file whose header hwsim does not recognise, as SCALE-Sim's -i switch does."""
    path = _write(tmp_path, "name,h,w,fh,fw,c,k,s,\nX, 5, 5, 1, 1, 2, 3, 1,\n")
    assert load_scalesim_topology(path, input_type="conv").mac_count() == 25 * 2 * 3


def test_round_trip_through_scalesim_columns(tmp_path):
    """Writing each op's SCALE-Sim columns back out and reading them again reproduces the graph."""
    graph = load_scalesim_topology(RESNET18)
    rows = [CONV]
    for op in graph.ops:
        _, h, w, c = graph.tensor(op.inputs[0]).shape
        k = graph.tensor(op.outputs[0]).shape[3]
        rows.append(
            f"{op.name},{h},{w},{op.attrs['kernel'][0]},{op.attrs['kernel'][1]},{c},{k},"
            f"{op.attrs['stride'][0]},\n"
        )
    text = "".join(rows)
    assert text.splitlines()[1:] == RESNET18.read_text().splitlines()[1:]
    again = load_scalesim_topology(_write(tmp_path, text))
    assert [(op.name, op.attrs) for op in again.ops] == [(op.name, op.attrs) for op in graph.ops]


# ---- GEMM form ---------------------------------------------------------------------------------------------


def test_gemm_rows_are_fully_connected(tmp_path):
    """M, N, K is [M, K] x weights [N, K] -> [M, N], M*N*K MACs (SCALE-Sim: M x K IFMAP, N 1xK filters)."""
    path = _write(tmp_path, "Layer Name, M, N, K,\nTest 1, 256, 128, 64,")
    graph = load_scalesim_topology(path)
    op = graph.ops[0]
    assert graph.format == "scalesim-gemm" and op.kind == "fully_connected"
    assert graph.tensor("Test 1/ifmap").shape == (256, 64)
    assert graph.tensor("Test 1/weights").shape == (128, 64)
    assert graph.tensor("Test 1/ofmap").shape == (256, 128)
    assert loop_dims(graph, op) == {"B": 256, "K": 128, "C": 64}
    assert graph.mac_count() == 256 * 128 * 64


def test_gemm_header_without_trailing_comma_and_sparsity(tmp_path):
    """GEMM headers with or without spacing and trailing comma are recognised; a Sparsity column is kept."""
    plain = _write(tmp_path, "Layer,M,N,K\nQKT,1024,1024,64\n", "a.csv")
    sparse = _write(tmp_path, "Layer Name, M, N, K, Sparsity,\nGEMM_1, 3, 5, 16, 3:4,\n", "b.csv")
    assert load_scalesim_topology(plain).mac_count() == 1024 * 1024 * 64
    assert load_scalesim_topology(sparse).ops[0].attrs["sparsity"] == (3, 4)


# ---- one test per error message ----------------------------------------------------------------------------


def test_error_not_a_positive_integer(tmp_path):
    """A fractional filter height names the line and the column."""
    _raises(
        tmp_path,
        CONV + "C, 9, 9, 3.5, 3, 2, 4, 2,\n",
        "2: Filter Height: expected a positive integer (got '3.5')",
    )


def test_error_zero_is_not_positive(tmp_path):
    """Zero channels are refused."""
    _raises(
        tmp_path,
        CONV + "A, 9, 9, 3, 3, 2, 4, 1,\nC, 9, 9, 3, 3, 0, 4, 2,\n",
        "3: Channels: expected a positive integer (got '0')",
    )


def test_error_gemm_negative(tmp_path):
    """A negative GEMM dimension names its column."""
    _raises(tmp_path, GEMM + "x, 4, -1, 3,\n", "2: N: expected a positive integer (got '-1')")


def test_error_missing_column(tmp_path):
    """A row one column short names the first missing column and shows the row."""
    _raises(
        tmp_path,
        CONV + "C, 9, 9, 3, 3, 2, 4,\n",
        "2: Strides: missing; a row gives Layer name, IFMAP Height, IFMAP Width, Filter Height, "
        "Filter Width, Channels, Num Filter, Strides, then a comma (got 'C, 9, 9, 3, 3, 2, 4,')",
    )


def test_error_extra_column(tmp_path):
    """A column beyond stride width and sparsity is refused."""
    _raises(
        tmp_path,
        CONV + "C, 9, 9, 3, 3, 2, 4, 1, 1, 1:2, 7,\n",
        "2: column 11: unexpected extra column (got '7')",
    )


def test_error_extra_column_after_sparsity(tmp_path):
    """A column after a ninth-column sparsity ratio is refused."""
    _raises(
        tmp_path,
        CONV + "C, 9, 9, 3, 3, 2, 4, 1, 1:2, 7,\n",
        "2: column 10: unexpected extra column after Sparsity (got '7')",
    )


def test_error_filter_taller_than_ifmap(tmp_path):
    """A filter taller than the IFMAP is refused, as SCALE-Sim asserts."""
    _raises(
        tmp_path,
        CONV + "C, 9, 9, 11, 3, 2, 4, 1,\n",
        "2: Filter Height: larger than the IFMAP Height (9) (got 11)",
    )


def test_error_filter_wider_than_ifmap(tmp_path):
    """A filter wider than the IFMAP is refused, as SCALE-Sim asserts."""
    _raises(
        tmp_path,
        CONV + "C, 9, 9, 3, 11, 2, 4, 1,\n",
        "2: Filter Width: larger than the IFMAP Width (9) (got 11)",
    )


def test_error_bad_sparsity(tmp_path):
    """A sparsity ratio with N > M is refused."""
    _raises(
        tmp_path,
        CONV + "C, 9, 9, 3, 3, 2, 4, 1, 3:2,\n",
        "2: Sparsity: expected an N:M ratio with 1 <= N <= M (got '3:2')",
    )


def test_error_unknown_header(tmp_path):
    """A header of neither form says which columns are expected and how to override."""
    _raises(
        tmp_path,
        "a,b,c\nC, 9, 9, 3, 3, 2, 4, 1,\n",
        "1: header: expected SCALE-Sim's conv columns 'Layer name, IFMAP Height, IFMAP Width, "
        "Filter Height, Filter Width, Channels, Num Filter, Strides,' or GEMM columns 'Layer, M, N, K,' "
        "(or pass input_type='conv'/'gemm') (got 'a,b,c')",
    )


def test_error_no_rows(tmp_path):
    """A header without rows is refused."""
    _raises(tmp_path, CONV, "1: the topology has no layer rows after its header")


def test_error_empty_layer_name(tmp_path):
    """A row without a layer name is refused."""
    _raises(
        tmp_path,
        CONV + ", 9, 9, 3, 3, 2, 4, 1,\n",
        "2: Layer name: expected a layer name (got ', 9, 9, 3, 3, 2, 4, 1,')",
    )


def test_error_bad_precision_argument(tmp_path):
    """An unknown precision role is refused, naming the argument."""
    path = _write(tmp_path, CONV + "X, 5, 5, 1, 1, 1, 1, 1,\n")
    expected = "precision.acc: unknown role; expected weights, activations or accumulator (got 3)"
    with pytest.raises(ConfigError, match=re.escape(expected)):
        load_scalesim_topology(path, precision={"acc": 3})


def test_error_bad_input_type(tmp_path):
    """An input_type other than 'conv' or 'gemm' is refused."""
    path = _write(tmp_path, CONV + "X, 5, 5, 1, 1, 1, 1, 1,\n")
    with pytest.raises(ConfigError, match=re.escape("input_type: expected 'conv' or 'gemm' (got 'mnk')")):
        load_scalesim_topology(path, input_type="mnk")


def test_error_unreadable_file(tmp_path):
    """A missing file is a ConfigError naming it."""
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_scalesim_topology(tmp_path / "absent.csv")
