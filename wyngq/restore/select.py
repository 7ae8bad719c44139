"""With `--session`: which session, and which of its qubes, a restore means (pure).

A session counts only when it also holds the settings bundle (listing.py), so
data and settings always come from the same backup.
"""

from __future__ import annotations

from collections.abc import Sequence

from wyngq.errors import UnsupportedQubeError, UsageError
from wyngq.model import QubeClass
from wyngq.names import LATEST
from wyngq.restore.model import RestoreRequest, SessionData


def choose_session(bundle_sessions: Sequence[str], request: RestoreRequest) -> str:
    """Given the sessions holding a settings bundle and a request that names its
    session (`--session`: an id, or `latest`), return that session. Without one,
    each qube comes from its own newest session (restore.sessions). Raise
    UsageError when there is none."""
    sessions = sorted(bundle_sessions)
    if request.session and request.session != LATEST:
        if request.session not in sessions:
            raise UsageError(f"no Qubes backup session {request.session} in the archive",
                             hint="`list --all` shows the sessions")
        return request.session
    if not sessions:
        raise UsageError("the archive holds no Qubes backup session", hint="back up first")
    return sessions[-1]


def select_qubes(data: SessionData, request: RestoreRequest) -> tuple[str, ...]:
    """Return the names (as in the backup) to restore from this session, sorted.

    Named qubes must be in the session: settings in its bundle, and their data
    unless they are disposables. With no names: every qube with data in the
    session, plus disposables when asked. dom0 is never restored."""
    settings = data.settings
    if "dom0" in request.qubes:
        raise UsageError("dom0 is never restored by wyng-util-qubes", hint="leave dom0 out of the list")
    refuse_unsupported(data, request.qubes)
    if request.qubes:
        missing = [q for q in request.qubes if q not in settings or (_has_data(data, q) is False)]
        if missing:
            raise UsageError(
                f"not in session {data.session}: " + ", ".join(sorted(missing)),
                hint=f"`list --session={data.session}` shows what it holds",
            )
        chosen = set(request.qubes)
    else:
        chosen = {
            name for name, s in settings.items()
            if name in data.volumes or (s.klass is QubeClass.DISP and request.include_disposable)
        }
    chosen -= set(request.exclude)
    chosen = {q for q in chosen if q != "dom0" and settings[q].klass is not QubeClass.ADMIN}
    if not chosen:
        raise UsageError(f"nothing to restore from session {data.session}",
                         hint="name qubes that the session holds, or drop some --exclude")
    unused = sorted(old for old, _ in request.renames if old not in chosen)
    if unused:
        raise UsageError(f"--rename names qubes this restore does not restore: {', '.join(unused)}",
                         hint="rename only qubes that are restored")
    return tuple(sorted(chosen))


def refuse_unsupported(data: SessionData, names: Sequence[str]) -> None:
    """Raise UnsupportedQubeError, naming each, when `names` holds qubes of a class
    wyngq does not restore (RemoteVM, AdminVM, or a class it does not know)."""
    found = {n: data.unsupported[n] for n in names if n in data.unsupported}
    found |= {n: QubeClass.ADMIN.value for n in names if n in data.settings and
              data.settings[n].klass is QubeClass.ADMIN}
    if found:
        listed = ", ".join(f"{name} ({klass})" for name, klass in sorted(found.items()))
        raise UnsupportedQubeError(f"session {data.session} holds qubes of a class wyng-util-qubes does not "
                                   f"restore: {listed}", hint="leave them out of the list")


def _has_data(data: SessionData, name: str) -> bool | None:
    """Whether a qube that should have data has it in the session (None: it has none to have)."""
    if not data.settings[name].klass.backed_up_volumes:
        return None
    return name in data.volumes
