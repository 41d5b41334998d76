"""Dataclasses' generated methods compiled once per machine instead of at every start.

CPython writes each dataclass's ``__init__``, ``__repr__``, ``__eq__``, ``__hash__``, ... as source text and
compiles it when the class is defined: ~0.25 ms a method, ~60 ms for the ~56 classes a cached Ethos-U
simulation defines, a quarter of that whole command's CPU. The text is all the compiler sees, so its code
object is kept in one marshal file per interpreter version, keyed by the text itself: nothing can go stale,
and a class whose fields change compiles anew. :func:`install` gives the ``dataclasses`` module an ``exec``
that looks the text up first (the one place that module compiles); what runs is exactly what the builtin
would have compiled. The file sits in hwsim's cache folder and follows ``HWSIM_CACHE=off``.
"""

from __future__ import annotations

import builtins
import marshal
import os
import sys

MAX_ENTRIES = 8192  # a process that makes classes on the fly must not grow the file without end

_codes: dict[str, object] = {}
_added: dict[str, object] = {}


def _exec(source, globals=None, locals=None, /):
    """``exec``, with a string's code object taken from the cache when it was compiled before."""
    if globals is None:  # the caller's namespace, as the builtin would use
        frame = sys._getframe(1)
        globals, locals = frame.f_globals, frame.f_locals if locals is None else locals
    if isinstance(source, str):
        code = _codes.get(source)
        if code is None:
            # dont_inherit: compiled as the dataclasses module would (no __future__ flags of this one)
            code = compile(source, "<string>", "exec", dont_inherit=True)
            if len(_codes) < MAX_ENTRIES:
                _codes[source] = _added[source] = code
        source = code
    builtins.exec(source, globals, locals)


def _file():
    from hwsim.cache import cache_dir

    folder = cache_dir()
    if folder is None:
        return None
    return folder / "classes" / f"{sys.implementation.cache_tag}-{sys.hexversion:x}.marshal"


def install() -> None:
    """Serve ``dataclasses``' compiles from the cache file (none when the cache is off)."""
    path = _file()
    if path is None:
        return
    import atexit
    import dataclasses

    try:
        stored = marshal.loads(path.read_bytes())
        if isinstance(stored, dict):
            _codes.update(stored)
    except (OSError, ValueError, EOFError, TypeError):
        pass  # no file yet, or one written by something else: compile as usual
    dataclasses.exec = _exec
    atexit.register(_save, path)


def _save(path) -> None:
    """Merge what this process compiled into the file (another process may have added to it meanwhile)."""
    if not _added:
        return
    import tempfile

    try:
        merged = marshal.loads(path.read_bytes())
        if not isinstance(merged, dict):
            merged = {}
    except (OSError, ValueError, EOFError, TypeError):
        merged = {}
    for text, code in _added.items():
        if len(merged) >= MAX_ENTRIES:
            break
        merged.setdefault(text, code)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(marshal.dumps(merged))
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError:
        pass  # a folder that cannot be written only costs the compiles next time
