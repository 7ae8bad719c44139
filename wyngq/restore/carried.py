"""Which sessions' settings bundles a whole-archive restore need not receive (pure).

The newest bundle's manifest carries the entries of qubes backed up in earlier
sessions, each marked with its session (wyngq.carry). A session's bundle is
not received when the newest bundle tells all a restore would read from it:

- every qube placed in that session (its newest, from the catalogue) has an
  entry in the newest bundle marked with exactly that session; a qube whose
  newest session is another (a prune merged it, the entry is older, missing,
  or the newest bundle was written by upstream, without a manifest) makes
  that session's bundle received as before;
- no disposable (no data, so the catalogue cannot place it) could come from
  it: a disposable's entry is its newest in the chain of bundles wyngq wrote;
  when that session is not one the restore reads, an older session might
  hold the disposable too, and the bundles older than it are received.

Only `--all` uses this; named qubes read their sessions' bundles as before.
The entries used are those the session's own bundle holds (copied forward
unchanged), so the restore is the same as with every bundle received.
"""

from __future__ import annotations

from collections.abc import Mapping

from wyngq.bundle import Manifest
from wyngq.model import QubeClass, QubeSettings
from wyngq.restore.model import RestoreRequest
from wyngq.restore.settings import SessionSettings


def covered_sessions(
    newest: str, manifest: Manifest | None, placed: Mapping[str, str], request: RestoreRequest
) -> dict[str, SessionSettings]:
    """The sessions (other than `newest`, whose bundle's `manifest` this is) that
    qubes are `placed` in and whose bundle need not be received, each with the
    entries `manifest` holds of it."""
    if not request.all or manifest is None:
        return {}
    qubes: dict[str, dict[str, QubeSettings]] = {}
    odd: dict[str, dict[str, str]] = {}
    for name, (session, settings) in manifest.carried.items():
        qubes.setdefault(session, {})[name] = settings
    for name, (session, klass) in manifest.carried_unsupported.items():
        odd.setdefault(session, {})[name] = klass
    read = set(placed.values())
    covered = {
        session for session in read - {newest}
        if all(name in qubes.get(session, {}) or name in odd.get(session, {})
               for name, where in placed.items() if where == session)
    }
    disposables = [(session, s) for session, s in manifest.carried.values()]
    disposables += [(newest, s) for s in manifest.qubes.values()]
    for session, settings in disposables:
        if settings.klass is QubeClass.DISP and session not in read:
            covered = {c for c in covered if c > session}
    return {s: SessionSettings(dict(qubes.get(s, {})), "manifest", dict(odd.get(s, {}))) for s in sorted(covered)}
