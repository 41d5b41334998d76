"""Run sweep points: :func:`run_one` (one point -> one row, a pure function of its :class:`RunSpec`) and
:func:`run_all` (in this process, a local process pool, or a Dask cluster; rows come back as they finish).

A point's pipeline: load the workload -> quantize it with the point's recipe (cached per worker process for
each (workload, recipe, calibration size)) -> evaluate float / fake-quant / integer top-1 on the test
subset, counting accumulator overflows on the integer path -> map and simulate the integer graph on the
point's device -> price the action counts (:func:`hwsim.experiment.costs.energy_power_area`). The
bit-exactness experiment instead quantizes with ONNX Runtime and runs :func:`hwsim.verify.compare.verify`.
Any exception becomes a row with ``status: error`` and its message; the sweep goes on.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import math
import subprocess
import tempfile
import threading
import traceback
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Iterator

import numpy as np

from hwsim import __version__
from hwsim.errors import ConfigError, HwsimWarning
from hwsim.experiment.sweep import RunSpec, builtin_name, device_location, workload_path
from hwsim.numerics import ops

_LOCK = threading.Lock()  # one point at a time per process: points share cached models and set their orders
_QM_CACHE: OrderedDict = OrderedDict()
_QM_CACHE_SIZE = 8
DASK_CONNECT_SECONDS = 10  # how long --executor dask waits for the scheduler before giving up


@functools.lru_cache(maxsize=None)
def git_commit() -> str:
    """The checkout's commit (``unknown`` when hwsim is not run from a git checkout)."""
    root = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


@functools.lru_cache(maxsize=64)
def file_hash(path: str) -> str:
    """First 16 hex digits of the SHA-256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def _device(spec: RunSpec):
    from hwsim.devices.model import load_device, override

    return override(load_device(device_location(spec)), spec.device_overrides)


def _data(short: str, evaluation: dict):
    from hwsim.accuracy.datasets import digits_split

    layout = "flat" if short == "mlp" else "image"
    calib = digits_split("calibration", layout).x[: evaluation["calibration_samples"]]
    test = digits_split("test", layout)
    n = evaluation["test_samples"]
    return calib, test.x[:n], test.y[:n]


def _quantized(spec: RunSpec, path: Path, calib: np.ndarray):
    from hwsim.quant.convert import quantize_model
    from hwsim.quant.recipe import QuantRecipe

    key = (str(path), json.dumps(spec.recipe, sort_keys=True), len(calib))
    if key in _QM_CACHE:
        _QM_CACHE.move_to_end(key)
        return _QM_CACHE[key]
    recipe = QuantRecipe.model_validate(spec.recipe)
    qm = quantize_model(path, recipe, calib)
    if recipe.qat is not None:
        from hwsim.accuracy.datasets import digits_split
        from hwsim.quant.qat import train_qat

        train = digits_split("train", "flat" if "mlp" in path.name else "image")
        qm = train_qat(qm, train.x, train.y)
    _QM_CACHE[key] = qm
    while len(_QM_CACHE) > _QM_CACHE_SIZE:
        _QM_CACHE.popitem(last=False)
    return qm


def accumulation_order(op, order: str) -> tuple[int, ...] | None:
    """The permutation of a conv / fully-connected op's reduction index for ``order`` (None: natural).

    The kernels reduce over (ky, kx, c); ``channel_outer`` makes the input channel the outermost loop.
    Depthwise kernels take no order (their few taps run in (ky, kx) order).
    """
    if order == "natural" or op.kind not in ("conv2d", "fully_connected"):
        return None
    w = op.attrs.get("_weight_shape")
    if w is None:
        return None
    if op.kind == "fully_connected":
        depth = int(w[1])
        return tuple(range(depth - 1, -1, -1)) if order == "reversed" else None
    _, kh, kw, cin = (int(d) for d in w)
    depth = kh * kw * cin
    if order == "reversed":
        return tuple(range(depth - 1, -1, -1))
    return tuple(int((ky * kw + kx) * cin + c) for c in range(cin) for ky in range(kh) for kx in range(kw))


@contextlib.contextmanager
def _ordered(qm, order: str) -> Iterator[None]:
    """Give the integer graph's MAC ops the accumulation ``order`` for the duration of the block."""
    saved = []
    try:
        if order != "natural" and not qm.dynamic:
            g = qm.integer_graph
            for op in g.ops:
                acc = op.attrs.get("accumulator")
                if acc is None or op.kind not in ("conv2d", "fully_connected"):
                    continue
                op.attrs["_weight_shape"] = g.tensor(op.inputs[1]).shape
                perm = accumulation_order(op, order)
                del op.attrs["_weight_shape"]
                if perm is not None:
                    saved.append((op, acc))
                    op.attrs["accumulator"] = dataclasses.replace(acc, order=perm)
        yield
    finally:
        for op, acc in saved:
            op.attrs["accumulator"] = acc


def _quantize_onnx(src: Path, calib: np.ndarray, run: dict, out: Path) -> Path:
    """``src`` quantized by ONNX Runtime's ``quantize_static`` (int8 weights) with the point's format."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    import onnx
    from onnxruntime.quantization.shape_inference import quant_pre_process

    pre = out.with_name(out.stem + "_pre.onnx")
    quant_pre_process(str(src), str(pre))  # ONNX Runtime's optimizer folds batch norm into the convs first
    src = pre
    model = onnx.load(str(src))
    input_name = model.graph.input[0].name

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.data = iter([{input_name: calib[i:i + 32]} for i in range(0, len(calib), 32)])

        def get_next(self):
            return next(self.data, None)

    quantize_static(str(src), str(out), Reader(), quant_format=getattr(QuantFormat, run["verify_format"]),
                    activation_type=getattr(QuantType, run["verify_activation_type"]),
                    weight_type=QuantType.QInt8, per_channel=run["verify_per_channel"])
    inferred = onnx.shape_inference.infer_shapes(onnx.load(str(out)))  # hwsim's importer reads tensor shapes
    onnx.save(inferred, str(out))
    return out


def _verify_columns(spec: RunSpec, path: Path, calib: np.ndarray, tmp: Path) -> tuple[dict, Path]:
    from hwsim.verify.compare import verify

    qpath = _quantize_onnx(path, calib, spec.run, tmp / f"{path.stem}_q.onnx")
    result = verify(qpath, against="onnxruntime", samples=spec.run["verify_samples"], seed=spec.seed)
    (report,) = result.reports
    seen = [c for c in report.ops if c.observable]
    return {"bit_exact": bool(result.bit_exact),
            "verify_ops": len(report.ops), "verify_ops_exact": sum(c.exact == c.elements for c in seen),
            "verify_elements": sum(c.elements for c in seen),
            "verify_exact_elements": sum(c.exact for c in seen),
            "verify_max_lsb": max((c.max_lsb for c in seen), default=0)}, qpath


def run_one(spec: RunSpec) -> dict:
    """The result row of one point: swept values, accuracy, latency, energy, power, area, overflow counts
    and provenance; ``status`` is ``ok``, or ``error`` with the message in ``error``. Value warnings are
    not repeated here: the experiment's check (:func:`~hwsim.experiment.sweep.check_points`) gave them."""
    with _LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore", HwsimWarning)
        row = _head(spec)
        try:
            row.update(_measure(spec))
            row["status"] = "ok"
        except Exception as exc:  # a failing point is recorded and the sweep goes on
            row["status"] = "error"
            last = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
            where = f" [{Path(last.filename).name}:{last.lineno}]" if last else ""
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            row["error"] = f"{type(exc).__name__}: {first}{where}"
        return row


def _head(spec: RunSpec) -> dict:
    row = {"run_id": spec.run_id, "index": spec.index, "status": "", "error": "", "workload": spec.workload,
           "device": spec.device, "recipe": spec.recipe_label}
    for k, v in spec.axes.items():
        if k not in ("workload", "device", "recipe"):
            row[k] = v
    r = spec.recipe
    row.update({"weights_bits": r["weights"]["bits"], "weights_granularity": r["weights"]["granularity"],
                "activations_bits": r["activations"]["bits"], "accumulator_bits": r["accumulator"]["bits"],
                "accumulator_overflow": r["accumulator"]["overflow"], "rounding": r["rounding"],
                "accumulation_order": spec.run["accumulation_order"], "node_nm": spec.energy["node_nm"],
                "hwsim_version": __version__, "git_commit": git_commit(), "seed": spec.seed})
    return row


def _measure(spec: RunSpec) -> dict:
    if spec.run.get("fail"):
        raise RuntimeError("this point fails on purpose (run.fail: true)")
    from hwsim.llm.experiment import lm_config_path, measure_lm
    from hwsim.schedule.simulate import simulate

    out: dict = {}
    lm_path = lm_config_path(spec.workload, spec.base_dir)
    path = lm_path or workload_path(spec)
    device = _device(spec)
    hashes = {"workload": file_hash(str(path)),
              "recipe": hashlib.sha256(json.dumps(spec.recipe, sort_keys=True).encode()).hexdigest()[:16]}
    if device.path and Path(device.path).exists():
        hashes["device"] = file_hash(device.path)
    if lm_path is not None:
        out.update(measure_lm(spec, lm_path, device, spec.metrics))
        out["input_hashes"] = json.dumps(hashes, sort_keys=True)
        return out
    short = builtin_name(spec.workload)
    graph = None
    overflows = None
    samples = 0
    if short and "verify" in spec.metrics:
        calib, _, _ = _data(short, spec.evaluation)
        with tempfile.TemporaryDirectory() as tmp:
            cols, _ = _verify_columns(spec, path, calib, Path(tmp))
            out.update(cols)
        # latency of the same network quantized by hwsim with the point's recipe (ONNX Runtime's QDQ files
        # leave some activation shapes unknown to the mapper)
        graph = _quantized(spec, path, calib).integer_graph
    elif short:
        from hwsim.accuracy.evaluate import evaluate

        calib, x, y = _data(short, spec.evaluation)
        qm = _quantized(spec, path, calib)
        graph = qm.integer_graph
        if "accuracy" in spec.metrics or "overflow" in spec.metrics:
            with _ordered(qm, spec.run["accumulation_order"]), ops.counting_overflows() as counted:
                rep = evaluate(qm, x, y, per_layer=False)
            overflows = counted[0]
            samples = rep.samples
            out.update({"samples": rep.samples, "float_top1": rep.float_top1,
                        "fake_quant_top1": rep.fake_quant_top1,
                        "integer_top1": rep.integer_top1, "agreement": rep.agreement})
    else:
        from hwsim.importers import load_model

        graph = load_model(path)
    if {"latency", "energy", "overflow"} & set(spec.metrics) or graph is not None:
        sim = simulate(graph, device, record_trace="energy" in spec.metrics)  # the trace gives peak power
        out.update({"latency_ms": sim.time_ms, "cycles": sim.cycles, "compute_cycles": sim.compute_cycles,
                    "stall_cycles": sim.stall_cycles, "macs": sim.macs,
                    "mac_utilization": sim.mac_utilization,
                    "offchip_bytes": sum(layer.offchip_bytes for layer in sim.layers),
                    "peak_gmacs_per_s": device.peak_macs_per_cycle * device.clock_mhz / 1e3,
                    "offchip_gbytes_per_s": device.offchip_bytes_per_s / 1e9, "clock_mhz": device.clock_mhz,
                    "layer_cycles": json.dumps({layer.op: layer.cycles for layer in sim.layers})})
        if "energy" in spec.metrics:
            from hwsim.experiment.costs import energy_power_area

            cost = energy_power_area(sim, spec.energy)
            cost["energy_by_component_pj"] = json.dumps({k: round(v, 3) for k, v in
                                                         cost["energy_by_component_pj"].items()})
            out.update(cost)
        if overflows is not None:
            accumulations = sim.macs * samples
            out.update({"overflows": overflows,
                        "overflow_rate": overflows / accumulations if accumulations else math.nan})
    out["input_hashes"] = json.dumps(hashes, sort_keys=True)
    return out


def run_all(specs: list[RunSpec], jobs: int = 1, executor: str = "local",
            scheduler: str | None = None) -> Iterator[dict]:
    """Rows of ``specs`` as they finish (any order): in this process (jobs 1), a process pool, or Dask."""
    if executor == "dask":
        yield from _run_dask(specs, scheduler)
    elif jobs <= 1:
        for spec in specs:
            yield run_one(spec)
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        # spawn, not fork: forking a process whose OpenMP runtime is initialised (torch, BLAS) aborts it
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
            futures = [pool.submit(run_one, s) for s in specs]
            for fut in as_completed(futures):
                yield fut.result()


def _run_dask(specs: list[RunSpec], scheduler: str | None) -> Iterator[dict]:
    try:
        from distributed import Client, as_completed
    except ImportError as exc:  # pragma: no cover - depends on the environment
        from hwsim.errors import RuntimeUnavailable

        raise RuntimeUnavailable(f"--executor dask needs dask.distributed (pip install 'hwsim[dask]'): "
                                 f"{exc}") from None
    if not scheduler:
        raise ConfigError("--scheduler: give the Dask scheduler's address (tcp://host:8786)")
    try:
        client = Client(scheduler, timeout=f"{DASK_CONNECT_SECONDS}s")
    except (OSError, TimeoutError, ValueError, TypeError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        what = "not a scheduler address" if isinstance(exc, (ValueError, TypeError)) else \
            f"no Dask scheduler answered within {DASK_CONNECT_SECONDS} s"
        raise ConfigError(f"--scheduler {scheduler}: {what} ({reason})") from None
    with client:
        futures = client.map(run_one, specs, pure=False)
        for fut in as_completed(futures):
            yield fut.result()
