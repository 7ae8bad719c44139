"""dom0's items as an archive holds them: which sessions have them, how large.

A session holds a dom0 item when its pseudo-volume and the settings bundle are
both in it (every session wyngq writes with dom0 items has both).
"""

from __future__ import annotations

from collections.abc import Sequence

from wyngq import volnames
from wyngq.dom0 import VOLUMES
from wyngq.errors import UsageError
from wyngq.listing import Dom0Item
from wyngq.names import LATEST
from wyngq.wyng.catalog import Archive


def session_items(archive: Archive, session: str) -> tuple[Dom0Item, ...]:
    """The dom0 items `session` holds, home first."""
    meta = archive.volumes.get(volnames.METADATA_VOLUME)
    if meta is None or session not in meta.sessions:
        return ()
    items = []
    for item, name in VOLUMES.items():
        volume = archive.volumes.get(name)
        if volume is not None and session in volume.sessions:
            items.append(Dom0Item(item, name, volume.sessions[session].volsize))
    return tuple(items)


def pick_session(archive: Archive, items: Sequence[str], requested: str | None, *, as_of: str | None = None) -> str:
    """The session asked for (it must hold every item), or the newest holding
    them all (at or before `as_of`, when given); raise UsageError if there is none."""
    holding = sorted(s for s in archive.sessions() if {i.item for i in session_items(archive, s)} >= set(items))
    what = " and ".join(f"dom0 {item}" for item in items)
    if as_of is not None and requested in (None, LATEST):
        holding = [s for s in holding if s <= as_of]
        if not holding:
            raise UsageError(f"no session at or before {as_of} holds {what}",
                             hint="`list --all` shows which sessions hold dom0 items")
    if requested not in (None, LATEST):
        if requested not in holding:
            raise UsageError(f"session {requested} holds no {what}",
                             hint="`list --session=ID` shows what a session holds")
        return str(requested)
    if not holding:
        raise UsageError(f"the archive holds no {what}", hint="back it up with `backup --dom0-home` / `--dom0-config`")
    return holding[-1]
