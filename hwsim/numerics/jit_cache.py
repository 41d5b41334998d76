"""Where numba keeps hwsim's compiled kernels, so that any fresh process, venv or clone loads them instead of
compiling them (about 30 s on a 2-core machine for the default experiment).

numba's own cache is keyed by the *path* of each source file (a folder per source folder), so a second venv
or clone of the same sources on the same machine misses it; and each entry is checked against its own
source file only, while a kernel's machine code also holds the helpers it calls from other files
(``kernels_fused`` and ``kernels_simd`` call ``kernels``). hwsim's kernels are therefore cached in
``~/.cache/hwsim/numba/<python>-<numba>/<hash of all kernels*.py>/`` (under ``$HWSIM_CACHE_DIR`` or
``$XDG_CACHE_HOME/hwsim`` when set; the temp folder if that is not writable): any copy of the same sources
finds the entries, an edit to any kernel source moves to a new folder. Within it numba keys each entry by
the kernel's bytecode, signature, CPU name and features, so one folder serves several CPUs and never hands
code built for one to another. Every data file carries a SHA-256 of its bytes: a corrupt or truncated file
(or index) counts as a miss and is compiled and written again. ``NUMBA_CACHE_DIR`` set by the user wins
(then numba's own layout and checks apply). numba writes the cache whatever ``PYTHONDONTWRITEBYTECODE``
says: that variable concerns Python's bytecode only.

While :mod:`hwsim.numerics.warmup` compiles kernels in background processes, a miss here waits for them
and loads their result rather than compiling the same kernel a second time.
"""

from __future__ import annotations

import functools
import hashlib
import os
import pickle
import sys
import tempfile
import time
from pathlib import Path

import numba
from numba.core import caching, config
from numba.core.dispatcher import Dispatcher

HERE = Path(__file__).resolve().parent
_DIGEST = 32  # bytes of SHA-256 in front of each data file
# (module, kernel, argument types) -> the warm-up process (subprocess.Popen) compiling it right now
_background: dict = {}


def source_hash(folder: Path = HERE) -> str:
    """Full SHA-256 hex of the numba sources in ``folder`` (``kernels*.py``): it changes when any does."""
    digest = hashlib.sha256()
    for path in sorted(folder.glob("kernels*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


@functools.cache
def _this_source_hash() -> str:
    return source_hash(HERE)


def candidates(tag: str) -> list[Path]:
    """The folders tried, best first, for kernels whose sources hash to ``tag`` (the same root as
    :mod:`hwsim.cache`, which the numerics layer does not import)."""
    root = os.environ.get("HWSIM_CACHE_DIR")
    if not root:
        xdg = os.environ.get("XDG_CACHE_HOME")
        root = str((Path(xdg) if xdg else Path.home() / ".cache") / "hwsim")
    versions = f"py{sys.version_info[0]}{sys.version_info[1]}-numba{numba.__version__}"
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    return [
        Path(root) / "numba" / versions / tag[:16],
        Path(tempfile.gettempdir()) / f"hwsim-{uid}" / "numba" / versions / tag[:16],
    ]


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


@functools.cache
def cache_folder() -> Path | None:
    """This process's folder for hwsim's kernels, or None (the user chose ``NUMBA_CACHE_DIR``, or nothing
    is writable: then numba's own locators decide)."""
    if config.CACHE_DIR:
        return None
    return first_writable(candidates(_this_source_hash()))


class SourceHashLocator(caching._CacheLocator):
    """numba's locator for hwsim's kernel files: the folder named by the sources' hash, not their path."""

    def __init__(self, py_func, folder: Path):
        self._lineno = py_func.__code__.co_firstlineno
        self._folder = folder

    def get_cache_path(self) -> str:
        return str(self._folder)

    def get_source_stamp(self) -> str:
        return _this_source_hash()

    def get_disambiguator(self) -> str:
        return str(self._lineno)

    @classmethod
    def from_function(cls, py_func, py_file):
        """A locator for functions in ``hwsim/numerics/kernels*.py``; None for any other file (numba's own
        locators then take it), and when the user set ``NUMBA_CACHE_DIR``."""
        path = Path(py_file).resolve()
        if path.parent != HERE or not path.name.startswith("kernels"):
            return None
        folder = cache_folder()
        return None if folder is None else cls(py_func, folder)


class _CheckedIndex(caching.IndexDataCacheFile):
    """numba's index and data files, with each data file's SHA-256 in front of it: an unreadable index or a
    data file whose bytes do not match counts as a miss, so the kernel is compiled and written again."""

    def _load_index(self):
        try:
            return super()._load_index()
        except Exception as error:  # a truncated or garbled pickle: start a new index
            caching._cache_log("[cache] unreadable index %r: %s", self._index_path, error)
            return {}

    def _save_data(self, name, data):
        data = self._dump(data)
        with self._open_for_write(self._data_path(name)) as f:
            f.write(hashlib.sha256(data).digest() + data)

    def _load_data(self, name):
        path = self._data_path(name)
        with open(path, "rb") as f:
            blob = f.read()
        digest, data = blob[:_DIGEST], blob[_DIGEST:]
        if hashlib.sha256(data).digest() != digest:
            raise OSError(f"checksum mismatch in {path}")  # numba's load() treats OSError as a miss
        return pickle.loads(data)


class KernelCache(caching.FunctionCache):
    """The cache of one hwsim kernel: checked data files, and a miss waits for a running warm-up."""

    def __init__(self, py_func):
        super().__init__(py_func)
        stamp = self._impl.locator.get_source_stamp()
        self._cache_file = _CheckedIndex(self._cache_path, self._impl.filename_base, stamp)

    def load_overload(self, sig, target_context):
        key = (self._py_func.__module__.rpartition(".")[2], self._py_func.__name__, tuple(sig))
        while True:
            process = _background.get(key)
            running = process is not None and process.poll() is None  # before the load: then one more try
            found = super().load_overload(sig, target_context)
            if found is not None or not running:
                _background.pop(key, None)
                return found
            time.sleep(0.05)


def adopt(namespace: dict) -> None:
    """Give each ``cache=True`` kernel defined in the module whose globals are ``namespace`` a
    :class:`KernelCache` (unless the user's ``NUMBA_CACHE_DIR`` or locators placed it). Called at the end
    of every ``kernels*.py``."""
    for value in list(namespace.values()):
        if (
            isinstance(value, Dispatcher)
            and value.py_func.__module__ == namespace["__name__"]
            and isinstance(value._cache, caching.FunctionCache)
            and isinstance(value._cache._impl.locator, SourceHashLocator)
        ):
            value._cache = KernelCache(value.py_func)


if SourceHashLocator not in caching.CacheImpl._locator_classes:  # before any kernel is decorated
    caching.CacheImpl._locator_classes = [SourceHashLocator, *caching.CacheImpl._locator_classes]
