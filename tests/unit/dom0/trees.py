"""Small trees for the dom0 tests: files with fixed contents, modes and mtimes."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

MTIME_NS = 1_700_000_000_123_456_789


def make_tree(root: Path, files: dict[str, bytes], *, dirs: Iterable[str] = (), links: dict[str, str] | None = None,
              order: Iterable[str] | None = None, mtime_ns: int = MTIME_NS) -> Path:
    """Create `files` (path -> bytes) beneath `root` in `order` (default: as given),
    plus empty `dirs` and `links` (path -> target), every mtime set to `mtime_ns`."""
    root.mkdir(parents=True, exist_ok=True)
    for path in order or files:
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(files[path])
        target.chmod(0o644)
    for path in dirs:
        (root / path).mkdir(parents=True, exist_ok=True)
    for path, target in (links or {}).items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, root / path)
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for name in filenames + dirnames:
            os.utime(os.path.join(dirpath, name), ns=(mtime_ns, mtime_ns), follow_symlinks=False)
    return root
