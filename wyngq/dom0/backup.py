"""The dom0 part of a backup: the home and configuration streams for Wyng.

`Dom0Backup` says what to take (from the command line and the profile's
[dom0] table); `write_streams` walks the trees and writes each stream into a
private spool directory on disk, as files Wyng imports in the same session as
the qubes (`--import-other-from`, wyngq.wyng.commands.send_command).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from wyngq import paths
from wyngq.contract.events import Dom0Streamed
from wyngq.dom0 import CONFIG_VOLUME, HOME_VOLUME
from wyngq.errors import ConfigError, WyngqError
from wyngq.events import Reporter
from wyngq.profile import is_profile_name, load_profile, profile_dir

if TYPE_CHECKING:
    from wyngq.dom0 import walk

# what Qubes leaves out or what is regenerated, and earlier restores beside the home
DEFAULT_EXCLUDE = (".cache", "QubesIncoming", ".local/share/Trash", "home-restore-*")
_SHOWN = 5


@dataclass(frozen=True)
class Dom0Backup:
    home: bool = False
    home_dir: str | None = None  # None: the dom0 user's home
    exclude: tuple[str, ...] = ()  # in addition to DEFAULT_EXCLUDE
    config: bool = False

    @property
    def wanted(self) -> bool:
        return self.home or self.config


@dataclass(frozen=True)
class Dom0Stream:
    """One written stream: which item, its archive volume, the spool file, and
    what went in (members, file data, stream length) or was left out."""

    item: str  # "home" | "config"
    volume: str
    path: str
    source: str
    members: int
    data_bytes: int
    bytes: int
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Dom0Outcome:
    item: str
    volume: str
    ok: bool
    source: str
    members: int
    data_bytes: int
    bytes: int
    notes: tuple[str, ...] = ()
    error: str | None = None


def outcome(stream: Dom0Stream, error: str | None = None) -> Dom0Outcome:
    return Dom0Outcome(stream.item, stream.volume, error is None, stream.source, stream.members,
                       stream.data_bytes, stream.bytes, stream.notes, error)


@contextlib.contextmanager
def spool(directory: str) -> Iterator[str]:
    """A private directory beneath `directory` (made 0700), removed afterwards."""
    os.makedirs(directory, mode=0o700, exist_ok=True)
    path = tempfile.mkdtemp(prefix="backup-", dir=directory)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def home_excluder(request: Dom0Backup, home: str, never_inside: Iterable[str] = ()) -> walk.Excluder:
    """The default and profile exclusions, plus any of `never_inside` (the archive,
    Wyng's metadata, the spool) that lies inside the home."""
    from wyngq.dom0 import walk

    anchored = []
    real_home = os.path.realpath(home)
    for path in never_inside:
        relative = os.path.relpath(os.path.realpath(path), real_home)
        if relative != "." and not relative.startswith(".."):
            anchored.append(relative)
    return walk.Excluder((*DEFAULT_EXCLUDE, *request.exclude, *anchored))


def write_streams(
    request: Dom0Backup,
    spool_path: str | None,
    *,
    sysroot: str,
    owned: Callable[[Iterable[str]], Collection[str]],
    secret_files: Collection[str] = (),
    never_inside: Sequence[str] = (),
) -> list[Dom0Stream]:
    """Write the streams `request` asks for into `spool_path` (None: only count
    them, writing nothing, for a dry run). Raise ConfigError when the home
    cannot be read or the spool's disk is full."""
    # what reads and writes dom0's files is loaded only for a backup that asks for them
    from wyngq.dom0 import configfiles, walk
    from wyngq.dom0.user import dom0_user

    streams = []
    if request.home:
        home = request.home_dir or dom0_user().home
        try:
            tree = walk.walk(home, home_excluder(request, home, never_inside))
        except OSError as err:
            raise ConfigError(f"cannot read the dom0 home {home}: {err.strerror}",
                              hint="check --dom0-home-dir or [dom0] home_dir") from err
        notes = _skipped_note(tree.skipped)
        streams.append(_write("home", HOME_VOLUME, spool_path, home, tree.entries, notes))
    if request.config:
        selection = configfiles.select(sysroot, owned, secret_files)
        notes = tuple(f"left out {path}: {reason}" for path, reason in selection.left_out)
        streams.append(_write("config", CONFIG_VOLUME, spool_path, sysroot, selection.entries, notes))
    return streams


def write_for_send(request: Dom0Backup, spool_path: str | None, dest: str, meta_dir: str | None,
                   reporter: Reporter) -> list[Dom0Stream]:
    """The streams for a send to the archive at `dest`: dom0's real system root and
    rpm (or the test doubles wyngq.paths names), the profiles' passphrase files
    never, the archive, Wyng's metadata and wyngq's state never inside the home."""
    from wyngq.dom0 import rpm

    archive = dest.removeprefix("file:") if dest.startswith("file:") else None
    inside = [p for p in (archive, meta_dir, paths.state_dir()) if p]
    streams = write_streams(
        request, spool_path, sysroot=paths.dom0_root(),
        owned=lambda dirs: rpm.owned_files(dirs, paths.rpm_program()),
        secret_files=profile_passphrase_files(), never_inside=inside)
    for stream in streams:
        reporter.event(Dom0Streamed(stream.item, stream.volume, stream.members, stream.data_bytes, stream.bytes))
    return streams


def profile_passphrase_files() -> list[str]:
    """The passphrase files the profiles in the profile directory name; a
    profile that does not load names none."""
    found = []
    try:
        names = sorted(os.listdir(profile_dir()))
    except OSError:
        return []
    for name in names:
        if name.endswith(".toml") and is_profile_name(name[:-5]):
            try:
                source = load_profile(name[:-5]).passphrase.file
            except WyngqError:
                continue
            if source:
                found.append(source)
    return found


def _write(item: str, volume: str, spool_path: str | None, root: str, entries: Sequence[walk.Entry],
           notes: tuple[str, ...]) -> Dom0Stream:
    from wyngq.dom0 import tarwrite

    path = os.path.join(spool_path, f"dom0-{item}.tar") if spool_path is not None else os.devnull
    try:
        with open(path, "wb") as out:
            written = tarwrite.write(out, root, entries)
    except OSError as err:
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            raise ConfigError(f"no space left for the dom0 {item} stream in {spool_path}",
                              hint="free space there (the stream is about the size of the data)") from err
        raise
    if written.changed:
        shown = ", ".join(written.changed[:_SHOWN]) + (" …" if len(written.changed) > _SHOWN else "")
        notes += (f"{len(written.changed)} file(s) changed while being read, stored at their listed size: {shown}",)
    return Dom0Stream(item, volume, path, root, written.members, written.data_bytes, written.bytes, notes)


def _skipped_note(skipped: Sequence[str]) -> tuple[str, ...]:
    if not skipped:
        return ()
    shown = ", ".join(skipped[:_SHOWN]) + (" …" if len(skipped) > _SHOWN else "")
    return (f"left out {len(skipped)} socket(s), FIFO(s), device(s), unreadable directories or other "
            f"filesystems mounted inside: {shown}",)
