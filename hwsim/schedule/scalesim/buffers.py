"""SCALE-Sim 3.0.0's double-buffered SRAMs: two read buffers (ifmap, filter) and one write buffer (ofmap).

Each SRAM is split into an active half the array works from and a half being filled or drained
(``active_buf_frac = 0.5``, one-byte words; ``memory/*.py``). Three mechanisms, reproduced rule for rule:

**Read buffer, CALC bandwidth mode** (:class:`EstimatedReadBuffer`, ``read_buffer_estimate_bw.py``). Requests
never wait. The buffer groups the distinct addresses it is asked for into sets of ``size // 100`` words; an
address counts as a DRAM read unless it is already in the sets of the current half-buffer epoch, and an epoch
ends after 50 sets (half the SRAM) of new words, after which everything is forgotten. So DRAM reads equal the
distinct words per epoch, summed. Each epoch is fetched over the cycles the previous one was used, the first
one (at 10 words per cycle) just before the first request, which is where the DRAM start and stop cycles of
the report come from.

**Read buffer, USER bandwidth mode** (:class:`PrefetchReadBuffer`, ``read_buffer.py``). The operand's prefetch
order (see :mod:`.demand`) is cut into sets of ``ceil(size / 100)`` words; the active window holds the first
``ceil(active / set)`` sets. A request outside the window shifts it (cyclically) by the prefetch half and
fetches ``ceil(prefetch_bytes / bandwidth)`` lines of ``bandwidth`` words from DRAM, counted in full, each
fetch ending one cycle after its last line. The first request also fetches the active half. The request
then waits ``2 x`` the cycles it is behind the fetch when positive, and moves *earlier* by the amount when
not (SCALE-Sim adds the difference to its offset once, and again when it is positive).

**Write buffer** (:class:`WriteBuffer`, ``write_buffer.py``). OFMAP words fill lines of ``bandwidth`` words.
When more than the drain half is held, the lines written so far (the partial one closed) are drained, up to
``ceil(drain_half / bandwidth)`` lines, one line per cycle; a drained batch counts ``bandwidth`` words per
line except the unused tail of its last line, so a partial line inside a batch counts as full (the DRAM
padding of the reports), and those words are freed too. A word arriving while a drain runs with the buffer
full waits for the drain to end. The rest is drained after the last demand line.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from hwsim.schedule.scalesim.prefetch import RankedBlocks

ACTIVE_FRACTION_PERCENT = 50  # SCALE-Sim's active_buf_frac = 0.5, as a share of its 100 sets
CALC_FIRST_FETCH_WORDS_PER_CYCLE = 10  # SCALE-Sim's default read bandwidth in CALC mode
READ_LATENCY_CYCLES = 1  # SCALE-Sim's read port latency (no Ramulator trace)


def _halves(size_words: int) -> tuple[int, int]:
    """(active words, other-half words) of a double-buffered SRAM: ``ceil(size / 2)`` and the rest."""
    active = math.ceil(size_words * ACTIVE_FRACTION_PERCENT / 100)
    return active, size_words - active


@dataclass
class EstimatedReadBuffer:
    """A CALC-mode read buffer: DRAM reads are the distinct words per half-buffer epoch (see module doc)."""

    size_words: int
    first_line: int  # the first demand line with a request: the first epoch is fetched just before it
    reads: int = 0
    boundary_lines: list[int] = field(default_factory=list)  # demand line at which each epoch ended
    words_per_set: int = field(init=False)
    epoch_words: int = field(init=False)

    def __post_init__(self) -> None:
        self.words_per_set = self.size_words // 100
        self.epoch_words = ACTIVE_FRACTION_PERCENT * self.words_per_set

    def consume(self, chunks, address_range: tuple[int, int]) -> None:
        """Run every request (chunks of ``(addresses, line_of)`` in demand order) through the epochs.

        Vectorised over windows of requests: a request is a new word of the epoch when it is the first of
        its address in the window and the address is not yet in the epoch; the epoch ends at the request
        that makes ``epoch_words`` new words, and the scan restarts after it with an empty epoch.
        """
        base, top = address_range
        sink = top - base + 1  # where empty slots (-1) point: never a new word
        seen = np.zeros(sink + 1, dtype=bool)
        seen[sink] = True
        first_at = np.zeros(sink + 1, dtype=np.int64)
        in_epoch = 0
        window = min(max(4 * self.epoch_words, 4096), 1 << 20)
        positions = np.arange(window)
        for addrs, line_of in chunks:
            idx_all = addrs - base
            idx_all[idx_all < 0] = sink
            pos = 0
            while pos < idx_all.size:
                idx = idx_all[pos : pos + window]
                k = positions[: idx.size]
                first_at[idx[::-1]] = k[::-1]  # the last assignment wins: each address's first position
                fresh = (first_at[idx] == k) & ~seen[idx]
                count = np.cumsum(fresh)
                need = self.epoch_words - in_epoch
                if count[-1] < need:
                    seen[idx[fresh]] = True
                    in_epoch += int(count[-1])
                    self.reads += int(count[-1])
                    pos += idx.size
                    continue
                cut = int(np.searchsorted(count, need))  # the request that fills the epoch
                self.reads += need
                self.boundary_lines.append(line_of(pos + cut))
                seen[:] = False
                seen[sink] = True
                in_epoch = 0
                pos += cut + 1

    def consume_blocks(
        self, block_ids: np.ndarray, blocks: list[np.ndarray], slots: list[np.ndarray], line_of
    ) -> None:
        """The same epochs, block by block, for an operand whose words are all distinct.

        The demand is then a sequence of blocks with disjoint words, each always requested in the same
        order, so an occurrence of a block brings new words only when the block is not yet in the epoch,
        or when it is the block the epoch started inside (its words before that point are new). The
        work is one step per fold instead of one per request. ``blocks[b]`` are block ``b``'s words (only
        their number matters here), ``slots[b]`` their slots within a fold, ``line_of(fold, slot)`` the
        demand line of one.
        """
        in_epoch = 0
        seen: set[int] = set()
        start_block, start_word, prefix_done = -1, 0, True
        for fold, b in enumerate(block_ids.tolist()):
            size = slots[b].size
            if b not in seen:
                seen.add(b)
                lo, hi = 0, size
            elif b == start_block and not prefix_done:
                lo, hi, prefix_done = 0, start_word, True
            else:
                continue
            while hi - lo >= self.epoch_words - in_epoch:
                cut = lo + self.epoch_words - in_epoch - 1  # the word that fills the epoch
                self.reads += self.epoch_words - in_epoch
                self.boundary_lines.append(line_of(fold, int(slots[b][cut])))
                in_epoch, seen = 0, {b}
                start_block, start_word, prefix_done = b, cut + 1, False
                lo, hi = cut + 1, size
            in_epoch += hi - lo
            self.reads += hi - lo

    def dram_cycles(self, cycle_of_line) -> tuple[int, int]:
        """(first, last) cycle of the DRAM trace; ``cycle_of_line(i)`` is line ``i``'s cycle with stalls."""
        if not self.boundary_lines:
            sets = math.ceil(self.reads / self.words_per_set)
            return -math.ceil(sets * self.words_per_set / CALC_FIRST_FETCH_WORDS_PER_CYCLE), -1
        # the first epoch is fetched so that its last word arrives the cycle before the first request
        first_fetch = math.ceil(self.epoch_words / CALC_FIRST_FETCH_WORDS_PER_CYCLE)
        start = cycle_of_line(self.first_line) - first_fetch
        return start, cycle_of_line(self.boundary_lines[-1]) + READ_LATENCY_CYCLES


@dataclass
class PrefetchReadBuffer:
    """A USER-mode read buffer: a window of sets over the prefetch order, shifted on a miss (see module
    doc)."""

    size_words: int
    bandwidth_words: int
    misses: list[int] = field(default_factory=list)  # demand line of each window shift, in order

    def configure(self, words: int, slots: int) -> None:
        """Cut a prefetch order of ``words`` words (``slots`` with padding) into sets; the window at the
        start."""
        active, other = _halves(self.size_words)
        self.per_set = math.ceil(self.size_words / 100)
        self.n_sets = words // self.per_set + 1
        self.active_sets = min(math.ceil(active / self.per_set), self.n_sets)
        self.shift_sets = min(math.ceil(other / self.per_set), self.n_sets - self.active_sets)
        fetch_lines = math.ceil(slots / self.bandwidth_words)
        self.first_fetch_lines = min(math.ceil(active / self.bandwidth_words), fetch_lines)
        self.fetch_lines = math.ceil(other / self.bandwidth_words)
        self.start = 0  # the window is the sets start, start + 1, ... (cyclically), active_sets of them
        self.shifts = 0

    def setup(self, prefetch: np.ndarray, prefetch_elems: int, address_range: tuple[int, int]) -> None:
        """Cut the prefetch order (valid words ``prefetch``, ``prefetch_elems`` slots with padding) into
        sets, and index its words for :meth:`consume`.

        A word may be in several sets (overlapping convolution windows), so the window's words are a
        bitmap, rebuilt on every shift, or a search of the (word, set) pairs when shifts come too often.
        """
        self.configure(prefetch.size, prefetch_elems)
        self.base = address_range[0]
        sink = address_range[1] - address_range[0] + 1  # where empty slots (-1) point: always a hit
        self.sink = sink
        self.words = prefetch - self.base
        self.sets = np.arange(self.words.size) // self.per_set
        self.keys = None
        self.in_window = np.zeros(sink + 1, dtype=bool)
        self._mark(True)

    def _window_words(self) -> np.ndarray:
        p, n, start, width = self.per_set, self.n_sets, self.start, self.active_sets
        if start + width <= n:
            return self.words[start * p : (start + width) * p]
        return np.concatenate((self.words[start * p :], self.words[: (start + width - n) * p]))

    def _mark(self, value: bool) -> None:
        self.in_window[self._window_words()] = value
        self.in_window[self.sink] = True

    def _hits(self, idx: np.ndarray) -> np.ndarray:
        n, start, width = self.n_sets, self.start, self.active_sets
        if self.in_window is not None:
            return self.in_window[idx]
        base = idx * n
        ranges = [(start, start + width)] if start + width <= n else [(start, n), (0, start + width - n)]
        hit = idx == self.sink
        for lo, hi in ranges:
            hit |= np.searchsorted(self.keys, base + hi) > np.searchsorted(self.keys, base + lo)
        return hit

    def _shift(self, scanned: int) -> None:
        if self.in_window is not None:
            self._mark(False)
        self.start = (self.start + self.shift_sets) % self.n_sets
        self.shifts += 1
        if self.in_window is not None:
            window_words = self.active_sets * self.per_set
            if self.shifts >= 32 and scanned < self.shifts * window_words // 16:
                self.in_window = None  # shifts too frequent for rebuilding the bitmap: search instead
                self.keys = np.sort(self.words * self.n_sets + self.sets)
            else:
                self._mark(True)

    def consume_ranked(self, blocks: RankedBlocks) -> None:
        """Find every window shift from the requests' prefetch ranks (an operand whose words are all
        distinct; :mod:`.prefetch`), with a binary search per shift instead of a test per request.

        A block occurrence whose sets all lie in the window (one test on its lowest and highest set) is
        passed whole; otherwise its increasing runs are scanned by :meth:`_scan_run`.
        """
        n, width, per = self.n_sets, self.active_sets, self.per_set
        low = [r // per for r in blocks.low]
        span = [h // per - lo for h, lo in zip(blocks.high, low)]
        lines_per_fold = blocks.lines_per_fold
        for fold, b in enumerate(blocks.ids):
            if (low[b] - self.start) % n + span[b] < width:
                continue
            for run in blocks.runs(b):
                self._scan_run(run, fold * lines_per_fold)

    def _scan_run(self, run, first_line: int) -> None:
        """Shift the window over one increasing run of ranks (sets never decrease along it).

        From a request at or after the window's first set on, the rest is solved in closed form: the
        ``j``-th shift (``j = 0, 1, ...``) is made by the first request of a set ``>= start + active + j x
        shift``. A request before the first set is in the window only when the window wraps past the
        last set and it is below the wrapped part's end; the run is passed up to the first request that is
        not, and a request outside shifts the window until it is in.
        """
        n, width, step, per = self.n_sets, self.active_sets, self.shift_sets, self.per_set
        k = 0
        while k < run.size:
            v = run.rank_at(k) // per
            if v >= self.start:
                top = run.rank_at(run.size - 1) // per
                total = -((self.start + width - 1 - top) // step) if top >= self.start + width else 0
                for j in range(total):
                    m = run.index_at_least((self.start + width + step * j) * per, k)
                    self.misses.append(first_line + run.line_at(m))
                self.start = (self.start + total * step) % n
                self.shifts += total
                return
            wrapped_end = self.start + width - n
            if v < wrapped_end:
                k = run.index_at_least(wrapped_end * per, k)
                continue
            while (v - self.start) % n >= width:
                self.start = (self.start + step) % n
                self.shifts += 1
                self.misses.append(first_line + run.line_at(k))
            k += 1

    def consume(self, chunks) -> None:
        """Find every window shift over the requests (chunks of ``(addresses, line_of)`` in demand order)."""
        scanned = 0
        for addrs, line_of in chunks:
            idx = addrs - self.base
            idx[idx < 0] = self.sink
            pos, step = 0, 1024
            while pos < idx.size:
                end = min(idx.size, pos + step)
                hit = self._hits(idx[pos:end])
                if hit.all():
                    scanned += end - pos
                    pos, step = end, min(step * 2, 1 << 20)
                    continue
                m = pos + int(np.argmin(hit))
                scanned += m - pos + 1
                while not self._hits(idx[m : m + 1])[0]:
                    self._shift(scanned)
                    self.misses.append(line_of(m))
                pos, step = m + 1, max(256, (m - pos) * 2)

    @property
    def reads(self) -> int:
        """DRAM words read: the first fetch and every shift, whole lines of ``bandwidth`` words."""
        return (self.first_fetch_lines + len(self.misses) * self.fetch_lines) * self.bandwidth_words

    def last_fetch_cycle(self, shifts: int) -> int:
        """The cycle the fetch of the ``shifts``-th shift ends (0: the first fetch, just before cycle 0)."""
        return -1 + shifts * (self.fetch_lines + 1)

    def dram_cycles(self) -> tuple[int, int]:
        """(first, last) cycle of the DRAM trace."""
        return -self.first_fetch_lines, self.last_fetch_cycle(len(self.misses))


def line_offset(buffer: PrefetchReadBuffer, first_shift: int, shifts: int, cycle: int) -> int:
    """The service offset of a demand line with ``shifts`` window shifts, the first being number
    ``first_shift``."""
    offset = READ_LATENCY_CYCLES
    for k in range(first_shift, first_shift + shifts):
        behind = buffer.last_fetch_cycle(k) - (cycle + offset)
        offset += behind + max(behind, 0)
    return offset


class WriteBuffer:
    """The OFMAP write buffer, driven line by line, jumping over lines where nothing can happen."""

    def __init__(self, size_words: int, bandwidth_words: int, line_counts: np.ndarray) -> None:
        self.size = size_words
        self.bw = bandwidth_words
        self.active, drain_half = _halves(size_words)
        self.lines_per_drain = math.ceil(drain_half / bandwidth_words)
        self.free = size_words
        self.counts = line_counts
        self.before = np.concatenate(([0], np.cumsum(line_counts)))  # words stored before each line
        self.total = int(self.before[-1])
        self.stored = 0
        self.force_base = 0  # words stored when the last partial line was closed
        self.lines_closed = 0  # trace lines at that moment
        self.partial: dict[int, int] = {}  # trace line -> words, for lines closed before they filled
        self.drain_line = 0
        self.drain_end = 0
        self.drains: list[tuple[int, int, int]] = []  # (first cycle, last cycle, words counted)
        self.next_line = 0

    def next_event(self, stall_cycles: int) -> int | None:
        """The first line from :attr:`next_line` on where a word starts a drain or waits.

        ``stall_cycles`` are the stalls so far, constant up to that line (lines before it trigger nothing).
        """
        lo = self.next_line
        if lo >= self.counts.size:
            return None
        e0 = int(self.before[lo])
        free0 = self.free - (e0 - self.stored)
        not_draining = max(lo, self.drain_end - stall_cycles)
        candidates = []
        if not_draining < self.counts.size:
            candidates.append(max(e0 + free0 - self.active, e0, int(self.before[not_draining])))
        full = max(e0, e0 + free0 - 1)
        if full < self.total:
            line = int(self.before.searchsorted(full, side="right")) - 1
            if line < not_draining:
                candidates.append(full)
        candidates = [e for e in candidates if e < self.total]
        if not candidates:
            return None
        return int(self.before.searchsorted(min(candidates), side="right")) - 1

    def skip_to(self, line: int) -> None:
        """Store every word of the lines before ``line`` (none of which triggers anything)."""
        words = int(self.before[line]) - self.stored
        self.stored += words
        self.free -= words
        self.next_line = line

    def play_line(self, line: int, cycle: int) -> int:
        """Store line ``line``'s words at ``cycle``; return how long it waited (its stall).

        Word by word, a word waits for a running drain when it fills the buffer, and starts a drain when
        none runs and it leaves less than the active half free; the words in between change nothing, so
        they are stored in one step.
        """
        self.skip_to(line)
        current = cycle
        left = int(self.counts[line])
        while left:
            draining = current < self.drain_end
            k = max(1, self.free) if draining else max(1, self.free - self.active + 1)  # the word that acts
            if k > left:
                self.stored += left
                self.free -= left
                break
            self.stored += k
            self.free -= k
            left -= k
            if draining:
                current = self.drain_end
            else:
                self._close_line()
                self._drain(current)
        self.next_line = line + 1
        return current - cycle

    def finish(self, cycle: int) -> None:
        """Drain everything left, batch after batch, from ``cycle`` (the last demand line's service cycle)."""
        self.skip_to(self.counts.size)
        self._close_line()
        while self.drain_line < self.lines_closed:
            self._drain(cycle)
            cycle = self.drain_end + 1

    def _close_line(self) -> None:
        words = self.stored - self.force_base
        self.lines_closed += words // self.bw
        if words % self.bw:
            self.partial[self.lines_closed] = words % self.bw
            self.lines_closed += 1
        self.force_base = self.stored

    def _drain(self, cycle: int) -> None:
        end = min(self.drain_line + self.lines_per_drain, self.lines_closed)
        n = end - self.drain_line
        words = (n - 1) * self.bw + self.partial.get(end - 1, self.bw)
        self.free += words
        self.drain_end = cycle + n - 1
        self.drains.append((cycle, self.drain_end, words))
        self.drain_line = end

    @property
    def writes(self) -> int:
        """DRAM words written (padding included)."""
        return sum(w for _, _, w in self.drains)

    def dram_cycles(self) -> tuple[int, int]:
        """(first, last) cycle of the drains."""
        return min(d[0] for d in self.drains), max(d[1] for d in self.drains)
