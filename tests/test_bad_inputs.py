"""Bad inputs and faults, as a user meets them: each case runs the ``hwsim`` command (its ``main()`` in this
process, or a subprocess under memory and time limits for the resource cases) and checks the exit status,
that stderr is a one-line ``hwsim: error: ...`` without a traceback, and that it names the file or field.

The cases are those of issue 15 (tracebacks, runs that had to be killed, values accepted without a word,
dishonest exit statuses, results files) and their neighbours.
"""

from __future__ import annotations

import json
import os
import re
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from hwsim.cli import main
from hwsim.paths import data_dir

ROOT = Path(__file__).resolve().parents[1]
TINY = str(data_dir("workloads") / "tiny.yaml")
TFLITE = str(ROOT / "tests" / "data" / "ethos_u" / "kws_ds_cnn.tflite")
HEXAGON = (data_dir("accelerators") / "hexagon_like.yaml").read_text()
LATIN1 = b"# caf\xe9 au lait\nname: x\n"


def laughs(levels: int = 9) -> str:
    """A "billion laughs" YAML: each level a list of ten aliases of the one before (10^9 leaves)."""
    out = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for prev, cur in zip("abcdefghij", "bcdefghijk"[: levels - 1]):
        out.append(f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 10) + "]")
    return "\n".join(out) + "\n"


EXPERIMENT = """\
schema_version: 1
name: bad
workloads: [digits_mlp]
devices: [hexagon_like]
recipes: [int8_w_per_channel]
evaluation: {calibration_samples: 8, test_samples: 8}
metrics: [latency]
plots: []
"""


def experiment(tmp: Path, name: str, sweep: str = "", **replace) -> Path:
    text = EXPERIMENT.replace("name: bad", f"name: {name}")
    for old, new in replace.items():
        text = text.replace(old, new)
    path = tmp / f"{name}.yaml"
    path.write_text(text + sweep)
    return path


@pytest.fixture(scope="module")
def f(tmp_path_factory) -> dict[str, str]:
    """Every bad file the cases need, by name."""
    tmp = tmp_path_factory.mktemp("bad")
    paths: dict[str, str] = {"tmp": str(tmp), "TINY": TINY, "TFLITE": TFLITE}

    def write(name: str, data: str | bytes) -> None:
        p = tmp / name
        p.write_bytes(data if isinstance(data, bytes) else data.encode())
        paths[name] = str(p)

    def npy(name: str, array) -> None:
        np.save(tmp / name, array)
        paths[name] = str(tmp / name)

    for name in (
        "dev_latin1.yaml",
        "layers_latin1.yaml",
        "recipe_latin1.yaml",
        "energy_latin1.yaml",
        "exp_latin1.yaml",
        "cfg_latin1.cfg",
        "topo_latin1.csv",
    ):
        write(name, LATIN1)
    write("dev_laughs.yaml", laughs())
    write("exp_laughs.yaml", "schema_version: 1\nname: x\n" + laughs())
    write("layers_laughs.yaml", laughs())
    write("dev_nested.yaml", "a: " + "[" * 600 + "]" * 600 + "\n")
    write("dev_clock_inf.yaml", HEXAGON.replace("clock_mhz: ", "clock_mhz: .inf #"))
    write("dev_clock_nan.yaml", HEXAGON.replace("clock_mhz: ", "clock_mhz: .nan #"))
    write("dev_clock_neg.yaml", HEXAGON.replace("clock_mhz: ", "clock_mhz: -5 #"))
    write(
        "dev_huge_array.yaml",
        HEXAGON.replace("rows: ", "rows: 1000000000 #", 1).replace("columns: ", "columns: 1000000000 #", 1),
    )
    write("dev_sram_1b.yaml", _sram_size(HEXAGON, 1))
    write("dev_volt_neg.yaml", HEXAGON.replace("voltage_v: ", "voltage_v: -1 #"))
    write("not_results.yaml", EXPERIMENT)
    write("bad.onnx", b"garbage\x00\x01")
    write("bad.tflite", b"garbage\x00\x01")
    write("empty.yaml", "")
    write("scalar.yaml", "x\n")
    write("list.yaml", "- 1\n- 2\n")
    write(
        "badop.yaml",
        "schema_version: 1\nname: x\ninput: {shape: [1, 8, 8, 3], dtype: int8}\n"
        "layers:\n  - {name: c, op: conv9d}\n",
    )
    write("bad_topo.csv", "Layer name, IFMAP Height,\nconv1, abc,\n")
    write("bad.cfg", "[general]\nrun_name = x\n[architecture_presets]\nArrayHeight: 0\n")
    write("recipe_pg.yaml", "schema_version: 1\nname: r\nweights: {bits: 4, granularity: per_group}\n")
    write("dev_typo.yaml", HEXAGON.replace("clock_mhz:", "clock_mhzz:"))
    write("dev_dup.yaml", HEXAGON.replace("clock_mhz:", "clock_mhz: 100\nclock_mhz:"))
    write("dev_type.yaml", HEXAGON.replace("clock_mhz: ", "clock_mhz: fast #"))
    write("exp_typo.yaml", EXPERIMENT.replace("workloads:", "workload:"))
    write("exp_root.yaml", EXPERIMENT + "sweep:\n  grid:\n    recipes.weights.bits: [8]\n")
    write(
        "exp_zip.yaml",
        EXPERIMENT + "sweep:\n  zip:\n    recipe.weights.bits: [8, 4]\n    recipe.activations.bits: [8]\n",
    )
    recipe = "schema_version: 1\nname: r\n"
    for name, text in (
        ("r_bits", "weights: {bits: 99}"),
        ("r_key", "weigths: {bits: 4}"),
        ("r_sem", "semantics: tflite-referense"),
        ("r_round", "rounding: banker"),
        ("r_tab", "\tweights: {bits: 4}"),
    ):
        write(f"{name}.yaml", recipe + text + "\n")
    write("r_ver.yaml", "schema_version: 2\nname: r\n")
    layers = "schema_version: 1\nname: x\ninput: {shape: [1, 8, 8, 3], dtype: int8}\nlayers:\n"
    write(
        "l_shape.yaml",
        layers.replace("[1, 8,", "[1, 0,") + "  - {name: c, op: conv2d, out_channels: 4, kernel: 3}\n",
    )
    write(
        "l_kernel.yaml", layers + "  - {name: c, op: conv2d, out_channels: 4, kernel: 30, padding: valid}\n"
    )
    write("l_input.yaml", layers + "  - {name: c, op: add, inputs: [nope, input]}\n")
    write(
        "l_dtype.yaml",
        layers.replace("int8", "int7") + "  - {name: c, op: conv2d, out_channels: 4, kernel: 3}\n",
    )
    write("l_none.yaml", layers.replace("layers:\n", "layers: []\n"))
    write("d_dataflow.yaml", HEXAGON.replace("dataflow: ", "dataflow: sideways #", 1))
    write("d_nomem.yaml", HEXAGON.split("memories:")[0])
    write(
        "d_bw0.yaml",
        HEXAGON.replace("read_bandwidth_bytes_per_cycle: ", "read_bandwidth_bytes_per_cycle: 0 #", 1),
    )
    write("d_acc.yaml", HEXAGON.replace("accumulator_bits: ", "accumulator_bits: 4 #", 1))
    write("d_ver.yaml", HEXAGON.replace("schema_version: 1", "schema_version: 7"))
    cfg = "[general]\nrun_name = x\n[architecture_presets]\n"
    write("c_key.cfg", cfg + "ArrayHieght: 8\n")
    write("c_neg.cfg", cfg + "ArrayHeight: -8\n")
    header = (
        "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
    )
    write("t_empty.csv", "")
    write("t_neg.csv", header + "c, -8, 8, 3, 3, 3, 8, 1,\n")
    write("t_filter.csv", header + "c, 8, 8, 30, 3, 3, 8, 1,\n")
    for name, old, new in (
        ("e_metric", "[latency]", "[speed]"),
        ("e_plot", "plots: []", "plots: [pie]"),
        ("e_name", "name: bad", "name: 'a b/c'"),
        ("e_empty", "[digits_mlp]", "[]"),
        ("e_recipe", "[int8_w_per_channel]", "[int9_x]"),
    ):
        write(f"{name}.yaml", EXPERIMENT.replace(old, new))
    write("e_item.yaml", EXPERIMENT + "sweep:\n  grid:\n    device.memories.nosuch.size_bytes: [1024]\n")
    np.savez(tmp / "n_x3d.npz", x=np.ones((4, 8, 8), np.float32), y=np.zeros(4, int))
    np.savez(tmp / "n_empty.npz")
    npy("n_complex.npy", np.ones((4, 64), np.complex64))
    write("n_zip.npz", b"PK\x03\x04garbage")
    npy("in_shape.npy", np.ones((1, 3, 3), np.int8))
    for name in ("n_x3d.npz", "n_empty.npz"):
        paths[name] = str(tmp / name)
    write("a_file", "x")
    write("text.npy", "not an array")
    # .npy files
    header = b"{'descr': '<f4', 'fortran_order': False, 'shape': (1000000, 1000000), }"
    header += b" " * (117 - len(header)) + b"\n"
    write("huge.npy", b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + b"\0" * 64)
    header = b"{'descr': '<f4', 'fortran_order': False, 'shape': (4, 49, 10, 1), }"
    header += b" " * (117 - len(header)) + b"\n"
    write("truncated.npy", b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + b"\0" * 64)
    with open(tmp / "object.npy", "wb") as fh:
        np.lib.format.write_array(fh, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    paths["object.npy"] = str(tmp / "object.npy")
    x = np.zeros((2, 49, 10, 1), np.float32)
    npy("inf.npy", np.where(np.arange(x.size).reshape(x.shape) == 7, np.inf, x).astype(np.float32))
    npy("nan.npy", np.full((2, 49, 10, 1), np.nan, np.float32))
    np.savez(tmp / "input.npz", x=x)
    paths["input.npz"] = str(tmp / "input.npz")
    npy("good_input.npy", np.ones((1, 49, 10, 1), np.int8))
    # calibration and evaluation data for the digits MLP (64 inputs, 10 classes)
    rng = np.random.default_rng(0)
    good = rng.random((16, 64)).astype(np.float32) * 16
    npy("calib_zeros.npy", np.zeros((16, 64), np.float32))
    npy("calib_const.npy", np.full((16, 64), 3.0, np.float32))
    npy("calib_nan.npy", np.where(good > 15, np.nan, good))
    npy("calib_inf.npy", np.where(good > 15, np.inf, good))
    npy("calib_3e38.npy", np.where(good > 15, 3e38, good).astype(np.float32))
    npy("calib_shape.npy", rng.random((16, 8, 8)).astype(np.float32))
    npy("calib_text.npy", np.array(["a", "b"]))
    npy("calib_empty.npy", np.zeros((0, 64), np.float32))
    for name, y in (
        ("eval_range.npz", np.full(16, 10)),
        ("eval_neg.npz", np.full(16, -1)),
        ("eval_frac.npz", np.full(16, 0.5)),
        ("eval_count.npz", np.zeros(15, int)),
        ("eval_2d.npz", np.zeros((16, 10), int)),
    ):
        np.savez(tmp / name, x=good, y=y)
        paths[name] = str(tmp / name)
    np.savez(tmp / "eval_no_x.npz", y=np.zeros(len(good), np.int64))
    paths["eval_no_x.npz"] = str(tmp / "eval_no_x.npz")
    # experiments
    for name, sweep, replace in (
        ("exp_bits0", "sweep:\n  grid:\n    recipe.weights.bits: [8, 0]\n", {}),
        ("exp_rows0", "sweep:\n  grid:\n    device.mac_array.rows: [16, 0]\n", {}),
        ("exp_volt", "sweep:\n  zip:\n    energy.voltage_v: [0.8, -1]\n", {}),
        (
            "exp_samples",
            "sweep:\n  random:\n    samples: 3\n    axes:\n"
            "      evaluation.test_samples: {low: -2000, high: 0, integer: true}\n",
            {},
        ),
        ("exp_no_workload", "", {"[digits_mlp]": "[missing_model.onnx]"}),
        ("exp_no_device", "", {"[hexagon_like]": "[hexagon_lik]"}),
        ("exp_inline", "", {"[int8_w_per_channel]": "[{name: w99, weights: {bits: 99}}]"}),
        (
            "exp_huge",
            "sweep:\n  grid:\n"  # 100 x 100 x 64 points
            f"    evaluation.calibration_samples: {list(range(1, 101))}\n"
            f"    evaluation.test_samples: {list(range(1, 101))}\n"
            f"    run.verify_samples: {list(range(1, 65))}\n",
            {},
        ),
        (
            "exp_twelve",
            "sweep:\n  grid:\n    recipe.weights.bits: [8, 7, 6, 5, 4, 3]\n"
            "    recipe.weights.granularity: [per_tensor, per_channel]\n",
            {},
        ),
        ("exp_one", "", {}),
    ):
        paths[name] = str(experiment(tmp, name, sweep, **replace))
    return paths


def _sram_size(text: str, size: int) -> str:
    head, sep, tail = text.partition("kind: sram")
    assert sep, "hexagon_like has an SRAM level"
    before, key, after = tail.partition("size_bytes: ")
    return head + sep + before + key + str(size) + " #" + after


def fill(text: str, files: dict[str, str]) -> str:
    """``text`` with each ``{name}`` replaced by the path of that file."""
    return re.sub(r"\{([^}]+)\}", lambda m: files[m.group(1)], text)


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    """``hwsim ARGV`` in this process: exit status, stdout, stderr (warnings as the CLI prints them)."""
    with warnings.catch_warnings():
        code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def one_line_error(err: str, *named: str) -> None:
    """``err`` is one ``hwsim: error:`` line, without a traceback, that contains every string in ``named``
    (after the progress bar of ``hwsim run``, if any)."""
    lines = [line for line in err.strip().splitlines() if not line.startswith("[")]
    assert len(lines) == 1 and lines[0].startswith("hwsim: error: "), err
    assert "Traceback" not in err
    for text in named:
        assert text in lines[0], (text, lines[0])


# (id, the command line (words; {name} is the path of that file), what the message must name, " | " between)
CASES = [
    ("device yaml not utf-8", "simulate {TINY} --device {dev_latin1.yaml}", "dev_latin1.yaml:1: | UTF-8"),
    (
        "layer yaml not utf-8",
        "simulate {layers_latin1.yaml} --device hexagon_like",
        "layers_latin1.yaml:1: | not UTF-8",
    ),
    (
        "recipe yaml not utf-8",
        "quantize digits_mlp --recipe {recipe_latin1.yaml}",
        "recipe_latin1.yaml:1: | UTF-8",
    ),
    (
        "energy table not utf-8",
        "energy {TINY} --device hexagon_like --energy-model {energy_latin1.yaml}",
        "energy_latin1.yaml | UTF-8",
    ),
    ("experiment not utf-8", "run {exp_latin1.yaml} --dry-run", "exp_latin1.yaml:1: | UTF-8"),
    ("scalesim cfg not utf-8", "simulate {TINY} --device {cfg_latin1.cfg}", "cfg_latin1.cfg:1: | UTF-8"),
    (
        "scalesim csv not utf-8",
        "simulate {topo_latin1.csv} --device hexagon_like",
        "topo_latin1.csv:1: | UTF-8",
    ),
    ("device billion laughs", "simulate {TINY} --device {dev_laughs.yaml}", "dev_laughs.yaml: | 200,000"),
    ("experiment billion laughs", "run {exp_laughs.yaml} --dry-run", "exp_laughs.yaml: | 200,000"),
    (
        "layers billion laughs",
        "simulate {layers_laughs.yaml} --device hexagon_like",
        "layers_laughs.yaml: | 200,000",
    ),
    ("yaml nested 600 deep", "simulate {TINY} --device {dev_nested.yaml}", "dev_nested.yaml | nested"),
    ("onnx garbage", "simulate {bad.onnx} --device hexagon_like", "bad.onnx | not a readable ONNX model"),
    ("tflite garbage", "simulate {bad.tflite} --device hexagon_like", "bad.tflite | not a TFLite flatbuffer"),
    ("verify tflite garbage", "verify {bad.tflite}", "bad.tflite | not a TFLite flatbuffer"),
    ("quantize onnx garbage", "quantize {bad.onnx} --calib {calib_zeros.npy}", "bad.onnx"),
    ("empty layer yaml", "simulate {empty.yaml} --device hexagon_like", "empty.yaml:1: | empty"),
    (
        "scalar layer yaml",
        "simulate {scalar.yaml} --device hexagon_like",
        "scalar.yaml:1: | expected a mapping",
    ),
    ("list device yaml", "simulate {TINY} --device {list.yaml}", "list.yaml:1: | expected a mapping"),
    ("list experiment", "run {list.yaml} --dry-run", "list.yaml:1: | expected a mapping"),
    ("list energy table", "energy {TINY} --device hexagon_like --energy-model {list.yaml}", "list.yaml:1:"),
    (
        "unknown layer op",
        "simulate {badop.yaml} --device hexagon_like",
        "badop.yaml:5: | layers[0].op | 'conv2d'",
    ),
    ("topology csv row", "simulate {bad_topo.csv} --device hexagon_like", "bad_topo.csv:2: | IFMAP Width"),
    ("scalesim cfg zero", "simulate {TINY} --device {bad.cfg}", "bad.cfg:4: | ArrayHeight"),
    ("recipe cross-field", "quantize digits_mlp --recipe {recipe_pg.yaml}", "recipe_pg.yaml:3: | group_size"),
    (
        "device key typo",
        "simulate {TINY} --device {dev_typo.yaml}",
        "dev_typo.yaml: | did you mean 'clock_mhz'",
    ),
    ("device duplicate key", "simulate {TINY} --device {dev_dup.yaml}", "dev_dup.yaml: | duplicate key"),
    ("device wrong type", "simulate {TINY} --device {dev_type.yaml}", "dev_type.yaml: | clock_mhz | 'fast'"),
    ("experiment key typo", "run {exp_typo.yaml} --dry-run", "exp_typo.yaml:3: | did you mean 'workloads'"),
    ("experiment axis root", "run {exp_root.yaml} --dry-run", "exp_root.yaml: | did you mean 'recipe'"),
    ("experiment zip lengths", "run {exp_zip.yaml} --dry-run", "exp_zip.yaml: | equal lengths"),
    ("model missing", "simulate {tmp}/none.onnx --device hexagon_like", "none.onnx | no such file"),
    ("device is a folder", "simulate {TINY} --device {tmp}", "Is a directory"),
    ("model is a folder", "simulate {tmp} --device hexagon_like", "unknown model format"),
    (
        "energy table not yaml",
        "energy {TINY} --device hexagon_like --energy-model /etc/hostname",
        "/etc/hostname",
    ),
    ("list what", "list foo", "invalid choice: 'foo'"),
    ("memory model", "simulate {TINY} --device hexagon_like --memory-model foo", "--memory-model | foo"),
    (
        "system config off Ethos-U",
        "simulate {TINY} --device hexagon_like --system-config S",
        "--system-config | not an Ethos-U device",
    ),
    (
        "recipe bits 99",
        "quantize digits_mlp --recipe {r_bits.yaml}",
        "r_bits.yaml:3: weights.bits | (got 99)",
    ),
    ("recipe key typo", "quantize digits_mlp --recipe {r_key.yaml}", "r_key.yaml:3: weigths | 'weights'"),
    ("recipe version", "quantize digits_mlp --recipe {r_ver.yaml}", "r_ver.yaml:1: schema_version"),
    (
        "recipe semantics",
        "quantize digits_mlp --recipe {r_sem.yaml}",
        "r_sem.yaml:3: semantics | 'tflite-reference'",
    ),
    ("recipe rounding", "quantize digits_mlp --recipe {r_round.yaml}", "r_round.yaml:3: rounding | 'banker'"),
    ("recipe tab", "quantize digits_mlp --recipe {r_tab.yaml}", "r_tab.yaml:3: not valid YAML"),
    ("recipe preset typo", "quantize digits_mlp --recipe int9_nothing", "'int9_nothing' | Presets:"),
    ("layer zero dim", "simulate {l_shape.yaml} --device hexagon_like", "l_shape.yaml:3: input.shape[1]"),
    (
        "layer kernel too big",
        "simulate {l_kernel.yaml} --device hexagon_like",
        "l_kernel.yaml:5: layers[0].kernel",
    ),
    ("layer unknown input", "simulate {l_input.yaml} --device hexagon_like", "l_input.yaml:5: | 'nope'"),
    ("layer dtype", "simulate {l_dtype.yaml} --device hexagon_like", "l_dtype.yaml:3: input.dtype | 'int7'"),
    ("layer list empty", "simulate {l_none.yaml} --device hexagon_like", "l_none.yaml:4: layers"),
    ("device dataflow", "simulate {TINY} --device {d_dataflow.yaml}", "d_dataflow.yaml: | 'sideways'"),
    ("device no memories", "simulate {TINY} --device {d_nomem.yaml}", "d_nomem.yaml: | memories"),
    (
        "device bandwidth 0",
        "simulate {TINY} --device {d_bw0.yaml}",
        "d_bw0.yaml: | read_bandwidth_bytes_per_cycle",
    ),
    (
        "device accumulator 4",
        "simulate {TINY} --device {d_acc.yaml}",
        "d_acc.yaml: | mac_array.accumulator_bits",
    ),
    ("device version", "simulate {TINY} --device {d_ver.yaml}", "d_ver.yaml: | schema_version | (got 7)"),
    ("cfg key typo", "simulate {TINY} --device {c_key.cfg}", "c_key.cfg:4: | 'ArrayHeight'"),
    ("cfg negative", "simulate {TINY} --device {c_neg.cfg}", "c_neg.cfg:4: | '-8'"),
    ("topology empty", "simulate {t_empty.csv} --device hexagon_like", "t_empty.csv:1: header"),
    ("topology negative", "simulate {t_neg.csv} --device hexagon_like", "t_neg.csv:2: IFMAP Height | '-8'"),
    ("topology filter", "simulate {t_filter.csv} --device hexagon_like", "t_filter.csv:2: Filter Height"),
    ("experiment metric", "run {e_metric.yaml} --dry-run", "e_metric.yaml: | metrics[0] | 'speed'"),
    ("experiment plot", "run {e_plot.yaml} --dry-run", "e_plot.yaml: | plots[0] | 'pie'"),
    ("experiment name", "run {e_name.yaml} --dry-run", "e_name.yaml:2: name"),
    ("experiment recipe", "run {e_recipe.yaml} --dry-run", "e_recipe.yaml:5: recipes[0] | 'int9_x'"),
    ("experiment no workloads", "run {e_empty.yaml} --dry-run", "e_empty.yaml:3: workloads"),
    (
        "experiment list item",
        "run {e_item.yaml} --dry-run",
        "e_item.yaml:11: sweep.grid.device.memories.nosuch.size_bytes = 1024 | 'nosuch'",
    ),
    ("eval x 3-D", "accuracy digits_mlp --eval {n_x3d.npz}", "n_x3d.npz | (4, 8, 8) | (N, 64)"),
    ("eval npz empty", "accuracy digits_mlp --eval {n_empty.npz}", "n_empty.npz | without .npy arrays"),
    ("calib complex", "quantize digits_mlp --calib {n_complex.npy}", "n_complex.npy | complex64"),
    ("calib bad zip", "quantize digits_mlp --calib {n_zip.npz}", "n_zip.npz"),
    ("infer input shape", "infer {TFLITE} --input {in_shape.npy} --output {tmp}/o.npy", "(1, 3, 3)"),
    (
        "energy model name",
        "energy {TINY} --device hexagon_like --energy-model nosuch",
        "'nosuch' | horowitz_45nm",
    ),
    (
        "simulate --output .txt",
        "simulate {TINY} --device hexagon_like --output {tmp}/r.txt",
        "--output | .txt",
    ),
    ("memory mode", "simulate {TINY} --device ethos_u55_64_like --memory-mode Nope", "memory_mode | 'Nope'"),
    ("mixed without budget", "mixed-precision digits_mlp", "budget"),
    ("clock_mhz .inf", "simulate {TINY} --device {dev_clock_inf.yaml}", "dev_clock_inf.yaml: | clock_mhz"),
    ("clock_mhz .nan", "simulate {TINY} --device {dev_clock_nan.yaml}", "dev_clock_nan.yaml: | clock_mhz"),
    ("clock_mhz -5", "simulate {TINY} --device {dev_clock_neg.yaml}", "dev_clock_neg.yaml: | clock_mhz"),
    ("technology voltage -1", "energy {TINY} --device {dev_volt_neg.yaml}", "technology.voltage_v"),
    (
        "--arena-cache-size 0",
        "simulate {TINY} --device ethos_u55_64_like --arena-cache-size 0",
        "--arena-cache-size | '0'",
    ),
    ("--voltage nan", "energy {TINY} --device hexagon_like --voltage nan", "--voltage | 'nan'"),
    ("--voltage -1", "energy {TINY} --device hexagon_like --voltage -1", "--voltage | '-1'"),
    ("--voltage inf", "energy {TINY} --device hexagon_like --voltage inf", "--voltage | 'inf'"),
    ("--node 0", "energy {TINY} --device hexagon_like --node 0", "--node | '0'"),
    ("--window-us 0", "energy {TINY} --device hexagon_like --window-us 0", "--window-us | '0'"),
    ("--window-us nan", "energy {TINY} --device hexagon_like --window-us nan", "--window-us"),
    ("--bits 0,x", "mixed-precision digits_mlp --bits 0,x --average-bits 4", "--bits | '0,x'"),
    ("--bits 0,4", "mixed-precision digits_mlp --bits 0,4 --average-bits 4", "--bits | 0 is"),
    ("--bits 4,4", "mixed-precision digits_mlp --bits 4,4 --average-bits 4", "--bits | repeated"),
    ("--average-bits -2", "mixed-precision digits_mlp --average-bits -2", "--average-bits"),
    ("--jobs 0", "run {exp_twelve} --jobs 0", "--jobs | '0'"),
    ("--jobs -1", "run {exp_twelve} --jobs -1", "--jobs | '-1'"),
    ("--jobs x", "run {exp_twelve} --jobs x", "--jobs | 'x'"),
    ("--limit -1", "run {exp_twelve} --limit -1", "--limit"),
    ("--max-points 0", "run {exp_twelve} --max-points 0", "--max-points"),
    ("--samples 0", "verify {TFLITE} --samples 0", "--samples"),
    ("--repeats 0", "bench kernels --repeats 0", "--repeats"),
    (
        "unknown option",
        "simulate {TINY} --device hexagon_like --devcie x",
        "unrecognized arguments: --devcie",
    ),
    ("unknown command", "simulat {TINY}", "simulat"),
    ("no command", "", "command"),
    ("bad choice", "run {exp_twelve} --executor slurm", "--executor | slurm"),
    (
        "npy header 10^6 x 10^6",
        "infer {TFLITE} --input {huge.npy} --output {tmp}/o.npy",
        "huge.npy | (1000000, 1000000) | refused before reading",
    ),
    (
        "npy truncated",
        "infer {TFLITE} --input {truncated.npy} --output {tmp}/o.npy",
        "truncated.npy | truncated",
    ),
    ("npy of objects", "infer {TFLITE} --input {object.npy} --output {tmp}/o.npy", "object.npy | objects"),
    ("npy not an array", "infer {TFLITE} --input {text.npy} --output {tmp}/o.npy", "text.npy"),
    (
        "npy missing",
        "infer {TFLITE} --input {tmp}/missing.npy --output {tmp}/o.npy",
        "missing.npy | no such file",
    ),
    ("npy is a folder", "infer {TFLITE} --input {tmp} --output {tmp}/o.npy", "folder"),
    ("npz as --input", "infer {TFLITE} --input {input.npz} --output {tmp}/o.npy", "input.npz | .npz"),
    (
        "+Inf in an input",
        "infer {TFLITE} --input {inf.npy} --output {tmp}/o.npy",
        "inf.npy | +Inf | [0, 0, 7, 0]",
    ),
    ("NaN in an input", "infer {TFLITE} --input {nan.npy} --output {tmp}/o.npy", "nan.npy | NaN"),
    ("verify --input +Inf", "verify {TFLITE} --input {inf.npy}", "inf.npy | +Inf"),
    (
        "infer --output missing folder",
        "infer {TFLITE} --input {good_input.npy} --output {tmp}/no/such/o.npy",
        "--output | does not exist",
    ),
    (
        "infer --output a folder",
        "infer {TFLITE} --input {good_input.npy} --output {tmp}",
        "--output | expected a .npy",
    ),
    (
        "infer --output folder.npy",
        "infer {TFLITE} --input {good_input.npy} --output {tmp}/dir.npy",
        "--output | is a folder",
    ),
    (
        "infer --output under a file",
        "infer {TFLITE} --input {good_input.npy} --output {a_file}/o.npy",
        "--output | is a file",
    ),
    ("run --results under /proc", "run {exp_twelve} --results /proc/hwsim_results", "--results | /proc"),
    ("run --results under a file", "run {exp_twelve} --results {a_file}/r", "--results | is a file"),
    ("run --results is a file", "run {exp_twelve} --results {a_file}", "--results | is a file"),
    (
        "simulate --plot onto a file",
        "simulate {TINY} --device hexagon_like --plot {a_file}",
        "--plot | is a file",
    ),
    (
        "simulate --trace into /proc",
        "simulate {TINY} --device hexagon_like --trace /proc/t.json",
        "--trace | /proc",
    ),
    (
        "simulate --trace a folder",
        "simulate {TINY} --device hexagon_like --trace {tmp}",
        "--trace | is a folder",
    ),
    (
        "simulate --output missing folder",
        "simulate {TINY} --device hexagon_like --output {tmp}/no/r.json",
        "--output | does not exist",
    ),
    (
        "energy --plot onto a file",
        "energy {TINY} --device hexagon_like --plot {a_file}",
        "--plot | is a file",
    ),
    (
        "quantize --output missing folder",
        "quantize digits_mlp --output {tmp}/no/q.npz",
        "--output | does not exist",
    ),
    (
        "mixed --output wrong suffix",
        "mixed-precision digits_mlp --average-bits 4 --output {tmp}/r.txt",
        "--output | .yaml",
    ),
    ("plot given a YAML", "plot {not_results.yaml}", "not_results.yaml | not a results table"),
    ("plot of an empty folder", "plot {tmp}", "no results there"),
    ("plot of a missing path", "plot {tmp}/nothing", "nothing | no such file"),
    ("plot --out onto a file", "plot {tmp} --out {a_file}", "--out | is a file"),
    ("plot --plots unknown", "plot {tmp} --plots paretto", "--plots | paretto"),
    ("calib all zeros", "quantize digits_mlp --calib {calib_zeros.npy}", "calib_zeros.npy | all zero"),
    ("calib constant", "quantize digits_mlp --calib {calib_const.npy}", "calib_const.npy | constant"),
    ("calib NaN", "quantize digits_mlp --calib {calib_nan.npy}", "calib_nan.npy | NaN"),
    ("calib Inf", "quantize digits_mlp --calib {calib_inf.npy}", "calib_inf.npy | +Inf"),
    ("calib 3e38", "quantize digits_mlp --calib {calib_3e38.npy}", "calib_3e38.npy | 3e+38"),
    (
        "calib wrong shape",
        "quantize digits_mlp --calib {calib_shape.npy}",
        "calib_shape.npy | (16, 8, 8) | (N, 64)",
    ),
    ("calib strings", "quantize digits_mlp --calib {calib_text.npy}", "calib_text.npy | numbers"),
    ("calib empty", "quantize digits_mlp --calib {calib_empty.npy}", "calib_empty.npy | no values"),
    (
        "eval labels out of range",
        "accuracy digits_mlp --eval {eval_range.npz}",
        "eval_range.npz | label 10 | 0..9",
    ),
    ("eval labels negative", "accuracy digits_mlp --eval {eval_neg.npz}", "eval_neg.npz | label -1"),
    ("eval labels fractional", "accuracy digits_mlp --eval {eval_frac.npz}", "eval_frac.npz | 0.5"),
    ("eval labels count", "accuracy digits_mlp --eval {eval_count.npz}", "15 labels for 16"),
    ("eval labels one-hot", "accuracy digits_mlp --eval {eval_2d.npz}", "eval_2d.npz | 1-D"),
    ("eval without inputs", "accuracy digits_mlp --eval {eval_no_x.npz}", "eval_no_x.npz | an array x"),
    (
        "swept recipe error",
        "run {exp_bits0} --dry-run",
        "exp_bits0.yaml:11: sweep.grid.recipe.weights.bits = 0: recipe field weights.bits | (got 0)",
    ),
    (
        "swept device error",
        "run {exp_rows0} --dry-run",
        "exp_rows0.yaml:11: sweep.grid.device.mac_array.rows = 0: device hexagon_like | mac_array.rows",
    ),
    (
        "swept energy error",
        "run {exp_volt} --dry-run",
        "exp_volt.yaml:11: sweep.zip.energy.voltage_v = -1: energy field voltage_v | (got -1)",
    ),
    (
        "swept evaluation error",
        "run {exp_samples} --dry-run",
        "exp_samples.yaml: | sweep.random.axes.evaluation.test_samples | evaluation field test_samples | "
        "greater than or equal to 1",
    ),
    (
        "missing workload file",
        "run {exp_no_workload} --dry-run",
        "exp_no_workload.yaml:3: workloads[0]:  | missing_model",
    ),
    (
        "unknown device",
        "run {exp_no_device} --dry-run",
        "exp_no_device.yaml:4: devices[0]: unknown device 'hexagon_lik' | hexagon_like",
    ),
    (
        "inline recipe error",
        "run {exp_inline} --dry-run",
        "exp_inline.yaml:5: recipes[0]: inline recipe 'w99': recipe field weights.bits | (got 99)",
    ),
    ("grid of 640,000 points", "run {exp_huge} --dry-run", "exp_huge.yaml: | 640,000 points | --max-points"),
    ("grid over --max-points", "run {exp_twelve} --dry-run --max-points 11", "12 points | 11"),
]


@pytest.mark.parametrize("line, named", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_status_2(line, named, f, capsys, tmp_path, monkeypatch):
    """Each bad input ends in one ``hwsim: error:`` line naming the file or field, exit status 2."""
    monkeypatch.chdir(tmp_path)  # a run that wrongly got going would write results/ here
    (Path(f["tmp"]) / "dir.npy").mkdir(exist_ok=True)
    code, _, err = run([fill(a, f) for a in line.split()], capsys)
    assert code == 2, err
    one_line_error(err, *[fill(n, f) for n in named.split(" | ")])


def test_output_checked_before_inference(f, capsys, monkeypatch):
    """A missing --output folder is reported before the model runs (the inference is never called)."""
    import hwsim.runtime.infer

    monkeypatch.setattr(hwsim.runtime.infer, "infer", lambda *a, **k: pytest.fail("inference ran"))
    code, _, err = run(
        ["infer", TFLITE, "--input", f["good_input.npy"], "--output", f["tmp"] + "/none/o.npy"], capsys
    )
    assert code == 2 and "does not exist" in err


@pytest.mark.parametrize(
    "name, field", [("dev_huge_array.yaml", "mac_array.rows"), ("dev_sram_1b.yaml", "size_bytes")]
)
def test_absurd_device_value_warns_once_naming_the_field(name, field, f, capsys):
    """A value 100x outside every shipped device runs, with a warning line naming the file, line and field."""
    code, out, err = run(["simulate", TINY, "--device", f[name]], capsys)
    warns = [line for line in err.splitlines() if line.startswith("hwsim: warning: ")]
    assert code == 0 and warns and "Traceback" not in err, err
    assert all(line.startswith("hwsim: warning: ") for line in err.splitlines())
    assert any(f[name] + ":" in w and field in w and "shipped device" in w for w in warns), warns


def test_far_voltage_warns(capsys):
    """--voltage far above any shipped device's supply is priced, with a warning naming the option."""
    code, _, err = run(["energy", TINY, "--device", "hexagon_like", "--voltage", "500"], capsys)
    assert code == 0 and err.startswith("hwsim: warning: --voltage: 500 is above 100x"), err


def test_shipped_ranges_table_is_true():
    """The sanity table spans exactly the shipped devices' values (so it stays true when devices change)."""
    from hwsim.devices.model import device_names, load_device
    from hwsim.devices.sanity import SHIPPED_RANGES, device_values

    seen: dict[str, list] = {}
    for name in device_names():
        for key, _, value in device_values(load_device(name).spec):
            seen.setdefault(key, []).append(value)
    assert {k: (min(v), max(v)) for k, v in seen.items()} == SHIPPED_RANGES


def test_unreachable_dask_scheduler_is_short_and_bounded(f, capsys, monkeypatch, tmp_path):
    """No scheduler at the address: one line naming it, after the (here shortened) connect timeout."""
    pytest.importorskip("distributed")
    from hwsim.experiment import runner

    monkeypatch.setattr(runner, "DASK_CONNECT_SECONDS", 1)
    t0 = time.monotonic()
    code, _, err = run(
        [
            "run",
            f["exp_one"],
            "--executor",
            "dask",
            "--scheduler",
            "tcp://127.0.0.1:9",
            "--results",
            tmp_path / "r",
        ],
        capsys,
    )
    assert code == 2 and time.monotonic() - t0 < 15
    one_line_error(err, "--scheduler tcp://127.0.0.1:9", "within 1 s")


def test_run_exits_1_when_points_fail(f, capsys, tmp_path, failing_points):
    """Failing points: the table and report are written, the status is 1 and the count is said."""
    failing_points()
    code, _, err = run(["run", f["exp_one"], "--results", tmp_path / "r"], capsys)
    assert code == 1, err
    one_line_error(err, "1 of 1 points failed")
    assert (tmp_path / "r" / "rows.csv").exists() and (tmp_path / "r" / "report.md").exists()


def test_run_of_no_points_exits_0_and_plot_refuses_it(f, capsys, tmp_path):
    """--limit 0 runs nothing and fails nothing (status 0); there is then nothing for hwsim plot to draw."""
    code, out, _ = run(["run", f["exp_one"], "--results", tmp_path / "r", "--limit", "0"], capsys)
    assert code == 0 and "0 already done, running 0" in out
    code, _, err = run(["plot", tmp_path / "r"], capsys)
    assert code == 2
    one_line_error(err, "no rows to draw")


def test_dry_run_lists_checked_points(f, capsys):
    """A valid sweep's dry run lists every point, each checked."""
    code, out, err = run(["run", f["exp_twelve"], "--dry-run"], capsys)
    assert code == 0 and "12 points (each checked)" in out and err == ""


def test_second_run_on_a_locked_folder_is_refused(f, capsys, tmp_path):
    """While one run holds the results folder, another says which process holds it."""
    from hwsim.experiment.results import ResultTable

    with ResultTable.open(tmp_path / "r", resume=False):
        code, _, err = run(["run", f["exp_one"], "--results", tmp_path / "r"], capsys)
    assert code == 2
    one_line_error(err, f"in use by process {os.getpid()}")


def test_rows_hold_numbers_and_a_torn_line_is_cut(tmp_path):
    """numpy scalars are stored as numbers (CSV, Parquet, JSON lines); resuming cuts a torn last line."""
    from hwsim.experiment.results import ResultTable, load_rows

    folder = tmp_path / "r"
    with ResultTable.open(folder, resume=False) as table:
        table.add(
            {
                "run_id": "a",
                "index": 0,
                "status": "ok",
                "peak_power_mw": np.float64(59.41),
                "ok": np.bool_(True),
                "n": np.int64(3),
            }
        )
        table.write_tables()
    assert "np." not in (folder / "rows.csv").read_text()
    assert load_rows(folder / "rows.csv")[0]["peak_power_mw"] == 59.41
    with open(folder / "rows.jsonl", "a") as fh:
        fh.write('{"run_id": "b", "index": 1, "sta')  # a kill mid-write
    with ResultTable.open(folder, resume=True) as table:
        table.add({"run_id": "c", "index": 2, "status": "ok"})
    lines = (folder / "rows.jsonl").read_text().splitlines()
    assert [json.loads(line)["run_id"] for line in lines] == ["a", "c"]


def test_plot_reads_whichever_table_exists(tmp_path):
    """With rows.jsonl and rows.csv gone, the rows come from rows.parquet."""
    from hwsim.experiment.results import ResultTable, load_rows

    with ResultTable.open(tmp_path, resume=False) as table:
        table.add({"run_id": "a", "index": 0, "status": "ok", "energy_uj": 1.5})
        table.write_tables()
    (tmp_path / "rows.jsonl").unlink()
    (tmp_path / "rows.csv").unlink()
    assert load_rows(tmp_path) == [{"run_id": "a", "index": 0, "status": "ok", "energy_uj": 1.5}]


def test_internal_error_is_status_1_with_a_debug_pointer(capsys, monkeypatch):
    """A bug (an exception hwsim did not mean) is two lines and status 1; --debug adds the traceback."""
    import hwsim.experiment

    def broken(*a, **k):
        raise KeyError("boom")

    monkeypatch.setattr(hwsim.experiment, "plot_results", broken)
    code, _, err = run(["plot", "x"], capsys)
    assert code == 1 and "Traceback" not in err
    assert err.splitlines() == [
        "hwsim: internal error: KeyError: 'boom' [test_bad_inputs.py:"
        + err.split("[test_bad_inputs.py:")[1].split("]")[0]
        + "]",
        "hwsim: this is a bug in hwsim; rerun with --debug to see the traceback",
    ]
    code, _, err = run(["plot", "x", "--debug"], capsys)
    assert code == 1 and "Traceback" in err and "KeyError" in err


CHILD = """
import contextlib, io, json, sys, time
from hwsim.cli import main
results = []
for argv in json.loads(sys.argv[1]):
    err, t0 = io.StringIO(), time.monotonic()
    with contextlib.redirect_stderr(err):
        code = main(argv)
    results.append([code, err.getvalue(), time.monotonic() - t0])
print(json.dumps(results))
"""


def _limited(argvs: list[list[str]], memory_bytes: int = 2 << 30, seconds: float = 90) -> list:
    """``[status, stderr, seconds]`` of ``hwsim ARGV`` for each of ``argvs``, run by ``main()`` one after
    another in a subprocess limited to ``memory_bytes`` of address space (one interpreter start for all)."""

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))

    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    r = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(argvs)],
        capture_output=True,
        text=True,
        env=env,
        timeout=seconds,
        preexec_fn=limit,
    )
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_resource_cases_end_promptly_under_a_memory_limit(f):
    """A billion-laughs file, a 640,000-point grid and a .npy claiming 4 TB, in a process limited to 2 GB of
    address space: each refused within seconds."""
    cases = (
        (["run", f["exp_laughs.yaml"], "--dry-run"], "200,000"),
        (["run", f["exp_huge"], "--dry-run"], "640,000 points"),
        (["infer", TFLITE, "--input", f["huge.npy"], "--output", f["tmp"] + "/o.npy"], "more than the"),
    )
    for (code, err, seconds), (_, named) in zip(_limited([argv for argv, _ in cases]), cases):
        assert code == 2 and seconds < 20, (err, seconds)
        one_line_error(err, named)
