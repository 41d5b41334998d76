"""The quantize, accuracy and mixed-precision subcommands, run in-process as a user would type them."""

import numpy as np

from hwsim.accuracy.datasets import digits_split
from hwsim.cli import main
from hwsim.quant.graph_io import load_integer_graph


def test_accuracy_on_a_builtin_workload(capsys):
    """`hwsim accuracy mlp` prints float, fake-quant and integer top-1 and the per-layer table."""
    assert main(["accuracy", "mlp", "--recipe", "int8_w_per_channel"]) == 0
    out = capsys.readouterr().out
    assert "integer 98.15 %" in out and "SQNR" in out


def test_quantize_with_user_files(tmp_path, capsys):
    """User .npz data and a recipe file give an integer graph file that loads back."""
    cal, test = digits_split("calibration", "flat"), digits_split("test", "flat")
    np.savez(tmp_path / "cal.npz", x=cal.x)
    np.savez(tmp_path / "test.npz", x=test.x[:100], y=test.y[:100])
    recipe = tmp_path / "r.yaml"
    recipe.write_text("schema_version: 1\nname: mine\nweights: {bits: 4, range: mse}\n")
    from hwsim.paths import data_dir

    model = str(data_dir("workloads") / "digits_mlp.onnx")
    assert (
        main(
            [
                "quantize",
                model,
                "--recipe",
                str(recipe),
                "--calib",
                str(tmp_path / "cal.npz"),
                "--eval",
                str(tmp_path / "test.npz"),
                "--output",
                str(tmp_path / "q.npz"),
            ]
        )
        == 0
    )
    assert "with mine" in capsys.readouterr().out
    assert load_integer_graph(tmp_path / "q.npz").ops[0].kind == "quantize"


def test_bad_recipe_is_one_line_and_exit_2(tmp_path, capsys):
    """A recipe error is printed as `hwsim: error: file:line: field: ...` with exit status 2."""
    recipe = tmp_path / "r.yaml"
    recipe.write_text("schema_version: 1\nactivations: {calibration: kl}\n")
    assert main(["accuracy", "mlp", "--recipe", str(recipe)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hwsim: error: ") and "r.yaml:2: activations.calibration" in err


def test_mixed_precision_writes_a_recipe(tmp_path, capsys):
    """`hwsim mixed-precision` ranks layers and writes a recipe whose overrides meet the budget."""
    out = tmp_path / "m.yaml"
    assert main(["mixed-precision", "mlp", "--bits", "4,8", "--average-bits", "6", "--output", str(out)]) == 0
    from hwsim.quant.recipe import load_recipe

    assert load_recipe(out).overrides
    assert "allocation" in capsys.readouterr().out
