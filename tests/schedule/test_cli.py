"""The simulate and list devices subcommands."""

from __future__ import annotations

import subprocess
import sys

from hwsim.cli import main
from hwsim.paths import data_dir


def test_simulate_prints_table_and_writes_trace(tmp_path, capsys):
    """`hwsim simulate` prints the per-layer table and writes the trace and plots it was asked for."""
    code = main(
        [
            "simulate",
            str(data_dir("workloads") / "tiny.yaml"),
            "--device",
            "hexagon_like",
            "--trace",
            str(tmp_path / "t.json"),
            "--plot",
            str(tmp_path),
            "--counts",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and "conv1" in out and "latency" in out and "hmx" in out
    assert (tmp_path / "t.json").stat().st_size > 0 and (tmp_path / "hexagon_like_roofline.png").exists()


def test_list_devices(capsys):
    """`hwsim list devices` names every shipped device."""
    assert main(["list", "devices"]) == 0
    out = capsys.readouterr().out
    assert "edge_tpu_like" in out and "ethos_u55_128_like" in out and "hexagon_like" in out


def test_unknown_device_is_one_line_error(capsys):
    """A misspelt device exits 2 with a one-line message naming near matches."""
    assert main(["simulate", str(data_dir("workloads") / "tiny.yaml"), "--device", "hexagon"]) == 2
    assert "hexagon_like" in capsys.readouterr().err


def test_help_imports_nothing_heavy():
    """`hwsim --help` (building every subcommand's parser) imports neither pydantic, numpy nor YAML: a command
    pays for the libraries it uses, not for the ones its siblings use."""
    script = (
        "import sys, contextlib, io\nfrom hwsim.cli import main\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['--help'])\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'pydantic', 'numpy', 'yaml'}))"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"
