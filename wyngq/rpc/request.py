"""Requests of the qrexec service: untrusted bytes in, frozen dataclasses out.

The parser is the validator (STYLE: SecureDrop). `read_capped` reads at most
limit+1 bytes; `parse_request(action, untrusted_bytes)` decodes strict UTF-8
and strict JSON (no duplicate keys, no NaN/Infinity) and builds the action's
dataclass, or raises RequestError (exit 2) naming the offending field. Below
this module nothing is untrusted: qube names follow qubesd's rule, session ids
are `YYYYMMDD-HHMMSS`, profile names the profile rule, and every other field is
a boolean or a word from a fixed list, so nothing from a caller can reach Wyng
or a shell as an option, a path or a command.

One JSON object per call; keys by action (all but `profile` optional):

    list     profile, qubes, session (ID), all
    backup   profile, qubes, dry_run
    restore  profile, qubes or all (one of them), session (ID or "latest";
             default: each qube from its own newest session), as_of (ID),
             on_conflict, rename ({"OLD": "NEW"}), shutdown, dry_run, prefs
             (never dom0's home or configuration: a request naming them is
             refused as not permitted, whatever the profile's rules say)
    verify   profile, qubes, session (ID or "latest")
    prune    profile, qubes, session (required: ID or "ID,ID"), all_before, dry_run
    status   profile, job
"""

from __future__ import annotations

import json
import os
import re
import select
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import BinaryIO, ClassVar, NoReturn

from wyngq import names
from wyngq.errors import NotPermittedError, UsageError
from wyngq.profile import CONFLICT_POLICIES, PROFILE_NAME_RULE, is_profile_name

MAX_REQUEST_BYTES = 64 * 1024
MAX_QUBES = 256
READ_TIMEOUT = 60.0
JOB_ID = re.compile(r"\d{8}-\d{6}-[0-9a-f]{8}")


class RequestError(UsageError):
    """The caller sent something that is not a valid request (exit 2)."""

    code = "bad_request"


def read_capped(stream: BinaryIO, limit: int = MAX_REQUEST_BYTES, timeout: float = READ_TIMEOUT) -> bytes:
    """Read `stream` to its end, never more than limit+1 bytes; raise RequestError
    when there is more than `limit`, or when a stream with a file descriptor
    sends nothing for `timeout` seconds (a caller that never closes its end)."""
    fd = _fileno(stream)
    chunks: list[bytes] = []
    remaining = limit + 1
    deadline = time.monotonic() + timeout
    while remaining > 0:
        if fd is not None:
            ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise RequestError(f"no end of request after {timeout:g} s", hint="close stdin after the request")
            chunk = os.read(fd, remaining)
        else:
            chunk = stream.read(remaining)
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    data = b"".join(chunks)
    if len(data) > limit:
        raise RequestError(f"request is larger than {limit} bytes")
    return data


def _fileno(stream: BinaryIO) -> int | None:
    try:
        return stream.fileno()
    except (AttributeError, OSError, ValueError):
        return None


# -- the requests ----------------------------------------------------------------------
@dataclass(frozen=True)
class ListCall:
    action: ClassVar[str] = "list"
    keys: ClassVar[tuple[str, ...]] = ("profile", "qubes", "session", "all")
    profile: str
    qubes: tuple[str, ...] = ()
    session: str | None = None
    all: bool = False

    @classmethod
    def parse(cls, untrusted: Mapping[str, object]) -> ListCall:
        fields = _Fields(untrusted, cls.action, cls.keys)
        return cls(fields.profile(), fields.qubes(), fields.session(latest=False), fields.flag("all"))


@dataclass(frozen=True)
class BackupCall:
    action: ClassVar[str] = "backup"
    keys: ClassVar[tuple[str, ...]] = ("profile", "qubes", "dry_run")
    profile: str
    qubes: tuple[str, ...] = ()
    dry_run: bool = False

    @classmethod
    def parse(cls, untrusted: Mapping[str, object]) -> BackupCall:
        fields = _Fields(untrusted, cls.action, cls.keys)
        return cls(fields.profile(), fields.qubes(), fields.flag("dry_run"))


@dataclass(frozen=True)
class RestoreCall:
    action: ClassVar[str] = "restore"
    keys: ClassVar[tuple[str, ...]] = ("profile", "qubes", "session", "on_conflict", "rename", "shutdown", "dry_run",
                                       "all", "as_of", "prefs")
    profile: str
    qubes: tuple[str, ...]
    session: str | None = None  # None: each qube from its own newest session
    on_conflict: str = "fail"
    rename: tuple[tuple[str, str], ...] = ()
    shutdown: bool = False
    dry_run: bool = False
    all: bool = False  # every qube of the archive the profile (and the rule) covers
    as_of: str | None = None
    prefs: bool = False

    @classmethod
    def parse(cls, untrusted: Mapping[str, object]) -> RestoreCall:
        refuse_dom0_restore(untrusted)
        fields = _Fields(untrusted, cls.action, cls.keys)
        qubes = fields.qubes()
        every = fields.flag("all")
        if not qubes and not every:
            fields.fail("restore needs 'qubes' (name the qubes to restore) or 'all': true")
        if qubes and every:
            fields.fail("'all' restores every qube the profile covers: do not name 'qubes' with it")
        session = fields.session(latest=True)
        as_of = fields.session(latest=False, key="as_of")
        if every and session is not None:
            fields.fail("'all' takes each qube from its own newest session: use 'as_of', not 'session'")
        if as_of is not None and session is not None:
            fields.fail("give 'session' or 'as_of', not both")
        on_conflict = fields.word("on_conflict", CONFLICT_POLICIES, "fail")
        rename = fields.rename(qubes)
        if rename and on_conflict != "rename":
            fields.fail("'rename' needs 'on_conflict': 'rename'")
        return cls(
            profile=fields.profile(),
            qubes=qubes,
            session=session,
            on_conflict=on_conflict,
            rename=rename,
            shutdown=fields.flag("shutdown"),
            dry_run=fields.flag("dry_run"),
            all=every,
            as_of=as_of,
            prefs=fields.flag("prefs"),
        )


DOM0_RESTORE_KEYS = ("dom0_home", "dom0_config", "into")


def refuse_dom0_restore(untrusted: Mapping[str, object]) -> None:
    """dom0's home and configuration come back only in dom0 (docs/dom0.md): a
    caller could otherwise read dom0's files or place files in dom0."""
    if any(key in untrusted for key in DOM0_RESTORE_KEYS):
        raise NotPermittedError(
            "restoring dom0's home or configuration is possible in dom0 only, never over qrexec",
            hint="in dom0: wyng-util-qubes restore --dom0-home / --dom0-config")


@dataclass(frozen=True)
class VerifyCall:
    action: ClassVar[str] = "verify"
    keys: ClassVar[tuple[str, ...]] = ("profile", "qubes", "session")
    profile: str
    qubes: tuple[str, ...] = ()
    session: str = names.LATEST

    @classmethod
    def parse(cls, untrusted: Mapping[str, object]) -> VerifyCall:
        fields = _Fields(untrusted, cls.action, cls.keys)
        return cls(fields.profile(), fields.qubes(), fields.session(latest=True) or names.LATEST)


@dataclass(frozen=True)
class PruneCall:
    action: ClassVar[str] = "prune"
    keys: ClassVar[tuple[str, ...]] = ("profile", "qubes", "session", "all_before", "dry_run")
    profile: str
    sessions: tuple[str, ...]  # one id, or the two ends of a range
    qubes: tuple[str, ...] = ()
    all_before: bool = False
    dry_run: bool = False

    @classmethod
    def parse(cls, untrusted: Mapping[str, object]) -> PruneCall:
        fields = _Fields(untrusted, cls.action, cls.keys)
        sessions = fields.session_range()
        all_before = fields.flag("all_before")
        if all_before and len(sessions) != 1:
            fields.fail("'all_before' takes one session, not a range")
        return cls(fields.profile(), sessions, fields.qubes(), all_before, fields.flag("dry_run"))


@dataclass(frozen=True)
class StatusCall:
    action: ClassVar[str] = "status"
    keys: ClassVar[tuple[str, ...]] = ("profile", "job")
    profile: str
    job: str | None = None

    @classmethod
    def parse(cls, untrusted: Mapping[str, object]) -> StatusCall:
        fields = _Fields(untrusted, cls.action, cls.keys)
        job = fields.text("job")
        if job is not None and not JOB_ID.fullmatch(job):
            fields.fail(f"'job' must be a job id as `status` shows it, not {_show(job)}")
        return cls(fields.profile(), job)


Request = ListCall | BackupCall | RestoreCall | VerifyCall | PruneCall | StatusCall
REQUEST_TYPES: dict[str, type[Request]] = {
    cls.action: cls for cls in (ListCall, BackupCall, RestoreCall, VerifyCall, PruneCall, StatusCall)
}


def parse_request(action: str, untrusted_data: bytes) -> Request:
    """Return the request for `action` (already checked against the action table)
    from the caller's raw bytes, or raise RequestError."""
    return REQUEST_TYPES[action].parse(decode_object(untrusted_data))


def decode_object(untrusted_data: bytes) -> dict[str, object]:
    """Strict UTF-8, strict JSON, one object; raise RequestError otherwise."""
    if not untrusted_data.strip():
        raise RequestError("empty request", hint="send one JSON object on stdin, e.g. {\"profile\": \"NAME\"}")
    try:
        text = untrusted_data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise RequestError(f"request is not valid UTF-8 (byte {err.start})") from None
    try:
        value = json.loads(text, object_pairs_hook=_object, parse_constant=_constant)
    except json.JSONDecodeError as err:
        raise RequestError(f"request is not valid JSON: {err.msg} (line {err.lineno} column {err.colno})") from None
    except RecursionError:
        raise RequestError("request is nested too deeply") from None
    except ValueError:  # an integer of more digits than Python converts
        raise RequestError("request is not valid JSON: a number is too long") from None
    if not isinstance(value, dict):
        raise RequestError(f"request must be a JSON object, not {_kind(value)}")
    return value


def _object(pairs: list[tuple[str, object]]) -> dict[str, object]:
    document: dict[str, object] = {}
    for key, value in pairs:
        if key in document:
            raise RequestError(f"duplicate key {_show(key)}")
        document[key] = value
    return document


def _constant(name: str) -> NoReturn:
    raise RequestError(f"request is not valid JSON: {name} is not allowed")


class _Fields:
    """Typed access to one untrusted request object; every getter validates."""

    def __init__(self, untrusted: Mapping[str, object], action: str, keys: tuple[str, ...]) -> None:
        unknown = sorted(set(untrusted) - set(keys))
        if unknown:
            hint = f"{action} takes: {', '.join(keys)}"
            raise RequestError(f"unknown key {_show(unknown[0])} for {action}", hint=hint)
        self.untrusted = untrusted
        self.action = action

    def fail(self, message: str) -> NoReturn:
        raise RequestError(message)

    def profile(self) -> str:
        untrusted = self.untrusted.get("profile")
        if untrusted is None:
            self.fail("missing key 'profile'")
        if not isinstance(untrusted, str):
            self.fail(f"'profile' must be a string, not {_kind(untrusted)}")
        if not is_profile_name(untrusted):
            self.fail(f"'profile' is not a profile name: {_show(untrusted)} (a profile name is {PROFILE_NAME_RULE})")
        return untrusted

    def flag(self, key: str) -> bool:
        untrusted = self.untrusted.get(key, False)
        if type(untrusted) is not bool:
            self.fail(f"'{key}' must be true or false, not {_kind(untrusted)}")
        return untrusted

    def text(self, key: str) -> str | None:
        untrusted = self.untrusted.get(key)
        if untrusted is not None and not isinstance(untrusted, str):
            self.fail(f"'{key}' must be a string, not {_kind(untrusted)}")
        return untrusted

    def word(self, key: str, choices: tuple[str, ...], default: str) -> str:
        untrusted = self.text(key)
        if untrusted is None:
            return default
        if untrusted not in choices:
            self.fail(f"'{key}' must be one of {', '.join(choices)}, not {_show(untrusted)}")
        return untrusted

    def qubes(self) -> tuple[str, ...]:
        untrusted = self.untrusted.get("qubes", [])
        if not isinstance(untrusted, list):
            self.fail(f"'qubes' must be a list of qube names, not {_kind(untrusted)}")
        if len(untrusted) > MAX_QUBES:
            self.fail(f"'qubes' names more than {MAX_QUBES} qubes")
        for index, item in enumerate(untrusted):
            self._qube_name(item, f"'qubes' item {index}")
        if len(set(untrusted)) != len(untrusted):
            self.fail("'qubes' names a qube twice")
        return tuple(untrusted)

    def session(self, *, latest: bool, key: str = "session") -> str | None:
        untrusted = self.text(key)
        if untrusted is None or (latest and untrusted == names.LATEST) or names.is_session_id(untrusted):
            return untrusted
        also = " or 'latest'" if latest else ""
        return self.fail(f"'{key}' must be a session id YYYYMMDD-HHMMSS{also}, not {_show(untrusted)}")

    def session_range(self) -> tuple[str, ...]:
        untrusted = self.text("session")
        if untrusted is None:
            self.fail("missing key 'session': prune needs a session id or a range ID,ID")
        parts = tuple(untrusted.split(","))
        if len(parts) > 2 or not all(names.is_session_id(p) for p in parts):
            self.fail(f"'session' must be a session id YYYYMMDD-HHMMSS or a range ID,ID, not {_show(untrusted)}")
        if len(parts) == 2 and parts[0] >= parts[1]:
            self.fail("'session' range must go from the older session to the newer")
        return parts

    def rename(self, qubes: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
        untrusted = self.untrusted.get("rename", {})
        if not isinstance(untrusted, dict):
            self.fail(f"'rename' must be an object {{\"OLD\": \"NEW\"}}, not {_kind(untrusted)}")
        pairs: list[tuple[str, str]] = []
        for old, new in untrusted.items():
            self._qube_name(old, "'rename' key")
            self._qube_name(new, f"'rename' value for {old}")
            if old not in qubes:
                self.fail(f"'rename' names {old}, which is not in 'qubes'")
            if new in qubes or new in (n for _, n in pairs):
                self.fail(f"'rename' gives the name {new} twice or to a qube being restored")
            pairs.append((old, new))
        return tuple(pairs)

    def _qube_name(self, untrusted: object, where: str) -> str:
        if not isinstance(untrusted, str):
            self.fail(f"{where} must be a qube name, not {_kind(untrusted)}")
        if not names.is_qube_name(untrusted):
            self.fail(f"{where} is not a valid qube name: {_show(untrusted)}")
        return untrusted


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


def _show(untrusted: str) -> str:
    """A caller's string, safe to echo back: ASCII-escaped and cut short."""
    shown = ascii(untrusted)
    return shown if len(shown) <= 42 else shown[:39] + "..."
