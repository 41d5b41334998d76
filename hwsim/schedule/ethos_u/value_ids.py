"""Small ints standing for values, so that the estimate memos' keys hash in a few steps.

A memo key made of nested tuples (a memory's eight fields in each of three feature maps, a block config,
an op group) is hashed again at every lookup: 3-4 us of a warm U85 plan's 11 us per memoised estimate. A
value's id is looked up once per object (its ``key``), and a key made of ids is a short tuple of ints and
strings. Equal values get equal ids, and an id is never given to another value (after the table is
cleared, a value gets a new one: a memo misses, it never answers wrongly).
"""

from __future__ import annotations

from dataclasses import fields
from itertools import count

LIMIT = 1 << 16  # values kept before the table starts afresh

_ids: dict[tuple, int] = {}
_next_id = count().__next__


def value_id(value: tuple) -> int:
    """The id of ``value`` (hashable)."""
    found = _ids.get(value)
    if found is None:
        if len(_ids) >= LIMIT:
            _ids.clear()
        found = _ids[value] = _next_id()
    return found


def fields_id(record) -> int:
    """The id of a dataclass's field values (not recursed into, unlike ``dataclasses.astuple``)."""
    return value_id(tuple(getattr(record, f.name) for f in fields(record)))
