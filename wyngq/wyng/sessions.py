"""Wyng's session ids: `YYYYMMDD-HHMMSS`, the local time a session was started,
by the second. The one place the form is spelled; validators with range checks
for what users type are in wyngq.names."""

from __future__ import annotations

import re
import time

PATTERN = r"\d{8}-\d{6}"  # for regexes that embed a session id
SESSION_ID = re.compile(PATTERN)
TIME_FORMAT = "%Y%m%d-%H%M%S"


def has_session_form(text: str) -> bool:
    """Whether `text` has the form of a session id (digits only; no range checks)."""
    return SESSION_ID.fullmatch(text) is not None


def session_id_now(now: float | None = None) -> str:
    """The id Wyng gives a session started at `now` (default: this second), local time."""
    return time.strftime(TIME_FORMAT, time.localtime(now))


def session_time(session: str) -> float | None:
    """The local time a session id names (Wyng's local clock), or None if it names none."""
    if not has_session_form(session):
        return None
    try:
        return time.mktime(time.strptime(session, TIME_FORMAT))
    except (ValueError, OverflowError):
        return None
