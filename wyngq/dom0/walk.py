"""What a directory tree holds, in the order the tar stream stores it.

Names are sorted byte-wise within each directory and every directory comes
just before its contents, so the same tree always gives the same list. The
walk never follows a symlink (wyngq.dom0.fsat): a symlink is an entry of its
own. Sockets, FIFOs and devices are left out and counted, and so is whatever
is mounted beneath the root from another filesystem (the directory stays, empty).

Exclusion patterns (shell wildcards): a pattern with a `/` (inside, or at
its start) matches the path from the tree's root (`.local/share/Trash`,
`/vms`); one without matches a name at any depth (`.cache`). An excluded
directory is left out with everything under it.
"""

from __future__ import annotations

import errno
import fnmatch
import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from wyngq.dom0 import fsat

FILE, DIRECTORY, SYMLINK = "file", "dir", "symlink"


@dataclass(frozen=True)
class Entry:
    """One member: its path relative to the root ('/'-separated), its kind and
    the attributes the stream keeps (numeric owners, mode bits, mtime in ns)."""

    path: str
    kind: str
    mode: int
    uid: int
    gid: int
    mtime_ns: int
    size: int = 0
    link: str | None = None


@dataclass(frozen=True)
class Tree:
    entries: tuple[Entry, ...]
    skipped: tuple[str, ...] = ()  # sockets, FIFOs, devices; unreadable or mounted directories ("dir/")

    @property
    def data_bytes(self) -> int:
        return sum(e.size for e in self.entries)


@dataclass(frozen=True)
class Excluder:
    patterns: tuple[str, ...] = ()
    _anchored: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _names: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        anchored = tuple(p.strip("/") for p in self.patterns if "/" in p.rstrip("/") and p.strip("/"))
        names = tuple(p.rstrip("/") for p in self.patterns if "/" not in p.rstrip("/") and p.rstrip("/"))
        object.__setattr__(self, "_anchored", anchored)
        object.__setattr__(self, "_names", names)

    def excludes(self, path: str) -> bool:
        name = path.rpartition("/")[2]
        return any(fnmatch.fnmatchcase(name, p) for p in self._names) or any(
            fnmatch.fnmatchcase(path, p) for p in self._anchored
        )


def entry_of(path: str, st: os.stat_result, link: str | None = None) -> Entry | None:
    """The entry for a stat result, or None for kinds the stream does not keep."""
    mode = stat.S_IMODE(st.st_mode)
    if stat.S_ISREG(st.st_mode):
        return Entry(path, FILE, mode, st.st_uid, st.st_gid, st.st_mtime_ns, size=st.st_size)
    if stat.S_ISDIR(st.st_mode):
        return Entry(path, DIRECTORY, mode, st.st_uid, st.st_gid, st.st_mtime_ns)
    if stat.S_ISLNK(st.st_mode):
        return Entry(path, SYMLINK, mode, st.st_uid, st.st_gid, st.st_mtime_ns, link=link)
    return None


def walk(root: str, exclude: Excluder = Excluder()) -> Tree:
    """Every entry beneath `root`, sorted. Raise OSError if `root` itself cannot
    be opened (or is a symlink)."""
    entries: list[Entry] = []
    skipped: list[str] = []
    root_fd = fsat.open_root(root)
    try:
        device = os.fstat(root_fd).st_dev
        _walk_dir(root_fd, "", _sorted(os.listdir(root_fd)), exclude, entries, skipped, device)
    finally:
        os.close(root_fd)
    return Tree(tuple(entries), tuple(skipped))


def _walk_dir(fd: int, prefix: str, names: Sequence[str], exclude: Excluder,
              entries: list[Entry], skipped: list[str], device: int) -> None:
    for name in names:
        path = prefix + name
        if exclude.excludes(path):
            continue
        try:
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:  # gone since the listing (a live home)
            continue
        link = os.readlink(name, dir_fd=fd) if stat.S_ISLNK(st.st_mode) else None
        entry = entry_of(path, st, link)
        if entry is None:
            skipped.append(path)
            continue
        entries.append(entry)
        if entry.kind == DIRECTORY and st.st_dev != device:
            skipped.append(path + "/")
        elif entry.kind == DIRECTORY:
            try:
                child = os.open(name, fsat.DIR_FLAGS, dir_fd=fd)
            except OSError as err:
                if err.errno not in (errno.ENOENT, errno.ELOOP, errno.ENOTDIR, errno.EACCES):
                    raise
                skipped.append(path + "/")
                continue
            try:
                _walk_dir(child, path + "/", _sorted(os.listdir(child)), exclude, entries, skipped, device)
            finally:
                os.close(child)


def _sorted(names: Iterable[str]) -> list[str]:
    return sorted(names, key=os.fsencode)
