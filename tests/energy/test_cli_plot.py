"""The energy subcommand, the energy-models listing and the per-layer energy plot."""

from __future__ import annotations

from hwsim.cli import main
from hwsim.energy.account import account
from hwsim.energy.model import EnergyModel
from hwsim.paths import data_dir
from hwsim.plots.energy import plot_energy_breakdown
from hwsim.schedule.simulate import simulate

TINY = str(data_dir("workloads") / "tiny.yaml")


def test_energy_command_prints_tables_and_plot(tmp_path, capsys):
    """`hwsim energy` prints energy, power, EDP, TOPS/W, the breakdowns and area, and writes the plot."""
    assert (
        main(
            [
                "energy",
                TINY,
                "--device",
                "hexagon_like",
                "--node",
                "16",
                "--voltage",
                "0.8",
                "--plot",
                str(tmp_path),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    for text in (
        "energy/inference",
        "peak power",
        "energy-delay",
        "TOPS/W",
        "by component",
        "by action",
        "by layer",
        "area of hexagon_like at 16 nm",
        "16 nm, 0.8 V",
    ):
        assert text in out
    assert (tmp_path / "hexagon_like_energy.png").stat().st_size > 0


def test_list_energy_models(capsys):
    """`hwsim list energy-models` names the shipped table and scaling table."""
    assert main(["list", "energy-models"]) == 0
    out = capsys.readouterr().out
    assert "horowitz_45nm" in out and "scaling_stillmaker_baas_2017" in out


def test_unknown_energy_model_is_one_line_error(capsys):
    """A misspelt energy model exits 2 with a message naming the near match."""
    assert main(["energy", TINY, "--device", "edge_tpu_like", "--energy-model", "horowitz"]) == 2
    assert "horowitz_45nm" in capsys.readouterr().err


def test_plot_renders(tmp_path):
    """The stacked per-layer energy plot writes a non-empty PNG."""
    result = simulate(TINY, "edge_tpu_like")
    path = plot_energy_breakdown(account(result, EnergyModel.for_device(result.device)), tmp_path)
    assert path.suffix == ".png" and path.stat().st_size > 0
