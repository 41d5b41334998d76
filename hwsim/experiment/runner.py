"""Run sweep points: :func:`run_one` (one point -> one row, a pure function of its :class:`RunSpec`) and
:func:`run_all` (in this process, a local process pool, or a Dask cluster; rows come back as they finish).

A point's pipeline: load the workload -> quantize it with the point's recipe (cached per worker process for
each (workload, recipe, calibration size)) -> evaluate float / fake-quant / integer top-1 on the test
subset, counting accumulator overflows on the integer path -> map and simulate the integer graph on the
point's device -> price the action counts (:func:`hwsim.experiment.costs.energy_power_area`). The
bit-exactness experiment instead quantizes with ONNX Runtime and runs :func:`hwsim.verify.compare.verify`.
Any exception becomes a row with ``status: error`` and its message; the sweep goes on. A row is a
:class:`~hwsim.experiment.result_row.ResultRow`.

Points share per-process caches (quantized models, data, scores) but never change what they share: a
point's accumulation order is given to a copy of the integer graph (:func:`with_accumulation_order`), so
points may run in threads of one process (a Dask worker's) without a lock.
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
import traceback
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Iterator

import numpy as np

from hwsim import __version__
from hwsim.errors import ConfigError, HwsimWarning
from hwsim.experiment.result_row import AS_QUANTIZED, Costs, Overflow, RecipeColumns, ResultRow, Verification
from hwsim.experiment.spec import EvaluationSpec, RunOptions
from hwsim.experiment.sweep import RunSpec, device_location

DASK_CONNECT_SECONDS = 10  # how long --executor dask waits for the scheduler before giving up


class _Lru:
    """A least-recently-used cache that threads may share without a lock: each step is one atomic dict
    operation, so a race costs at most a recomputation, never a wrong value."""

    def __init__(self, size: int):
        self.size = size
        self.data: OrderedDict = OrderedDict()

    def get(self, key):
        value = self.data.get(key)
        if value is not None:
            with contextlib.suppress(KeyError):  # another thread evicted it meanwhile
                self.data.move_to_end(key)
        return value

    def put(self, key, value) -> None:
        self.data[key] = value
        while len(self.data) > self.size:
            with contextlib.suppress(KeyError):
                self.data.popitem(last=False)


_QM_CACHE = _Lru(8)  # quantized models by _qm_key
_EVAL_CACHE = _Lru(32)  # (quantized model key, order, test size) -> ((overflows, samples), scores)
_DATA_CACHE: dict = {}


@functools.lru_cache(maxsize=None)
def git_commit() -> str:
    """The checkout's commit (``unknown`` when hwsim is not run from a git checkout)."""
    root = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
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


def _data(workload, evaluation: EvaluationSpec):
    """Calibration inputs, test inputs and test labels (None without labels) of a point."""
    n_cal, n_test = evaluation.calibration_samples, evaluation.test_samples
    if workload.builtin is not None:
        calib = workload.builtin.split("calibration").x[:n_cal]
        test = workload.builtin.split("test")
        return calib, test.x[:n_test], test.y[:n_test]
    calib, x, y = None, None, None
    if workload.calibration is not None:
        calib = _user_data(workload.calibration, workload.base_dir)[0]
    if workload.evaluation is not None:
        x, y = _user_data(workload.evaluation, workload.base_dir)
    return (
        None if calib is None else calib[:n_cal],
        None if x is None else x[:n_test],
        None if y is None else y[:n_test],
    )


def _user_data(source, base_dir: Path):
    key = (json.dumps(source, sort_keys=True, default=lambda v: v.model_dump(mode="json")), str(base_dir))
    if key not in _DATA_CACHE:
        from hwsim.accuracy.data import load_data

        _DATA_CACHE[key] = load_data(source, "workload data", base_dir=base_dir)
    return _DATA_CACHE[key]


def _item_json(spec: RunSpec) -> str:
    return spec.model_dump_json(include={"workload_item"})


def _qm_key(spec: RunSpec, path: Path, calib: np.ndarray) -> tuple:
    """What a quantized model depends on: the model, the recipe, the user's data and the calibration size."""
    return (str(path), spec.recipe.model_dump_json(), _item_json(spec), len(calib))


def _quantized(spec: RunSpec, workload, calib: np.ndarray):
    from hwsim.quant.convert import quantize_model

    key = _qm_key(spec, workload.path, calib)
    cached = _QM_CACHE.get(key)
    if cached is not None:
        return cached
    recipe = spec.recipe
    qm = quantize_model(workload.path, recipe, calib)
    if recipe.qat is not None:
        if workload.builtin is None:
            raise ConfigError(
                "recipe.qat: QAT in an experiment trains on the digits split; it is only "
                "available for the built-in workloads"
            )
        from hwsim.quant.qat import train_qat

        train = workload.builtin.split("train")
        qm = train_qat(qm, train.x, train.y)
    _QM_CACHE.put(key, qm)
    return qm


def accumulation_order(kind: str, weight_shape: tuple, order: str) -> tuple[int, ...] | None:
    """The permutation of the reduction index of a conv / fully-connected op (``kind``) with weights of
    ``weight_shape`` for ``order`` (None: natural).

    The kernels reduce over (ky, kx, c); ``channel_outer`` makes the input channel the outermost loop.
    Depthwise kernels take no order (their few taps run in (ky, kx) order).

    >>> accumulation_order("conv2d", (8, 1, 2, 2), "channel_outer")
    (0, 2, 1, 3)
    """
    if order == "natural" or kind not in ("conv2d", "fully_connected"):
        return None
    w = weight_shape
    if kind == "fully_connected":
        depth = int(w[1])
        return tuple(range(depth - 1, -1, -1)) if order == "reversed" else None
    _, kh, kw, cin = (int(d) for d in w)
    depth = kh * kw * cin
    if order == "reversed":
        return tuple(range(depth - 1, -1, -1))
    return tuple(int((ky * kw + kx) * cin + c) for c in range(cin) for ky in range(kh) for kx in range(kw))


def with_accumulation_order(qm, order: str):
    """``qm`` whose integer graph's conv / fully-connected accumulators add in ``order``: a copy of the
    graph with new op records where the order changes (tensors and weights shared); ``qm``, which the
    cache shares between points, is left as it is."""
    if order == "natural" or qm.dynamic:
        return qm
    g = qm.integer_graph
    new_ops = []
    for op in g.ops:
        acc = op.attrs.get("accumulator")
        perm = None
        if acc is not None and op.kind in ("conv2d", "fully_connected"):
            perm = accumulation_order(op.kind, g.tensor(op.inputs[1]).shape, order)
        ordered = None if perm is None else {**op.attrs, "accumulator": dataclasses.replace(acc, order=perm)}
        new_ops.append(op if ordered is None else dataclasses.replace(op, attrs=ordered))
    return dataclasses.replace(qm, integer_graph=dataclasses.replace(g, ops=new_ops))


def _quantize_onnx(src: Path, calib: np.ndarray, run: RunOptions, out: Path) -> Path:
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
            self.data = iter([{input_name: calib[i : i + 32]} for i in range(0, len(calib), 32)])

        def get_next(self):
            return next(self.data, None)

    quantize_static(
        str(src),
        str(out),
        Reader(),
        quant_format=getattr(QuantFormat, run.verify_format),
        activation_type=getattr(QuantType, run.verify_activation_type),
        weight_type=QuantType.QInt8,
        per_channel=run.verify_per_channel,
    )
    inferred = onnx.shape_inference.infer_shapes(onnx.load(str(out)))  # hwsim's importer reads tensor shapes
    onnx.save(inferred, str(out))
    return out


def _verification(spec: RunSpec, path: Path, calib: np.ndarray, tmp: Path) -> Verification:
    from hwsim.verify.compare import verify

    qpath = _quantize_onnx(path, calib, spec.run, tmp / f"{path.stem}_q.onnx")
    result = verify(qpath, against="onnxruntime", samples=spec.run.verify_samples, seed=spec.seed)
    (report,) = result.reports
    seen = [c for c in report.ops if c.observable]
    return Verification(
        bit_exact=bool(result.bit_exact),
        verify_ops=len(report.ops),
        verify_ops_exact=sum(c.exact == c.elements for c in seen),
        verify_elements=sum(c.elements for c in seen),
        verify_exact_elements=sum(c.exact for c in seen),
        verify_max_lsb=max((c.max_lsb for c in seen), default=0),
    )


def run_one(spec: RunSpec) -> ResultRow:
    """The result row of one point: swept values, accuracy, latency, energy, power, area, overflow counts
    and provenance; ``status`` is ``ok``, or ``error`` with the message in ``error``. Value warnings are
    not repeated here: the experiment's check (:func:`~hwsim.experiment.sweep.check_points`) gave them."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HwsimWarning)
        row = _head(spec)
        try:
            _measure(spec, row)
            row.status = "ok"
        except Exception as exc:  # a failing point is recorded and the sweep goes on
            row = _head(spec)  # without what was measured before the failure
            row.status = "error"
            last = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
            where = f" [{Path(last.filename).name}:{last.lineno}]" if last else ""
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            row.error = f"{type(exc).__name__}: {first}{where}"
        return row


def _head(spec: RunSpec) -> ResultRow:
    """The row of ``spec`` before anything is measured: identity, axes, recipe, provenance."""
    r = spec.recipe
    quantization = RecipeColumns(
        r.weights.bits,
        r.weights.granularity,
        r.activations.bits,
        r.accumulator.bits,
        r.accumulator.overflow,
        r.rounding,
    )
    return ResultRow(
        run_id=spec.run_id,
        index=spec.index,
        workload=spec.workload,
        device=spec.device,
        recipe=spec.recipe_label,
        axes=dict(spec.axes),
        quantization=quantization,
        accumulation_order=spec.run.accumulation_order,
        node_nm=spec.energy.node_nm,
        hwsim_version=__version__,
        git_commit=git_commit(),
        seed=spec.seed,
    )


def _measure(spec: RunSpec, row: ResultRow) -> None:
    """Fill ``row`` with what ``spec``'s metrics ask for."""
    from hwsim.experiment.workloads import resolve
    from hwsim.llm.experiment import lm_config_path, measure_lm

    lm_path = None if spec.workload_item else lm_config_path(spec.workload, spec.base_dir)
    workload = None if lm_path else resolve(spec.workload_item or spec.workload, spec.base_dir)
    device = _device(spec)
    recipe_json = json.dumps(spec.recipe.model_dump(mode="json"), sort_keys=True)
    hashes = {
        "workload": file_hash(str(lm_path or workload.path)),
        "recipe": hashlib.sha256(recipe_json.encode()).hexdigest()[:16],
    }
    if device.path and Path(device.path).exists():
        hashes["device"] = file_hash(device.path)
    if lm_path is not None:
        row.lm = measure_lm(spec, lm_path, device, spec.metrics)
    else:
        if workload.kind in ("builtin", "float"):
            graph, counted = _quantized_point(spec, workload, row)
        elif workload.kind == "quantized":
            graph, counted = _as_quantized_point(spec, workload, row)
        else:
            from hwsim.importers import load_model

            graph, counted = load_model(workload.path), None
        _check_columns(spec.metrics, row.scores)
        _costs(spec, graph, device, counted, row)
    row.input_hashes = json.dumps(hashes, sort_keys=True)


_COLUMN_OF = {
    "accuracy": "integer_top1",
    "top5": "integer_top5",
    "agreement": "integer_agreement",
    "mse": "integer_mse",
    "sqnr": "integer_sqnr_db",
}


def _check_columns(metrics: tuple[str, ...], scores: dict) -> None:
    """A requested metric the data could not give (top-5 of a model with fewer than 5 outputs) fails the
    point instead of leaving its column out."""
    for metric in metrics:
        column = _COLUMN_OF.get(metric)
        if column and column not in scores:
            raise ConfigError(
                f"metrics: {metric!r} cannot be computed for this workload's outputs and data (no {column})"
            )


def accuracy_wanted(metrics) -> bool:
    return bool(set(metrics) & {"accuracy", "top5", "agreement", "mse", "sqnr", "overflow"})


def _quantized_point(spec: RunSpec, workload, row: ResultRow) -> tuple:
    """A float model (built-in or the user's) quantized with the point's recipe: its integer graph and
    (overflow count, samples) of the evaluation; the accuracy or verification columns go to ``row``."""
    from hwsim.accuracy.evaluate import evaluate

    calib, x, y = _data(workload, spec.evaluation)
    if "verify" in spec.metrics:
        with tempfile.TemporaryDirectory() as tmp:
            row.verification = _verification(spec, workload.path, calib, Path(tmp))
    qm = _quantized(spec, workload, calib)
    counted = None
    order = spec.run.accumulation_order
    if accuracy_wanted(spec.metrics) and "verify" not in spec.metrics:

        def measure():
            rep = evaluate(with_accumulation_order(qm, order), x, y, per_layer=False)
            return rep.samples, {
                "samples": rep.samples,
                "float_top1": rep.float_top1,
                "fake_quant_top1": rep.fake_quant_top1,
                "integer_top1": rep.integer_top1,
                "agreement": rep.agreement,
                **rep.scores,
            }

        counted, row.scores = _scores_once((_qm_key(spec, workload.path, calib), order, len(x)), measure)
    # the latency of a verify point is that of the network quantized by hwsim with the point's recipe
    # (ONNX Runtime's QDQ files leave some activation shapes unknown to the mapper)
    return qm.integer_graph, counted


def _as_quantized_point(spec: RunSpec, workload, row: ResultRow) -> tuple:
    """An already-quantized model: its integer graph and (overflow count, samples) of its scores under the
    swept ``recipe.semantics`` (else its own), which go to ``row``."""
    from hwsim.importers import default_semantics, load_model

    graph = load_model(workload.path)
    semantics = spec.recipe.semantics if "recipe.semantics" in spec.axes else default_semantics(graph)
    row.recipe, row.semantics, row.quantization = "(as quantized)", semantics, AS_QUANTIZED
    counted = None
    if accuracy_wanted(spec.metrics):
        from hwsim.accuracy.quantized import evaluate_quantized

        _, x, y = _data(workload, spec.evaluation)

        def measure():
            rep = evaluate_quantized(graph, x, y, semantics)
            return rep.samples, {"samples": rep.samples, **rep.scores}

        counted, row.scores = _scores_once((str(workload.path), _item_json(spec), semantics, len(x)), measure)
    return graph, counted


def _scores_once(key: tuple, measure) -> tuple[tuple[int, int], dict]:
    """((overflows, samples), scores) of ``measure()`` (which returns (samples, scores)), computed once per
    worker process for ``key``: the scores of a quantized model do not depend on the device."""
    cached = _EVAL_CACHE.get(key)
    if cached is None:
        from hwsim.numerics import ops

        with ops.counting_overflows() as overflows:
            samples, scores = measure()
        cached = ((overflows[0], samples), scores)
        _EVAL_CACHE.put(key, cached)
    return cached[0], dict(cached[1])


def _costs(spec: RunSpec, graph, device, counted, row: ResultRow) -> None:
    """Latency, utilisation and traffic of ``graph`` on ``device``, its energy, power and area, and the
    overflow rate of the evaluation ``counted`` (overflows, samples), into ``row``."""
    from hwsim.schedule.simulate import simulate

    sim = simulate(graph, device, record_trace="energy" in spec.metrics)  # the trace gives peak power
    cpu_ops, cpu_reasons = _cpu_ops(sim)
    row.costs = Costs(
        latency_ms=sim.time_ms,
        cycles=sim.cycles,
        compute_cycles=sim.compute_cycles,
        stall_cycles=sim.stall_cycles,
        macs=sim.macs,
        mac_utilization=sim.mac_utilization,
        offchip_bytes=sum(layer.offchip_bytes for layer in sim.layers),
        peak_gmacs_per_s=device.peak_macs_per_cycle * device.clock_mhz / 1e3,
        offchip_gbytes_per_s=device.offchip_bytes_per_s / 1e9,
        clock_mhz=device.clock_mhz,
        layer_cycles=json.dumps({layer.op: layer.cycles for layer in sim.layers}),
        cpu_ops=cpu_ops,
        cpu_reasons=cpu_reasons,
    )
    if "energy" in spec.metrics:
        from hwsim.experiment.costs import energy_power_area

        row.energy = energy_power_area(sim, spec.energy)
    if counted is not None:
        overflows, samples = counted
        accumulations = sim.macs * samples
        row.overflow = Overflow(overflows, overflows / accumulations if accumulations else math.nan)


def _cpu_ops(sim) -> tuple[int, str]:
    """Ops the device leaves to the host CPU, which latency and energy do not count (Vela's int4 weights, a
    float input's quantize): how many, and why (JSON ``{reason: ops}``), so such a point is never mistaken
    for a cheap one."""
    reasons: dict[str, int] = {}
    for layer in sim.layers:
        if layer.unit == "cpu":
            reason = layer.mapping.reason or "no reason given"
            reasons[reason] = reasons.get(reason, 0) + 1
    return sum(reasons.values()), json.dumps(reasons, sort_keys=True)


def run_all(
    specs: list[RunSpec], jobs: int = 1, executor: str = "local", scheduler: str | None = None
) -> Iterator[ResultRow]:
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


def _run_dask(specs: list[RunSpec], scheduler: str | None) -> Iterator[ResultRow]:
    try:
        from distributed import Client, as_completed
    except ImportError as exc:  # pragma: no cover - depends on the environment
        from hwsim.errors import RuntimeUnavailable

        raise RuntimeUnavailable(
            f"--executor dask needs dask.distributed (pip install 'hwsim[dask]'): {exc}"
        ) from None
    if not scheduler:
        raise ConfigError("--scheduler: give the Dask scheduler's address (tcp://host:8786)")
    try:
        client = Client(scheduler, timeout=f"{DASK_CONNECT_SECONDS}s")
    except (OSError, TimeoutError, ValueError, TypeError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        what = (
            "not a scheduler address"
            if isinstance(exc, (ValueError, TypeError))
            else f"no Dask scheduler answered within {DASK_CONNECT_SECONDS} s"
        )
        raise ConfigError(f"--scheduler {scheduler}: {what} ({reason})") from None
    with client:
        futures = client.map(run_one, specs, pure=False)
        for fut in as_completed(futures):
            yield fut.result()
