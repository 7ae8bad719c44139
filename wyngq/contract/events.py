"""The progress events the engine reports while it works (docs/json.md).

Each event is a frozen dataclass; `TYPE` is its JSON `type`. The `plan` events
share a type and tell their action apart by `action`, as the two `restore_plan`
events tell theirs apart by their fields. `WyngOutput` (one line Wyng printed)
is internal: shown with -v on a terminal, never written as JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from wyngq.contract.serialize import OMIT_NONE


@dataclass(frozen=True)
class BackupPlanned:
    """A backup's plan, before anything is sent."""

    TYPE: ClassVar[str] = "plan"
    qubes: tuple[str, ...]
    volumes: tuple[str, ...]
    running: tuple[str, ...]
    dry_run: bool
    sizes: dict[str, int]  # volume -> bytes Wyng reads
    action: Literal["backup"] = "backup"


@dataclass(frozen=True)
class ShutdownPlanned:
    """A dry run of `backup --shutdown`: the qubes it would stop, in order."""

    TYPE: ClassVar[str] = "plan"
    qubes: tuple[str, ...]
    dry_run: bool
    action: Literal["shutdown"] = "shutdown"


@dataclass(frozen=True)
class VerifyPlanned:
    TYPE: ClassVar[str] = "plan"
    session: str
    qubes: tuple[str, ...]
    action: Literal["verify"] = "verify"


@dataclass(frozen=True)
class PrunePlanned:
    TYPE: ClassVar[str] = "plan"
    dry_run: bool
    sessions: dict[str, tuple[str, ...]]  # qube -> sessions removed
    dom0: dict[str, tuple[str, ...]] = field(default_factory=dict)  # dom0 item -> sessions removed
    action: Literal["prune"] = "prune"


@dataclass(frozen=True)
class DeletePlanned:
    TYPE: ClassVar[str] = "plan"
    qube: str
    volumes: tuple[str, ...]
    action: Literal["delete"] = "delete"


@dataclass(frozen=True)
class MonitorPlanned:
    TYPE: ClassVar[str] = "plan"
    volumes: tuple[str, ...]
    action: Literal["monitor"] = "monitor"


@dataclass(frozen=True)
class Opening:
    """Wyng opens the archive (it derives the key first: seconds of silence)."""

    TYPE: ClassVar[str] = "opening"
    dest: str


@dataclass(frozen=True)
class VolumeProgress:
    """One volume as Wyng works on it: started, progress (percent in steps of 5), done; or deleted."""

    TYPE: ClassVar[str] = "volume"
    volume: str
    state: Literal["started", "progress", "done", "deleted"]
    percent: int | None = field(default=None, metadata=OMIT_NONE)
    qube: str | None = field(default=None, metadata=OMIT_NONE)
    size: int | None = field(default=None, metadata=OMIT_NONE)


@dataclass(frozen=True)
class StepStarted:
    """A step begins: a restore's step of one qube (or of all, qube absent), or verify's arch-check."""

    TYPE: ClassVar[str] = "step"
    step: str
    qube: str | None = field(default=None, metadata=OMIT_NONE)
    operations: int | None = field(default=None, metadata=OMIT_NONE)


@dataclass(frozen=True)
class PlannedRestoreQube:
    name: str
    target: str
    action: str
    session: str | None


@dataclass(frozen=True)
class RestorePlanned:
    TYPE: ClassVar[str] = "restore_plan"
    session: str
    sessions: tuple[str, ...]
    dry_run: bool
    qubes: tuple[PlannedRestoreQube, ...]
    problems: int
    refused: bool


@dataclass(frozen=True)
class Dom0RestorePlanned:
    TYPE: ClassVar[str] = "restore_plan"
    session: str
    dom0: tuple[str, ...]
    into: dict[str, str]  # item -> the directory it is restored into
    dry_run: bool = False


@dataclass(frozen=True)
class Dom0Streamed:
    """A dom0 item (home, config) written as a stream for Wyng to send."""

    TYPE: ClassVar[str] = "dom0"
    item: str
    volume: str
    members: int
    data_bytes: int
    bytes: int


@dataclass(frozen=True)
class QubeShutDown:
    TYPE: ClassVar[str] = "shutdown"
    qube: str


@dataclass(frozen=True)
class QubeStarted:
    TYPE: ClassVar[str] = "start"
    qube: str


@dataclass(frozen=True)
class QubeFailed:
    TYPE: ClassVar[str] = "qube_failed"
    qube: str
    step: str
    error: str


@dataclass(frozen=True)
class JobAccepted:
    """The qrexec service accepted a long call and recorded it as a job."""

    TYPE: ClassVar[str] = "job"
    id: str
    profile: str
    action: str


@dataclass(frozen=True)
class WyngOutput:
    """A line Wyng printed: internal, never written as JSON."""

    TYPE: ClassVar[str] = "wyng_output"
    line: str


Event = (BackupPlanned | ShutdownPlanned | VerifyPlanned | PrunePlanned | DeletePlanned | MonitorPlanned | Opening
         | VolumeProgress | StepStarted | RestorePlanned | Dom0RestorePlanned | Dom0Streamed | QubeShutDown
         | QubeStarted | QubeFailed | JobAccepted | WyngOutput)

# every event that is written as JSON, for the schema and the docs
PUBLIC_EVENTS: tuple[type, ...] = (
    BackupPlanned, ShutdownPlanned, VerifyPlanned, PrunePlanned, DeletePlanned, MonitorPlanned, Opening,
    VolumeProgress, StepStarted, RestorePlanned, Dom0RestorePlanned, Dom0Streamed, QubeShutDown, QubeStarted,
    QubeFailed, JobAccepted,
)
