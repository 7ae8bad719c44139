"""What a backup will send (pure): the volumes and their archive names, the
refusals decided before anything runs, the outcomes per qube, and a dry run's
result."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Collection, Mapping, Sequence

from wyngq import volnames
from wyngq.backup.model import BackupPlan, BackupResult, PlannedVolume, QubeOutcome
from wyngq.dom0.backup import Dom0Outcome
from wyngq.errors import ConfigError, SnapshotsDisabledError
from wyngq.model import Pool, PoolDriver, Qube, QubeClass
from wyngq.schedule import QubeDue


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
        for q in qube_outcomes(plan, set(), missing)
    )
    return BackupResult(session=None, dry_run=True, qubes=outcomes, schedule=schedule, volumes=plan.volumes,
                        dom0=dom0)


def qube_outcomes(plan: BackupPlan, failed: set[str], missing: Mapping[str, list[str]]) -> tuple[QubeOutcome, ...]:
    """Each planned qube's outcome, given the qubes Wyng could not send (`failed`)
    and, by qube, the planned volumes the new session lacks (`missing`)."""
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

