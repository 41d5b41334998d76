"""``hwsim bench kernels``: hwsim's exact integer kernels against ONNX Runtime, side by side in one process.

Each case times hwsim and the peer alternately (A B A B ...), after a warm-up, and reports medians as
GMAC/s and the ratio hwsim / peer. Both sides see prepacked constant weights, as a deployed runtime does,
and use both cores; ONNX Runtime's thread pool does not spin between runs (it would steal the cores from
hwsim's next run). Results are checked equal before anything is timed.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Callable, TextIO

import numba
import numpy as np

from hwsim.errors import RuntimeUnavailable
from hwsim.numerics import ops
from hwsim.numerics.cpu import cpu_name, has_int8_dot_product
from hwsim.numerics.formats import IntFormat
from hwsim.numerics.ops import Accumulator
from hwsim.numerics.semantics import get_semantics


@dataclass(frozen=True)
class Timing:
    """Median seconds of hwsim and of the peer for one case, with its MAC count."""

    case: str
    macs: int
    hwsim_s: float
    peer_s: float | None

    def gmacs(self, seconds: float | None) -> str:
        return "" if seconds is None else f"{self.macs / seconds / 1e9:.1f}"


def _interleaved(
    a: Callable[[], object], b: Callable[[], object] | None, repeats: int
) -> tuple[float, float | None]:
    a()
    if b is not None:
        b()
    ta, tb = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        a()
        ta.append(time.perf_counter() - start)
        if b is not None:
            start = time.perf_counter()
            b()
            tb.append(time.perf_counter() - start)
    return float(np.median(ta)), (float(np.median(tb)) if tb else None)


def _ort():
    try:
        import onnxruntime
        from onnx import TensorProto, helper, numpy_helper
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeUnavailable(f"the kernel benchmark compares with onnxruntime and onnx: {exc}") from exc
    return onnxruntime, helper, numpy_helper, TensorProto


def _session(nodes, inputs, outputs, initializers):
    onnxruntime, helper, _, _ = _ort()
    graph = helper.make_graph(nodes, "bench", inputs, outputs, initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    options = onnxruntime.SessionOptions()
    # Its pool would otherwise spin for a while after each run and take the cores from hwsim's next run.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


def ort_matmul_integer(w: np.ndarray):
    """An ONNX Runtime session computing MatMulInteger(A, W) with W as a constant (prepacked) initializer."""
    _, helper, numpy_helper, tp = _ort()
    k, n = w.shape
    return _session(
        [helper.make_node("MatMulInteger", ["A", "W"], ["Y"])],
        [helper.make_tensor_value_info("A", tp.INT8, [None, k])],
        [helper.make_tensor_value_info("Y", tp.INT32, [None, n])],
        [numpy_helper.from_array(w, "W")],
    )


def ort_conv_integer(w_oihw: np.ndarray, pads: list[int]):
    """An ONNX Runtime session computing ConvInteger(X, W) (NCHW) with W constant."""
    _, helper, numpy_helper, tp = _ort()
    node = helper.make_node("ConvInteger", ["X", "W"], ["Y"], pads=pads)
    return _session(
        [node],
        [helper.make_tensor_value_info("X", tp.INT8, None)],
        [helper.make_tensor_value_info("Y", tp.INT32, None)],
        [numpy_helper.from_array(w_oihw, "W")],
    )


def bench_gemm(shape: tuple[int, int, int], repeats: int, rng: np.random.Generator) -> Timing:
    """Exact int8 x int8 -> int32 GEMM against ONNX Runtime's MatMulInteger."""
    m, k, n = shape
    x = rng.integers(-128, 128, (m, k)).astype(np.int8)
    w = rng.integers(-128, 128, (k, n)).astype(np.int8)
    packed = ops.prepack(w)
    session = ort_matmul_integer(w)
    want = session.run(None, {"A": x})[0]
    got = ops.matmul(x, packed)
    if not np.array_equal(got.acc, want):
        raise AssertionError(f"GEMM {shape}: hwsim and ONNX Runtime disagree; nothing was timed")
    ours, peer = _interleaved(lambda: ops.matmul(x, packed), lambda: session.run(None, {"A": x}), repeats)
    return Timing(f"GEMM {m}x{k}x{n} ({got.path})", m * k * n, ours, peer)


def bench_conv(repeats: int, rng: np.random.Generator, size: int = 56, channels: int = 64) -> Timing:
    """int8 conv2d 3x3 SAME, NHWC in hwsim, against ONNX Runtime's ConvInteger (NCHW)."""
    x = rng.integers(-128, 128, (1, size, size, channels)).astype(np.int8)
    w = rng.integers(-128, 128, (channels, 3, 3, channels)).astype(np.int8)
    session = ort_conv_integer(np.ascontiguousarray(w.transpose(0, 3, 1, 2)), [1, 1, 1, 1])
    x_nchw = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    want = session.run(None, {"X": x_nchw})[0].transpose(0, 2, 3, 1)
    got = ops.conv2d(x, w, padding="same")
    if not np.array_equal(got.acc, want):
        raise AssertionError("conv2d: hwsim and ONNX Runtime disagree; nothing was timed")
    ours, peer = _interleaved(
        lambda: ops.conv2d(x, w, padding="same"), lambda: session.run(None, {"X": x_nchw}), repeats
    )
    return Timing(
        f"conv2d 1x{size}x{size}x{channels} -> {channels}, 3x3 SAME",
        size * size * 9 * channels**2,
        ours,
        peer,
    )


def bench_extras(
    repeats: int, rng: np.random.Generator, shape: tuple[int, int, int]
) -> list[tuple[str, float, float]]:
    """Cost of bit-accurate extras as a ratio to the plain exact int32 GEMM of the same shape, (name, best,
    median): each round runs the plain GEMM and every extra in turn, so that the load of a shared machine
    falls on all alike; the best of the rounds is the least disturbed, the median the usual."""
    m, k, n = shape
    x = rng.integers(-128, 128, (m, k)).astype(np.int8)
    w4 = rng.integers(-8, 8, (k, n)).astype(np.int8)
    packed = ops.prepack(w4)
    packed_w4 = ops.pack_int4(w4)
    narrow = Accumulator(IntFormat(16), "saturate")
    counted = Accumulator(IntFormat(20), "exact")
    cases = {
        "plain": lambda: ops.matmul(x, packed),
        "int16 saturating accumulator, ordered": lambda: ops.matmul(x, packed, accumulator=narrow),
        "20-bit accumulator, overflows counted (EXACT, ordered)": lambda: ops.matmul(
            x, packed, accumulator=counted
        ),
        "int4 weights unpacked per call": lambda: ops.matmul(
            x, ops.unpack_int4(packed_w4, k * n).reshape(k, n)
        ),
        "per-group partial sums (group 32)": lambda: ops.matmul_groups(x, packed, group_size=32),
    }
    times: dict[str, list[float]] = {name: [] for name in cases}
    for fn in cases.values():
        fn()
    for _ in range(max(3, repeats)):
        for name, fn in cases.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    plain = times.pop("plain")
    return [
        (name, min(ts) / min(plain), float(np.median(ts) / np.median(plain))) for name, ts in times.items()
    ]


_COMPILE_PROBE = (
    "import time, numpy as np; t = time.perf_counter(); from hwsim.numerics import ops, quantized as q;"
    "x = np.ones((2, 8), np.int8); w = np.ones((8, 3), np.int8);"
    "ops.quantize(np.ones(4, np.float32), 0.5); ops.dequantize(np.ones(4, np.int8), 0.5);"
    "ops.matmul(x, w); ops.matmul(x, w, accumulator=ops.Accumulator('int16', 'saturate'));"
    "ops.conv2d(np.ones((1, 4, 4, 2), np.int8), np.ones((2, 3, 3, 2), np.int8), padding='same');"
    "ops.depthwise_conv2d(np.ones((1, 4, 4, 2), np.int8), np.ones((3, 3, 2), np.int8));"
    "ops.pool2d(np.ones((1, 4, 4, 2), np.int8), 2); ops.unpack_int4(ops.pack_int4(np.ones(4, np.int8)), 4);"
    "p = q.QParams.of(0.1); q.add(np.ones(4, np.int8), np.ones(4, np.int8), x1_q=p, x2_q=p, y_q=p);"
    "print(time.perf_counter() - t)"
)


def compile_times() -> tuple[float, float]:
    """Seconds to import hwsim and run every kernel once: cold (empty numba cache) and warm (cache filled)."""
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        runs = [
            float(
                subprocess.run(
                    [sys.executable, "-c", _COMPILE_PROBE],
                    env=env,
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout
            )
            for _ in range(2)
        ]
    return runs[0], runs[1]


def run_kernel_benchmarks(quick: bool = False, repeats: int = 7, out: TextIO = sys.stdout) -> list[Timing]:
    """Run every kernel benchmark and print a Markdown table (the README's)."""
    rng = np.random.default_rng(0)
    shapes = (
        [(256, 256, 256), (1, 1024, 1024)]
        if quick
        else [(1024, 1024, 1024), (128, 768, 3072), (1, 4096, 4096), (16, 4096, 4096)]
    )
    repeats = 2 if quick else repeats
    variant = "VNNI/AMX" if has_int8_dot_product() else "AVX2"
    print(
        f"CPU: {cpu_name()} ({variant}), {os.cpu_count()} cores; medians of {repeats} interleaved runs\n",
        file=out,
    )
    print("| case | hwsim GMAC/s | ONNX Runtime GMAC/s | hwsim / ORT |\n|---|---:|---:|---:|", file=out)
    timings = [bench_gemm(s, repeats, rng) for s in shapes]
    timings.append(bench_conv(repeats, rng, size=16 if quick else 56, channels=16 if quick else 64))
    for t in timings:
        print(
            f"| {t.case} | {t.gmacs(t.hwsim_s)} | {t.gmacs(t.peer_s)} | {t.peer_s / t.hwsim_s:.2f}x |",
            file=out,
        )
    extra_shape = (8, 64, 32) if quick else (64, 512, 256)
    print(
        f"\n| bit-accurate extra (GEMM {'x'.join(map(str, extra_shape))}, int4-range weights, "
        f"{2 * repeats + 1} rounds in turn) | time / plain exact path (best; median) "
        "| GMAC/s / plain exact path's (best; median) |\n|---|---:|---:|",
        file=out,
    )
    for name, best, median in bench_extras(2 * repeats + 1, rng, extra_shape):
        print(f"| {name} | {best:.2f}x; {median:.2f}x | {1 / best:.2f}x; {1 / median:.2f}x |", file=out)
    cold, warm = compile_times()
    print(
        f"\nimport + first call of every kernel: {cold:.1f} s cold (empty numba cache), {warm:.1f} s warm",
        file=out,
    )
    return timings


def build_mobilenet_v2(path, size: int = 224) -> None:
    """An int8 MobileNetV2 made by the TFLite converter, with random weights (seeded; timing does not depend
    on them) He-initialised, so that activations keep their scale and the output is not constant."""
    try:
        import keras
        import tensorflow as tf
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeUnavailable(f"the inference benchmark builds its model with tensorflow: {exc}") from exc
    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV2(weights=None, input_shape=(size, size, 3))
    rng = np.random.default_rng(0)
    # keras' default (Glorot, whose depthwise fan-in counts the channels) shrinks every block's output until
    # the int8 softmax is all zero point, for every input: a bit-exact check of that output checks nothing.
    for layer in model.layers:
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense)):
            kernel, *rest = layer.get_weights()
            depthwise = isinstance(layer, keras.layers.DepthwiseConv2D)
            fan_in = kernel.shape[0] * kernel.shape[1] if depthwise else kernel.size // kernel.shape[-1]
            layer.set_weights([rng.normal(0, (2 / fan_in) ** 0.5, kernel.shape).astype(np.float32), *rest])
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: (
        [rng.uniform(-1, 1, (1, size, size, 3)).astype(np.float32)] for _ in range(4)
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    with contextlib.redirect_stdout(io.StringIO()):  # the exporter prints its whole signature
        flatbuffer = converter.convert()
    with open(path, "wb") as f:
        f.write(flatbuffer)


def bench_infer(repeats: int = 7, out: TextIO = sys.stdout, size: int = 224, batch: int = 32) -> None:
    """hwsim's bit-exact run of an int8 MobileNetV2 against the TFLite interpreter and, on an ONNX QDQ
    MobileNetV2 of the same architecture, against ONNX Runtime, side by side: one image, then images per
    second on a batch."""
    import tensorflow as tf

    from hwsim.importers import load_model
    from hwsim.runtime.execute import run_graph

    with tempfile.TemporaryDirectory() as tmp:
        path, onnx_path = os.path.join(tmp, "mobilenet_v2.tflite"), os.path.join(tmp, "mobilenet_v2.onnx")
        build_mobilenet_v2(path, size)
        _onnx_model().build_mobilenet_v2_onnx(onnx_path, size)
        graph, onnx_graph = load_model(path), load_model(onnx_path)
        x = np.random.default_rng(1).integers(-128, 128, (1, size, size, 3)).astype(np.int8)
        cores = os.cpu_count() or 1
        print(
            f"CPU: {cpu_name()}, {cores} cores; MobileNetV2 {size}x{size} int8, the TFLite model "
            f"({graph.mac_count() / 1e6:.0f} M MACs) and the ONNX QDQ model "
            f"({onnx_graph.mac_count() / 1e6:.0f} M MACs); medians of {repeats} interleaved runs. TFLite "
            f"runs with its default thread count (one) and with {cores}, ONNX Runtime with 1 and {cores} "
            f"intra-op threads; hwsim uses {numba.get_num_threads()} threads\n",
            file=out,
        )
        print(
            f"| semantics | peer ms (1 thread) | peer ms ({cores} threads) | hwsim ms | hwsim / peer 1 "
            f"thread | hwsim / peer {cores} threads | bit-exact |\n|---|---:|---:|---:|---:|---:|---|",
            file=out,
        )
        # BUILTIN_REF is left out: it aborts the process at MobileNetV2's 1000-class int8 SOFTMAX.
        for semantics, resolver in (
            ("xnnpack", "AUTO"),
            ("tflite-optimized", "BUILTIN_WITHOUT_DEFAULT_DELEGATES"),
        ):
            runs = [_tflite_runner(tf, path, resolver, x, threads) for threads in (None, cores)]
            ours = run_graph(graph, [x], semantics)[graph.outputs[0]]
            _batch1_row(out, semantics, lambda: run_graph(graph, [x], semantics), runs, ours, ours, repeats)
        xf = np.random.default_rng(1).uniform(-1, 1, (1, 3, size, size)).astype(np.float32)
        sems = [get_semantics("onnxruntime", threads) for threads in (1, cores)]
        outs = [run_graph(onnx_graph, [xf], sem)[onnx_graph.outputs[0]] for sem in sems]
        runs = [_ort_runner(onnx_path, xf, threads) for threads in (1, cores)]
        timed = functools.partial(run_graph, onnx_graph, [xf], sems[1])
        _batch1_row(out, sems[1].name, timed, runs, *outs, repeats)
        bench_batch(batch, max(3, repeats // 2), out, (tf, graph, path), (onnx_graph, onnx_path))


def _batch1_row(out: TextIO, semantics: str, ours, runs, want_one, want_all, repeats: int) -> None:
    """One row of the batch-1 table: hwsim and the peer on one thread interleaved, then the peer on all
    cores; ``want_one``/``want_all`` are hwsim's outputs under the semantics of each peer run."""
    exact = np.array_equal(want_one, runs[0]()) and np.array_equal(want_all, runs[1]())
    mine, single = _interleaved(ours, runs[0], repeats)
    threaded, _ = _interleaved(runs[1], None, repeats)
    print(
        f"| {semantics} | {1e3 * single:.1f} | {1e3 * threaded:.1f} | {1e3 * mine:.1f} | "
        f"{mine / single:.1f}x | {mine / threaded:.1f}x | {'yes' if exact else 'NO'} |",
        file=out,
    )


def bench_batch(batch: int, repeats: int, out: TextIO, tflite=None, onnx=None) -> None:
    """Images per second on one batch, per model: on the TFLite model (``tflite``: tf, graph, path; XNNPACK
    arithmetic) hwsim's batch spread over threads and its images one at a time against the interpreter on
    the same batch (input resized to it); on the ONNX model (``onnx``: graph, path) hwsim's batch against
    ONNX Runtime on the same batch (the model's batch axis is dynamic). The peers run on 1 thread and on all
    cores; every row is timed in turn, and each row's output is compared with its model's hwsim batched
    output."""
    cores = os.cpu_count() or 1
    sem = get_semantics("onnxruntime", cores)
    rows = [
        *(_tflite_rows(batch, *tflite) if tflite else []),
        *(_onnx_rows(batch, sem, *onnx) if onnx else []),
    ]
    outputs = [call() for _, _, call in rows]  # also the warm-up
    first: dict[str, int] = {}  # each model's hwsim batched row
    for i, (model, _, _) in enumerate(rows):
        first.setdefault(model, i)
    times: list[list[float]] = [[] for _ in rows]
    for _ in range(repeats):  # in turn, so that the machine's load falls on all alike
        for (_, _, call), ts in zip(rows, times):
            start = time.perf_counter()
            call()
            ts.append(time.perf_counter() - start)
    medians = [float(np.median(ts)) for ts in times]
    print(
        f"\nBatch of {batch}, medians of {repeats} runs in turn. Models: tflite (the TFLite model, XNNPACK "
        f"arithmetic), onnx (the ONNX QDQ model, {sem.name} arithmetic with {cores} intra-op threads)\n\n"
        "| model | run | images/s | ms per batch | time / hwsim batched | output = hwsim batched's |\n"
        "|---|---|---:|---:|---:|---|",
        file=out,
    )
    for i, ((model, name, _), seconds) in enumerate(zip(rows, medians)):
        base = first[model]
        same = "" if i == base else "yes" if np.array_equal(outputs[i], outputs[base]) else "NO"
        row = f"{batch / seconds:.3g} | {1e3 * seconds:.0f} | {seconds / medians[base]:.3f}x | {same}"
        print(f"| {model} | {name} | {row} |", file=out)


def _tflite_rows(batch: int, tf, graph, path: str) -> list[tuple[str, str, Callable[[], np.ndarray]]]:
    """(model, run, a call returning the batch's output) for the TFLite model, hwsim batched first."""
    from hwsim.runtime.batch import run_batch
    from hwsim.runtime.execute import run_graph

    x = np.random.default_rng(2).integers(-128, 128, (batch, *graph.tensor(graph.inputs[0]).shape[1:]))
    x = x.astype(np.int8)
    output = graph.outputs[0]
    return [
        (
            "tflite",
            f"hwsim, batch over {numba.get_num_threads()} threads",
            lambda: run_batch(graph, x, "xnnpack")[output],
        ),
        (
            "tflite",
            "hwsim, one image at a time",
            lambda: np.concatenate(
                [run_graph(graph, [x[i : i + 1]], "xnnpack")[output] for i in range(batch)]
            ),
        ),
        *(
            ("tflite", f"TFLite XNNPACK, {_threads(n)}", _tflite_runner(tf, path, "AUTO", x, n))
            for n in sorted({1, os.cpu_count() or 1})
        ),
    ]


def _onnx_rows(batch: int, sem, graph, path: str) -> list[tuple[str, str, Callable[[], np.ndarray]]]:
    """(model, run, a call returning the batch's output) for the ONNX model, hwsim batched first."""
    from hwsim.runtime.batch import run_batch

    x = np.random.default_rng(2).uniform(-1, 1, (batch, *graph.tensor(graph.inputs[0]).shape[1:]))
    x = x.astype(np.float32)
    return [
        (
            "onnx",
            f"hwsim, batch over {numba.get_num_threads()} threads",
            lambda: run_batch(graph, x, sem)[graph.outputs[0]],
        ),
        *(
            ("onnx", f"ONNX Runtime, {_threads(n)}", _ort_runner(path, x, n))
            for n in sorted({1, os.cpu_count() or 1})
        ),
    ]


def _threads(n: int) -> str:
    return f"{n} thread{'s' if n > 1 else ''}"


def _onnx_model():
    try:
        from hwsim import bench_onnx
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeUnavailable(f"the inference benchmark builds its ONNX model with torch: {exc}") from exc
    return bench_onnx


def _ort_runner(path: str, x: np.ndarray, threads: int) -> Callable[[], np.ndarray]:
    """An ONNX Runtime session on ``path`` with ``threads`` intra-op threads (sequential execution, all
    graph optimizations, as a user's default session) as a call that runs ``x``. Its pool does not spin
    between runs, which would take the cores from the next row's run."""
    onnxruntime = _ort()[0]
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def run():
        return session.run(None, {name: x})[0]

    return run


def _tflite_runner(
    tf, path: str, resolver: str, x: np.ndarray, threads: int | None
) -> Callable[[], np.ndarray]:
    """One TFLite interpreter (``threads`` None: the interpreter's default) as a call that runs ``x``."""
    interp = tf.lite.Interpreter(
        model_path=path,
        num_threads=threads,
        experimental_op_resolver_type=getattr(tf.lite.experimental.OpResolverType, resolver),
    )
    interp.allocate_tensors()
    index, output = interp.get_input_details()[0]["index"], interp.get_output_details()[0]["index"]
    if x.shape[0] != interp.get_input_details()[0]["shape"][0]:  # a batch: the input resized to it
        interp.resize_tensor_input(index, list(x.shape))
        interp.allocate_tensors()

    def run():
        interp.set_tensor(index, x)
        interp.invoke()
        return interp.get_tensor(output)

    return run
