"""Encoded size of one weight stream under Arm's MLW codec, exactly as Vela 5.2.0 runs it, in numpy.

The codec (``dependencies/mlw_codec/source/mlw_encode.cpp``; Vela calls it through
``architecture/mlw_encode.cpp``) sees a stream as **sections** of 128 Ki values, each with its own
header. Per section it:

1. builds a **palette** of the (up to) 32 most frequent values, if they cover at least half the stream;
   other values are sent "direct" (sign-magnitude, offset past the palette);
2. decides on **zero runs**: if zero is by far the most common value and mostly comes in runs, zeros are
   sent as run lengths in a second stream beside the non-zero values;
3. picks **Golomb-Rice** parameters by a greedy forward search (divisor 0-5, plain or truncated unary,
   or uncompressed) that starts a new **slice** (23-bit header, 15-bit length) only when that saves
   more than the 40 bits it assumes a switch costs;
4. writes each slice in chunks of 12 unary slots (8 for zero runs with a large divisor) plus remainders.

The stream ends with a 3-bit end marker and is padded to 16 bytes. This module computes those bits
without writing them: the palette and runs from histograms, the search as an event loop (between two
parameter switches every candidate's bit count is a prefix sum; candidates that cannot gain the 42 bits
a switch needs within a codable run, or within a chunk by its histogram, are skipped unvisited), and
each slice's bits from prefix sums of unary slots. :func:`encode_fast` sizes U85's "fast" format
(``mlw_encode_fwd.cpp``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache, reduce

import numpy as np

SYMBOLS = 512  # weight values -256..255, as the codec indexes them (value + 256)
SECTION_VALUES = 128 * 1024  # values Vela hands the codec at a time: a section with its own palette
MAX_SLICE_VALUES = (1 << 15) - 1  # a slice's 15-bit length field
SLICE_HEADER_BITS = 23  # ZDIV 3, SLICELEN 15, WDIV 3, WTRUNC 1, NEWPAL 1
PALETTE_HEADER_BITS = 13  # DIROFS 5, PALSIZE 5, PALBITS 3; then PALSIZE entries of PALBITS each
END_OF_STREAM_BITS = 3
STREAM_ALIGN_BITS = 128
SWITCH_BITS = 40  # what the parameter search charges for starting a new slice
MAX_PALETTE = 32
WEIGHT_UNARY_SLOTS = 12  # unary bits per weight chunk
FAST_HEADER_BITS = 256
FAST_ALIGN_BITS = 256

# The weight search's Golomb-Rice configurations, in the codec's order: divisor bits 0-5 with plain
# unary, 0-5 with unary truncated after two, then uncompressed. Zero runs use divisor 0-3, plain.
_W_DIV = np.array([0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5, 0])
_W_TRUNC = np.array([False] * 6 + [True] * 6 + [False])
UNCOMPRESSED = 12
_N_W = 13
_N_Z = 4
_BLOCK = 4  # values per block when looking for long codable runs
_CHUNK = 2048  # values per chunk when bounding a configuration's gain on the active one
_DENSE = 64  # values after each event checked at once for the next one
_BIG = np.int32(1 << 30)  # an uncodable configuration's count (sections stay below 2**24 bits)


@dataclass(frozen=True)
class CodecResult:
    """One encoded stream.

    ``size_bytes``: its size, padded to 16 bytes. ``used``: which of the 512 values (index value + 256)
    occur. ``zero_count``: zeros sent as zero runs (0 when no section used runs).
    """

    size_bytes: int
    used: np.ndarray
    zero_count: int


@dataclass(frozen=True)
class _Palette:
    size: int  # entries sent (0: no palette)
    bits: int  # bits per entry; without a palette, bits of the largest direct value
    use_zero_runs: bool
    uncompressed_bits: int  # 0 when the uncompressed mode is not allowed
    inverse: np.ndarray  # value + 256 -> symbol the search and slices see


def encode(values: np.ndarray) -> CodecResult:
    """Size of ``values`` (zero-point-corrected weights in stream order, -255..255) as Vela's MLW stream."""
    v = np.asarray(values, dtype=np.int16)
    return encode_repeating(v[:0], 0, v)


def encode_repeating(base: np.ndarray, repeats: int, tail: np.ndarray) -> CodecResult:
    """:func:`encode` of ``base`` repeated ``repeats`` times then ``tail``, without building that stream.

    Sections are coded independently, so a section that starts at the same offset within ``base`` (and
    lies inside the repeats) is the same section, sized once: the stream of a weight tensor whose output
    channels repeat costs the sections of one period, not of every channel.
    """
    base, tail = (np.asarray(x, dtype=np.int16) for x in (base, tail))
    for part in (base, tail):
        if part.size and (part.min() < -255 or part.max() > 255):
            raise ValueError(
                f"weights must lie in [-255, 255] after the zero point (got {part.min()}..{part.max()})"
            )
    body = base.size * repeats
    total_values = body + tail.size
    bits = zeros = 0
    used = np.zeros(SYMBOLS, dtype=bool)
    seen: dict[int, tuple[int, int, np.ndarray]] = {}
    for start in range(0, total_values, SECTION_VALUES):
        end = min(start + SECTION_VALUES, total_values)
        offset = start % base.size if end <= body else -1
        if offset < 0 or offset not in seen:
            if end <= body:
                section = _wrapped(base, start, end - start)
            else:
                head = _wrapped(base, start, body - start) if start < body else base[:0]
                section = np.concatenate([head, tail[max(start - body, 0) : end - body]])
            freq = np.bincount(section + 256, minlength=SYMBOLS)
            section_bits, section_zeros = _section_bits(section, freq)
            if offset < 0:
                offset = -1 - start  # not reused
            seen[offset] = (section_bits, section_zeros, freq > 0)
        section_bits, section_zeros, section_used = seen[offset]
        used |= section_used
        bits += section_bits
        zeros += section_zeros
    total = -(-(bits + END_OF_STREAM_BITS) // STREAM_ALIGN_BITS) * STREAM_ALIGN_BITS
    return CodecResult(total // 8, used, zeros)


def _wrapped(base: np.ndarray, start: int, n: int) -> np.ndarray:
    """``n`` values of ``base`` repeated, from position ``start`` of the repeats."""
    start %= base.size
    if start + n <= base.size:
        return base[start : start + n]
    return np.tile(base, -(-(start + n) // base.size))[start : start + n]


def encode_fast(values: np.ndarray, no_palette: bool = False, size: int | None = None) -> int:
    """Size in bytes of U85's fast-weight format: a 256-bit header, then 2, 4 or 8 bits per value.

    Values index a 4-entry or 16-entry table when they have that few distinct values, else are sent raw
    (``no_palette`` forces raw, as Vela does for fast 2:4 sparse weights); padded to 32 bytes. ``size``:
    the stream's length when ``values`` holds only its distinct parts (a repeating stream).
    """
    v = np.asarray(values, dtype=np.int32)
    distinct = np.count_nonzero(np.bincount(v - v.min())) if v.size else 0  # values span < 1024: no sort
    raw = no_palette or distinct > 16
    if distinct > 16 and v.size and v.max() - v.min() >= 256:
        raise ValueError("the fast weight format cannot hold a value range of 256 or more")
    bits_per_value = 8 if raw else 2 if distinct <= 4 else 4
    total = FAST_HEADER_BITS + (v.size if size is None else size) * bits_per_value
    return -(-total // FAST_ALIGN_BITS) * FAST_ALIGN_BITS // 8


def _section_bits(v: np.ndarray, freq: np.ndarray) -> tuple[int, int]:
    """Bits of one section and the zeros it sends as runs."""
    pal = _palette(v, freq)
    if pal.use_zero_runs:
        nonzero = np.flatnonzero(v)
        if nonzero.size == 0:  # an all-zero section still codes its first zero as a weight
            weights = pal.inverse[256:257]
            runs = np.array([0, v.size - 1], dtype=np.int32)
        else:
            weights = pal.inverse[v[nonzero] + 256]
            runs = np.diff(nonzero, prepend=-1, append=v.size).astype(np.int32) - 1
        zero_runs: np.ndarray | None = runs
    else:
        weights = pal.inverse[v + 256]
        zero_runs = None
    w_slices = _search_weights(weights, pal.uncompressed_bits)
    z_cfg = _search_zero_runs(zero_runs) if zero_runs is not None else 0
    bits = _emit_bits(weights, zero_runs, w_slices, z_cfg, pal)
    return bits, int(zero_runs.sum()) if zero_runs is not None else 0


def _palette(v: np.ndarray, freq: np.ndarray) -> _Palette:
    """The section's palette, zero-run decision and symbol map (``update_palette``, ``create_palette``)."""
    total_zeros = int(freq[256])
    is_zero = np.zeros(v.size + 2, dtype=bool)
    is_zero[1:-1] = v == 0
    edges = np.flatnonzero(is_zero[1:] != is_zero[:-1])
    run_lengths = edges[1::2] - edges[0::2]
    zeros_in_runs = int(run_lengths[run_lengths >= 2].sum())
    common = int(np.delete(freq, 256).max())
    use_zero_runs = zeros_in_runs >= total_zeros // 2 and total_zeros > 5 * common

    # Palette values are sign-magnitude: 2|x| + (x < 0); -256 is never counted.
    x = np.arange(-255, 256)
    palval = 2 * np.abs(x) + (x < 0)
    counts = np.zeros(SYMBOLS, dtype=np.int64)
    counts[palval] = freq[1:]
    if use_zero_runs:
        counts[0] = 0
    all_count = int(counts.sum())
    present = np.flatnonzero(counts)
    all_max = int(present.max()) if present.size else 0
    first = np.flatnonzero(counts[:31])
    direct_offset = int(first[0]) if first.size else 31
    if all_count == 0:
        direct_offset = 0
    order = np.lexsort((-np.arange(SYMBOLS), -counts))[: present.size]  # by count, then larger value first
    only_palette = 0 < present.size <= MAX_PALETTE
    max_size = MAX_PALETTE if only_palette else min(MAX_PALETTE, 511 - all_max)
    if max_size == 1:
        max_size = 0  # a one-entry palette is not supported
    lut = [int(p) for p in order[:max_size]]
    lut_count = int(counts[lut].sum()) if lut else 0
    max_lut = max(lut, default=0)
    if len(lut) == 1:
        lut.append(0)  # one value only: a second, never indexed, entry
    if lut_count >= all_count // 2:
        size, bits_of = len(lut), max_lut
    else:
        size, bits_of = 0, all_max
    bits = max(2, bits_of.bit_length())

    base = size - direct_offset  # direct values follow the palette indices
    k = np.arange(256)
    inverse = np.zeros(SYMBOLS, dtype=np.int16)
    inverse[256 + k] = base + 2 * k
    inverse[256 - k] = base + 2 * k + 1  # overwrites value 0 with base + 1, as the codec does
    for index, p in enumerate(lut[:size]):
        inverse[256 + (-(p >> 1) if p & 1 else p >> 1)] = index
    if only_palette:
        uncompressed_bits = max(0, (size - 1).bit_length())
    elif size == 0:
        uncompressed_bits = bits
    else:
        uncompressed_bits = 0
    return _Palette(size, bits, use_zero_runs, uncompressed_bits, inverse)


@lru_cache(maxsize=16)
def _weight_tables(uncompressed_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Bits to code each symbol 0..511 under each weight configuration, and whether it can be coded."""
    s = np.arange(SYMBOLS)
    q = s[None, :] >> _W_DIV[:, None]
    cost = np.where(_W_TRUNC[:, None], np.minimum(q + 1, 2), q + 1) + _W_DIV[:, None]
    codable = np.where(_W_TRUNC[:, None], q <= 2, q <= 31)
    cost[UNCOMPRESSED] = uncompressed_bits if uncompressed_bits > 0 else 100
    codable[UNCOMPRESSED] = True
    cost = cost.astype(np.int32)
    cost.flags.writeable = codable.flags.writeable = False
    return cost, codable


def _search_weights(w: np.ndarray, uncompressed_bits: int) -> list[tuple[int, int]]:
    """The weight slices ``(config, end)`` of ``search_grc_params``, found event by event.

    The codec keeps a running bit count per configuration: a configuration that could code every value
    so far adds its cost, one that cannot code a value drops out and, when it can again, restarts from
    the active configuration's count. An *event* is a step where the active configuration cannot code
    the value, or another one is more than 40 bits below it; only there does the codec switch (and
    maybe start a slice). Between events everything is prefix sums, so the events are searched for
    with numpy and then stepped exactly as the codec steps them.

    To trigger a switch, a configuration must gain over 41 bits on the active one within one codable
    run, so a run shorter than ``42 / (largest per-value gain)`` can be skipped, and a configuration
    that codes every value is bounded chunk by chunk from histograms: on real weights only a few
    stretches are followed value by value.
    """
    n = w.size
    cost_table, code_table = _weight_tables(uncompressed_bits)
    search = _WeightSearch(w, cost_table, code_table)
    counts = np.where(code_table[:, w[0]], cost_table[:, w[0]], _BIG).astype(np.int64)
    active = int(np.argmin(counts))
    slices: list[tuple[int, int]] = []
    start = 1
    while start < n:
        a_count = int(counts[active])  # the active count before ``start``
        event = search.dense_event(active, start, a_count, counts)
        if event is None:
            i = search.next_event(active, start, a_count, counts)
            if i >= n:
                break
            event = search.counts_at(active, start, a_count, counts, i)
        i, counts, best, must, reset_at, before = event
        if must:  # the codec adds the switch cost to a configuration that cannot code the value
            active_count, active_reset = before + SWITCH_BITS, i + 1
        else:
            active_count, active_reset = int(counts[active]), int(reset_at[active])
        if not (counts[best] < active_count and reset_at[best] <= active_reset):
            slices.append((active, i))  # otherwise the codec relabels the open slice ("range elision")
        active = best
        start = i + 1
    if not slices or slices[-1][0] != active:
        slices.append((active, n))
    else:
        slices[-1] = (active, n)
    return slices


# an event: step, counts after it, best configuration, active one dropped out, run starts, active count before
_Event = tuple[int, np.ndarray, int, bool, np.ndarray, int]


class _WeightSearch:
    """The per-section facts :func:`_search_weights` looks up: costs, codable runs, the active's prefix."""

    def __init__(self, w: np.ndarray, cost_table: np.ndarray, code_table: np.ndarray) -> None:
        self.w, self.cost, self.code = w, cost_table, code_table
        self.hist = np.bincount(w, minlength=SYMBOLS)
        self.present = self.hist > 0
        self.free = code_table[:, self.present].all(axis=1)  # codes every value here: never restarts
        # codability is monotone in the symbol: the first symbol a configuration cannot code
        self.limit = np.where(code_table.all(axis=1), SYMBOLS, np.argmin(code_table, axis=1))
        self._runs: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._block_runs: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        # largest symbol of each block of _BLOCK values (the tail padded with a symbol nothing codes)
        padded = np.full(-(-w.size // _BLOCK) * _BLOCK + _BLOCK, SYMBOLS, dtype=np.int16)
        padded[: w.size] = w
        self._padded = padded
        # elementwise maxima of strided views: far faster than a max over an axis of length _BLOCK
        self._block_max = reduce(np.maximum, (padded[k:-_BLOCK:_BLOCK] for k in range(_BLOCK)))
        self._prefix: dict[int, np.ndarray] = {}
        self._chunk_hist: np.ndarray | None = None
        self._chunk_gain: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
        self._long_runs: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}

    def runs(self, j: int) -> tuple[np.ndarray, np.ndarray]:
        """Starts and ends of configuration ``j``'s codable runs (maximal, non-empty), in order."""
        if j not in self._runs:
            n, limit = self.w.size, int(self.limit[j])
            if int(self.hist[limit:].sum()) * 2 <= n:  # few values it cannot code: runs lie between them
                unc = np.flatnonzero(self.w >= limit)
                starts = np.concatenate(([0], unc + 1))
                ends = np.concatenate((unc, [n]))
                keep = ends > starts
                runs = (starts[keep], ends[keep])
            else:  # few it can code: runs are stretches of consecutive ones
                cod = np.flatnonzero(self.w < limit)
                breaks = np.flatnonzero(np.diff(cod) != 1)
                runs = (
                    cod[np.concatenate(([0], breaks + 1))] if cod.size else cod,
                    cod[np.concatenate((breaks, [cod.size - 1]))] + 1 if cod.size else cod,
                )
            self._runs[j] = runs
        return self._runs[j]

    def block_runs(self, j: int) -> tuple[np.ndarray, np.ndarray]:
        """Starts and ends of ``j``'s codable runs that hold a whole block of ``_BLOCK`` values (every
        run of at least ``2 * _BLOCK - 1`` values and some shorter ones), found from block maxima."""
        if j not in self._block_runs:
            limit = int(self.limit[j])
            ok = np.zeros(self._block_max.size + 2, dtype=bool)
            ok[1:-1] = self._block_max < limit
            bounds = np.flatnonzero(ok[1:] != ok[:-1])
            starts, ends = bounds[0::2] * _BLOCK, bounds[1::2] * _BLOCK
            w = self._padded
            for _ in range(_BLOCK - 1):  # grow into the partial blocks on either side
                left = (starts > 0) & (w[starts - 1] < limit)
                starts = starts - left
                right = w[ends] < limit
                ends = ends + right
            self._block_runs[j] = (starts, np.minimum(ends, self.w.size))
        return self._block_runs[j]

    def run_start(self, j: int, i: int) -> int:
        """Where ``j``'s codable run through ``i`` began (``i + 1`` if it cannot code value ``i``)."""
        if self.free[j]:
            return 0
        starts, ends = self.runs(j)
        k = int(np.searchsorted(starts, i, side="right")) - 1
        return int(starts[k]) if k >= 0 and i < ends[k] else i + 1

    def next_uncodable(self, j: int, i: int) -> int:
        """First position from ``i`` whose value ``j`` cannot code (the section length if none)."""
        if self.free[j]:
            return self.w.size
        starts, ends = self.runs(j)
        k = int(np.searchsorted(starts, i, side="right")) - 1
        return int(ends[k]) if k >= 0 and i < ends[k] else i

    def costs(self, j: int, lo: int, hi: int) -> np.ndarray:
        """Bits configuration ``j`` spends on each of values ``lo..hi-1`` (as its cost table has them)."""
        d = int(_W_DIV[j])
        if j == UNCOMPRESSED:
            return np.full(hi - lo, self.cost[j][0], dtype=np.int16)
        if _W_TRUNC[j]:
            return (self.w[lo:hi] >= 1 << d).astype(np.int16) + (1 + d)
        return (self.w[lo:hi] >> d) + (1 + d)

    def prefix(self, j: int) -> np.ndarray:
        """Bits of configuration ``j`` over the first k values, for every k."""
        if j not in self._prefix:
            n = self.w.size
            if j == UNCOMPRESSED:
                p = np.arange(n + 1, dtype=np.int32) * int(self.cost[j][0])
            else:
                p = np.zeros(n + 1, dtype=np.int32)
                np.cumsum(self.costs(j, 0, n), dtype=np.int32, out=p[1:])
            self._prefix[j] = p
        return self._prefix[j]

    def active_before(self, a: int, start: int, a_count: int, i: int) -> int:
        """The active count after step ``i - 1`` (``a`` active since ``start``, at ``a_count`` before it)."""
        p = self.prefix(a)
        return a_count + int(p[i] - p[start])

    def long_runs(self, a: int, j: int) -> tuple[np.ndarray, np.ndarray]:
        """Starts and ends of ``j``'s codable runs long enough to gain 42 bits on ``a``."""
        key = (a, j)
        if key not in self._long_runs:
            both = self.present & self.code[a] & self.code[j]
            gain = int((self.cost[a][both] - self.cost[j][both]).max()) if both.any() else 0
            if gain <= 0:
                runs = (np.zeros(0, np.int64), np.zeros(0, np.int64))
            elif self.free[j]:
                runs = (np.zeros(1, np.int64), np.full(1, self.w.size, np.int64))
            else:
                min_length = -(-(SWITCH_BITS + 2) // gain) + 1
                starts, ends = self.runs(j) if min_length < 2 * _BLOCK - 1 else self.block_runs(j)
                long = ends - starts >= min_length
                runs = (starts[long], ends[long])
            self._long_runs[key] = runs
        return self._long_runs[key]

    def next_event(self, a: int, start: int, a_count: int, counts: np.ndarray) -> int:
        """First step from ``start`` at which the codec leaves configuration ``a`` (``n`` if none)."""
        must = self.next_uncodable(a, start)
        pa = self.prefix(a)
        limit = a_count - int(pa[start]) - SWITCH_BITS  # count_j(i) must be below limit + pa[i]
        best = must
        for j in range(_N_W):
            if j == a:
                continue
            starts, ends = self.long_runs(a, j)
            if starts.size == 0:
                continue
            if self.free[j]:  # one run, the whole section: bound it chunk by chunk first
                hit = self._first_hit_free(a, j, start, best, int(counts[j]) - a_count + SWITCH_BITS)
                if hit >= 0:
                    best = hit
                continue
            k = int(np.searchsorted(ends, start, side="right"))
            while k < starts.size and starts[k] < best:
                x, y = max(int(starts[k]), start), min(int(ends[k]), best)
                if x < y:
                    hit = self._first_hit(a, j, start, a_count, counts, x, y, limit, pa)
                    if hit >= 0:
                        best = hit
                        break
                k += 1
        return best

    def _first_hit(
        self,
        a: int,
        j: int,
        start: int,
        a_count: int,
        counts: np.ndarray,
        x: int,
        y: int,
        limit: int,
        pa: np.ndarray,
    ) -> int:
        """First ``i`` in ``[x, y)``, one codable run of ``j``, where ``j`` is over 40 bits below the active
        count (``-1`` if none)."""
        if x == start:
            base = int(counts[j]) if self.run_start(j, start - 1) < start else a_count
        else:
            base = self.active_before(a, start, a_count, x)
        step = 4096
        while x < y:
            z = min(y, x + step)
            count = base + np.cumsum(self.costs(j, x, z), dtype=np.int32)
            below = count < limit + pa[x:z]
            if below.any():
                return x + int(np.argmax(below))
            base = int(count[-1])
            x, step = z, step * 4
        return -1

    def _first_hit_free(self, a: int, j: int, x: int, y: int, margin: int) -> int:
        """First ``i`` in ``[x, y)`` where free configuration ``j`` is over 40 bits below the active ``a``.

        With ``g`` = cost under ``a`` minus cost under ``j`` and ``H(i)`` the sum of ``g`` over ``x..i-1``,
        that is ``H(i) - cost_j(i) > margin``. Within a chunk ``H`` rises at most by the chunk's positive
        ``g``, which the chunk's histogram gives without visiting its values; only chunks that could
        reach the margin are scanned.
        """
        if (a, j) not in self._chunk_gain:
            gain = self.cost[a].astype(np.int64) - self.cost[j]
            hist = self.chunk_hist()
            self._chunk_gain[a, j] = (hist @ gain, hist @ np.maximum(gain, 0))
        chunk_gain, chunk_rise = self._chunk_gain[a, j]
        first = -(-x // _CHUNK)
        head_end = min(y, first * _CHUNK)
        h = 0
        if x < head_end:
            hit, h = self._scan(a, j, x, head_end, h, margin)
            if hit >= 0:
                return hit
        last = -(-y // _CHUNK)
        if first >= last:
            return -1
        at_start = h + np.concatenate(([0], np.cumsum(chunk_gain[first : last - 1])))
        for c in np.flatnonzero(at_start + chunk_rise[first:last] > margin):
            lo = (first + int(c)) * _CHUNK
            hit, _ = self._scan(a, j, lo, min(y, lo + _CHUNK), int(at_start[c]), margin)
            if hit >= 0:
                return hit
        return -1

    def _scan(self, a: int, j: int, lo: int, hi: int, h: int, margin: int) -> tuple[int, int]:
        """Exact check of ``[lo, hi)`` for :meth:`_first_hit_free`, ``h`` being ``H(lo)``: the hit (or -1)
        and ``H(hi)``."""
        cost_j = self.costs(j, lo, hi)
        g = self.costs(a, lo, hi).astype(np.int32) - cost_j
        running = h + np.cumsum(g, dtype=np.int32)
        below = running - g - cost_j > margin
        return (lo + int(np.argmax(below)) if below.any() else -1), int(running[-1])

    def chunk_hist(self) -> np.ndarray:
        """Histogram of the symbols in each chunk of ``_CHUNK`` values (chunk x symbol)."""
        if self._chunk_hist is None:
            n = self.w.size
            chunks = -(-n // _CHUNK)
            index = (np.arange(n, dtype=np.int32) // _CHUNK) * SYMBOLS + self.w
            self._chunk_hist = np.bincount(index, minlength=chunks * SYMBOLS).reshape(chunks, SYMBOLS)
        return self._chunk_hist

    def dense_event(self, a: int, start: int, a_count: int, counts: np.ndarray) -> _Event | None:
        """The first event within ``_DENSE`` values of ``start``, from every configuration's count at every
        step there (``None`` if there is none): cheap where events come thick and fast."""
        end = min(self.w.size, start + _DENSE)
        w = self.w[start:end]
        cost = self.cost[:, w]
        uncodable = ~self.code[:, w]
        running = np.cumsum(cost, axis=1, dtype=np.int32)  # each one's bits over start..start+k
        local = np.arange(end - start)
        last = np.maximum.accumulate(np.where(uncodable, local, -1), axis=1)  # last drop-out, -1 if none
        codable_before = self.code[:, self.w[start - 1]]
        base = np.where(codable_before, counts, a_count)
        active_after = a_count + running[a].astype(np.int64)  # the active count after each step
        dropped = np.maximum(last, 0)
        restarted = active_after[dropped] + running - np.take_along_axis(running, dropped, axis=1)
        count = np.where(last < 0, base[:, None] + running, restarted)
        count[uncodable] = _BIG
        before = np.concatenate(([a_count], active_after[:-1]))
        hits = uncodable[a] | (count.min(axis=0) + SWITCH_BITS < before)
        if not hits.any():
            return None
        k = int(np.argmax(hits))
        column = count[:, k]
        reset_at = np.where(last[:, k] >= 0, start + last[:, k] + 1, start)
        reset_at[uncodable[:, k]] = start + k + 1
        for j in np.flatnonzero((last[:, k] < 0) & codable_before):
            reset_at[j] = self.run_start(int(j), start - 1)
        return start + k, column, int(np.argmin(column)), bool(uncodable[a, k]), reset_at, int(before[k])

    def counts_at(self, a: int, start: int, a_count: int, counts: np.ndarray, i: int) -> _Event:
        """The event at step ``i``: every configuration's count after it (``_BIG`` where it cannot code
        value ``i``), the best one, whether the active one cannot code it, each one's run start
        (``reset_pos``) and the active count before it."""
        v = int(self.w[i])
        hist = np.bincount(self.w[start : i + 1], minlength=SYMBOLS)
        out = np.full(_N_W, _BIG, dtype=np.int64)
        reset_at = np.zeros(_N_W, dtype=np.int64)
        for j in range(_N_W):
            if not self.code[j][v]:
                reset_at[j] = i + 1
                continue
            r = self.run_start(j, i)
            reset_at[j] = r
            if r < start:
                out[j] = int(counts[j]) + int(hist @ self.cost[j])
            else:
                out[j] = self.active_before(a, start, a_count, r) + int(self.cost[j][self.w[r : i + 1]].sum())
        best = int(np.argmin(out))
        return i, out, best, not self.code[a][v], reset_at, self.active_before(a, start, a_count, i)


def _search_zero_runs(runs: np.ndarray) -> int:
    """The zero-run configuration the search ends on.

    Every zero-run configuration can code every run, so each keeps a plain running sum and every switch
    is elided: the search yields one slice, with the configuration that was active last.
    """
    div = np.arange(_N_Z)[:, None]
    prefix = np.cumsum((runs[None, :] >> div) + 1 + div, axis=1, dtype=np.int32)  # [:, i]: bits after run i
    best_at = prefix.min(axis=0)
    active = int(np.argmin(prefix[:, 0]))
    i = 1
    while i < runs.size:
        ahead = best_at[i:] + SWITCH_BITS < prefix[active, i - 1 : -1]
        if not ahead.any():
            break
        i += int(np.argmax(ahead))
        active = int(np.argmin(prefix[:, i]))
        i += 1
    return active


def _emit_bits(
    weights: np.ndarray, runs: np.ndarray | None, w_slices: list[tuple[int, int]], z_cfg: int, pal: _Palette
) -> int:
    """Bits of the section's slices as ``ml_encode_section`` writes them (15-bit length cap included)."""
    n = weights.size
    w_prefix: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    if runs is not None:
        z_div = z_cfg
        z_slots = np.concatenate(([0], np.cumsum((runs >> z_div) + 1, dtype=np.int32)))
        z_unary = 12 if z_div < 3 else 8
    bits = 0
    pos = iw = 0
    new_palette = True
    while pos < n or new_palette:
        w_len = min(w_slices[iw][1] - pos, MAX_SLICE_VALUES) if iw < len(w_slices) else 0
        # the zero-run search yields one slice of all n + 1 runs, so runs never end a slice early
        z_len = min(n + 1 - pos, MAX_SLICE_VALUES) if runs is not None else 0
        bits += SLICE_HEADER_BITS
        if new_palette:
            bits += PALETTE_HEADER_BITS + pal.size * pal.bits
        if w_len > 0:
            cfg = w_slices[iw][0]
            if cfg == UNCOMPRESSED:
                bits += w_len * pal.uncompressed_bits
            else:
                if cfg not in w_prefix:
                    w_prefix[cfg] = _unary_prefix(weights, cfg)
                slots, unary1 = w_prefix[cfg]
                n_slots = int(slots[pos + w_len] - slots[pos])
                bits += (
                    -(-n_slots // WEIGHT_UNARY_SLOTS) * WEIGHT_UNARY_SLOTS
                    + int(unary1[pos + w_len] - unary1[pos])
                    + w_len * int(_W_DIV[cfg])
                )
        if runs is not None and z_len:
            z_first = pos + (0 if new_palette else 1)
            z_cnt = w_len + (1 if new_palette else 0)
            n_slots = int(z_slots[z_first + z_cnt] - z_slots[z_first])
            bits += -(-n_slots // z_unary) * z_unary + z_cnt * z_div
        new_palette = False
        if z_len <= 0 < w_len:
            pos += w_len
        elif w_len <= 0 < z_len:
            pos += z_len
        else:
            pos += min(z_len, w_len)
        if iw < len(w_slices) and w_slices[iw][1] <= pos:
            iw += 1
    return bits


def _unary_prefix(weights: np.ndarray, cfg: int) -> tuple[np.ndarray, np.ndarray]:
    """Prefix sums of unary slots and second-level unary bits of every weight under a configuration.

    A plain unary quotient q takes ``q // 2 + 1`` slots of the 12-bit first-level word and
    ``(q + 1) // 2`` second-level bits; truncated unary (q <= 2) takes one slot and one bit if q > 0.
    """
    q = weights >> int(_W_DIV[cfg])
    if _W_TRUNC[cfg]:
        slots, unary1 = np.ones_like(q), (q > 0).astype(np.int16)
    else:
        slots, unary1 = q // 2 + 1, (q + 1) // 2
    return (
        np.concatenate(([0], np.cumsum(slots, dtype=np.int32))),
        np.concatenate(([0], np.cumsum(unary1, dtype=np.int32))),
    )
