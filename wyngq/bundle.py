"""The settings bundle stored with every backup session.

Upstream wyng-util-qubes' format, so each tool can read the other's archives:
a gzip tar (Wyng volume `wyng-qubes-metadata`) of `qubes.xml` and each
backed-up qube's `firewall.xml` / `notes.txt`, with paths relative to the
Qubes directory. wyngq adds `wyngq.json`, a manifest of each qube's settings
read through the Admin API (restore prefers it; upstream ignores it).

A bundle read back from an archive is untrusted input: `read_bundle` never
extracts to disk, refuses links and odd paths, caps sizes, and the manifest
is parsed into typed values in one place (`parse_manifest`).
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from wyngq.errors import WyngqError
from wyngq.model import DeviceAssignment, PropertyValue, QubeClass, QubeSettings, VolumeSettings
from wyngq.names import is_qube_name

MANIFEST_NAME = "wyngq.json"
MANIFEST_FORMAT = "wyngq-manifest"
MANIFEST_VERSION = 1
MAX_BUNDLE_BYTES = 64 * 1024 * 1024
MAX_MEMBER_BYTES = 32 * 1024 * 1024


class BundleError(WyngqError):
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
def read_bundle(path: str) -> Bundle:
    """Read a settings bundle without extracting it; raise BundleError if it is not one."""
    files: dict[str, bytes] = {}
    total = 0
    try:
        with tarfile.open(path, mode="r:gz") as tar:
            for member in tar:
                if member.isdir():
                    continue  # upstream's tar lists none; other tars may
                name = _member_name(member.name)
                if name is None or not member.isfile():
                    # never in a bundle wyngq or upstream wrote: tampering, not a format variant
                    raise BundleError(f"settings bundle member {member.name!r} is not a plain file at a safe path")
                if member.size > MAX_MEMBER_BYTES or total + member.size > MAX_BUNDLE_BYTES:
                    raise BundleError(f"settings bundle member {name!r} is too large")
                handle = tar.extractfile(member)
                if handle is None:
                    continue
                data = handle.read(MAX_MEMBER_BYTES + 1)
                total += len(data)
                files[name] = data
    except (tarfile.TarError, OSError, EOFError) as err:
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
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BundleError(f"the settings manifest is not valid JSON: {err}") from err
    try:
        if not isinstance(doc, dict) or doc.get("format") != MANIFEST_FORMAT:
            raise ValueError("not a wyngq manifest")
        if doc.get("version") != MANIFEST_VERSION:
            raise ValueError(f"unsupported manifest version {doc.get('version')!r}")
        qubes_raw = _dict(doc["qubes"], "qubes")
        qubes = {}
        unsupported = {}
        for name, raw in qubes_raw.items():
            if not is_qube_name(name):
                raise ValueError(f"bad qube name {name!r}")
            klass = _dict(raw, name).get("class")
            if isinstance(klass, str) and klass not in set(QubeClass):  # e.g. RemoteVM: kept apart
                unsupported[name] = class_word(klass)
                continue
            qubes[name] = _decode_qube(name, _dict(raw, name))
        return Manifest(
            created=_str(doc.get("created", ""), "created"),
            wyngq_version=_str(doc.get("wyngq", ""), "wyngq"),
            qubes_version=_str(doc.get("qubes_version", ""), "qubes_version"),
            qubes=qubes,
            unsupported=unsupported,
            prefs=_decode_prefs(doc["prefs"]) if "prefs" in doc else None,
        )
    except (KeyError, TypeError, ValueError) as err:
        raise BundleError(f"the settings manifest is malformed: {err}") from err


def class_word(klass: object) -> str:
    """A qube class a bundle names, as it may be shown: a plain word, else 'unknown'."""
    if isinstance(klass, str) and 0 < len(klass) <= 40 and klass.isascii() and klass.isalnum():
        return klass
    return "unknown"


def _decode_prefs(raw: Any) -> dict[str, PropertyValue]:
    return {_str(k, "preference"): PropertyValue(_str(_dict(v, k)["type"], k), _str(v["value"], k))
            for k, v in _dict(raw, "prefs").items()}


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
