"""The native YAML layer format: shipped workloads, shape inference, attrs, and every error message."""

import math
import re
import shutil
from dataclasses import replace

import numpy as np
import pytest
import yaml

from hwsim.errors import ConfigError
from hwsim.importers import load_model
from hwsim.importers.yaml_layers import LayersFileSpec, load_layers_yaml
from hwsim.numerics.ops import conv_geometry
from hwsim.paths import data_dir
from hwsim.workload.opdefs import loop_dims, mac_count

WORKLOADS = data_dir("workloads")
# layers start on line 5
HEAD = "schema_version: 1\nname: t\ninput: {shape: [1, 8, 8, 4], dtype: int8}\nlayers:\n"


def _ops(graph):
    return {op.name: op for op in graph.ops}


def _raises(tmp_path, text: str, message: str, name: str = "w.yaml"):
    """Assert loading ``text`` fails with ``path:`` + ``message`` (a literal, not a regex)."""
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ConfigError, match="^" + re.escape(f"{path}:{message}")):
        load_layers_yaml(path)


# ---- shipped workloads -------------------------------------------------------------------------------------


def test_mobilenet_v2_mac_count_matches_the_paper():
    """MobileNetV2 1.0/224 counts 300,774,272 MACs, within 0.3% of the paper's 300M multiply-adds."""
    graph = load_layers_yaml(WORKLOADS / "mobilenet_v2_224.yaml")
    assert graph.mac_count() == 300_774_272
    assert abs(graph.mac_count() / 300e6 - 1) < 0.003


def test_mobilenet_v2_structure_and_parameter_count():
    """17 bottlenecks (17 depthwise convs, 10 residual adds), and Keras' parameter count minus batch norm."""
    graph = load_layers_yaml(WORKLOADS / "mobilenet_v2_224.yaml")
    kinds = [op.kind for op in graph.ops]
    assert kinds.count("depthwise_conv2d") == 17 and kinds.count("add") == 10 and len(graph.ops) == 64
    assert graph.inputs == ["input"] and graph.outputs == ["logits"]
    assert graph.tensor("logits").shape == (1, 1000)
    params = sum(math.prod(t.shape) for n, t in graph.tensors.items() if n.endswith(("/weights", "/bias")))
    # Keras' MobileNetV2 has 3,538,984 parameters; folding each batch norm's 4 per-channel values into one
    # bias removes 3 x 17,056 of them.
    assert params == 3_538_984 - 3 * 17_056 == 3_487_816


def test_mobilenet_v2_loop_dims_by_hand():
    """Loop dimensions of four layers, worked out by hand from the paper's table."""
    graph = load_layers_yaml(WORKLOADS / "mobilenet_v2_224.yaml")
    ops = _ops(graph)
    # 3x3 stride-2 SAME conv: 224 -> 112, 3 -> 32 channels
    assert loop_dims(graph, ops["conv1"]) == {
        "B": 1,
        "G": 1,
        "K": 32,
        "C": 3,
        "OY": 112,
        "OX": 112,
        "FY": 3,
        "FX": 3,
    }
    # second stage's first block: expand 16 -> 96, depthwise stride 2: 112 -> 56
    assert loop_dims(graph, ops["b2_dw"]) == {"B": 1, "K": 96, "C": 1, "OY": 56, "OX": 56, "FY": 3, "FX": 3}
    assert mac_count(graph, ops["b2_dw"]) == 96 * 56 * 56 * 9
    # last bottleneck: 160 * 6 = 960 channels projected to 320 at 7x7
    assert loop_dims(graph, ops["b17_project"]) == {
        "B": 1,
        "G": 1,
        "K": 320,
        "C": 960,
        "OY": 7,
        "OX": 7,
        "FY": 1,
        "FX": 1,
    }
    assert loop_dims(graph, ops["logits"]) == {"B": 1, "K": 1000, "C": 1280}


def test_mobilenet_v2_residual_adds_join_block_outputs():
    """A residual add reads the previous block's output and its own projection, of equal shapes."""
    graph = load_layers_yaml(WORKLOADS / "mobilenet_v2_224.yaml")
    add = _ops(graph)["b3_add"]
    assert add.inputs == ["b2_project", "b3_project"]
    assert graph.tensor("b2_project").shape == graph.tensor("b3_project").shape == (1, 56, 56, 24)


def test_tiny_shapes_macs_and_precision():
    """tiny.yaml: inferred NHWC shapes, 18,512 MACs, 4-bit depthwise weights stored in int8, int32 biases."""
    graph = load_layers_yaml(WORKLOADS / "tiny.yaml")
    shapes = [graph.tensor(op.outputs[0]).shape for op in graph.ops]
    assert shapes == [(1, 8, 8, 8), (1, 8, 8, 8), (1, 1, 1, 8), (1, 10)]
    assert [mac_count(graph, op) for op in graph.ops] == [13_824, 4_608, 0, 80]
    assert graph.mac_count() == 18_512
    ops = _ops(graph)
    assert ops["dw1"].attrs["precision"] == {"weights": 4, "activations": 8, "accumulator": 32}
    assert ops["conv1"].attrs["precision"] == {"weights": 8, "activations": 8, "accumulator": 32}
    assert graph.tensor("dw1/weights").shape == (1, 3, 3, 8) and graph.tensor("dw1/weights").dtype == np.int8
    assert graph.tensor("conv1/bias").dtype == np.int32 and graph.tensor("conv1").dtype == np.int8


def test_weights_have_shapes_and_no_data():
    """Every tensor has a shape and no data or quantization; weights are op inputs after the activations."""
    graph = load_layers_yaml(WORKLOADS / "tiny.yaml")
    assert all(t.data is None and t.quant is None for t in graph.tensors.values())
    assert _ops(graph)["conv1"].inputs == ["input", "conv1/weights", "conv1/bias"]
    assert graph.tensor("conv1/weights").shape == (8, 3, 3, 3)  # OHWI, as TFLite stores it
    assert graph.tensor("fc/weights").shape == (10, 8)


def test_attrs_match_the_tflite_importer():
    """Spatial ops carry the TFLite importer's attribute names and value types (tuples, 'same'/'valid')."""
    graph = load_layers_yaml(WORKLOADS / "tiny.yaml")
    ops = _ops(graph)
    assert ops["conv1"].attrs == {
        "layout": "NHWC",
        "stride": (2, 2),
        "dilation": (1, 1),
        "padding": "same",
        "activation": "relu6",
        "kernel": (3, 3),
        "groups": 1,
        "in_channels": 3,
        "precision": {"weights": 8, "activations": 8, "accumulator": 32},
    }
    assert set(ops["dw1"].attrs) == {
        "layout",
        "stride",
        "dilation",
        "padding",
        "depth_multiplier",
        "activation",
        "kernel",
        "in_channels",
        "precision",
    }
    assert ops["pool"].attrs["kernel"] == (8, 8) and ops["pool"].attrs["stride"] == (1, 1)
    assert ops["fc"].attrs["keep_num_dims"] is False and ops["fc"].attrs["activation"] is None


def test_output_shapes_agree_with_the_kernels_geometry():
    """For each window op of MobileNetV2, numerics' conv_geometry gives the inferred output size."""
    graph = load_layers_yaml(WORKLOADS / "mobilenet_v2_224.yaml")
    for op in graph.ops:
        if "kernel" in op.attrs:
            x, y = graph.tensor(op.inputs[0]).shape, graph.tensor(op.outputs[0]).shape
            geo = conv_geometry(
                x[1:3],
                op.attrs["kernel"],
                op.attrs["stride"],
                op.attrs["padding"],
                op.attrs.get("dilation", 1),
            )
            assert geo.out_hw == y[1:3], op.name


def test_load_model_dispatches_yaml_and_yml(tmp_path):
    """load_model reads .yaml and .yml files as layer descriptions."""
    copy = tmp_path / "tiny.yml"
    shutil.copy(WORKLOADS / "tiny.yaml", copy)
    assert load_model(WORKLOADS / "tiny.yaml").mac_count() == load_model(copy).mac_count() == 18_512
    assert load_model(copy).format == "hwsim-layers"


def test_unknown_suffix_lists_the_readable_formats(tmp_path):
    """load_model of an unknown suffix names every format it reads."""
    with pytest.raises(ConfigError, match=r"\.yaml/\.yml .* and \.csv"):
        load_model(tmp_path / "model.txt")


# ---- round trips and the remaining geometry ---------------------------------------------------------------


def test_validated_spec_round_trips_through_yaml(tmp_path):
    """Dumping the validated spec of MobileNetV2 to YAML and reading it back gives the same graph."""
    source = WORKLOADS / "mobilenet_v2_224.yaml"
    spec = LayersFileSpec.model_validate(yaml.safe_load(source.read_text()))
    copy = tmp_path / "copy.yaml"
    copy.write_text(yaml.safe_dump(spec.model_dump(mode="json", exclude_none=True), sort_keys=False))
    a, b = load_layers_yaml(source), load_layers_yaml(copy)

    def ops(graph):
        return [(op.name, op.kind, op.inputs, op.attrs) for op in graph.ops]

    assert ops(a) == ops(b)
    assert {n: (t.shape, t.dtype) for n, t in a.tensors.items()} == {
        n: (t.shape, t.dtype) for n, t in b.tensors.items()
    }


def test_block_and_flow_styles_give_the_same_graph(tmp_path):
    """A layer written in block style reads like the same layer in flow style."""
    flow, block = tmp_path / "flow.yaml", tmp_path / "block.yaml"
    flow.write_text(HEAD + "  - {name: c, op: conv2d, out_channels: 6, kernel: [3, 1], stride: [2, 1]}\n")
    block.write_text(
        HEAD + "  - name: c\n    op: conv2d\n    out_channels: 6\n    kernel: [3, 1]\n    stride: [2, 1]\n"
    )
    a, b = load_layers_yaml(flow), load_layers_yaml(block)
    assert a.ops[0].attrs == b.ops[0].attrs and a.tensor("c").shape == b.tensor("c").shape == (1, 3, 8, 6)


def test_explicit_padding_dilation_and_groups(tmp_path):
    """Explicit padding, dilation and groups shape the output and the loop dims as in TFLite."""
    path = tmp_path / "w.yaml"
    path.write_text(
        HEAD + "  - {name: c, op: conv2d, out_channels: 6, kernel: 3, padding: [1, 1, 0, 0],"
        " dilation: 2, groups: 2, bias: false}\n"
    )
    graph = load_layers_yaml(path)
    op = graph.ops[0]
    assert graph.tensor("c").shape == (1, 6, 4, 6)  # rows: 8 + 2 - 5 + 1, cols: 8 - 5 + 1
    assert op.inputs == ["input", "c/weights"] and graph.tensor("c/weights").shape == (6, 3, 3, 2)
    assert op.attrs["padding"] == (1, 1, 0, 0)
    assert loop_dims(graph, op) == {"B": 1, "G": 2, "K": 3, "C": 2, "OY": 6, "OX": 4, "FY": 3, "FX": 3}


def test_data_movement_ops_and_default_outputs(tmp_path):
    """Pooling, concat, reshape, batch_matmul and add infer shapes; unread layers become graph outputs."""
    path = tmp_path / "w.yaml"
    path.write_text(
        HEAD
        + """\
  - {name: mp, op: max_pool2d, kernel: 2}
  - {name: side, op: avg_pool2d, kernel: 3, stride: 1, padding: same, inputs: [input]}
  - {name: cat, op: concat, inputs: [input, side]}
  - {name: flat, op: reshape, shape: [1, 64, -1], inputs: [cat]}
  - {name: qk, op: batch_matmul, inputs: [flat, flat], adj_y: true}
  - {name: proj, op: batch_matmul, units: 5, inputs: [flat]}
  - {name: sum, op: add, inputs: [qk, qk], activation: relu}
"""
    )
    graph = load_layers_yaml(path)
    shapes = {op.name: graph.tensor(op.outputs[0]).shape for op in graph.ops}
    assert shapes == {
        "mp": (1, 4, 4, 4),
        "side": (1, 8, 8, 4),
        "cat": (1, 8, 8, 8),
        "flat": (1, 64, 8),
        "qk": (1, 64, 64),
        "proj": (1, 64, 5),
        "sum": (1, 64, 64),
    }
    ops = _ops(graph)
    assert ops["mp"].attrs["stride"] == (2, 2) and ops["cat"].attrs["axis"] == 3
    assert loop_dims(graph, ops["qk"]) == {"B": 1, "M": 64, "N": 64, "C": 8}
    assert graph.tensor("proj/weights").shape == (8, 5) and mac_count(graph, ops["proj"]) == 64 * 5 * 8
    assert graph.outputs == ["mp", "proj", "sum"]


def test_file_level_precision_is_the_default_of_each_layer(tmp_path):
    """A file-level precision sets each layer's bits; a layer's own precision overrides only what it names."""
    path = tmp_path / "w.yaml"
    path.write_text(
        HEAD.replace("layers:", "precision: {activations: 16}\nlayers:")
        + "  - {name: a, op: conv2d, out_channels: 4, kernel: 1}\n"
        "  - {name: b, op: fully_connected, units: 3,"
        " precision: {weights: 4, accumulator: 48}}\n"
    )
    graph = load_layers_yaml(path)
    ops = _ops(graph)
    assert ops["a"].attrs["precision"] == {"weights": 8, "activations": 16, "accumulator": 32}
    assert ops["b"].attrs["precision"] == {"weights": 4, "activations": 16, "accumulator": 48}
    assert graph.tensor("a").dtype == np.int16 and graph.tensor("b/bias").dtype == np.int64


# ---- one test per error message ----------------------------------------------------------------------------


def test_error_unknown_layer_key_suggests_the_closest(tmp_path):
    """A misspelt layer key is reported at its line with the closest valid key."""
    _raises(
        tmp_path,
        HEAD + "  - {name: c, op: conv2d, out_channels: 4, kernal: 3}\n",
        "5: layers[0].kernal: unknown key; did you mean 'kernel'? (got 3)",
    )


def test_error_unknown_top_level_key(tmp_path):
    """A misspelt top-level key is reported before the missing field it explains."""
    _raises(
        tmp_path,
        "schema_version: 1\nnmae: t\ninput: {shape: [1, 2]}\nlayers: [{name: a, op: reshape, shape: [2]}]\n",
        "2: nmae: unknown key; did you mean 'name'? (got 't')",
    )


def test_error_unknown_key_without_close_match_lists_the_valid_ones(tmp_path):
    """An unknown key that resembles nothing lists the valid keys of its mapping."""
    _raises(
        tmp_path,
        HEAD.replace("dtype: int8", "dtype: int8, zzz: 1") + "  - {name: a, op: add}\n",
        "3: input.zzz: unknown key; valid keys here: dtype, name, shape (got 1)",
    )


def test_error_unknown_precision_key(tmp_path):
    """A misspelt role inside a layer's precision names the nested path."""
    _raises(
        tmp_path,
        HEAD + "  - {name: c, op: conv2d, out_channels: 4, kernel: 1, precision: {wieghts: 4}}\n",
        "5: layers[0].precision.wieghts: unknown key; did you mean 'weights'? (got 4)",
    )


def test_error_unknown_op_suggests_the_closest(tmp_path):
    """An unknown op is reported with the closest op and the list of valid ones."""
    _raises(
        tmp_path,
        HEAD + "  - {name: c, op: conv2e, out_channels: 4, kernel: 3}\n",
        "5: layers[0].op: unknown op; did you mean 'conv2d'? valid ops: conv2d, depthwise_conv2d, ",
    )


def test_error_layer_without_op(tmp_path):
    """A layer without an op says every layer needs one."""
    _raises(tmp_path, HEAD + "  - {name: c, out_channels: 4}\n", "5: layers[0].op: every layer needs an op")


def test_error_missing_required_field(tmp_path):
    """A conv2d without out_channels names the missing field at the layer's line."""
    _raises(
        tmp_path,
        HEAD + "  - {name: c, op: conv2d, kernel: 3}\n",
        "5: layers[0].out_channels: required field is missing",
    )


def test_error_bad_kernel_points_at_its_own_line(tmp_path):
    """A three-element kernel in block style is reported on the kernel's line, not the layer's."""
    _raises(
        tmp_path,
        HEAD + "  - name: c\n    op: conv2d\n    out_channels: 4\n    kernel: [3, 3, 3]\n",
        "8: layers[0].kernel: expected a positive int or a list [height, width] of them (got [3, 3, 3])",
    )


def test_error_bad_padding(tmp_path):
    """An unknown padding word lists the accepted forms."""
    _raises(
        tmp_path,
        HEAD + "  - {name: c, op: conv2d, out_channels: 4, kernel: 3, padding: full}\n",
        "5: layers[0].padding: expected 'same', 'valid', a non-negative int or a list "
        "[top, bottom, left, right] of them (got 'full')",
    )


def test_error_non_integer_field(tmp_path):
    """A fractional channel count is refused (strict types: no silent rounding)."""
    _raises(
        tmp_path,
        HEAD + "  - {name: c, op: conv2d, out_channels: 4.5, kernel: 3}\n",
        "5: layers[0].out_channels: Input should be a valid integer (got 4.5)",
    )


def test_error_out_of_range_field(tmp_path):
    """A zero in the input shape is out of range."""
    _raises(
        tmp_path,
        "schema_version: 1\nname: t\ninput: {shape: [1, 0, 8, 4]}\nlayers: [{name: a, op: add}]\n",
        "3: input.shape[1]: Input should be greater than or equal to 1 (got 0)",
    )


def test_error_precision_bits_out_of_range(tmp_path):
    """Weights wider than 32 bits are refused."""
    _raises(
        tmp_path,
        HEAD + "  - {name: c, op: conv2d, out_channels: 4, kernel: 1, precision: {weights: 40}}\n",
        "5: layers[0].precision.weights: Input should be less than or equal to 32 (got 40)",
    )


def test_error_schema_version(tmp_path):
    """A file of another schema version is refused on its line."""
    _raises(
        tmp_path,
        "schema_version: 2\nname: t\ninput: {shape: [1]}\nlayers: []\n",
        "1: schema_version: Input should be 1 (got 2)",
    )


def test_error_empty_layer_list(tmp_path):
    """A file without layers is refused."""
    _raises(
        tmp_path,
        "schema_version: 1\nname: t\ninput: {shape: [1]}\nlayers: []\n",
        "4: layers: List should have at least 1 item after validation, not 0 (got [])",
    )


def test_error_top_level_not_a_mapping(tmp_path):
    """A YAML list at the top level says what the file should hold."""
    _raises(
        tmp_path,
        "- 1\n- 2\n",
        "1: (top level): expected a mapping with schema_version, name, input and layers (got a list)",
    )


def test_error_empty_file(tmp_path):
    """An empty file says what the file should hold."""
    _raises(
        tmp_path, "", "1: the file is empty; expected a mapping with schema_version, name, input and layers"
    )


def test_error_yaml_syntax(tmp_path):
    """A YAML syntax error keeps PyYAML's line and problem."""
    _raises(tmp_path, HEAD + "  - {name: c, op: conv2d\n", "6: not valid YAML: expected ',' or '}'")


def test_error_unreadable_file(tmp_path):
    """A missing file is a ConfigError naming it."""
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_layers_yaml(tmp_path / "absent.yaml")


def test_error_duplicate_key(tmp_path):
    """A key given twice in one mapping is refused (PyYAML alone would keep the last)."""
    _raises(
        tmp_path,
        HEAD + "  - name: c\n    op: conv2d\n    kernel: 3\n    kernel: 1\n",
        "8: layers[0].kernel: duplicate key, first given on line 7 (got 'kernel')",
    )


def test_error_duplicate_layer_name(tmp_path):
    """Two layers with one name are refused at the second."""
    _raises(
        tmp_path,
        HEAD + "  - {name: c, op: conv2d, out_channels: 4, kernel: 1}\n"
        "  - {name: c, op: conv2d, out_channels: 4, kernel: 1}\n",
        "6: layers[1].name: duplicate name, already used by layers[0] (got 'c')",
    )


def test_error_bad_layer_name(tmp_path):
    """A layer name with '/' (reserved for weight tensors) is refused."""
    _raises(
        tmp_path,
        HEAD + "  - {name: a/b, op: add, inputs: [input, input]}\n",
        "5: layers[0].name: expected a non-empty name without '/' or spaces (got 'a/b')",
    )


def test_error_unknown_input_reference(tmp_path):
    """An input naming no earlier layer points at that list item and suggests a close name."""
    _raises(
        tmp_path,
        HEAD + "  - {name: c, op: conv2d, out_channels: 4, kernel: 1}\n"
        "  - {name: d, op: add, inputs: [c, cc]}\n",
        "6: layers[1].inputs[1]: no earlier layer or input has this name; did you mean 'c'? (got 'cc')",
    )


def test_error_wrong_number_of_inputs(tmp_path):
    """An add with the default single input says it takes two."""
    _raises(
        tmp_path, HEAD + "  - {name: c, op: add}\n", "5: layers[0].inputs: add takes 2 inputs (got ['input'])"
    )


def test_error_window_does_not_fit(tmp_path):
    """A 9x9 VALID kernel on an 8x8 input is refused at the kernel."""
    _raises(
        tmp_path,
        HEAD + "  - {name: c, op: conv2d, out_channels: 4, kernel: 9}\n",
        "5: layers[0].kernel: the window does not fit the 8x8 input with this padding and dilation "
        "(output 0x0) (got [9, 9])",
    )


def test_error_groups_must_divide_channels(tmp_path):
    """Groups that do not divide the channel counts are refused."""
    _raises(
        tmp_path,
        HEAD + "  - {name: c, op: conv2d, out_channels: 4, kernel: 1, groups: 3}\n",
        "5: layers[0].groups: groups must divide the input channels (4) and out_channels (4) (got 3)",
    )


def test_error_spatial_op_needs_nhwc(tmp_path):
    """A conv after a fully connected layer needs a 4-D input."""
    _raises(
        tmp_path,
        HEAD + "  - {name: f, op: fully_connected, units: 4}\n"
        "  - {name: c, op: conv2d, out_channels: 4, kernel: 1}\n",
        "6: layers[1].inputs: conv2d needs a 4-D NHWC input; 'f' has shape [64, 4] (got 'f')",
    )


def test_error_add_shapes_do_not_broadcast(tmp_path):
    """Adding 4 and 5 channels is refused with both shapes."""
    _raises(
        tmp_path,
        HEAD + "  - {name: c, op: conv2d, out_channels: 5, kernel: 1}\n"
        "  - {name: a, op: add, inputs: [input, c]}\n",
        "6: layers[1].inputs: shapes [1, 8, 8, 4] and [1, 8, 8, 5] do not broadcast (got ['input', 'c'])",
    )


def test_error_reshape_element_count(tmp_path):
    """A reshape to a different element count is refused."""
    _raises(
        tmp_path,
        HEAD + "  - {name: r, op: reshape, shape: [1, 7]}\n",
        "5: layers[0].shape: holds 7 elements, the input [1, 8, 8, 4] has 256 (got [1, 7])",
    )


def test_error_reshape_two_wildcards(tmp_path):
    """A reshape with two -1 entries is refused."""
    _raises(
        tmp_path,
        HEAD + "  - {name: r, op: reshape, shape: [-1, -1]}\n",
        "5: layers[0].shape: expected positive sizes and at most one -1 (got [-1, -1])",
    )


def test_error_reshape_wildcard_does_not_divide(tmp_path):
    """A -1 that cannot make the element count match is refused."""
    _raises(
        tmp_path,
        HEAD + "  - {name: r, op: reshape, shape: [3, -1]}\n",
        "5: layers[0].shape: cannot hold the 256 elements of [1, 8, 8, 4] (got [3, -1])",
    )


def test_error_concat_shapes(tmp_path):
    """Concatenating maps of different sizes is refused."""
    _raises(
        tmp_path,
        HEAD + "  - {name: c, op: conv2d, out_channels: 5, kernel: 3}\n"
        "  - {name: a, op: concat, inputs: [input, c]}\n",
        "6: layers[1].inputs: shapes must match except along axis 3: [1, 8, 8, 4] and [1, 6, 6, 5] "
        "(got ['input', 'c'])",
    )


def test_error_concat_axis(tmp_path):
    """A concat axis beyond the rank is refused."""
    _raises(
        tmp_path,
        HEAD + "  - {name: a, op: concat, inputs: [input, input], axis: 4}\n",
        "5: layers[0].axis: expected an axis of the rank-4 inputs (got 4)",
    )


def test_error_pool_needs_kernel_or_global(tmp_path):
    """A pool with neither kernel nor global_pool is refused."""
    _raises(
        tmp_path,
        HEAD + "  - {name: p, op: max_pool2d}\n",
        "5: layers[0]: give either kernel or global_pool: true (not both, not neither)",
    )


def test_error_global_pool_takes_no_stride(tmp_path):
    """A global pool with a stride is refused."""
    _raises(
        tmp_path,
        HEAD + "  - {name: p, op: avg_pool2d, global_pool: true, stride: 2}\n",
        "5: layers[0]: a global pool takes no stride or padding",
    )


def test_error_batch_matmul_inner_dimensions(tmp_path):
    """A batch_matmul whose inner dimensions differ is refused."""
    _raises(
        tmp_path,
        HEAD + "  - {name: m, op: batch_matmul, inputs: [input, input]}\n",
        "5: layers[0].inputs: the inner dimensions differ: A[1, 8, 8, 4] gives depth 4, "
        "B[1, 8, 8, 4] gives 8",
    )


def test_error_batch_matmul_rank(tmp_path):
    """A batch_matmul of a vector is refused."""
    _raises(
        tmp_path,
        HEAD + "  - {name: r, op: reshape, shape: [256]}\n  - {name: m, op: batch_matmul, units: 2}\n",
        "6: layers[1].inputs: batch_matmul needs inputs of rank 2 or more; 'r' has shape [256] (got 'r')",
    )


def test_error_batch_matmul_batch_dims(tmp_path):
    """Batch dimensions that do not broadcast are refused."""
    _raises(
        tmp_path,
        HEAD + "  - {name: r, op: reshape, shape: [2, 4, 32]}\n"
        "  - {name: m, op: batch_matmul, inputs: [input, r]}\n",
        "6: layers[1].inputs: the batch dimensions [1, 8] and [2] do not broadcast (got ['input', 'r'])",
    )


# ---- the ops a converted network needs, and writing a graph back as a layer file
# ------------------------------

NETWORK_OPS = (
    HEAD
    + """\
  - {name: bn, op: mul, constant: [4], activation: relu}
  - {name: shift, op: sub, constant: [1, 1, 1, 4]}
  - {name: act, op: relu6}
  - {name: padded, op: pad, padding: [1, 0, 2, 1]}
  - {name: up, op: transpose_conv2d, out_channels: 6, kernel: 3, stride: 2, inputs: [act]}
  - {name: big, op: resize_bilinear, size: [20, 24], inputs: [up]}
  - {name: classes, op: arg_max}
  - {name: gap, op: mean, axes: [1, 2], inputs: [up]}
  - {name: probs, op: softmax}
  - {name: boxes, op: reshape, shape: [1, 720, 4], inputs: [big]}
  - {name: scores, op: reshape, shape: [1, 720, 4], inputs: [big]}
  - {name: nms, op: detection_postprocess, inputs: [boxes, scores], max_detections: 5}
"""
)


def test_network_ops_infer_shapes_types_and_constants(tmp_path):
    """Elementwise ops with a constant operand, pad, transposed conv, resize, arg max, mean, softmax and the
    SSD post-processing give TFLite's shapes, types and operand order."""
    path = tmp_path / "w.yaml"
    path.write_text(NETWORK_OPS)
    graph = load_layers_yaml(path)
    shapes = {
        n: graph.tensor(n).shape
        for n in (
            "bn",
            "shift",
            "act",
            "padded",
            "up",
            "big",
            "classes",
            "gap",
            "probs",
            "nms",
            "nms/classes",
            "nms/count",
        )
    }
    assert shapes == {
        "bn": (1, 8, 8, 4),
        "shift": (1, 8, 8, 4),
        "act": (1, 8, 8, 4),
        "padded": (1, 9, 11, 4),
        "up": (1, 16, 16, 6),
        "big": (1, 20, 24, 6),
        "classes": (1, 20, 24),
        "gap": (1, 6),
        "probs": (1, 6),
        "nms": (1, 5, 4),
        "nms/classes": (1, 5),
        "nms/count": (1,),
    }
    ops = _ops(graph)
    assert graph.tensor("bn/constant").is_parameter and graph.tensor("bn/constant").data is None
    assert graph.tensor("padded/paddings").data.tolist() == [[0, 0], [1, 0], [2, 1], [0, 0]]
    assert ops["up"].inputs == ["up/output_shape", "up/weights", "act", "up/bias"]
    assert graph.tensor("up/output_shape").data.tolist() == [1, 16, 16, 6]
    assert loop_dims(graph, ops["up"]) == {"B": 1, "K": 6, "C": 4, "IY": 8, "IX": 8, "FY": 3, "FX": 3}
    assert graph.tensor("classes").dtype == np.int32 and ops["classes"].attrs["axis"] == 3
    assert graph.tensor("nms").dtype == np.float32 and graph.tensor("nms/anchors").shape == (720, 4)
    assert graph.outputs == ["padded", "classes", "probs", "nms", "nms/classes", "nms/scores", "nms/count"]


def test_written_layer_file_loads_to_the_same_graph(tmp_path):
    """A graph written with graph_to_layers and read back has the same ops, shapes, MACs and parameter
    sizes."""
    from hwsim.importers.yaml_layers import dump_layers_yaml, graph_to_layers
    from hwsim.schedule.mapper import tensor_bytes

    path = tmp_path / "w.yaml"
    path.write_text(NETWORK_OPS)
    graph = load_layers_yaml(path)
    (tmp_path / "again.yaml").write_text(
        dump_layers_yaml(graph_to_layers(graph, "again"), "a copy\nof w.yaml")
    )
    again = load_layers_yaml(tmp_path / "again.yaml")
    assert (tmp_path / "again.yaml").read_text().startswith("# a copy\n# of w.yaml\nschema_version: 1\n")
    assert [op.kind for op in again.ops] == [op.kind for op in graph.ops]
    assert [again.tensor(op.outputs[0]).shape for op in again.ops] == [
        graph.tensor(op.outputs[0]).shape for op in graph.ops
    ]
    assert again.mac_count() == graph.mac_count()
    assert sorted(tensor_bytes(t) for t in again.tensors.values() if t.is_parameter) == sorted(
        tensor_bytes(t) for t in graph.tensors.values() if t.is_parameter
    )


def test_writer_refuses_an_op_without_a_layer_form(tmp_path):
    """Writing a graph with an op the format lacks names the op and lists what layer files hold."""
    from hwsim.importers.yaml_layers import graph_to_layers

    path = tmp_path / "w.yaml"
    path.write_text(HEAD + "  - {name: a, op: relu}\n")
    graph = load_layers_yaml(path)
    graph.ops[0].kind = "gather"
    with pytest.raises(
        ConfigError, match=r"op 'a' \(gather\) has no layer-file form; layer files hold add, "
    ):
        graph_to_layers(graph, "t")


def test_writer_refuses_padding_of_channels(tmp_path):
    """A pad of the channel axis has no layer-file form (the format pads height and width)."""
    from hwsim.importers.yaml_layers import graph_to_layers

    path = tmp_path / "w.yaml"
    path.write_text(HEAD + "  - {name: p, op: pad, padding: 1}\n")
    graph = load_layers_yaml(path)
    graph.tensors["p/paddings"] = replace(
        graph.tensor("p/paddings"), data=np.array([[0, 0], [1, 1], [1, 1], [0, 2]], np.int32)
    )
    with pytest.raises(ConfigError, match=r"op 'p' \(pad\) pads more than height and width"):
        graph_to_layers(graph, "t")


def test_error_constant_does_not_broadcast(tmp_path):
    """A constant operand that does not broadcast against the input is reported at the constant."""
    _raises(
        tmp_path,
        HEAD + "  - {name: m, op: mul, constant: [3]}\n",
        "5: layers[0].constant: shapes [1, 8, 8, 4] and [3] do not broadcast (got [3])",
    )


def test_error_binary_with_constant_takes_one_input(tmp_path):
    """An elementwise op with a constant operand reads exactly one layer."""
    _raises(
        tmp_path,
        HEAD + "  - {name: m, op: add, constant: [4], inputs: [input, input]}\n",
        "5: layers[0].inputs: add takes 1 input (got ['input', 'input'])",
    )


def test_error_pad_is_explicit(tmp_path):
    """A pad needs explicit amounts; 'same' is a convolution's padding, not a pad's."""
    _raises(
        tmp_path,
        HEAD + "  - {name: p, op: pad, padding: same}\n",
        "5: layers[0].padding: expected a non-negative int or a list [top, bottom, left, right] of them "
        "(got 'same')",
    )


def test_error_mean_axis(tmp_path):
    """A mean over an axis beyond the rank is reported at its axes."""
    _raises(
        tmp_path,
        HEAD + "  - {name: m, op: mean, axes: [1, 4]}\n",
        "5: layers[0].axes: expected an axis of the rank-4 inputs (got 4)",
    )


def test_error_detection_postprocess_inputs(tmp_path):
    """The SSD post-processing needs box encodings [1, anchors, 4] and scores over the same anchors."""
    _raises(
        tmp_path,
        HEAD + "  - {name: b, op: reshape, shape: [1, 64, 4]}\n"
        "  - {name: s, op: reshape, shape: [1, 32, 8], inputs: [input]}\n"
        "  - {name: d, op: detection_postprocess, inputs: [b, s]}\n",
        "7: layers[2].inputs: expected box encodings [1, anchors, 4] and class scores [1, anchors, "
        "classes] "
        "(got [1, 64, 4] and [1, 32, 8]) (got ['b', 's'])",
    )
