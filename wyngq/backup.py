"""Back up qubes: select, plan (pure), then one Wyng send for everything.

docs/architecture.md: all selected volumes of all pools go to Wyng in ONE `send`, the
settings bundle in the same session, so data and settings share a session id.
After the send the archive is listed again and every planned volume must be in
the new session: Wyng can exit 0 without doing the work (docs/facts.md).

A dry run plans from the archive record or the catalogue (`wyng --json list`
only reads) and checks that each volume's file is there; it never runs
`wyng send --dry-run`, which adds volumes to the archive, rewrites its
`archive.ini` and leaves snapshot files in the pools, and which fails on a
volume Wyng has no snapshot of yet (after a restore: docs/everyday.md).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from wyngq import __version__, bundle, carry, paths, volnames
from wyngq.backup_shutdown import shutdown_order, stopped_for_backup
from wyngq.contract.events import BackupPlanned, Opening, ShutdownPlanned
from wyngq.dom0 import backup as dom0_backup
from wyngq.dom0.backup import Dom0Backup, Dom0Outcome, Dom0Stream
from wyngq.errors import ConfigError, ExitCode, QubesError, SnapshotsDisabledError, UsageError, WyngError
from wyngq.events import Reporter, wyng_progress
from wyngq.model import Pool, PoolDriver, PropertyValue, Qube, QubeClass, QubeSettings
from wyngq.profile import Profile
from wyngq.qubes.port import QubesPort
from wyngq.restore import prefs
from wyngq.schedule import QubeDue, due_qubes
from wyngq.wyng.catalog import Archive
from wyngq.wyng.known import KnownArchive, KnownArchives
from wyngq.wyng.runner import Wyng

log = logging.getLogger(__name__)

TAG = "qubes"  # upstream tags every session with it; its `list` shows other tags only


@dataclass(frozen=True)
class BackupRequest:
    qubes: tuple[str, ...] = ()
    include_flagged: bool = False
    include_tags: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    exclude_tags: tuple[str, ...] = ()
    dedup: bool = False
    autoprune: str | None = None
    check_after_send: bool = False
    dry_run: bool = False
    dom0: Dom0Backup = field(default_factory=Dom0Backup)
    shutdown: bool = False  # shut down the selected running qubes first, start them again after
    shutdown_dependants: bool = False  # ... and the running qubes that depend on them
    tags: tuple[str, ...] = ()  # session tags besides "qubes" (profile [backup] tags)
    max_age: int | None = None  # only qubes with no session in this archive younger than this (seconds)


def request_for_profile(
    profile: Profile | None,
    *,
    qubes: tuple[str, ...] = (),
    exclude: tuple[str, ...] = (),
    include_flagged: bool = False,
    dedup: bool | None = None,
    autoprune: str | None = None,
    check_after_send: bool | None = None,
    dry_run: bool = False,
    dom0_home: bool | None = None,
    dom0_home_dir: str | None = None,
    dom0_config: bool | None = None,
    shutdown: bool = False,
    shutdown_dependants: bool = False,
    max_age: int | None = None,
) -> BackupRequest:
    """The caller's choices first (None: not chosen), then the profile's; named
    qubes replace the profile's selection rather than adding to it. Names must
    already be validated."""
    include = profile.qubes.include if profile and not qubes else ()
    excluded = profile.qubes.exclude if profile else ()
    defaults = profile.backup if profile else None
    return BackupRequest(
        qubes=qubes or tuple(q for q in include if not q.startswith("@")),
        include_flagged=include_flagged or "@include_in_backups" in include,
        include_tags=tuple(q.removeprefix("@tag:") for q in include if q.startswith("@tag:")),
        exclude=exclude + tuple(q for q in excluded if not q.startswith("@")),
        exclude_tags=tuple(q.removeprefix("@tag:") for q in excluded if q.startswith("@tag:")),
        dedup=dedup if dedup is not None else bool(defaults and defaults.dedup),
        autoprune=autoprune or (defaults.autoprune if defaults else None),
        check_after_send=check_after_send if check_after_send is not None else bool(
            defaults and defaults.check_after_send
        ),
        dry_run=dry_run,
        max_age=max_age,
        dom0=dom0_request(profile, home=dom0_home, home_dir=dom0_home_dir, config=dom0_config),
        shutdown=shutdown or shutdown_dependants,
        shutdown_dependants=shutdown_dependants,
        tags=defaults.tags if defaults else (),
    )


def dom0_request(
    profile: Profile | None, *, home: bool | None = None, home_dir: str | None = None, config: bool | None = None
) -> Dom0Backup:
    """dom0's part: the caller's choices (None: not chosen), then the profile's [dom0]."""
    settings = profile.dom0 if profile else None
    return Dom0Backup(
        home=home if home is not None else bool(settings and settings.home),
        home_dir=home_dir or (settings.home_dir if settings else None),
        exclude=settings.exclude if settings else (),
        config=config if config is not None else bool(settings and settings.config),
    )


@dataclass(frozen=True)
class PlannedVolume:
    qube: str
    kind: str
    pool_path: str
    local_name: str
    archive_name: str  # the name Wyng finds it under now (differs when aliasing)
    # derived from the fields above and the pool, for dry runs and progress; not part of equality
    driver: PoolDriver = field(default=PoolDriver.FILE_REFLINK, compare=False)
    size: int = field(default=0, compare=False)
    incremental: bool = field(default=False, compare=False)  # the archive has it already (else read in full)

    def local_path(self) -> str:
        """The file or device Wyng reads: `POOLDIR/NAME` for file-reflink,
        `/dev/VG/NAME` for lvm_thin (pool path `VG/THINPOOL`)."""
        if self.driver is PoolDriver.LVM_THIN:
            return f"/dev/{self.pool_path.split('/')[0]}/{self.local_name}"
        return os.path.join(self.pool_path, self.local_name)


@dataclass(frozen=True)
class BackupPlan:
    qubes: tuple[str, ...]
    volumes: tuple[PlannedVolume, ...]
    running: tuple[str, ...] = ()
    settings_only: tuple[str, ...] = ()

    def local_from(self) -> dict[str, list[list[str | None]]]:
        """Wyng's `--local-from` document: pool path -> [archive name, alias]."""
        doc: dict[str, list[list[str | None]]] = {}
        for vol in self.volumes:
            alias = vol.local_name if vol.local_name != vol.archive_name else None
            doc.setdefault(vol.pool_path, []).append([vol.archive_name, alias])
        return doc

    def sent_names(self) -> list[str]:
        """The names the volumes have in the archive once sent."""
        return [vol.local_name for vol in self.volumes]

    def renamed_names(self) -> list[str]:
        """The archive names Wyng renames away when it sends (aliasing)."""
        return [vol.archive_name for vol in self.volumes if vol.archive_name != vol.local_name]

    def without(self, names: Collection[str]) -> BackupPlan:
        """The plan with these qubes left out (their settings could not be read)."""
        return BackupPlan(
            qubes=tuple(q for q in self.qubes if q not in names),
            volumes=tuple(v for v in self.volumes if v.qube not in names),
            running=tuple(q for q in self.running if q not in names),
            settings_only=tuple(q for q in self.settings_only if q not in names),
        )

    def volume_owner(self, name: str) -> str | None:
        for vol in self.volumes:
            if name in (vol.local_name, vol.archive_name):
                return vol.qube
        return None


@dataclass(frozen=True)
class QubeOutcome:
    name: str
    ok: bool
    volumes: tuple[str, ...] = ()
    running: bool = False
    error: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class BackupResult:
    session: str | None
    dry_run: bool
    qubes: tuple[QubeOutcome, ...]
    check: str | None = None
    warnings: tuple[str, ...] = field(default_factory=tuple)
    dom0: tuple[Dom0Outcome, ...] = ()
    shut_down: tuple[str, ...] = ()  # --shutdown: the qubes stopped for the backup
    restarted: tuple[str, ...] = ()  # ... and those started again
    # with a maximum age: every selected qube, its last session in this archive, and whether it is due
    schedule: tuple[QubeDue, ...] = ()
    volumes: tuple[PlannedVolume, ...] = ()  # a dry run's plan

    @property
    def changed(self) -> bool:
        """Whether the archive got a session; in a dry run, whether the real run
        would store one (Salt's test mode reports would-be changes as changes)."""
        if self.dry_run:
            return any(q.ok for q in self.qubes)
        return self.session is not None

    @property
    def due(self) -> tuple[str, ...]:
        return tuple(e.name for e in self.schedule if e.due)

    @property
    def summary(self) -> str:
        done = [q.name for q in self.qubes if q.ok]
        failed = [q.name for q in self.qubes if not q.ok]
        if self.schedule and not self.qubes:
            return f"nothing due: {len(self.schedule)} qube(s) have a recent session in this archive"
        if self.dry_run:
            text = f"dry run: would back up {', '.join(done) or 'nothing'}"
            return text + (f"; would FAIL: {', '.join(failed)}" if failed else "")
        done += [f"dom0 {d.item}" for d in self.dom0 if d.ok]
        failed += [f"dom0 {d.item}" for d in self.dom0 if not d.ok]
        text = f"session {self.session}: backed up {', '.join(done) or 'nothing'}"
        return text + (f"; FAILED: {', '.join(failed)}" if failed else "")

    @property
    def exit_code(self) -> ExitCode:
        failed = [q for q in self.qubes if not q.ok]
        if self.check == "failed":
            return ExitCode.WYNG
        if not failed and any(not d.ok for d in self.dom0):
            return ExitCode.PARTIAL
        if not failed:
            return ExitCode.OK
        return ExitCode.PARTIAL if len(failed) < len(self.qubes) else ExitCode.WYNG


# -- selection and planning (pure) ------------------------------------------------
def select_qubes(
    request: BackupRequest,
    listed: Mapping[str, tuple[QubeClass, bool]],
    flagged: Callable[[str], bool],
    tags_of: Callable[[str], Iterable[str]],
) -> tuple[str, ...]:
    """Return the names to back up, sorted; raise UsageError for names that are not qubes.

    `flagged(name)` says whether a qube has include_in_backups; `tags_of(name)`
    gives its tags. Both are only called when the request needs them.
    """
    if "dom0" in request.qubes:
        raise UsageError("dom0 is never backed up by wyng-util-qubes", hint="leave dom0 out of the list")
    unknown = sorted(set(request.qubes) - set(listed))
    if unknown:
        raise UsageError(f"no such qube: {', '.join(unknown)}",
                         hint="check the names with qvm-ls (qubes of a class wyngq does not know are left out)")
    chosen = set(request.qubes)
    if request.include_flagged:
        chosen |= {name for name in listed if flagged(name)}
    for tag in request.include_tags:
        chosen |= {name for name in listed if tag in tags_of(name)}
    chosen -= set(request.exclude)
    for tag in request.exclude_tags:
        chosen -= {name for name in chosen if tag in tags_of(name)}
    if not chosen:
        raise UsageError(
            "no qubes selected for backup", hint="name qubes, or use -i for those marked include_in_backups"
        )
    return tuple(sorted(chosen))


def plan_backup(qubes: Sequence[Qube], pools: Mapping[str, Pool], known: Collection[str] = ()) -> BackupPlan:
    """Given the selected qubes, the pools and the names of the archive's volumes,
    return the volumes to send and how Wyng must name them. Raise ConfigError for
    volumes in pools Wyng cannot read."""
    volumes: list[PlannedVolume] = []
    unsupported: list[str] = []
    settings_only: list[str] = []
    for qube in qubes:
        kinds = qube.klass.backed_up_volumes
        if not kinds:
            settings_only.append(qube.name)
            continue
        for kind in kinds:
            vol = qube.volume(kind)
            if vol is None:
                continue
            pool = pools.get(vol.pool)
            if pool is None or not pool.supported or pool.wyng_path is None:
                unsupported.append(f"{qube.name}:{kind} (pool {vol.pool})")
                continue
            driver = PoolDriver(pool.driver)
            local = volnames.archive_name(qube.name, kind, driver, vol.vid)
            archived = local
            if local not in known:
                other = PoolDriver.LVM_THIN if driver is PoolDriver.FILE_REFLINK else PoolDriver.FILE_REFLINK
                alias = volnames.convert(local, other, qube.klass is QubeClass.TEMPLATE)
                if alias is not None and alias in known:
                    archived = alias  # Wyng renames it to `local` and sends incrementally
            volumes.append(PlannedVolume(qube.name, kind, pool.wyng_path, local, archived, driver, vol.size,
                                         archived in known))
    if unsupported:
        raise ConfigError(
            "these volumes are in pools Wyng cannot back up: " + ", ".join(unsupported),
            hint="Wyng reads lvm_thin and file-reflink pools; --exclude these qubes",
        )
    return BackupPlan(
        qubes=tuple(q.name for q in qubes),
        volumes=tuple(volumes),
        running=tuple(q.name for q in qubes if q.running),
        settings_only=tuple(settings_only),
    )


def check_live_volumes(qubes: Sequence[Qube]) -> None:
    """Refuse (QubesError) to back up a running qube whose data volume keeps no
    snapshots (`revisions_to_keep = -1`, Qubes 4.3): it is written live, so Wyng
    would copy data changing under it. qvm-backup refuses the same."""
    live = [f"{q.name}:{v.kind}" for q in qubes if q.running for v in q.volumes
            if v.kind in q.klass.backed_up_volumes and v.revisions_to_keep == -1 and v.save_on_stop]
    if live:
        raise SnapshotsDisabledError(
            "running qubes whose volumes have snapshots disabled (revisions_to_keep -1) cannot be backed up "
            f"consistently: {', '.join(live)}",
            hint="shut them down first, or pass --shutdown to have them stopped and started again")


def new_session(before: Collection[str], after: Archive, not_before: str = "") -> str | None:
    """The session the send just made: the newest one holding the settings bundle
    that was not among the archive's sessions `before`, and not older than the
    send (`not_before`, a session id: another writer's session never counts)."""
    old = set(before)
    meta = after.volumes.get(volnames.METADATA_VOLUME)
    candidates = sorted(s for s in set(meta.sessions) - old if s >= not_before) if meta is not None else []
    return candidates[-1] if candidates else None


def session_id_now(now: float | None = None) -> str:
    return time.strftime("%Y%m%d-%H%M%S", time.localtime(now))


# -- running ------------------------------------------------------------------------
def run_backup(
    qubes: QubesPort,
    wyng: Wyng,
    request: BackupRequest,
    reporter: Reporter,
    workdir: str,
    known_archives: KnownArchives | None = None,
) -> BackupResult:
    """Back up the requested qubes into the archive; return per-qube outcomes.

    With `known_archives`, the archive's catalogue is read only when the record
    kept from earlier runs cannot answer what the plan needs (wyngq.wyng.known):
    then the send is the only Wyng call. dom0's home and configuration go in the
    same session when `request.dom0` asks for them (wyngq.dom0.backup), written
    to a spool directory on disk that is removed afterwards. With
    `request.shutdown`, the selected running qubes are stopped first and started
    again afterwards (wyngq.backup_shutdown)."""
    listed = qubes.list_qubes()
    loaded: dict[str, Qube] = {}

    def load(name: str) -> Qube:
        if name not in loaded:
            loaded[name] = qubes.qube(name)
        return loaded[name]

    names = select_qubes(request, listed, lambda n: load(n).include_in_backups, lambda n: load(n).tags)
    if not request.shutdown or not any(load(n).running for n in names):
        return _with_spool(qubes, wyng, request, reporter, workdir, known_archives, [load(n) for n in names])
    order = shutdown_order(names, qubes.overview(), request.shutdown_dependants)
    if request.dry_run:
        reporter.event(ShutdownPlanned(tuple(order), dry_run=True))
        return _with_spool(qubes, wyng, request, reporter, workdir, known_archives, [load(n) for n in names])
    with stopped_for_backup(qubes, order, reporter) as stopped:
        result = _with_spool(qubes, wyng, request, reporter, workdir, known_archives, [qubes.qube(n) for n in names])
    return replace(result, shut_down=tuple(stopped.stopped), restarted=tuple(stopped.started),
                   warnings=result.warnings + tuple(stopped.warnings))


def _with_spool(
    qubes: QubesPort,
    wyng: Wyng,
    request: BackupRequest,
    reporter: Reporter,
    workdir: str,
    known_archives: KnownArchives | None,
    selected: list[Qube],
) -> BackupResult:
    if not request.dom0.wanted:
        return _run_backup(qubes, wyng, request, reporter, workdir, known_archives, None, selected)
    with dom0_backup.spool(paths.spool_dir()) as spool:
        return _run_backup(qubes, wyng, request, reporter, workdir, known_archives, spool, selected)


def _run_backup(
    qubes: QubesPort,
    wyng: Wyng,
    request: BackupRequest,
    reporter: Reporter,
    workdir: str,
    known_archives: KnownArchives | None,
    spool: str | None,
    selected: list[Qube],
) -> BackupResult:
    known = known_archives.get(wyng.target) if known_archives is not None else None
    opened = known is None
    if known is None:
        reporter.event(Opening(wyng.target.dest))  # Wyng derives the key first: seconds of silence
        known = KnownArchive.of(wyng.catalog(), wyng.target.executable)  # checks Wyng's version too
        if known_archives is not None:
            known_archives.put(wyng.target, known)
    schedule: tuple[QubeDue, ...] = ()
    if request.max_age is not None:
        names = tuple(q.name for q in selected)
        disposable = {q.name for q in selected if not q.klass.backed_up_volumes}
        schedule = due_qubes(names, disposable, known.last, request.max_age, time.time())
        due = {e.name for e in schedule if e.due}
        selected = [q for q in selected if q.name in due]
        if not selected:
            return BackupResult(session=None, dry_run=request.dry_run, qubes=(), schedule=schedule)
    check_live_volumes(selected)
    pools = qubes.pools()
    plan = plan_backup(selected, pools, known.volumes)
    if not plan.volumes:
        raise UsageError(
            "only disposable qubes selected: a backup needs at least one qube with data",
            hint="add a qube with volumes to the selection",
        )
    reporter.event(BackupPlanned(
        qubes=plan.qubes,
        volumes=tuple(v.local_name for v in plan.volumes),
        running=plan.running,
        dry_run=request.dry_run,
        sizes={v.local_name: v.size for v in plan.volumes},
    ))

    settings, unreadable = read_settings(qubes, plan.qubes)
    plan = plan.without(unreadable)
    if not plan.volumes:
        raise QubesError("no qube left to back up: " + "; ".join(unreadable.values()))
    manifest = bundle.encode_manifest(settings, wyngq_version=__version__, qubes_version=qubes.qubes_version(),
                                      prefs=_global_prefs(qubes))
    last_manifests = carry.LastManifests(known_archives)
    manifest = carry.encode_with_carried(
        manifest, carry.carried_for(last_manifests.get(wyng.target, known), plan.qubes))
    bundle_path = os.path.join(workdir, "qubes-metadata.tgz")
    bundle.write_bundle(bundle_path, qubes.state_files(plan.qubes), manifest)
    local_from = os.path.join(workdir, "volumes.json")
    with open(local_from, "w", encoding="utf-8") as handle:
        json.dump(plan.local_from(), handle)
    streams = _dom0_streams(request.dom0, wyng, spool, reporter)
    if request.dry_run:
        result = dry_run_result(plan, schedule, _dom0_outcomes(streams, set(), {}))
        return replace(result, qubes=result.qubes + _unreadable(unreadable))

    _wait_for_new_second(known.newest)
    if not opened:
        reporter.event(Opening(wyng.target.dest))
    started = session_id_now()
    sizes = {v.local_name: v.size for v in plan.volumes} | {v.archive_name: v.size for v in plan.volumes}
    wyng.on_output = wyng_progress(reporter, lambda v: (plan.volume_owner(v), sizes.get(v)))
    try:
        sent = wyng.send(
            local_from=local_from,
            metadata_file=bundle_path,
            tags=(TAG, *request.tags),
            dedup=request.dedup,
            autoprune=request.autoprune,
            other_imports=[(s.volume, s.path) for s in streams],
        )
        failed_by_wyng = {plan.volume_owner(v) or v for v in sent.failed_volumes}
        session, missing = _confirm_session(wyng, known.sessions, plan, sent.stdout, started,
                                            extra=[s.volume for s in streams])
    except BaseException:
        # a send that stopped may have renamed volumes already (Wyng writes that first):
        # the next backup reads the catalogue instead of trusting the record
        if known_archives is not None:
            known_archives.forget(wyng.target)
        raise
    outcomes = _outcomes(plan, failed_by_wyng, missing)
    dom0 = _dom0_outcomes(streams, failed_by_wyng, missing)
    if known_archives is not None:
        if all(outcome.ok for outcome in outcomes) and all(item.ok for item in dom0):
            known_archives.put(wyng.target, known.with_session(
                session, [*plan.sent_names(), volnames.METADATA_VOLUME, *(d.volume for d in dom0)],
                renamed=plan.renamed_names(), qubes=plan.qubes))
        else:  # perhaps the record misled the plan (wyngq.wyng.known): the next backup reads the catalogue
            known_archives.forget(wyng.target)
    last_manifests.put(wyng.target, session, manifest)  # after `forget`, which drops the copy too

    warnings: list[str] = []
    check = None
    if request.check_after_send:
        check = "ok" if wyng.arch_check("newest").returncode == 0 else "failed"
    if check == "failed":
        # backup_timestamp says "backed up": not for a session the check found damaged,
        # so that the next (scheduled or Salt) backup runs again
        warnings.append("backup_timestamp not set: the archive check after sending failed")
    else:
        stamp = int(time.time())
        for outcome in outcomes:
            if outcome.ok:
                try:
                    qubes.set_backup_timestamp(outcome.name, stamp)
                except Exception as err:
                    warnings.append(f"could not set backup_timestamp of {outcome.name}: {err}")
    return BackupResult(session=session, dry_run=False, qubes=outcomes + _unreadable(unreadable), check=check,
                        warnings=tuple(warnings), dom0=dom0, schedule=schedule)


def read_settings(qubes: QubesPort, names: Sequence[str]) -> tuple[list[QubeSettings], dict[str, str]]:
    """Each qube's settings for the bundle, and the qubes whose settings could not
    be read (name -> why). Such a qube is left out of the backup and fails loudly:
    a settings bundle without, say, its firewall rules would restore it open."""
    settings: list[QubeSettings] = []
    unreadable: dict[str, str] = {}
    for name in names:
        try:
            settings.append(qubes.settings(name))
        except QubesError as err:
            unreadable[name] = str(err)
    return settings, unreadable


def _unreadable(unreadable: Mapping[str, str]) -> tuple[QubeOutcome, ...]:
    return tuple(QubeOutcome(name, False, (), False, f"its settings could not be read, so it was not backed up: "
                                                    f"{why}") for name, why in sorted(unreadable.items()))


def _dom0_streams(request: Dom0Backup, wyng: Wyng, spool: str | None, reporter: Reporter) -> list[Dom0Stream]:
    """Write the dom0 streams the request asks for (none without a spool)."""
    if spool is None or not request.wanted:
        return []
    return dom0_backup.write_for_send(request, spool, wyng.target.dest, wyng.target.meta_dir, reporter)


def _dom0_outcomes(streams: Sequence[Dom0Stream], failed: set[str],
                   missing: Mapping[str, list[str]]) -> tuple[Dom0Outcome, ...]:
    outcomes = []
    for stream in streams:
        error = None
        if stream.volume in failed:
            error = "Wyng could not send it"
        elif stream.volume in missing:
            error = "Wyng did not record it"
        outcomes.append(dom0_backup.outcome(stream, error))
    return tuple(outcomes)


def _global_prefs(qubes: QubesPort) -> dict[str, PropertyValue] | None:
    """dom0's global preferences for the bundle; None (not recorded) if qubesd
    will not tell: the qubes' backup does not depend on them."""
    try:
        return prefs.capture(qubes.global_prefs())
    except QubesError as err:
        log.warning("dom0's global preferences are not recorded in this backup: %s", err.message)
        return None


def dry_run_result(plan: BackupPlan, schedule: tuple[QubeDue, ...] = (),
                   dom0: tuple[Dom0Outcome, ...] = ()) -> BackupResult:
    """What a send of `plan` would do, without Wyng: a qube whose volume file is
    missing would fail (Wyng only warns and records nothing for it)."""
    missing: dict[str, list[str]] = {}
    for vol in plan.volumes:
        if not os.path.exists(vol.local_path()):
            missing.setdefault(vol.qube, []).append(vol.local_path())
    outcomes = tuple(
        dataclasses.replace(q, error="its volume file is missing: " + ", ".join(missing[q.name]))
        if q.name in missing else q
        for q in _outcomes(plan, set(), missing)
    )
    return BackupResult(session=None, dry_run=True, qubes=outcomes, schedule=schedule, volumes=plan.volumes,
                        dom0=dom0)


def sent_volumes(stdout: str) -> tuple[str | None, set[str]]:
    """From `wyng send` output: the session it wrote, and the volumes it finished
    (a full progress bar, or `no change` with --send-unchanged)."""
    session: str | None = None
    finished: set[str] = set()
    current: str | None = None
    for line in stdout.replace("\r", "\n").splitlines():
        text = line.strip()
        if match := _SENDING.match(text):
            session = match["session"] if session in (None, match["session"]) else "?"
        elif match := _VOLUME_HEADER.match(text):
            current = match["name"]
        elif current is not None and ("100%" in text or text == "no change"):
            finished.add(current)
            current = None
    return (session if session != "?" else None), finished


_SENDING = re.compile(r"^Sending backup session (?P<session>\d{8}-\d{6}):")
_VOLUME_HEADER = re.compile(r"^Volume '(?P<name>[^']+)'")


def _confirm_session(
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


def _outcomes(plan: BackupPlan, failed: set[str], missing: Mapping[str, list[str]]) -> tuple[QubeOutcome, ...]:
    outcomes = []
    for name in plan.qubes:
        vols = tuple(v.local_name for v in plan.volumes if v.qube == name)
        running = name in plan.running
        note = "running: its state at its last start was saved" if running else None
        if name in plan.settings_only:
            note = "disposable: settings only"
        if name in failed:
            outcomes.append(QubeOutcome(name, False, vols, running, "Wyng could not send its volumes", note))
        elif name in missing:
            error = "Wyng did not record " + ", ".join(missing[name]) + " (is the volume file missing?)"
            outcomes.append(QubeOutcome(name, False, vols, running, error, note))
        else:
            outcomes.append(QubeOutcome(name, True, vols, running, None, note))
    return tuple(outcomes)


def _wait_for_new_second(newest: str | None) -> None:
    """Wyng names sessions by the second and refuses a duplicate: never start a
    send in the same second as the archive's newest session."""
    while newest is not None and session_id_now() == newest:
        time.sleep(0.05)
