"""The settings bundle stored with every backup session.

Upstream wyng-util-qubes' format, so each tool can read the other's archives:
a gzip tar (Wyng volume `wyng-qubes-metadata`) of `qubes.xml` and each
backed-up qube's `firewall.xml` / `notes.txt`, with paths relative to the
Qubes directory. wyngq adds `wyngq.json`, a manifest of each qube's settings
read through the Admin API (restore prefers it; upstream ignores it). The
manifest may also carry, apart from the session's own qubes, the entries of
qubes backed up in earlier sessions, each marked with its session
(`carried`; wyngq.carry writes them, restore.carried uses them).

A bundle read back from an archive is untrusted input: `read_bundle` never
extracts to disk, refuses links and odd paths, caps sizes, and the manifest
is parsed into typed values in one place (`parse_manifest`).
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import tarfile
import time
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from wyngq import tarstream
from wyngq.errors import ExitCode, WyngqError
from wyngq.model import DeviceAssignment, PropertyValue, QubeClass, QubeSettings, VolumeSettings
from wyngq.names import is_qube_name
from wyngq.wyng.sessions import has_session_form

MANIFEST_NAME = "wyngq.json"
MANIFEST_FORMAT = "wyngq-manifest"
MANIFEST_VERSION = 1
MAX_BUNDLE_BYTES = 64 * 1024 * 1024  # the compressed file, as fetched from the archive
MAX_MEMBER_BYTES = 8 * 1024 * 1024
MAX_CONTENT_BYTES = 16 * 1024 * 1024  # all members together, decompressed
BUNDLE_LIMITS = tarstream.TarLimits(
    max_members=20_000,
    max_member_bytes=MAX_MEMBER_BYTES,
    max_total_bytes=MAX_CONTENT_BYTES,
    max_stream_bytes=MAX_CONTENT_BYTES + 8 * 1024 * 1024,
)
# JSON values in a manifest (counted from its brackets and commas, before parsing)
MAX_MANIFEST_VALUES = 500_000
MAX_NUMBER_DIGITS = 20
_INTEGER = re.compile(rf"-?[0-9]{{1,{MAX_NUMBER_DIGITS}}}")


class BundleError(WyngqError):
    """The session's settings bundle is damaged or not one wyngq reads (an archive problem)."""

    exit_code = ExitCode.WYNG
    code = "bad_metadata"


@dataclass(frozen=True)
class Manifest:
    created: str
    wyngq_version: str
    qubes_version: str
    qubes: Mapping[str, QubeSettings]
    # qubes of a class wyngq does not restore (e.g. RemoteVM): name -> class (see class_word)
    unsupported: Mapping[str, str] = field(default_factory=dict)
    prefs: Mapping[str, PropertyValue] | None = None  # dom0's global preferences (None: not recorded)
    # qubes NOT backed up in this session: name -> (the session their entry is of, settings or class word)
    carried: Mapping[str, tuple[str, QubeSettings]] = field(default_factory=dict)
    carried_unsupported: Mapping[str, tuple[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Bundle:
    manifest: Manifest | None
    files: Mapping[str, bytes] = field(default_factory=dict)

    @property
    def qubes_xml(self) -> bytes | None:
        return self.files.get("qubes.xml")


# -- writing -------------------------------------------------------------------
def encode_manifest(
    settings: Iterable[QubeSettings], *, wyngq_version: str, qubes_version: str, created: float | None = None,
    prefs: Mapping[str, PropertyValue] | None = None,
) -> bytes:
    """Return the manifest JSON for these qubes' settings (and dom0's global
    preferences, when given)."""
    document: dict[str, Any] = {
        "format": MANIFEST_FORMAT,
        "version": MANIFEST_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(created)),
        "wyngq": wyngq_version,
        "qubes_version": qubes_version,
        "qubes": {s.name: _encode_qube(s) for s in sorted(settings, key=lambda s: s.name)},
    }
    if prefs is not None:
        document["prefs"] = {k: {"type": v.type, "value": v.value} for k, v in sorted(prefs.items())}
    return json.dumps(document, indent=1, sort_keys=True, ensure_ascii=False).encode("utf-8")


def _encode_qube(s: QubeSettings) -> dict[str, Any]:
    return {
        "class": s.klass.value,
        "label": s.label,
        "template": s.template,
        "properties": {k: {"type": v.type, "value": v.value} for k, v in sorted(s.properties.items())},
        "features": dict(sorted(s.features.items())),
        "tags": sorted(s.tags),
        "firewall": list(s.firewall) if s.firewall is not None else None,
        "notes": s.notes,
        "devices": [
            {
                "devclass": d.devclass,
                "backend": d.backend,
                "port_id": d.port_id,
                "device_id": d.device_id,
                "mode": d.mode,
                "options": dict(d.options),
            }
            for d in s.devices
        ],
        "volumes": [
            {"kind": v.kind, "pool": v.pool, "size": v.size, "revisions_to_keep": v.revisions_to_keep}
            for v in s.volumes
        ],
    }


def write_bundle(path: str, state_files: Mapping[str, bytes], manifest: bytes) -> None:
    """Write the gzip tar upstream expects, plus our manifest, to `path`."""
    members = dict(state_files)
    members[MANIFEST_NAME] = manifest
    mtime = int(time.time())
    with (
        open(path, "wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", mtime=mtime) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for name, data in sorted(members.items()):
            info = tarfile.TarInfo("./" + name)
            info.size = len(data)
            info.mtime = mtime
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))


# -- reading (untrusted) ---------------------------------------------------------
def check_bundle_size(size: int) -> None:
    """Raise BundleError if a bundle of `size` bytes (the catalogue's volsize)
    is larger than any bundle wyngq reads: checked before it is fetched to disk."""
    if not 0 <= size <= MAX_BUNDLE_BYTES:
        raise BundleError(
            f"the settings bundle is {size} bytes, more than the {MAX_BUNDLE_BYTES} wyngq reads",
            hint="no Qubes backup writes one this large: the archive was tampered with",
        )


def read_bundle(path: str) -> Bundle:
    """Read a settings bundle without extracting it; raise BundleError if it is not one.

    Every size is bounded before it is read (wyngq.tarstream, BUNDLE_LIMITS):
    the file itself, the decompressed stream, each member and their total."""
    files: dict[str, bytes] = {}
    try:
        with open(path, "rb") as raw:
            check_bundle_size(os.fstat(raw.fileno()).st_size)
            with gzip.GzipFile(fileobj=raw, mode="rb") as unpacked:
                for raw_name, data in tarstream.read_members(unpacked, BUNDLE_LIMITS):
                    name = _member_name(raw_name)
                    if name is None:
                        # never in a bundle wyngq or upstream wrote: tampering, not a format variant
                        raise BundleError(f"settings bundle member {raw_name!r} is not at a safe path")
                    if name in files:
                        raise BundleError(f"settings bundle member {name!r} appears twice")
                    files[name] = data
    except tarstream.TarFormatError as err:
        raise BundleError(f"the settings bundle is not a tar wyngq reads: {err}") from err
    except (OSError, EOFError, zlib.error) as err:
        raise BundleError(f"cannot read the settings bundle: {err}") from err
    manifest_bytes = files.pop(MANIFEST_NAME, None)
    manifest = parse_manifest(manifest_bytes) if manifest_bytes is not None else None
    return Bundle(manifest=manifest, files=files)


def _member_name(raw: str) -> str | None:
    name = raw.removeprefix("./")
    parts = name.split("/")
    if not name or name.startswith("/") or any(p in ("", ".", "..") for p in parts):
        return None
    return name


def parse_manifest(data: bytes) -> Manifest:
    """Parse and check a manifest; raise BundleError naming the first problem."""
    doc = _load_json(data)
    try:
        if not isinstance(doc, dict) or doc.get("format") != MANIFEST_FORMAT:
            raise ValueError("not a wyngq manifest")
        if doc.get("version") != MANIFEST_VERSION:
            raise ValueError(f"unsupported manifest version {doc.get('version')!r}")
        qubes, unsupported = _decode_entries(_dict(doc["qubes"], "qubes"))
        carried, carried_unsupported = _decode_carried(_dict(doc.get("carried", {}), "carried"))
        return Manifest(
            created=_str(doc.get("created", ""), "created"),
            wyngq_version=_str(doc.get("wyngq", ""), "wyngq"),
            qubes_version=_str(doc.get("qubes_version", ""), "qubes_version"),
            qubes=qubes,
            unsupported=unsupported,
            prefs=_decode_prefs(doc["prefs"]) if "prefs" in doc else None,
            carried=carried, carried_unsupported=carried_unsupported,
        )
    except (KeyError, TypeError, ValueError) as err:
        raise BundleError(f"the settings manifest is malformed: {err}") from err


def _decode_entries(raw_qubes: dict[str, Any]) -> tuple[dict[str, QubeSettings], dict[str, str]]:
    """The qubes wyngq restores, and the others (name -> class word)."""
    qubes = {}
    unsupported = {}
    for name, raw in raw_qubes.items():
        if not is_qube_name(name):
            raise ValueError(f"bad qube name {name!r}")
        klass = _dict(raw, name).get("class")
        if isinstance(klass, str) and klass not in set(QubeClass):  # e.g. RemoteVM: kept apart
            unsupported[name] = class_word(klass)
            continue
        qubes[name] = _decode_qube(name, _dict(raw, name))
    return qubes, unsupported


def _decode_carried(raw: dict[str, Any]
                    ) -> tuple[dict[str, tuple[str, QubeSettings]], dict[str, tuple[str, str]]]:
    sessions = {}
    entries = {}
    for name, item in raw.items():
        session = _str(_dict(item, name)["session"], "session")
        if not has_session_form(session):
            raise ValueError(f"bad session id {session!r} of carried qube {name!r}")
        sessions[name] = session
        entries[name] = item["qube"]
    qubes, unsupported = _decode_entries(entries)
    return ({n: (sessions[n], s) for n, s in qubes.items()}, {n: (sessions[n], k) for n, k in unsupported.items()})


def class_word(klass: object) -> str:
    """A qube class a bundle names, as it may be shown: a plain word, else 'unknown'."""
    if isinstance(klass, str) and 0 < len(klass) <= 40 and klass.isascii() and klass.isalnum():
        return klass
    return "unknown"


def _decode_prefs(raw: Any) -> dict[str, PropertyValue]:
    return {_str(k, "preference"): PropertyValue(_str(_dict(v, k)["type"], k), _str(v["value"], k))
            for k, v in _dict(raw, "prefs").items()}
def _load_json(data: bytes) -> Any:
    """json.loads with a budget: at most MAX_MANIFEST_VALUES values, integers of
    ASCII digits only (at most MAX_NUMBER_DIGITS), no floats, NaN or Infinity."""
    values = data.count(b"[") + data.count(b"{") + data.count(b",")
    if values > MAX_MANIFEST_VALUES:
        raise BundleError(f"the settings manifest has more than {MAX_MANIFEST_VALUES} values")
    try:
        return json.loads(data.decode("utf-8"), parse_int=_integer, parse_float=_no_number,
                          parse_constant=_no_number)
    except (UnicodeDecodeError, ValueError, RecursionError) as err:  # JSONDecodeError is a ValueError
        raise BundleError(f"the settings manifest is not valid JSON: {err}") from err


def _integer(text: str) -> int:
    if not _INTEGER.fullmatch(text):
        raise ValueError(f"number {text[:30]!r} is not an integer of at most {MAX_NUMBER_DIGITS} digits")
    return int(text)


def _no_number(text: str) -> Any:
    raise ValueError(f"number {text[:30]!r} is not an integer")


def _decode_qube(name: str, raw: dict[str, Any]) -> QubeSettings:
    properties = {
        _str(k, "property"): PropertyValue(_str(v["type"], k), _str(v["value"], k))
        for k, v in _dict(raw.get("properties", {}), "properties").items()
        if isinstance(v, dict)
    }
    firewall = raw.get("firewall")
    return QubeSettings(
        name=name,
        klass=QubeClass(raw["class"]),
        label=_opt_str(raw.get("label"), "label"),
        template=_opt_str(raw.get("template"), "template"),
        properties=properties,
        features={_str(k, "feature"): _str(v, k) for k, v in _dict(raw.get("features", {}), "features").items()},
        tags=tuple(_str(t, "tag") for t in _list(raw.get("tags", []), "tags")),
        firewall=tuple(_str(r, "firewall") for r in _list(firewall, "firewall")) if firewall is not None else None,
        notes=_opt_str(raw.get("notes"), "notes"),
        devices=tuple(_decode_device(_dict(d, "device")) for d in _list(raw.get("devices", []), "devices")),
        volumes=tuple(_decode_volume(_dict(v, "volume")) for v in _list(raw.get("volumes", []), "volumes")),
    )


def _decode_device(raw: dict[str, Any]) -> DeviceAssignment:
    return DeviceAssignment(
        devclass=_str(raw["devclass"], "devclass"),
        backend=_str(raw["backend"], "backend"),
        port_id=_str(raw["port_id"], "port_id"),
        device_id=_opt_str(raw.get("device_id"), "device_id"),
        mode=_str(raw.get("mode", "auto-attach"), "mode"),
        options=tuple(
            sorted((_str(k, "option"), _str(v, k)) for k, v in _dict(raw.get("options", {}), "options").items())
        ),
    )


def _decode_volume(raw: dict[str, Any]) -> VolumeSettings:
    size = raw["size"]
    keep = raw.get("revisions_to_keep")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ValueError(f"bad volume size {size!r}")
    if keep is not None and (not isinstance(keep, int) or isinstance(keep, bool)):
        raise ValueError(f"bad revisions_to_keep {keep!r}")
    return VolumeSettings(_str(raw["kind"], "kind"), _str(raw["pool"], "pool"), size, keep)


def _dict(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"{what} is not an object")
    return value


def _list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise TypeError(f"{what} is not a list")
    return value


def _str(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} is not a string")
    return value


def _opt_str(value: Any, what: str) -> str | None:
    return None if value is None else _str(value, what)
