"""Dataclasses' generated methods compiled once per machine instead of at every start.

CPython writes each dataclass's ``__init__``, ``__repr__``, ``__eq__``, ``__hash__``, ... as source text and
compiles it when the class is defined: ~0.25 ms a method, ~60 ms for the ~56 classes a cached Ethos-U
simulation defines, a quarter of that whole command's CPU. The text is all the compiler sees, so its code
object can be kept, keyed by the text itself: nothing can go stale, and a class whose fields change compiles
anew. :func:`install` gives the ``dataclasses`` module an ``exec`` that looks the text up first (the one
place that module compiles); what runs is exactly what the builtin would have compiled. Only hwsim's own
classes are kept, one marshal file per module (read when the module defines its first class, so a command
reads only the files of the modules it imports) and per interpreter version, in hwsim's cache folder; the
cache follows ``HWSIM_CACHE=off``.
"""

from __future__ import annotations

import builtins
import marshal
import os
import sys

_folder = None  # the cache folder for this interpreter, once installed
_codes: dict[str, dict[str, object]] = {}  # module -> source text -> code object
_added: dict[str, dict[str, object]] = {}  # what this process compiled, to be saved
_used: dict[str, set[str]] = {}  # the texts each module's classes needed in this process


def _exec(source, globals=None, locals=None, /):
    """``exec``, with the code object of a string an hwsim module compiled before taken from the cache."""
    if globals is None:  # the caller's namespace, as the builtin would use
        frame = sys._getframe(1)
        globals, locals = frame.f_globals, frame.f_locals if locals is None else locals
    module = globals.get("__name__", "") if isinstance(source, str) else ""
    if module == "hwsim" or module.startswith("hwsim."):
        codes = _codes.get(module)
        if codes is None:
            codes = _codes[module] = _read(module)
        _used.setdefault(module, set()).add(source)
        code = codes.get(source)
        if code is None:
            # dont_inherit: compiled as the dataclasses module would (no __future__ flags of this one)
            code = codes[source] = compile(source, "<string>", "exec", dont_inherit=True)
            _added.setdefault(module, {})[source] = code
        source = code
    builtins.exec(source, globals, locals)


def install() -> None:
    """Serve ``dataclasses``' compiles of hwsim's classes from the cache (nothing when the cache is off)."""
    global _folder
    from hwsim.cache import cache_dir

    folder = cache_dir()
    if folder is None:
        return
    import atexit
    import dataclasses

    _folder = folder / "classes" / f"{sys.implementation.cache_tag}-{sys.hexversion:x}"
    dataclasses.exec = _exec
    atexit.register(_save)


def _read(module: str) -> dict:
    try:
        stored = marshal.loads((_folder / f"{module}.marshal").read_bytes())
    except (OSError, ValueError, EOFError, TypeError):
        return {}  # no file yet, or a damaged one: compile as usual
    return stored if isinstance(stored, dict) else {}


def _save() -> None:
    """Rewrite the file of each module that compiled something, with the code its classes used here
    (importing a module defines all its classes, so entries of a class that has since changed drop out)."""
    import tempfile

    for module in _added:
        codes = _codes[module]
        merged = {text: codes[text] for text in _used[module]}
        try:
            _folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=_folder, suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(marshal.dumps(merged))
                os.replace(tmp, _folder / f"{module}.marshal")
            except BaseException:
                os.unlink(tmp)
                raise
        except OSError:
            return  # a folder that cannot be written only costs the compiles next time
    _added.clear()
