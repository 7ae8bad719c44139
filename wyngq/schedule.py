"""Which qubes are due for a backup into one archive (pure).

A qube is due when it has no session in this archive younger than the maximum
age. The sessions come from wyngq's archive record (wyngq.wyng.known), rebuilt
from the catalogue when it is missing, never from a qube's backup_timestamp:
a backup into any archive sets that one, so a qube backed up into archive A an
hour ago would not be due for a new archive B, and a restored qube would be due
at once. A disposable qube (settings only) is never due alone: it goes along
whenever a qube with data is due.
"""

from __future__ import annotations

import re
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from wyngq.errors import UsageError
from wyngq.wyng.sessions import session_time

__all__ = ["QubeDue", "due_qubes", "parse_age", "session_time"]

_AGE = re.compile(r"(\d+(?:\.\d+)?)([smhdw]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


@dataclass(frozen=True)
class QubeDue:
    name: str
    last_session: str | None  # its newest session in this archive
    last_backup: str | None  # that session's time, local, "YYYY-MM-DD HH:MM:SS +ZZZZ"
    age: int | None  # seconds since then
    due: bool


def parse_age(text: str) -> int:
    """Seconds in `text`: a number of seconds or a duration such as 90m, 12h, 1d,
    1w2d. Raise UsageError for anything else."""
    spelled = text.strip().lower()
    parts = _AGE.findall(spelled)
    if not spelled or _AGE.sub("", spelled) or not parts:
        raise UsageError(f"invalid age {text!r}", hint="give seconds or a duration such as 12h, 1d, 1w")
    return int(sum(float(number) * _UNITS[unit] for number, unit in parts))


def due_qubes(
    names: Sequence[str],
    settings_only: Collection[str],
    last: Mapping[str, str],
    max_age: int,
    now: float,
) -> tuple[QubeDue, ...]:
    """One entry per selected qube, in the order given: its last session in the
    archive and whether it is due (no session, or one at least `max_age` old).
    Disposable qubes (`settings_only`) are due exactly when a qube with data is."""
    entries: list[QubeDue] = []
    for name in names:
        session = last.get(name)
        stamp = session_time(session) if session else None
        age = None if stamp is None else max(0, int(now - stamp))
        shown = None if stamp is None else time.strftime("%Y-%m-%d %H:%M:%S %z", time.localtime(stamp))
        entries.append(QubeDue(name, session, shown, age, age is None or age >= max_age))
    data_due = any(e.due for e in entries if e.name not in settings_only)
    return tuple(
        QubeDue(e.name, e.last_session, e.last_backup, e.age, data_due) if e.name in settings_only else e
        for e in entries
    )
