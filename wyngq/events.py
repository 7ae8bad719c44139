"""How the engine reports progress while it works.

The engine calls `reporter.event(TYPE, **fields)`; entry points choose the
presentation (human text on a terminal, JSON Lines otherwise, or nothing).
Wyng's own progress lines are turned into `volume` events here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Protocol


class Reporter(Protocol):
    def event(self, type: str, /, **fields: object) -> None: ...


class NullReporter:
    def event(self, type: str, /, **fields: object) -> None:
        return None


_VOLUME = re.compile(r"^(?:Volume|Receiving volume) '(?P<name>[^']+)'")
_PERCENT = re.compile(r"(?P<pct>\d{1,3})%")


def wyng_progress(reporter: Reporter, describe: Callable[[str], dict[str, object]]) -> Callable[[str], None]:
    """Return a Wyng stdout-line handler that reports each volume as Wyng starts it,
    and its completion. `describe(volume)` adds fields such as the qube's name."""
    current: list[str] = []

    def on_line(line: str) -> None:
        reporter.event("wyng_output", line=line)
        match = _VOLUME.match(line.strip())
        if match:
            current[:] = [match["name"]]
            reporter.event("volume", volume=match["name"], state="started", **describe(match["name"]))
            return
        if current and (pct := _PERCENT.search(line)) and pct["pct"] == "100":
            reporter.event("volume", volume=current[0], state="done", **describe(current[0]))
            current.clear()

    return on_line
