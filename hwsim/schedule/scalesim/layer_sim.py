"""One SCALE-Sim layer through the memory system: cycles, stalls, every SRAM and DRAM count of its reports.

SCALE-Sim 3.0.0 (``memory/double_buffered_scratchpad_mem.py``) walks the demand lines in order: line ``i``
is issued at cycle ``i + stalls so far``; the IFMAP, filter and OFMAP buffers each serve their part of the
line (reads one cycle later when they hit), and the line's stall is the largest of the three delays. "Total
Cycles" is the last line's OFMAP service cycle, "Stall Cycles" the summed stalls, and "Total Cycles (incl.
prefetch)" runs from the first DRAM read to the last DRAM write. hwsim visits only the lines where a buffer
does something (a prefetch window shift, a drain, a full buffer; :mod:`.buffers`) and carries the stall
count across the lines in between, where nothing changes.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from hwsim.schedule.scalesim.buffers import EstimatedReadBuffer, PrefetchReadBuffer, WriteBuffer, line_offset
from hwsim.schedule.scalesim.demand import LayerDemand, Offsets, ifmap_distinct_words
from hwsim.schedule.scalesim.layers import ScaleSimLayer
from hwsim.schedule.scalesim.prefetch import RankedBlocks


@dataclass(frozen=True)
class MemoryConfig:
    """The part of a SCALE-Sim config that sets its memory system (sizes in bytes = words; words per cycle).

    In CALC mode SCALE-Sim estimates the DRAM bandwidth: the read buffers never stall and the OFMAP buffer
    drains one array row (``columns`` words) per cycle. In USER mode the IFMAP and filter buffers fetch at
    ``[layout] IfmapSRAMBankBandwidth`` and ``FilterSRAMBankBandwidth`` and the OFMAP drains at the first
    ``Bandwidth`` value (``single_layer_sim.py``).
    """

    rows: int
    cols: int
    dataflow: str
    ifmap_sram_bytes: int
    filter_sram_bytes: int
    ofmap_sram_bytes: int
    user_bandwidth: bool = False
    ifmap_words_per_cycle: int = 10
    filter_words_per_cycle: int = 10
    ofmap_words_per_cycle: int = 10
    offsets: Offsets = Offsets()


@dataclass(frozen=True)
class LayerReport:
    """Every figure SCALE-Sim reports for one layer (cycles are numbers, printed as SCALE-Sim prints them)."""

    macs: int
    lines: int
    total_cycles_incl_prefetch: int
    total_cycles: int
    stall_cycles: int
    overall_util_percent: float
    mapping_efficiency_percent: float
    compute_util_percent: float
    sram_ifmap: tuple[int, int, int]  # (start cycle, stop cycle, reads)
    sram_filter: tuple[int, int, int]
    sram_ofmap: tuple[int, int, int]  # (start cycle, stop cycle, writes)
    dram_ifmap: tuple[int, int, int]
    dram_filter: tuple[int, int, int]
    dram_ofmap: tuple[int, int, int]

    def average_bandwidths(self) -> tuple[float, ...]:
        """BANDWIDTH_REPORT's six averages (words per cycle): SRAM over the layer, DRAM over each trace
        span."""
        cycles = self.total_cycles
        sram = (self.sram_ifmap[2] / cycles, self.sram_filter[2] / cycles, self.sram_ofmap[2] / cycles)
        dram = tuple(
            float(n) / float(stop - start + 1)
            for start, stop, n in (self.dram_ifmap, self.dram_filter, self.dram_ofmap)
        )
        return sram + dram


class _StallHistory:
    """Stall cycles accumulated before each demand line (changes only at event lines)."""

    def __init__(self) -> None:
        self.lines: list[int] = []
        self.after: list[int] = []
        self.offsets: dict[int, tuple[int, int, int]] = {}

    def record(self, line: int, stalls_after: int, offsets: tuple[int, int, int]) -> None:
        self.lines.append(line)
        self.after.append(stalls_after)
        self.offsets[line] = offsets

    def before(self, line: int) -> int:
        k = bisect.bisect_left(self.lines, line)
        return self.after[k - 1] if k else 0

    def served(self, line: int, operand: int) -> int:
        """The cycle line ``line``'s request of operand 0 (ifmap), 1 (filter) or 2 (ofmap) is served."""
        return line + self.before(line) + self.offsets.get(line, (1, 1, 0))[operand]


def simulate_layer(layer: ScaleSimLayer, cfg: MemoryConfig) -> LayerReport:
    """Run one layer through SCALE-Sim's memory system (see the module docstring)."""
    d = LayerDemand(layer, cfg.dataflow, cfg.rows, cfg.cols, cfg.offsets)
    n = d.lines
    ifm, flt, ofm = d.operand("ifmap"), d.operand("filter"), d.operand("ofmap")
    wb = WriteBuffer(
        cfg.ofmap_sram_bytes, cfg.ofmap_words_per_cycle if cfg.user_bandwidth else cfg.cols, ofm.line_counts()
    )
    readers: list = []
    misses: list[dict[int, tuple[int, int]]] = []
    for name, op, size, bw in (
        ("ifmap", ifm, cfg.ifmap_sram_bytes, cfg.ifmap_words_per_cycle),
        ("filter", flt, cfg.filter_sram_bytes, cfg.filter_words_per_cycle),
    ):
        if cfg.user_bandwidth:
            rb = PrefetchReadBuffer(size, bw)
            if name == "filter" or not _windows_overlap(layer):
                blocks = RankedBlocks(d, name)  # every word distinct: ranks in closed form
                rb.configure(blocks.order.words, blocks.order.slots)
                rb.consume_ranked(blocks)
            else:
                seq, elems = d.prefetch_sequence(name)
                rb.setup(seq, elems, _address_range(d, name))
                rb.consume(op.streams())
            per_line: dict[int, tuple[int, int]] = {}
            for k, line in enumerate(rb.misses, start=1):
                first, count = per_line.get(line, (k, 0))
                per_line[line] = (first, count + 1)
            misses.append(per_line)
        else:
            rb = EstimatedReadBuffer(size, op.first_and_last_lines()[0])
            _estimate_reads(rb, d, name, op)
            misses.append({})
        readers.append(rb)

    history = _StallHistory()
    stalls = 0
    read_events = sorted(set(misses[0]) | set(misses[1]))
    for nxt in read_events + [n]:
        while True:
            ev = wb.next_event(stalls)
            if ev is None or ev >= nxt:
                break
            waited = wb.play_line(ev, ev + stalls)
            stalls += waited
            history.record(ev, stalls, (1, 1, waited))
        if nxt >= n:
            break
        cycle = nxt + stalls
        offs = [line_offset(rb, *m[nxt], cycle) if nxt in m else 1 for rb, m in zip(readers, misses)]
        waited = wb.play_line(nxt, cycle)
        history.record(nxt, stalls + max(offs[0] - 1, offs[1] - 1, waited), (offs[0], offs[1], waited))
        stalls += max(offs[0] - 1, offs[1] - 1, waited)
    total = history.served(n - 1, 2)
    wb.finish(total)

    sram = []
    for idx, op, count in (
        (0, ifm, d.ifmap_sram_reads),
        (1, flt, d.filter_sram_reads),
        (2, ofm, d.ofmap_sram_writes),
    ):
        first, last = op.first_and_last_lines()
        sram.append((history.served(first, idx), history.served(last, idx), count))
    dram = []
    for rb in readers:
        if cfg.user_bandwidth:
            start, stop = rb.dram_cycles()
        else:
            start, stop = rb.dram_cycles(lambda line: line + history.before(line))
        dram.append((start, stop, rb.reads))
    dram.append((*wb.dram_cycles(), wb.writes))
    eff, util = d.fold_stats()
    return LayerReport(
        macs=layer.macs,
        lines=n,
        total_cycles_incl_prefetch=int(dram[2][1] - min(dram[0][0], dram[1][0])),
        total_cycles=total,
        stall_cycles=stalls,
        overall_util_percent=(layer.macs * 100) / (total * cfg.rows * cfg.cols),
        mapping_efficiency_percent=sum(eff) / len(eff) * 100,
        compute_util_percent=sum(util) / len(util) * 100,
        sram_ifmap=sram[0],
        sram_filter=sram[1],
        sram_ofmap=sram[2],
        dram_ifmap=dram[0],
        dram_filter=dram[1],
        dram_ofmap=dram[2],
    )


def _estimate_reads(rb: EstimatedReadBuffer, d: LayerDemand, name: str, op) -> None:
    """CALC-mode DRAM reads: distinct words when they fit one epoch, else the epochs over the demand
    stream."""
    layer = d.layer
    distinct = ifmap_distinct_words(layer) if name == "ifmap" else layer.window * layer.filters
    if distinct < rb.epoch_words:
        rb.reads = distinct
        return
    if name == "filter" or not (_windows_overlap(layer) or layer.reads_past_edge):
        ids, slots, line_of = op.block_slots()  # only the number of words and their lines matter here
        rb.consume_blocks(ids, slots, slots, line_of)
    elif not _windows_overlap(layer):
        rb.consume_blocks(*op.block_sequence())
    else:
        rb.consume(op.streams(), _address_range(d, name))


def _windows_overlap(layer: ScaleSimLayer) -> bool:
    """Whether two output pixels read a common IFMAP word (else every IFMAP word is requested once per
    pass)."""
    return (layer.filter_h > layer.stride_h and layer.ofmap_h > 1) or (
        layer.filter_w > layer.stride_w and layer.ofmap_w > 1
    )


def _address_range(d: LayerDemand, name: str) -> tuple[int, int]:
    """The lowest and highest address an IFMAP or filter request can have."""
    layer = d.layer
    if name == "ifmap":
        return d.offsets.ifmap, d.offsets.ifmap + layer.ifmap_h * layer.ifmap_w * layer.channels - 1
    return d.offsets.filter, d.offsets.filter + layer.window * layer.filters - 1
