"""Where the shipped YAML data folders are, from a checkout or from an installed wheel."""

from __future__ import annotations

from pathlib import Path

DATA_FOLDERS = ("accelerators", "workloads", "energy_models", "experiments")


def data_dir(name: str) -> Path:
    """Return the folder ``name`` (one of :data:`DATA_FOLDERS`).

    A wheel carries the folders under ``hwsim/_data``; a checkout (or an editable install) has them at
    the repository's top level, next to the package.
    """
    if name not in DATA_FOLDERS:
        raise ValueError(f"unknown data folder {name!r}; expected one of {DATA_FOLDERS}")
    package = Path(__file__).resolve().parent
    for candidate in (package / "_data" / name, package.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"hwsim data folder {name!r} is missing from {package} and its parent")
