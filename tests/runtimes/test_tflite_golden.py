"""Golden tests: hwsim's quantized layers against the real TFLite interpreters, bit for bit.

Every case of :mod:`tests.runtimes.tflite_cases` is a one-layer model converted with the real
``tf.lite.TFLiteConverter`` (full-integer int8, 16x8, or int4 weights) once, into ``tests/data/tflite/golden``
by ``benchmarks/build_test_models.py`` (three are converted again live, to check the stored ones). Its
weights, biases, scales and zero points are read back from the model, seeded full-range integer inputs are
run through the interpreter under each op resolver (in subprocesses: BUILTIN_REF and TFLite Micro can abort
the process on some models), and hwsim must reproduce every output element under the semantics named for
that resolver.
These cases found the optimized kernels' 16-element ADD blocks and 8-channel depthwise tail, XNNPACK's
own ADD, and int4-weight ops bypassing XNNPACK; the semantics now model all four.
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from tests.runtimes import tflite_cases as C
from tests.runtimes.conftest import require, stored_tflite

RUNNER = Path(C.__file__)
RESOLVERS = tuple(C.RESOLVERS)

OPT = "builtin_without_default_delegates"
#: BUILTIN_REF has no kernel for int4-weight depthwise (DEPTHWISE_CONV_2D version 7): these cases are
#: compared under the other resolvers, and test_reference_resolver_cannot_load_int4_depthwise pins the gap
REF_CANNOT_LOAD = frozenset(c.name for c in C.CASES if c.int4 and c.op == "depthwise_conv2d")


@dataclass
class Golden:
    """Everything the tests compare: converted models, their inputs, and each resolver's outputs or crash."""

    folder: Path
    models: dict[str, C.Model]
    inputs: dict[str, dict[int, np.ndarray]]
    outputs: dict[str, dict[str, np.ndarray]]  # resolver -> case -> output codes
    executed: dict[str, dict[str, list[str]]]  # resolver -> case -> op names after delegation
    crashed: dict[str, dict[str, str]]  # resolver -> case -> why it failed (a Python error or a crash)
    unavailable: dict[str, str]  # resolver -> why it could not run at all


def _run_jobs(folder: Path, jobs: list[str]) -> dict[str, str]:
    """Run the jobs ``resolver/name`` in one subprocess, and in a new one after each crash; returns the jobs
    that failed and why.

    A Python error fails its model alone, in the process; a crash (an abort) loses only the model that was
    running: the rest run in a new process.
    """
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    remaining, failed = list(jobs), {}
    while remaining:
        proc = subprocess.run(
            [sys.executable, str(RUNNER), str(folder), *remaining],
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        started = [line.split()[1] for line in proc.stdout.splitlines() if line.startswith("START ")]
        for job in started:
            if (folder / f"{job}.error").exists():
                failed[job] = (folder / f"{job}.error").read_text()[-1500:]
        left = [j for j in remaining if not (folder / f"{j}.npz").exists() and j not in failed]
        if not left:  # every model wrote its output or its error (even if the process then failed on exit)
            break
        why = f"exit code {proc.returncode}: {proc.stderr.strip()[-1500:]}"
        if not started or started[-1] not in left:
            failed.update({j: why for j in left})
            break
        failed[started[-1]] = why
        remaining = [j for j in left if j != started[-1]]
    return failed


def convert_models():
    """``(name, .tflite bytes)`` of every case, converted by TFLite's converter (the build script's
    family ``golden``)."""
    tf = require("tensorflow")
    import keras

    for case in C.CASES:
        yield case.name, C.convert(case, tf, keras)


@pytest.fixture(scope="module")
def golden(tmp_path_factory) -> Golden:
    """Read every stored case, then run all of them under each resolver (one subprocess for TensorFlow's
    three, one for TFLite Micro)."""
    tf = require("tensorflow")
    stored = stored_tflite("golden", [c.name for c in C.CASES])
    folder = tmp_path_factory.mktemp("tflite_golden")
    models, inputs = {}, {}
    for case in C.CASES:
        content = stored[case.name].read_bytes()
        (folder / f"{case.name}.tflite").write_bytes(content)
        model = C.read_model(content, tf)
        codes = C.make_inputs(case, np.int16 if case.int16 else np.int8)
        np.savez(folder / f"{case.name}.inputs.npz", **{f"in{i}": x for i, x in enumerate(codes)})
        models[case.name] = model
        inputs[case.name] = dict(zip(model.graph_inputs, codes))

    unavailable = {}
    try:
        import tflite_micro  # noqa: F401  (only checked here: it runs in the subprocess)
    except ImportError as exc:
        unavailable["micro"] = f"tflite-micro is not installed: {exc}"
    runnable = [r for r in RESOLVERS if r not in unavailable]
    names = [c.name for c in C.CASES]
    # TensorFlow's three resolvers in one process (one TensorFlow import), TFLite Micro beside it
    groups = [[r for r in runnable if r != "micro"], [r for r in runnable if r == "micro"]]
    jobs = [[f"{r}/{n}" for r in group for n in names] for group in groups if group]
    with ThreadPoolExecutor(max_workers=2) as pool:
        failed = {k: v for part in pool.map(lambda j: _run_jobs(folder, j), jobs) for k, v in part.items()}
    crashed = {r: {} for r in runnable}
    for job, why in failed.items():
        resolver, name = job.split("/")
        crashed[resolver][name] = why

    outputs, executed = {}, {}
    for resolver in runnable:
        outputs[resolver], executed[resolver] = {}, {}
        for name in names:
            path = folder / resolver / f"{name}.npz"
            if path.exists():
                with np.load(path) as data:
                    outputs[resolver][name] = data["out"]
                    executed[resolver][name] = [str(s) for s in data["ops"]]
    return Golden(folder, models, inputs, outputs, executed, crashed, unavailable)


def _output(golden: Golden, case: C.Case, resolver: str) -> np.ndarray:
    if resolver in golden.unavailable:
        if resolver == "micro":
            require("tflite_micro")  # skips locally, fails in CI
        pytest.skip(golden.unavailable[resolver])
    if case.name in golden.crashed.get(resolver, {}):
        pytest.fail(f"{resolver} crashed on {case.name}: {golden.crashed[resolver][case.name]}")
    return golden.outputs[resolver][case.name]


def _params(cases):
    return [
        pytest.param(case, resolver, id=f"{case.name}-{resolver}")
        for case in cases
        for resolver in RESOLVERS
        if not (resolver == "builtin_ref" and case.name in REF_CANNOT_LOAD)
    ]


@pytest.mark.parametrize(("case", "resolver"), _params(C.CASES))
def test_hwsim_matches_interpreter(golden: Golden, case: C.Case, resolver: str, record_property) -> None:
    """hwsim under the resolver's semantics reproduces every output element of the interpreter."""
    expected = _output(golden, case, resolver)
    model = golden.models[case.name]
    got = C.hwsim_output(case, model, golden.inputs[case.name], C.RESOLVERS[resolver])
    assert got.dtype == expected.dtype and got.shape == expected.shape
    record_property("elements", int(expected.size))
    bad = np.argwhere(got != expected)
    if bad.size:
        first = [
            (tuple(int(i) for i in idx), int(got[tuple(idx)]), int(expected[tuple(idx)])) for idx in bad[:5]
        ]
        diff = np.abs(got.astype(np.int64) - expected.astype(np.int64))
        pytest.fail(
            f"{len(bad)} of {expected.size} elements differ (max |diff| {diff.max()}) under "
            f"{C.RESOLVERS[resolver]}; first (index, hwsim, {resolver}): {first}; "
            f"ops run: {golden.executed[resolver][case.name]}"
        )


@pytest.mark.parametrize("name", sorted(REF_CANNOT_LOAD))
def test_reference_resolver_cannot_load_int4_depthwise(golden: Golden, name: str) -> None:
    """BUILTIN_REF rejects int4-weight depthwise models (no kernel for that op version), so those cases are
    checked under the other resolvers only; a TensorFlow that adds the kernel fails this test, and the case
    then joins test_hwsim_matches_interpreter under BUILTIN_REF too."""
    why = golden.crashed.get("builtin_ref", {}).get(name, "")
    assert "Didn't find op for builtin opcode 'DEPTHWISE_CONV_2D' version '7'" in why, why or "it loaded"


def test_a_dying_runner_loses_only_the_model_it_was_running(tmp_path) -> None:
    """A runner process that dies (here on a model file that is missing, before it catches anything) loses
    that job alone: the jobs after it run in a new process."""
    require("tflite_micro")
    name = "add"
    (tmp_path / f"{name}.tflite").write_bytes(stored_tflite("golden", [name])[name].read_bytes())
    codes = C.make_inputs(C.CASES_BY_NAME[name], np.int8)
    np.savez(tmp_path / f"{name}.inputs.npz", **{f"in{i}": x for i, x in enumerate(codes)})
    failed = _run_jobs(tmp_path, ["micro/absent", f"micro/{name}"])
    assert list(failed) == ["micro/absent"] and failed["micro/absent"].startswith("exit code 1: ")
    assert "FileNotFoundError" in failed["micro/absent"]
    assert (tmp_path / "micro" / f"{name}.npz").exists()


@pytest.mark.parametrize("case", C.CASES, ids=lambda c: c.name)
def test_converted_model_is_the_case(golden: Golden, case: C.Case) -> None:
    """The converter produced exactly one op of the case's kind, with its options and quantization."""
    model = golden.models[case.name]
    assert model.ops == [case.tflite_op]
    o, p = model.options, case.params
    act_dtype = np.int16 if case.int16 else np.int8
    assert model.output.dtype == act_dtype
    assert o.get("activation") == case.activation
    if case.op in ("conv2d", "depthwise_conv2d", "avg_pool", "max_pool"):
        strides = p["strides"] if isinstance(p["strides"], tuple) else (p["strides"],) * 2
        assert (o["strideH"], o["strideW"]) == strides and o["padding"] == p["padding"]
    if case.op in ("conv2d", "depthwise_conv2d"):
        dilation = p["dilation"] if isinstance(p["dilation"], tuple) else (p["dilation"],) * 2
        assert (o["dilationHFactor"], o["dilationWFactor"]) == dilation
    if case.op == "depthwise_conv2d":
        assert o["depthMultiplier"] == p["depth_multiplier"]
    if case.op in ("conv2d", "depthwise_conv2d", "fully_connected"):
        x_t, w_t, b_t = model.operands
        out_channels = w_t.shape[0] if case.op != "depthwise_conv2d" else w_t.shape[-1]
        assert x_t.dtype == act_dtype and w_t.dtype == np.int8
        assert model.tensor_types[w_t.index] == ("INT4" if case.int4 else "INT8")
        if case.int4:
            assert -8 <= w_t.data.min() and w_t.data.max() <= 7
        assert b_t.dtype == (np.int64 if case.int16 else np.int32)
        if case.int4 and case.op == "fully_connected":
            assert w_t.scales.size == 1  # the low-bit path quantizes FC weights per tensor
        else:
            assert w_t.scales.size == out_channels  # per-channel
            assert out_channels == 1 or len(set(w_t.scales.tolist())) > 1
        assert not w_t.zero_points.any()
    if case.op in ("avg_pool", "max_pool"):
        (x_t,) = model.operands  # TFLite pooling requires the same quantization in and out
        assert x_t.scales[0] == model.output.scales[0] and x_t.zero_points[0] == model.output.zero_points[0]
    first = model.operands[0]
    if case.int16:
        assert first.zero_points[0] == 0 and model.output.zero_points[0] == 0
    elif case.calib == "positive":
        assert all(t.zero_points[0] == -128 for t in model.operands[: case.inputs])
    elif case.calib == "negative":
        assert all(t.zero_points[0] == 127 for t in model.operands[: case.inputs])
    for x in golden.inputs[case.name].values():
        info = np.iinfo(act_dtype)
        assert x.min() == info.min and x.max() == info.max


@pytest.mark.parametrize("case", [c for c in C.CASES if c.calib == "constant"], ids=lambda c: c.name)
def test_saturating_cases_saturate(golden: Golden, case: C.Case) -> None:
    """Cases calibrated on constant images drive the reference output to both ends of its clamp range."""
    from hwsim.numerics import quantized as Q
    from hwsim.numerics.formats import INT8, INT16

    out = _output(golden, case, "builtin_ref")
    y = golden.models[case.name].output
    lo, hi = Q.activation_range(
        case.activation, float(y.scales[0]), int(y.zero_points[0]), INT16 if case.int16 else INT8
    )
    assert out.min() == lo and out.max() == hi


@pytest.mark.parametrize("case", [c for c in C.CASES if c.int4], ids=lambda c: c.name)
def test_int4_ops_are_not_delegated_to_xnnpack(golden: Golden, case: C.Case) -> None:
    """The default resolver leaves these int4-weight ops (conv, depthwise, per-tensor FC) to the optimized
    kernels: its output equals theirs (per-channel FC goes to XNNPACK: ``test_tflite_int4_fc.py``)."""
    auto = _output(golden, case, "auto")
    assert "DELEGATE" not in golden.executed["auto"][case.name]
    assert np.array_equal(auto, _output(golden, case, OPT))


def _same_tensor(a: C.Tensor, b: C.Tensor) -> bool:
    same_data = (a.data is None) == (b.data is None) and (a.data is None or np.array_equal(a.data, b.data))
    return (
        (a.shape, a.dtype) == (b.shape, b.dtype)
        and np.array_equal(a.scales, b.scales)
        and np.array_equal(a.zero_points, b.zero_points)
        and same_data
    )


#: converted again live: int8 with an extreme zero point, 16x8, and the int4 low-bit QAT path
LIVE = ("conv_k3_same_d2_relu6_pos", "dw16_m2_k3_valid_s2_relu6", "fc4_k64_n16")


@pytest.mark.parametrize("name", LIVE)
def test_stored_models_are_what_the_converter_makes(name: str) -> None:
    """The installed TensorFlow converts the case to the stored model's op, options, constant codes, scales
    and zero points (after changing a case or TensorFlow, run ``benchmarks/build_test_models.py golden``)."""
    tf = require("tensorflow")
    import keras

    case = C.CASES_BY_NAME[name]
    live = C.read_model(C.convert(case, tf, keras), tf)
    stored = C.read_model(stored_tflite("golden", [name])[name].read_bytes(), tf)
    assert (live.op, live.ops, live.options, live.graph_inputs, live.tensor_types) == (
        stored.op,
        stored.ops,
        stored.options,
        stored.graph_inputs,
        stored.tensor_types,
    )
    assert len(live.operands) == len(stored.operands)
    for a, b in zip([*live.operands, live.output], [*stored.operands, stored.output]):
        assert _same_tensor(a, b), f"tensor {a.name} differs from the stored model's {b.name}"
