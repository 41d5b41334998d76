"""SCALE-Sim's operand matrices, folds, SRAM request counts and demand streams, for each dataflow.

Operand matrices (``compute/operand_matrix.py``): the IFMAP matrix is ``pixels x window`` (address of each
window element of each output pixel, ``-1`` where the window reaches past the IFMAP), the filter matrix
``window x filters`` and the OFMAP matrix ``pixels x filters``. A dataflow spreads two of the three GEMM
dimensions over the ``R x C`` array (``Sr`` over rows, ``Sc`` over columns) and streams the third (``T``);
each placement is a fold, folds go column-fold outer, row-fold inner, and every fold has the same number of
demand lines (cycles). Per operand and fold, SCALE-Sim takes a block of its matrix, pads it with ``-1`` to
the array edge, sometimes flips it, adds empty gap lines before or after it and skews it (line ``r + c``
for element ``(r, c)``) so that column ``c`` enters ``c`` cycles late (``compute/systolic_compute_*.py``):

========  =====  =============================  ======================  ==============================
dataflow  op     block of a fold                gap lines               skew
========  =====  =============================  ======================  ==============================
os        ifmap  ifmap.T[:, pixels of fr]       after: C - 1            yes
os        filt   filter[:, filters of fc]       after: R - 1            yes
os        ofmap  ofmap[pixels fr, filters fc]   before: T - 1           yes, rows flipped, R x C
ws        ifmap  ifmap[:, window of fr]         before R, after C - 1   yes
ws        filt   filter[window fr, filters fc]  after: R + C + T - 2    no, rows flipped, R x C
ws        ofmap  ofmap[:, filters of fc]        before: 2R - 1          yes
is        ifmap  ifmap.T[window fr, pixels fc]  after: R + C + T - 2    no, rows flipped, R x C
is        filt   filter[window of fr, :].T      before R, after C - 1   yes
is        ofmap  ofmap[pixels of fc, :].T       before: 2R - 1          yes
========  =====  =============================  ======================  ==============================

The SRAM request counts of the reports are the sizes of the unpadded blocks (``-1`` window elements
included), and for OS the OFMAP count adds ``R + C`` per fold (SCALE-Sim adds the padded block's height
and width to its write count).

The prefetch matrices (USER bandwidth mode) stack one block per fold of the operand's own dimension and are
read in anti-diagonal order, except the WS filter and the IS IFMAP, read row by row.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np

from hwsim.schedule.scalesim.layers import ScaleSimLayer

STREAM_CHUNK_ELEMS = 1 << 22  # demand elements generated at a time (bounds memory on large layers)


@dataclass(frozen=True)
class Offsets:
    """Where each operand starts in SCALE-Sim's address space (``IfmapOffset``, ``FilterOffset``, ...)."""

    ifmap: int = 0
    filter: int = 10_000_000
    ofmap: int = 20_000_000


@lru_cache(maxsize=256)
def skew_order(rows: int, cols: int) -> np.ndarray:
    """Flat indices of a ``rows x cols`` matrix in anti-diagonal order: by ``r + c``, then by column.

    This is the order of a skewed block's requests (line ``r + c``, columns left to right) and of SCALE-Sim's
    anti-diagonal prefetch order (rows bottom-up within a diagonal); built directly, without sorting. In a
    tall matrix every diagonal from ``cols - 1`` to ``rows - 1`` is full, so that part is one product
    ``d * cols - c * (cols - 1)``; the two corners are triangles (small matrices take the general way).
    The same few shapes recur from layer to layer (array sides, streamed dimensions), so each order is built
    once and kept, read-only.

    >>> skew_order(2, 3).tolist()
    [0, 3, 1, 4, 2, 5]
    >>> skew_order(4, 2).tolist()
    [0, 2, 1, 4, 3, 6, 5, 7]
    """
    if rows < cols or cols == 1 or rows * cols <= 8192:
        order = _skew_order_general(rows, cols)
    else:
        c = np.arange(cols)
        d, ch = np.tril_indices(cols - 1)  # top-left corner: diagonal d < cols - 1, columns 0..d
        head = (d - ch) * cols + ch
        e, j = np.triu_indices(cols - 1)  # bottom-right corner: diagonal rows + e, columns e + 1..cols - 1
        tail = (rows + e - j - 1) * cols + j + 1
        middle = (np.arange(cols - 1, rows)[:, None] * cols - c[None, :] * (cols - 1)).ravel()
        order = np.concatenate((head, middle, tail)).astype(np.int64, copy=False)
    order.flags.writeable = False
    return order


@lru_cache(maxsize=256)
def demand_order(rows: int, cols: int, skew: bool, prefix: int) -> tuple[np.ndarray, np.ndarray]:
    """A ``rows x cols`` block's requests in demand order: (index into the flattened block, line within its
    fold), the block starting ``prefix`` lines into the fold; skewed, element ``(r, c)`` is on line
    ``prefix + r + c``. Kept per shape, read-only, as :func:`skew_order`."""
    order = skew_order(rows, cols) if skew else np.arange(rows * cols)
    r, c = np.divmod(order, cols)
    line = prefix + r + (c if skew else 0)
    order.flags.writeable = line.flags.writeable = False
    return order, line


def _skew_order_general(rows: int, cols: int) -> np.ndarray:
    """:func:`skew_order` for any shape: each element's place from its diagonal's start and its column."""
    r, c = np.divmod(np.arange(rows * cols), cols)
    d = r + c
    first_col = np.maximum(0, np.arange(rows + cols - 1) - rows + 1)
    last_col = np.minimum(np.arange(rows + cols - 1), cols - 1)
    start = np.concatenate(([0], np.cumsum(last_col - first_col + 1)[:-1]))
    order = np.empty(rows * cols, dtype=np.int64)
    order[start[d] + c - first_col[d]] = np.arange(rows * cols)
    return order


def ifmap_matrix(
    layer: ScaleSimLayer, offset: int = 0, pix: np.ndarray | None = None, win: np.ndarray | None = None
) -> np.ndarray:
    """IFMAP addresses of output pixels ``pix`` x window elements ``win`` (default all), ``-1`` past the
    IFMAP."""
    pix = np.arange(layer.pixels) if pix is None else pix
    win = np.arange(layer.window) if win is None else win
    oy, ox = np.divmod(pix, layer.ofmap_w)
    fy, rest = np.divmod(win, layer.filter_w * layer.channels)
    fx, ch = np.divmod(rest, layer.channels)
    y0, x0 = oy * layer.stride_h, ox * layer.stride_w  # the window's corner, per output pixel
    addr = ((y0 * layer.ifmap_w + x0) * layer.channels + offset)[:, None] + (
        (fy * layer.ifmap_w + fx) * layer.channels + ch
    )[None, :]
    if (
        y0.max(initial=0) + fy.max(initial=0) >= layer.ifmap_h
        or x0.max(initial=0) + fx.max(initial=0) >= layer.ifmap_w
    ):  # some window reaches past the edge
        past = ((y0[:, None] + fy[None, :]) >= layer.ifmap_h) | ((x0[:, None] + fx[None, :]) >= layer.ifmap_w)
        addr[past] = -1
    return addr.astype(np.int64, copy=False)


def filter_matrix(
    layer: ScaleSimLayer, offset: int = 0, win: np.ndarray | None = None, filt: np.ndarray | None = None
) -> np.ndarray:
    """Filter addresses of window elements ``win`` x filters ``filt`` (filter ``j`` holds ``window``
    words)."""
    win = np.arange(layer.window) if win is None else win
    filt = np.arange(layer.filters) if filt is None else filt
    return (filt[None, :] * layer.window + win[:, None] + offset).astype(np.int64, copy=False)


def ofmap_matrix(
    layer: ScaleSimLayer, offset: int = 0, pix: np.ndarray | None = None, filt: np.ndarray | None = None
) -> np.ndarray:
    """OFMAP addresses of output pixels ``pix`` x filters ``filt``."""
    pix = np.arange(layer.pixels) if pix is None else pix
    filt = np.arange(layer.filters) if filt is None else filt
    return (pix[:, None] * layer.filters + filt[None, :] + offset).astype(np.int64)


def ifmap_distinct_words(layer: ScaleSimLayer) -> int:
    """IFMAP words some window reads: covered rows x covered columns x channels."""
    covered = []
    for size, out, filt, stride in (
        (layer.ifmap_h, layer.ofmap_h, layer.filter_h, layer.stride_h),
        (layer.ifmap_w, layer.ofmap_w, layer.filter_w, layer.stride_w),
    ):
        hit = np.zeros(size + filt + out * stride, dtype=bool)
        starts = np.arange(out) * stride
        hit[(starts[:, None] + np.arange(filt)[None, :]).ravel()] = True
        covered.append(int(np.count_nonzero(hit[:size])))
    return covered[0] * covered[1] * layer.channels


def _padded(matrix: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``matrix`` padded with ``-1`` to ``shape`` (``matrix`` itself when it has that shape)."""
    if matrix.shape == shape:
        return matrix
    out = np.full(shape, -1, dtype=np.int64)
    out[: matrix.shape[0], : matrix.shape[1]] = matrix
    return out


@dataclass(frozen=True)
class FoldedOperand:
    """One operand's demand matrix: fold ``f``'s padded block (:meth:`block`), placed on its lines.

    ``source(rows, cols)`` returns a slice of the operand matrix, arranged so that a fold's block is one;
    ``shape`` is that matrix's shape. ``block_rows x
    block_cols`` is the padded block; ``prefix`` empty lines come before it in each fold and
    ``lines_per_fold`` is the fold's whole height; a skewed block puts element ``(r, c)`` on line
    ``prefix + r + c``, an unskewed one on ``prefix + r``.
    """

    source: Callable[[slice, slice], np.ndarray]
    shape: tuple[int, int]
    row_folds: int
    col_folds: int
    block_rows: int
    block_cols: int
    slice_rows_by: str  # which fold index picks the block's rows: "fr", "fc" or "" (all rows)
    slice_cols_by: str
    flip: bool
    prefix: int
    lines_per_fold: int
    skew: bool
    padding_only: bool = True  # whether the only -1 entries are the padding to the array edge

    @property
    def folds(self) -> int:
        """Folds of the layer (column folds x row folds)."""
        return self.row_folds * self.col_folds

    def _span(self, fold: int, by: str, width: int) -> slice:
        fc, fr = divmod(fold, self.row_folds)
        if not by:
            return slice(None)
        start = (fr if by == "fr" else fc) * width
        return slice(start, start + width)

    def block(self, fold: int) -> np.ndarray:
        """Fold ``fold``'s block, padded with -1 to ``block_rows x block_cols`` (flipped when SCALE-Sim
        does)."""
        part = self.source(
            self._span(fold, self.slice_rows_by, self.block_rows),
            self._span(fold, self.slice_cols_by, self.block_cols),
        )
        out = np.full((self.block_rows, self.block_cols), -1, dtype=np.int64)
        out[: part.shape[0], : part.shape[1]] = part
        return out[::-1] if self.flip else out

    @cached_property
    def _order(self) -> tuple[np.ndarray, np.ndarray]:
        """Row-major order of a fold's demand lines: (index into the flattened block, line within the
        fold)."""
        return demand_order(self.block_rows, self.block_cols, self.skew, self.prefix)

    @cached_property
    def _ordered_tiles(self) -> np.ndarray:
        """Every distinct block once, as its requests in demand order: ``(row blocks x column blocks,
        slots)``."""
        full = self.source(slice(None), slice(None))
        nr = math.ceil(self.shape[0] / self.block_rows) if self.slice_rows_by else 1
        nc = math.ceil(self.shape[1] / self.block_cols) if self.slice_cols_by else 1
        padded = _padded(full, (nr * self.block_rows, nc * self.block_cols))
        tiles = padded.reshape(nr, self.block_rows, nc, self.block_cols).transpose(0, 2, 1, 3)
        if self.flip:
            tiles = tiles[:, :, ::-1, :]
        return tiles.reshape(nr * nc, -1)[:, self._order[0]]

    def block_sequence(
        self,
    ) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray], Callable[[int, int], int]]:
        """The demand as blocks: the block of each fold, each distinct block's words in demand order (``-1``
        dropped) and their slots, and ``line_of(fold, slot)``. For operands whose words are all distinct,
        where a buffer can be run block by block instead of request by request."""
        order, line = self._order
        tiles = self._ordered_tiles
        nc = math.ceil(self.shape[1] / self.block_cols) if self.slice_cols_by else 1
        fc, fr = np.divmod(np.arange(self.folds), self.row_folds)
        pick = {"fr": fr, "fc": fc, "": np.zeros_like(fc)}
        ids = pick[self.slice_rows_by] * nc + pick[self.slice_cols_by]
        valid = tiles >= 0
        whole = valid.all(axis=1).tolist()
        every = np.arange(tiles.shape[1])
        slots = [every if full else np.flatnonzero(keep) for full, keep in zip(whole, valid)]
        words = [row if full else row[keep] for full, row, keep in zip(whole, tiles, slots)]

        def line_of(fold: int, slot: int) -> int:
            return fold * self.lines_per_fold + int(line[slot])

        return ids, words, slots, line_of

    def block_slots(self) -> tuple[np.ndarray, list[np.ndarray], Callable[[int, int], int]]:
        """:meth:`block_sequence` without the words, for an operand whose only ``-1`` entries are padding:
        each distinct block's slots follow from how much of the array it uses, so no address is built."""
        order, line = self._order
        nr = math.ceil(self.shape[0] / self.block_rows) if self.slice_rows_by else 1
        nc = math.ceil(self.shape[1] / self.block_cols) if self.slice_cols_by else 1
        fc, fr = np.divmod(np.arange(self.folds), self.row_folds)
        pick = {"fr": fr, "fc": fc, "": np.zeros_like(fc)}
        ids = pick[self.slice_rows_by] * nc + pick[self.slice_cols_by]
        slots = []
        for b in range(nr * nc):
            i, j = divmod(b, nc)
            slots.append(
                self._extent_slots(
                    min(self.block_rows, self.shape[0] - i * self.block_rows),
                    min(self.block_cols, self.shape[1] - j * self.block_cols),
                )
            )

        def line_of(fold: int, slot: int) -> int:
            return fold * self.lines_per_fold + int(line[slot])

        return ids, slots, line_of

    @cached_property
    def _slots_by_extent(self) -> dict[tuple[int, int], np.ndarray]:
        return {}

    def _extent_slots(self, rows_used: int, cols_used: int) -> np.ndarray:
        """The slots (places in demand order) of a block using ``rows_used x cols_used`` of the array."""
        key = (rows_used, cols_used)
        if key not in self._slots_by_extent:
            mask = np.zeros((self.block_rows, self.block_cols), dtype=bool)
            mask[:rows_used, :cols_used] = True
            order = self._order[0]
            self._slots_by_extent[key] = np.flatnonzero((mask[::-1] if self.flip else mask).ravel()[order])
        return self._slots_by_extent[key]

    def streams(self) -> Iterator[tuple[np.ndarray, Callable[[int], int]]]:
        """Chunks of ``(addresses, line_of)``: every slot in demand-matrix order (``-1``: no request).

        ``line_of(i)`` is the demand line of the chunk's ``i``-th slot (lines are only looked up where a
        buffer acts, so they are not materialised).
        """
        order, line = self._order
        tiles = self._ordered_tiles
        size = order.size
        nc = math.ceil(self.shape[1] / self.block_cols) if self.slice_cols_by else 1
        per = max(1, STREAM_CHUNK_ELEMS // max(size, 1))
        for start in range(0, self.folds, per):
            folds = np.arange(start, min(start + per, self.folds))
            fc, fr = np.divmod(folds, self.row_folds)
            pick = {"fr": fr, "fc": fc, "": np.zeros_like(folds)}
            addrs = tiles[pick[self.slice_rows_by] * nc + pick[self.slice_cols_by]].ravel()

            def line_of(i: int, start: int = start) -> int:
                fold, k = divmod(int(i), size)
                return (start + fold) * self.lines_per_fold + int(line[k])

            yield addrs, line_of

    def line_counts(self) -> np.ndarray:
        """Requests per demand line over all folds, for an operand whose only ``-1`` entries are padding.

        Folds differ only in how much of the array they use (full, or the last row or column fold), so
        the count pattern is computed once per distinct ``(rows used, columns used)`` and repeated.
        """
        fc, fr = np.divmod(np.arange(self.folds), self.row_folds)
        pick = {"fr": fr, "fc": fc, "": np.zeros_like(fc)}

        def extent(by: str, width: int, total: int) -> np.ndarray:
            return np.minimum(width, total - pick[by] * width) if by else np.full(self.folds, total)

        rows_used = extent(self.slice_rows_by, self.block_rows, self.shape[0])
        cols_used = extent(self.slice_cols_by, self.block_cols, self.shape[1])
        kinds, which = np.unique(rows_used * (self.block_cols + 1) + cols_used, return_inverse=True)
        order, line = self._order
        patterns = np.zeros((len(kinds), self.lines_per_fold), dtype=np.int64)
        for k, (ru, cu) in enumerate(zip(*np.divmod(kinds.tolist(), self.block_cols + 1))):
            mask = np.zeros((self.block_rows, self.block_cols), dtype=bool)
            mask[:ru, :cu] = True
            if self.flip:
                mask = mask[::-1]
            patterns[k] = np.bincount(line[mask.ravel()[order]], minlength=self.lines_per_fold)
        return patterns[which.ravel()].ravel()

    def first_and_last_lines(self) -> tuple[int, int]:
        """The first and last demand lines holding a request."""
        return self._first_and_last

    @cached_property
    def _first_and_last(self) -> tuple[int, int]:
        if self.padding_only:  # every fold has requests, in the rows and columns its extent says
            ends = []
            for f, last in ((0, False), (self.folds - 1, True)):
                fc, fr = divmod(f, self.row_folds)
                rows, cols = self.block_rows, self.block_cols
                if self.slice_rows_by:
                    rows = min(rows, self.shape[0] - (fr if self.slice_rows_by == "fr" else fc) * rows)
                if self.slice_cols_by:
                    cols = min(cols, self.shape[1] - (fr if self.slice_cols_by == "fr" else fc) * cols)
                low_row = self.block_rows - rows if self.flip else 0  # a flipped block's padding is on top
                if last:
                    line = self.prefix + low_row + rows - 1 + (cols - 1 if self.skew else 0)
                else:
                    line = self.prefix + low_row
                ends.append(f * self.lines_per_fold + line)
            return ends[0], ends[1]
        order, line = self._order  # lines never decrease along the demand order
        found = []
        for folds in (range(self.folds), range(self.folds - 1, -1, -1)):
            for f in folds:  # a fold may hold no request at all (windows wholly past the IFMAP)
                valid = self.block(f).ravel()[order] >= 0
                if valid.any():
                    at = int(valid.argmax()) if not found else valid.size - 1 - int(valid[::-1].argmax())
                    found.append(f * self.lines_per_fold + int(line[at]))
                    break
        return found[0], found[1]


@dataclass(frozen=True)
class LayerDemand:
    """A layer on an ``R x C`` array with one dataflow: its folds, request counts and three demand
    matrices."""

    layer: ScaleSimLayer
    dataflow: str  # "os", "ws" or "is"
    rows: int
    cols: int
    offsets: Offsets = Offsets()

    @cached_property
    def dims(self) -> tuple[int, int, int]:
        """``(Sr, Sc, T)``: the GEMM dimensions on the array's rows, its columns, and streamed."""
        p, w, k = self.layer.pixels, self.layer.window, self.layer.filters
        return {"os": (p, k, w), "ws": (w, k, p), "is": (w, p, k)}[self.dataflow]

    @property
    def row_folds(self) -> int:
        """Folds of ``Sr`` over the rows."""
        return math.ceil(self.dims[0] / self.rows)

    @property
    def col_folds(self) -> int:
        """Folds of ``Sc`` over the columns."""
        return math.ceil(self.dims[1] / self.cols)

    @property
    def lines_per_fold(self) -> int:
        """Demand lines (cycles) of one fold."""
        r, c, t = self.rows, self.cols, self.dims[2]
        return t + r + c - 2 if self.dataflow == "os" else 2 * r + c + t - 2

    @property
    def lines(self) -> int:
        """Demand lines of the layer: the cycles it computes without stalls."""
        return self.row_folds * self.col_folds * self.lines_per_fold

    # -- SRAM requests -----------------------------------------------------------------------------------
    @property
    def ifmap_sram_reads(self) -> int:
        """IFMAP SRAM reads as SCALE-Sim counts them (window elements past the IFMAP included)."""
        p, w = self.layer.pixels, self.layer.window
        return p * w if self.dataflow == "is" else self.col_folds * p * w

    @property
    def filter_sram_reads(self) -> int:
        """Filter SRAM reads."""
        w, k = self.layer.window, self.layer.filters
        return {"os": self.row_folds * w * k, "ws": w * k, "is": self.col_folds * w * k}[self.dataflow]

    @property
    def ofmap_sram_writes(self) -> int:
        """OFMAP SRAM writes: every partial sum of WS and IS; for OS the outputs plus ``R + C`` per fold."""
        p, k = self.layer.pixels, self.layer.filters
        if self.dataflow == "os":
            return p * k + self.row_folds * self.col_folds * (self.rows + self.cols)
        return self.row_folds * p * k

    # -- per-fold utilisation (the COMPUTE_REPORT percentages) --------------------------------------------
    def fold_stats(self) -> tuple[list[float], list[float]]:
        """Per fold: mapping efficiency and compute utilisation, as SCALE-Sim computes them (floats)."""
        sr, sc, t = self.dims
        r, c = self.rows, self.cols
        # the fold "cycles" SCALE-Sim divides by: the height plus the width, less one, of the block it
        # builds the statistics on (OS: the OFMAP's, T - 1 + R lines; WS, IS: the filter's or IFMAP's)
        height = t - 1 + r if self.dataflow == "os" else 2 * r + c + t - 2
        cycles = height + c - 1
        fc, fr = np.divmod(np.arange(self.row_folds * self.col_folds), self.row_folds)  # column folds outer
        used = np.minimum(r, sr - fr * r) * np.minimum(c, sc - fc * c)
        # the same float divisions as SCALE-Sim's, element by element (summed in order by the caller)
        eff = ((r * c) - (r * c - used)) / (r * c) if self.dataflow == "ws" else used / (r * c)
        return eff.tolist(), (used * t / (r * c * cycles)).tolist()

    # -- demand matrices -----------------------------------------------------------------------------------
    @cached_property
    def _whole(self) -> dict[str, np.ndarray]:
        """The operand matrices built whole so far (each at most once per layer)."""
        return {}

    def _entries(self, base: str, rows: slice, cols: slice) -> np.ndarray:
        """Entries ``[rows, cols]`` of the ifmap, filter or ofmap matrix (a whole one is kept once built)."""
        if base in self._whole:
            return self._whole[base][rows, cols]
        layer, o = self.layer, self.offsets
        build, offset, n0, n1 = {
            "ifmap": (ifmap_matrix, o.ifmap, layer.pixels, layer.window),
            "filter": (filter_matrix, o.filter, layer.window, layer.filters),
            "ofmap": (ofmap_matrix, o.ofmap, layer.pixels, layer.filters),
        }[base]
        entries = build(layer, offset, np.arange(n0)[rows], np.arange(n1)[cols])
        if rows == slice(None) and cols == slice(None):
            self._whole[base] = entries
        return entries

    def _source(self, name: str) -> tuple[Callable[[slice, slice], np.ndarray], tuple[int, int]]:
        """An operand matrix by name (``.T``: its transpose) as ``source(rows, cols)``, and its shape."""
        base, _, transposed = name.partition(".")
        layer = self.layer
        shape = {
            "ifmap": (layer.pixels, layer.window),
            "filter": (layer.window, layer.filters),
            "ofmap": (layer.pixels, layer.filters),
        }[base]
        if transposed:
            return (lambda rows, cols: self._entries(base, cols, rows).T), shape[::-1]
        return (lambda rows, cols: self._entries(base, rows, cols)), shape

    def operand(self, name: str) -> FoldedOperand:
        """The demand matrix of ``"ifmap"``, ``"filter"`` or ``"ofmap"``."""
        r, c, t = self.rows, self.cols, self.dims[2]
        rf, cf, lpf = self.row_folds, self.col_folds, self.lines_per_fold
        table = {
            ("os", "ifmap"): ("ifmap.T", t, r, "", "fr", False, 0, True),
            ("os", "filter"): ("filter", t, c, "", "fc", False, 0, True),
            ("os", "ofmap"): ("ofmap", r, c, "fr", "fc", True, t - 1, True),
            ("ws", "ifmap"): ("ifmap", t, r, "", "fr", False, r, True),
            ("ws", "filter"): ("filter", r, c, "fr", "fc", True, 0, False),
            ("ws", "ofmap"): ("ofmap", t, c, "", "fc", False, 2 * r - 1, True),
            ("is", "ifmap"): ("ifmap.T", r, c, "fr", "fc", True, 0, False),
            ("is", "filter"): ("filter.T", t, r, "", "fr", False, r, True),
            ("is", "ofmap"): ("ofmap.T", t, c, "", "fc", False, 2 * r - 1, True),
        }
        src, brows, bcols, by_r, by_c, flip, prefix, skew = table[(self.dataflow, name)]
        padding_only = name != "ifmap" or not self.layer.reads_past_edge
        return FoldedOperand(
            *self._source(src), rf, cf, brows, bcols, by_r, by_c, flip, prefix, lpf, skew, padding_only
        )

    def prefetch_layout(self, name: str) -> tuple[str, int, int, bool]:
        """How a USER-mode read buffer prefetches ``"ifmap"`` or ``"filter"``: the operand matrix (``.T``:
        transposed), the width of its folds, their number, and whether the stacked folds are read by
        anti-diagonals (else row by row)."""
        r, c = self.rows, self.cols
        return {
            ("os", "ifmap"): ("ifmap.T", r, self.row_folds, True),
            ("os", "filter"): ("filter", c, self.col_folds, True),
            ("ws", "ifmap"): ("ifmap", r, self.row_folds, True),
            ("ws", "filter"): ("filter", c, self.col_folds, False),
            ("is", "ifmap"): ("ifmap.T", c, self.col_folds, False),
            ("is", "filter"): ("filter.T", r, self.row_folds, True),
        }[(self.dataflow, name)]

    def prefetch_sequence(self, name: str) -> tuple[np.ndarray, int]:
        """The addresses a USER-mode read buffer prefetches, in order (``-1`` left out), and the slots in
        all."""
        src, width, folds, diagonal = self.prefetch_layout(name)
        mat = self._source(src)[0](slice(None), slice(None))
        padded = _padded(mat, (mat.shape[0], folds * width))
        stacked = padded.reshape(mat.shape[0], folds, width).transpose(1, 0, 2).reshape(-1, width)
        if diagonal:
            seq = stacked.ravel()[skew_order(*stacked.shape)]
        else:
            seq = stacked.ravel()
        return (seq if padded is mat and name == "filter" else seq[seq >= 0]), int(stacked.size)
