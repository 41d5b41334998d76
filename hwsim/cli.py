"""The ``hwsim`` command. Subcommands call the public API and print.

One guard at the entry (:func:`main`) turns every failure into at most three lines on stderr and an honest
exit status: ``hwsim: error: ...`` and status 2 for anything the user can fix (a bad file, field, option or
path, :class:`~hwsim.errors.HwsimError` and :class:`OSError`), status 1 for a point that failed in
``hwsim run`` or for an internal error (then with a pointer to ``--debug``, which prints the traceback),
130 on Ctrl-C. Warnings (:class:`~hwsim.errors.HwsimWarning`) print as ``hwsim: warning: ...``, one line
each. Output paths are checked before any work starts (:mod:`hwsim.guards`).
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
import warnings

from hwsim import __version__
from hwsim.errors import HwsimError, HwsimWarning, UsageError
from hwsim.guards import check_output_dir, check_output_file, nonnegative_int, positive_int

ORT_THREADS_HELP = (
    "ONNX Runtime's intra_op_num_threads to reproduce (.onnx; its float Convs depend on it); "
    "default: ONNX Runtime's own, one per physical core"
)


def _list(args: argparse.Namespace) -> int:
    from hwsim.numerics.formats import RoundingMode
    from hwsim.numerics.requant_kinds import RequantKind
    from hwsim.numerics.semantics import HOST_ALIASES, SEMANTICS, get_semantics

    if args.what == "semantics":
        for name, sem in SEMANTICS.items():
            print(f"{name:24s} {sem.description}")
        for alias in HOST_ALIASES:
            print(f"{alias:24s} this host's variant: {get_semantics(alias).name}")
    elif args.what == "rounding":
        for mode in RoundingMode:
            print(mode.name.lower())
    elif args.what == "requantizers":
        for kind in RequantKind:
            print(kind.name.lower())
    elif args.what == "devices":
        from hwsim.devices.model import device_names, load_device

        for name in device_names():
            print(f"{name:22s} {load_device(name).spec.description.strip()}")
    elif args.what == "energy-models":
        from hwsim.energy.commands import list_energy_models

        list_energy_models()
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from hwsim.devices.options import device_from_args
    from hwsim.schedule.simulate import simulate

    output = None
    if args.output:
        from hwsim.schedule.result_files import check_output_path, layer_rows, summary, write_results

        output = check_output_path(args.output)
    if args.trace:
        check_output_file(args.trace, "--trace", make_parents=True)
    for option, folder in (("--plot", args.plot), ("--report-dir", args.report_dir)):
        if folder:
            check_output_dir(folder, option)
    result = simulate(args.model, device_from_args(args), record_trace=bool(args.trace or args.plot))
    print(result.table(mappings=args.mappings))
    if args.counts:
        print()
        print(result.totals.table())
        print()
        print(result.traffic_table())
    if args.report_dir:
        from hwsim.schedule.scalesim.reports import write_reports

        for path in write_reports(result, args.report_dir):
            print(f"wrote {path}")
    if args.trace:
        print(f"wrote {result.trace.write_chrome(args.trace)} (open in https://ui.perfetto.dev)")
    if args.plot:
        from hwsim.plots.breakdown import plot_breakdown
        from hwsim.plots.roofline import plot_roofline

        for path in (plot_breakdown(result, args.plot), plot_roofline(result, args.plot)):
            print(f"wrote {path}")
    if output:
        print(f"wrote {write_results(output, summary(result), layer_rows(result))}")
    return 0


def _bench(args: argparse.Namespace) -> int:
    from hwsim.bench import bench_infer, run_kernel_benchmarks

    if args.what == "infer":
        bench_infer(
            repeats=args.repeats,
            out=sys.stdout,
            size=96 if args.quick else 224,
            batch=8 if args.quick else 32,
        )
    else:
        run_kernel_benchmarks(quick=args.quick, repeats=args.repeats, out=sys.stdout)
    return 0


def _infer(args: argparse.Namespace) -> int:
    import numpy as np

    from hwsim.runtime.infer import infer

    check_output_file(args.output, "--output", (".npy",))
    x = _load_array(args.input)
    y = infer(
        args.model, x, semantics=args.semantics, dequantize=args.dequantize, intra_op_threads=args.ort_threads
    )
    np.save(args.output, y)
    print(f"wrote {args.output}: shape {y.shape}, dtype {y.dtype}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from hwsim.verify.compare import verify

    inputs = _load_array(args.input) if args.input else None
    result = verify(
        args.model,
        against=args.against,
        samples=args.samples,
        inputs=inputs,
        seed=args.seed,
        intra_op_threads=args.ort_threads,
    )
    for report in result.reports:
        print(report.table())
        print()
    for runtime, why in result.skipped.items():
        print(f"skipped {runtime}: {why}")
    if len(result.reports) > 1:
        from hwsim.verify.compare import disagreement_table

        print(disagreement_table(result.disagreements))
    return 0 if result.bit_exact else 1


def _run(args: argparse.Namespace) -> int:
    from hwsim.errors import PointsFailed
    from hwsim.experiment import run_experiment
    from hwsim.experiment.results import load_rows

    folder = run_experiment(
        args.experiment,
        jobs=args.jobs,
        resume=args.resume,
        dry_run=args.dry_run,
        executor=args.executor,
        scheduler=args.scheduler,
        results=args.results,
        limit=args.limit,
        max_points=args.max_points,
    )
    if folder is not None:
        rows = load_rows(folder)
        failed = sum(r.get("status") != "ok" for r in rows)
        if failed:
            raise PointsFailed(
                f"{failed} of {len(rows)} points failed; rows.csv and report.md in {folder} "
                "say why (column error)"
            )
    return 0


def _warmup(args: argparse.Namespace) -> int:
    from hwsim.numerics import jit_cache, warmup

    t0 = time.perf_counter()
    todo = warmup.missing() if jit_cache.cache_folder() is not None else []
    processes = warmup.start(quiet=False)
    warmup.wait(processes)
    if any(p.returncode for p in processes):
        print("hwsim: warning: a warm-up process failed (above); those kernels compile on first use")
        return 1
    where = jit_cache.cache_folder() or "NUMBA_CACHE_DIR (not warmed: hwsim's cache is off)"
    print(
        f"{len(todo)} of {len(warmup.DEFAULT_RUN)} kernel signatures compiled in "
        f"{time.perf_counter() - t0:.1f} s into {where}"
    )
    return 0


def _plot(args: argparse.Namespace) -> int:
    from hwsim.experiment import plot_results
    from hwsim.experiment.spec import PLOTS

    plots = [p.strip() for p in args.plots.split(",")] if args.plots else None
    for name in plots or []:
        if name not in PLOTS:
            raise UsageError(f"plot: argument --plots: unknown plot {name!r}; valid: {', '.join(PLOTS)}")
    plot_results(args.results, args.out, plots)
    return 0


def _load_array(path: str):
    from hwsim.errors import ConfigError
    from hwsim.data_checks import check_samples, load_array_file

    x = load_array_file(path, "--input")
    if isinstance(x, dict):
        raise ConfigError(
            f"--input {path}: expected a .npy array (got an .npz with {', '.join(x) or 'no arrays'})"
        )
    return check_samples(x, f"--input {path}")


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are :class:`UsageError` (one line through the guard, exit 2)."""

    def error(self, message: str):
        prog = self.prog.removeprefix("hwsim").strip()
        raise UsageError(f"{prog + ': ' if prog else ''}{message} (see '{self.prog} --help')")

    def _get_formatter(self):
        """The help formatter at the terminal's width, found as ``shutil.get_terminal_size`` finds it:
        argparse makes one for every argument added, and importing shutil (with the compression modules it
        loads) cost every command's start-up 4 ms."""
        try:
            columns = int(os.environ["COLUMNS"])
        except (KeyError, ValueError):
            columns = 0
        if columns <= 0:
            try:
                columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
            except (AttributeError, ValueError, OSError):
                columns = 0
        return self.formatter_class(prog=self.prog, width=(columns or 80) - 2)


_OWN_COMMANDS = ("list", "infer", "verify", "bench", "simulate", "run", "plot", "warmup")


def _add_list(sub) -> None:
    p = sub.add_parser("list", help="list registered semantics, rounding modes or requantizers")
    p.add_argument("what", choices=["semantics", "rounding", "requantizers", "devices", "energy-models"])
    p.set_defaults(func=_list)


def _add_infer(sub) -> None:
    p = sub.add_parser("infer", help="run a quantized model through hwsim's bit-accurate kernels")
    p.add_argument("model", help="a .tflite or .onnx file")
    p.add_argument(
        "--input",
        required=True,
        help=".npy holding the model input (integer codes or floats); a "
        "batch along axis 0 runs its images over threads",
    )
    p.add_argument("--output", required=True, help=".npy to write the output to")
    p.add_argument(
        "--semantics",
        default=None,
        help="runtime arithmetic to reproduce (default: tflite-reference for .tflite, this host's "
        "onnxruntime for .onnx); see `hwsim list semantics`",
    )
    p.add_argument("--dequantize", action="store_true", help="write real values instead of integer codes")
    p.add_argument("--ort-threads", type=nonnegative_int, default=None, help=ORT_THREADS_HELP)
    p.set_defaults(func=_infer)


def _add_verify(sub) -> None:
    p = sub.add_parser(
        "verify", help="compare hwsim with the real runtime, op by op; exit 0 only when bit-exact"
    )
    p.add_argument("model", help="a .tflite or .onnx file")
    p.add_argument(
        "--against",
        default="all",
        choices=["tflite", "litert", "tflite-micro", "onnxruntime", "onnx-reference", "all"],
        help="runtime to compare with (tflite: TensorFlow's TFLite interpreter, its 3 resolvers; litert: "
        "LiteRT's (ai-edge-litert), its 3 resolvers; tflite-micro: TFLite Micro's interpreter); all: every "
        "installed runtime that reads the file",
    )
    p.add_argument("--samples", type=positive_int, default=4, help="random inputs to compare on")
    p.add_argument("--input", default=None, help=".npy input instead of random ones")
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
    p.add_argument("--ort-threads", type=nonnegative_int, default=None, help=ORT_THREADS_HELP)
    p.set_defaults(func=_verify)


def _add_bench(sub) -> None:
    p = sub.add_parser(
        "bench",
        help="measure kernels against ONNX Runtime, or inference against TFLite and ONNX Runtime, side by "
        "side",
    )
    p.add_argument("what", choices=["kernels", "infer"])
    p.add_argument("--quick", action="store_true", help="smaller shapes, fewer repeats (a smoke run)")
    p.add_argument(
        "--repeats", type=positive_int, default=7, help="timed repeats per case (median is reported)"
    )
    p.set_defaults(func=_bench)


def _add_simulate(sub) -> None:
    from hwsim.devices.options import add_device_options

    p = sub.add_parser("simulate", help="map a model onto a device and run the discrete-event simulation")
    p.add_argument("model", help="a .tflite, .onnx, layer .yaml or SCALE-Sim topology .csv")
    add_device_options(p)
    p.add_argument(
        "--trace", default=None, help="write the timeline as Chrome trace JSON (opens in Perfetto)"
    )
    p.add_argument("--plot", default=None, help="folder to write the latency breakdown and roofline PNGs to")
    p.add_argument("--mappings", action="store_true", help="print each layer's tiling and loop order")
    p.add_argument(
        "--counts",
        action="store_true",
        help="print the action counts the energy model prices, and the traffic per level and operand",
    )
    p.add_argument(
        "--report-dir",
        default=None,
        help="write SCALE-Sim's COMPUTE_REPORT.csv, BANDWIDTH_REPORT.csv and "
        "DETAILED_ACCESS_REPORT.csv here (needs --memory-model scalesim)",
    )
    p.add_argument(
        "--output",
        default=None,
        help="also write the results to this .json (totals and per-layer list) or .csv (a row per layer)",
    )
    p.set_defaults(func=_simulate)


def _add_run(sub) -> None:
    p = sub.add_parser("run", help="run an experiment file: a sweep to a results table, figures and a report")
    p.add_argument("experiment", help="an experiment .yaml (e.g. experiments/default.yaml)")
    p.add_argument("--dry-run", action="store_true", help="list the points and exit")
    p.add_argument("--jobs", type=positive_int, default=1, help="parallel worker processes (default 1)")
    p.add_argument(
        "--resume", action="store_true", help="keep the rows already in the results folder; run the rest"
    )
    p.add_argument(
        "--executor",
        choices=["local", "dask"],
        default="local",
        help="local processes, or an existing Dask cluster (with --scheduler)",
    )
    p.add_argument("--scheduler", default=None, help="Dask scheduler address, e.g. tcp://10.0.0.5:8786")
    p.add_argument("--results", default=None, help="results folder (default: results/<experiment name>)")
    p.add_argument("--limit", type=nonnegative_int, default=None, help="run at most this many missing points")
    p.add_argument(
        "--max-points",
        type=positive_int,
        default=None,
        help="refuse sweeps with more points than this (default 10000; counted before expansion)",
    )
    p.set_defaults(func=_run)


def _add_warmup(sub) -> None:
    p = sub.add_parser(
        "warmup",
        help="compile the kernels the default experiment needs into the shared "
        "cache now (hwsim run does it in the background)",
    )
    p.set_defaults(func=_warmup)


def _add_plot(sub) -> None:
    p = sub.add_parser(
        "plot", help="redraw an experiment's figures and report from its results, without rerunning"
    )
    p.add_argument("results", help="a results folder, or its rows.jsonl / rows.csv / rows.parquet")
    p.add_argument("--out", default=None, help="folder for the figures (default: next to the results)")
    p.add_argument("--plots", default=None, help="comma-separated: pareto,breakdown,roofline,overflow")
    p.set_defaults(func=_plot)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and documentation).

    Given the ``command`` about to run, when it is one defined here, every other command is left out:
    importing the modules that register some of them (energy, quantization, llm) is most of the parser's
    start-up time, and parsing one command needs no other.
    """
    others = command not in _OWN_COMMANDS

    def wanted(name: str) -> bool:  # only the command about to run, when it is one of these
        return others or name == command

    parser = _Parser(
        prog="hwsim",
        description="Bit-accurate simulation of quantized networks on edge AI accelerators.",
    )
    parser.add_argument("--version", action="version", version=f"hwsim {__version__}")
    parser.add_argument(
        "--debug",
        action="store_true",
        help="on an internal error, print the traceback (accepted anywhere on the line)",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    if wanted("list"):
        _add_list(sub)
    if wanted("infer"):
        _add_infer(sub)
    if wanted("verify"):
        _add_verify(sub)
    if wanted("bench"):
        _add_bench(sub)
    if wanted("simulate"):
        _add_simulate(sub)
    if others:
        from hwsim.energy.commands import add_parser as add_energy_parser

        add_energy_parser(sub)
    if wanted("run"):
        _add_run(sub)
    if wanted("warmup"):
        _add_warmup(sub)
    if wanted("plot"):
        _add_plot(sub)
    if others:
        from hwsim.llm.commands import add_parser as add_llm_parser
        from hwsim.quant.commands import add_parsers as add_quant_parsers

        add_quant_parsers(sub)
        add_llm_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command behind the guard (see the module docstring); what the console script runs, and what
    tests call in-process."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("HWSIM_DEBUG", "") not in ("", "0")
    argv = [a for a in argv if a != "--debug"]
    with warnings.catch_warnings():
        warnings.simplefilter("always", HwsimWarning)
        shown: set[str] = set()
        previous = warnings.showwarning
        warnings.showwarning = lambda *a, **k: _show_warning(previous, shown, *a, **k)
        try:
            args = build_parser(argv[0] if argv else None).parse_args(argv)
            return args.func(args)
        except HwsimError as exc:
            _print_error(f"hwsim: error: {_one_line(exc)}", debug)
            return exc.exit_status
        except KeyboardInterrupt:
            _print_error("hwsim: interrupted", debug)
            return 130
        except MemoryError:
            _print_error("hwsim: error: out of memory (an input larger than this machine can hold?)", debug)
            return 2
        except BrokenPipeError:  # `hwsim list devices | head`: the reader left; nothing to report
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the final flush would fail again
            return 141  # what a program the pipe's SIGPIPE ended reports
        except OSError as exc:  # a file or folder the user named cannot be read or written
            from hwsim.guards import os_error_message

            _print_error(f"hwsim: error: {os_error_message(exc)}", debug)
            return 2
        except Exception as exc:  # noqa: BLE001 - the guard: anything else is hwsim's bug
            import traceback  # imported on failure only: it is no part of a run's start-up

            last = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
            where = f" [{os.path.basename(last.filename)}:{last.lineno}]" if last else ""
            hint = "the traceback is above" if debug else "rerun with --debug to see the traceback"
            _print_error(
                f"hwsim: internal error: {type(exc).__name__}: {_one_line(exc)}{where}\n"
                f"hwsim: this is a bug in hwsim; {hint}",
                debug,
            )
            return 1


def _one_line(exc: BaseException, limit: int = 600) -> str:
    """An exception's message on one line (pydantic and others span several), cut at ``limit`` characters."""
    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _print_error(message: str, debug: bool) -> None:
    if debug:
        import traceback

        traceback.print_exc()
    print(message, file=sys.stderr)


def _show_warning(
    previous, shown: set[str], message, category, filename, lineno, file=None, line=None
) -> None:
    if not issubclass(category, HwsimWarning):
        previous(message, category, filename, lineno, file, line)
        return
    text = _one_line(message if isinstance(message, Warning) else Warning(message))
    if text not in shown:
        shown.add(text)
        print(f"hwsim: warning: {text}", file=sys.stderr)


def entry() -> int:
    """The ``hwsim`` console script and ``python -m hwsim``: :func:`main`, in a process that then ends.

    The collector runs after every 100,000 net allocations instead of 700: a command's imports create
    hundreds of thousands of objects that all live to the end, and scanning them again and again took some
    60 collections and 0.05 s of a small network's simulation; cyclic garbage is still collected. Freezing
    the collector's objects at the end spares the interpreter's last collections over every imported
    module's objects on the way out (about 0.1 s): what is still in memory is left to the operating system,
    as at any exit; ``atexit`` handlers run as before. When the command started no thread (a simulation),
    the process then ends at once, its output flushed and its ``atexit`` handlers run: tearing down every
    module took 0.01-0.02 s, 5-8 % of a small network's whole command.
    """
    gc.set_threshold(100_000, 10, 10)
    code = main()
    gc.freeze()
    if "threading" in sys.modules:  # threads to join, or their exit hooks: the interpreter's own exit
        return code
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:  # a reader that went away: the interpreter's own exit reports it, as it always did
        return code
    import atexit

    atexit._run_exitfuncs()
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(entry())
