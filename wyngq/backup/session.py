"""The session a send makes: its id, a send that starts in a new second, and
afterwards which session Wyng made and which planned volumes it holds.

Wyng can exit 0 without doing the work (a missing volume file is only warned
about), so every planned volume must be accounted for, from Wyng's output when
that is proof enough, else from its catalogue.
"""

from __future__ import annotations

import re
import time
from collections.abc import Collection

from wyngq import volnames
from wyngq.backup.model import BackupPlan
from wyngq.errors import WyngError
from wyngq.wyng.catalog import Archive
from wyngq.wyng.runner import Wyng


def new_session(before: Collection[str], after: Archive, not_before: str = "") -> str | None:
    """The session the send just made: the newest one holding the settings bundle
    that was not among the archive's sessions `before`, and not older than the
    send (`not_before`, a session id: another writer's session never counts)."""
    old = set(before)
    meta = after.volumes.get(volnames.METADATA_VOLUME)
    candidates = sorted(s for s in set(meta.sessions) - old if s >= not_before) if meta is not None else []
    return candidates[-1] if candidates else None


def session_id_now(now: float | None = None) -> str:
    """The id Wyng gives a session started at `now` (local time, by the second)."""
    return time.strftime("%Y%m%d-%H%M%S", time.localtime(now))


def sent_volumes(stdout: str) -> tuple[str | None, set[str]]:
    """From `wyng send` output: the session it wrote, and the volumes it finished
    (a full progress bar, or `no change` with --send-unchanged)."""
    session: str | None = None
    finished: set[str] = set()
    current: str | None = None
    for line in stdout.replace("\r", "\n").splitlines():
        text = line.strip()
        if match := _SENDING.match(text):
            session = match["session"] if session in (None, match["session"]) else "?"
        elif match := _VOLUME_HEADER.match(text):
            current = match["name"]
        elif current is not None and ("100%" in text or text == "no change"):
            finished.add(current)
            current = None
    return (session if session != "?" else None), finished


_SENDING = re.compile(r"^Sending backup session (?P<session>\d{8}-\d{6}):")
_VOLUME_HEADER = re.compile(r"^Volume '(?P<name>[^']+)'")


def confirm_session(
    wyng: Wyng, before: Collection[str], plan: BackupPlan, stdout: str, started: str = "",
    extra: Collection[str] = (),
) -> tuple[str, dict[str, list[str]]]:
    """The new session and the planned volumes missing from it.

    Wyng can exit 0 without doing the work (a missing volume file is only
    warned about), so every planned volume must be accounted for. Its output
    says which volumes it finished; when that names them all, one session id
    and nothing else, that is proof enough. On any doubt the archive is listed
    again and the session read from Wyng's catalogue (one more Wyng call).
    """
    session, finished = sent_volumes(stdout)
    expected = {v.local_name for v in plan.volumes} | {volnames.METADATA_VOLUME} | set(extra)
    if session is not None and expected <= finished and session not in before:
        return session, {}
    after = wyng.catalog()
    confirmed = new_session(before, after, not_before=started)
    if confirmed is None:
        raise WyngError("Wyng reported success but recorded no new session", hint="run `list` and check the archive")
    return confirmed, _missing_volumes(plan, after, confirmed, extra)


def _missing_volumes(plan: BackupPlan, after: Archive, session: str,
                     extra: Collection[str] = ()) -> dict[str, list[str]]:
    """Planned volumes not in `session`, by qube; `extra` volumes by their own name."""
    missing: dict[str, list[str]] = {}
    owned = [(vol.qube, vol.local_name) for vol in plan.volumes] + [(name, name) for name in extra]
    for owner, name in owned:
        entry = after.volumes.get(name)
        if entry is None or session not in entry.sessions:
            missing.setdefault(owner, []).append(name)
    return missing


def wait_for_new_second(newest: str | None) -> None:
    """Wyng names sessions by the second and refuses a duplicate: never start a
    send in the same second as the archive's newest session."""
    while newest is not None and session_id_now() == newest:
        time.sleep(0.05)
