"""The progress line a person sees on a terminal: bytes done, rate and time left,
per volume and overall (pure: the clock is given).

Wyng, run by wyngq, is never attended (its stdin is not a terminal), so it shows
each volume's progress as a bar that gains one `|` per 5 % of the volume
(wyngq.events turns that into `volume` events with `percent`). With the volume
sizes the plan knows, that is bytes done; the rate is bytes done over the time
since the volume started, and the time left follows from both. For an
incremental send the bytes are those of the volume Wyng has scanned, not those
it stored.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

MiB = 1024 * 1024


@dataclass
class _Volume:
    name: str
    label: str
    size: int | None
    started: float
    done: int = 0
    percent: int = 0


@dataclass
class ProgressBoard:
    """What has been done so far, for one operation's volumes."""

    clock: Callable[[], float] = time.monotonic
    sizes: Mapping[str, int] = field(default_factory=dict)  # every planned volume's size, when known
    finished: int = 0  # bytes of the volumes finished
    first_start: float | None = None
    current: _Volume | None = None

    def plan(self, sizes: Mapping[str, int]) -> None:
        self.sizes = dict(sizes)

    def start(self, volume: str, label: str, size: int | None = None) -> str:
        now = self.clock()
        self.first_start = now if self.first_start is None else self.first_start
        self.current = _Volume(volume, label, size if size is not None else self.sizes.get(volume), now)
        return self.line()

    def advance(self, percent: int) -> str:
        vol = self.current
        if vol is None:
            return ""
        vol.percent = max(vol.percent, min(100, percent))
        vol.done = (vol.size or 0) * vol.percent // 100
        return self.line()

    def finish(self) -> str:
        """The volume's last line: its size, time and rate."""
        vol = self.current
        if vol is None:
            return ""
        elapsed = max(self.clock() - vol.started, 0.0)
        self.finished += vol.size or 0
        self.current = None
        if not vol.size:
            return f"{vol.label}  done in {_duration(elapsed)}"
        text = f"{vol.label}  {_bytes(vol.size)} in {_duration(elapsed)}"
        # under half a second Wyng found nothing to read (an unchanged or empty volume): no rate
        return text + (f" ({_rate(vol.size, elapsed)})" if elapsed >= 0.5 else "")

    def line(self) -> str:
        """`LABEL  45%  230/512 MiB  180 MiB/s  0:02 left  | all 35%, 0:09 left` (short enough
        for a terminal line beside a volume name)."""
        vol = self.current
        if vol is None:
            return ""
        now = self.clock()
        parts = [vol.label, f"{vol.percent:3d}%"]
        if vol.size:
            elapsed = now - vol.started
            parts += [f"{_pair(vol.done, vol.size)}", _rate(vol.done, elapsed), _left(vol.size - vol.done,
                                                                                      vol.done, elapsed)]
        total = sum(self.sizes.values())
        if total and self.first_start is not None and len(self.sizes) > 1:
            done = min(total, self.finished + vol.done)
            elapsed = now - self.first_start
            parts.append(f"| all {done * 100 // total}%, {_left(total - done, done, elapsed)}")
        return "  ".join(p for p in parts if p)


def _left(remaining: int, done: int, elapsed: float) -> str:
    if done <= 0 or elapsed <= 0:
        return "--:-- left"
    return f"{_clock(remaining * elapsed / done)} left"


def _rate(count: int, elapsed: float) -> str:
    if elapsed <= 0 or count <= 0:
        return "-- MiB/s"
    return f"{count / MiB / elapsed:.0f} MiB/s"


def _pair(done: int, total: int) -> str:
    unit, scale = ("GiB", 1024 * MiB) if total >= 10 * 1024 * MiB else ("MiB", MiB)
    digits = 1 if total / scale < 100 else 0
    return f"{done / scale:.{digits}f}/{total / scale:.{digits}f} {unit}"


def _bytes(count: int) -> str:
    return f"{count / (1024 * MiB):.1f} GiB" if count >= 10 * 1024 * MiB else f"{count / MiB:.1f} MiB"


def _clock(seconds: float) -> str:
    whole = int(seconds + 0.5)
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def _duration(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 60 else _clock(seconds)
