"""Archive volume names, as upstream wyng-util-qubes writes them.

- file-reflink: the volume's path in its pool, `<vid>.img`, e.g.
  `appvms/work/private.img`, `vm-templates/fedora-42/root.img`;
- lvm_thin: the logical volume, `vm-NAME-private`, `vm-NAME-root`;
- the settings bundle: the pseudo-volume `wyng-qubes-metadata`.

Using the same names keeps archives interchangeable with upstream in both
directions, including its LVM <-> reflink aliasing (a qube moved between pool
types keeps its archive history: Wyng renames the archive volume on send).
"""

from __future__ import annotations

from dataclasses import dataclass

from wyngq.model import PoolDriver, QubeClass
from wyngq.names import is_qube_name

METADATA_VOLUME = "wyng-qubes-metadata"
_REFLINK_DIRS = {"appvms": False, "vm-templates": True}


@dataclass(frozen=True)
class VolumeName:
    """What an archive volume name says: which qube and which of its volumes."""

    qube: str
    kind: str
    driver: PoolDriver


def archive_name(qube: str, kind: str, driver: PoolDriver, vid: str | None = None) -> str:
    """Return the archive volume name for `qube`'s `kind` volume in a pool of `driver`.

    For file-reflink the name is the volume's file, `<vid>.img` (what Wyng reads);
    `vid` must then be given.
    """
    if driver is PoolDriver.LVM_THIN:
        return f"vm-{qube}-{kind}"
    if vid is None:
        raise ValueError("a file-reflink archive name needs the volume's vid")
    return f"{vid}.img"


def convert(name: str, to_driver: PoolDriver, template: bool) -> str | None:
    """Return the name the same volume has in a pool of `to_driver`, or None if
    `name` is not a qube volume name."""
    parsed = parse(name)
    if parsed is None:
        return None
    if to_driver is PoolDriver.LVM_THIN:
        return f"vm-{parsed.qube}-{parsed.kind}"
    top = "vm-templates" if template else "appvms"
    return f"{top}/{parsed.qube}/{parsed.kind}.img"


def parse(name: str) -> VolumeName | None:
    """Return the qube and volume kind an archive volume name stands for, or None
    (also when the qube part is not a valid qube name: archives are untrusted)."""
    if name.startswith("vm-") and name.endswith(("-private", "-root")):
        qube, _, kind = name[3:].rpartition("-")
        return VolumeName(qube, kind, PoolDriver.LVM_THIN) if is_qube_name(qube) else None
    parts = name.split("/")
    if len(parts) == 3 and parts[0] in _REFLINK_DIRS and parts[2] in ("private.img", "root.img"):
        qube, kind = parts[1], parts[2].removesuffix(".img")
        return VolumeName(qube, kind, PoolDriver.FILE_REFLINK) if is_qube_name(qube) else None
    return None


def is_template_name(name: str) -> bool:
    return name.startswith("vm-templates/")


def template_hint(klass: QubeClass) -> bool:
    return klass is QubeClass.TEMPLATE
