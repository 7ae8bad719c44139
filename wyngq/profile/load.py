"""Finding, reading and parsing a profile file, `PROFILE_DIR/NAME.toml`."""

from __future__ import annotations

import os
import re
import tomllib
from typing import Any

from wyngq.errors import ConfigError, UsageError
from wyngq.profile.model import Profile
from wyngq.profile.schema import parse_profile

PROFILE_DIR = "/etc/wyng-util-qubes/profiles"
PROFILE_DIR_ENV = "WYNGQ_PROFILE_DIR"
_PROFILE_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
PROFILE_NAME_RULE = "1-64 characters: lower-case letters, digits, '_', '.', '-', starting with a letter or digit"
MAX_PROFILE_BYTES = 1024 * 1024


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
