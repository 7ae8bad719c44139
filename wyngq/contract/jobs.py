"""The qrexec service's job records, as `status` shows them (docs/json.md)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class JobInfo:
    """A qrexec job's record, as `status` shows it."""

    id: str
    profile: str
    action: str
    caller: str
    qubes: tuple[str, ...]
    started: float
    state: str  # running | finished | lost
    finished: float | None
    exit_code: int | None
    code: str | None
    message: str | None
    session: str | None
    caller_gone: bool


@dataclass(frozen=True)
class StatusResult:
    """dom0's `status`: the recorded jobs of each profile."""

    jobs: dict[str, tuple[JobInfo, ...]]


@dataclass(frozen=True)
class ProfileJobs:
    """The service's `status` (and the client's): one profile's jobs, or the one asked for."""

    profile: str
    jobs: tuple[JobInfo, ...]
