"""Keras models with an unknown batch size, converted by the real TFLite converter, load with their shape
arithmetic folded, keep their operator indices, and run bit-exactly where hwsim has the kernels."""

import subprocess
import sys

import numpy as np
import pytest

from hwsim.errors import ConfigError
from hwsim.importers import load_model
from hwsim.schedule.simulate import simulate

SHAPE_ARITHMETIC = {
    "SHAPE",
    "STRIDED_SLICE",
    "PACK",
    "GATHER",
    "REDUCE_PROD",
    "CONCATENATION",
    "FILL",
    "CAST",
}


def _file_operators(path) -> list[str]:
    """The builtin operator name of each operator of the file's first subgraph, by index."""
    import tflite

    model = tflite.Model.GetRootAsModel(path.read_bytes(), 0)
    names = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
    sub = model.Subgraphs(0)
    codes = [model.OperatorCodes(sub.Operators(i).OpcodeIndex()) for i in range(sub.OperatorsLength())]
    return [names[max(c.BuiltinCode(), c.DeprecatedBuiltinCode())] for c in codes]


@pytest.mark.parametrize("name", ["reshapes", "mobilenet", "upsample"])
def test_shape_arithmetic_is_folded_and_operator_indices_survive(keras_models, name):
    """The file has shape arithmetic; the graph keeps every other op under its file index and type, and none
    of the shape arithmetic."""
    operators = _file_operators(keras_models[name])
    assert "SHAPE" in operators
    graph = load_model(keras_models[name])
    kept = {op.operator_index: op.name.split(":", 1)[1] for op in graph.ops}
    assert all(operators[i] == op_type for i, op_type in kept.items())
    folded = {i for i in range(len(operators)) if i not in kept}
    assert folded and {operators[i] for i in folded} <= SHAPE_ARITHMETIC
    assert all(
        op.operator_index is not None and op.name == f"{op.operator_index}:{operators[op.operator_index]}"
        for op in graph.ops
    )


def test_folded_graphs_have_the_right_shapes(keras_models):
    """Reshape targets copy the unknown batch; the Tensordot's rows (batch x 6) are concrete at batch 1;
    UpSampling2D's reshapes get the shapes the converter could not give."""
    graph = load_model(keras_models["reshapes"])
    shapes = [(op.kind, graph.tensor(op.outputs[0]).shape) for op in graph.ops if op.kind != "conv2d"]
    assert shapes == [
        ("reshape", (None, 6, 16)),
        ("reshape", (6, 16)),
        ("fully_connected", (6, 3)),
        ("reshape", (None, 6, 3)),
        ("reshape", (None, 18)),
        ("fully_connected", (None, 5)),
    ]

    up = load_model(keras_models["upsample"])
    assert [up.tensor(op.outputs[0]).shape for op in up.ops if op.kind == "reshape"] == [
        (None, 16, 8, 4),
        (None, 16, 16, 4),
    ]
    assert up.tensor(up.outputs[0]).shape == (None, 16, 16, 4)

    mobilenet = load_model(keras_models["mobilenet"])
    assert [mobilenet.tensor(op.outputs[0]).shape for op in mobilenet.ops if op.kind == "reshape"] == [
        (None, 4)
    ]


@pytest.mark.parametrize("name", ["mobilenet_v2", "attention"])
def test_keras_models_without_shape_arithmetic_load_and_simulate(keras_models, name):
    """MobileNetV2 and MultiHeadAttention with an unknown batch size load whole and simulate on an
    Ethos-U55."""
    graph = load_model(keras_models[name])
    assert graph.tensor(graph.inputs[0]).shape[0] is None
    assert simulate(graph, "ethos_u55_128_like").macs == graph.mac_count() > 0


@pytest.mark.parametrize("name", ["reshapes", "mobilenet"])
def test_folded_models_run_bit_exactly(keras_models, name):
    """Every op hwsim keeps equals the interpreter's output under each resolver; the compared ops are the
    graph's, named by their file indices."""
    from hwsim.verify.compare import verify

    result = verify(keras_models[name], against="tflite", samples=2, seed=1)
    graph_ops = {op.name for op in load_model(keras_models[name]).ops}
    for report in result.reports:
        assert report.outputs_exact, report.table()
        assert {row.op for row in report.ops} == graph_ops
        assert all(row.observable and row.exact == row.elements for row in report.ops), report.table()


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "hwsim", *map(str, args)], capture_output=True, text=True)


def test_ops_without_a_kernel_simulate_and_infer_names_them(keras_models, tmp_path):
    """TILE and MAXIMUM are placed and timed (by hwsim's own mapper); `hwsim infer` refuses the model in one
    line naming the first of them by index, type and output tensor."""
    graph = load_model(keras_models["upsample"])
    result = simulate(graph, "hexagon_like")
    timed = {layer.op.split(":", 1)[1]: layer.cycles for layer in result.layers if ":" in layer.op}
    assert timed["TILE"] > 0 and timed["MAXIMUM"] > 0
    tile = next(op for op in graph.ops if op.kind == "tile")
    np.save(tmp_path / "x.npy", np.zeros((1, 8, 8, 3), np.int8))
    run = _cli(
        "infer", keras_models["upsample"], "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy"
    )
    assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert (
        f"operator {tile.operator_index} (TILE, output {tile.outputs[0]!r}) has no bit-exact kernel"
        in run.stderr
    )


def test_an_unsupported_op_is_a_one_line_error(keras_models):
    """SPACE_TO_DEPTH is refused at import, naming its operator index and type."""
    index = _file_operators(keras_models["space_to_depth"]).index("SPACE_TO_DEPTH")
    with pytest.raises(
        ConfigError,
        match=rf"operator {index} \(SPACE_TO_DEPTH, output '[^']+'\) is not "
        r"supported",
    ):
        load_model(keras_models["space_to_depth"])
    run = _cli("simulate", keras_models["space_to_depth"], "--device", "ethos_u55_128_like")
    assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1
