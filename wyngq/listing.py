"""What an archive holds, in qubes and sessions rather than Wyng volumes.

A session counts for a qube when it holds the qube's volumes AND the settings
bundle (as upstream wyng-util-qubes reads archives): a session without the
bundle was not written by a Qubes backup.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from wyngq import volnames
from wyngq.errors import UsageError

if TYPE_CHECKING:  # a plain `list` reads no bundle and no dom0 item: their modules load with `--session`
    from wyngq.bundle import Bundle
    from wyngq.wyng.catalog import Archive
    from wyngq.wyng.runner import Wyng


@dataclass(frozen=True)
class Dom0Item:
    """A dom0 item as a session holds it (wyngq.dom0.inarchive finds them)."""

    item: str  # "home" | "config"
    volume: str
    size: int  # the stream's length in bytes


@dataclass(frozen=True)
class ArchiveInfo:
    url: str
    updated_at: float
    encrypted: bool | None
    authenticated: bool | None
    wyng_version: str


@dataclass(frozen=True)
class SessionQube:
    name: str
    klass: str | None
    volumes: tuple[str, ...]


@dataclass(frozen=True)
class ListRequest:
    qubes: tuple[str, ...] = ()
    session: str | None = None
    all: bool = False


@dataclass(frozen=True)
class ListResult:
    archive: ArchiveInfo
    qubes: Mapping[str, tuple[str, ...]]
    session: str | None = None
    session_qubes: tuple[SessionQube, ...] = ()
    session_tags: Mapping[str, str] | None = None
    settings_source: str | None = None
    dom0: tuple[Dom0Item, ...] = ()  # the session's dom0 home / config, with --session


def qube_volumes(archive: Archive) -> dict[str, dict[str, dict[str, str]]]:
    """qube -> session -> volume kind -> archive volume name, for sessions that
    also hold the settings bundle."""
    meta = archive.volumes.get(volnames.METADATA_VOLUME)
    with_bundle = set(meta.sessions) if meta is not None else set()
    index: dict[str, dict[str, dict[str, str]]] = {}
    for name, vol in archive.volumes.items():
        parsed = volnames.parse(name)
        if parsed is None:
            continue
        for session in vol.sessions:
            if session in with_bundle:
                index.setdefault(parsed.qube, {}).setdefault(session, {})[parsed.kind] = name
    return index


def newest_session_holding(
    index: Mapping[str, Mapping[str, object]], sessions: Sequence[str], qubes: Sequence[str]
) -> str | None:
    """The newest of `sessions` that holds data of each of `qubes` that has data
    in the archive at all (`index` as qube_volumes gives it), or None."""
    with_data = [q for q in qubes if q in index]
    for session in sorted(sessions, reverse=True):
        if all(session in index[q] for q in with_data):
            return session
    return None


def qube_sessions(archive: Archive) -> dict[str, tuple[str, ...]]:
    """qube -> its sessions, oldest first."""
    return {q: tuple(sorted(s)) for q, s in sorted(qube_volumes(archive).items())}


def archive_info(archive: Archive) -> ArchiveInfo:
    return ArchiveInfo(archive.url, archive.updated_at, archive.encrypted, archive.authenticated, archive.wversion)


def list_archive(wyng: Wyng, request: ListRequest, workdir: str) -> ListResult:
    archive = wyng.catalog()
    sessions = qube_sessions(archive)
    info = archive_info(archive)
    if request.session is not None:
        return _one_session(wyng, archive, info, request.session, workdir)
    if request.qubes:
        unknown = [q for q in request.qubes if q not in sessions]
        if unknown:
            raise UsageError(f"no backups of: {', '.join(unknown)}", hint="`list` shows every qube in the archive")
        chosen = {q: sessions[q] for q in request.qubes}
    elif request.all:
        chosen = sessions
    else:
        chosen = {q: s[-1:] for q, s in sessions.items()}
    return ListResult(archive=info, qubes=chosen)


def _one_session(wyng: Wyng, archive: Archive, info: ArchiveInfo, session: str, workdir: str) -> ListResult:
    from wyngq.dom0.inarchive import session_items
    from wyngq.model import QubeClass

    index = qube_volumes(archive)
    in_session = {q: kinds for q, by_session in index.items() if (kinds := by_session.get(session))}
    meta = archive.volumes.get(volnames.METADATA_VOLUME)
    if meta is None or session not in meta.sessions:
        raise UsageError(f"no Qubes backup session {session} in the archive", hint="`list --all` shows the sessions")
    settings = read_session_bundle(wyng, session, workdir, archive=archive)
    classes: dict[str, str] = {}
    source = "none"
    if settings.manifest is not None:
        source = "manifest"
        classes = {name: s.klass.value for name, s in settings.manifest.qubes.items()}
    elif settings.qubes_xml is not None:  # written by upstream wyng-util-qubes
        from wyngq.restore.qubesxml import read_qubes_xml

        source = "qubes.xml"
        classes = {name: s.klass.value for name, s in read_qubes_xml(settings.qubes_xml, settings.files).items()}
    qubes = [
        SessionQube(name, classes.get(name), tuple(sorted(in_session.get(name, {}).values())))
        for name in sorted(set(in_session) | {n for n, k in classes.items() if k == QubeClass.DISP.value})
    ]
    tags = {k: v for k, v in archive.session_tags(session).items() if k != "qubes"}
    return ListResult(
        archive=info,
        qubes={q.name: (session,) for q in qubes},
        session=session,
        session_qubes=tuple(qubes),
        session_tags=tags,
        settings_source=source,
        dom0=session_items(archive, session),
    )


def read_session_bundle(wyng: Wyng, session: str, workdir: str, *, archive: Archive) -> Bundle:
    """Fetch the settings bundle of `session` from the archive and read it; raise
    BundleError if the catalogue (`archive`) gives it a size wyngq never reads,
    before anything is fetched, or if it does not read."""
    from wyngq import bundle

    meta = archive.volumes.get(volnames.METADATA_VOLUME)
    entry = meta.sessions.get(session) if meta is not None else None
    if entry is None:
        raise bundle.BundleError(f"session {session} has no settings bundle")
    bundle.check_bundle_size(entry.volsize)
    path = os.path.join(workdir, f"metadata-{session}.tgz")
    wyng.receive_to_file(volnames.METADATA_VOLUME, session, path)
    try:
        return bundle.read_bundle(path)
    finally:
        os.unlink(path)
