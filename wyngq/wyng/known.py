"""What wyngq last saw of an archive, kept between runs, so that a backup needs
one Wyng call (the send) instead of two.

Reading the catalogue (`wyng --json list`) before a send costs a Wyng start,
~0.5 s, and on an encrypted archive another key derivation, ~2.4 s
(docs/facts.md). A backup needs from it only what this record keeps, and only
where a stale record is harmless:

- the archive's volume names, for one thing only: whether a volume now named
  for a reflink pool is in the archive under its LVM name, or the other way
  round (upstream's aliasing; Wyng renames it and sends incrementally). The
  record holds every name wyngq has seen in the catalogue or sent, less the
  names Wyng renamed away; `create` starts it empty; `delete`, a backup with a
  failed qube and a backup that stopped midway (Wyng may have renamed volumes
  already) drop it. What can still make it stale is another writer to the same
  archive (another program, another dom0, or this one under another spelling
  of the destination URL), and then:
  - a name it lacks that the archive has (an alias that program added) makes
    that volume go in full under its own name, beside the other one;
  - a name it keeps that is gone from the archive, taken for an alias, makes
    that volume fail (Wyng finds no such local volume); a backup with any
    failed volume drops the record, so the next one reads the catalogue;
  so nothing is sent wrong or lost;
- its session ids: not to start a send in the same second as the newest one
  (Wyng refuses a duplicate), and to check that the session Wyng reports is new
  (it must also be no older than the send itself, so another writer's session
  is never taken for it);
- the Wyng executable (path, size, mtime) whose version passed the check: a
  changed executable makes the backup read the catalogue, which checks it again;
- the last session of each qube in this archive (`last`), which scheduling
  uses (wyngq.schedule: a qube is due per archive, not by its backup_timestamp,
  which a backup to any archive sets). Rebuilt from the catalogue's volume names
  when the record is missing: a qube's last session is the newest session
  holding one of its volumes and the settings bundle. A disposable qube has no
  volume, so only a backup wyngq made tells its session; until one does, it
  follows the qubes with data (it is never due alone).

One JSON file per archive, `STATE_DIR/archives/<key>.json` (root only), key
from the destination URL and the meta dir; written atomically by `create`,
after each catalogue read a backup makes, and after each backup. A missing,
unreadable or malformed record is simply not used.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from wyngq import paths, volnames
from wyngq.names import is_qube_name
from wyngq.wyng.catalog import Archive
from wyngq.wyng.commands import WyngTarget

log = logging.getLogger(__name__)

FORMAT = 2
MANIFEST_COPY_SUFFIX = ".manifest.json"  # beside the record: the last manifest sent (wyngq.carry)


@dataclass(frozen=True)
class KnownArchive:
    volumes: frozenset[str]
    sessions: frozenset[str]
    wyng: tuple[str, int, int] | None = None  # the checked executable: real path, size, mtime (ns)
    last: Mapping[str, str] = field(default_factory=dict)  # qube -> its last session in this archive

    @classmethod
    def of(cls, archive: Archive, executable: str) -> KnownArchive:
        """The record of a catalogue just read (and version-checked) with `executable`."""
        return cls(frozenset(archive.volumes), frozenset(archive.sessions()), executable_stamp(executable),
                   last_sessions(archive))

    @classmethod
    def empty(cls, executable: str) -> KnownArchive:
        """The record of an archive just created (by a Wyng whose version passed the check)."""
        return cls(frozenset(), frozenset(), executable_stamp(executable))

    @property
    def newest(self) -> str | None:
        return max(self.sessions) if self.sessions else None

    def with_session(self, session: str, volumes: Iterable[str], renamed: Iterable[str] = (),
                     qubes: Iterable[str] = ()) -> KnownArchive:
        """After a backup: its session, the volumes it sent, without the names Wyng
        renamed them from, and the qubes it backed up."""
        last = {**self.last, **{name: session for name in qubes}}
        return KnownArchive((self.volumes - frozenset(renamed)) | frozenset(volumes), self.sessions | {session},
                            self.wyng, last)


def last_sessions(archive: Archive) -> dict[str, str]:
    """Each qube's newest session in the catalogue that holds one of its volumes
    and the settings bundle (a session wyngq or upstream wyng-util-qubes made)."""
    meta = archive.volumes.get(volnames.METADATA_VOLUME)
    bundled = set(meta.sessions) if meta is not None else set()
    last: dict[str, str] = {}
    for name, volume in archive.volumes.items():
        parsed = volnames.parse(name)
        if parsed is None:
            continue
        found = bundled.intersection(volume.sessions)
        if found and max(found) > last.get(parsed.qube, ""):
            last[parsed.qube] = max(found)
    return last


def executable_stamp(executable: str) -> tuple[str, int, int] | None:
    path = shutil.which(executable)
    if path is None:
        return None
    try:
        real = os.path.realpath(path)
        st = os.stat(real)
    except OSError:
        return None
    return (real, st.st_size, st.st_mtime_ns)


class KnownArchives:
    """The records, in `directory` (None: keep none)."""

    def __init__(self, directory: str | None) -> None:
        self.directory = directory

    def get(self, target: WyngTarget) -> KnownArchive | None:
        """The record of `target`'s archive, if there is one made with the same
        Wyng executable as `target` names now."""
        path = self.path_of(target)
        if path is None:
            return None
        try:
            with open(path, encoding="utf-8") as handle:
                known = _decode(json.load(handle), target)
        except (OSError, ValueError, TypeError, KeyError) as err:
            if not isinstance(err, FileNotFoundError):
                log.debug("ignoring the archive record %s: %s", path, err)
            return None
        if known is None or known.wyng is None or known.wyng != executable_stamp(target.executable):
            return None
        return known

    def forget(self, target: WyngTarget) -> None:
        """Drop the record of `target`'s archive (volumes were deleted from it), and
        the copy of the last manifest sent to it kept beside it (wyngq.carry)."""
        for suffix in (".json", MANIFEST_COPY_SUFFIX):
            path = self.path_of(target, suffix)
            if path is not None:
                with contextlib.suppress(OSError):
                    os.unlink(path)

    def put(self, target: WyngTarget, known: KnownArchive) -> None:
        path = self.path_of(target)
        if path is None or known.wyng is None:
            return
        data = {
            "format": FORMAT, "dest": target.dest, "meta_dir": target.meta_dir,
            "wyng": list(known.wyng), "volumes": sorted(known.volumes), "sessions": sorted(known.sessions),
            "last": dict(sorted(known.last.items())),
        }
        try:
            paths.write_json_atomically(path, data)
        except OSError as err:
            log.debug("could not keep the archive record %s: %s", path, err)

    def path_of(self, target: WyngTarget, suffix: str = ".json") -> str | None:
        if not self.directory:
            return None
        key = hashlib.sha256(json.dumps([target.dest, target.meta_dir]).encode()).hexdigest()[:32]
        return os.path.join(self.directory, "archives", f"{key}{suffix}")


def _decode(data: object, target: WyngTarget) -> KnownArchive | None:
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return None
    if data.get("dest") != target.dest or data.get("meta_dir") != target.meta_dir:
        return None
    stamp = data["wyng"]
    volumes, sessions = data["volumes"], data["sessions"]
    if not (isinstance(stamp, list) and len(stamp) == 3 and isinstance(stamp[0], str)
            and all(isinstance(x, int) for x in stamp[1:])):
        return None
    if not all(isinstance(x, list) and all(isinstance(s, str) for s in x) for x in (volumes, sessions)):
        return None
    last = data["last"]
    if not (isinstance(last, dict) and all(isinstance(k, str) and is_qube_name(k) and isinstance(v, str)
                                           and v in sessions for k, v in last.items())):
        return None
    return KnownArchive(frozenset(volumes), frozenset(sessions), (stamp[0], stamp[1], stamp[2]), dict(last))
