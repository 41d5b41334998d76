"""Config records: frozen dataclasses checked against their annotations, without pydantic.

Importing pydantic costs a command some 0.3 s of CPU, half of what Arm Vela takes to compile a small
network. Every ``simulate`` reads a device file, so the device schema (:mod:`hwsim.devices.schema`) is
plain dataclasses, validated here; the other config kinds stay pydantic models. Both go through
:func:`hwsim.config.yamlio.load_spec`, and the messages follow pydantic's wording, so that every config
error reads alike.

A record's fields may be ``int``, ``float``, ``str``, ``Literal[...]``, ``X | None``, ``list[X]``,
``dict[str, X]`` or another record, with :class:`Ge`, :class:`Gt`, :class:`Le` and :class:`MinLen` bounds
in ``Annotated[...]``. A number of the wrong kind converts when exact (``8.0`` to an int field, ``8`` to a
float one); nothing else does. Unknown keys are errors. Cross-field rules live in ``__post_init__`` and
raise :func:`~hwsim.config.yamlio.at_field` errors; a record may also define ``before_validation(data)``.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Annotated, Any, Literal, Union

Loc = tuple[str | int, ...]


class RecordError(ValueError):
    """The first problem in the data: where (``loc``), what (``message``) and the offending value (``got``,
    ``...`` when there is none to show)."""

    def __init__(self, loc: Loc, message: str, got: Any = ...) -> None:
        super().__init__(f"{'.'.join(map(str, loc))}: {message}" if loc else message)
        self.loc, self.message, self.got = loc, message, got


class _Bound:
    """A bound on a number, read from ``Annotated[...]``."""

    words = ""

    def __init__(self, value: float) -> None:
        self.value = value

    def holds(self, x: float) -> bool:
        raise NotImplementedError

    def message(self) -> str:
        return f"Input should be {self.words} {self.value}"


class Ge(_Bound):
    """At least ``value``."""

    words = "greater than or equal to"

    def holds(self, x: float) -> bool:
        return x >= self.value


class Gt(_Bound):
    """Above ``value``."""

    words = "greater than"

    def holds(self, x: float) -> bool:
        return x > self.value


class Le(_Bound):
    """At most ``value``."""

    words = "less than or equal to"

    def holds(self, x: float) -> bool:
        return x <= self.value


class MinLen:
    """A list of at least ``value`` items."""

    def __init__(self, value: int) -> None:
        self.value = value


_HINTS: dict[type, dict[str, tuple[Any, bool]]] = {}


def fields_of(cls: type) -> dict[str, tuple[Any, bool]]:
    """A record's fields in order: name -> (type hint, required)."""
    if cls not in _HINTS:
        hints = typing.get_type_hints(cls, include_extras=True)
        _HINTS[cls] = {
            f.name: (
                hints[f.name],
                f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING,
            )
            for f in dataclasses.fields(cls)
        }
    return _HINTS[cls]


def validate(cls: type, data: Any) -> Any:
    """``data`` as a ``cls`` record, or :class:`RecordError` for the first problem (an unknown key anywhere
    first, as it usually explains a missing field)."""
    errors: list[RecordError] = []
    value = _value(cls, data, (), errors)
    if errors:
        raise next((e for e in errors if e.message.startswith("unknown key")), errors[0])
    return value


def unknown_key_message(key: str, valid: typing.Iterable[str]) -> str:
    """The message for a key a record or model does not have: the closest valid key, or the list of them."""
    valid = sorted(valid)
    import difflib  # only for a message: kept off every run's start-up

    close = difflib.get_close_matches(key, valid, n=1)
    if close:
        return f"unknown key; did you mean {close[0]!r}?"
    return f"unknown key; valid keys here: {', '.join(valid)}"


def _located(loc: Loc, exc: ValueError) -> RecordError:
    """A rule's ValueError at ``loc``; a message ``"@a.b: text"`` (:func:`at_field`) blames field ``a.b``."""
    message = str(exc)
    if message.startswith("@"):
        where, _, message = message[1:].partition(": ")
        loc = loc + tuple(int(p) if p.isdigit() else p for p in where.split(".") if p)
    return RecordError(loc, message)


_FAILED = object()


def _record(cls: type, data: Any, loc: Loc, errors: list[RecordError]) -> Any:
    hook = getattr(cls, "before_validation", None)
    if hook is not None:
        try:
            data = hook(data)
        except ValueError as exc:
            errors.append(_located(loc, exc))
            return _FAILED
    fields = fields_of(cls)
    if not isinstance(data, dict):
        if loc:
            message = f"Input should be a valid dictionary or instance of {cls.__name__}"
            errors.append(RecordError(loc, message, data))
        else:
            required = [name for name, (_, req) in fields.items() if req]
            errors.append(
                RecordError(
                    loc, f"expected a mapping with {', '.join(required)} (got a {type(data).__name__})"
                )
            )
        return _FAILED
    before = len(errors)
    values = {}
    for name, (hint, required) in fields.items():
        if name in data:
            values[name] = _value(hint, data[name], loc + (name,), errors)
        elif required:
            errors.append(RecordError(loc + (name,), "required field is missing"))
    for key in data:
        if key not in fields:
            errors.append(RecordError(loc + (key,), unknown_key_message(str(key), fields)))
    if len(errors) > before:
        return _FAILED
    try:
        return cls(**values)
    except ValueError as exc:
        errors.append(_located(loc, exc))
        return _FAILED


def _value(hint: Any, data: Any, loc: Loc, errors: list[RecordError]) -> Any:
    bounds: tuple = ()
    if typing.get_origin(hint) is Annotated:
        hint, *bounds = typing.get_args(hint)
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        if data is None:
            return None
        hint = options[0]  # X | None is the only union a record uses
        if typing.get_origin(hint) is Annotated:
            hint, *more = typing.get_args(hint)
            bounds = (*bounds, *more)
        origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return _record(hint, data, loc, errors)
    if origin is Literal:
        choices = typing.get_args(hint)
        if data not in choices:
            names = [repr(c) for c in choices]
            listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
            errors.append(RecordError(loc, f"Input should be {listed}", data))
            return _FAILED
        return data
    if origin is list:
        if not isinstance(data, (list, tuple)):
            errors.append(RecordError(loc, "Input should be a valid list", data))
            return _FAILED
        (item,) = typing.get_args(hint)
        out = [_value(item, x, loc + (i,), errors) for i, x in enumerate(data)]
        need = next((b.value for b in bounds if isinstance(b, MinLen)), 0)
        if len(out) < need:
            errors.append(
                RecordError(
                    loc,
                    f"List should have at least {need} item{'s' * (need != 1)} after "
                    f"validation, not {len(out)}",
                    data,
                )
            )
        return out
    if origin is dict:
        if not isinstance(data, dict):
            errors.append(RecordError(loc, "Input should be a valid dictionary", data))
            return _FAILED
        key_type, item = typing.get_args(hint)
        for k in data:
            _value(key_type, k, loc + (k, "[key]"), errors)
        return {k: _value(item, v, loc + (k,), errors) for k, v in data.items()}
    value = _scalar(hint, data, loc, errors)
    if value is not _FAILED:
        for b in bounds:
            if not b.holds(value):
                errors.append(RecordError(loc, b.message(), data))
                return _FAILED
    return value


def _scalar(hint: type, data: Any, loc: Loc, errors: list[RecordError]) -> Any:
    is_number = isinstance(data, (int, float)) and not isinstance(data, bool)
    if hint is bool:
        if isinstance(data, bool):
            return data
        message = "Input should be a valid boolean"
    elif hint is int:
        if is_number and (isinstance(data, int) or data.is_integer()):
            return int(data)
        message = (
            "Input should be a valid integer, got a number with a fractional part"
            if is_number
            else "Input should be a valid integer"
        )
    elif hint is float:
        if is_number and math.isfinite(data):
            return float(data)
        message = "Input should be a finite number" if is_number else "Input should be a valid number"
    elif hint is str:
        if isinstance(data, str):
            return data
        message = "Input should be a valid string"
    else:
        raise TypeError(f"a record field may not be of type {hint!r}")
    errors.append(RecordError(loc, message, data))
    return _FAILED
