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
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from hwsim.schedule.scalesim.layers import ScaleSimLayer

STREAM_CHUNK_ELEMS = 1 << 22  # demand elements generated at a time (bounds memory on large layers)


@dataclass(frozen=True)
class Offsets:
    """Where each operand starts in SCALE-Sim's address space (``IfmapOffset``, ``FilterOffset``, ...)."""

    ifmap: int = 0
    filter: int = 10_000_000
    ofmap: int = 20_000_000


def ifmap_matrix(layer: ScaleSimLayer, offset: int = 0) -> np.ndarray:
    """``pixels x window`` IFMAP addresses, ``-1`` where a window reaches past the IFMAP."""
    pix = np.arange(layer.pixels)[:, None]
    win = np.arange(layer.window)[None, :]
    oy, ox = np.divmod(pix, layer.ofmap_w)
    row0, col0 = oy * layer.stride_h, ox * layer.stride_w
    fy, rest = np.divmod(win, layer.filter_w * layer.channels)
    fx, ch = np.divmod(rest, layer.channels)
    y, x = row0 + fy, col0 + fx
    addr = (y * layer.ifmap_w + x) * layer.channels + ch + offset
    return np.where((y < layer.ifmap_h) & (x < layer.ifmap_w), addr, -1).astype(np.int64)


def filter_matrix(layer: ScaleSimLayer, offset: int = 0) -> np.ndarray:
    """``window x filters`` filter addresses (filter ``j`` holds ``window`` consecutive words)."""
    return (np.arange(layer.filters)[None, :] * layer.window + np.arange(layer.window)[:, None] + offset).astype(
        np.int64)


def ofmap_matrix(layer: ScaleSimLayer, offset: int = 0) -> np.ndarray:
    """``pixels x filters`` OFMAP addresses."""
    return (np.arange(layer.pixels)[:, None] * layer.filters + np.arange(layer.filters)[None, :] + offset).astype(
        np.int64)


@dataclass(frozen=True)
class FoldedOperand:
    """One operand's demand matrix: ``blocks(f)`` gives fold ``f``'s padded block, placed on its lines.

    ``block_rows x block_cols`` is the padded block; ``prefix`` empty lines come before it in each fold and
    ``lines_per_fold`` is the fold's whole height; a skewed block puts element ``(r, c)`` on line
    ``prefix + r + c``, an unskewed one on ``prefix + r``.
    """

    matrix: np.ndarray  # the operand matrix, arranged so that a fold's block is a slice of it
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

    @property
    def folds(self) -> int:
        """Folds of the layer (column folds x row folds)."""
        return self.row_folds * self.col_folds

    def block(self, fold: int) -> np.ndarray:
        """Fold ``fold``'s block, padded with -1 to ``block_rows x block_cols`` (flipped when SCALE-Sim does)."""
        fc, fr = divmod(fold, self.row_folds)
        idx = {"fr": fr, "fc": fc}
        rs = idx[self.slice_rows_by] * self.block_rows if self.slice_rows_by else 0
        cs = idx[self.slice_cols_by] * self.block_cols if self.slice_cols_by else 0
        part = self.matrix[rs:rs + self.block_rows if self.slice_rows_by else None,
                           cs:cs + self.block_cols if self.slice_cols_by else None]
        out = np.full((self.block_rows, self.block_cols), -1, dtype=np.int64)
        out[:part.shape[0], :part.shape[1]] = part
        return out[::-1] if self.flip else out

    @cached_property
    def _order(self) -> tuple[np.ndarray, np.ndarray]:
        """Row-major order of a fold's demand lines: (index into the flattened block, line within the fold)."""
        r, c = np.divmod(np.arange(self.block_rows * self.block_cols), self.block_cols)
        line = self.prefix + r + (c if self.skew else 0)
        order = np.argsort(line * self.block_cols + c, kind="stable")
        return order, line[order]

    def streams(self, first_fold: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Chunks of ``(addresses, lines)``: every request in demand-matrix order, ``-1`` left out."""
        order, line = self._order
        per = max(1, STREAM_CHUNK_ELEMS // max(order.size, 1))
        for start in range(first_fold, self.folds, per):
            folds = range(start, min(start + per, self.folds))
            addrs = np.stack([self.block(f).ravel()[order] for f in folds])
            lines = line[None, :] + (np.asarray(folds) * self.lines_per_fold)[:, None]
            keep = addrs >= 0
            yield addrs[keep], lines[keep]

    def line_counts(self) -> np.ndarray:
        """Requests per demand line (the OFMAP's write pattern), over all folds."""
        counts = np.zeros(self.folds * self.lines_per_fold, dtype=np.int64)
        order, line = self._order
        for f in range(self.folds):
            valid = self.block(f).ravel()[order] >= 0
            np.add.at(counts, line[valid] + f * self.lines_per_fold, 1)
        return counts

    def first_and_last_lines(self) -> tuple[int, int]:
        """The first and last demand lines holding a request."""
        order, line = self._order
        first = line[self.block(0).ravel()[order] >= 0]
        last = line[self.block(self.folds - 1).ravel()[order] >= 0]
        return int(first.min()), int(last.max()) + (self.folds - 1) * self.lines_per_fold


@dataclass(frozen=True)
class LayerDemand:
    """A layer on an ``R x C`` array with one dataflow: its folds, request counts and three demand matrices."""

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
        eff, util = [], []
        for fc in range(self.col_folds):
            for fr in range(self.row_folds):
                used = min(r, sr - fr * r) * min(c, sc - fc * c)
                if self.dataflow == "ws":
                    eff.append(((r * c) - (r * c - used)) / (r * c))
                else:
                    eff.append(used / (r * c))
                util.append(used * t / (r * c * cycles))
        return eff, util

    # -- demand matrices -----------------------------------------------------------------------------------
    @cached_property
    def _matrices(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        o = self.offsets
        return (ifmap_matrix(self.layer, o.ifmap), filter_matrix(self.layer, o.filter),
                ofmap_matrix(self.layer, o.ofmap))

    def operand(self, name: str) -> FoldedOperand:
        """The demand matrix of ``"ifmap"``, ``"filter"`` or ``"ofmap"``."""
        ifm, flt, ofm = self._matrices
        r, c, t = self.rows, self.cols, self.dims[2]
        rf, cf, lpf = self.row_folds, self.col_folds, self.lines_per_fold
        table = {
            ("os", "ifmap"): (ifm.T, t, r, "", "fr", False, 0, True),
            ("os", "filter"): (flt, t, c, "", "fc", False, 0, True),
            ("os", "ofmap"): (ofm, r, c, "fr", "fc", True, t - 1, True),
            ("ws", "ifmap"): (ifm, t, r, "", "fr", False, r, True),
            ("ws", "filter"): (flt, r, c, "fr", "fc", True, 0, False),
            ("ws", "ofmap"): (ofm, t, c, "", "fc", False, 2 * r - 1, True),
            ("is", "ifmap"): (ifm.T, r, c, "fr", "fc", True, 0, False),
            ("is", "filter"): (flt.T, t, r, "", "fr", False, r, True),
            ("is", "ofmap"): (ofm.T, t, c, "", "fc", False, 2 * r - 1, True),
        }
        mat, brows, bcols, by_r, by_c, flip, prefix, skew = table[(self.dataflow, name)]
        return FoldedOperand(mat, rf, cf, brows, bcols, by_r, by_c, flip, prefix, lpf, skew)

    def prefetch_sequence(self, name: str) -> tuple[np.ndarray, int]:
        """The addresses a USER-mode read buffer prefetches, in order (``-1`` left out), and the slots in all."""
        ifm, flt, _ = self._matrices
        r, c = self.rows, self.cols
        spec = {
            ("os", "ifmap"): (ifm.T, r, self.row_folds, True),
            ("os", "filter"): (flt, c, self.col_folds, True),
            ("ws", "ifmap"): (ifm, r, self.row_folds, True),
            ("ws", "filter"): (flt, c, self.col_folds, False),
            ("is", "ifmap"): (ifm.T, c, self.col_folds, False),
            ("is", "filter"): (flt.T, r, self.row_folds, True),
        }
        mat, width, folds, diagonal = spec[(self.dataflow, name)]
        padded = np.full((mat.shape[0], folds * width), -1, dtype=np.int64)
        padded[:, :mat.shape[1]] = mat
        stacked = padded.reshape(mat.shape[0], folds, width).transpose(1, 0, 2).reshape(-1, width)
        if diagonal:
            rows_, cols_ = np.divmod(np.arange(stacked.size), width)
            height = stacked.shape[0]
            order = np.argsort((rows_ + cols_) * height + (height - 1 - rows_), kind="stable")
            seq = stacked.ravel()[order]
        else:
            seq = stacked.ravel()
        return seq[seq >= 0], int(stacked.size)
