"""Batched integer inference: a batch spread over threads gives, image by image, what the TFLite interpreter
gives, and what one-image runs give; `hwsim infer` takes a batch; bad batches are one-line errors."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hwsim.errors import ConfigError
from hwsim.importers import load_model
from hwsim.numerics import ops
from hwsim.runtime.batch import run_batch
from hwsim.runtime.execute import run_graph
from tests.runtimes.conftest import require

MODEL = Path(__file__).resolve().parents[1] / "data" / "ethos_u" / "kws_ds_cnn.tflite"


@pytest.fixture(scope="module")
def batch():
    graph = load_model(MODEL)
    shape = graph.tensor(graph.inputs[0]).shape
    x = np.random.default_rng(5).integers(-128, 128, (6, *shape[1:])).astype(np.int8)
    return graph, x


def test_threads_across_the_batch_equal_the_interpreter(batch):
    """Six images on two threads (XNNPACK arithmetic): each output equals the TFLite interpreter's (default
    resolver, one image at a time) and the one-image run_graph's."""
    tf = require("tensorflow")
    graph, x = batch
    got = run_batch(graph, x, "xnnpack", threads=2)[graph.outputs[0]]
    interp = tf.lite.Interpreter(model_path=str(MODEL))
    interp.allocate_tensors()
    index, output = interp.get_input_details()[0]["index"], interp.get_output_details()[0]["index"]
    for i in range(len(x)):
        interp.set_tensor(index, x[i : i + 1])
        interp.invoke()
        np.testing.assert_array_equal(got[i : i + 1], interp.get_tensor(output))
        one = run_graph(graph, [x[i : i + 1]], "xnnpack")[graph.outputs[0]]
        np.testing.assert_array_equal(got[i : i + 1], one)


def test_every_tensor_and_overflow_counts_are_kept(batch):
    """``every_tensor`` stacks each tensor of the one-image runs, and excursions counted in the threads reach
    the caller's total (a 12-bit saturating accumulator on every MAC layer)."""
    graph, x = batch
    for op in graph.ops:
        if op.kind in ("conv2d", "depthwise_conv2d", "fully_connected"):
            op.attrs["accumulator"] = ops.Accumulator("int12", "saturate")
    try:
        with ops.counting_overflows() as total:
            got = run_batch(graph, x, "tflite-optimized", threads=3, every_tensor=True)
        with ops.counting_overflows() as single:
            want = [run_graph(graph, [x[i : i + 1]], "tflite-optimized") for i in range(len(x))]
    finally:
        for op in graph.ops:
            op.attrs.pop("accumulator", None)
    assert total[0] == single[0] > 0
    assert set(got) == set(want[0])
    for name, value in got.items():
        np.testing.assert_array_equal(value, np.concatenate([w[name] for w in want]))


def test_infer_cli_takes_a_batch(batch, tmp_path):
    """`hwsim infer` on a [6, ...] input writes [6, classes], row i the output for image i; a batch of the
    wrong rank is a one-line error, exit 2."""
    graph, x = batch
    np.save(tmp_path / "x.npy", x)
    command = [
        "infer",
        MODEL,
        "--input",
        tmp_path / "x.npy",
        "--output",
        tmp_path / "y.npy",
        "--semantics",
        "xnnpack",
    ]
    run = subprocess.run([sys.executable, "-m", "hwsim", *map(str, command)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    want = run_batch(graph, x, "xnnpack")[graph.outputs[0]]
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), want)
    with pytest.raises(ConfigError, match="expected a batch of 4-D inputs"):
        run_batch(graph, x[0], "xnnpack")
