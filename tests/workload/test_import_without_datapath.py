"""A shape-only simulation (import a .tflite or .onnx, map, simulate, price) imports neither numba nor the
integer datapath (hwsim.numerics, hwsim.runtime): it needs shapes, not values."""

import subprocess
import sys

import numpy as np
import pytest

from hwsim.importers import load_model
from tests.runtimes.conftest import require

DATAPATH = ("numba", "hwsim.numerics", "hwsim.runtime")

SCRIPT = """
import sys
import hwsim.schedule.simulate, hwsim.importers
from hwsim.importers import load_model
from hwsim.schedule.simulate import simulate
for path in sys.argv[1:]:
    assert simulate(load_model(path), "ethos_u55_128_like").cycles > 0
loaded = sorted(m for m in sys.modules if m.split(".")[0] == "numba" or m.startswith({datapath}))
assert not loaded, loaded
"""


@pytest.fixture(scope="module")
def qoperator_onnx(tmp_path_factory):
    """A QOperator model: QLinearConv, then com.microsoft QLinearAdd and QLinearGlobalAveragePool, whose
    shapes
    ONNX's own shape inference does not give."""
    onnx = require("onnx")
    from onnx import TensorProto as tp
    from onnx import helper, numpy_helper

    rng = np.random.default_rng(0)
    consts = {
        "s": np.float32(0.05),
        "z": np.uint8(128),
        "ws": np.float32(0.02),
        "wz": np.int8(0),
        "w": rng.integers(-127, 128, (4, 3, 3, 3)).astype(np.int8),
        "b": np.zeros(4, np.int32),
    }
    nodes = [
        helper.make_node("QLinearConv", ["x", "s", "z", "w", "ws", "wz", "s", "z", "b"], ["c"], pads=[1] * 4),
        helper.make_node(
            "QLinearAdd", ["c", "s", "z", "c", "s", "z", "s", "z"], ["a"], domain="com.microsoft"
        ),
        helper.make_node(
            "QLinearGlobalAveragePool",
            ["a", "s", "z", "s", "z"],
            ["y"],
            domain="com.microsoft",
            channels_last=0,
        ),
    ]
    graph = helper.make_graph(
        nodes,
        "qop",
        [helper.make_tensor_value_info("x", tp.UINT8, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", tp.UINT8, None)],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in consts.items()],
    )
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    model = helper.make_model(graph, opset_imports=opsets)
    path = tmp_path_factory.mktemp("onnx") / "qop.onnx"
    onnx.save(model, str(path))
    return path


def test_com_microsoft_shapes_come_from_hwsims_rules(qoperator_onnx):
    """QLinearAdd keeps the conv's (1, 4, 8, 8) and the global pool makes it (1, 4, 1, 1)."""
    graph = load_model(qoperator_onnx)
    assert [graph.tensor(op.outputs[0]).shape for op in graph.ops] == [
        (1, 4, 8, 8),
        (1, 4, 8, 8),
        (1, 4, 1, 1),
    ]


def test_loading_and_simulating_imports_no_datapath(keras_models, qoperator_onnx):
    """In a fresh interpreter, simulating a folded Keras .tflite and a QOperator .onnx leaves numba,
    hwsim.numerics and hwsim.runtime unimported."""
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            SCRIPT.format(datapath=DATAPATH[1:]),
            str(keras_models["reshapes"]),
            str(qoperator_onnx),
        ],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr


def test_energy_command_imports_no_datapath(keras_models):
    """`python -X importtime -m hwsim energy` lists every module it imports: none of the datapath's."""
    run = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            "-m",
            "hwsim",
            "energy",
            str(keras_models["mobilenet"]),
            "--device",
            "ethos_u55_128_like",
        ],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    imported = [
        line.rsplit("|", 1)[-1].strip() for line in run.stderr.splitlines() if line.startswith("import time:")
    ]
    assert "hwsim.schedule.simulate" in imported
    assert not [m for m in imported if m.split(".")[0] == "numba" or m.startswith(DATAPATH[1:])]
