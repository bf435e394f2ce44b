"""How far a run is, on stderr: a bar redrawn in place on a terminal, else a plain line every tenth of the
list (and at most every 10 seconds)."""

from __future__ import annotations

import time
from collections import Counter
from typing import TextIO

from spsp_pull.collector.outcome import Kind, PointerOutcome

BAR_WIDTH = 30
REDRAW_EVERY = 0.1  # seconds, on a terminal
LINE_EVERY = 10.0  # seconds at most between plain lines


class Progress:
    def __init__(self, total: int, out: TextIO, *, tty: bool | None = None) -> None:
        self._total = total
        self._out = out
        self._tty = out.isatty() if tty is None else tty
        self._done = 0
        self._counts: Counter[Kind] = Counter()
        self._started = time.monotonic()
        self._shown_at = 0.0
        self._next_line = max(1, total // 10)

    def __call__(self, outcome: PointerOutcome) -> None:
        self._done += 1
        self._counts[outcome.kind] += 1
        now = time.monotonic()
        if self._tty:
            if now - self._shown_at >= REDRAW_EVERY or self._done == self._total:
                self._shown_at = now
                filled = self._done * BAR_WIDTH // max(1, self._total)
                bar = "#" * filled + "." * (BAR_WIDTH - filled)
                self._out.write(f"\r[{bar}] {self._line(now)}")
                self._out.flush()
        elif self._done >= self._next_line or now - self._shown_at >= LINE_EVERY:
            self._shown_at = now
            self._next_line = self._done + max(1, self._total // 10)
            self._out.write(self._line(now) + "\n")
            self._out.flush()

    def close(self) -> None:
        if self._tty and self._done:
            self._out.write("\n")
            self._out.flush()

    def _line(self, now: float) -> str:
        rate = self._done / max(now - self._started, 1e-9)
        counts = ", ".join(f"{n} {kind.value}" for kind, n in sorted(self._counts.items()))
        return f"{self._done}/{self._total} ({counts}) {rate:,.0f}/s"
