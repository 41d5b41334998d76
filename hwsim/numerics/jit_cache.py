"""Where numba keeps hwsim's compiled kernels, so that a fresh process loads them instead of compiling them.

Every kernel is ``cache=True``, but numba's own choice of folder (``__pycache__`` beside the sources, else
the user's cache folder) has two faults for hwsim. Its index is keyed by each source file's timestamp alone,
while a kernel's machine code also holds the helpers it calls from other files (``kernels_fused`` and
``kernels_vnni`` call ``kernels``): after an edit to ``kernels.py`` they would load stale code. And where
neither folder is writable, defining a ``cache=True`` function raises, so hwsim would not import. hwsim
therefore names the folder itself, after a hash of all its kernel sources, in the first writable place of:
the package's ``numerics/__pycache__`` (a venv or editable install), the user's cache folder (a read-only
system install), the temp folder. ``NUMBA_CACHE_DIR``, when set, wins (then clearing it after editing a
kernel is the user's part). Within the folder numba keys each entry by CPU name and features, so one folder
can serve several CPUs. numba writes it whatever ``PYTHONDONTWRITEBYTECODE`` says: that variable concerns
Python's bytecode only, and compiling the kernels again in every process is the cost this module removes.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import numba
from numba.misc.appdirs import AppDirs

HERE = Path(__file__).resolve().parent


def source_hash(folder: Path = HERE) -> str:
    """Hash of the numba sources in ``folder`` (``kernels*.py``): it changes when any of them does."""
    digest = hashlib.sha256()
    for path in sorted(folder.glob("kernels*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def candidates(tag: str) -> list[Path]:
    """The folders tried, best first, for kernels whose sources hash to ``tag``."""
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    return [HERE / "__pycache__" / f"numba-{tag}",
            Path(AppDirs("hwsim", appauthor=False).user_cache_dir) / f"numba-{tag}",
            Path(tempfile.gettempdir()) / f"hwsim-numba-{uid}" / tag]


def first_writable(folders: list[Path]) -> Path | None:
    """The first folder that can be created and written to (tried by writing, as numba does), or None."""
    for folder in folders:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=folder):
                return folder
        except OSError:
            continue
    return None


def configure() -> None:
    """Point numba's cache at hwsim's folder, unless the user chose one with ``NUMBA_CACHE_DIR``. Runs before
    any kernel is defined: numba picks a function's folder when it is decorated. With no writable folder at
    all (not even the temp folder) numba's own choice stands, and numba refuses ``cache=True`` as ever."""
    if numba.config.CACHE_DIR:
        return
    folder = first_writable(candidates(source_hash()))
    if folder is not None:
        numba.config.CACHE_DIR = str(folder)


configure()  # on import: every kernels*.py module imports this one before it defines a kernel
