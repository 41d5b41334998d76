"""A named registry with helpful misses: the one plug-in mechanism of hwsim."""

from __future__ import annotations

from typing import Callable, Generic, Iterator, TypeVar

from hwsim.errors import RegistryError

T = TypeVar("T")


class Registry(Generic[T]):
    """Map names to objects; ``get`` of an unknown name says what exists and what was probably meant."""

    def __init__(self, kind: str, table: dict[str, T] | None = None) -> None:
        """An empty registry of ``kind`` items, or one holding ``table`` (a registry written as one table)."""
        self.kind = kind
        self._items: dict[str, T] = dict(table or {})

    def add(self, name: str, item: T) -> T:
        """Register ``item`` under ``name``; names are unique."""
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._items[name] = item
        return item

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator form of :meth:`add`."""
        return lambda item: self.add(name, item)

    def get(self, name: str) -> T:
        """Return the item called ``name`` or raise :class:`RegistryError` naming the valid ones."""
        try:
            return self._items[name]
        except KeyError:
            import difflib  # only for a message: kept off every run's start-up

            close = difflib.get_close_matches(name, self._items, n=3)
            hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
            raise RegistryError(
                f"unknown {self.kind} {name!r}.{hint} Valid: {', '.join(sorted(self._items))}"
            ) from None

    def names(self) -> list[str]:
        """Registered names in registration order."""
        return list(self._items)

    def items(self) -> Iterator[tuple[str, T]]:
        """(name, item) pairs in registration order."""
        return iter(self._items.items())

    def __contains__(self, name: object) -> bool:
        return name in self._items
