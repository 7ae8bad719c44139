"""SaltStack states for wyng-util-qubes in dom0, over the ``wyngq`` execution module.

Installed as ``/srv/salt/_states/wyngq.py``. Example (``/srv/salt/backup.sls``,
applied with ``sudo qubesctl state.apply backup``)::

    nightly-backup:
      wyngq.backed_up:
        - profile: laptop
        - max_age: 1d

    vault-present:
      wyngq.restored:
        - profile: laptop
        - qubes: [vault]

``backed_up`` is idempotent: it backs up only the qubes with no session in the
profile's archive younger than ``max_age`` (docs/salt.md), and reports no
changes when there are none. With ``test=True`` it changes nothing, anywhere,
and returns the dry-run plan as ``changes`` with ``result: None``. A failure is
``result: False`` with the command's error code and message. ``restored``
(with its default ``on_conflict: skip``) restores only the qubes that are
missing; when every named qube is present it answers from the catalogue.
dom0's home and configuration go along with a backup when the profile's
``[dom0]`` table says so (``changes``: ``dom0``); restoring them is a dom0
command of its own (docs/dom0.md), not a state.
"""

from __future__ import annotations

from typing import Any

__virtualname__ = "wyngq"

# Filled in by Salt's loader (the tests inject them).
__salt__: dict[str, Any] = {}
__opts__: dict[str, Any] = {}


def __virtual__() -> str | tuple[bool, str]:
    if "wyngq.backup" not in __salt__:
        return False, "the wyngq execution module is not loaded (saltutil.sync_all)"
    return __virtualname__


def backed_up(
    name: str,
    profile: str | None = None,
    max_age: int | float | str = "1d",
    qubes: list[str] | str | None = None,
    exclude: list[str] | str | None = None,
) -> dict[str, Any]:
    """Every qube of the profile (``profile``, default ``name``), or only those in
    ``qubes``, has a session in the profile's archive younger than ``max_age``
    (seconds, or e.g. ``12h``, ``1d``, ``1w``); qubes in ``exclude`` are left out.

    Changes: ``session`` (the new Wyng session) and ``qubes``: for each qube
    backed up, ``old`` (its previous backup time, or None) and ``new`` (the
    session). In test mode: ``would_back_up``, each qube with its previous
    backup time and the volumes the dry run would send (one dry run answers
    both questions: what is due, and what its backup would do).
    """
    profile = profile or name
    ret: dict[str, Any] = {"name": name, "changes": {}, "result": False, "comment": ""}
    found = __salt__["wyngq.due"](profile, max_age=max_age, qubes=qubes, exclude=exclude)
    if not found.get("ok") and "schedule" not in found:  # a dry run that found failing qubes still tells
        ret["comment"] = _error("cannot tell which qubes are due", found)
        return ret
    entries = {e["name"]: e for e in found.get("schedule", [])}
    due = [n for n in found.get("due", []) if n in entries]
    if not due:
        ret["result"] = True
        ret["comment"] = (
            f"All {len(entries)} qube(s) of profile {profile!r} have a session in its archive within {max_age}: "
            + (", ".join(sorted(entries)) or "(none selected)")
        )
        return ret

    if __opts__.get("test"):
        planned = {q["name"]: q for q in found.get("qubes", [])}
        failing = [f"{n} ({planned[n].get('error')})" for n in due if n in planned and not planned[n].get("ok")]
        if failing:
            ret["comment"] = "the dry run found qubes that would fail: " + ", ".join(failing)
            return ret
        ret["result"] = None
        ret["changes"] = {
            "would_back_up": {
                n: {"last_backup": entries[n].get("last_backup"), "volumes": planned.get(n, {}).get("volumes", [])}
                for n in due
            }
        }
        ret["changes"].update(_dom0_changes(found, "would_back_up_dom0"))
        ret["comment"] = f"Would back up {len(due)} qube(s) of profile {profile!r}: {', '.join(due)}"
        return ret

    done = __salt__["wyngq.backup"](profile, qubes=due)
    succeeded = [q["name"] for q in done.get("qubes", []) if q.get("ok")]
    if succeeded and done.get("session"):
        ret["changes"] = {
            "session": done["session"],
            "qubes": {n: {"old": entries[n]["last_backup"] if n in entries else None, "new": done["session"]}
                      for n in succeeded},
        }
        ret["changes"].update(_dom0_changes(done, "dom0"))
    if done.get("ok"):
        ret["result"] = True
        ret["comment"] = f"Backed up {len(succeeded)} qube(s) of profile {profile!r} in session {done.get('session')}"
        warnings = done.get("warnings") or []
        if warnings:
            ret["comment"] += "; warnings: " + "; ".join(warnings)
        return ret
    failed = [f"{q['name']} ({q.get('error')})" for q in done.get("qubes", []) if not q.get("ok")]
    ret["comment"] = _error("backup failed", done) + (f"; not backed up: {', '.join(failed)}" if failed else "")
    return ret


def _dom0_changes(result: dict[str, Any], key: str) -> dict[str, Any]:
    """dom0's home / configuration in the backup, as the profile's [dom0] table
    asks for them (the command reads the profile: the state passes no dom0 option)."""
    items = {d["item"]: {"volume": d.get("volume"), "bytes": d.get("bytes"), "ok": d.get("ok")}
             for d in result.get("dom0") or [] if isinstance(d, dict) and "item" in d}
    return {key: items} if items else {}


# Results that carry per-qube errors rather than a message.
_WITHOUT_MESSAGE = {"partial": "some qubes failed", "wyng": "Wyng failed",
                    "qubes": "the plan has blocking problems; nothing was changed"}


def restored(
    name: str,
    profile: str | None = None,
    qubes: list[str] | str | None = None,
    session: str | None = None,
    on_conflict: str = "skip",
    exclude: list[str] | str | None = None,
    rename: dict[str, str] | None = None,
    pool: str | None = None,
    shutdown: bool = False,
    all: bool = False,
    as_of: str | None = None,
    prefs: bool = False,
) -> dict[str, Any]:
    """The qubes (``qubes``, or with ``all: True`` every qube of the archive)
    exist, each restored from its own newest session (at or before ``as_of``),
    or all from ``session``; with ``prefs: True`` dom0's global preferences are
    those of the newest backup too.

    With the default ``on_conflict: skip`` a qube that already exists is left
    alone, so the state restores only what is missing and then has nothing to
    do; when every named qube exists and the archive holds it, that answer
    comes from ``qvm-ls`` and the archive's catalogue, without a dry-run
    restore. ``replace`` restores over existing qubes on every run (their
    previous data is kept as a volume revision); ``fail`` refuses when one exists.
    The plan comes from ``restore --dry-run`` (Wyng reads the archive's index
    and the session's settings, no data); in test mode it is the result, as
    ``changes.would_restore``. A plan with blocking problems is ``result: False``
    with the problems in the comment, and nothing is changed.
    """
    profile = profile or name
    ret: dict[str, Any] = {"name": name, "changes": {}, "result": False, "comment": ""}
    if on_conflict == "skip" and not rename:
        present = _all_present(profile, [n for n in _names(qubes) if n not in set(_names(exclude))])
        if present is not None:
            ret["result"] = True
            ret["comment"] = f"Nothing to restore: present already: {present}"
            return ret
    options = {"qubes": qubes, "session": session, "on_conflict": on_conflict, "exclude": exclude,
               "rename": rename, "pool": pool, "shutdown": shutdown}
    options |= {k: v for k, v in (("all", all), ("as_of", as_of), ("prefs", prefs)) if v}
    plan = __salt__["wyngq.restore"](profile, test=True, **options)
    if not plan.get("ok"):
        ret["comment"] = _error("the restore plan failed", plan) + _problems(plan)
        return ret
    todo = [q for q in plan.get("qubes", []) if q.get("action") != "skip"]
    prefs_todo = (plan.get("prefs") or {}).get("changes", [])
    if not todo and not prefs_todo:
        skipped = ", ".join(q.get("target", q.get("name", "?")) for q in plan.get("qubes", []))
        ret["result"] = True
        ret["comment"] = f"Nothing to restore from session {plan.get('session')}: present already: {skipped or '-'}"
        return ret

    if __opts__.get("test"):
        ret["result"] = None
        ret["changes"] = {"session": plan.get("session"), "sessions": plan.get("sessions"), "would_restore": {
            q["target"]: {"from": q.get("name"), "session": q.get("session"), "action": q.get("action"),
                          "volumes": [v.get("archive") for v in q.get("volumes", [])],
                          "changes": [c for step in plan.get("steps", []) if step.get("qube") == q["target"]
                                      for c in step.get("changes", [])]}
            for q in todo
        }}
        if prefs_todo:
            ret["changes"]["would_set_prefs"] = {c["key"]: {"old": c.get("old"), "new": c.get("new")}
                                                 for c in prefs_todo}
        ret["comment"] = f"Would restore {len(todo)} qube(s) from session {plan.get('session')}: " + ", ".join(
            f"{q['target']} ({q.get('action')})" for q in todo)
        return ret

    # the sessions the plan chose, whatever is backed up meanwhile
    pinned = {"session": plan.get("session")} if session else {"as_of": plan.get("session")}
    done = __salt__["wyngq.restore"](profile, **{**options, **pinned})
    restored_qubes = {q["target"]: q for q in done.get("qubes", []) if q.get("ok") and q.get("action") != "skip"}
    prefs_set = [c for c in (done.get("prefs") or {}).get("changes", []) if c.get("ok")]
    if restored_qubes or prefs_set:
        ret["changes"] = {"session": done.get("session"), "qubes": {
            target: {"action": q.get("action"), "session": q.get("session"), "revisions": q.get("revisions") or []}
            for target, q in restored_qubes.items()
        }}
        if prefs_set:
            ret["changes"]["prefs"] = {c["key"]: {"old": c.get("old"), "new": c.get("new")} for c in prefs_set}
    if done.get("ok"):
        ret["result"] = True
        ret["comment"] = f"Restored {len(restored_qubes)} qube(s) from session {done.get('session')}: " + ", ".join(
            restored_qubes)
        return ret
    failed = [f"{q.get('target')} at {q.get('failed_step')} ({q.get('error')}; {q.get('hint')})"
              for q in done.get("qubes", []) if q.get("ok") is False]
    ret["comment"] = _error("restore failed", done) + _problems(done) + (
        f"; not restored: {', '.join(failed)}" if failed else "")
    return ret


def _all_present(profile: str, names: list[str]) -> str | None:
    """When every named qube exists and the archive holds it, the comment saying so
    (one qvm-ls and the archive's catalogue, instead of a dry-run restore that also
    reads the session's settings); else None: the full plan decides."""
    if not names or "wyngq.present" not in __salt__ or "wyngq.list" not in __salt__:
        return None
    found = __salt__["wyngq.present"](names)
    if not found.get("ok") or found.get("missing"):
        return None
    listed = __salt__["wyngq.list"](profile, qubes=names)
    held = listed.get("qubes") if listed.get("ok") else None
    if not isinstance(held, dict) or any(not held.get(n) for n in names):
        return None
    return ", ".join(f"{n} (newest session {max(held[n])})" for n in names)


def _problems(result: dict[str, Any]) -> str:
    """The blocking problems of a refused restore plan, for the comment."""
    found = [f"{q.get('target')}: {p.get('message')} ({p.get('resolution')})"
             for q in result.get("qubes", []) for p in q.get("problems", []) if p.get("blocking")]
    return f"; blocking: {'; '.join(found)}" if found else ""


def _error(what: str, result: dict[str, Any]) -> str:
    """One line naming the code, exit status, message and hint of a failed result."""
    code = result.get("code", "internal")
    text = f"{what}: [{code}, exit {result.get('exit_code')}]"
    text += f" {result.get('message') or _WITHOUT_MESSAGE.get(code, 'no message')}"
    if result.get("hint"):
        text += f" ({result['hint']})"
    return text


def _names(value: list[str] | str | None) -> list[str]:
    if not value:
        return []
    items = value.split(",") if isinstance(value, str) else value
    return [str(item).strip() for item in items]
