"""Which session each qube comes from, when the request names no session (pure).

`restore --all` restores every qube the archive holds, and named qubes without
`--session` come each from its own newest session holding it; with `--as-of`
the newest at or before that session. Only sessions that hold the settings
bundle count (listing.py). Qubes with data are placed from the catalogue
alone; disposables have no data and are found in the settings bundles:
`bundles_to_read` says which bundles to fetch, `place_disposables` places
them once those are read.

For `--all`, disposables come from the bundles of the sessions the restore
reads anyway (the newest session of each qube with data): a named disposable
backed up only in an older session is restored by naming it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from wyngq.errors import UsageError
from wyngq.model import QubeClass, QubeSettings
from wyngq.restore.model import RestoreRequest

Index = Mapping[str, Mapping[str, Mapping[str, str]]]  # qube -> session -> kind -> archive volume


def check_request(request: RestoreRequest) -> None:
    """Refuse combinations that do not say one thing."""
    if request.all and request.qubes:
        raise UsageError("--all restores every qube: do not name qubes with it",
                         hint="drop the names (use --exclude to leave some out), or drop --all")
    if request.all and request.session:
        raise UsageError("--all takes each qube from its own newest session: it cannot be combined with --session",
                         hint="use --as-of=SESSION to restore the machine as it was at that session")
    if request.as_of and request.session:
        raise UsageError("--as-of and --session both choose the session: give one of them",
                         hint="--session: every qube from that one session; --as-of: each from its newest up to it")
    if not (request.all or request.qubes or request.session):
        raise UsageError("name the qubes to restore, or give --all or --session",
                         hint="`list` shows what the archive holds")
    if "dom0" in request.qubes:
        raise UsageError("dom0 is never restored by wyng-util-qubes", hint="leave dom0 out of the list")


def eligible(sessions: Sequence[str], as_of: str | None) -> list[str]:
    """The sessions at or before `as_of` (all without it), oldest first."""
    return sorted(s for s in sessions if as_of is None or s <= as_of)


def place_with_data(index: Index, bundle_sessions: Sequence[str], request: RestoreRequest) -> dict[str, str]:
    """qube -> its newest session (at or before --as-of) for the qubes with data
    the request means: every one for --all (less --exclude), else the named
    ones that have data. Raise UsageError when nothing is left."""
    allowed = set(eligible(bundle_sessions, request.as_of))
    if not allowed:
        when = f" at or before {request.as_of}" if request.as_of else ""
        raise UsageError(f"the archive holds no Qubes backup session{when}", hint="`list --all` shows the sessions")
    names = sorted(index) if request.all else [q for q in request.qubes if q in index]
    placed: dict[str, str] = {}
    for name in names:
        if name == "dom0" or name in request.exclude or not _within(request, name):
            continue
        held = [s for s in index[name] if s in allowed]
        if held:
            placed[name] = max(held)
        elif not request.all:
            raise UsageError(f"no backup of {name} at or before {request.as_of}",
                             hint=f"`list {name}` shows its sessions")
    return placed


def bundles_to_read(placed: Mapping[str, str], bundle_sessions: Sequence[str], request: RestoreRequest,
                    read: Collection[str] = ()) -> list[str]:
    """The bundles to fetch next, newest first: those of the sessions qubes were
    placed in; then, while a named qube without data is not found, the other
    sessions (at or before --as-of) one by one, newest first."""
    wanted = sorted(set(placed.values()) - set(read), reverse=True)
    if wanted:
        return wanted
    unfound = [q for q in request.qubes if q not in placed and q not in request.exclude]
    if request.all or not unfound:
        return []
    rest = [s for s in reversed(eligible(bundle_sessions, request.as_of)) if s not in read]
    return rest[:1]


def place_disposables(
    placed: Mapping[str, str], bundles: Mapping[str, Mapping[str, QubeSettings]], request: RestoreRequest
) -> dict[str, str]:
    """Add the disposables (no data) the request means, each from the newest
    read bundle that holds it: every one for --all, the named ones otherwise."""
    result = dict(placed)
    for session in sorted(bundles, reverse=True):
        for name, settings in bundles[session].items():
            if name in result or name in request.exclude or settings.klass is not QubeClass.DISP:
                continue
            if not _within(request, name):
                continue
            if request.all or name in request.qubes:
                result[name] = session
    return result


def _within(request: RestoreRequest, name: str) -> bool:
    return not request.all or request.within is None or request.within(name)


@dataclass(frozen=True)
class Placement:
    """Each qube's session, and the qubes left out because their session's
    bundle does not describe them (with --all: a warning, not a refusal)."""

    sessions: Mapping[str, str]
    left_out: tuple[str, ...] = ()


def finish_placement(
    placed: Mapping[str, str], bundles: Mapping[str, Mapping[str, QubeSettings]], request: RestoreRequest
) -> Placement:
    """Check every placed qube against its bundle; raise UsageError for named
    qubes that cannot be restored, and when nothing is left."""
    unfound = sorted(q for q in request.qubes if q not in placed and q not in request.exclude)
    if unfound:
        raise UsageError("no backups of: " + ", ".join(unfound), hint="`list` shows every qube in the archive")
    sessions: dict[str, str] = {}
    left_out = []
    for name, session in sorted(placed.items()):
        settings = bundles.get(session, {}).get(name)
        if settings is None:
            if not request.all:
                raise UsageError(f"session {session} holds data of {name} but not its settings",
                                 hint="choose another session with --session")
            left_out.append(name)
        elif settings.klass is not QubeClass.ADMIN:
            sessions[name] = session
    if not sessions:
        raise UsageError("nothing to restore", hint="`list` shows what the archive holds; drop some --exclude")
    unused = sorted(old for old, _ in request.renames if old not in sessions)
    if unused:
        raise UsageError(f"--rename names qubes this restore does not restore: {', '.join(unused)}",
                         hint="rename only qubes that are restored")
    return Placement(sessions, tuple(left_out))
