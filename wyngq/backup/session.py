"""The session a send makes: its id, a send that starts in a new second, and
afterwards which session Wyng made and which planned volumes it holds.

Wyng can exit 0 without doing the work (a missing volume file is only warned
about), so every planned volume must be accounted for, from Wyng's output when
that is proof enough, else from its catalogue.
"""

from __future__ import annotations

import time
from collections.abc import Collection

from wyngq import volnames
from wyngq.backup.model import BackupPlan
from wyngq.errors import WyngError
from wyngq.wyng.catalog import Archive
from wyngq.wyng.runner import Wyng
from wyngq.wyng.sessions import session_id_now
from wyngq.wyng.text import sent_volumes

__all__ = ["confirm_session", "new_session", "sent_volumes", "session_id_now", "wait_for_new_second"]


def new_session(before: Collection[str], after: Archive, not_before: str = "") -> str | None:
    """The session the send just made: the newest one holding the settings bundle
    that was not among the archive's sessions `before`, and not older than the
    send (`not_before`, a session id: another writer's session never counts)."""
    old = set(before)
    meta = after.volumes.get(volnames.METADATA_VOLUME)
    candidates = sorted(s for s in set(meta.sessions) - old if s >= not_before) if meta is not None else []
    return candidates[-1] if candidates else None


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
