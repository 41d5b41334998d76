"""Packaging: the console command works, and a wheel carries the YAML data folders inside the package."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from hwsim.paths import DATA_FOLDERS, data_dir

ROOT = Path(__file__).resolve().parents[1]


def test_data_folders_found_from_checkout():
    """Every data folder resolves to an existing directory."""
    for name in DATA_FOLDERS:
        assert data_dir(name).is_dir()


def test_unknown_data_folder_is_an_error():
    """Asking for a folder that is not shipped names the valid ones."""
    with pytest.raises(ValueError, match="accelerators"):
        data_dir("models")


def test_cli_help_and_list():
    """`hwsim --help` and `hwsim list semantics` run as a user would run them."""
    help_text = subprocess.run(
        [sys.executable, "-m", "hwsim", "--help"], capture_output=True, text=True, check=True
    )
    assert "bench" in help_text.stdout and "list" in help_text.stdout
    listing = subprocess.run(
        [sys.executable, "-m", "hwsim", "list", "semantics"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    assert "tflite-reference" in listing.stdout and "onnxruntime" in listing.stdout


def test_wheel_carries_data_folders(tmp_path):
    """A wheel built from the checkout holds each data folder under hwsim/_data (non-editable installs find
    it)."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    wheel = next(tmp_path.glob("hwsim-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for folder in DATA_FOLDERS:
        assert any(n.startswith(f"hwsim/_data/{folder}/") for n in names), folder
