"""What Wyng prints while it works, read line by line.

Wyng opens each volume's part of a send with `Volume 'NAME'`, of a receive with
`Receiving volume 'NAME'` and of a verify with `Verifying volume 'NAME'`, then
draws its progress: either `NN.N%` (receive, verify, a send on a terminal) or,
unattended, a bar of 20 cells filled one `|` per 5 % (docs/facts.md). A send
names its session first: `Sending backup session YYYYMMDD-HHMMSS:`.
Every function here takes one line (or a fragment of one) and never raises.
"""

from __future__ import annotations

import re

from wyngq.wyng.sessions import PATTERN as SESSION_PATTERN

BAR_CELL = 5  # percent per cell of the unattended progress bar

_VOLUME_HEADER = re.compile(r"^(?P<verb>Volume|Receiving volume|Verifying volume) '(?P<name>[^']+)'")
_SENDING = re.compile(rf"^Sending backup session (?P<session>{SESSION_PATTERN}):")
_PERCENT = re.compile(r"(?P<pct>\d{1,3}(?:\.\d)?)%")
_BAR = re.compile(r"\[(?P<bar>[|.]*)")


def volume_header(line: str) -> str | None:
    """The volume a send, receive or verify starts on at this line, or None."""
    match = _VOLUME_HEADER.match(line.strip())
    return match["name"] if match else None


def sending_volume(line: str) -> str | None:
    """The volume a send starts on at this line (`Volume 'NAME'`), or None."""
    return _header(line, "Volume")


def receiving_volume(line: str) -> str | None:
    """The volume a receive starts on at this line (`Receiving volume 'NAME'`), or None."""
    return _header(line, "Receiving volume")


def verifying_volume(line: str) -> str | None:
    """The volume a verify starts on at this line (`Verifying volume 'NAME'`), or None."""
    return _header(line, "Verifying volume")


def sending_session(line: str) -> str | None:
    """The session a send says it writes at this line, or None."""
    match = _SENDING.match(line.strip())
    return match["session"] if match else None


def percent(text: str) -> int | None:
    """The progress a line (or the part of one drawn so far) shows, in whole
    percent: the last `NN.N%`, else the cells of the bar; None if it shows none."""
    found = _PERCENT.findall(text)
    if found:
        return int(float(found[-1]))
    bar = _BAR.search(text)
    if bar and bar["bar"]:
        return bar["bar"].count("|") * BAR_CELL
    return None


def sent_volumes(stdout: str) -> tuple[str | None, set[str]]:
    """From `wyng send` output: the session it wrote (None if it names none, or
    more than one), and the volumes it finished (a full progress bar, or
    `no change` with --send-unchanged)."""
    session: str | None = None
    finished: set[str] = set()
    current: str | None = None
    for line in stdout.replace("\r", "\n").splitlines():
        text = line.strip()
        if (named := sending_session(text)) is not None:
            session = named if session in (None, named) else "?"
        elif (volume := sending_volume(text)) is not None:
            current = volume
        elif current is not None and ("100%" in text or text == "no change"):
            finished.add(current)
            current = None
    return (session if session != "?" else None), finished


def _header(line: str, verb: str) -> str | None:
    match = _VOLUME_HEADER.match(line.strip())
    return match["name"] if match and match["verb"] == verb else None
