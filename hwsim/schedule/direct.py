"""Layer times in closed form for plans that move no data by DMA (what the simulator computes, without SimPy).

When no tile of any layer loads or stores (a performance model that times the whole layer itself, such as
``vela-5.2``, whose tiles only compute and stream), the event simulation (:mod:`hwsim.schedule.sim`) has
nothing to arbitrate but each tile's streams on their levels' read ports: layers run one after another,
each starting with every resource free; a tile holds its unit for its ``wait_cycles``, then computes while
its streams run, and ends when the compute and the last stream have. The streams of one level take its
ports in list order as ports come free, as SimPy's first-come queue grants them. Computing that directly
gives the simulator's ``(start, end, busy)`` per layer (tests check the two agree) and spares importing
SimPy and running its event loop, most of a small network's simulation time.
"""

from __future__ import annotations

import heapq
import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hwsim.devices.model import Device
    from hwsim.schedule.plans import LayerPlan


def moves_no_data(plans: list[LayerPlan]) -> bool:
    """True when no tile of ``plans`` loads or stores, so :func:`layer_times` applies."""
    return not any(tile.loads or tile.stores for plan in plans for tile in plan.tiles)


def layer_times(device: Device, plans: list[LayerPlan]) -> list[tuple[int, int, int]]:
    """``(start_cycle, end_cycle, compute_busy_cycles)`` per layer, as :meth:`Simulator.run` returns them."""
    levels = device.levels
    now = 0
    out = []
    for plan in plans:
        start = now
        busy = 0
        for tile in plan.tiles:
            t0 = now + tile.wait_cycles
            end = t0 + tile.cycles
            ports: dict[int, list[int]] = {}  # level -> end cycles of the streams holding its ports
            for s in tile.streams:
                held = ports.setdefault(s.src, [])
                begin = t0 if len(held) < levels[s.src].read_ports else heapq.heappop(held)
                cycles = (
                    s.cycles
                    if s.cycles is not None
                    else math.ceil(s.nbytes / levels[s.src].read_bandwidth_bytes_per_cycle)
                )
                heapq.heappush(held, begin + cycles)
                end = max(end, begin + cycles)
            busy += tile.cycles
            now = end
        out.append((start, now, busy))
    return out
