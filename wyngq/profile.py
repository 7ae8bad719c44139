"""dom0 profiles: what dom0 decides about an archive and the qubes it covers.

A profile is a TOML file, `PROFILE_DIR/NAME.toml`, read with tomllib and checked
strictly: an unknown key is an error, so a typo never silently changes what a
backup does. Example (`wyng-util-qubes.example.toml` in the package):

    dest = "file:/mnt/backup/laptop.wyng"
    # wyng = "/usr/local/bin/wyng"
    # meta_dir = "/var/lib/wyng"
    # stall_timeout = 3600  # stop a Wyng call that prints nothing this long (0: never)

    [passphrase]            # one of: command, file, qube
    file = "/etc/wyng-util-qubes/laptop.pass"

    [qubes]
    include = ["work", "personal", "@include_in_backups", "@tag:backup"]
    exclude = ["untrusted"]

    [backup]
    dedup = true
    autoprune = "on"
    check_after_send = false

    [dom0]                  # dom0 itself, in the same session (docs/dom0.md)
    home = true             # the dom0 user's home
    # home_dir = "/home/user"
    # exclude = [".mozilla/firefox/*/cache2"]   # beside the defaults (.cache, QubesIncoming, ...)
    config = true           # dom0 configuration files no package owns

    [rpc]                   # who may use this profile over qrexec (qubes.WyngBackup)
    allow_unauthenticated_restore = false

    [[rpc.allow]]           # one rule; a call is allowed when one rule allows all of it
    callers = ["mgmt", "@tag:wyng-admin"]
    actions = ["list", "status", "backup", "restore"]
    # qubes = ["work"]      # default: every qube of [qubes]; always limited to them
    # on_conflict = ["fail", "skip"]   # restore conflict policies (default: fail)
    # shutdown = false      # may a restore shut down running qubes gracefully
    # prefs = false         # may a restore set dom0's global preferences (qubes-prefs)

The `[rpc]` table is read by the qrexec service only (wyngq.rpc): without a
rule naming it, a qube can do nothing with the profile, whatever dom0's qrexec
policy allows.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from typing import Any

from wyngq.errors import ConfigError, UsageError
from wyngq.names import is_qube_name
from wyngq.wyng.commands import DEFAULT_STALL_TIMEOUT, ArchiveCare
from wyngq.wyng.sessions import SESSION_ID

PROFILE_DIR = "/etc/wyng-util-qubes/profiles"
PROFILE_DIR_ENV = "WYNGQ_PROFILE_DIR"
_PROFILE_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
PROFILE_NAME_RULE = "1-64 characters: lower-case letters, digits, '_', '.', '-', starting with a letter or digit"
AUTOPRUNE_MODES = ("off", "on", "full")
RPC_ACTIONS = ("list", "backup", "restore", "verify", "prune", "status")
CONFLICT_POLICIES = ("fail", "skip", "replace", "rename")
_DEST_SCHEMES = ("file:", "ssh://", "qubes://", "qubes-ssh://")
MAX_STALL_TIMEOUT = 7 * 24 * 3600
MAX_PROFILE_BYTES = 1024 * 1024


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


def profile_dir() -> str:
    return os.environ.get(PROFILE_DIR_ENV) or PROFILE_DIR


def is_profile_name(name: str) -> bool:
    return _PROFILE_NAME.fullmatch(name) is not None


def load_profile(name: str, directory: str | None = None) -> Profile:
    """Return the profile called `name`; raise UsageError for a bad name and
    ConfigError for a missing or invalid file."""
    if not is_profile_name(name):
        raise UsageError(f"invalid profile name {name!r}", hint=f"a profile name is {PROFILE_NAME_RULE}")
    path = os.path.join(directory or profile_dir(), f"{name}.toml")
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_PROFILE_BYTES + 1)
    except FileNotFoundError as err:
        raise ConfigError(f"no profile {name!r}", hint=f"create {path}") from err
    except OSError as err:
        raise ConfigError(f"cannot read profile {path}: {err}") from err
    if len(raw) > MAX_PROFILE_BYTES:
        raise ConfigError(f"cannot read profile {path}: larger than {MAX_PROFILE_BYTES} bytes")
    try:
        # tomllib raises ValueError for an integer of more than 4300 digits and
        # RecursionError for arrays nested too deep
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as err:  # TOMLDecodeError is a ValueError
        raise ConfigError(f"cannot read profile {path}: {_short(err)}") from err
    try:
        _no_control_characters(data)
        return parse_profile(name, data)
    except (KeyError, TypeError, ValueError) as err:
        raise ConfigError(f"profile {path}: {err}") from err


def _short(err: BaseException) -> str:
    text = str(err) if not isinstance(err, RecursionError) else "values nested too deep"
    return text if len(text) <= 200 else text[:200] + "..."


def _no_control_characters(data: dict[str, Any]) -> None:
    """Raise ValueError if any key or string in the profile holds a control
    character (a NUL would reach a path or a command line; TOML lets `\\u0000`
    through). Iterative: a deep structure cannot exhaust the stack here."""
    stack: list[Any] = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, str) and not value.isprintable():
            raise ValueError(f"{ascii(value)[:60]} has a control character")


def parse_profile(name: str, data: dict[str, Any]) -> Profile:
    _only(data, {"dest", "wyng", "meta_dir", "stall_timeout", "passphrase", "qubes", "backup", "dom0", "rpc"},
          "profile")
    dest = _str(data, "dest")
    if not dest.startswith(_DEST_SCHEMES):
        raise ValueError(f"dest {dest!r} is not a Wyng URL (file:, ssh://, qubes://, qubes-ssh://)")
    return Profile(
        name=name,
        dest=dest,
        wyng=_str(data, "wyng", "wyng"),
        meta_dir=_str(data, "meta_dir", None),
        stall_timeout=_stall_timeout(data),
        passphrase=_passphrase(data.get("passphrase", {})),
        qubes=_selection(data.get("qubes", {})),
        backup=_backup(data.get("backup", {})),
        dom0=_dom0(data.get("dom0", {})),
        rpc=_rpc(data.get("rpc", {})),
    )


def _stall_timeout(data: dict[str, Any]) -> float | None:
    value = data.get("stall_timeout", DEFAULT_STALL_TIMEOUT)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= MAX_STALL_TIMEOUT:
        raise ValueError(f"stall_timeout must be a number of seconds from 0 (never) to {MAX_STALL_TIMEOUT}")
    return float(value) or None


def _passphrase(raw: Any) -> PassphraseSource:
    table = _table(raw, "passphrase")
    _only(table, {"command", "file", "qube"}, "[passphrase]")
    if len(table) > 1:
        raise ValueError("[passphrase] takes one of command, file or qube")
    command = table.get("command")
    if command is not None:
        if isinstance(command, str):
            command = [command]
        if not isinstance(command, list) or not command or not all(isinstance(c, str) and c for c in command):
            raise ValueError("[passphrase] command must be a program path or a list of arguments")
        if not command[0].startswith("/"):
            raise ValueError("[passphrase] command must start with an absolute path")
    file = _str(table, "file", None)
    if file is not None and not file.startswith("/"):
        raise ValueError("[passphrase] file must be an absolute path")
    qube = _str(table, "qube", None)
    if qube is not None and not is_qube_name(qube):
        raise ValueError(f"[passphrase] qube {qube!r} is not a qube name")
    return PassphraseSource(tuple(command) if command else None, file, qube)


def _selection(raw: Any) -> Selection:
    table = _table(raw, "qubes")
    _only(table, {"include", "exclude"}, "[qubes]")
    include = tuple(_str_list(table, "include"))
    exclude = tuple(_str_list(table, "exclude"))
    for item in include:
        if not (is_qube_name(item) or item == "@include_in_backups" or _is_tag_selector(item)):
            raise ValueError(f"[qubes] include {item!r} is not a qube name, @include_in_backups or @tag:NAME")
    for item in exclude:
        if not (is_qube_name(item) or _is_tag_selector(item)):
            raise ValueError(f"[qubes] exclude {item!r} is not a qube name or @tag:NAME")
    return Selection(include, exclude)


def _is_tag_selector(item: str) -> bool:
    return item.startswith("@tag:") and re.fullmatch(r"[A-Za-z0-9_.-]+", item[5:]) is not None


def _backup(raw: Any) -> BackupDefaults:
    table = _table(raw, "backup")
    _only(table, {"dedup", "autoprune", "check_after_send", "apdays", "tags", "vouch", "keep"}, "[backup]")
    autoprune = _str(table, "autoprune", None)
    if autoprune is not None and autoprune not in AUTOPRUNE_MODES:
        raise ValueError(f"[backup] autoprune must be one of {', '.join(AUTOPRUNE_MODES)}")
    return BackupDefaults(
        dedup=_bool(table, "dedup", False),
        autoprune=autoprune,
        check_after_send=_bool(table, "check_after_send", False),
        apdays=_apdays(_str(table, "apdays", None)),
        tags=_checked(table, "tags", SESSION_TAG, "a tag id (lower-case letters, digits, _ . -; up to 25)", MAX_TAGS),
        vouch=_checked(table, "vouch", VOUCH, "reflink_fs_TYPE or fs_online_factors", 4),
        keep=_checked(table, "keep", SESSION_ID, "a session id YYYYMMDD-HHMMSS (Wyng crashes on ^tag)", 64),
    )


def _dom0(raw: Any) -> Dom0Settings:
    table = _table(raw, "dom0")
    _only(table, {"home", "home_dir", "exclude", "config"}, "[dom0]")
    home_dir = _str(table, "home_dir", None)
    if home_dir is not None and not home_dir.startswith("/"):
        raise ValueError("[dom0] home_dir must be an absolute path")
    exclude = _str_list(table, "exclude")
    if any(not p.strip("/") or "\0" in p for p in exclude):
        raise ValueError("[dom0] exclude patterns must not be empty")
    return Dom0Settings(
        home=_bool(table, "home", False),
        home_dir=home_dir,
        exclude=tuple(exclude),
        config=_bool(table, "config", False),
    )


SESSION_TAG = re.compile(r"[a-z0-9_.-]{1,25}")  # Wyng lower-cases tag ids and keeps 25 characters
VOUCH = re.compile(r"reflink_fs_[a-z0-9]{1,16}|fs_online_factors")
MAX_TAGS = 4  # Wyng keeps 5 tags per session and drops the rest silently; wyngq adds "qubes"


def _apdays(value: str | None) -> str | None:
    """Wyng's autoprune parameters A:B:C:D (keep-all days, thinning days, days per
    kept session, sessions per day): four whole numbers, at least 0:0:1:1."""
    if value is None:
        return None
    parts = value.split(":")
    if len(parts) != 4 or not all(p.isdigit() and len(p) <= 5 for p in parts) or int(parts[2]) < 1 \
            or int(parts[3]) < 1:
        raise ValueError(f"[backup] apdays {value!r} must be four numbers A:B:C:D, at least 0:0:1:1")
    return value


def _checked(table: dict[str, Any], key: str, pattern: re.Pattern[str], what: str, most: int) -> tuple[str, ...]:
    values = _str_list(table, key)
    for value in values:
        if not pattern.fullmatch(value):
            raise ValueError(f"[backup] {key}: {value!r} is not {what}")
    if len(values) > most or len(set(values)) != len(values):
        raise ValueError(f"[backup] {key}: at most {most}, each once")
    return tuple(values)


def _rpc(raw: Any) -> RpcAccess:
    table = _table(raw, "rpc")
    _only(table, {"allow", "allow_unauthenticated_restore"}, "[rpc]")
    rules = table.get("allow", [])
    if not isinstance(rules, list):
        raise TypeError("[rpc] allow must be an array of tables ([[rpc.allow]])")
    return RpcAccess(
        rules=tuple(_rpc_rule(rule, n) for n, rule in enumerate(rules, 1)),
        allow_unauthenticated_restore=_bool(table, "allow_unauthenticated_restore", False),
    )


def _rpc_rule(raw: Any, number: int) -> RpcRule:
    where = f"[[rpc.allow]] #{number}"
    table = _table(raw, "rpc.allow")
    _only(table, {"callers", "actions", "qubes", "on_conflict", "shutdown", "prefs"}, where)
    callers = _str_list(table, "callers")
    actions = _str_list(table, "actions")
    if not callers or not actions:
        raise ValueError(f"{where} needs callers and actions")
    for caller in callers:
        if not (is_qube_name(caller) or _is_tag_selector(caller)):
            raise ValueError(f"{where} caller {caller!r} is not a qube name or @tag:NAME")
    for action in actions:
        if action not in RPC_ACTIONS:
            raise ValueError(f"{where} action {action!r} is not one of {', '.join(RPC_ACTIONS)}")
    qubes = _str_list(table, "qubes") if "qubes" in table else None
    for item in qubes or ():
        if not (is_qube_name(item) or _is_tag_selector(item)):
            raise ValueError(f"{where} qube {item!r} is not a qube name or @tag:NAME")
    on_conflict = _str_list(table, "on_conflict") if "on_conflict" in table else ["fail"]
    for policy in on_conflict:
        if policy not in CONFLICT_POLICIES:
            raise ValueError(f"{where} on_conflict {policy!r} is not one of {', '.join(CONFLICT_POLICIES)}")
    return RpcRule(
        callers=tuple(callers),
        actions=tuple(actions),
        qubes=tuple(qubes) if qubes is not None else None,
        on_conflict=tuple(on_conflict),
        shutdown=_bool(table, "shutdown", False),
        prefs=_bool(table, "prefs", False),
    )


_MISSING = object()


def _only(table: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ValueError(f"unknown key(s) in {where}: {', '.join(unknown)}")


def _table(raw: Any, name: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise TypeError(f"[{name}] must be a table")
    return raw


def _str(table: dict[str, Any], key: str, default: Any = _MISSING) -> Any:
    value = table.get(key, default)
    if value is _MISSING:
        raise KeyError(f"missing key {key!r}")
    if value is not default and not isinstance(value, str):
        raise TypeError(f"{key} must be a string")
    return value


def _bool(table: dict[str, Any], key: str, default: bool) -> bool:
    value = table.get(key, default)
    if not isinstance(value, bool):
        raise TypeError(f"{key} must be true or false")
    return value


def _str_list(table: dict[str, Any], key: str) -> list[str]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TypeError(f"{key} must be a list of strings")
    return value
