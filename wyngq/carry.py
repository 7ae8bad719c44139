"""Settings entries carried forward from one backup's bundle to the next.

Every backup's manifest also carries, for each qube of the archive that it
does not back up, that qube's newest entry from the previous manifest, marked
with the session the entry is of (the session its data is in). A whole-archive
restore then reads the newest bundle and, for each qube whose newest session
(from Wyng's catalogue) is the one its entry is marked with, uses that entry
instead of receiving that session's bundle (restore.carried; docs/recovery.md).

The previous manifest is not read from the archive (that would cost a Wyng
call): wyngq keeps a copy of the last manifest it sent to each archive, with
the session it went into, beside the archive's record (wyngq.wyng.known):
`STATE_DIR/archives/<key>.manifest.json`, dropped with the record. The copy
counts only while its session is among the archive's known sessions; a missing, unreadable or
malformed copy is simply not used, and nothing is carried (as a manifest
written without carrying, or by upstream, carries nothing).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from wyngq import bundle, paths
from wyngq.wyng.commands import WyngTarget
from wyngq.wyng.known import MANIFEST_COPY_SUFFIX, KnownArchive, KnownArchives

log = logging.getLogger(__name__)

FORMAT = 1


@dataclass(frozen=True)
class LastManifest:
    session: str
    document: Mapping[str, Any]  # the manifest as sent, parsed JSON

    def entries(self) -> dict[str, tuple[str, Any]]:
        """name -> (session, entry): its own qubes (of its session) and those it carried."""
        found: dict[str, tuple[str, Any]] = {}
        carried = self.document.get("carried", {})
        if isinstance(carried, dict):
            for name, item in carried.items():
                if isinstance(item, dict) and isinstance(item.get("session"), str) and "qube" in item:
                    found[name] = (item["session"], item["qube"])
        qubes = self.document.get("qubes", {})
        if isinstance(qubes, dict):
            found |= {name: (self.session, entry) for name, entry in qubes.items()}
        return found


def carried_for(last: LastManifest | None, backed_up: Collection[str]) -> dict[str, tuple[str, Any]]:
    """The entries the next manifest carries: every one of `last` (own or
    carried) of a qube this backup does not back up."""
    if last is None:
        return {}
    return {name: item for name, item in last.entries().items() if name not in set(backed_up)}


def encode_with_carried(settings_manifest: bytes, carried: Mapping[str, tuple[str, Any]]) -> bytes:
    """`settings_manifest` with `carried` added; unchanged when there is nothing
    to carry or the result would not parse (a bad copy never spoils a backup)."""
    if not carried:
        return settings_manifest
    document = json.loads(settings_manifest)
    document["carried"] = {name: {"session": session, "qube": entry}
                           for name, (session, entry) in sorted(carried.items()) if name not in document["qubes"]}
    encoded = json.dumps(document, indent=1, sort_keys=True, ensure_ascii=False).encode("utf-8")
    try:
        bundle.parse_manifest(encoded)
    except bundle.BundleError as err:
        log.debug("not carrying settings entries forward: %s", err)
        return settings_manifest
    return encoded


class LastManifests:
    """The copies, beside the archive records of `known` (None: keep none)."""

    def __init__(self, known: KnownArchives | None) -> None:
        self.known = known

    def get(self, target: WyngTarget, record: KnownArchive) -> LastManifest | None:
        """The copy of the last manifest sent to `target`'s archive, when its
        session is one `record` knows."""
        path = self._path(target)
        if path is None:
            return None
        try:
            with open(path, encoding="utf-8") as handle:
                data = json.load(handle)
        except (OSError, ValueError) as err:
            if not isinstance(err, FileNotFoundError):
                log.debug("ignoring the manifest copy %s: %s", path, err)
            return None
        if not (isinstance(data, dict) and data.get("format") == FORMAT and data.get("dest") == target.dest
                and data.get("meta_dir") == target.meta_dir and isinstance(data.get("manifest"), dict)):
            return None
        session = data.get("session")
        if not isinstance(session, str) or session not in record.sessions:
            return None
        return LastManifest(session, data["manifest"])

    def put(self, target: WyngTarget, session: str, manifest: bytes) -> None:
        """Keep `manifest`, just sent into `session`."""
        path = self._path(target)
        if path is None:
            return
        data = {"format": FORMAT, "dest": target.dest, "meta_dir": target.meta_dir, "session": session,
                "manifest": json.loads(manifest)}
        try:
            paths.write_json_atomically(path, data)
        except OSError as err:
            log.debug("could not keep the manifest copy %s: %s", path, err)

    def _path(self, target: WyngTarget) -> str | None:
        return self.known.path_of(target, MANIFEST_COPY_SUFFIX) if self.known is not None else None
