"""Restore, end to end: read the archive and the session's settings, look at
the live system, plan (pure), then apply unless it is a dry run or refused.

Wyng runs twice before anything changes (`--json list`, then the settings
bundle with `--save-to`) and once to move all data (one `receive`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from wyngq import listing, volnames
from wyngq.errors import ExitCode, UnauthenticatedArchiveError
from wyngq.events import Reporter
from wyngq.qubes.port import QubesPort
from wyngq.restore import trust
from wyngq.restore.apply import QubeOutcome, apply_plan
from wyngq.restore.model import LiveSystem, RestorePlan, RestoreRequest, SessionData
from wyngq.restore.plan import plan_restore
from wyngq.restore.select import choose_session, select_qubes
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

    @property
    def refused(self) -> bool:
        return bool(self.plan.blocking)

    @property
    def changed(self) -> bool:
        """Whether qubes were touched (a refused or dry-run restore changes nothing)."""
        return not self.dry_run and not self.refused and any(q.changes for q in self.qubes)

    @property
    def summary(self) -> str:
        if self.refused:
            return f"restore from {self.session} refused: {len(self.plan.blocking)} blocking problem(s)"
        if self.dry_run:
            return f"dry run of a restore from {self.session}: {len(self.plan.qubes)} qube(s) planned"
        done = [q.target for q in self.qubes if q.ok]
        failed = [q.target for q in self.qubes if not q.ok]
        text = f"restored from {self.session}: {', '.join(done) or 'nothing'}"
        if self.interrupted is not None:
            text = f"restore from {self.session} INTERRUPTED (signal {self.interrupted}); finished: " \
                   f"{', '.join(done) or 'nothing'}"
            return text + (f"; NOT FINISHED: {', '.join(failed)}" if failed else "")
        return text + (f"; FAILED: {', '.join(failed)}" if failed else "")

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
        if any(not q.ok for q in self.qubes):
            return ExitCode.PARTIAL
        return ExitCode.OK


def run_restore(
    qubes: QubesPort, wyng: Wyng, request: RestoreRequest, reporter: Reporter, workdir: str,
    archive_qube: str | None = None,
) -> RestoreResult:
    """Restore what `request` asks for; refuse (changing nothing) when the plan
    has blocking problems; return the plan and each qube's outcome."""
    archive = wyng.catalog()
    if request.require_authenticated:
        require_authenticated(archive)
    if archive.authenticated is True:  # the plan trusts its settings: so must every later call (restore.trust)
        wyng.pin_encrypted()
    index = listing.qube_volumes(archive)
    meta = archive.volumes.get(volnames.METADATA_VOLUME)
    session = choose_session(index, sorted(meta.sessions) if meta else [], request)
    read = read_settings(listing.read_session_bundle(wyng, session, workdir))
    data = session_data(archive, index, session, read)
    chosen = select_qubes(data, request)
    warnings = () if request.qubes else left_out(read)
    live = live_system(qubes, chosen, request, archive_qube)
    plan = plan_restore(data, live, request, chosen)
    reporter.event("restore_plan", session=session, dry_run=request.dry_run,
                   qubes=[{"name": q.source, "target": q.target, "action": q.action.value} for q in plan.qubes],
                   problems=len(plan.problems), refused=bool(plan.blocking))
    if plan.blocking or request.dry_run:
        return RestoreResult(session=session, dry_run=request.dry_run, plan=plan, warnings=warnings)
    applied = apply_plan(plan, qubes, wyng, workdir, reporter)
    return RestoreResult(session=session, dry_run=False, plan=plan, qubes=applied.qubes,
                         warnings=warnings + applied.warnings, interrupted=applied.interrupted)


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
    )


def archive_qube_of(dest: str) -> str | None:
    """The qube an archive URL goes through (`qubes://VM/...`, `qubes-ssh://VM:...`)."""
    for scheme in ("qubes://", "qubes-ssh://"):
        if dest.startswith(scheme):
            rest = dest[len(scheme):]
            return rest.split("/", 1)[0].split(":", 1)[0] or None
    return None
