"""Who the dom0 user is, as Qubes finds it: the first member of group `qubes`
(qubes-core-admin's backup and qubesadmin's restore both use
`grp.getgrnam("qubes").gr_mem[0]` and that user's home from the password
database)."""

from __future__ import annotations

import grp
import pwd
from dataclasses import dataclass

from wyngq.errors import ConfigError


@dataclass(frozen=True)
class Dom0User:
    name: str
    uid: int
    gid: int
    home: str


def find_dom0_user() -> Dom0User | None:
    """The dom0 user, or None where there is none (not a Qubes dom0)."""
    try:
        name = grp.getgrnam("qubes").gr_mem[0]
        entry = pwd.getpwnam(name)
    except (KeyError, IndexError):
        return None
    return Dom0User(name, entry.pw_uid, entry.pw_gid, entry.pw_dir)


def dom0_user() -> Dom0User:
    """The dom0 user; raise ConfigError where there is none."""
    user = find_dom0_user()
    if user is None:
        raise ConfigError("no dom0 user: group 'qubes' has no members",
                          hint="name the directory with --dom0-home-dir (backup) or --into (restore)")
    return user
