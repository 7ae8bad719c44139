"""Which of dom0's configuration files travel: the ones a user wrote.

Beneath each root below, the files no package owns (asked of rpm,
wyngq.dom0.rpm), as paths relative to the system root ("etc/qubes/policy.d/
30-user.policy"), with the directories that lead to them. Never: a passphrase
file any profile names, nor a qvm-backup profile that holds its passphrase
(`passphrase_text`); those are listed as left out, with the reason.

The system root is "/" in dom0; tests and the lab point it at a directory of
their own (wyngq.paths.dom0_root).
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, replace

from wyngq.dom0 import walk
from wyngq.dom0.walk import DIRECTORY, Entry


@dataclass(frozen=True)
class ConfigRoot:
    path: str  # absolute, as in dom0
    pattern: str = "*"  # which file names count
    recursive: bool = True


ROOTS = (
    ConfigRoot("/etc/qubes/policy.d"),
    ConfigRoot("/etc/qubes-rpc"),
    ConfigRoot("/srv/user_salt"),
    ConfigRoot("/srv/user_pillar"),
    ConfigRoot("/srv/salt", "*.top", recursive=False),
    ConfigRoot("/etc/wyng-util-qubes/profiles", "*.toml", recursive=False),
    ConfigRoot("/etc/qubes/backup", "*.conf", recursive=False),
)
QVM_BACKUP_PROFILES = "/etc/qubes/backup"
_PEEK = 64 * 1024


@dataclass(frozen=True)
class Selection:
    entries: tuple[Entry, ...]  # sorted as the stream stores them
    left_out: tuple[tuple[str, str], ...] = ()  # (path, reason)

    @property
    def files(self) -> tuple[Entry, ...]:
        return tuple(e for e in self.entries if e.kind != DIRECTORY)


def select(
    sysroot: str,
    owned: Callable[[Iterable[str]], Collection[str]],
    secret_files: Collection[str] = (),
    roots: Iterable[ConfigRoot] = ROOTS,
) -> Selection:
    """The configuration files beneath `sysroot` that travel. `owned(dirs)` gives
    the packaged files beneath those dom0 directories (wyngq.dom0.rpm.owned_files);
    `secret_files` are dom0 paths never to take (profiles' passphrase files)."""
    roots = tuple(roots)
    packaged = set(owned([r.path for r in roots]))
    secrets = {os.path.normpath(p) for p in secret_files}
    chosen: dict[str, Entry] = {}
    left_out: list[tuple[str, str]] = []
    for root in roots:
        live = os.path.join(sysroot, root.path.lstrip("/"))
        if not os.path.isdir(live) or os.path.islink(live):
            continue
        prefix = root.path.strip("/") + "/"
        for entry in walk.walk(live).entries:
            if entry.kind == DIRECTORY or not _counts(root, entry.path):
                continue
            dom0_path = "/" + prefix + entry.path
            reason = _left_out_because(dom0_path, os.path.join(live, entry.path), packaged, secrets)
            if reason is None:
                chosen[prefix + entry.path] = replace(entry, path=prefix + entry.path)
            elif reason != "owned by a package":
                left_out.append((dom0_path, reason))
    for path in list(chosen):
        _add_parents(sysroot, path, chosen)
    ordered = sorted(chosen.values(), key=lambda e: os.fsencode(e.path).split(b"/"))
    return Selection(tuple(ordered), tuple(left_out))


def _counts(root: ConfigRoot, relative: str) -> bool:
    if not root.recursive and "/" in relative:
        return False
    return fnmatch.fnmatchcase(relative.rpartition("/")[2], root.pattern)


def _left_out_because(dom0_path: str, live: str, packaged: set[str], secrets: set[str]) -> str | None:
    if dom0_path in packaged:
        return "owned by a package"
    if dom0_path in secrets:
        return "a passphrase file named by a profile"
    if dom0_path.startswith(QVM_BACKUP_PROFILES + "/") and _holds_passphrase(live):
        return "a qvm-backup profile holding its passphrase (passphrase_text)"
    return None


def _holds_passphrase(path: str) -> bool:
    try:
        with open(path, "rb", opener=lambda p, f: os.open(p, f | os.O_NOFOLLOW)) as handle:
            return b"passphrase_text" in handle.read(_PEEK)
    except OSError:
        return True  # cannot tell: do not take it


def _add_parents(sysroot: str, path: str, chosen: dict[str, Entry]) -> None:
    parts = path.split("/")[:-1]
    for depth in range(1, len(parts) + 1):
        parent = "/".join(parts[:depth])
        if parent not in chosen:
            st = os.stat(os.path.join(sysroot, parent), follow_symlinks=False)
            entry = walk.entry_of(parent, st)
            if entry is not None and entry.kind == DIRECTORY:
                chosen[parent] = entry
