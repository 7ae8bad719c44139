"""Running a backup: the qubes chosen, one Wyng send for everything, then the
archive record, the check after sending and the qubes' backup timestamps.

All selected volumes of all pools go to Wyng in ONE `send`, the settings bundle
in the same session, so data and settings share a session id
(docs/architecture.md). After the send every planned volume must be in the new
session (wyngq.backup.session).

A dry run plans from the archive record or the catalogue (`wyng --json list`
only reads) and checks that each volume's file is there; it never runs
`wyng send --dry-run`, which adds volumes to the archive, rewrites its
`archive.ini` and leaves snapshot files in the pools, and which fails on a
volume Wyng has no snapshot of yet (after a restore: docs/everyday.md).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from wyngq import __version__, bundle, carry, globalprefs, paths, phases, volnames
from wyngq.backup.model import TAG, BackupPlan, BackupRequest, BackupResult, QubeOutcome
from wyngq.backup.plan import check_live_volumes, dry_run_result, plan_backup, qube_outcomes
from wyngq.backup.select import select_qubes
from wyngq.backup.session import confirm_session, session_id_now, wait_for_new_second
from wyngq.backup.shutdown import shutdown_order, stopped_for_backup
from wyngq.contract.events import BackupPlanned, Opening, ShutdownPlanned
from wyngq.dom0 import backup as dom0_backup
from wyngq.dom0.backup import Dom0Backup, Dom0Outcome, Dom0Stream
from wyngq.errors import QubesError, UsageError
from wyngq.events import Reporter, wyng_progress
from wyngq.model import PropertyValue, Qube, QubeSettings
from wyngq.qubes.port import QubesPort
from wyngq.schedule import QubeDue, due_qubes
from wyngq.wyng.known import KnownArchive, KnownArchives
from wyngq.wyng.runner import Wyng

log = logging.getLogger(__name__)


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
    again afterwards (wyngq.backup.shutdown)."""
    loaded: dict[str, Qube] = {}

    def load(name: str) -> Qube:
        if name not in loaded:
            loaded[name] = qubes.qube(name)
        return loaded[name]

    with phases.phase("select"):
        listed = qubes.list_qubes()
        names = select_qubes(request, listed, lambda n: load(n).include_in_backups, lambda n: load(n).tags)
    archive = _open(wyng, reporter, known_archives)
    with phases.phase("read qubes"):
        selected = [load(n) for n in names]
    if request.max_age is not None:  # before any qube is stopped: only the due ones are
        selected, schedule = _due_only(selected, archive.known, request.max_age)
        archive = replace(archive, schedule=schedule)
        if not selected:
            return BackupResult(session=None, dry_run=request.dry_run, qubes=(), schedule=schedule)
    if not request.shutdown or not any(q.running for q in selected):
        return _with_spool(qubes, wyng, request, reporter, workdir, known_archives, archive, selected)
    order = shutdown_order([q.name for q in selected], qubes.overview(), request.shutdown_dependants)
    if request.dry_run:
        reporter.event(ShutdownPlanned(tuple(order), dry_run=True))
        # planned as the real run would find them: stopped
        halted = [replace(q, running=False) if q.name in order else q for q in selected]
        return _with_spool(qubes, wyng, request, reporter, workdir, known_archives, archive, halted)
    with stopped_for_backup(qubes, order, reporter) as stopped:
        result = _with_spool(qubes, wyng, request, reporter, workdir, known_archives, archive,
                             [qubes.qube(q.name) for q in selected])
    return replace(result, shut_down=tuple(stopped.stopped), restarted=tuple(stopped.started),
                   warnings=result.warnings + tuple(stopped.warnings))


@dataclass(frozen=True)
class _Opened:
    """What the archive holds, whether its catalogue was read for it (the
    archive opened), and with --max-age which qubes were due."""

    known: KnownArchive
    opened: bool
    schedule: tuple[QubeDue, ...] = ()


def _with_spool(
    qubes: QubesPort,
    wyng: Wyng,
    request: BackupRequest,
    reporter: Reporter,
    workdir: str,
    known_archives: KnownArchives | None,
    archive: _Opened,
    selected: list[Qube],
) -> BackupResult:
    if not request.dom0.wanted or request.dry_run:  # a dry run counts the dom0 streams without writing them
        return _run_backup(qubes, wyng, request, reporter, workdir, known_archives, archive, None, selected)
    with dom0_backup.spool(paths.spool_dir()) as spool:
        return _run_backup(qubes, wyng, request, reporter, workdir, known_archives, archive, spool, selected)


def _run_backup(
    qubes: QubesPort,
    wyng: Wyng,
    request: BackupRequest,
    reporter: Reporter,
    workdir: str,
    known_archives: KnownArchives | None,
    archive: _Opened,
    spool: str | None,
    selected: list[Qube],
) -> BackupResult:
    known, schedule = archive.known, archive.schedule
    with phases.phase("plan"):
        plan = _plan(qubes, selected, known, request.dry_run, reporter)
    with phases.phase("settings"):
        settings, unreadable = read_settings(qubes, plan.qubes)
    plan = plan.without(unreadable)
    if not plan.volumes:
        raise QubesError("no qube left to back up: " + "; ".join(unreadable.values()))
    with phases.phase("bundle"):
        last_manifests = carry.LastManifests(known_archives)
        manifest = _manifest(qubes, settings, plan, last_manifests.get(wyng.target, known))
        bundle_path, local_from = _write_send_inputs(qubes, plan, manifest, workdir)
    streams = _dom0_streams(request.dom0, wyng, spool, reporter)
    if request.dry_run:
        result = dry_run_result(plan, schedule, _dom0_outcomes(streams, set(), {}))
        return replace(result, qubes=result.qubes + _unreadable(unreadable))

    wait_for_new_second(known.newest)
    if not archive.opened:
        reporter.event(Opening(wyng.target.dest))
    try:
        session, failed_by_wyng, missing = _send(wyng, request, reporter, plan, known, bundle_path, local_from,
                                                 streams)
    except BaseException:
        # a send that stopped may have renamed volumes already (Wyng writes that first):
        # the next backup reads the catalogue instead of trusting the record
        if known_archives is not None:
            known_archives.forget(wyng.target)
        raise
    outcomes = qube_outcomes(plan, failed_by_wyng, missing)
    dom0 = _dom0_outcomes(streams, failed_by_wyng, missing)
    with phases.phase("record"):
        if known_archives is not None:
            _record(known_archives, wyng, known, session, plan, outcomes, dom0)
        last_manifests.put(wyng.target, session, manifest)  # after `forget`, which drops the copy too
    with phases.phase("timestamps"):
        check, warnings = _check_and_stamp(qubes, wyng, request.check_after_send, outcomes)
    return BackupResult(session=session, dry_run=False, qubes=outcomes + _unreadable(unreadable), check=check,
                        warnings=warnings, dom0=dom0, schedule=schedule)


def _open(wyng: Wyng, reporter: Reporter, known_archives: KnownArchives | None) -> _Opened:
    """What the archive holds, from the record or else from its catalogue."""
    known = known_archives.get(wyng.target) if known_archives is not None else None
    if known is not None:
        return _Opened(known, opened=False)
    reporter.event(Opening(wyng.target.dest))  # Wyng derives the key first: seconds of silence
    known = KnownArchive.of(wyng.catalog(), wyng.target.executable)  # checks Wyng's version too
    if known_archives is not None:
        known_archives.put(wyng.target, known)
    return _Opened(known, opened=True)


def _due_only(selected: list[Qube], known: KnownArchive, max_age: int) -> tuple[list[Qube], tuple[QubeDue, ...]]:
    """The selected qubes that are due (no session younger than `max_age`), and the schedule of all."""
    names = tuple(q.name for q in selected)
    disposable = {q.name for q in selected if not q.klass.backed_up_volumes}
    schedule = due_qubes(names, disposable, known.last, max_age, time.time())
    due = {e.name for e in schedule if e.due}
    return [q for q in selected if q.name in due], schedule


def _plan(qubes: QubesPort, selected: list[Qube], known: KnownArchive, dry_run: bool,
          reporter: Reporter) -> BackupPlan:
    """The plan for the selected qubes, announced as the `plan` event."""
    check_live_volumes(selected)
    plan = plan_backup(selected, qubes.pools(), known.volumes)
    if not plan.volumes:
        raise UsageError(
            "only disposable qubes selected: a backup needs at least one qube with data",
            hint="add a qube with volumes to the selection",
        )
    reporter.event(BackupPlanned(
        qubes=plan.qubes,
        volumes=tuple(v.local_name for v in plan.volumes),
        running=plan.running,
        dry_run=dry_run,
        sizes={v.local_name: v.size for v in plan.volumes},
    ))
    return plan


def _manifest(qubes: QubesPort, settings: list[QubeSettings], plan: BackupPlan,
              last: carry.LastManifest | None) -> bytes:
    """The bundle's manifest: the planned qubes' settings, dom0's global
    preferences, and the entries carried from the archive's last manifest."""
    manifest = bundle.encode_manifest(settings, wyngq_version=__version__, qubes_version=qubes.qubes_version(),
                                      prefs=_global_prefs(qubes))
    return carry.encode_with_carried(manifest, carry.carried_for(last, plan.qubes))


def _write_send_inputs(qubes: QubesPort, plan: BackupPlan, manifest: bytes, workdir: str) -> tuple[str, str]:
    """Write the settings bundle and Wyng's `--local-from` document; return their paths."""
    bundle_path = os.path.join(workdir, "qubes-metadata.tgz")
    bundle.write_bundle(bundle_path, qubes.state_files(plan.qubes), manifest)
    local_from = os.path.join(workdir, "volumes.json")
    with open(local_from, "w", encoding="utf-8") as handle:
        json.dump(plan.local_from(), handle)
    return bundle_path, local_from


def _send(
    wyng: Wyng,
    request: BackupRequest,
    reporter: Reporter,
    plan: BackupPlan,
    known: KnownArchive,
    bundle_path: str,
    local_from: str,
    streams: Sequence[Dom0Stream],
) -> tuple[str, set[str], dict[str, list[str]]]:
    """The one Wyng send, with progress per volume; return the new session, the
    qubes (or dom0 volumes) Wyng could not send, and the planned volumes missing
    from the session by qube."""
    started = session_id_now()
    sizes = {v.local_name: v.size for v in plan.volumes} | {v.archive_name: v.size for v in plan.volumes}
    wyng.on_output = wyng_progress(reporter, lambda v: (plan.volume_owner(v), sizes.get(v)))
    sent = wyng.send(
        local_from=local_from,
        metadata_file=bundle_path,
        tags=(TAG, *request.tags),
        dedup=request.dedup,
        autoprune=request.autoprune,
        other_imports=[(s.volume, s.path) for s in streams],
    )
    failed_by_wyng = {plan.volume_owner(v) or v for v in sent.failed_volumes}
    session, missing = confirm_session(wyng, known.sessions, plan, sent.stdout, started,
                                       extra=[s.volume for s in streams])
    return session, failed_by_wyng, missing


def _record(known_archives: KnownArchives, wyng: Wyng, known: KnownArchive, session: str, plan: BackupPlan,
            outcomes: Sequence[QubeOutcome], dom0: Sequence[Dom0Outcome]) -> None:
    """Keep the archive record up to date after a send that did everything;
    after any failure drop it, so that the next backup reads the catalogue."""
    if all(outcome.ok for outcome in outcomes) and all(item.ok for item in dom0):
        known_archives.put(wyng.target, known.with_session(
            session, [*plan.sent_names(), volnames.METADATA_VOLUME, *(d.volume for d in dom0)],
            renamed=plan.renamed_names(), qubes=plan.qubes))
    else:  # perhaps the record misled the plan (wyngq.wyng.known): the next backup reads the catalogue
        known_archives.forget(wyng.target)


def _check_and_stamp(qubes: QubesPort, wyng: Wyng, check_after_send: bool,
                     outcomes: Sequence[QubeOutcome]) -> tuple[str | None, tuple[str, ...]]:
    """The archive check after sending, if asked for ("ok"/"failed"/None), then
    the backup_timestamp of each qube backed up; return the check and the warnings."""
    warnings: list[str] = []
    check = None
    if check_after_send:
        check = "ok" if wyng.arch_check("newest").returncode == 0 else "failed"
    if check == "failed":
        # backup_timestamp says "backed up": not for a session the check found damaged,
        # so that the next (scheduled or Salt) backup runs again
        warnings.append("backup_timestamp not set: the archive check after sending failed")
        return check, tuple(warnings)
    stamp = int(time.time())
    for outcome in outcomes:
        if outcome.ok:
            try:
                qubes.set_backup_timestamp(outcome.name, stamp)
            except Exception as err:
                warnings.append(f"could not set backup_timestamp of {outcome.name}: {err}")
    return check, tuple(warnings)


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
    """Write the dom0 streams the request asks for into the spool; with no spool
    (a dry run), read them through and count them without writing anything."""
    if not request.wanted:
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
        return globalprefs.capture(qubes.global_prefs())
    except QubesError as err:
        log.warning("dom0's global preferences are not recorded in this backup: %s", err.message)
        return None

