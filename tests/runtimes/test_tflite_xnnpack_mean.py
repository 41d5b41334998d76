"""Int8 MEAN (GlobalAveragePooling2D) on every channel sum, against the real TFLite interpreters.

XNNPACK turns the int32 sum of a channel's codes into int8 in float32 and rounds once; where that float lands
on x.5 exactly, TensorFlow 2.21's XNNPACK rounds away from zero and LiteRT 2.3's to even, and a formula
that subtracts the input zero point in integers first lands elsewhere by 1 LSB (a MobileNetV2's global
average pool showed it on 1 of 1280 outputs). Each model is one MEAN whose input and output quantization
are pinned to scales where such ties occur; its samples' channels sum to every value from -128 n to 127 n
(n = H * W), and every output equals the interpreter's under all three resolvers. The converter runs once,
in ``benchmarks/build_test_models.py`` (``tests/data/tflite/mean``).
"""

import numpy as np
import pytest

from hwsim.importers import load_model
from hwsim.numerics.formats import RoundingMode
from hwsim.runtime.nonlinear import _mean_xnnpack
from hwsim.verify.compare import TARGETS, verify
from tests.runtimes.conftest import convert_full_integer, require, stored_tflite

CHANNELS = 1280
#: name -> (H, W, (sx, zx, sy, zy)): quantization with ties, from a sweep over scales (MobileNetV2's 7x7 pool)
MODELS = {
    "gap_7x7": (7, 7, (0.006983145605772734, -128, 0.005234120413661003, -99)),
}


def convert_models():
    """``(name, .tflite bytes)``: a Keras GlobalAveragePooling2D converted to full-integer int8 by the real
    converter, its input and output quantization then set to the pinned values (the family ``mean``)."""
    tf = require("tensorflow")
    import keras
    from tensorflow.lite.tools import flatbuffer_utils

    for name, (h, w, (sx, zx, sy, zy)) in MODELS.items():
        model = keras.Sequential(
            [keras.Input((h, w, CHANNELS), batch_size=1), keras.layers.GlobalAveragePooling2D()]
        )
        rng = np.random.default_rng(0)
        calib = [rng.uniform(-1, 1, (1, h, w, CHANNELS)).astype(np.float32) for _ in range(4)]
        flat = flatbuffer_utils.convert_bytearray_to_object(convert_full_integer(tf, model, calib))
        graph = flat.subgraphs[0]
        for index, (scale, zero) in ((graph.inputs[0], (sx, zx)), (graph.outputs[0], (sy, zy))):
            graph.tensors[index].quantization.scale = [scale]
            graph.tensors[index].quantization.zeroPoint = [zero]
        yield name, bytes(flatbuffer_utils.convert_object_to_bytearray(flat))


@pytest.fixture(scope="module")
def models():
    """The stored conversions of :func:`convert_models` (``tests/data/tflite/mean``), keyed by name."""
    return stored_tflite("mean", MODELS)


def _every_sum(h: int, w: int) -> np.ndarray:
    """Samples (k, 1, h, w, CHANNELS) whose channels' codes sum to each of -128 n .. 127 n once (the last
    sample repeats the first sums): each channel holds the sum's floor share, one more in its first cells."""
    n = h * w
    sums = np.arange(-128 * n, 127 * n + 1)
    sums = np.resize(sums, -(-sums.size // CHANNELS) * CHANNELS).reshape(-1, 1, CHANNELS)
    share = sums // n
    cells = np.arange(n).reshape(1, n, 1)
    codes = share + (cells < sums - share * n)
    return codes.reshape(-1, 1, h, w, CHANNELS).astype(np.int8)


def _ties(h: int, w: int, sx: float, zx: int, sy: float, zy: int) -> int:
    """How many channel sums land on x.5 in XNNPACK's float32 arithmetic (the two roundings part there)."""
    n = h * w
    sums = np.arange(-128 * n, 127 * n + 1)
    away, even = (
        _mean_xnnpack(sums, n, sx, zx, sy, zy, r) for r in (RoundingMode.HALF_AWAY, RoundingMode.HALF_EVEN)
    )
    return int((np.clip(away, -128, 127) != np.clip(even, -128, 127)).sum())


@pytest.mark.parametrize("name", list(MODELS))
def test_pinned_quantization_has_ties(models, name):
    """The stored model holds the pinned scales and zero points, and some of its channel sums are ties (so
    the interpreters' rounding is observed, not assumed)."""
    h, w, (sx, zx, sy, zy) = MODELS[name]
    graph = load_model(models[name])
    assert [op.name.split(":", 1)[1] for op in graph.ops] == ["MEAN"]
    x, y = graph.tensor(graph.inputs[0]), graph.tensor(graph.outputs[0])
    assert (float(x.quant.scale[0]), int(x.quant.zero_point[0])) == (np.float32(sx), zx)
    assert (float(y.quant.scale[0]), int(y.quant.zero_point[0])) == (np.float32(sy), zy)
    assert _ties(h, w, sx, zx, sy, zy) >= 4


@pytest.mark.parametrize("name", list(MODELS))
def test_mean_matches_interpreter_on_every_channel_sum(models, name, tflite_interpreter):
    """Every output (each channel sum -128 n .. 127 n) equals TensorFlow's / LiteRT's interpreter under all
    three resolvers, XNNPACK's ties included."""
    h, w, _ = MODELS[name]
    verification = verify(models[name], against=tflite_interpreter, inputs=_every_sum(h, w))
    reports = verification.reports
    assert [r.semantics for r in reports] == list(TARGETS[tflite_interpreter])
    for report in reports:
        assert report.outputs_exact, report.table()
