"""Typed values that cross layers: what we know about pools, qubes and their settings.

All of them are frozen dataclasses built by adapters (from the Admin API) or by
parsers (from a settings bundle), and consumed by the pure planning functions.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

VOLUME_KINDS = ("private", "root")


class QubeClass(enum.StrEnum):
    APP = "AppVM"
    TEMPLATE = "TemplateVM"
    STANDALONE = "StandaloneVM"
    DISP = "DispVM"
    ADMIN = "AdminVM"

    @property
    def backed_up_volumes(self) -> tuple[str, ...]:
        """Which volumes of a qube of this class hold data worth keeping (docs/architecture.md)."""
        if self in (QubeClass.TEMPLATE, QubeClass.STANDALONE):
            return ("private", "root")
        if self is QubeClass.APP:
            return ("private",)
        return ()

    @property
    def restored_volumes(self) -> tuple[str, ...]:
        """The volumes a restore configures on a qube of this class: its data
        volumes (their revisions to keep) and `volatile` (its size). An AppVM's
        `root` is its template's, a disposable's volumes are made at its start."""
        return (*self.backed_up_volumes, "volatile")


class PoolDriver(enum.StrEnum):
    FILE_REFLINK = "file-reflink"
    LVM_THIN = "lvm_thin"


@dataclass(frozen=True)
class Pool:
    """A Qubes storage pool. `wyng_path` is what Wyng takes as the local storage
    path: the pool directory for file-reflink, `VG/THINPOOL` for lvm_thin; None
    for drivers Wyng cannot read."""

    name: str
    driver: str
    wyng_path: str | None

    @property
    def supported(self) -> bool:
        return self.wyng_path is not None and self.driver in set(PoolDriver)


@dataclass(frozen=True)
class Volume:
    """One volume of a qube, as the Admin API describes it."""

    kind: str
    pool: str
    vid: str
    size: int
    save_on_stop: bool = True
    revisions_to_keep: int | None = None


@dataclass(frozen=True)
class Qube:
    """What backup and listing need to know about a live qube."""

    name: str
    klass: QubeClass
    running: bool = False
    include_in_backups: bool = False
    volumes: tuple[Volume, ...] = ()
    tags: frozenset[str] = frozenset()

    def volume(self, kind: str) -> Volume | None:
        return next((v for v in self.volumes if v.kind == kind), None)


@dataclass(frozen=True)
class PropertyValue:
    """An explicitly-set property in qubesd's own terms: its type and string value."""

    type: str
    value: str


@dataclass(frozen=True)
class DeviceAssignment:
    """A persistent device assignment, in Qubes 4.3 terms (4.2's map onto it:
    `required=True` -> mode `required`, else `auto-attach`, no device identity)."""

    devclass: str
    backend: str
    port_id: str
    device_id: str | None = None
    mode: str = "auto-attach"
    options: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class VolumeSettings:
    kind: str
    pool: str
    size: int
    revisions_to_keep: int | None = None


@dataclass(frozen=True)
class QubeSettings:
    """Everything about a qube that a restore puts back, apart from volume data."""

    name: str
    klass: QubeClass
    label: str | None
    template: str | None = None
    properties: dict[str, PropertyValue] = field(default_factory=dict)
    features: dict[str, str] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    firewall: tuple[str, ...] | None = None
    notes: str | None = None
    devices: tuple[DeviceAssignment, ...] = ()
    volumes: tuple[VolumeSettings, ...] = ()


@dataclass(frozen=True)
class LiveQube:
    """One live qube as restore planning sees every qube of the system: its
    class and power state, and the references and capabilities that decide
    whether other qubes can point at it or must stop before it changes."""

    name: str
    klass: QubeClass
    running: bool = False
    template: str | None = None
    netvm: str | None = None
    audiovm: str | None = None
    guivm: str | None = None
    provides_network: bool = False
    template_for_dispvms: bool = False
