"""A profile's TOML data, checked key by key into the model: an unknown key is
an error, and each value is checked before it can reach a path, a command line
or Wyng. Raise KeyError, TypeError or ValueError naming the key."""

from __future__ import annotations

import re
from typing import Any

from wyngq.names import is_qube_name
from wyngq.profile.model import (
    AUTOPRUNE_MODES,
    CONFLICT_POLICIES,
    RPC_ACTIONS,
    BackupDefaults,
    Dom0Settings,
    PassphraseSource,
    Profile,
    RpcAccess,
    RpcRule,
    Selection,
)
from wyngq.wyng.commands import DEFAULT_STALL_TIMEOUT
from wyngq.wyng.sessions import SESSION_ID

_DEST_SCHEMES = ("file:", "ssh://", "qubes://", "qubes-ssh://")
MAX_STALL_TIMEOUT = 7 * 24 * 3600


def parse_profile(name: str, data: dict[str, Any]) -> Profile:
    """The profile `name` from its TOML data (a table as tomllib returns it)."""
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
