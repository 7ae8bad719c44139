"""Builders for restore planning tests: a backed-up session and a live system,
written as compactly as the scenarios they describe."""

from __future__ import annotations

from collections.abc import Iterable

from wyngq.model import (
    DeviceAssignment,
    LiveQube,
    Pool,
    PoolDriver,
    PropertyValue,
    QubeClass,
    QubeSettings,
    Volume,
    VolumeSettings,
)
from wyngq.restore.model import LiveSystem, RestorePlan, RestoreRequest, SessionData, Step, StepKind
from wyngq.restore.plan import plan_restore
from wyngq.restore.select import select_qubes

SESSION = "20250102-030405"
POOL_DIR = "/pool"
LABELS = frozenset({"red", "orange", "yellow", "green", "gray", "blue", "purple", "black"})

T, A, S, D = QubeClass.TEMPLATE, QubeClass.APP, QubeClass.STANDALONE, QubeClass.DISP

_TYPES = {"provides_network": "bool", "template_for_dispvms": "bool", "memory": "int", "vcpus": "int",
          "netvm": "vm", "default_dispvm": "vm", "audiovm": "vm", "guivm": "vm", "management_dispvm": "vm",
          "qid": "int", "uuid": "str", "name": "str", "kernel": "str", "debug": "bool", "auto_cleanup": "bool"}


def props(**values: object) -> dict[str, PropertyValue]:
    return {k: PropertyValue(_TYPES.get(k, "str"), str(v) if v is not None else "") for k, v in values.items()}


def qube(name: str, klass: QubeClass = A, template: str | None = None, *, label: str = "red",
         features: dict[str, str] | None = None, tags: Iterable[str] = (), firewall: tuple[str, ...] | None = None,
         notes: str | None = None, devices: tuple[DeviceAssignment, ...] = (), pool: str = "varlibqubes",
         **properties: object) -> QubeSettings:
    if klass in (A, D) and template is None:
        template = "fedora"
    return QubeSettings(
        name=name, klass=klass, label=label, template=template, properties=props(**properties),
        features=features or {}, tags=tuple(sorted(tags)), firewall=firewall, notes=notes, devices=devices,
        volumes=tuple(VolumeSettings(k, pool, 1000) for k in klass.backed_up_volumes),
    )


def chain() -> list[QubeSettings]:
    """template -> DVM template -> netvm chain -> appvm -> named DispVM."""
    return [
        qube("fedora", T, label="black"),
        qube("dvm", template="fedora", template_for_dispvms=True, label="gray"),
        qube("sys-net", provides_network=True, netvm=None),
        qube("sys-fw", provides_network=True, netvm="sys-net", label="green"),
        qube("work", netvm="sys-fw", default_dispvm="dvm", memory=800, label="blue",
             features={"service.crond": "1"}, tags=["project-x"],
             firewall=("action=accept dsthost=example.org", "action=drop"), notes="notes",
             devices=(DeviceAssignment("block", "sys-net", "sda", "0781:5581", "auto-attach"),)),
        qube("disp1", D, template="dvm", label="red", auto_cleanup=False),
    ]


def session(qubes: Iterable[QubeSettings], *, without: Iterable[tuple[str, str]] = (), source: str = "manifest",
            authenticated: bool = True) -> SessionData:
    """A session of an archive Wyng authenticates, unless said otherwise."""
    settings = {q.name: q for q in qubes}
    missing = set(without)
    volumes = {}
    for q in settings.values():
        kinds = {}
        for kind in q.klass.backed_up_volumes:
            if (q.name, kind) not in missing:
                top = "vm-templates" if q.klass is T else "appvms"
                kinds[kind] = f"{top}/{q.name}/{kind}.img"
        if kinds:
            volumes[q.name] = kinds
    sizes = {name: 4096 for kinds in volumes.values() for name in kinds.values()}
    return SessionData(SESSION, volumes, sizes, settings, source, authenticated=authenticated)


def live_from(settings: Iterable[QubeSettings], *, running: Iterable[str] = (), keep: int = 1,
              pools: dict[str, Pool] | None = None, archive_qube: str | None = None) -> LiveSystem:
    """A live system holding these qubes as they are described."""
    up = set(running)
    qubes = {}
    volumes = {}
    settings_by = {}
    for s in settings:
        p = s.properties
        qubes[s.name] = LiveQube(
            s.name, s.klass, s.name in up, s.template,
            netvm=(p["netvm"].value or None) if "netvm" in p else None,
            audiovm=(p["audiovm"].value or None) if "audiovm" in p else None,
            guivm=(p["guivm"].value or None) if "guivm" in p else None,
            provides_network=p.get("provides_network", PropertyValue("bool", "False")).value == "True",
            template_for_dispvms=p.get("template_for_dispvms", PropertyValue("bool", "False")).value == "True",
        )
        top = "vm-templates" if s.klass is T else "appvms"
        volumes[s.name] = tuple(Volume(k, "varlibqubes", f"{top}/{s.name}/{k}", 1000, True, keep)
                                for k in s.klass.backed_up_volumes)
        settings_by[s.name] = s
    return LiveSystem(
        qubes=qubes, settings=settings_by, volumes=volumes,
        pools=pools or {
            "varlibqubes": Pool("varlibqubes", PoolDriver.FILE_REFLINK, POOL_DIR),
            "pool2": Pool("pool2", PoolDriver.FILE_REFLINK, "/pool2"),
            "lvm": Pool("lvm", PoolDriver.LVM_THIN, "qubes_dom0/vm-pool"),
        },
        default_pool="varlibqubes", labels=LABELS, kernels=frozenset({"6.12.1"}), archive_qube=archive_qube,
    )


EMPTY = LiveSystem(qubes={}, pools=live_from([]).pools, default_pool="varlibqubes", labels=LABELS,
                   kernels=frozenset({"6.12.1"}))


def plan(data: SessionData, live: LiveSystem = EMPTY, **request: object) -> RestorePlan:
    req = RestoreRequest(**request)  # type: ignore[arg-type]
    return plan_restore(data, live, req, select_qubes(data, req))


def kinds(plan: RestorePlan, qube: str | None = None) -> list[str]:
    return [s.kind.value for s in plan.steps if qube is None or s.qube == qube]


def step(plan: RestorePlan, kind: StepKind, qube: str) -> Step:
    return next(s for s in plan.steps if s.kind is kind and s.qube == qube)


def ops(plan: RestorePlan, kind: StepKind, qube: str) -> dict[str, tuple[str, str | None, str | None]]:
    found = [s for s in plan.steps if s.kind is kind and s.qube == qube]
    return {o.key: (o.verb, o.old, o.value) for s in found for o in s.ops}


def problems(plan: RestorePlan, name: str) -> dict[str, bool]:
    return {p.code: p.blocking for q in plan.qubes if q.source == name for p in q.problems}
