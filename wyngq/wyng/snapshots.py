"""The names of the snapshots Wyng keeps beside a local volume, as restore needs them.

- file-reflink: Wyng's snapshot of a volume as last sent to an archive is
  `sn<archive uuid>_<volume id>.wyng1` in the volume's directory (docs/facts.md);
  a receive that stops part way leaves `.wyng2` instead.
- lvm_thin: the LVs `<volume LV>.tick` and `.tock` in the volume group (not
  checked outside a real dom0: the lab has no LVM).

Both parts of a file name come from the archive's catalogue, so only plain
tokens become part of a path (Wyng's are `Vol_3f3b89` and a UUID), never `/`
or `..`.
"""

from __future__ import annotations

import re

_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
FINISHED, STOPPED = ".wyng1", ".wyng2"
LVM_SUFFIXES = (".tick", ".tock")


def snapshot_file(archive_uuid: str, vid: str) -> str | None:
    """The file name of Wyng's snapshot of volume `vid` last sent to archive
    `archive_uuid`, or None when either is not a plain token."""
    if not (_TOKEN.fullmatch(archive_uuid) and _TOKEN.fullmatch(vid)):
        return None
    return f"sn{archive_uuid}_{vid}{FINISHED}"


def left_by_receive(snapshot_path: str) -> tuple[str, str]:
    """The snapshot files a receive may leave at `snapshot_path` (a `.wyng1`
    path): the finished one and the one of a receive that stopped."""
    return snapshot_path, snapshot_path.removesuffix(FINISHED) + STOPPED


def lvm_snapshots(group: str, local_name: str) -> tuple[str, ...]:
    """The LVs (`VG/LV`) of Wyng's snapshots of the LV `local_name` in volume group `group`."""
    return tuple(f"{group}/{local_name}{suffix}" for suffix in LVM_SUFFIXES)
