"""Validators for the few strings that come from users and callers.

Qube names follow qubesd's own rule; session ids are Wyng's `YYYYMMDD-HHMMSS`.
Every name that ends up in a Wyng command line or a file path passes through
here first, so nothing that starts with `-` or contains `/` ever gets there.
"""

from __future__ import annotations

import re

from wyngq.errors import UsageError
from wyngq.wyng.sessions import has_session_form

_QUBE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,30}")
_RESERVED = frozenset({"none", "default", "dom0"})
LATEST = "latest"


def is_qube_name(name: str) -> bool:
    """Return True if `name` is a name qubesd would accept for a new qube."""
    return (
        _QUBE_NAME.fullmatch(name) is not None
        and name not in _RESERVED
        and not name.endswith("-dm")
        and name not in (".", "..")
    )


def qube_name(name: str) -> str:
    """Return `name` if it is a valid qube name, else raise UsageError."""
    if not is_qube_name(name):
        raise UsageError(
            f"invalid qube name {name!r}",
            hint="qube names start with a letter, use only letters, digits, '_', '.', '-', "
            "are at most 31 characters, and are not dom0, none, default or *-dm",
        )
    return name


def is_session_id(text: str) -> bool:
    """Return True if `text` is a Wyng session id naming a possible time."""
    if not has_session_form(text):
        return False
    date, time = text[:8], text[9:]
    month, day = int(date[4:6]), int(date[6:8])
    hour, minute, second = int(time[0:2]), int(time[2:4]), int(time[4:6])
    return 1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and second < 61


def session_id(text: str) -> str:
    """Return `text` if it is a Wyng session id (YYYYMMDD-HHMMSS), else raise UsageError."""
    if not is_session_id(text):
        raise UsageError(f"invalid session id {text!r}", hint="use the form YYYYMMDD-HHMMSS, as `list` shows")
    return text


def session_selector(text: str) -> str:
    """A session id or the word `latest`."""
    return LATEST if text == LATEST else session_id(text)
