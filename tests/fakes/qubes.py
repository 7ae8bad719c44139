"""An in-memory Qubes behind wyngq's QubesPort, for the CI tier.

Volumes are real files in real pool directories (so the fake `wyng` reads and
writes real bytes), everything else lives in memory. It mimics the qubesd
behaviours the lab showed (docs/facts.md) where they matter to
wyngq; the lab tier checks the real thing.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field

from tests.fakes.qubes_restore import RestoreOps
from wyngq.errors import QubesError
from wyngq.model import (
    DeviceAssignment,
    Pool,
    PoolDriver,
    PropertyValue,
    Qube,
    QubeClass,
    QubeSettings,
    Volume,
    VolumeSettings,
)


@dataclass
class FakeVolume:
    pool: str
    vid: str
    size: int
    revisions_to_keep: int = 1


@dataclass
class FakeQube:
    name: str
    klass: QubeClass
    label: str = "red"
    template: str | None = None
    running: bool = False
    properties: dict[str, PropertyValue] = field(default_factory=dict)
    features: dict[str, str] = field(default_factory=dict)
    tags: set[str] = field(default_factory=set)
    firewall: list[str] = field(default_factory=lambda: ["action=accept"])
    notes: str = ""
    devices: list[DeviceAssignment] = field(default_factory=list)
    volumes: dict[str, FakeVolume] = field(default_factory=dict)
    include_in_backups: bool = True
    backup_timestamp: int | None = None


class FakeQubes(RestoreOps):
    """A QubesPort with pools in real directories and qubes in memory."""

    def __init__(self, pool_dirs: dict[str, str], qubes_dir: str | None = None) -> None:
        self._pools = {name: Pool(name, PoolDriver.FILE_REFLINK, path) for name, path in pool_dirs.items()}
        self.qubes_dir = qubes_dir or next(iter(pool_dirs.values()))
        self.domains: dict[str, FakeQube] = {}
        self.calls: list[tuple[str, ...]] = []
        # dom0's global properties: name -> (at its default, value), as qubesd reports them
        self.prefs: dict[str, tuple[bool, PropertyValue]] = {
            "default_template": (False, PropertyValue("vm", "")), "default_netvm": (False, PropertyValue("vm", "")),
            "clockvm": (False, PropertyValue("vm", "")), "updatevm": (False, PropertyValue("vm", "")),
            "default_dispvm": (True, PropertyValue("vm", "")), "maxmem": (True, PropertyValue("int", "16000")),
            "default_shutdown_timeout": (True, PropertyValue("int", "60")),
            "check_updates_vm": (True, PropertyValue("bool", "True")),
        }

    # -- building the world in tests -------------------------------------------
    def add_pool(self, pool: Pool) -> None:
        self._pools[pool.name] = pool

    def add(
        self,
        name: str,
        klass: QubeClass = QubeClass.APP,
        *,
        pool: str | None = None,
        data: dict[str, bytes] | None = None,
        **attrs: object,
    ) -> FakeQube:
        """Create a qube; `data` gives the bytes of its volumes (written to the pool)."""
        pool = pool or next(iter(self._pools))
        qube = FakeQube(name=name, klass=klass, **attrs)  # type: ignore[arg-type]
        top = "vm-templates" if klass is QubeClass.TEMPLATE else "appvms"
        self.domains[name] = qube
        for kind in klass.backed_up_volumes:
            qube.volumes[kind] = FakeVolume(pool, f"{top}/{name}/{kind}", 0)
            path = self.volume_path(name, kind)
            if data is not None and kind in data:
                self.write_volume(name, kind, data[kind])
            elif os.path.exists(path):  # a volume left by an earlier run of the same world
                qube.volumes[kind].size = os.path.getsize(path)
            else:
                self.write_volume(name, kind, b"")
        return qube

    def volume_path(self, name: str, kind: str) -> str:
        vol = self.domains[name].volumes[kind]
        pool = self._pools[vol.pool]
        assert pool.wyng_path is not None
        return os.path.join(pool.wyng_path, vol.vid + ".img")

    def write_volume(self, name: str, kind: str, content: bytes) -> None:
        path = self.volume_path(name, kind) if name in self.domains else None
        if path is None:
            return
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as handle:
            handle.write(content)
        self.domains[name].volumes[kind].size = len(content)

    def read_volume(self, name: str, kind: str) -> bytes:
        with open(self.volume_path(name, kind), "rb") as handle:
            return handle.read()

    # -- QubesPort ------------------------------------------------------------------
    def pools(self) -> dict[str, Pool]:
        self.calls.append(("pools",))
        return dict(self._pools)

    def list_qubes(self) -> dict[str, tuple[QubeClass, bool]]:
        self.calls.append(("list_qubes",))
        return {name: (q.klass, q.running) for name, q in sorted(self.domains.items())}

    def qube(self, name: str) -> Qube:
        self.calls.append(("qube", name))
        q = self._get(name)
        return Qube(
            name=name,
            klass=q.klass,
            running=q.running,
            include_in_backups=q.include_in_backups,
            volumes=self._volumes(name),
            tags=frozenset(q.tags),
        )

    def volumes(self, name: str) -> tuple[Volume, ...]:
        self.calls.append(("volumes", name))
        return self._volumes(name)

    def volume(self, name: str, kind: str) -> Volume:
        self.calls.append(("volume", name, kind))
        q = self._get(name)
        if kind not in q.volumes:
            raise QubesError(f"qube {name!r}: no volume {kind!r}")
        v = q.volumes[kind]
        return Volume(kind, v.pool, v.vid, self.file_size(name, kind), True, v.revisions_to_keep)

    def _volumes(self, name: str) -> tuple[Volume, ...]:
        """The class's backed-up volume kinds only, as AdminQubes reads them."""
        q = self._get(name)
        return tuple(
            Volume(kind, v.pool, v.vid, self.file_size(name, kind), True, v.revisions_to_keep)
            for kind, v in sorted(q.volumes.items()) if kind in q.klass.backed_up_volumes
        )

    def settings(self, name: str) -> QubeSettings:
        self.calls.append(("settings", name))
        q = self._get(name)
        kinds = set(q.klass.restored_volumes)
        self._read_fault("firewall", name, "firewall rules")
        self._read_fault("notes", name, "notes")
        return QubeSettings(
            name=name,
            klass=q.klass,
            label=q.label,
            template=q.template,
            properties=dict(q.properties),
            features=dict(q.features),
            tags=tuple(sorted(q.tags)),
            firewall=tuple(q.firewall),
            notes=q.notes,
            devices=tuple(q.devices),
            volumes=tuple(VolumeSettings(k, v.pool, self.file_size(name, k), v.revisions_to_keep)
                          for k, v in sorted(q.volumes.items()) if k in kinds),
        )

    def state_files(self, names: Iterable[str]) -> dict[str, bytes]:
        self.calls.append(("state_files",))
        files = {"qubes.xml": _qubes_xml(self.domains.values())}
        for name in names:
            q = self._get(name)
            top = "vm-templates" if q.klass is QubeClass.TEMPLATE else "appvms"
            files[f"{top}/{name}/firewall.xml"] = ("\n".join(q.firewall) + "\n").encode()
            if q.notes:
                files[f"{top}/{name}/notes.txt"] = q.notes.encode()
        return files

    def set_backup_timestamp(self, name: str, when: int) -> None:
        self.calls.append(("set_backup_timestamp", name))
        self._get(name).backup_timestamp = when

    def global_prefs(self) -> dict[str, tuple[bool, PropertyValue]]:
        self.calls.append(("global_prefs",))
        return dict(self.prefs)

    def qubes_version(self) -> str:
        return "4.3"

    def _get(self, name: str) -> FakeQube:
        try:
            return self.domains[name]
        except KeyError as err:
            raise QubesError(f"no qube named {name!r}") from err


def _qubes_xml(qubes: Iterable[FakeQube]) -> bytes:
    """A small qubes.xml with each qube's class and name (enough for readers of
    upstream bundles that only need the domain list)."""
    lines = ['<?xml version="1.0" encoding="utf-8"?>', "<qubes>", "  <domains>"]
    for q in qubes:
        lines.append(f'    <domain class="{q.klass.value}"><properties><property name="name">{q.name}</property>'
                     "</properties></domain>")
    lines += ["  </domains>", "</qubes>", ""]
    return "\n".join(lines).encode()
