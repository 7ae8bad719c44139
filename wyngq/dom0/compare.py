"""Restored configuration files against the live ones: new, equal or different.

Pure reading (never writes): for each restored file, its state against the
same path beneath the live system root, an optional unified diff, and the
command that would put it in place (for the user to run; nothing is installed
automatically).
"""

from __future__ import annotations

import difflib
import os
import shlex
import stat
from collections.abc import Iterable
from dataclasses import dataclass

from wyngq.dom0.walk import FILE, SYMLINK, Entry

NEW, EQUAL, DIFFERENT = "new", "equal", "different"
MAX_DIFF_INPUT = 1024 * 1024  # larger files are compared, not diffed
_READ = 1024 * 1024


@dataclass(frozen=True)
class FileState:
    path: str  # the dom0 path, e.g. /etc/qubes/policy.d/30-user.policy
    state: str  # new | equal | different
    restored: str  # where the restored copy is
    put_in_place: str  # a command line that installs it
    diff: str | None = None


def compare(members: Iterable[Entry], restored_root: str, live_root: str, *, diff: bool = False) -> list[FileState]:
    """The state of each restored file or symlink in `members` (paths relative to
    both roots)."""
    states = []
    for member in members:
        if member.kind not in (FILE, SYMLINK):
            continue
        restored = os.path.join(restored_root, member.path)
        live = os.path.join(live_root, member.path)
        state = _state(restored, live)
        text = _diff(restored, live, member.path) if diff and state == DIFFERENT and member.kind == FILE else None
        states.append(FileState("/" + member.path, state, restored, _install_command(member, restored, live), text))
    return states


def _state(restored: str, live: str) -> str:
    try:
        live_st = os.lstat(live)
    except FileNotFoundError:
        return NEW
    restored_st = os.lstat(restored)
    if stat.S_IFMT(live_st.st_mode) != stat.S_IFMT(restored_st.st_mode):
        return DIFFERENT
    if stat.S_ISLNK(restored_st.st_mode):
        return EQUAL if os.readlink(restored) == os.readlink(live) else DIFFERENT
    same_meta = (stat.S_IMODE(live_st.st_mode), live_st.st_uid, live_st.st_gid) == (
        stat.S_IMODE(restored_st.st_mode), restored_st.st_uid, restored_st.st_gid)
    return EQUAL if same_meta and _same_bytes(restored, live) else DIFFERENT


def _same_bytes(first: str, second: str) -> bool:
    if os.path.getsize(first) != os.path.getsize(second):
        return False
    with open(first, "rb") as one, open(second, "rb") as two:
        while True:
            a, b = one.read(_READ), two.read(_READ)
            if a != b:
                return False
            if not a:
                return True


def _diff(restored: str, live: str, path: str) -> str:
    if os.path.getsize(restored) > MAX_DIFF_INPUT or os.path.getsize(live) > MAX_DIFF_INPUT:
        return "(too large to show a diff)"
    with open(live, "rb") as handle:
        old = handle.read()
    with open(restored, "rb") as handle:
        new = handle.read()
    if b"\0" in old or b"\0" in new:
        return "(binary files differ)"
    lines = difflib.unified_diff(
        old.decode("utf-8", "replace").splitlines(keepends=True),
        new.decode("utf-8", "replace").splitlines(keepends=True),
        fromfile=f"/{path} (live)", tofile=f"/{path} (restored)")
    return "".join(lines) or "(only owner or mode differ)"


def _install_command(member: Entry, restored: str, live: str) -> str:
    """What the user runs to put the restored copy in place (`cp -a` keeps
    owner, mode and mtime; sudo because dom0's files belong to root)."""
    parent = os.path.dirname(live)
    return f"sudo mkdir -p {shlex.quote(parent)} && sudo cp -a {shlex.quote(restored)} {shlex.quote(live)}"
