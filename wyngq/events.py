"""How the engine reports progress while it works.

The engine calls `reporter.event(EVENT)` with one of the event dataclasses of
`wyngq.contract.events`; entry points choose the presentation (human text on a
terminal, JSON Lines otherwise, or nothing). Wyng's own output is turned into
`volume` events here: `started`, `progress` (with `percent`, in steps of 5) and
`done`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Literal, Protocol

from wyngq.contract.events import Event, VolumeProgress, WyngOutput


class Reporter(Protocol):
    def event(self, event: Event, /) -> None: ...


class NullReporter:
    def event(self, event: Event, /) -> None:
        return None


# a volume's owning qube and its size in bytes, when known
Describe = Callable[[str], tuple[str | None, int | None]]


_VOLUME = re.compile(r"^(?:Volume|Receiving volume|Verifying volume) '(?P<name>[^']+)'")
_PERCENT = re.compile(r"(?P<pct>\d{1,3}(?:\.\d)?)%")
_BAR = re.compile(r"\[(?P<bar>[|.]*)")
STEP = 5


class WyngProgress:
    """A Wyng stdout handler: complete lines through `__call__`, a line still
    being drawn through `partial`. `describe(volume)` gives its qube and size."""

    def __init__(self, reporter: Reporter, describe: Describe) -> None:
        self.reporter = reporter
        self.describe = describe
        self.volume: str | None = None
        self.percent = -1

    def __call__(self, line: str) -> None:
        self.reporter.event(WyngOutput(line))
        match = _VOLUME.match(line.strip())
        if match:
            self.volume, self.percent = match["name"], -1
            self._emit("started")
            return
        self.partial(line)
        if self.volume is not None and self.percent >= 100:
            self._emit("done")
            self.volume = None

    def partial(self, fragment: str) -> None:
        if self.volume is None:
            return
        percent = _percent(fragment)
        if percent is None:
            return
        stepped = min(100, percent - percent % STEP)
        if stepped > self.percent:
            self.percent = stepped
            if stepped < 100:
                self._emit("progress", percent=stepped)

    def _emit(self, state: Literal["started", "progress", "done"], percent: int | None = None) -> None:
        assert self.volume is not None
        qube, size = self.describe(self.volume)
        self.reporter.event(VolumeProgress(self.volume, state, percent=percent, qube=qube, size=size))


def _percent(text: str) -> int | None:
    """Wyng shows either `NN.N%` (receive/verify, attended send) or, unattended,
    a bar of 20 cells filled one `|` per 5 %."""
    found = _PERCENT.findall(text)
    if found:
        return int(float(found[-1]))
    bar = _BAR.search(text)
    if bar and bar["bar"]:
        return bar["bar"].count("|") * STEP
    return None


def nothing_known(volume: str) -> tuple[str | None, int | None]:
    return None, None


def wyng_progress(reporter: Reporter, describe: Describe = nothing_known) -> WyngProgress:
    """Return a Wyng stdout handler that reports each volume as Wyng works on it."""
    return WyngProgress(reporter, describe)
