"""Extract a tar stream from an archive into a new directory, safely.

An archive is hostile until proven otherwise (docs/dom0.md): the stream may
come from someone who could write the archive. Extraction therefore refuses,
with UnsafeArchiveError naming the member and the reason: absolute paths, `..`
and other unclean paths, the same path twice, hard links, symlinks whose
target is absolute or leaves the tree, devices, FIFOs and any other kind,
members over the size limit, more data or members than the limits allow, and
headers larger than any this tool writes. Every path is created beneath the
target through directory descriptors with O_NOFOLLOW (wyngq.dom0.fsat), so a
symlink in the target, one from the stream or one planted meanwhile, is never
followed. Extraction happens in a hidden directory beside the target that is
renamed into place only when everything is out; on any failure it is removed.

Modes come back without setuid/setgid bits; owners come from the stream or
are one fixed owner (the dom0 user, for a home); mtimes to the nanosecond.
"""

from __future__ import annotations

import errno
import os
import posixpath
import re
import shutil
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from wyngq.dom0 import fsat
from wyngq.dom0.walk import DIRECTORY, FILE, SYMLINK, Entry
from wyngq.errors import WyngError

MAX_HEADER = 1024 * 1024  # far above any name or record the writer produces
_CHUNK = 1024 * 1024
_KINDS = {tarfile.REGTYPE: FILE, tarfile.AREGTYPE: FILE, tarfile.DIRTYPE: DIRECTORY, tarfile.SYMTYPE: SYMLINK}
_REFUSED = {tarfile.LNKTYPE: "a hard link", tarfile.CHRTYPE: "a character device",
            tarfile.BLKTYPE: "a block device", tarfile.FIFOTYPE: "a FIFO", tarfile.CONTTYPE: "a contiguous file"}
_PAX_MTIME = re.compile(r"(-?\d{1,18})(?:\.(\d{1,9})\d*)?")


class UnsafeArchiveError(WyngError):
    """The stream holds something extraction refuses; nothing was extracted."""

    code = "unsafe_archive"


@dataclass(frozen=True)
class Limits:
    max_member: int
    max_total: int
    max_members: int = 1_000_000


@dataclass(frozen=True)
class Extracted:
    """What came out: counts, and the members themselves when asked for (a home
    may hold millions; its restore needs only the counts)."""

    files: int
    data_bytes: int
    members: tuple[Entry, ...] = ()


Owner = Callable[[Entry], tuple[int, int]]


def from_stream(member: Entry) -> tuple[int, int]:
    return member.uid, member.gid


def fixed_owner(uid: int, gid: int) -> Owner:
    return lambda _member: (uid, gid)


def check(source: str, limits: Limits) -> Extracted:
    """Read the whole stream as extraction would, writing nothing; raise
    UnsafeArchiveError on the first member extraction would refuse."""
    return _read(source, limits, None, keep=False)


def extract(source: str, target: str, limits: Limits, owner: Owner = from_stream, *, keep: bool = True) -> Extracted:
    """Extract the stream in `source` into the new directory `target` (which must
    not exist; its parent must), owned as `owner` says; the result lists the
    members if `keep`. Raise UnsafeArchiveError (nothing left behind) or
    FileExistsError."""
    target = os.path.abspath(target)
    if os.path.lexists(target):
        raise FileExistsError(errno.EEXIST, "already exists", target)
    parent, name = os.path.split(target)
    partial = tempfile.mkdtemp(prefix=f".{name}.partial-", dir=parent)
    try:
        root_fd = fsat.open_root(partial)
        try:
            done = _read(source, limits, _Writer(root_fd, owner), keep=keep)
            _set_root(root_fd, owner)
        finally:
            os.close(root_fd)
        os.rename(partial, target)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return done


def _set_root(root_fd: int, owner: Owner) -> None:
    uid, gid = owner(Entry("", DIRECTORY, 0o700, os.geteuid(), os.getegid(), 0))
    if os.geteuid() == 0:
        os.fchown(root_fd, uid, gid)
    os.fchmod(root_fd, 0o700)


def _read(source: str, limits: Limits, writer: _Writer | None, *, keep: bool) -> Extracted:
    members: list[Entry] = []
    seen: dict[str, str] = {}  # path -> kind
    total = files = 0
    with open(source, "rb") as raw:
        capped = _CappedReads(raw)
        try:
            with tarfile.open(fileobj=capped, mode="r:", encoding="utf-8", errors="surrogateescape") as tar:  # type: ignore[call-overload]
                while (info := tar.next()) is not None:
                    tar.members.clear()  # kept by tarfile for random access we never use
                    member = _checked(info, seen, limits)
                    total += member.size
                    files += member.kind == FILE
                    if total > limits.max_total or len(seen) > limits.max_members:
                        raise UnsafeArchiveError(f"member {_show(member.path)}: the stream holds more than allowed "
                                                 f"({limits.max_total} bytes, {limits.max_members} members)")
                    if keep:
                        members.append(member)
                    if writer is not None:
                        writer.add(member, tar.extractfile(info) if member.kind == FILE else None)
                    elif member.kind == FILE:
                        _drain(tar.extractfile(info), member.size)
        except tarfile.TarError as err:
            raise UnsafeArchiveError(f"not a valid tar stream: {err}", hint="run `verify` on the session") from err
    if writer is not None:
        writer.finish()
    return Extracted(files, total, tuple(members))


def _checked(info: tarfile.TarInfo, seen: dict[str, str], limits: Limits) -> Entry:
    """The member `info` stands for, or UnsafeArchiveError."""
    name = info.name
    where = f"member {_show(name)}"
    if info.type in _REFUSED:
        raise UnsafeArchiveError(f"{where} is {_REFUSED[info.type]}; refused")
    kind = _KINDS.get(info.type)
    if kind is None:
        raise UnsafeArchiveError(f"{where} has an unsupported type {info.type!r}; refused")
    path = name.rstrip("/") if kind == DIRECTORY else name
    if path.startswith("/"):
        raise UnsafeArchiveError(f"{where} has an absolute path; refused")
    parts = path.split("/")
    if not path or any(p in ("", ".", "..") for p in parts) or "\0" in path:
        raise UnsafeArchiveError(f"{where} is not a clean relative path (no '..', '.', or empty parts); refused")
    if path in seen:
        raise UnsafeArchiveError(f"{where} appears twice; refused")
    for depth in range(1, len(parts)):
        if seen.get("/".join(parts[:depth]), DIRECTORY) != DIRECTORY:
            raise UnsafeArchiveError(f"{where} would go through or over another member (a symlink or a file); "
                                     "refused")
    seen[path] = kind
    size = info.size if kind == FILE else 0
    if size > limits.max_member:
        raise UnsafeArchiveError(f"{where} is {size} bytes, over the limit of {limits.max_member}; refused")
    link = None
    if kind == SYMLINK:
        link = info.linkname
        if not link or link.startswith("/") or "\0" in link:
            raise UnsafeArchiveError(f"{where} is a symlink to an absolute or empty target; refused")
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(path), link))
        if resolved == ".." or resolved.startswith("../"):
            raise UnsafeArchiveError(f"{where} is a symlink pointing outside the tree; refused")
    return Entry(path, kind, info.mode & 0o1777, info.uid, info.gid, _mtime_ns(info), size, link)


def _mtime_ns(info: tarfile.TarInfo) -> int:
    match = _PAX_MTIME.fullmatch(info.pax_headers.get("mtime", ""))
    if match is None:
        return int(info.mtime) * 10**9
    seconds, fraction = int(match[1]), (match[2] or "").ljust(9, "0")
    nanos = int(fraction)
    return seconds * 10**9 + (-nanos if match[1].startswith("-") else nanos)


def _drain(stream: BinaryIO | None, size: int) -> None:
    left = size
    while stream is not None and left:
        chunk = stream.read(min(_CHUNK, left))
        if not chunk:
            raise UnsafeArchiveError("the stream ends inside a member")
        left -= len(chunk)


class _CappedReads:
    """A file for tarfile whose reads are refused above MAX_HEADER bytes, so that
    a forged header size can never make tarfile allocate it (member data is read
    by wyngq in chunks well below that)."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0 or size > MAX_HEADER + _CHUNK:
            raise UnsafeArchiveError(f"a header of {size} bytes, more than any stream wyngq writes; refused")
        return self.raw.read(size)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.raw.seek(offset, whence)

    def tell(self) -> int:
        return self.raw.tell()


class _Writer:
    """Creates members beneath a directory descriptor, never following a symlink."""

    def __init__(self, root_fd: int, owner: Owner) -> None:
        self.root_fd = root_fd
        self.owner = owner
        self.root = os.geteuid() == 0
        self.dirs: list[Entry] = []

    def add(self, member: Entry, data: BinaryIO | None) -> None:
        parts = fsat.split(member.path)
        try:
            with fsat.directory(self.root_fd, parts[:-1], create=True) as parent:
                getattr(self, "_" + member.kind)(parent, parts[-1], member, data)
        except OSError as err:
            if err.errno in (errno.ELOOP, errno.ENOTDIR, errno.EEXIST):
                raise UnsafeArchiveError(
                    f"member {_show(member.path)} would go through or over another member "
                    f"(a symlink or a file); refused") from err
            raise

    def _file(self, parent: int, name: str, member: Entry, data: BinaryIO | None) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(name, flags, 0o600, dir_fd=parent)
        try:
            left = member.size
            while data is not None and left:
                chunk = data.read(min(_CHUNK, left))
                if not chunk:
                    raise UnsafeArchiveError("the stream ends inside a member")
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view):]
                left -= len(chunk)
            if self.root:
                os.fchown(fd, *self.owner(member))
            os.fchmod(fd, member.mode & 0o777)
            os.utime(fd, ns=(member.mtime_ns, member.mtime_ns))
        finally:
            os.close(fd)

    def _dir(self, parent: int, name: str, member: Entry, data: BinaryIO | None) -> None:
        try:
            os.mkdir(name, 0o700, dir_fd=parent)
        except FileExistsError:  # made already as the parent of an earlier member
            os.close(os.open(name, fsat.DIR_FLAGS, dir_fd=parent))
        self.dirs.append(member)

    def _symlink(self, parent: int, name: str, member: Entry, data: BinaryIO | None) -> None:
        os.symlink(member.link or "", name, dir_fd=parent)
        if self.root:
            os.chown(name, *self.owner(member), dir_fd=parent, follow_symlinks=False)
        os.utime(name, ns=(member.mtime_ns, member.mtime_ns), dir_fd=parent, follow_symlinks=False)

    def finish(self) -> None:
        """Directories last, deepest first: their modes (a read-only directory
        would have refused its contents) and mtimes (which creating them changed)."""
        for member in reversed(self.dirs):
            with fsat.directory(self.root_fd, fsat.split(member.path)) as fd:
                if self.root:
                    os.fchown(fd, *self.owner(member))
                os.fchmod(fd, member.mode)
                os.utime(fd, ns=(member.mtime_ns, member.mtime_ns))


def _show(untrusted: str) -> str:
    shown = ascii(untrusted)
    return shown if len(shown) <= 80 else shown[:77] + "..."
