"""The README's accuracy table: built-in workloads x recipes, fake-quant and integer accuracy.

    python -m hwsim.quant.table            # or: hwsim accuracy-table
    hwsim accuracy-table --workloads dsconv --no-qat

Each cell reads ``integer / fake-quant (n)``: test top-1 (%) measured on hwsim's integer datapath
(``run_graph`` under the recipe's semantics, tflite-reference by default), the same with fake
quantization, and n the number of test samples whose two predictions differ. Calibration uses the first
256 training samples, evaluation the 540 test samples (:mod:`hwsim.accuracy.datasets`); QAT rows train
on the 1,257 training samples. Nothing here is tuned on the test data.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass

from hwsim.accuracy.builtin import BUILTIN_WORKLOADS

WORKLOADS = tuple(BUILTIN_WORKLOADS)


@dataclass(frozen=True)
class Row:
    """One line of the table: a label, its granularity and method, the recipe, and whether QAT follows."""

    label: str
    granularity: str
    method: str
    recipe: dict
    qat: bool = False


def _r(
    name: str,
    wbits: int,
    gran: str = "per_channel",
    wrange: str = "minmax",
    abits: int = 8,
    calib: str = "minmax",
    **extra,
) -> dict:
    weights = {"bits": wbits, "granularity": gran, "range": wrange}
    if gran == "per_group":
        weights["group_size"] = 16
    weights.update(extra.pop("weights", {}))
    return {"name": name, "weights": weights, "activations": {"bits": abits, "calibration": calib}, **extra}


A4 = {"output_bits": 8}  # logits stay at 8 bits in A4 rows (4-bit logits tie too often for an argmax)
ROWS: tuple[Row, ...] = (
    Row("W8A8", "per-tensor", "min-max", _r("w8a8_pt", 8, "per_tensor")),
    Row(
        "W8A8",
        "per-tensor",
        "CLE + bias corr.",
        _r("w8a8_pt_cle", 8, "per_tensor", equalize=True, bias_correction=True),
    ),
    Row("W8A8", "per-channel", "min-max", _r("w8a8_pc", 8)),
    Row(
        "W8 dyn.", "per-channel", "dynamic (per-input ranges)", _r("w8_dyn", 8, activations={"dynamic": True})
    ),
    Row(
        "W8 dyn.",
        "per-channel",
        "LLM.int8 outliers >= 6",
        _r("w8_llmint8", 8, activations={"dynamic": True, "symmetric": True}, outliers={}),
    ),
    Row("W6A8", "per-tensor", "min-max", _r("w6a8_pt", 6, "per_tensor")),
    Row("W6A8", "per-channel", "min-max", _r("w6a8_pc", 6)),
    Row("W4A8", "per-tensor", "min-max", _r("w4a8_pt", 4, "per_tensor")),
    Row("W4A8", "per-tensor", "CLE", _r("w4a8_pt_cle", 4, "per_tensor", equalize=True)),
    Row(
        "W4A8",
        "per-tensor",
        "CLE + bias corr.",
        _r("w4a8_pt_cle_bc", 4, "per_tensor", equalize=True, bias_correction=True),
    ),
    Row("W4A8", "per-tensor", "MSE", _r("w4a8_pt_mse", 4, "per_tensor", "mse")),
    Row("W4A8", "per-channel", "min-max", _r("w4a8_pc", 4)),
    Row("W4A8", "per-channel", "MSE", _r("w4a8_pc_mse", 4, wrange="mse")),
    Row("W4A8", "per-channel", "MSE + AdaRound", _r("w4a8_pc_mse_ada", 4, wrange="mse", adaround={})),
    Row("W4A8", "per-group 16", "MSE", _r("w4a8_pg16_mse", 4, "per_group", "mse")),
    Row("W4A8", "per-channel", "log2 levels", _r("w4a8_log2", 4, weights={"scheme": "log2"})),
    Row("W4A8", "per-channel", "k-means (16 entries)", _r("w4a8_kmeans", 4, weights={"scheme": "kmeans"})),
    Row("W4A8", "per-channel", "MSE + QAT (LSQ)", _r("w4a8_pc_mse_qat", 4, wrange="mse", qat={}), qat=True),
    Row("W3A8", "per-channel", "MSE", _r("w3a8_pc_mse", 3, wrange="mse")),
    Row("W3A8", "per-channel", "MSE + AdaRound", _r("w3a8_pc_mse_ada", 3, wrange="mse", adaround={})),
    Row("W2A8", "per-channel", "MSE", _r("w2a8_pc_mse", 2, wrange="mse")),
    Row("W2A8", "per-channel", "MSE + AdaRound", _r("w2a8_pc_mse_ada", 2, wrange="mse", adaround={})),
    Row("W2A8", "per-channel", "ternary", _r("w2a8_ternary", 2, weights={"scheme": "ternary"})),
    Row("W2A8", "per-channel", "MSE + QAT (LSQ)", _r("w2a8_pc_mse_qat", 2, wrange="mse", qat={}), qat=True),
    Row("W1A8", "per-channel", "binary", _r("w1a8_binary", 1, weights={"scheme": "binary"})),
    Row(
        "W4A4", "per-channel", "MSE, act. MSE", _r("w4a4_pc_mse", 4, wrange="mse", abits=4, calib="mse", **A4)
    ),
    Row(
        "W4A4",
        "per-channel",
        "MSE + AdaRound, act. MSE",
        _r("w4a4_pc_mse_ada", 4, wrange="mse", abits=4, calib="mse", adaround={}, **A4),
    ),
    Row(
        "W4A4",
        "per-channel",
        "MSE + QAT (LSQ)",
        _r("w4a4_pc_mse_qat", 4, wrange="mse", abits=4, calib="mse", qat={}, **A4),
        qat=True,
    ),
)


def workload(name: str):
    """(model path, calibration inputs, test split, train split) of built-in workload ``name``."""
    w = BUILTIN_WORKLOADS[name]
    return w.path, w.split("calibration").x, w.split("test"), w.split("train")


def measure(name: str, row: Row):
    """The :class:`~hwsim.accuracy.evaluate.AccuracyReport` of one cell."""
    from hwsim.accuracy.evaluate import evaluate
    from hwsim.quant.convert import quantize_model
    from hwsim.quant.recipe import QuantRecipe

    path, calib, test, train = workload(name)
    recipe = QuantRecipe.model_validate(row.recipe)
    qm = quantize_model(path, recipe, calib)
    if row.qat:
        from hwsim.quant.qat import train_qat

        qm = train_qat(qm, train.x, train.y)
    return evaluate(qm, test.x, test.y, per_layer=False)


def build_table(workloads=WORKLOADS, rows=ROWS, out=sys.stdout) -> list[dict]:
    """Measure every (row, workload) cell, print the markdown table to ``out`` and return the records."""
    records = []
    floats = {}
    t0 = time.perf_counter()
    for row in rows:
        for name in workloads:
            t = time.perf_counter()
            rep = measure(name, row)
            floats[name] = rep.float_top1
            records.append(
                {
                    "workload": name,
                    "label": row.label,
                    "granularity": row.granularity,
                    "method": row.method,
                    "recipe": row.recipe,
                    "float": rep.float_top1,
                    "fake_quant": rep.fake_quant_top1,
                    "integer": rep.integer_top1,
                    "disagree": int(round((1 - rep.agreement) * rep.samples)),
                    "seconds": time.perf_counter() - t,
                }
            )
    header = "| bits | granularity | method | " + " | ".join(f"digits_{w}" for w in workloads) + " |"
    print(header, file=out)
    print("|" + "---|" * (3 + len(workloads)), file=out)
    print("| float | | | " + " | ".join(f"{100 * floats[w]:.2f}" for w in workloads) + " |", file=out)
    for row in rows:
        cells = []
        for w in workloads:
            rec = next(r for r in records if r["workload"] == w and r["recipe"] is row.recipe)
            cells.append(f"{100 * rec['integer']:.2f} / {100 * rec['fake_quant']:.2f} ({rec['disagree']})")
        print(f"| {row.label} | {row.granularity} | {row.method} | " + " | ".join(cells) + " |", file=out)
    print(f"\n{len(records)} cells in {time.perf_counter() - t0:.0f} s", file=out)
    return records


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m hwsim.quant.table [--workloads a,b] [--no-qat] [--json out.json]``."""
    p = argparse.ArgumentParser(prog="hwsim accuracy-table", description=__doc__.split("\n\n")[0])
    add_arguments(p)
    return run(p.parse_args(argv))


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of the table command (shared with ``hwsim accuracy-table``)."""
    p.add_argument("--workloads", default=",".join(WORKLOADS), help="comma-separated: cnn_bn, dsconv, mlp")
    p.add_argument(
        "--no-qat", action="store_true", help="skip the QAT rows (they need torch and take longest)"
    )
    p.add_argument("--json", default=None, help="also write every cell as JSON to this file")


def run(args) -> int:
    """Build the table from parsed arguments."""
    rows = tuple(r for r in ROWS if not (args.no_qat and r.qat))
    records = build_table(tuple(args.workloads.split(",")), rows)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(records, fh, indent=1)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
