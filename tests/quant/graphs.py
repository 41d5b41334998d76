"""Small hand-made float graphs for the quantization tests (seeded weights)."""

import numpy as np

from hwsim.workload.graph import Graph, Op, Tensor


def _t(name, shape, data=None):
    return Tensor(name, shape, np.dtype(np.float32), None, None if data is None else data.astype(np.float32))


def conv_bn_relu_fc(seed: int = 0, channels: int = 4) -> Graph:
    """x [N,2,5,5] -> conv3x3 (no bias) -> batchnorm -> relu -> global pool -> flatten -> FC(3)."""
    rng = np.random.default_rng(seed)
    c = channels
    t = {}
    t["x"] = _t("x", (None, 2, 5, 5))
    t["w"] = _t("w", (c, 3, 3, 2), rng.normal(size=(c, 3, 3, 2)))
    for n, v in (
        ("gamma", rng.uniform(0.1, 3, c)),
        ("beta", rng.normal(size=c)),
        ("mean", rng.normal(size=c)),
        ("var", rng.uniform(0.01, 4, c)),
    ):
        t[n] = _t(n, (c,), v)
    t["fw"] = _t("fw", (3, c), rng.normal(size=(3, c)))
    t["fb"] = _t("fb", (3,), rng.normal(size=3))
    for n, s in (
        ("c", (None, c, 5, 5)),
        ("b", (None, c, 5, 5)),
        ("r", (None, c, 5, 5)),
        ("p", (None, c, 1, 1)),
        ("f", (None, c)),
        ("y", (None, 3)),
    ):
        t[n] = _t(n, s)
    conv = {
        "layout": "NCHW",
        "kernel": (3, 3),
        "stride": (1, 1),
        "dilation": (1, 1),
        "padding": (1, 1, 1, 1),
        "activation": None,
        "in_channels": 2,
        "groups": 1,
    }
    ops = [
        Op("conv", "conv2d", ["x", "w"], ["c"], conv),
        Op(
            "bn",
            "batchnorm",
            ["c", "gamma", "beta", "mean", "var"],
            ["b"],
            {"layout": "NCHW", "epsilon": 1e-5},
        ),
        Op("relu", "relu", ["b"], ["r"], {"activation": None}),
        Op("gap", "global_avg_pool", ["r"], ["p"], {"layout": "NCHW"}),
        Op("flat", "flatten", ["p"], ["f"], {"axis": 1}),
        Op("fc", "fully_connected", ["f", "fw", "fb"], ["y"], {"activation": None}),
    ]
    return Graph(t, ops, ["x"], ["y"], "test", "onnx")


def mlp(seed: int = 0, widths=(16, 32, 8)) -> Graph:
    """x [N, widths[0]] -> FC -> relu -> FC."""
    rng = np.random.default_rng(seed)
    a, b, c = widths
    t = {
        "x": _t("x", (None, a)),
        "w1": _t("w1", (b, a), rng.normal(size=(b, a)) / np.sqrt(a)),
        "b1": _t("b1", (b,), rng.normal(size=b) * 0.1),
        "h": _t("h", (None, b)),
        "r": _t("r", (None, b)),
        "w2": _t("w2", (c, b), rng.normal(size=(c, b)) / np.sqrt(b)),
        "b2": _t("b2", (c,), np.zeros(c)),
        "y": _t("y", (None, c)),
    }
    ops = [
        Op("fc1", "fully_connected", ["x", "w1", "b1"], ["h"], {"activation": None}),
        Op("relu", "relu", ["h"], ["r"], {"activation": None}),
        Op("fc2", "fully_connected", ["r", "w2", "b2"], ["y"], {"activation": None}),
    ]
    return Graph(t, ops, ["x"], ["y"], "test-mlp", "onnx")
