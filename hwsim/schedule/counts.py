"""Counts of the actions an energy model prices, keyed ``(component, action, bits)``.

Components are the names in the device file: ``mac_array.name`` (default ``"mac_array"``), each
``vector_units[].name`` and each ``memories[].name``. The scheduler emits exactly these keys:

=====================  ===================  ===========
========================================================== component              action               bits
counted per =====================  ===================  ===========
========================================================== MAC array              ``"mac"`` ``"WxA"``
useful multiply-accumulate, weights W bits x activations A MAC array              ``"idle"`` ``"WxA"``    MAC
slot of a PE-cycle that did no useful work vector unit            ``"op"``             A elementwise/pooling
operation on one A-bit element vector unit            ``"mac"``            ``"WxA"`` multiply-accumulate done
on a vector unit (depthwise) memory level (any)     ``"read"``           b b-bit element read (by a compute
unit or a DMA source) memory level (any)     ``"write"``          b b-bit element written (by a compute unit
or a DMA sink) register file level    ``"read"``/``"write"`` b operand or accumulator register access per MAC
=====================  ===================  ===========
==========================================================

``b`` is the element width of the operand: weights and activations at their precision, partial sums and
biases at the accumulator width. A memory level's ``kind`` (off_chip, sram, register_file) is in the device,
so an energy table can price by kind and size.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

Key = tuple[str, str, "int | str"]


@dataclass
class ActionCounts:
    """A bag of ``(component, action, bits) -> count`` (integers; missing keys count 0)."""

    counts: dict[Key, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, component: str, action: str, bits: int | str, count: int) -> None:
        """Add ``count`` occurrences of one action (zero counts are not stored)."""
        if count:
            self.counts[(component, action, bits)] += int(count)

    def merge(self, other: ActionCounts) -> None:
        """Add every count of ``other``."""
        for key, value in other.counts.items():
            self.counts[key] += value

    @classmethod
    def total(cls, parts: Iterable[ActionCounts]) -> ActionCounts:
        """The sum of several bags."""
        out = cls()
        for part in parts:
            out.merge(part)
        return out

    def __getitem__(self, key: Key) -> int:
        return self.counts.get(key, 0)

    def __iter__(self) -> Iterator[tuple[Key, int]]:
        """``(key, count)`` in a stable order (component, action, bits as text)."""
        return iter(sorted(self.counts.items(), key=lambda kv: (kv[0][0], kv[0][1], str(kv[0][2]))))

    def keys(self) -> list[Key]:
        """The keys with a non-zero count, sorted."""
        return [k for k, _ in self]

    def bytes_moved(self) -> dict[tuple[str, str], int]:
        """Bytes read and written per memory level: ``{(level, "read"|"write"): bytes}`` (ceil to bytes)."""
        out: dict[tuple[str, str], int] = defaultdict(int)
        for (component, action, bits), count in self:
            if action in ("read", "write") and isinstance(bits, int):
                out[(component, action)] += -(-count * bits // 8)
        return dict(out)

    def table(self) -> str:
        """A plain-text table, one key per line."""
        rows = [f"{c:16s} {a:6s} {str(b):>6s} {n:>16,d}" for (c, a, b), n in self]
        return "\n".join([f"{'component':16s} {'action':6s} {'bits':>6s} {'count':>16s}", *rows])
