"""A restore's part of the JSON contract (docs/json.md): its plan events and
its report (the data of its result line). Kept apart from what every action
uses (wyngq.contract.events, .results), so that no other action defines them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from wyngq.contract.serialize import OMIT_NONE, named


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
class ProblemReport:
    code: str
    message: str
    resolution: str
    blocking: bool
    setting: str | None = field(default=None, metadata=OMIT_NONE)
    old: str | None = None
    new: str | None = None


@dataclass(frozen=True)
class RestoredVolume:
    volume: str
    archive: str
    size: int
    pool: str
    replaces: bool


@dataclass(frozen=True)
class RestoredQube:
    """One qube of a restore: its plan, and (once carried out) its outcome."""

    name: str
    target: str
    klass: str = field(metadata=named("class"))
    action: str = ""
    session: str = ""
    problems: tuple[ProblemReport, ...] = ()
    volumes: tuple[RestoredVolume, ...] = ()
    ok: bool | None = field(default=None, metadata=OMIT_NONE)
    failed_step: str | None = field(default=None, metadata=OMIT_NONE)
    error: str | None = field(default=None, metadata=OMIT_NONE)
    hint: str | None = field(default=None, metadata=OMIT_NONE)
    changes: int | None = field(default=None, metadata=OMIT_NONE)
    revisions: tuple[str, ...] | None = field(default=None, metadata=OMIT_NONE)


@dataclass(frozen=True)
class PrefChange:
    key: str
    old: str | None
    new: str | None
    ok: bool


@dataclass(frozen=True)
class PrefsReport:
    changes: tuple[PrefChange, ...]
    problems: tuple[ProblemReport, ...]


@dataclass(frozen=True)
class OpChange:
    op: str
    key: str
    old: str | None
    new: str | None


@dataclass(frozen=True)
class StepReport:
    step: str
    qube: str | None
    changes: tuple[OpChange, ...]


@dataclass(frozen=True)
class RestoreReport:
    """A restore of qubes: the session(s), each qube's plan and outcome, problems,
    and (for dry runs and refusals) the planned steps with what each would change."""

    session: str
    sessions: tuple[str, ...]
    dry_run: bool
    refused: bool
    changed: bool
    summary: str
    settings_source: str
    qubes: tuple[RestoredQube, ...]
    warnings: tuple[str, ...]
    menus: tuple[str, ...]
    code: str | None = field(default=None, metadata=OMIT_NONE)  # a refusal's or a failure's code
    prefs: PrefsReport | None = field(default=None, metadata=OMIT_NONE)
    steps: tuple[StepReport, ...] | None = field(default=None, metadata=OMIT_NONE)

