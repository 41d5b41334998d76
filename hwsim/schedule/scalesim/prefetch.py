"""Where each request of a distinct-word operand sits in its USER-mode prefetch order, in closed form.

A USER-mode read buffer (:class:`.buffers.PrefetchReadBuffer`) only needs, for each request, the set its
word is prefetched in: the word's rank in the prefetch order, divided by the set size. The prefetch order
stacks the operand matrix's folds (``folds`` blocks of ``width`` columns, the last one ``used`` wide, the
rest padding) into a ``folds * t x width`` matrix and reads it by anti-diagonals or row by row
(:meth:`.demand.LayerDemand.prefetch_sequence`), leaving out the ``-1`` entries. When every word of the
matrix is distinct (every filter; an IFMAP whose windows do not overlap), a word's rank follows from its
row and column alone: its place in the order without the padding, less the IFMAP's ``-1`` entries (window
elements past its edge, few: the last OFMAP rows and columns) placed before it. So no address, prefetch
sequence or word-to-set table is built.

The demand visits each fold's block in an order that makes the ranks easy to search: an anti-diagonal
block (OS IFMAP and filter, WS IFMAP, IS filter) is a ``t x width`` slice of the stacked matrix read by its
own anti-diagonals, a subsequence of the prefetch order, so its ranks increase; a row-by-row block (WS
filter, IS IFMAP) is read bottom row first, each row a run of consecutive ranks. Both are handed to the
buffer as increasing runs (:class:`RankArray`, :class:`RankRange`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from hwsim.schedule.scalesim.demand import LayerDemand, demand_order, ifmap_matrix


def _below(d: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Elements ``(r, c)`` of a ``rows x cols`` matrix with ``r + c < d``: ``sum over c of clip(d - c, 0,
    rows)``, as ``F(d) - F(d - cols)`` with ``F(y) = sum_{x=1..y} min(x, rows)``."""

    def f(y: np.ndarray) -> np.ndarray:
        y = np.maximum(y, 0)
        low = np.minimum(y, rows)
        return low * (low + 1) // 2 + (y - low) * rows

    return f(d) - f(d - cols)


@dataclass(frozen=True)
class StackedOrder:
    """The prefetch order of a ``folds * t x width`` stacked matrix, padding left out (see module doc)."""

    t: int  # rows of one fold (rows of the operand matrix)
    width: int
    folds: int
    used: int  # columns of the last fold that hold words
    diagonal: bool
    edges: np.ndarray  # the places (see :meth:`place`) of the ``-1`` entries that are not padding, sorted

    @property
    def words(self) -> int:
        """Words prefetched (``-1`` entries left out)."""
        return self.t * ((self.folds - 1) * self.width + self.used) - int(self.edges.size)

    @property
    def slots(self) -> int:
        """Slots of the stacked matrix, padding included."""
        return self.folds * self.t * self.width

    def place(self, row: np.ndarray, col: np.ndarray) -> np.ndarray:
        """Place of element ``(row, col)`` of the stacked matrix in prefetch order, padding left out.

        Padding is the rectangle of rows ``a = (folds - 1) t ..`` and columns ``used ..``; the place is the
        element's position in the order less the padding before it. Row by row that is ``row * width + col``
        less ``width - used`` per padded row above; by anti-diagonals (``d = row + col``, then by column)
        the place is the elements of earlier diagonals plus the earlier columns of diagonal ``d``, and the
        padding before it is counted the same way on the rectangle.
        """
        n, w, u, a = self.folds * self.t, self.width, self.used, (self.folds - 1) * self.t
        if not self.diagonal:
            return row * w + col - np.maximum(row - a, 0) * (w - u)
        d = row + col
        place = _below(d, n, w) + col - np.maximum(d - n + 1, 0)
        if u == w:
            return place
        padding = _below(d - a - u, n - a, w - u) + np.maximum(
            np.minimum(col, d - a + 1) - np.maximum(u, d - n + 1), 0
        )
        return place - padding


@dataclass(frozen=True)
class RankArray:
    """An increasing run of ranks held as an array, with each request's demand line within its fold."""

    ranks: np.ndarray
    lines: np.ndarray

    @property
    def size(self) -> int:
        return int(self.ranks.size)

    def rank_at(self, k: int) -> int:
        return int(self.ranks[k])

    def index_at_least(self, rank: int, k: int) -> int:
        """The first request from ``k`` on whose rank is at least ``rank`` (``size`` if none)."""
        return max(k, int(np.searchsorted(self.ranks, rank)))

    def line_at(self, k: int) -> int:
        return int(self.lines[k])


@dataclass(frozen=True)
class RankRange:
    """A run of consecutive ranks ``low, low + 1, ...``, all on one demand line (a row of a block)."""

    low: int
    size: int
    line: int

    def rank_at(self, k: int) -> int:
        return self.low + k

    def index_at_least(self, rank: int, k: int) -> int:
        return max(k, min(self.size, rank - self.low))

    def line_at(self, k: int) -> int:
        return self.line


@lru_cache(maxsize=256)
def diagonal_slots(rows: int, cols: int, prefix: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A skewed ``rows x cols`` block's requests in demand order: each one's anti-diagonal and column
    within the block, and its demand line in the fold (kept per shape, as :func:`.demand.demand_order`)."""
    order, line = demand_order(rows, cols, True, prefix)
    r, c = np.divmod(order, cols)
    diag = r + c
    diag.flags.writeable = c.flags.writeable = False
    return diag, c, line


class RankedBlocks:
    """An operand's demand as blocks of prefetch ranks: the block of each fold (:attr:`ids`), bounds on each
    block's ranks (:attr:`low`, :attr:`high`: exact unless an end request is a ``-1``), and its runs
    (:meth:`runs`), built on first use."""

    def __init__(self, d: LayerDemand, name: str) -> None:
        src, width, folds, diagonal = d.prefetch_layout(name)
        op = d.operand(name)
        t, cols = op.shape
        used = cols - (folds - 1) * width
        edges = np.zeros(0, dtype=np.int64)
        if name == "ifmap":
            i, j = _edge_entries(d, src)
            edges = np.sort(
                StackedOrder(t, width, folds, used, diagonal, edges).place(j // width * t + i, j % width)
            )
        self.order = o = StackedOrder(t, width, folds, used, diagonal, edges)
        self.op = op
        self.lines_per_fold = op.lines_per_fold
        fc, fr = np.divmod(np.arange(op.folds), op.row_folds)
        if diagonal:  # block f: rows f t .. of the stacked matrix, all its columns, read by anti-diagonals
            self.ids = {"fr": fr, "fc": fc}[op.slice_cols_by].tolist()
            f = np.arange(folds)
            first = o.place(f * t, np.zeros_like(f))
            last = o.place(f * t + t - 1, np.where(f == folds - 1, used, width) - 1)
        else:  # block (fr, fc): rows fr R .. of fold fc, read bottom row first (SCALE-Sim flips it)
            self.ids = list(range(op.folds))
            top = fc * t + fr * op.block_rows
            rows = np.minimum(op.block_rows, t - fr * op.block_rows)
            row_words = np.where(fc == folds - 1, used, width)
            first = o.place(top, np.zeros_like(top))
            last = first + rows * row_words - 1
            self._rows, self._row_words, self._first = rows.tolist(), row_words.tolist(), first.tolist()
        # a word's rank is its place less the -1 entries before it: bound the ranks by the end places
        self.low = (first - np.searchsorted(edges, first)).tolist()
        self.high = (last - np.searchsorted(edges, last, side="right")).tolist()
        self._runs: dict[int, list] = {}

    @property
    def _diagonal_slots(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return diagonal_slots(self.order.t, self.order.width, self.op.prefix)

    def _diagonal_places(self, b: int, diag: np.ndarray, col: np.ndarray) -> np.ndarray:
        """Places of block ``b``'s elements on block anti-diagonals ``diag``, columns ``col``.

        Without padding, an element's place is a function of its diagonal (the elements of earlier
        diagonals, less the columns a diagonal starts after) plus its column: that function is tabulated
        over the block's ``t + width - 1`` diagonals and looked up, instead of evaluated per element.
        """
        o = self.order
        if o.used < o.width and (b + 1) * o.t + o.width - 2 >= (o.folds - 1) * o.t + o.used:
            return o.place(b * o.t + diag - col, col)  # the padding may come before: the whole formula
        d = b * o.t + np.arange(o.t + o.width - 1)
        n = o.folds * o.t
        table = _below(d, n, o.width) - np.maximum(d - n + 1, 0)
        return table[diag] + col

    def runs(self, b: int) -> list:
        """Block ``b``'s requests in demand order (``-1`` left out), as increasing runs of ranks."""
        if b in self._runs:
            return self._runs[b]
        o, edges = self.order, self.order.edges
        if o.diagonal:
            diag, c, line = self._diagonal_slots
            if b == o.folds - 1 and o.used < o.width:
                keep = c < o.used
                diag, c, line = diag[keep], c[keep], line[keep]
            place = self._diagonal_places(b, diag, c)
            if not edges.size:
                runs: list = [RankArray(place, line)]
            else:
                before = np.searchsorted(edges, place)
                word = edges[np.minimum(before, edges.size - 1)] != place
                runs = [RankArray((place - before)[word], line[word])]
        else:
            rows, row_words, first = self._rows[b], self._row_words[b], self._first[b]
            lines = (self.op.prefix + self.op.block_rows - 1 - np.arange(rows)).tolist()
            starts = first + np.arange(rows + 1) * row_words
            before = (np.searchsorted(edges, starts) if edges.size else np.zeros_like(starts)).tolist()
            starts = starts.tolist()
            # a row's places are consecutive, so are the ranks of its words, whatever -1 it holds
            runs = [
                RankRange(starts[i] - before[i], row_words - (before[i + 1] - before[i]), lines[i])
                for i in range(rows - 1, -1, -1)
            ]
        self._runs[b] = runs
        return runs


def _edge_entries(d: LayerDemand, src: str) -> tuple[np.ndarray, np.ndarray]:
    """(row, column) in the operand matrix ``src`` (``ifmap`` or ``ifmap.T``) of every ``-1`` entry: the
    window elements past the IFMAP's bottom or right edge, found on the OFMAP's last rows and columns
    only."""
    layer = d.layer
    oy = np.arange(layer.ofmap_h)
    ox = np.arange(layer.ofmap_w)
    rows_past = oy[oy * layer.stride_h + layer.filter_h > layer.ifmap_h]
    cols_past = ox[ox * layer.stride_w + layer.filter_w > layer.ifmap_w]
    if not rows_past.size and not cols_past.size:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    past = np.zeros((layer.ofmap_h, layer.ofmap_w), dtype=bool)
    past[rows_past, :] = True
    past[:, cols_past] = True
    pixels = np.flatnonzero(past)
    p, w = np.nonzero(ifmap_matrix(layer, 0, pixels) < 0)
    p = pixels[p]
    return (w, p) if src == "ifmap.T" else (p, w)
