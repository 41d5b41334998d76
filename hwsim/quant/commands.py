"""The ``hwsim quantize``, ``hwsim accuracy`` and ``hwsim accuracy-table`` subcommands (argument parsing
and printing only; the work is :func:`~hwsim.quant.convert.quantize_model` and
:func:`~hwsim.accuracy.evaluate.evaluate`). Registering them imports no numpy, so that every command's
parser builds fast."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from hwsim.errors import ConfigError
from hwsim.guards import check_output_file, int_list, positive_float

if TYPE_CHECKING:
    import numpy as np


def load_data(path: str | None, what: str, labels: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Inputs (and labels) from a .npz (arrays ``x`` and ``y``), a .npy (inputs only) or an image folder
    (:func:`hwsim.accuracy.data.load_data`); ``what`` is the option's name."""
    from hwsim.accuracy.data import load_data as load

    if path is None:
        raise ConfigError(f"--{what}: give a .npz with arrays x (and y) or a .npy of inputs")
    return load(path, f"--{what}", labels)


def check_data(
    graph, data: tuple | None, what: str, path: str | None, calibration: bool = False
) -> tuple | None:
    """``data`` (inputs, labels) checked against ``graph``'s input shape and number of outputs, inputs as
    float32 (:func:`hwsim.data_checks.check_samples`, :func:`hwsim.data_checks.check_labels`)."""
    import math

    import numpy as np

    from hwsim.data_checks import check_labels, check_samples

    if data is None:
        return None
    where = f"--{what} {path}" if path else f"--{what}"
    x = check_samples(
        data[0], where, model_shape=graph.tensor(graph.inputs[0]).shape, calibration=calibration
    )
    y = data[1]
    if y is not None:
        out = graph.tensor(graph.outputs[0]).shape
        fixed = out and all(isinstance(d, int) and d > 0 for d in out[1:])
        classes = math.prod(out[1:]) if fixed else None
        y = check_labels(y, len(x), where, classes)
    return x.astype(np.float32, copy=False), y


def resolve_model(model: str, args) -> tuple[str, tuple, tuple, tuple | None]:
    """A model path and its calibration, evaluation and training data (built-in names use the digits split
    for what the user does not give). The user's data is checked against the model (:func:`check_data`)
    before the built-in splits load, so a bad file is reported at once."""
    from hwsim.accuracy.builtin import builtin_workload
    from hwsim.quant.convert import load_float_graph

    given = {
        "calib": (args.calib, False),
        "eval": (args.eval, False),  # no labels: agreement with float
        "train": (getattr(args, "train", None), True),
    }
    builtin = None if Path(model).exists() else builtin_workload(model)
    if not builtin and args.calib is None:
        load_data(None, "calib", False)  # raises: a model file needs calibration data
    path = builtin.path if builtin else Path(model)
    graph = load_float_graph(path)
    data = {
        what: check_data(graph, load_data(file, what, labels), what, file, calibration=what == "calib")
        for what, (file, labels) in given.items()
        if file
    }
    if builtin:
        for what, part in (("calib", "calibration"), ("eval", "test"), ("train", "train")):
            if what not in data:
                split = builtin.split(part)
                data[what] = (split.x, None) if what == "calib" else (split.x, split.y)
    return str(path), data["calib"], data.get("eval"), data.get("train")


def _quantized(args):
    from hwsim.quant.convert import quantize_model
    from hwsim.quant.recipe import load_recipe

    recipe = load_recipe(args.recipe or "int8_w_per_channel")
    if getattr(args, "semantics", None):
        recipe = recipe.model_copy(update={"semantics": args.semantics})
    if getattr(args, "output", None):
        check_output_file(args.output, "--output", (".npz", ".json"))
    path, cal, ev, tr = resolve_model(args.model, args)
    qm = quantize_model(path, recipe, cal[0])
    if recipe.qat is not None:
        if tr is None:
            raise ConfigError("--train: the recipe asks for QAT; give training data (.npz with x and y)")
        from hwsim.quant.qat import train_qat

        qm = train_qat(qm, *tr)
    return qm, ev


def quantize_command(args: argparse.Namespace) -> int:
    """``hwsim quantize``: quantize, optionally evaluate, write the integer graph."""
    from hwsim.quant.graph_io import save_integer_graph

    qm, ev = _quantized(args)
    print(
        f"quantized {args.model} with {qm.recipe.name} in {qm.seconds['total']:.2f} s "
        f"({len(qm.layers)} MAC layers, {len(qm.tensors)} activation tensors)"
    )
    if ev is not None and args.eval:
        from hwsim.accuracy.evaluate import evaluate

        print(evaluate(qm, ev[0], ev[1], per_layer=False).table().split("\n  tensor")[0])
    if args.output:
        out = save_integer_graph(qm.integer_graph, args.output, qm.recipe.model_dump(mode="json"))
        print(f"wrote {out}")
    return 0


def accuracy_command(args: argparse.Namespace) -> int:
    """``hwsim accuracy``: float / fake-quant / integer scores and per-layer SQNR of a float model quantized
    with a recipe, or the integer scores of an already-quantized model under ``--semantics``."""
    from hwsim.accuracy.evaluate import evaluate

    graph = quantized_model(args.model)
    if graph is not None:
        from hwsim.accuracy.quantized import evaluate_quantized

        for option in ("recipe", "calib", "train"):
            if getattr(args, option, None):
                raise ConfigError(
                    f"--{option}: {args.model} is already quantized; it takes only --eval and --semantics"
                )
        x, y = load_data(args.eval, "eval", False)
        print(evaluate_quantized(graph, x, y, args.semantics).table())
        return 0
    qm, ev = _quantized(args)
    if ev is None:
        raise ConfigError("--eval: give evaluation data (.npz with x and y)")
    print(evaluate(qm, ev[0], ev[1], per_layer=not args.no_layers).table())
    return 0


def quantized_model(model: str):
    """The graph of ``model`` when it is an already-quantized model file (.tflite, quantized .onnx, an
    integer graph .npz / .json), else None (a float model or a built-in workload name)."""
    path = Path(model)
    if not path.is_file() or path.suffix not in (".tflite", ".onnx", ".npz", ".json"):
        return None
    from hwsim.accuracy.quantized import is_quantized
    from hwsim.importers import load_model

    graph = load_model(path)
    return graph if is_quantized(graph) else None


def mixed_command(args: argparse.Namespace) -> int:
    """``hwsim mixed-precision``: layer sensitivity, a bit allocation under a budget, its accuracy."""
    from hwsim.accuracy.evaluate import evaluate
    from hwsim.quant.convert import load_float_graph, quantize_model
    from hwsim.quant.mixed import allocate_bits, layer_sensitivity, mac_layers
    from hwsim.quant.recipe import load_recipe

    if args.average_bits is None and args.budget_bytes is None and args.budget_bitops is None:
        raise ConfigError("budget: give --average-bits, --budget-bytes or --budget-bitops")
    recipe = load_recipe(args.recipe)
    if args.output:
        check_output_file(args.output, "--output", (".yaml", ".yml"))
    path, cal, ev, _ = resolve_model(args.model, args)
    bits = args.bits
    layers = mac_layers(load_float_graph(path))
    if args.average_bits is not None:
        kind, budget = "size_bytes", sum(n for _, n, _ in layers) * args.average_bits / 8.0
    elif args.budget_bytes is not None:
        kind, budget = "size_bytes", args.budget_bytes
    else:
        kind, budget = "bitops", args.budget_bitops
    sens = layer_sensitivity(path, recipe, cal[0], bits)
    header = " ".join(f"{b:>5d}b" for b in bits)
    print(f"{'layer':24s} {header}   (output SQNR dB, one layer at a time)")
    for name in dict.fromkeys(s.layer for s in sens):
        row = {s.bits: s.sqnr_db for s in sens if s.layer == name}
        print(f"{name:24s} " + " ".join(f"{row[b]:6.1f}" for b in bits))
    alloc = allocate_bits(
        path,
        recipe,
        cal[0],
        budget=budget,
        budget_kind=kind,
        bits=bits,
        sensitivity=sens,
        objective=args.objective,
    )
    print(
        f"allocation ({kind} {alloc.cost:.0f} of {budget:.0f}; {alloc.source}): "
        + ", ".join(f"{n} {b}b" for n, b in alloc.bits.items())
    )

    def score(s: tuple) -> str:
        agree = f"agreement with float {100 * s[0]:.2f} %, " if len(s) == 2 else ""
        return f"{agree}output SQNR {s[-1]:.2f} dB"

    print(
        f"on the calibration data: {score(alloc.score)}; uniform {alloc.uniform_bits}-bit: "
        f"{score(alloc.uniform_score)}"
    )
    if ev is not None:
        for r in (
            alloc.recipe,
            recipe.model_copy(
                update={
                    "name": f"{recipe.name} uniform W{alloc.uniform_bits}",
                    "weights": recipe.weights.model_copy(update={"bits": alloc.uniform_bits}),
                }
            ),
        ):
            rep = evaluate(quantize_model(path, r, cal[0]), ev[0], ev[1], per_layer=False)
            print(rep.table().split("\n  tensor")[0])
    if args.output:
        Path(args.output).write_text("schema_version: 1\n" + alloc.recipe.to_yaml())
        print(f"wrote {args.output}")
    return 0


def table_command(args: argparse.Namespace) -> int:
    """``hwsim accuracy-table``: the README table."""
    from hwsim.quant.table import run

    if args.json:
        check_output_file(args.json, "--json", (".json",))
    return run(args)


def add_parsers(sub) -> None:
    """Register the subcommands on the ``hwsim`` parser's subparsers."""
    help_model = "a float .onnx model, or a built-in workload: cnn_bn, dsconv, mlp (digits data by default)"
    help_recipe = "a recipe .yaml or a preset name (int8_w_per_channel, ...; see hwsim.quant.recipe.PRESETS)"
    for name, func, helptext in (
        ("quantize", quantize_command, "quantize a float model with a recipe; write the integer graph"),
        ("accuracy", accuracy_command, "float, fake-quant and integer-datapath accuracy, per-layer SQNR"),
    ):
        p = sub.add_parser(name, help=helptext)
        p.add_argument(
            "model",
            help=help_model
            if name == "quantize"
            else help_model + "; or an already-quantized .tflite / .onnx / integer graph .npz/.json",
        )
        p.add_argument("--recipe", default=None, help=help_recipe + " (default int8_w_per_channel)")
        p.add_argument("--calib", default=None, help="calibration inputs: .npz (array x) or .npy")
        p.add_argument(
            "--eval",
            default=None,
            help="evaluation data: .npz with x and y (class labels or "
            "real targets; without y, scores against the float model)",
        )
        p.add_argument(
            "--semantics",
            default=None,
            help="runtime arithmetic of the integer run (default: "
            "the "
            "recipe's, or an already-quantized model's own); see `hwsim list semantics`",
        )
        p.add_argument("--train", default=None, help="training data for QAT recipes: .npz with x and y")
        if name == "quantize":
            p.add_argument("--output", default=None, help="write the integer graph to this .npz or .json")
        else:
            p.add_argument("--no-layers", action="store_true", help="accuracies only, no per-layer table")
        p.set_defaults(func=func)
    p = sub.add_parser(
        "mixed-precision",
        help="rank layers by sensitivity and propose per-layer weight widths under a size or BitOps budget",
    )
    p.add_argument("model", help=help_model)
    p.add_argument("--recipe", default="int8_w_per_channel", help=help_recipe)
    p.add_argument("--calib", default=None, help="calibration inputs: .npz (array x) or .npy")
    p.add_argument("--eval", default=None, help="evaluation data to measure the allocation on (.npz x, y)")
    p.add_argument(
        "--bits",
        type=int_list(1, 16),
        default=(2, 3, 4, 5, 6, 7, 8),
        help="candidate weight widths, 1..16 (comma-separated; default 2,3,4,5,6,7,8)",
    )
    p.add_argument(
        "--objective",
        default="auto",
        choices=("auto", "agreement", "sqnr"),
        help="what the measured pick maximises: argmax agreement with the float model, then "
        "output SQNR (auto: for a (N, classes) output), or output SQNR",
    )
    p.add_argument(
        "--average-bits",
        type=positive_float,
        default=None,
        help="budget: this many bits per weight on average",
    )
    p.add_argument(
        "--budget-bytes", type=positive_float, default=None, help="budget: weight storage in bytes"
    )
    p.add_argument(
        "--budget-bitops",
        type=positive_float,
        default=None,
        help="budget: MACs x weight bits x activation bits",
    )
    p.add_argument("--output", default=None, help="write the proposed recipe (with overrides) to this YAML")
    p.set_defaults(func=mixed_command)

    from hwsim.quant.table import add_arguments

    p = sub.add_parser("accuracy-table", help="the README accuracy table on the built-in workloads")
    add_arguments(p)
    p.set_defaults(func=table_command)
