"""Reading a text file the user names (YAML, SCALE-Sim .cfg and .csv): one-line errors for the two ways it
fails before any parsing, an unreadable path and bytes that are not UTF-8 (the line of the first bad byte)."""

from __future__ import annotations

from pathlib import Path

from hwsim.errors import ConfigError


def read_text(path: Path) -> str:
    """The UTF-8 text of ``path``, or a :class:`~hwsim.errors.ConfigError` naming the file (and line).

    >>> import tempfile, os
    >>> bad = Path(tempfile.mkdtemp()) / "latin1.yaml"
    >>> _ = bad.write_bytes(b"name: a\\nnote: caf\\xe9\\n")
    >>> read_text(bad)
    Traceback (most recent call last):
    ...
    hwsim.errors.ConfigError: .../latin1.yaml:2: not UTF-8 text (byte 0xe9 at column 10); save the file as ...
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the file ({exc.strerror or exc})") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - data.rfind(b"\n", 0, exc.start)
        raise ConfigError(
            f"{path}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x} at column {column}); "
            "save the file as UTF-8"
        ) from None
