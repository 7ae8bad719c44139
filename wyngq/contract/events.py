"""The progress events the engine reports while it works (docs/json.md).

Each event is a frozen dataclass; `TYPE` is its JSON `type`. The `plan` events
share a type and tell their action apart by `action`, as the two `restore_plan`
events tell theirs apart by their fields. `WyngOutput` (one line Wyng printed)
is internal: shown with -v on a terminal, never written as JSON.

The events only a restore or a maintenance action reports are in
`wyngq.contract.restore` and `wyngq.contract.maintenance`, so that a backup
does not define them (each frozen dataclass costs about half a millisecond at
start-up); `wyngq.contract.registry.public_events()` lists them all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Literal

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


if TYPE_CHECKING:  # every event; the ones only other actions report are defined beside them
    from wyngq.contract.maintenance import DeletePlanned, MonitorPlanned, PrunePlanned, VerifyPlanned
    from wyngq.contract.restore import Dom0RestorePlanned, RestorePlanned

    Event = (BackupPlanned | ShutdownPlanned | VerifyPlanned | PrunePlanned | DeletePlanned | MonitorPlanned
             | Opening | VolumeProgress | StepStarted | RestorePlanned | Dom0RestorePlanned | Dom0Streamed
             | QubeShutDown | QubeStarted | QubeFailed | JobAccepted | WyngOutput)
