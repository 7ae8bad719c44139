"""A dom0 profile's values, once checked (wyngq.profile.schema makes them)."""

from __future__ import annotations

from dataclasses import dataclass, field

from wyngq.wyng.commands import DEFAULT_STALL_TIMEOUT, ArchiveCare

AUTOPRUNE_MODES = ("off", "on", "full")
RPC_ACTIONS = ("list", "backup", "restore", "verify", "prune", "status")
CONFLICT_POLICIES = ("fail", "skip", "replace", "rename")


@dataclass(frozen=True)
class PassphraseSource:
    """Where an unattended run gets the archive passphrase. At most one is set."""

    command: tuple[str, ...] | None = None
    file: str | None = None
    qube: str | None = None  # a vault qube answering qubes.WyngPassphrase+PROFILE

    @property
    def configured(self) -> bool:
        return bool(self.command or self.file or self.qube)


@dataclass(frozen=True)
class Selection:
    """Which qubes a profile covers: names and `@include_in_backups` / `@tag:T`."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()


@dataclass(frozen=True)
class BackupDefaults:
    """[backup]: Wyng's archive care, as validated values (docs/archive-care.md);
    never an option string handed to Wyng as it is."""

    dedup: bool = False
    autoprune: str | None = None
    check_after_send: bool = False
    apdays: str | None = None  # autoprune's "A:B:C:D" (Wyng --apdays)
    tags: tuple[str, ...] = ()  # session tags besides "qubes" (Wyng --tag)
    vouch: tuple[str, ...] = ()  # Wyng --vouch, e.g. reflink_fs_xfs for XFS reflink pools
    keep: tuple[str, ...] = ()  # sessions a prune never removes (Wyng --keep)


@dataclass(frozen=True)
class Dom0Settings:
    """What of dom0 itself a backup with this profile takes (docs/dom0.md)."""

    home: bool = False
    home_dir: str | None = None
    exclude: tuple[str, ...] = ()
    config: bool = False


@dataclass(frozen=True)
class RpcRule:
    """What some callers may do with the profile over qrexec.

    `callers`: qube names and `@tag:T`. `qubes`: names and `@tag:T` the rule is
    limited to, within the profile's [qubes] selection (None: the whole
    selection). `on_conflict`: the restore conflict policies it allows.
    """

    callers: tuple[str, ...]
    actions: tuple[str, ...]
    qubes: tuple[str, ...] | None = None
    on_conflict: tuple[str, ...] = ("fail",)
    shutdown: bool = False
    prefs: bool = False  # may a restore set dom0's global preferences


@dataclass(frozen=True)
class RpcAccess:
    rules: tuple[RpcRule, ...] = ()
    allow_unauthenticated_restore: bool = False


@dataclass(frozen=True)
class Profile:
    name: str
    dest: str
    wyng: str = "wyng"
    meta_dir: str | None = None
    stall_timeout: float | None = DEFAULT_STALL_TIMEOUT
    passphrase: PassphraseSource = field(default_factory=PassphraseSource)
    qubes: Selection = field(default_factory=Selection)
    backup: BackupDefaults = field(default_factory=BackupDefaults)
    dom0: Dom0Settings = field(default_factory=Dom0Settings)
    rpc: RpcAccess = field(default_factory=RpcAccess)


def archive_care(profile: Profile | None) -> ArchiveCare | None:
    """The profile's Wyng archive-care options (apdays, vouch, keep), or None."""
    if profile is None:
        return None
    care = ArchiveCare(apdays=profile.backup.apdays, vouch=profile.backup.vouch, keep=profile.backup.keep)
    return care if care != ArchiveCare() else None
