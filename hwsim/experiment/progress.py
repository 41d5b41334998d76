"""A one-line progress bar with ETA on stderr (no dependency): ``[#####.....] 12/40 3 failed 0:05 ETA
0:12``."""

from __future__ import annotations

import sys
import time


class Progress:
    """Counts finished points and redraws one line on a terminal (one line per 10 % otherwise)."""

    def __init__(self, total: int, stream=None, width: int = 30):
        self.total, self.done, self.failed = total, 0, 0
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.start = time.monotonic()
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last_decile = -1

    def update(self, ok: bool = True) -> None:
        """One more point finished (``ok`` False: it failed)."""
        self.done += 1
        self.failed += 0 if ok else 1
        self.draw()

    def line(self) -> str:
        """The current bar as text."""
        elapsed = time.monotonic() - self.start
        frac = self.done / self.total if self.total else 1.0
        eta = elapsed / self.done * (self.total - self.done) if self.done else float("nan")
        filled = int(round(frac * self.width))
        fail = f" {self.failed} failed" if self.failed else ""
        eta_text = _clock(eta) if eta == eta else "?"
        return (
            f"[{'#' * filled}{'.' * (self.width - filled)}] {self.done}/{self.total}{fail} "
            f"{_clock(elapsed)} ETA {eta_text}"
        )

    def draw(self) -> None:
        """Write the bar: in place on a terminal, else at each tenth of the way."""
        if self.tty:
            self.stream.write("\r" + self.line())
            if self.done == self.total:
                self.stream.write("\n")
        else:
            decile = int(10 * self.done / self.total) if self.total else 10
            if decile != self._last_decile:
                self._last_decile = decile
                self.stream.write(self.line() + "\n")
        self.stream.flush()


def _clock(seconds: float) -> str:
    """``m:ss``.

    >>> _clock(75.2)
    '1:15'
    """
    s = int(round(seconds))
    return f"{s // 60}:{s % 60:02d}"
