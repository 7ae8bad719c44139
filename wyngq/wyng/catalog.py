"""Parse `wyng --json list` into a typed Archive.

Wyng prints its release line and a few header lines before the JSON object;
the object starts on the first line that begins with `{`. The payload is
trusted no more than any program output: every field is type-checked here,
once, and nothing below this module sees the raw dictionary.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from wyngq.errors import WyngError, WyngTooOldError

MIN_WYNG_DATE = "20250820"
RELEASE_LINE = re.compile(r"\S+ (?P<version>.+) release (?P<date>\S+)")
SESSION_PREFIX = "S_"
MAX_DIGITS = 20
_INTEGER = re.compile(rf"-?[0-9]{{1,{MAX_DIGITS}}}")


@dataclass(frozen=True)
class SessionEntry:
    """One volume's record in one session."""

    session: str
    volsize: int
    sequence: int
    changed: bool
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ArchiveVolume:
    name: str
    vid: str
    last: str | None
    sessions: Mapping[str, SessionEntry]


@dataclass(frozen=True)
class Archive:
    wversion: str
    wdate: str
    uuid: str
    updated_at: float
    encrypted: bool | None
    authenticated: bool | None
    url: str
    volumes: Mapping[str, ArchiveVolume]

    def sessions(self) -> list[str]:
        """Every session id in the archive, oldest first."""
        return sorted({s for vol in self.volumes.values() for s in vol.sessions})

    def session_volumes(self, session: str) -> set[str]:
        return {name for name, vol in self.volumes.items() if session in vol.sessions}

    def session_tags(self, session: str) -> dict[str, str]:
        tags: dict[str, str] = {}
        for vol in self.volumes.values():
            entry = vol.sessions.get(session)
            if entry is not None:
                tags.update(entry.tags)
        return tags


def parse_list_output(stdout: str) -> Archive:
    """Given the stdout of `wyng --json list`, return the Archive it describes.

    Raise WyngError if there is no well-formed JSON object in it.
    """
    start = 0 if stdout.startswith("{") else stdout.find("\n{") + 1
    if start == 0 and not stdout.startswith("{"):
        raise WyngError("Wyng printed no archive listing", hint="run the same command with -v to see Wyng's output")
    try:
        data = json.loads(stdout[start:], parse_int=_json_int, parse_constant=_json_constant)
    except (ValueError, RecursionError) as err:  # JSONDecodeError is a ValueError
        raise WyngError(f"cannot read Wyng's archive listing: {err}") from err
    try:
        return _archive(data)
    except (KeyError, TypeError, ValueError, OverflowError) as err:
        raise WyngError(f"unexpected archive listing from Wyng: {err!r}") from err


def check_version(archive: Archive) -> None:
    """Raise ConfigError unless the Wyng that listed `archive` is 0.8 release
    MIN_WYNG_DATE or newer."""
    check_wyng_version(archive.wversion, archive.wdate)


def check_header_version(stdout: str) -> None:
    """The same check on the release line Wyng prints first on every run
    (`Wyng 0.8 rc4 release 20251028`); no such line fails it too."""
    first = stdout.lstrip("\n").split("\n", 1)[0]
    match = RELEASE_LINE.fullmatch(first.strip())
    if match is None:
        raise WyngTooOldError("Wyng printed no release line",
                              hint=f"install Wyng 0.8 release {MIN_WYNG_DATE} or newer")
    check_wyng_version(match["version"], match["date"])


def check_wyng_version(wversion: str, wdate: str) -> None:
    major = wversion.split()[0] if wversion else ""
    date_ok = len(wdate) == 8 and wdate.isascii() and wdate.isdigit()
    if not _at_least(major, (0, 8)) or not date_ok or wdate < MIN_WYNG_DATE:
        raise WyngTooOldError(
            f"Wyng {wversion} release {wdate} is too old",
            hint=f"install Wyng 0.8 release {MIN_WYNG_DATE} or newer",
        )


def _at_least(version: str, minimum: tuple[int, int]) -> bool:
    try:
        parts = tuple(int(p) for p in version.split(".")[:2])
    except ValueError:
        return False
    return parts >= minimum


def _archive(data: Any) -> Archive:
    if not isinstance(data, dict):
        raise TypeError("listing is not an object")
    volumes_raw = data["volumes"]
    if not isinstance(volumes_raw, dict):
        raise TypeError("volumes is not an object")
    volumes = {str(name): _volume(str(name), vol) for name, vol in volumes_raw.items()}
    return Archive(
        wversion=_str(data["wversion"]),
        wdate=_str(data.get("wdate", "")),
        uuid=_str(data.get("uuid", "")),
        updated_at=float(data.get("updated_at") or 0),
        encrypted=_opt_bool(data.get("encrypted")),
        authenticated=_opt_bool(data.get("is_auth")),
        url=_str(data.get("url", "")),
        volumes=volumes,
    )


def _volume(name: str, raw: Any) -> ArchiveVolume:
    if not isinstance(raw, dict):
        raise TypeError(f"volume {name} is not an object")
    sessions_raw = raw.get("sessions") or {}
    if not isinstance(sessions_raw, dict):
        raise TypeError(f"sessions of {name} is not an object")
    sessions = {}
    for key, entry in sessions_raw.items():
        session = _session_key(key)
        sessions[session] = _entry(session, entry)
    last = raw.get("last")
    return ArchiveVolume(
        name=name,
        vid=_str(raw.get("vid", "")),
        last=_session_key(last) if isinstance(last, str) and last.startswith(SESSION_PREFIX) else None,
        sessions=sessions,
    )


def _entry(session: str, raw: Any) -> SessionEntry:
    if not isinstance(raw, dict):
        raise TypeError(f"session {session} is not an object")
    tags = raw.get("tags") or {}
    if not isinstance(tags, dict):
        raise TypeError(f"tags of {session} are not an object")
    return SessionEntry(
        session=session,
        volsize=_count(raw.get("volsize") or 0, "volsize"),
        sequence=_count(raw.get("sequence") or 0, "sequence"),
        changed=bool(raw.get("chg", True)),
        tags={str(k): str(v) for k, v in tags.items()},
    )


def _json_int(text: str) -> int:
    """Integers in the listing: ASCII digits, at most MAX_DIGITS of them."""
    if not _INTEGER.fullmatch(text):
        raise ValueError(f"number {text[:30]!r} is not an integer of at most {MAX_DIGITS} digits")
    return int(text)


def _json_constant(text: str) -> Any:
    raise ValueError(f"{text} is not a number")


def _count(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{what} {value!r} is not a whole number")
    return value


def _session_key(key: str) -> str:
    if not isinstance(key, str) or not key.startswith(SESSION_PREFIX):
        raise ValueError(f"bad session key {key!r}")
    return key[len(SESSION_PREFIX) :]


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r}")
    return value


def _opt_bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None
