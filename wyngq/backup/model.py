"""What a backup is asked to do, what it plans to send, and what it did."""

from __future__ import annotations

import os
from collections.abc import Collection
from dataclasses import dataclass, field

from wyngq.dom0.backup import Dom0Backup, Dom0Outcome
from wyngq.errors import ExitCode
from wyngq.model import PoolDriver
from wyngq.schedule import QubeDue

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
