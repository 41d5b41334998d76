"""Average and peak power: each layer's energy laid on the SimPy trace, then the busiest window.

The trace (:class:`~hwsim.schedule.trace.Trace`) holds every busy interval: ``compute`` events of a unit (one
per simulated step) and ``load``/``store`` events of a DMA engine (``detail`` = ``"<operand> <src>-><dst>"``,
``nbytes``). A layer's energy rows are laid on them as follows:

* memory reads at a transfer's source and writes at its destination (by level name) go to that layer's DMA
  events, in proportion to their bytes, up to the bytes the rows count at that level (the rest of a level's
  reads and writes are the compute unit's own operand traffic);
* everything else (MACs, idle slots, register files, vector ops, operand traffic) goes to the layer's compute
  events in proportion to their duration, or evenly over the layer when it has none;
* leakage is a constant power over the whole run.

The peak is the largest energy in any window of ``window_us`` sliding over the timeline repeated back to back
(a stream of inferences), divided by the window. Because the window wraps around, the windows' mean is the
average power, so the peak is never below it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PowerReport:
    """Average and peak power of one run, and where the busiest window starts."""

    average_mw: float
    peak_mw: float
    window_us: float
    window_start_us: float
    leakage_mw: float


def energy_segments(result, breakdown) -> tuple[list[int], list[int], list[float]]:
    """Dynamic energy laid on the timeline, as parallel lists ``(t_start_cycle, t_end_cycle, energy_pj)``."""
    events_of: dict[str, list] = defaultdict(list)
    for e in result.trace:
        events_of[e.op].append(e)
    rows_of: dict[str, list] = defaultdict(list)
    for r in breakdown.rows:
        if r.category != "leakage":
            rows_of[r.layer].append(r)
    levels: dict[str, tuple[str, str]] = {}  # detail -> (source level, destination level)
    t_start: list[int] = []
    t_end: list[int] = []
    energy_pj: list[float] = []
    for layer in result.layers:
        rows = rows_of.get(layer.op)
        if not rows:
            continue
        compute = []
        dma: dict[tuple[str, str], list] = defaultdict(list)
        for e in events_of.get(layer.op, ()):
            if e.action == "compute":
                compute.append(e)
            elif "->" in e.detail:
                pair = levels.get(e.detail)
                if pair is None:
                    src, dst = e.detail.rsplit(" ", 1)[-1].split("->")
                    pair = levels[e.detail] = (src, dst)
                dma[(pair[0], "read")].append(e)
                dma[(pair[1], "write")].append(e)
        mem_energy: dict[tuple[str, str], float] = defaultdict(float)
        mem_bytes: dict[tuple[str, str], float] = defaultdict(float)
        other = 0.0
        for r in rows:
            key = (r.component, r.action)
            if key in dma and isinstance(r.bits, int):
                mem_energy[key] += r.energy_pj
                mem_bytes[key] += r.count * r.bits / 8
            else:
                other += r.energy_pj
        for key, energy in mem_energy.items():
            events = dma[key]
            moved = sum(e.nbytes for e in events)
            share = min(1.0, moved / mem_bytes[key]) if mem_bytes[key] else 0.0
            if moved:
                per_byte = energy * share / moved
                for e in events:
                    t_start.append(e.t_start)
                    t_end.append(e.t_end)
                    energy_pj.append(per_byte * e.nbytes)
            other += energy * (1 - share)
        busy = sum(e.t_end - e.t_start for e in compute)
        if compute and busy:
            per_cycle = other / busy
            for e in compute:
                t_start.append(e.t_start)
                t_end.append(e.t_end)
                energy_pj.append(per_cycle * (e.t_end - e.t_start))
        else:
            t_start.append(layer.start_cycle)
            t_end.append(layer.start_cycle + max(layer.cycles, 1))
            energy_pj.append(other)
    return t_start, t_end, energy_pj


def power_report(result, breakdown, *, window_us: float = 10.0) -> PowerReport:
    """Average power and the peak over the busiest ``window_us`` window (see the module docstring).

    Parameters
    ----------
    result : SimResult
        The simulation, with its trace (``record_trace=True``).
    breakdown : EnergyBreakdown
        Its priced rows (:func:`hwsim.energy.account.account`).
    window_us : float
        Window width; a window longer than the run gives the average.

    Returns
    -------
    PowerReport
    """
    mhz = result.device.clock_mhz
    total_cycles = result.cycles
    leak_mw = breakdown.leakage_mw
    if total_cycles <= 0:
        return PowerReport(0.0, 0.0, window_us, 0.0, leak_mw)
    average_mw = breakdown.total_pj / (total_cycles / (mhz * 1e6)) * 1e-9
    t0 = min((layer.start_cycle for layer in result.layers), default=0)
    seg_start, seg_end, seg_energy = energy_segments(result, breakdown)
    window = window_us * mhz
    if window >= total_cycles or not seg_start:
        return PowerReport(average_mw, average_mw, window_us, 0.0, leak_mw)
    starts = np.array(seg_start, dtype=float) - t0
    ends = np.maximum(np.array(seg_end, dtype=float) - t0, starts + 1)  # an instant event spans one cycle
    energy = np.array(seg_energy, dtype=float)
    # cumulative dynamic energy at breakpoints (piecewise linear in time)
    points = np.sort(np.concatenate([starts, ends, [0.0, float(total_cycles)]]))
    points = points[np.concatenate([[True], np.diff(points) > 0])]  # np.unique would import numpy.ma (~20 ms)
    rate = np.zeros(len(points) + 1)
    np.add.at(rate, np.searchsorted(points, starts), energy / (ends - starts))
    np.add.at(rate, np.searchsorted(points, ends), -energy / (ends - starts))
    rate = np.cumsum(rate)[: len(points) - 1]
    cum = np.concatenate([[0.0], np.cumsum(rate * np.diff(points))])
    period, per_energy = points[-1], cum[-1]

    def cumulative(t: np.ndarray) -> np.ndarray:
        laps = np.floor(t / period)
        return np.interp(t - laps * period, points, cum) + laps * per_energy

    candidates = np.concatenate([points, (points - window) % period])
    in_window = cumulative(candidates + window) - cumulative(candidates)
    best = int(np.argmax(in_window))
    # Python floats: results hold no numpy
    dyn_peak_mw = float(in_window[best]) / (window / (mhz * 1e6)) * 1e-9
    return PowerReport(
        average_mw,
        max(dyn_peak_mw + leak_mw, average_mw),
        window_us,
        (float(candidates[best]) + t0) / mhz,
        leak_mw,
    )
