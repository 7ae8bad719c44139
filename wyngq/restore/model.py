"""The values restore planning produces and apply consumes.

A RestorePlan is complete: apply only executes its steps, in order, through
the Qubes port and one Wyng receive; it never decides anything itself. The
same plan, printed, is the `--dry-run` output (each step's operations carry
the value they replace, so they are also the per-qube diff).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from wyngq.model import DeviceAssignment, LiveQube, Pool, PropertyValue, QubeClass, QubeSettings, Volume
from wyngq.qubes.reserved import GUARD_TAG as GUARD_TAG  # qubesd starts no qube with it: restore's guard


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
    PRELOAD = "preload"
    FINISH = "finish"
    PREFS = "prefs"  # dom0's global preferences, after every qube (restore.prefs)


@dataclass(frozen=True)
class RestoreRequest:
    """What the user asked for, validated (names are qube names, the session an id)."""

    qubes: tuple[str, ...] = ()
    # an id: every qube from that session; "latest": the newest session; None: each qube from
    # its own newest session (restore.sessions), at or before `as_of` when given
    session: str | None = None
    all: bool = False  # every qube the archive holds (named disposables included; never dom0)
    as_of: str | None = None
    prefs: bool = False  # also dom0's global preferences (restore.prefs)
    # with `all`: only the qubes for which this is true (qrexec: the profile's selection)
    within: Callable[[str], bool] | None = field(default=None, compare=False)
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
    prefs: Mapping[str, tuple[bool, PropertyValue]] = field(default_factory=dict)  # name -> (is default, value)


@dataclass(frozen=True)
class SessionData:
    """One session of the archive, or the qubes of several, each from its own
    (`sessions`): each qube's archive volume names, their sizes (in the qube's
    session), and every qube's settings as its session's bundle describes them."""

    session: str  # the one session; across sessions the newest of them (or of the preferences)
    volumes: Mapping[str, Mapping[str, str]]  # qube -> volume kind -> archive volume name
    sizes: Mapping[str, int]  # archive volume name -> size in this session
    settings: Mapping[str, QubeSettings]
    source: str = "manifest"  # or "qubes.xml"
    archive_uuid: str = ""
    vids: Mapping[str, str] = field(default_factory=dict)  # archive volume name -> Wyng's volume id
    authenticated: bool = False  # Wyng authenticates the archive (and the job pins it so: restore.run)
    unsupported: Mapping[str, str] = field(default_factory=dict)  # qubes of a class wyngq does not restore
    sessions: Mapping[str, str] = field(default_factory=dict)  # qube -> its session, when not `session`
    prefs: Mapping[str, PropertyValue] = field(default_factory=dict)  # dom0's global preferences, as backed up

    def session_of(self, qube: str) -> str:
        return self.sessions.get(qube, self.session)


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

    Wyng writes `local_name` under `store` (a `--local-from` key): the `slot`
    volume (`root` or `private`) of `scratch_qube`, a hidden StandaloneVM, in
    the same pool, whose volume file or LV is at `scratch`. That volume is then
    cloned into the qube's `kind` volume through the Admin API (restore.data).
    `replaces`: the volume holds data now (qubesd keeps it as a revision when
    the volume keeps revisions)."""

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
    scratch_kind: str = ""  # the scratch qube's volume Wyng writes, when not `kind`

    @property
    def slot(self) -> str:
        return self.scratch_kind or self.kind


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
    session: str = ""  # the session it comes from

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
    prefs_problems: tuple[Problem, ...] = ()  # global preferences left as they are, and why

    @property
    def sessions(self) -> tuple[str, ...]:
        """Every session the plan restores from, oldest first."""
        return tuple(sorted({q.session or self.session for q in self.qubes} or {self.session}))

    @property
    def prefs(self) -> tuple[Op, ...]:
        return next((s.ops for s in self.steps if s.kind is StepKind.PREFS), ())

    @property
    def problems(self) -> tuple[tuple[str, Problem], ...]:
        """Each qube's problems, then those of dom0's global preferences (as "dom0")."""
        return tuple((q.source, p) for q in self.qubes for p in q.problems) + tuple(
            ("dom0", p) for p in self.prefs_problems)

    @property
    def blocking(self) -> tuple[tuple[str, Problem], ...]:
        return tuple((name, p) for name, p in self.problems if p.blocking)

    def qube(self, target: str) -> QubePlan:
        return next(q for q in self.qubes if q.target == target and q.changes)

    def steps_of(self, target: str) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.qube == target)
