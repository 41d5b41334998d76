"""TFLite ops hwsim times but does not run bit-exactly: transposed conv, resize, arg max (real converter)."""

import numpy as np
import pytest

from hwsim.errors import ConfigError
from hwsim.importers import load_model
from hwsim.importers.yaml_layers import dump_layers_yaml, graph_to_layers, load_layers_yaml
from hwsim.runtime.execute import run_graph
from hwsim.schedule.simulate import simulate
from hwsim.workload.opdefs import loop_dims
from tests.runtimes.conftest import require


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    """Conv 3->4, transposed conv 4->6 (3x3, stride 2), bilinear resize to 20x24, arg max; int8 input."""
    tf = require("tensorflow")
    import keras

    class Resize(keras.layers.Layer):
        def call(self, x):
            return tf.image.resize(x, (20, 24), method="bilinear")

    class ArgMax(keras.layers.Layer):
        def call(self, x):
            return tf.math.argmax(x, axis=-1, output_type=tf.int32)

    keras.utils.set_random_seed(0)
    i = keras.Input((8, 8, 3), batch_size=1)
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(i)
    x = keras.layers.Conv2DTranspose(6, 3, strides=2, padding="same")(x)
    model = keras.Model(i, ArgMax()(Resize()(x)))
    rng = np.random.default_rng(0)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: (
        [rng.uniform(-1, 1, (1, 8, 8, 3)).astype(np.float32)] for _ in range(8)
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    path = tmp_path_factory.mktemp("schedule_only") / "m.tflite"
    path.write_bytes(converter.convert())
    return path


def test_ops_import_with_their_geometry(model_path):
    """The importer reads the transposed conv's stride, kernel and channels, the resize size and the arg
    max axis."""
    graph = load_model(model_path)
    ops = {op.kind: op for op in graph.ops}
    assert [op.kind for op in graph.ops] == ["conv2d", "transpose_conv2d", "resize_bilinear", "arg_max"]
    up = ops["transpose_conv2d"]
    assert (up.attrs["stride"], up.attrs["kernel"], up.attrs["in_channels"], up.attrs["padding"]) == (
        (2, 2),
        (3, 3),
        4,
        "same",
    )
    assert graph.tensor(up.outputs[0]).shape == (1, 16, 16, 6)
    assert loop_dims(graph, up) == {"B": 1, "K": 6, "C": 4, "IY": 8, "IX": 8, "FY": 3, "FX": 3}
    assert ops["resize_bilinear"].attrs["size"] == (20, 24) and ops["arg_max"].attrs["axis"] == 3


def test_layer_file_copy_simulates_the_same(model_path, tmp_path):
    """The model written as a layer file has the same ops, MACs and simulated latency on the Edge TPU-like
    device."""
    graph = load_model(model_path)
    path = tmp_path / "copy.yaml"
    path.write_text(dump_layers_yaml(graph_to_layers(graph, "copy")))
    copy = load_layers_yaml(path)
    assert [op.kind for op in copy.ops] == [
        op.kind for op in graph.ops
    ] and copy.mac_count() == graph.mac_count()
    assert simulate(copy, "edge_tpu_like").cycles == simulate(graph, "edge_tpu_like").cycles


def test_runtime_refuses_them_by_name(model_path):
    """Running the model bit-exactly names the first op without a kernel instead of failing inside it."""
    graph = load_model(model_path)
    with pytest.raises(
        ConfigError,
        match=r"operator 1 \(TRANSPOSE_CONV, output '[^']+'\) has no bit-exact "
        r"kernel",
    ):
        run_graph(graph, [np.zeros((1, 8, 8, 3), np.int8)], "tflite-reference")
