"""The deterministic tar stream of a tree: same tree, same bytes.

POSIX pax format with stable headers: entries in wyngq.dom0.walk's order,
numeric owners only (no user or group names), mode bits, the mtime with its
nanoseconds in a pax record, no device numbers, no access times.

So that an unchanged file gives unchanged Wyng chunks even when a file before
it grew or shrank, some members start their data on a multiple of ALIGN (Wyng's
default chunk size, and a multiple of its smaller ones): every file of at least
ALIGN bytes, and small files chosen by a hash of their path with a likelihood
that grows with their size (about one every 4*ALIGN bytes of small files). A
size change then moves only the members up to the next aligned one. The gap
is filled with a pax `comment` record of spaces, which every tar reader
ignores and which compresses to almost nothing.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import BinaryIO

from wyngq.dom0 import fsat
from wyngq.dom0.walk import DIRECTORY, FILE, SYMLINK, Entry

ALIGN = 256 * 1024
SMALL_FILE_SPAN = 4 * ALIGN
BLOCK = 512
_READ = 1024 * 1024
_TYPES = {FILE: tarfile.REGTYPE, DIRECTORY: tarfile.DIRTYPE, SYMLINK: tarfile.SYMTYPE}


@dataclass(frozen=True)
class Written:
    """What went into the stream: its length, the members, the file data, and
    the files that changed size while being read (stored at their listed size:
    cut short, or filled up with zeros)."""

    bytes: int
    members: int
    data_bytes: int
    changed: tuple[str, ...] = ()


def header(entry: Entry, pad: int = 0) -> bytes:
    """The header blocks of `entry`, with a comment record of `pad` spaces (0: none)."""
    info = tarfile.TarInfo(entry.path)
    info.type = _TYPES[entry.kind]
    info.mode = entry.mode
    info.uid, info.gid = entry.uid, entry.gid
    info.uname = info.gname = ""
    seconds, nanos = divmod(entry.mtime_ns, 10**9)
    info.mtime = seconds
    info.size = entry.size if entry.kind == FILE else 0
    info.linkname = entry.link or ""
    records: dict[str, str] = {}
    if pad:
        records["comment"] = " " * pad
    if nanos:
        records["mtime"] = f"{seconds}.{nanos:09d}"
    info.pax_headers = records
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def aligned(entry: Entry) -> bool:
    """Whether `entry`'s data starts on a multiple of ALIGN (see the module docstring)."""
    if entry.kind != FILE or entry.size == 0:
        return False
    if entry.size >= ALIGN:
        return True
    digest = hashlib.sha256(os.fsencode(entry.path)).digest()
    return int.from_bytes(digest[:8], "big") < (entry.size << 64) // SMALL_FILE_SPAN


def header_at(entry: Entry, offset: int) -> bytes:
    """The header of `entry` written at stream `offset`, padded when the entry is
    aligned so that its data starts on a multiple of ALIGN."""
    plain = header(entry)
    if not aligned(entry) or (offset + len(plain)) % ALIGN == 0:
        return plain
    # a comment record adds its own pax header block when there was none, then
    # its length in whole blocks: aim for the gap, then correct by what it cost
    want = (-(offset + len(plain))) % ALIGN
    if want < 2 * BLOCK:
        want += ALIGN
    pad = want - 2 * BLOCK
    for _ in range(4):
        if pad < 1:
            pad += ALIGN
        padded = header(entry, pad)
        miss = (offset + len(padded)) % ALIGN
        if miss == 0:
            return padded
        pad -= miss if miss < ALIGN // 2 else miss - ALIGN
    raise AssertionError("tar alignment did not converge")  # pad lengths are exact multiples of BLOCK


def write(out: BinaryIO, root: str, entries: Sequence[Entry]) -> Written:
    """Write the stream of `entries` (paths relative to `root`) to `out`. A file
    gone since the walk is left out."""
    offset = members = data = 0
    changed: list[str] = []
    root_fd = fsat.open_root(root)
    try:
        for entry in entries:
            fd = -1
            if entry.kind == FILE:
                try:
                    fd = _open_file(root_fd, entry.path)
                except OSError:
                    continue  # gone, or replaced by something that is not a file
            try:
                block = header_at(entry, offset)
                out.write(block)
                offset += len(block)
                members += 1
                if fd >= 0:
                    if not _copy(fd, entry.size, out):
                        changed.append(entry.path)
                    tail = (-entry.size) % BLOCK
                    out.write(bytes(tail))
                    offset += entry.size + tail
                    data += entry.size
            finally:
                if fd >= 0:
                    os.close(fd)
        out.write(bytes(2 * BLOCK))  # end of archive
        offset += 2 * BLOCK
    finally:
        os.close(root_fd)
    return Written(offset, members, data, tuple(changed))


def _open_file(root_fd: int, path: str) -> int:
    """The file at `path` beneath `root_fd`, opened for reading; raise OSError if it
    is gone or not a regular file (a symlink is never followed)."""
    parts = fsat.split(path)
    with fsat.directory(root_fd, parts[:-1]) as parent:
        fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=parent)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise IsADirectoryError(path)
    return fd


def _copy(fd: int, size: int, out: BinaryIO) -> bool:
    """Copy exactly `size` bytes of the file; False if it was not that size any
    more (a shorter file is filled up with zeros, a longer one cut)."""
    left = size
    while left:
        chunk = os.read(fd, min(_READ, left))
        if not chunk:
            break
        out.write(chunk)
        left -= len(chunk)
    same = not left and not os.read(fd, 1)
    while left:
        step = min(_READ, left)
        out.write(bytes(step))
        left -= step
    return same
