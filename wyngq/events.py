"""How the engine reports progress while it works.

The engine calls `reporter.event(EVENT)` with one of the event dataclasses of
`wyngq.contract.events`; entry points choose the presentation (human text on a
terminal, JSON Lines otherwise, or nothing). Wyng's own output (read by
wyngq.wyng.text) is turned into `volume` events here: `started`, `progress`
(with `percent`, in steps of 5) and `done`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Literal, Protocol

from wyngq.contract.events import VolumeProgress, WyngOutput
from wyngq.wyng import text

if TYPE_CHECKING:
    from wyngq.contract.events import Event


class Reporter(Protocol):
    def event(self, event: Event, /) -> None: ...


class NullReporter:
    def event(self, event: Event, /) -> None:
        return None


# a volume's owning qube and its size in bytes, when known
Describe = Callable[[str], tuple[str | None, int | None]]


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

    def _emit(self, state: Literal["started", "progress", "done"], percent: int | None = None) -> None:
        assert self.volume is not None
        qube, size = self.describe(self.volume)
        self.reporter.event(VolumeProgress(self.volume, state, percent=percent, qube=qube, size=size))


def nothing_known(volume: str) -> tuple[str | None, int | None]:
    return None, None


def wyng_progress(reporter: Reporter, describe: Describe = nothing_known) -> WyngProgress:
    """Return a Wyng stdout handler that reports each volume as Wyng works on it."""
    return WyngProgress(reporter, describe)
