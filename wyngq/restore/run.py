"""Restore, end to end: read the archive and the session's settings, look at
the live system, plan (pure), then apply unless it is a dry run or refused.

Wyng runs before anything changes for `--json list`, then once per session
restored from for its settings bundle (`--save-to`; with --all, only the newest
one when its carried entries tell the rest: restore.carried), and once per
session to move the data (one `receive` each).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from wyngq import bundle, listing, phases, volnames
from wyngq.contract.restore import PlannedRestoreQube, RestorePlanned
from wyngq.errors import ExitCode, UnauthenticatedArchiveError
from wyngq.events import Reporter
from wyngq.model import QubeClass, QubeSettings
from wyngq.qubes.port import QubesPort
from wyngq.restore import menus, trust
from wyngq.restore.apply import QubeOutcome, apply_plan
from wyngq.restore.carried import covered_sessions
from wyngq.restore.model import Action, LiveSystem, RestorePlan, RestoreRequest, SessionData
from wyngq.restore.plan import plan_restore
from wyngq.restore.prefs import session_prefs
from wyngq.restore.select import choose_session, refuse_unsupported, select_qubes
from wyngq.restore.sessions import (
    bundles_to_read,
    check_request,
    eligible,
    finish_placement,
    place_disposables,
    place_with_data,
)
from wyngq.restore.settings import SessionSettings, left_out, read_settings
from wyngq.wyng.catalog import Archive
from wyngq.wyng.runner import Wyng


@dataclass(frozen=True)
class RestoreResult:
    session: str
    dry_run: bool
    plan: RestorePlan
    qubes: tuple[QubeOutcome, ...] = ()
    warnings: tuple[str, ...] = field(default_factory=tuple)
    interrupted: int | None = None  # the signal that stopped it part way
    menus: tuple[str, ...] = ()  # what was done about the restored qubes' app menus (wyngq.restore.menus)
    prefs_failed: tuple[str, ...] = ()  # global preferences that could not be set

    @property
    def source(self) -> str:
        """Where the qubes come from: the session, or how many sessions."""
        sessions = self.plan.sessions
        return sessions[0] if len(sessions) == 1 else f"{len(sessions)} sessions (newest {sessions[-1]})"

    @property
    def refused(self) -> bool:
        return bool(self.plan.blocking)

    @property
    def changed(self) -> bool:
        """Whether qubes were touched (a refused restore changes nothing); in a dry
        run, whether the real run would touch any (Salt's test mode reports
        would-be changes as changes)."""
        if self.dry_run:
            return not self.refused and (any(q.action is not Action.SKIP for q in self.plan.qubes)
                                         or bool(self.plan.prefs))
        return not self.refused and (
            any(q.changes for q in self.qubes) or len(self.plan.prefs) > len(self.prefs_failed))

    @property
    def summary(self) -> str:
        source = self.source
        if self.refused:
            return f"restore from {source} refused: {len(self.plan.blocking)} blocking problem(s)"
        if self.dry_run:
            return f"dry run of a restore from {source}: {len(self.plan.qubes)} qube(s) planned"
        done = [q.target for q in self.qubes if q.ok]
        failed = [q.target for q in self.qubes if not q.ok]
        text = f"restored from {source}: {', '.join(done) or 'nothing'}"
        if self.interrupted is not None:
            text = f"restore from {source} INTERRUPTED (signal {self.interrupted}); finished: " \
                   f"{', '.join(done) or 'nothing'}"
            return text + (f"; NOT FINISHED: {', '.join(failed)}" if failed else "")
        if self.plan.prefs:
            text += f"; global preferences set: {len(self.plan.prefs) - len(self.prefs_failed)}"
        text += f"; FAILED: {', '.join(failed)}" if failed else ""
        return text + (f"; preferences NOT set: {', '.join(self.prefs_failed)}" if self.prefs_failed else "")

    @property
    def code(self) -> str | None:
        """The result's code when it is not plain success or failure."""
        if self.refused:  # nothing was changed: the plan has blocking problems
            if any(p.code == trust.UNTRUSTED for _, p in self.plan.blocking):
                return trust.REFUSED_CODE
            return "conflict"
        if self.interrupted is not None:
            return "interrupted"
        return None

    @property
    def exit_code(self) -> int:
        if self.interrupted is not None:
            return 128 + self.interrupted
        if self.refused:
            return ExitCode.QUBES
        if any(not q.ok for q in self.qubes) or self.prefs_failed:
            return ExitCode.PARTIAL
        return ExitCode.OK


def run_restore(
    qubes: QubesPort, wyng: Wyng, request: RestoreRequest, reporter: Reporter, workdir: str,
    archive_qube: str | None = None, archive: Archive | None = None,
) -> RestoreResult:
    """Restore what `request` asks for; refuse (changing nothing) when the plan
    has blocking problems; return the plan and each qube's outcome. `archive`:
    the catalogue, when the caller has just read it."""
    check_request(request)
    archive = archive if archive is not None else wyng.catalog()
    if request.require_authenticated:
        require_authenticated(archive)
    if archive.authenticated is True:  # the plan trusts its settings: so must every later call (restore.trust)
        wyng.pin_encrypted()
    index = listing.qube_volumes(archive)
    meta = archive.volumes.get(volnames.METADATA_VOLUME)
    bundle_sessions = sorted(meta.sessions) if meta else []
    warnings: tuple[str, ...] = ()
    with phases.phase("settings read"):  # the sessions' bundles: one Wyng receive each
        if request.session:
            session = choose_session(bundle_sessions, request)
            found = listing.read_session_bundle(wyng, session, workdir, archive=archive)
            read = read_settings(found)
            data = replace(session_data(archive, index, session, read), prefs=session_prefs(found))
            chosen = select_qubes(data, request)
            warnings = () if request.qubes else left_out(read)
        else:
            data, warnings = across_sessions(wyng, archive, index, bundle_sessions, request, workdir)
            chosen = tuple(sorted(data.sessions))
    with phases.phase("read qubes"):
        live = live_system(qubes, chosen, request, archive_qube)
    with phases.phase("plan"):
        plan = plan_restore(data, live, request, chosen)
    reporter.event(RestorePlanned(
        plan.session, tuple(plan.sessions), request.dry_run,
        tuple(PlannedRestoreQube(q.source, q.target, q.action.value, q.session) for q in plan.qubes),
        problems=len(plan.problems), refused=bool(plan.blocking)))
    if plan.blocking or request.dry_run:
        return RestoreResult(session=plan.session, dry_run=request.dry_run, plan=plan, warnings=warnings)
    with phases.phase("apply"):
        applied = apply_plan(plan, qubes, wyng, workdir, reporter)
    with phases.phase("menus"):
        finished = applied.interrupted is None
        notes = menus.refresh_menus(restored_for_menus(plan, applied.qubes, data)) if finished else ()
    return RestoreResult(session=plan.session, dry_run=False, plan=plan, qubes=applied.qubes,
                         warnings=warnings + applied.warnings, interrupted=applied.interrupted,
                         prefs_failed=applied.prefs_failed, menus=notes)


def across_sessions(
    wyng: Wyng, archive: Archive, index: Mapping[str, Mapping[str, Mapping[str, str]]],
    bundle_sessions: list[str], request: RestoreRequest, workdir: str,
) -> tuple[SessionData, tuple[str, ...]]:
    """Each qube from its own newest session (restore.sessions): the settings
    bundles of those sessions are read (one Wyng call each; with --all, not
    those the newest bundle's carried entries stand for: restore.carried), and
    the qubes' data, sizes and settings put together as one SessionData. A named qube of
    a class wyngq does not restore is refused by name; with --all it is left
    out with a warning."""
    placed = place_with_data(index, bundle_sessions, request)
    bundles: dict[str, bundle.Bundle] = {}
    decoded: dict[str, SessionSettings] = {}
    newest_bundle = max(eligible(bundle_sessions, request.as_of))
    if request.all and (newest_bundle in placed.values() or request.prefs):  # read in any case: read it first
        bundles[newest_bundle] = listing.read_session_bundle(wyng, newest_bundle, workdir, archive=archive)
        decoded |= covered_sessions(newest_bundle, bundles[newest_bundle].manifest, placed, request)
    while todo := bundles_to_read(placed, bundle_sessions, request, decoded):
        for session in todo:
            if session not in bundles:
                bundles[session] = listing.read_session_bundle(wyng, session, workdir, archive=archive)
            decoded[session] = read_settings(bundles[session])
            refuse_unsupported(session_data(archive, index, session, decoded[session]), request.qubes)
        placed = place_disposables(placed, {s: d.qubes for s, d in decoded.items()}, request)
    odd = {name: decoded[s].unsupported[name] for name, s in placed.items() if name in decoded[s].unsupported}
    placed = {name: s for name, s in placed.items() if name not in odd}
    placement = finish_placement(placed, {s: d.qubes for s, d in decoded.items()}, request)
    warnings = left_out(SessionSettings({}, "", odd)) + tuple(
        f"{name}: left out, its session {placed[name]} does not hold its settings" for name in placement.left_out)
    newest = max(placement.sessions.values())
    prefs_from = newest
    if request.prefs:  # the machine's preferences as of its newest backup (at or before --as-of)
        prefs_from = newest_bundle
    if prefs_from not in bundles:  # (without --prefs, unused by the plan: read as it always was)
        bundles[prefs_from] = listing.read_session_bundle(wyng, prefs_from, workdir, archive=archive)
    data = combined(archive, index, placement.sessions, decoded)
    return replace(data, session=max(newest, prefs_from), prefs=session_prefs(bundles[prefs_from])), warnings


def combined(archive: Archive, index: Mapping[str, Mapping[str, Mapping[str, str]]], sessions: Mapping[str, str],
             decoded: Mapping[str, SessionSettings]) -> SessionData:
    """One SessionData of each qube (`sessions`: qube -> its session) with its
    volumes, their sizes and its settings from its own session."""
    volumes: dict[str, dict[str, str]] = {}
    sizes: dict[str, int] = {}
    settings: dict[str, QubeSettings] = {}
    for name, session in sessions.items():
        settings[name] = decoded[session].qubes[name]
        volumes[name] = dict(index.get(name, {}).get(session, {}))
        for archive_name in volumes[name].values():
            sizes[archive_name] = archive.volumes[archive_name].sessions[session].volsize
    sources = sorted({decoded[s].source for s in sessions.values()})
    return SessionData(
        session=max(sessions.values()), volumes={q: k for q, k in volumes.items() if k}, sizes=sizes,
        settings=settings, source="+".join(sources), archive_uuid=archive.uuid,
        vids={n: archive.volumes[n].vid for n in sizes}, authenticated=archive.authenticated is True,
        sessions=dict(sessions),
    )


def restored_for_menus(plan: RestorePlan, outcomes: tuple[QubeOutcome, ...], data: SessionData
                       ) -> list[tuple[str, QubeClass, str | None]]:
    """The qubes restored in full, with their class and GUI qube (wyngq.restore.menus)."""
    done = {o.target for o in outcomes if o.ok}
    result = []
    for qube in plan.qubes:
        if qube.changes and qube.target in done:
            guivm = data.settings[qube.source].properties.get("guivm")
            result.append((qube.target, qube.klass, guivm.value if guivm is not None else None))
    return result


def require_authenticated(archive: Archive) -> None:
    """Refuse an archive Wyng does not authenticate: whoever can write one could
    inject settings into dom0-managed qubes (docs/security-model.md)."""
    if archive.authenticated is not True:
        raise UnauthenticatedArchiveError(
            "the archive is not authenticated (not encrypted): this restore requires an authenticated one",
            hint="dom0: restore in dom0, or set allow_unauthenticated_restore = true in the profile's [rpc] "
                 "(settings that give power are refused from such an archive all the same)",
        )


def session_data(
    archive: Archive, index: Mapping[str, Mapping[str, Mapping[str, str]]], session: str, read: SessionSettings
) -> SessionData:
    volumes = {qube: dict(kinds) for qube, by_session in index.items() if (kinds := by_session.get(session))}
    sizes = {
        name: archive.volumes[name].sessions[session].volsize
        for kinds in volumes.values() for name in kinds.values()
    }
    vids = {name: archive.volumes[name].vid for name in sizes}
    return SessionData(session=session, volumes=volumes, sizes=sizes, settings=read.qubes, source=read.source,
                       archive_uuid=archive.uuid, vids=vids, authenticated=archive.authenticated is True,
                       unsupported=read.unsupported)


def live_system(qubes: QubesPort, chosen: tuple[str, ...], request: RestoreRequest, archive_qube: str | None
                ) -> LiveSystem:
    """What planning needs from the live system; full settings only of the qubes
    restore may change (the chosen names and explicit rename targets)."""
    overview = qubes.overview()
    renames = dict(request.renames)
    names = {renames.get(name, name) for name in chosen} | set(chosen)
    existing = sorted(n for n in names if n in overview)
    return LiveSystem(
        qubes=overview,
        settings={name: qubes.settings(name) for name in existing},
        volumes={name: qubes.volumes(name) for name in existing},
        pools=qubes.pools(),
        default_pool=qubes.default_pool(),
        labels=qubes.labels(),
        kernels=qubes.kernels(),
        archive_qube=archive_qube,
        prefs=qubes.global_prefs() if request.prefs else {},
    )


def archive_qube_of(dest: str) -> str | None:
    """The qube an archive URL goes through (`qubes://VM/...`, `qubes-ssh://VM:...`)."""
    for scheme in ("qubes://", "qubes-ssh://"):
        if dest.startswith(scheme):
            rest = dest[len(scheme):]
            return rest.split("/", 1)[0].split(":", 1)[0] or None
    return None
