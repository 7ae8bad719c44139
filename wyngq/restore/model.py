"""The values restore planning produces and apply consumes.

A RestorePlan is complete: apply only executes its steps, in order, through
the Qubes port and one Wyng receive; it never decides anything itself. The
same plan, printed, is the `--dry-run` output (each step's operations carry
the value they replace, so they are also the per-qube diff).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from wyngq.model import DeviceAssignment, LiveQube, Pool, QubeClass, QubeSettings, Volume

GUARD_TAG = "backup-restore-in-progress"


class Action(enum.StrEnum):
    CREATE = "create"
    REPLACE = "replace"
    RENAME = "rename"  # created beside the original, under `QubePlan.target`
    SKIP = "skip"


class ConflictPolicy(enum.StrEnum):
    FAIL = "fail"
    SKIP = "skip"
    REPLACE = "replace"
    RENAME = "rename"


class StepKind(enum.StrEnum):
    GUARD = "guard"
    SHUTDOWN = "shutdown"
    CREATE = "create"
    CAPABILITIES = "capabilities"
    RECEIVE = "receive"
    IMPORT = "import"
    VOLUMES = "volumes"
    PROPERTIES = "properties"
    REFERENCES = "references"
    CAPABILITIES_OFF = "capabilities-off"
    FEATURES = "features"
    TAGS = "tags"
    FIREWALL = "firewall"
    NOTES = "notes"
    DEVICES = "devices"
    FINISH = "finish"


@dataclass(frozen=True)
class RestoreRequest:
    """What the user asked for, validated (names are qube names, the session an id)."""

    qubes: tuple[str, ...] = ()
    session: str | None = None  # None or "latest": the newest session holding every requested qube
    on_conflict: ConflictPolicy = ConflictPolicy.FAIL
    renames: tuple[tuple[str, str], ...] = ()
    exclude: tuple[str, ...] = ()
    pool: str | None = None
    shutdown: bool = False
    force: bool = False
    include_disposable: bool = False
    dry_run: bool = False
    skip_properties: frozenset[str] = frozenset()
    keep_previous: bool = True  # False: also replace volumes that keep no revisions
    # only from an archive Wyng authenticates (encrypted), for the whole restore (qrexec; docs/security-model.md)
    require_authenticated: bool = False
    # settings that give power, from an archive Wyng does not authenticate: restored
    # rather than refused (dom0 CLI only; restore.trust)
    trust_archive_settings: bool = False
    use_snapshot: bool = True  # start from Wyng's local snapshot where it pairs (restore.data.lend_snapshot)


@dataclass(frozen=True)
class LiveSystem:
    """The live system as planning needs it. `settings` and `volumes` cover the
    qubes restore may change (existing qubes of the same names)."""

    qubes: Mapping[str, LiveQube]
    settings: Mapping[str, QubeSettings] = field(default_factory=dict)
    volumes: Mapping[str, tuple[Volume, ...]] = field(default_factory=dict)
    pools: Mapping[str, Pool] = field(default_factory=dict)
    default_pool: str | None = None
    labels: frozenset[str] = frozenset()
    kernels: frozenset[str] | None = None
    archive_qube: str | None = None  # the qube holding the archive (qubes:// URLs)


@dataclass(frozen=True)
class SessionData:
    """One session of the archive: each qube's archive volume names, their
    sizes, and every qube's settings as the session's bundle describes them."""

    session: str
    volumes: Mapping[str, Mapping[str, str]]  # qube -> volume kind -> archive volume name
    sizes: Mapping[str, int]  # archive volume name -> size in this session
    settings: Mapping[str, QubeSettings]
    source: str = "manifest"  # or "qubes.xml"
    archive_uuid: str = ""
    vids: Mapping[str, str] = field(default_factory=dict)  # archive volume name -> Wyng's volume id
    authenticated: bool = False  # Wyng authenticates the archive (and the job pins it so: restore.run)
    unsupported: Mapping[str, str] = field(default_factory=dict)  # qubes of a class wyngq does not restore


@dataclass(frozen=True)
class Problem:
    """Something that stops a qube from coming back exactly as it was, and what
    the plan does about it. A blocking problem refuses the whole restore."""

    code: str
    message: str
    resolution: str
    blocking: bool = False
    # the setting a problem is about, and its value now and in the backup (restore.trust)
    setting: str | None = None
    old: str | None = None
    new: str | None = None


@dataclass(frozen=True)
class VolumePair:
    """An archive volume and where its data goes.

    Wyng writes `local_name` under `store` (a `--local-from` key): the `kind`
    volume of `scratch_qube`, a hidden StandaloneVM in the same pool, whose
    volume file or LV is at `scratch`. That volume is then cloned into the
    qube's `kind` volume through the Admin API (restore.data). `replaces`: the
    volume holds data now (qubesd keeps it as a revision when the volume keeps
    revisions)."""

    qube: str
    kind: str
    archive_name: str
    size: int
    pool: str
    store: str
    local_name: str
    scratch: str
    scratch_qube: str = ""
    replaces: bool = False
    # Wyng's snapshot of the volume as last sent to this archive (beside a file-reflink
    # volume), and where Wyng looks for it beside the scratch volume (restore.data)
    snapshot: str = ""
    scratch_snapshot: str = ""


@dataclass(frozen=True)
class Op:
    """One change: `verb` on `key`, from `old` to `value` (None: absent or default)."""

    verb: str
    key: str = ""
    value: str | None = None
    old: str | None = None
    device: DeviceAssignment | None = None


@dataclass(frozen=True)
class Step:
    kind: StepKind
    qube: str | None  # the target name; None for the one receive of all data
    ops: tuple[Op, ...] = ()


@dataclass(frozen=True)
class QubePlan:
    source: str  # the name in the backup
    target: str  # the name it has, or gets, here
    klass: QubeClass
    action: Action
    problems: tuple[Problem, ...] = ()
    volumes: tuple[VolumePair, ...] = ()
    label: str | None = None  # for creation
    template: str | None = None  # for creation
    pool: str | None = None  # for creation: every volume there
    pools: tuple[tuple[str, str], ...] = ()  # for creation: volume kind -> pool
    shutdown: tuple[str, ...] = ()  # qubes to stop first: dependants first, the qube last
    depends_on: tuple[str, ...] = ()  # qubes it references (target names), restored first

    @property
    def changes(self) -> bool:
        return self.action is not Action.SKIP


@dataclass(frozen=True)
class RestorePlan:
    session: str
    settings_source: str
    qubes: tuple[QubePlan, ...]
    steps: tuple[Step, ...]
    force: bool = False
    keep_previous: bool = True

    @property
    def problems(self) -> tuple[tuple[str, Problem], ...]:
        return tuple((q.source, p) for q in self.qubes for p in q.problems)

    @property
    def blocking(self) -> tuple[tuple[str, Problem], ...]:
        return tuple((name, p) for name, p in self.problems if p.blocking)

    def qube(self, target: str) -> QubePlan:
        return next(q for q in self.qubes if q.target == target and q.changes)

    def steps_of(self, target: str) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.qube == target)
