"""YAML with line numbers, validated, with errors that read ``file:line: field.path: message (got v)``.

Every hwsim config kind goes through :func:`load_spec`: pydantic models, and the plain dataclass records of
:mod:`hwsim.config.records` (devices, which every simulation reads, so pydantic is imported only by the
commands that read another kind)::

    spec = load_spec(DeviceSpec, Path("accelerators/edge_tpu_like.yaml"))

PyYAML's composed nodes carry ``start_mark.line``; :func:`load_yaml_with_lines` keeps a map from each
key's location (``("memories", 2, "size_bytes")``) to its 1-based line, and :func:`validate` turns the first
validation error into a :class:`~hwsim.errors.ConfigError` at that line. An unknown key names the closest
valid one (``difflib``), a duplicate key is an error (PyYAML would silently keep the last one).

A file's parse is kept in hwsim's disk cache (:mod:`hwsim.cache`, keyed on its text, this module's source
and the installed PyYAML), so a command that reads a device it has read before (every simulation) needs no
PyYAML import and no parse; a file that fails to parse is never kept, and a kept parse is validated afresh.

This generalises the loader first written in :mod:`hwsim.importers.yaml_layers` (which still carries its own
copy with layer-specific wording for discriminated unions on ``op``).
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Union

from hwsim import cache
from hwsim.config import records
from hwsim.config.records import unknown_key_message
from hwsim.config.textfile import read_text
from hwsim.errors import ConfigError

if TYPE_CHECKING:
    import yaml
    from pydantic import BaseModel

Loc = tuple[str | int, ...]
MAX_NODES = 200_000  # keys and items, aliases expanded: 500x the largest shipped file, tens of MB at most


def load_yaml_with_lines(path: Path, expected: str = "a mapping") -> tuple[Any, dict[Loc, int]]:
    """Parse ``path`` into plain Python data and a map from each key/item location to its 1-based line.

    Parameters
    ----------
    path : Path
        The YAML file.
    expected : str
        What the file should hold, for the message about an empty file.

    Returns
    -------
    tuple
        ``(data, lines)``; ``lines[()]`` is the line of the document itself.
    """
    text = read_text(path)
    key = _cache_key(text)
    kept = cache.load("yaml", key) if key else None
    if kept is not None:
        return kept[0], {tuple(loc): line for loc, line in kept[1]}
    data, lines = _load(text, path, expected)
    entry = [data, [[list(loc), line] for loc, line in lines.items()]]
    if key and _json_exact(entry):
        cache.store("yaml", key, entry)
    return data, lines


def _json_exact(value: Any) -> bool:
    """True when JSON gives ``value`` back unchanged (no dates, no integer keys)."""
    try:
        return json.loads(json.dumps(value)) == value
    except (TypeError, ValueError):
        return False


def _cache_key(text: str) -> str | None:
    """The parse cache's key of ``text``: the text, this module's source and the installed PyYAML."""
    import importlib.util
    import os

    if cache.cache_dir() is None:
        return None
    spec = importlib.util.find_spec("yaml")
    if spec is None or spec.origin is None:
        return None
    pyyaml = f"{spec.origin} {os.stat(spec.origin).st_mtime_ns}"
    return f"yamlio {cache.source_digest(__file__)} {pyyaml}\n{text}"


def _load(text: str, path: Path, expected: str) -> tuple[Any, dict[Loc, int]]:
    import yaml

    try:
        fast = getattr(yaml, "CSafeLoader", None)  # libyaml: ~10x faster, into the same nodes and lines
        if fast is not None:
            try:
                return _parse(fast(text), path, expected)
            except yaml.YAMLError:
                pass  # libyaml words its errors otherwise: the pure-Python parser reports them as always
        return _parse(yaml.SafeLoader(text), path, expected)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise ConfigError(f"{path}:{line}: not valid YAML: {exc.problem or exc.context}") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply to read") from None


def _parse(loader, path: Path, expected: str) -> tuple[Any, dict[Loc, int]]:
    try:
        node = loader.get_single_node()
        if node is None:
            raise ConfigError(f"{path}:1: the file is empty; expected {expected}")
        lines: dict[Loc, int] = {(): node.start_mark.line + 1}
        _index_lines(node, (), lines, path)
        return loader.construct_document(node), lines
    finally:
        loader.dispose()


def _index_lines(node: yaml.Node, loc: Loc, lines: dict[Loc, int], path: Path) -> None:
    """Record the line of every key and item under ``node``, refusing a file whose aliases expand it beyond
    :data:`MAX_NODES` (a "billion laughs" file) before anything is built from it."""
    if len(lines) > MAX_NODES:
        raise ConfigError(
            f"{path}:{line_of(lines, loc[:1])}: {format_loc(loc[:1])}: the file expands to "
            f"more than {MAX_NODES:,} keys and items (counting what each alias repeats); "
            "refused before building it"
        )
    if node.id == "mapping":  # a yaml.MappingNode
        seen: dict[str, int] = {}
        for key, value in node.value:
            name = str(key.value)
            line = key.start_mark.line + 1
            if name in seen:
                raise ConfigError(
                    f"{path}:{line}: {format_loc(loc + (name,))}: duplicate key, first given "
                    f"on line {seen[name]} (got {name!r})"
                )
            seen[name] = line
            lines[loc + (name,)] = line
            _index_lines(value, loc + (name,), lines, path)
    elif node.id == "sequence":
        for i, item in enumerate(node.value):
            lines[loc + (i,)] = item.start_mark.line + 1
            _index_lines(item, loc + (i,), lines, path)


def format_loc(loc: Loc) -> str:
    """A location as a field path.

    >>> format_loc(("memories", 2, "size_bytes"))
    'memories[2].size_bytes'
    >>> format_loc(())
    '(top level)'
    """
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def line_of(lines: dict[Loc, int], loc: Loc) -> int:
    """Line of ``loc``, or of its closest enclosing key when ``loc`` itself is absent (a missing field)."""
    while loc not in lines:
        loc = loc[:-1]
    return lines[loc]


def show(value: Any) -> str:
    """A value as the ``(got ...)`` part of an error message: short, and strings quoted.

    >>> show("wieghts"), show(23.5)
    ("'wieghts'", '23.5')
    """
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 80 else text[:77] + "..."


def config_error(path: Path, lines: dict[Loc, int], loc: Loc, message: str, got: Any = ...) -> ConfigError:
    """A ConfigError reading ``path:line: field.path: message (got value)`` (no ``got`` part when omitted)."""
    tail = "" if got is ... else f" (got {show(got)})"
    return ConfigError(f"{path}:{line_of(lines, loc)}: {format_loc(loc)}: {message}{tail}")


def validate(spec: type, data: Any, lines: dict[Loc, int], path: Path) -> Any:
    """Validate ``data`` with ``spec`` (a pydantic model or a record); the first problem becomes a located
    :class:`ConfigError`.

    An unknown key is reported before the "missing field" it usually explains, with the closest valid key.
    A ``model_validator`` (a record's ``__post_init__``) may raise ``ValueError`` whose message starts with
    ``"@field.path: "`` to point at a field of the model it checks (see :func:`at_field`).
    """
    if dataclasses.is_dataclass(spec):
        try:
            return records.validate(spec, data)
        except records.RecordError as exc:
            raise config_error(path, lines, exc.loc, exc.message, exc.got) from None
    from pydantic import ValidationError

    try:
        return spec.model_validate(data)
    except ValidationError as exc:
        errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
        raise _located(spec, errors[0], lines, path) from None


def at_field(loc: Loc, message: str, got: Any = ...) -> ValueError:
    """A ValueError a ``model_validator`` raises to blame ``loc`` (relative to its model) with ``got``."""
    parts = ".".join(str(p) for p in loc)
    tail = "" if got is ... else f" (got {show(got)})"
    return ValueError(f"@{parts}: {message}{tail}")


def load_spec(spec: type, path: str | Path) -> Any:
    """Read and validate one YAML config file: the entry point for every config kind."""
    path = Path(path)
    data, lines = load_yaml_with_lines(path)
    return validate(spec, data, lines, path)


def _located(spec: type[BaseModel], err: dict, lines: dict[Loc, int], path: Path) -> ConfigError:
    loc = tuple(err["loc"])
    model = _model_at(spec, loc[:-1])
    kind, message, got = err["type"], err["msg"], err.get("input", ...)
    if kind == "extra_forbidden":
        message = unknown_key_message(str(loc[-1]), model.model_fields if model is not None else ())
    elif kind == "missing":
        message, got = "required field is missing", ...
    elif kind in ("model_type", "model_attributes_type", "dict_type") and not loc:
        required = [n for n, f in spec.model_fields.items() if f.is_required()]
        message = f"expected a mapping with {', '.join(required)} (got a {type(got).__name__})"
        got = ...
    else:
        message = message.removeprefix("Value error, ")
        if message.startswith("@"):  # at_field(): a cross-field check blaming one field
            where, _, message = message[1:].partition(": ")
            loc = loc + tuple(int(p) if p.isdigit() else p for p in where.split(".") if p)
            got = ...
    return config_error(path, lines, loc, message, got)


def _model_at(spec: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    """The pydantic model that owns the keys at ``loc`` (walking fields, list items and dict values)."""
    from pydantic import BaseModel

    tp: Any = spec
    for part in loc:
        tp = unwrap_type(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            field = tp.model_fields.get(str(part))
            tp = field.annotation if field is not None else None
        elif typing.get_origin(tp) in (list, tuple) and isinstance(part, int):
            tp = typing.get_args(tp)[0]
        elif typing.get_origin(tp) is dict:
            tp = typing.get_args(tp)[1]
        else:
            return None
    tp = unwrap_type(tp)
    return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None


def unwrap_type(tp: Any) -> Any:
    """``tp`` without ``Annotated`` and ``Optional`` wrappers (a real union is returned as it is)."""
    while True:
        origin = typing.get_origin(tp)
        if origin is Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(args) != 1:
                return tp
            tp = args[0]
        else:
            return tp
