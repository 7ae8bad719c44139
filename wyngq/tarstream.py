"""Read the members of an untrusted tar stream with every size bounded before it is read.

Python's `tarfile` reads a PAX extended header or a GNU long name whole into
memory, whatever size its header claims, and keeps a TarInfo per member: a
hostile archive can make it use any amount of memory and time. This reader
parses the 512-byte headers itself and checks each size against `TarLimits`
before reading a byte of what follows:

- regular files (types `0`, NUL, `7`) come back as `(name, data)`; directories
  (`5`) are skipped; any other type (links, devices, sparse files) raises, since
  no settings bundle holds one;
- PAX extended headers (`x`) may set `path` and `size` (others are ignored),
  PAX global headers (`g`) are read and ignored, GNU long names (`L`) set the
  next member's name: each at most `max_header_bytes`;
- sizes are plain octal (base-256 sizes are refused), PAX sizes ASCII digits;
  header checksums are checked; a member name must be UTF-8;
- the number of members, each member's size, their total, and all the bytes
  read from the stream (headers and padding included) are bounded.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

BLOCK = 512
_REGULAR = (b"0", b"\0", b"7")
_OCTAL = re.compile(rb"[0-7]{1,12}")
_DIGITS = re.compile(rb"[0-9]{1,18}")


class TarFormatError(Exception):
    """The stream is not a tar this reader accepts; the message says why."""


@dataclass(frozen=True)
class TarLimits:
    max_members: int = 20_000
    max_member_bytes: int = 8 * 1024 * 1024
    max_total_bytes: int = 16 * 1024 * 1024  # of all members' data
    max_header_bytes: int = 64 * 1024  # each PAX header or GNU long name
    max_stream_bytes: int = 24 * 1024 * 1024  # everything read, headers and padding too


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class _Bounded:
    """A stream that refuses to give more than `limit` bytes in all."""

    def __init__(self, stream: Readable, limit: int) -> None:
        self.stream = stream
        self.left = limit

    def read_exactly(self, size: int) -> bytes:
        if size > self.left:
            raise TarFormatError("the tar stream is larger than allowed")
        data = self.stream.read(size)
        self.left -= len(data)
        if len(data) != size:
            raise TarFormatError("the tar stream ends in the middle of a member")
        return data


def read_members(stream: Readable, limits: TarLimits = TarLimits()) -> Iterator[tuple[str, bytes]]:
    """Yield (name, data) for each regular file of the tar on `stream`, in order;
    raise TarFormatError for anything malformed, unsupported or over a limit."""
    source = _Bounded(stream, limits.max_stream_bytes)
    members = total = 0
    pending_name: str | None = None
    pending_size: int | None = None
    while True:
        header = _next_header(source, first=members == 0)
        if header == bytes(BLOCK):
            if pending_name is not None or pending_size is not None:
                raise TarFormatError("the tar stream ends after an extended header")
            return
        members += 1
        if members > limits.max_members:
            raise TarFormatError(f"the tar stream has more than {limits.max_members} members")
        kind, name, size = _header(header)
        if pending_size is not None:
            size, pending_size = pending_size, None
        if kind in (b"x", b"g", b"L"):
            if size > limits.max_header_bytes:
                raise TarFormatError(f"an extended tar header of {size} bytes is larger than allowed")
            payload = _data(source, size)
            if kind == b"x":
                pending_name, pending_size = _pax(payload, pending_name)
            elif kind == b"L":
                pending_name = _utf8(payload.split(b"\0", 1)[0])
            continue
        if pending_name is not None:
            name, pending_name = pending_name, None
        if kind == b"5":
            _data(source, size)
            continue
        if kind not in _REGULAR:
            raise TarFormatError(f"tar member {name!r} is not a plain file (type {kind!r})")
        if size > limits.max_member_bytes or total + size > limits.max_total_bytes:
            raise TarFormatError(f"tar member {name!r} ({size} bytes) is larger than allowed")
        total += size
        yield name, _data(source, size)


def _next_header(source: _Bounded, *, first: bool) -> bytes:
    if source.left < BLOCK:
        raise TarFormatError("the tar stream is larger than allowed")
    header = source.stream.read(BLOCK)
    source.left -= len(header)
    if len(header) < BLOCK:
        raise TarFormatError("the tar stream is empty" if first and not header
                             else "the tar stream ends without its end-of-archive block")
    return header


def _header(block: bytes) -> tuple[bytes, str, int]:
    """The type, name and size of one ustar / GNU header block."""
    stored = block[148:156].rstrip(b"\0 ").lstrip(b" ")
    if not _OCTAL.fullmatch(stored):
        raise TarFormatError("a tar header has a malformed checksum")
    summed = block[:148] + b" " * 8 + block[156:]
    if int(stored, 8) != sum(summed) and int(stored, 8) != sum(b - 256 if b > 127 else b for b in summed):
        raise TarFormatError("a tar header's checksum does not match")
    if block[257:262] != b"ustar":
        raise TarFormatError("a tar header is neither ustar nor GNU")
    raw_size = block[124:136]
    if raw_size[:1] in (b"\x80", b"\xff"):
        raise TarFormatError("a tar header gives its size in base-256 (too large)")
    size_text = raw_size.strip(b"\0 ")
    if size_text and not _OCTAL.fullmatch(size_text):
        raise TarFormatError("a tar header has a malformed size")
    name = block[0:100].split(b"\0", 1)[0]
    prefix = block[345:500].split(b"\0", 1)[0] if block[257:263] == b"ustar\0" else b""
    if prefix:
        name = prefix + b"/" + name
    return block[156:157], _utf8(name), int(size_text or b"0", 8)


def _data(source: _Bounded, size: int) -> bytes:
    """A member's `size` bytes, and the padding to the next block."""
    padded = -(-size // BLOCK) * BLOCK
    return source.read_exactly(padded)[:size]


def _pax(payload: bytes, name: str | None) -> tuple[str | None, int | None]:
    """The `path` and `size` a PAX extended header sets (records `LEN key=value\\n`)."""
    size: int | None = None
    rest = payload
    while rest.strip(b"\0"):
        length_text, space, _ = rest.partition(b" ")
        if not space or not _DIGITS.fullmatch(length_text) or not 0 < int(length_text) <= len(rest):
            raise TarFormatError("a PAX header has a malformed record")
        record, rest = rest[: int(length_text)], rest[int(length_text):]
        key, equals, value = record[len(length_text) + 1:].partition(b"=")
        if not equals or not value.endswith(b"\n"):
            raise TarFormatError("a PAX header has a malformed record")
        value = value[:-1]
        if key == b"path":
            name = _utf8(value)
        elif key == b"size":
            if not _DIGITS.fullmatch(value):
                raise TarFormatError("a PAX header has a malformed size")
            size = int(value)
    return name, size


def _utf8(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise TarFormatError(f"a tar member name is not UTF-8: {raw[:60]!r}") from err
