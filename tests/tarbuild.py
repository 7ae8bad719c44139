"""Plain tar streams of named members, built with Python's tarfile, for the
tests of wyngq's own readers (tarstream, bundles, the fuzz run)."""

from __future__ import annotations

import io
import tarfile


def tar_of(members: dict[str, bytes], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    """An uncompressed tar holding each name with its bytes, in `fmt`."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=fmt) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()
