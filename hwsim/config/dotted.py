"""Set a value deep inside nested config data by a dotted path (``memories.sram.size_bytes``).

Experiments sweep any field of a device, recipe or section this way, and the CLI overrides device fields
with it; list items are found by position or by their ``name``.
"""

from __future__ import annotations

import copy
from typing import Any

from hwsim.errors import ConfigError


def set_path(data: Any, parts: list[str], value: Any, where: str) -> None:
    """Set ``data[parts...] = value`` in nested dicts and lists (list items by position or by ``name``); a
    mapping value merges into an existing mapping."""
    node = data
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            idx = _list_index(node, part, where)
            if last:
                node[idx] = _merged(node[idx], value)
            else:
                node = node[idx]
        elif isinstance(node, dict):
            if last:
                node[part] = _merged(node.get(part), value)
            else:
                if node.get(part) is None:
                    node[part] = {}
                node = node[part]
        else:
            raise ConfigError(f"{where}: cannot descend into {'.'.join(parts[:i])} (a {type(node).__name__})")


def _list_index(items: list, part: str, where: str) -> int:
    if part.isdigit() and int(part) < len(items):
        return int(part)
    names = [it.get("name") for it in items if isinstance(it, dict)]
    if part in names:
        return names.index(part)
    raise ConfigError(f"{where}: no list item named {part!r} (have {', '.join(map(str, names))})")


def _merged(old: Any, value: Any) -> Any:
    if isinstance(value, dict) and isinstance(old, dict):
        return {**old, **copy.deepcopy(value)}
    return copy.deepcopy(value)
