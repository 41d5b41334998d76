"""A persistent on-disk memo for results that are slow to compute and small to keep (Ethos-U weight
encodings and block configs, parsed device files).

A sweep simulates the same network on many devices and options, and each run would encode the same weights
again; kept here, a repeated encoding is a file read (and, for a small network, no numpy import). Entries are
JSON files named by the hash of their key, under ``$HWSIM_CACHE_DIR`` (default ``$XDG_CACHE_HOME/hwsim``, i.e.
``~/.cache/hwsim``). Each is written to a temporary file and renamed into place, so processes may share the
folder: a reader sees a whole entry or none. ``HWSIM_CACHE=off`` turns the cache off. A caller's key must name
everything the value depends on, its own code included (see :func:`source_digest`). The cache only ever saves
time: a folder that cannot be read or written is treated as empty.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

try:  # hashlib's own BLAKE2, without hashlib, which loads OpenSSL (6 ms of every run's start-up)
    from _blake2 import blake2b
except ImportError:  # pragma: no cover - a Python built without it
    from hashlib import blake2b


def cache_dir() -> Path | None:
    """The cache folder, or None when ``HWSIM_CACHE`` is ``off`` (or ``0``)."""
    if os.environ.get("HWSIM_CACHE", "").lower() in ("off", "0", "false", "no"):
        return None
    folder = os.environ.get("HWSIM_CACHE_DIR")
    if folder:
        return Path(folder)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "hwsim"


def source_digest(*modules: str) -> str:
    """A digest of the source files ``modules``: keys that include it go stale when that code changes."""
    h = blake2b(digest_size=16)
    for path in modules:
        h.update(Path(path).read_bytes())
    return h.hexdigest()


def _path(namespace: str, key: str) -> Path | None:
    folder = cache_dir()
    if folder is None:
        return None
    name = blake2b(key.encode(), digest_size=20).hexdigest()
    return folder / namespace / name[:2] / f"{name}.json"


def load(namespace: str, key: str) -> Any | None:
    """The value stored under ``key``, or None."""
    path = _path(namespace, key)
    if path is None:
        return None
    try:
        entry = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return entry["value"] if entry.get("key") == key else None  # the key is kept to rule out a hash clash


def store(namespace: str, key: str, value: Any) -> None:
    """Keep ``value`` (JSON-serialisable) under ``key``; silently skipped when the folder is not writable."""
    path = _path(namespace, key)
    if path is None:
        return
    import tempfile

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump({"key": key, "value": value}, fh)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError:
        pass
