"""How the engine reports progress while it works.

The engine calls `reporter.event(TYPE, **fields)`; entry points choose the
presentation (human text on a terminal, JSON Lines otherwise, or nothing).
Wyng's own output (read by wyngq.wyng.text) is turned into `volume` events
here: `started`, `progress` (with `percent`, in steps of 5) and `done`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from wyngq.wyng import text


class Reporter(Protocol):
    def event(self, type: str, /, **fields: object) -> None: ...


class NullReporter:
    def event(self, type: str, /, **fields: object) -> None:
        return None


STEP = 5


class WyngProgress:
    """A Wyng stdout handler: complete lines through `__call__`, a line still
    being drawn through `partial`. `describe(volume)` adds fields such as the qube."""

    def __init__(self, reporter: Reporter, describe: Callable[[str], dict[str, object]]) -> None:
        self.reporter = reporter
        self.describe = describe
        self.volume: str | None = None
        self.percent = -1

    def __call__(self, line: str) -> None:
        self.reporter.event("wyng_output", line=line)
        volume = text.volume_header(line)
        if volume is not None:
            self.volume, self.percent = volume, -1
            self._emit("started")
            return
        self.partial(line)
        if self.volume is not None and self.percent >= 100:
            self._emit("done")
            self.volume = None

    def partial(self, fragment: str) -> None:
        if self.volume is None:
            return
        percent = text.percent(fragment)
        if percent is None:
            return
        stepped = min(100, percent - percent % STEP)
        if stepped > self.percent:
            self.percent = stepped
            if stepped < 100:
                self._emit("progress", percent=stepped)

    def _emit(self, state: str, **extra: object) -> None:
        assert self.volume is not None
        self.reporter.event("volume", volume=self.volume, state=state, **extra, **self.describe(self.volume))


def wyng_progress(reporter: Reporter, describe: Callable[[str], dict[str, object]]) -> WyngProgress:
    """Return a Wyng stdout handler that reports each volume as Wyng works on it."""
    return WyngProgress(reporter, describe)
