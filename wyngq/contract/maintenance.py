"""The plan events of verify, prune, delete and the monitor (docs/json.md);
the other events are in wyngq.contract.events."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal


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
