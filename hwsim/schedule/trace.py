"""What the simulator did, event by event, and its export to the Chrome trace event format (Perfetto)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TraceEvent:
    """One busy interval of a resource: ``[t_start, t_end)`` in cycles."""

    resource: str  # "mac_array", a vector unit, or "dma0", "dma1", ...
    action: str  # "compute", "stall" (a wait a memory model computed), "load", "prefetch", "store", "stream"
    op: str
    t_start: int
    t_end: int
    nbytes: int = 0
    macs: int = 0
    detail: str = ""  # operand and levels of a transfer, e.g. "weights dram->sram"


@dataclass
class Trace:
    """The ordered list of events of one simulation, with the clock to convert cycles to time."""

    events: list[TraceEvent]
    clock_mhz: float

    def __len__(self) -> int:
        return len(self.events)

    def __iter__(self):
        return iter(self.events)

    def to_chrome(self) -> dict:
        """The trace as a Chrome trace event dict (``ph: "X"`` complete events, microseconds)."""
        resources = sorted({e.resource for e in self.events}, key=lambda r: (r.startswith("dma"), r))
        tid = {r: i + 1 for i, r in enumerate(resources)}
        out = [{"ph": "M", "pid": 1, "name": "process_name", "args": {"name": "hwsim"}}]
        out += [
            {"ph": "M", "pid": 1, "tid": tid[r], "name": "thread_name", "args": {"name": r}}
            for r in resources
        ]
        for e in self.events:
            args = {"op": e.op, "cycles": e.t_end - e.t_start}
            if e.nbytes:
                args["bytes"] = e.nbytes
            if e.macs:
                args["macs"] = e.macs
            if e.detail:
                args["detail"] = e.detail
            out.append(
                {
                    "ph": "X",
                    "pid": 1,
                    "tid": tid[e.resource],
                    "name": f"{e.op} {e.action}",
                    "cat": e.action,
                    "ts": e.t_start / self.clock_mhz,
                    "dur": (e.t_end - e.t_start) / self.clock_mhz,
                    "args": args,
                }
            )
        return {"traceEvents": out, "displayTimeUnit": "ns"}

    def write_chrome(self, path: str | Path) -> Path:
        """Write :meth:`to_chrome` as JSON (open it in https://ui.perfetto.dev or chrome://tracing)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_chrome()), encoding="utf-8")
        return path
