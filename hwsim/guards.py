"""Checks on what a user hands hwsim, made before any work starts: numbers on the command line and output
paths (array files and data sets: :mod:`hwsim.data_checks`). Every failure is a
:class:`~hwsim.errors.ConfigError` that names the option or file, so the ``hwsim`` command prints it on one
line and exits with status 2. Only the standard library is imported, so the parser builds fast.

- **Numbers**: :func:`positive_int`, :func:`positive_float`, :func:`nonnegative_int` and :func:`int_list`
  are argparse ``type=`` functions; NaN and infinities are refused like zero and negatives.
- **Output paths**: :func:`check_output_file` and :func:`check_output_dir` probe the place by writing there
  (a file or folder that did not exist is not left behind), so a long run cannot end in a failed write.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from hwsim.errors import ConfigError


# --------------------------------------------------------------------------------------------------------
# command-line numbers (argparse ``type=`` functions; argparse names the option in its message)
# --------------------------------------------------------------------------------------------------------


def positive_int(text: str) -> int:
    """An integer >= 1.

    >>> positive_int("4")
    4
    """
    return _int(text, 1)


def nonnegative_int(text: str) -> int:
    """An integer >= 0."""
    return _int(text, 0)


def _int(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= {minimum} (got {text!r})") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected an integer >= {minimum} (got {text!r})")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0 (NaN and infinities are refused).

    >>> positive_float("0.8")
    0.8
    """
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a finite number > 0 (got {text!r})") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a finite number > 0 (got {text!r})")
    return value


def int_list(low: int, high: int):
    """An argparse type for a comma-separated list of distinct integers in ``low..high`` (``--bits 2,4,8``).

    >>> int_list(1, 16)("8,4")
    (8, 4)
    """

    def parse(text: str) -> tuple[int, ...]:
        parts = [p.strip() for p in text.split(",")]
        try:
            values = tuple(int(p) for p in parts)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated integers in {low}..{high} (got {text!r})"
            ) from None
        bad = [v for v in values if not low <= v <= high]
        if bad or len(set(values)) != len(values):
            why = f"{bad[0]} is outside {low}..{high}" if bad else "a value is repeated"
            raise argparse.ArgumentTypeError(
                f"expected distinct integers in {low}..{high}; {why} (got {text!r})"
            )
        return values

    return parse


# --------------------------------------------------------------------------------------------------------
# output paths
# --------------------------------------------------------------------------------------------------------


def check_output_file(
    path: str | Path, option: str, suffixes: tuple[str, ...] = (), make_parents: bool = False
) -> Path:
    """``path`` if a file can be written there; nothing is left behind by the check.

    Parameters
    ----------
    path : str or Path
        The file the command will write.
    option : str
        The option that named it (``--output``), for the message.
    suffixes : tuple of str
        Accepted suffixes (lower case, with the dot); empty accepts any.
    make_parents : bool
        Whether the command creates missing folders on the way (then they only need to be creatable).
    """
    path = Path(path)
    if suffixes and path.suffix.lower() not in suffixes:
        raise ConfigError(
            f"{option} {path}: expected a {' or '.join(suffixes)} file (got {path.suffix or 'no suffix'!r})"
        )
    if path.is_dir():
        raise ConfigError(f"{option} {path}: is a folder; give a file name")
    if make_parents:
        created = _make_folders(path.parent, option, path)
    else:
        _existing_folder(path.parent, option, path)
        created = []
    existed = path.exists()
    try:
        with path.open("a"):
            pass
    except OSError as exc:
        _remove(created)
        raise ConfigError(f"{option} {path}: cannot write there ({exc.strerror})") from None
    if not existed:
        path.unlink()
    _remove(created)
    return path


def check_output_dir(path: str | Path, option: str) -> Path:
    """``path`` if it is (or can be made) a folder hwsim can write files into; nothing is left behind."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{option} {path}: is a file, not a folder")
    import tempfile

    created = _make_folders(path, option, path)
    try:
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise ConfigError(f"{option} {path}: cannot write there ({exc.strerror})") from None
    finally:
        _remove(created)
    return path


def _existing_folder(folder: Path, option: str, path: Path) -> None:
    if folder.is_dir():
        return
    if folder.exists():
        raise ConfigError(f"{option} {path}: {str(folder)!r} is a file, not a folder")
    raise ConfigError(f"{option} {path}: folder {str(folder)!r} does not exist")


def _make_folders(folder: Path, option: str, path: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; return those created (innermost first)."""
    missing = []
    probe = folder
    while not probe.exists():
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise ConfigError(f"{option} {path}: {str(probe)!r} is a file, not a folder")
    created: list[Path] = []
    for p in reversed(missing):
        try:
            p.mkdir()
        except OSError as exc:
            _remove(created)
            raise ConfigError(f"{option} {path}: cannot create folder {str(p)!r} ({exc.strerror})") from None
        created.insert(0, p)
    return created


def _remove(folders: list[Path]) -> None:
    for p in folders:
        try:
            p.rmdir()
        except OSError:
            pass


def os_error_message(exc: OSError) -> str:
    """An OSError as ``file: reason`` (for the CLI's one-line message)."""
    name = exc.filename if exc.filename is not None else ""
    reason = exc.strerror or _first_line(exc)
    return f"{name}: {reason}" if name else reason


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
