"""Archive care: verify sessions, prune old sessions, delete a qube's backups.

Planning is pure (which volumes, which sessions would go); the Wyng calls are
thin. A damaged volume is attributed to its qube: verify first checks all the
selected volumes in one Wyng call and, only if that fails, each qube's volumes
on their own, so the report names the qubes that are affected.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from wyngq import bundle, paths, volnames
from wyngq.contract.events import StepStarted, VolumeProgress
from wyngq.contract.maintenance import DeletePlanned, PrunePlanned, VerifyPlanned
from wyngq.dom0 import VOLUMES as dom0_volumes
from wyngq.dom0 import backup as dom0_backup
from wyngq.dom0 import extract
from wyngq.dom0 import restore as dom0_restore
from wyngq.dom0.inarchive import session_items
from wyngq.errors import ExitCode, UsageError
from wyngq.events import Reporter, wyng_progress
from wyngq.listing import newest_session_holding, qube_volumes, read_session_bundle
from wyngq.names import LATEST
from wyngq.restore.settings import usable
from wyngq.wyng.catalog import Archive
from wyngq.wyng.known import KnownArchives
from wyngq.wyng.runner import Wyng


@dataclass(frozen=True)
class QubeCheck:
    name: str
    ok: bool
    volumes: tuple[str, ...]
    error: str | None = None


@dataclass(frozen=True)
class Dom0Check:
    item: str  # "home" | "config"
    volume: str
    ok: bool
    error: str | None = None


@dataclass(frozen=True)
class VerifyResult:
    session: str
    qubes: tuple[QubeCheck, ...]
    settings: str  # "ok" | "missing" | "damaged: …"
    dom0: tuple[Dom0Check, ...] = ()
    archive_check: str | None = None  # --full: "ok" | "failed: …" (Wyng arch-check of every session)

    @property
    def exit_code(self) -> ExitCode:
        bad = [q for q in self.qubes if not q.ok]
        if self.archive_check not in (None, "ok"):
            return ExitCode.WYNG
        if not bad and self.settings == "ok" and all(d.ok for d in self.dom0):
            return ExitCode.OK
        if not bad and self.settings == "ok":
            return ExitCode.PARTIAL
        return ExitCode.PARTIAL if len(bad) < len(self.qubes) else ExitCode.WYNG


def pick_session(archive: Archive, qubes: Sequence[str], requested: str | None) -> str:
    """The session to work on: the one asked for, or (None / "latest") the newest
    session that holds every requested qube (any qube when none are named).
    Raise UsageError if there is none."""
    index = qube_volumes(archive)
    missing = [q for q in qubes if q not in index]
    if missing:
        raise UsageError(f"no backups of: {', '.join(missing)}", hint="`list` shows the qubes in the archive")
    sessions = sorted({s for by_session in index.values() for s in by_session})
    if requested not in (None, LATEST):
        if requested not in sessions or newest_session_holding(index, [requested], qubes) is None:
            what = f" holding {', '.join(qubes)}" if qubes else ""
            raise UsageError(f"no Qubes backup session {requested}{what}", hint="`list --all` shows the sessions")
        return requested
    found = newest_session_holding(index, sessions, qubes)
    if found is None:
        raise UsageError(
            "no single session holds all of " + ", ".join(qubes) if qubes else "the archive holds no Qubes backups",
            hint="name a session with --session, as `list --all` shows them",
        )
    return found


# -- verify ---------------------------------------------------------------------------
def verify(wyng: Wyng, qubes: Sequence[str], session: str | None, reporter: Reporter, workdir: str, *,
           full: bool = False) -> VerifyResult:
    """Check the data of the qubes' volumes in a session, and that its settings
    read as a restore reads them (restore.settings.usable); with `full`, then
    Wyng's arch-check of the whole archive too."""
    archive = wyng.catalog()
    chosen = pick_session(archive, qubes, session)
    index = qube_volumes(archive)
    names = list(qubes) or sorted(q for q, by_session in index.items() if chosen in by_session)
    volumes = {q: tuple(sorted(index[q][chosen].values())) for q in names}
    reporter.event(VerifyPlanned(chosen, tuple(names)))
    wyng.on_output = wyng_progress(reporter)
    everything = [v for vols in volumes.values() for v in vols]
    checks: list[QubeCheck] = []
    if wyng.verify(chosen, everything).returncode == 0:
        checks = [QubeCheck(q, True, volumes[q]) for q in names]
    else:
        for q in names:
            run = wyng.verify(chosen, volumes[q])
            error = None if run.returncode == 0 else _last_line(run.stderr) or f"Wyng verify exited {run.returncode}"
            checks.append(QubeCheck(q, run.returncode == 0, volumes[q], error))
    with_data = [q for q, by_session in index.items() if chosen in by_session]
    dom0 = verify_dom0(wyng, archive, chosen) if not qubes else ()
    return VerifyResult(chosen, tuple(checks), _check_settings(wyng, archive, chosen, with_data, workdir), dom0,
                        _full_check(wyng, reporter) if full else None)


def verify_dom0(wyng: Wyng, archive: Archive, session: str) -> tuple[Dom0Check, ...]:
    """Check the session's dom0 items: Wyng reads every chunk of each; the
    configuration stream is also fetched and read as a restore would read it
    (wyngq.dom0.extract.check). The home is not fetched: that would need a
    spool as large as the home."""
    checks = []
    for item in session_items(archive, session):
        run = wyng.verify(session, [item.volume])
        error = None if run.returncode == 0 else _last_line(run.stderr) or f"Wyng verify exited {run.returncode}"
        if error is None and item.item == "config":
            error = _check_config_stream(wyng, session, item.volume, item.size)
        checks.append(Dom0Check(item.item, item.volume, error is None, error))
    return tuple(checks)


def _check_config_stream(wyng: Wyng, session: str, volume: str, size: int) -> str | None:
    with dom0_backup.spool(paths.spool_dir()) as spool:
        stream = os.path.join(spool, "dom0-config.tar")
        wyng.receive_to_file(volume, session, stream)
        try:
            extract.check(stream, extract.Limits(max_member=dom0_restore.MAX_CONFIG_FILE, max_total=max(size, 1)))
        except extract.UnsafeArchiveError as err:
            return f"the stream does not read: {err.message}"
    return None


def _full_check(wyng: Wyng, reporter: Reporter) -> str:
    """Wyng's own check of every session of every volume (`arch-check`)."""
    reporter.event(StepStarted("arch-check"))
    run = wyng.arch_check(None)
    if run.returncode == 0:
        return "ok"
    return "failed: " + (_last_line(run.stderr) or _last_line(run.stdout) or f"Wyng arch-check exited {run.returncode}")


def _check_settings(wyng: Wyng, archive: Archive, session: str, with_data: Sequence[str], workdir: str) -> str:
    """Read the session's settings as a restore would: the bundle, then its
    manifest or qubes.xml, with the settings of every qube that has data there."""
    meta = archive.volumes.get(volnames.METADATA_VOLUME)
    if meta is None or session not in meta.sessions:
        return "missing"
    try:
        found = read_session_bundle(wyng, session, workdir, archive=archive)
    except bundle.BundleError as err:
        return f"damaged: {err.message}"
    return usable(found, with_data)


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


# -- prune ----------------------------------------------------------------------------
@dataclass(frozen=True)
class PruneRequest:
    qubes: tuple[str, ...] = ()
    sessions: tuple[str, ...] = ()  # one id, or two for an inclusive range
    all_before: bool = False
    autoprune: str | None = None
    dry_run: bool = False
    # Qubes the caller may touch at all (a profile's selection, over qrexec):
    # "no qubes named" then means these qubes' volumes, never the whole archive.
    limit_to: tuple[str, ...] | None = None

    def chosen(self, in_archive: Iterable[str]) -> list[str]:
        """The qubes whose volumes this prune works on."""
        if self.qubes:
            return list(self.qubes)
        everything = sorted(in_archive)
        return everything if self.limit_to is None else [q for q in everything if q in self.limit_to]


@dataclass(frozen=True)
class PruneResult:
    dry_run: bool
    removed: Mapping[str, tuple[str, ...]]  # qube -> sessions (planned, or gone)
    kept_latest: tuple[str, ...] = ()
    # dom0 item ("home", "config") -> sessions: only a prune of the whole archive touches them
    dom0: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return not self.dry_run and bool(self.removed or self.dom0)


def sessions_to_prune(sessions: Sequence[str], request: PruneRequest) -> list[str]:
    """Which of a volume's sessions (sorted) a session-based prune removes, the way
    Wyng selects them: one session; an inclusive range; or all before a session.
    The newest session is always kept."""
    if len(sessions) < 2 or not request.sessions:
        return []
    first = request.sessions[0]
    if request.all_before:
        chosen = [s for s in sessions if s < first]
    elif len(request.sessions) == 2:
        chosen = [s for s in sessions if first <= s <= request.sessions[1]]
    else:
        chosen = [s for s in sessions if s == first]
    return [s for s in chosen if s != sessions[-1]]


def check_prune_request(request: PruneRequest) -> None:
    if not request.sessions and not request.autoprune:
        raise UsageError("say which sessions to prune", hint="pass --session=ID[,ID] or --autoprune=on|full")
    if request.all_before and len(request.sessions) != 1:
        raise UsageError("--all-before takes exactly one session")
    if len(request.sessions) == 2 and request.sessions[1] <= request.sessions[0]:
        raise UsageError("the second session of a range must be later than the first")
    if len(request.sessions) > 2:
        raise UsageError("give one session or a range of two")


def plan_prune(archive: Archive, request: PruneRequest) -> dict[str, tuple[str, ...]]:
    """qube -> the sessions a session-based prune would remove from its volumes.
    (Autoprune's choice is Wyng's own and is not predicted here.)"""
    index = qube_volumes(archive)
    unknown = [q for q in request.qubes if q not in index]
    if unknown:
        raise UsageError(f"no backups of: {', '.join(unknown)}", hint="`list` shows the qubes in the archive")
    if request.limit_to is not None:
        outside = [q for q in request.qubes if q not in request.limit_to]
        if outside:
            raise UsageError(f"not in the profile's selection: {', '.join(outside)}")
    plan: dict[str, tuple[str, ...]] = {}
    for qube in request.chosen(index):
        names = {v for by_kind in index[qube].values() for v in by_kind.values()}
        gone: set[str] = set()
        for name in names:
            gone |= set(sessions_to_prune(sorted(archive.volumes[name].sessions), request))
        if gone:
            plan[qube] = tuple(sorted(gone))
    return plan


def plan_prune_dom0(archive: Archive, request: PruneRequest) -> dict[str, tuple[str, ...]]:
    """dom0 item -> the sessions a session-based prune would remove from its
    stream: only a prune of the whole archive (no qubes named, no profile
    selection) reaches dom0's items, as it does the settings bundles."""
    if request.qubes or request.limit_to is not None:
        return {}
    plan: dict[str, tuple[str, ...]] = {}
    for item, name in dom0_volumes.items():
        volume = archive.volumes.get(name)
        gone = sessions_to_prune(sorted(volume.sessions), request) if volume is not None else []
        if gone:
            plan[item] = tuple(gone)
    return plan


def _dom0_removed(before: Archive, after: Archive) -> dict[str, tuple[str, ...]]:
    removed: dict[str, tuple[str, ...]] = {}
    for item, name in dom0_volumes.items():
        old, new = before.volumes.get(name), after.volumes.get(name)
        gone = set(old.sessions) - set(new.sessions if new is not None else ()) if old is not None else set()
        if gone:
            removed[item] = tuple(sorted(gone))
    return removed


def refuse_newest(archive: Archive, request: PruneRequest) -> None:
    """Raise UsageError when the sessions asked for are only ever the newest session
    of the chosen qubes' volumes: Wyng never removes a volume's newest session, so
    that prune would remove nothing while looking like a success."""
    index = qube_volumes(archive)
    newest_of: dict[str, list[str]] = {}
    for qube in request.chosen(index):
        for name in {v for by_kind in index[qube].values() for v in by_kind.values()}:
            sessions = sorted(archive.volumes[name].sessions)
            if sessions and sessions[-1] in request.sessions:
                newest_of.setdefault(sessions[-1], []).append(qube)
    if newest_of:
        what = "; ".join(f"{s} is the newest session of {', '.join(sorted(set(q)))}" for s, q in newest_of.items())
        raise UsageError(f"nothing to prune: {what}, and Wyng never removes a volume's newest session",
                         hint="back up again first (then it is no longer the newest), or `delete` the qube's backups")


def prune(wyng: Wyng, request: PruneRequest, reporter: Reporter) -> PruneResult:
    check_prune_request(request)
    archive = wyng.catalog()
    plan = plan_prune(archive, request)
    dom0_plan = plan_prune_dom0(archive, request)
    newest = archive.sessions()[-1:] if archive.sessions() else []
    if request.sessions and not plan and not dom0_plan:
        refuse_newest(archive, request)
    reporter.event(PrunePlanned(request.dry_run, {q: tuple(s) for q, s in plan.items()},
                                {i: tuple(s) for i, s in dom0_plan.items()}))
    if request.dry_run:
        return PruneResult(True, plan, tuple(newest), dom0_plan)
    if request.sessions and not plan and not dom0_plan:
        return PruneResult(False, {}, tuple(newest))
    index = qube_volumes(archive)
    chosen = request.chosen(index)
    whole = not request.qubes and request.limit_to is None
    if not chosen and not (whole and (dom0_plan or request.autoprune)):
        return PruneResult(False, {}, tuple(newest))
    volumes = sorted({v for q in chosen for by_kind in index[q].values() for v in by_kind.values()})
    wyng.prune(
        volumes=volumes,
        session=",".join(request.sessions) or None,
        all_before=request.all_before,
        # the whole archive (settings bundles too) only when nothing limits the choice
        all_volumes=whole,
        autoprune=request.autoprune,
    )
    archive_after = wyng.catalog()
    after = qube_volumes(archive_after)
    removed = {
        q: tuple(sorted(set(index[q]) - set(after.get(q, {}))))
        for q in chosen
        if set(index[q]) - set(after.get(q, {}))
    }
    return PruneResult(False, removed, tuple(newest), _dom0_removed(archive, archive_after))


# -- delete -----------------------------------------------------------------------------
@dataclass(frozen=True)
class DeleteResult:
    qube: str
    volumes: tuple[str, ...]
    changed: bool = True


def qube_archive_volumes(archive: Archive, qube: str) -> tuple[str, ...]:
    """Every archive volume holding data of `qube`, whatever session or pool type."""
    return tuple(sorted(name for name in archive.volumes if (p := volnames.parse(name)) and p.qube == qube))


def delete(wyng: Wyng, qube: str, reporter: Reporter, known_archives: KnownArchives | None = None) -> DeleteResult:
    """Remove every archive volume of `qube` (all its sessions). Its settings stay in
    the shared settings bundles of the sessions, which other qubes need. The
    archive's record is dropped first: the next backup reads the catalogue."""
    volumes = qube_archive_volumes(wyng.catalog(), qube)
    if not volumes:
        raise UsageError(f"no backups of {qube} in the archive", hint="`list` shows the qubes in the archive")
    reporter.event(DeletePlanned(qube, volumes))
    if known_archives is not None:
        known_archives.forget(wyng.target)
    for volume in volumes:
        wyng.delete(volume)
        reporter.event(VolumeProgress(volume, "deleted", qube=qube))
    return DeleteResult(qube, volumes)
