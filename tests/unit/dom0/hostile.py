"""Hostile tar streams, one per kind of member extraction must refuse.

Each is built with tarfile, one edit away from a harmless stream, so that the
test shows exactly which member is refused and why."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable


def _tar(*members: tuple[tarfile.TarInfo, bytes | None], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return out.getvalue()


def member(name: str, kind: bytes = tarfile.REGTYPE, *, link: str = "", size: int | None = None,
           mode: int = 0o644, pax: dict[str, str] | None = None) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.mode = mode
    info.mtime = 1_700_000_000
    if size is not None:
        info.size = size
    if pax:
        info.pax_headers = pax
    return info


def ok_file(name: str = "ok.txt", data: bytes = b"fine\n") -> tuple[tarfile.TarInfo, bytes]:
    return member(name), data


def truncated() -> bytes:
    whole = _tar(ok_file("big", b"x" * 5000))
    return whole[:512 + 1024]


# name -> (stream, words the error must contain)
HOSTILE: dict[str, tuple[Callable[[], bytes], str]] = {
    "absolute path": (lambda: _tar(ok_file(), ok_file("/etc/passwd")), "absolute path"),
    "dot-dot": (lambda: _tar(ok_file(), ok_file("a/../../escape")), "clean relative path"),
    "dot-dot alone": (lambda: _tar(ok_file(".."),), "clean relative path"),
    "empty component": (lambda: _tar(ok_file("a//b"),), "clean relative path"),
    "symlink to an absolute path": (lambda: _tar((member("l", tarfile.SYMTYPE, link="/etc"), None)),
                                    "absolute or empty target"),
    "symlink pointing outside": (lambda: _tar((member("a/l", tarfile.SYMTYPE, link="../../etc"), None)),
                                 "pointing outside"),
    "hard link": (lambda: _tar(ok_file(), (member("h", tarfile.LNKTYPE, link="ok.txt"), None)), "hard link"),
    "character device": (lambda: _tar((member("null", tarfile.CHRTYPE), None)), "character device"),
    "block device": (lambda: _tar((member("sda", tarfile.BLKTYPE), None)), "block device"),
    "FIFO": (lambda: _tar((member("fifo", tarfile.FIFOTYPE), None)), "FIFO"),
    "oversize member": (lambda: _tar(ok_file("big", b"x" * 20_000)), "over the limit"),
    "too much data in all": (lambda: _tar(*(ok_file(f"f{i}", b"y" * 9000) for i in range(8))), "more than allowed"),
    "the same path twice": (lambda: _tar(ok_file("a"), ok_file("a")), "appears twice"),
    "a file through a symlink": (lambda: _tar((member("d", tarfile.DIRTYPE, mode=0o755), None),
                                             (member("l", tarfile.SYMTYPE, link="d"), None), ok_file("l/x")),
                                 "through or over another member"),
    "a file over a symlink's name": (lambda: _tar((member("s", tarfile.DIRTYPE, mode=0o755), None),
                                                  (member("s/l", tarfile.SYMTYPE, link="."), None),
                                                  ok_file("s/l/x")), "through or over another member"),
    "a directory over a file": (lambda: _tar(ok_file("f"), ok_file("f/x")), "through or over another member"),
    "a huge pax header": (lambda: _tar((member("p", pax={"comment": "c" * (3 * 1024 * 1024)}), b"")),
                          "header of"),
    "not a tar stream": (lambda: b"\x89PNG" + bytes(2000), "not a valid tar stream"),
    "cut short": (truncated, "unexpected end of data"),
}
