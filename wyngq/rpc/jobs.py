"""Job records: what `+status` (and `status` in dom0) shows, per profile.

Each long call (backup, restore, verify, prune) gets a record the moment it is
allowed to start, written again when it ends: one small JSON file per job,
`STATE_DIR/jobs/PROFILE/JOB_ID.json`, replaced atomically. The record outlives
the caller: a caller that disconnects does not stop the job (the service
ignores EPIPE), so its outcome lands here and in the audit log. A record left
`running` by a process that no longer exists (dom0 crashed, the service was
killed) reads back as `lost`. The newest KEEP finished records per profile
are kept.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass

from wyngq.contract.jobs import JobInfo
from wyngq.errors import UsageError
from wyngq.paths import STATE_DIR

KEEP = 50
SHOWN = 20


@dataclass(frozen=True)
class JobRecord:
    id: str
    profile: str
    action: str
    caller: str
    qubes: tuple[str, ...]
    started: float
    state: str = "running"  # running | finished | lost
    finished: float | None = None
    exit_code: int | None = None
    code: str | None = None
    message: str | None = None
    session: str | None = None
    caller_gone: bool = False
    pid: int = 0
    pid_start: str = ""


class JobStore:
    """Job records under `state_dir` (root-only)."""

    def __init__(self, state_dir: str = STATE_DIR) -> None:
        self.root = os.path.join(state_dir, "jobs")

    def start(self, profile: str, action: str, caller: str, qubes: tuple[str, ...]) -> JobRecord:
        now = time.time()
        job_id = time.strftime("%Y%m%d-%H%M%S", time.localtime(now)) + "-" + secrets.token_hex(4)
        pid = os.getpid()
        record = JobRecord(job_id, profile, action, caller, qubes, now, pid=pid, pid_start=_process_start(pid))
        self._write(record)
        self._forget_old(profile)
        return record

    def finish(
        self,
        record: JobRecord,
        *,
        exit_code: int,
        code: str,
        message: str | None = None,
        session: str | None = None,
        caller_gone: bool = False,
        qubes: tuple[str, ...] | None = None,
    ) -> JobRecord:
        """Record how the job ended (and, if given, the qubes it ended up concerning)."""
        done = dataclasses.replace(
            record,
            qubes=qubes if qubes is not None else record.qubes,
            state="finished",
            finished=time.time(),
            exit_code=exit_code,
            code=code,
            message=message,
            session=session,
            caller_gone=caller_gone,
        )
        self._write(done)
        return done

    def jobs(self, profile: str, limit: int = SHOWN) -> list[JobRecord]:
        """The profile's jobs, newest first: running ones and recent outcomes."""
        records = [self._read(path) for path in self._paths(profile)]
        found = sorted((r for r in records if r is not None), key=lambda r: (r.started, r.id), reverse=True)
        return [_with_liveness(r) for r in found[:limit]]

    def job(self, profile: str, job_id: str) -> JobRecord:
        record = self._read(os.path.join(self.root, profile, f"{job_id}.json"))
        if record is None:
            raise UsageError(f"no job {job_id} for profile {profile!r}", hint="`status` lists the recent jobs")
        return _with_liveness(record)

    # -- files ------------------------------------------------------------------------
    def _write(self, record: JobRecord) -> None:
        directory = os.path.join(self.root, record.profile)
        os.makedirs(directory, mode=0o700, exist_ok=True)
        path = os.path.join(directory, f"{record.id}.json")
        temp = f"{path}.{os.getpid()}.tmp"
        with open(temp, "w", encoding="utf-8") as handle:
            json.dump(dataclasses.asdict(record), handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)

    def _paths(self, profile: str) -> list[str]:
        directory = os.path.join(self.root, profile)
        with contextlib.suppress(FileNotFoundError):
            return [os.path.join(directory, n) for n in sorted(os.listdir(directory)) if n.endswith(".json")]
        return []

    @staticmethod
    def _read(path: str) -> JobRecord | None:
        try:
            with open(path, encoding="utf-8") as handle:
                data = json.load(handle)
            data["qubes"] = tuple(data["qubes"])
            return JobRecord(**data)
        except (OSError, ValueError, TypeError, KeyError):
            return None

    def _forget_old(self, profile: str) -> None:
        records = [r for r in (self._read(p) for p in self._paths(profile)) if r is not None]
        finished = sorted((r for r in records if r.state != "running"), key=lambda r: r.started, reverse=True)
        for old in finished[KEEP:]:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(self.root, profile, f"{old.id}.json"))


def _with_liveness(record: JobRecord) -> JobRecord:
    if record.state == "running" and not _alive(record.pid, record.pid_start):
        return dataclasses.replace(record, state="lost", message="the job's process ended without recording an outcome")
    return record


def _alive(pid: int, start: str) -> bool:
    """Whether process `pid` still runs and is the same process (not a reused pid)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return not start or _process_start(pid) == start


def _process_start(pid: int) -> str:
    """The process's start time in clock ticks since boot (/proc/PID/stat field 22), or ""."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            stat = handle.read()
    except OSError:
        return ""
    fields = stat.rpartition(")")[2].split()
    return fields[19] if len(fields) > 19 else ""


def job_infos(records: Sequence[JobRecord]) -> tuple[JobInfo, ...]:
    """Job records for a result, without the bookkeeping fields (pid)."""
    return tuple(JobInfo(r.id, r.profile, r.action, r.caller, r.qubes, r.started, r.state, r.finished, r.exit_code,
                         r.code, r.message, r.session, r.caller_gone) for r in records)
