"""Paths beneath a directory, opened without ever following a symlink.

Every component is opened relative to its parent's file descriptor with
O_NOFOLLOW, so neither a symlink planted in a tree being read nor one in a
tree being written can send wyngq elsewhere (a link where a directory is
expected fails with ELOOP/ENOTDIR instead of being followed).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def open_root(path: str) -> int:
    """A descriptor of the directory `path`; its last component must not be a symlink."""
    return os.open(path, DIR_FLAGS)


def split(relative: str) -> list[str]:
    """The components of a member path already checked to be relative and clean."""
    return [part for part in relative.split("/") if part]


@contextlib.contextmanager
def directory(root_fd: int, components: Sequence[str], *, create: bool = False, mode: int = 0o700) -> Iterator[int]:
    """A descriptor of the directory `components` beneath `root_fd` (the root
    itself for none), optionally creating missing directories with `mode`."""
    fd = os.dup(root_fd)
    try:
        for part in components:
            try:
                child = os.open(part, DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                os.mkdir(part, mode, dir_fd=fd)
                child = os.open(part, DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = child
        yield fd
    finally:
        os.close(fd)
