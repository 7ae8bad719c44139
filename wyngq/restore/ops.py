"""From a backed-up qube's settings to the operations that make a live qube
equal to it (pure).

`desired_settings` resolves the backup's references against the system as it
will be (World) and says what cannot be kept and what is done instead.
`operations` compares the result with the qube as it is (or as qubesd creates
it) and returns the writes per step, each with the value it replaces, so the
same operations are applied and shown as the dry-run diff. Values equal on
both sides are never written (each write makes qubesd save qubes.xml).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from wyngq.model import DeviceAssignment, PropertyValue, QubeClass, QubeSettings, VolumeSettings
from wyngq.qubes.reserved import PRELOAD_MAX, is_reserved_feature
from wyngq.restore.model import GUARD_TAG, LiveSystem, Op, Problem, StepKind
from wyngq.restore.resolve import REFERENCES, World

# Identity and runtime properties: never copied, never reset (docs/restore-semantics.md).
IDENTITY = frozenset({
    "qid", "uuid", "xid", "name", "klass", "dispid", "ip", "ip6", "visible_ip", "visible_ip6",
    "visible_gateway", "visible_gateway6", "visible_netmask", "gateway", "gateway6", "dns",
    "stubdom_xid", "stubdom_mem", "stubdom_uuid", "installed_by_rpm", "backup_timestamp",
    "start_time", "icon", "updateable", "is_preload",
})
CAPABILITIES = frozenset({"provides_network", "template_for_dispvms"})
# What qubesd adds and removes by itself: never compared, added or removed.
MANAGED_TAG_PREFIXES = ("created-by-", "audiovm-", "guivm-")
MANAGED_FEATURES = frozenset({"servicevm"})  # follows provides_network
IGNORED_DEVICE_OPTIONS = frozenset({"frontend-dev"})  # added by qubesd after an auto-attach
DEFAULT_FIREWALL = ("action=accept",)


@dataclass(frozen=True)
class Desired:
    """A qube's settings as this system will get them: references resolved,
    what cannot be kept dropped (and said so in the problems)."""

    klass: QubeClass
    label: str | None
    template: str | None
    properties: Mapping[str, PropertyValue] = field(default_factory=dict)
    keep_default: frozenset[str] = frozenset()  # references that could not be kept
    untouched: frozenset[str] = frozenset()  # --pref NAME::x: neither set nor reset
    features: Mapping[str, str] = field(default_factory=dict)
    tags: frozenset[str] = frozenset()
    firewall: tuple[str, ...] | None = None
    notes: str | None = None
    devices: tuple[DeviceAssignment, ...] = ()
    volumes: tuple[VolumeSettings, ...] = ()  # config of its data volumes and `volatile`


def is_reference(name: str, value: PropertyValue) -> bool:
    return value.type == "vm" or name in REFERENCES


def managed_tag(tag: str) -> bool:
    return tag == GUARD_TAG or tag.startswith(MANAGED_TAG_PREFIXES)


def desired_settings(
    settings: QubeSettings, world: World, live: LiveSystem, skip: frozenset[str], current: QubeSettings | None = None,
    keep_previous: bool = True,
) -> tuple[Desired, tuple[Problem, ...]]:
    """Resolve `settings` (from the backup) for this system; return them and the
    problems met, each with what is done about it."""
    problems: list[Problem] = []
    label = _label(settings.label, live.labels, problems)
    template = _template(settings, world, problems)
    properties, keep_default = _properties(settings, world, live, skip, problems)
    desired = Desired(
        klass=settings.klass,
        label=label,
        template=template,
        properties=properties,
        keep_default=keep_default,
        untouched=skip,
        features={k: v for k, v in settings.features.items() if not _untouched_feature(k)},
        tags=frozenset(t for t in settings.tags if not managed_tag(t)),
        firewall=settings.firewall,
        notes=settings.notes,
        devices=_restorable_devices(settings.devices, world, problems),
        volumes=_volume_config(settings, current, keep_previous, problems),
    )
    if settings.notes == "" and current is not None and current.notes:
        problems.append(Problem("notes_not_cleared", "the backup has no notes; this qube has some",
                                "notes left as they are: qubesd takes no empty notes (qvm-notes --delete fails too)"))
        desired = replace(desired, notes=None)
    if settings.firewall is not None and not settings.firewall:
        problems.append(Problem("empty_firewall", "the backup has an empty firewall rule list",
                                "qubesd takes no empty list: the firewall is left as it is"))
    return desired, tuple(problems)


def _label(label: str | None, labels: frozenset[str], problems: list[Problem]) -> str:
    """The backup's label, or one that exists here (red where there is one)."""
    if label is not None and (not labels or label in labels):
        return label
    fallback = "red" if "red" in labels or not labels else sorted(labels)[0]
    problems.append(Problem("missing_label", f"label {label!r} does not exist here", f"label {fallback!r} is used"))
    return fallback


def _properties(settings: QubeSettings, world: World, live: LiveSystem, skip: frozenset[str], problems: list[Problem]
                ) -> tuple[dict[str, PropertyValue], frozenset[str]]:
    """The properties to set, references resolved to their targets here, and
    those left at their default (a reference to a qube that is not here, a
    kernel dom0 lacks)."""
    properties: dict[str, PropertyValue] = {}
    keep_default: set[str] = set()
    for name, value in sorted(settings.properties.items()):
        if name in IDENTITY or name in skip or name in ("label", "template"):
            continue
        if is_reference(name, value) and value.value not in ("", "dom0"):
            resolved = _reference(name, value.value, world, problems)
            if resolved is None:
                keep_default.add(name)
                if name == "netvm":
                    properties[name] = PropertyValue(value.type, "")
                continue
            properties[name] = PropertyValue(value.type, resolved)
        elif name == "kernel" and value.value and live.kernels is not None and value.value not in live.kernels:
            problems.append(Problem("missing_kernel", f"kernel {value.value!r} is not installed in dom0",
                                    "the default kernel is used"))
            keep_default.add(name)
        else:
            properties[name] = value
    return properties, frozenset(keep_default)


def _restorable_devices(assigned: tuple[DeviceAssignment, ...], world: World, problems: list[Problem]
                        ) -> tuple[DeviceAssignment, ...]:
    """The device assignments whose backend qube is here (under its name here)."""
    devices = []
    for device in assigned:
        backend = world.resolve(device.backend)
        if backend is None:
            problems.append(Problem(
                "missing_device_backend",
                f"{device.devclass} device {device.backend}:{device.port_id}: qube {device.backend!r} does not exist",
                "this assignment is not restored"))
            continue
        devices.append(_with_backend(device, backend))
    return tuple(devices)


def _volume_config(settings: QubeSettings, current: QubeSettings | None, keep_previous: bool,
                   problems: list[Problem]) -> tuple[VolumeSettings, ...]:
    """Revisions to keep of its data volumes, and the size of `volatile` (the data
    volumes' sizes come with their data). A replaced volume never keeps fewer
    revisions than now: that would let qubesd drop the previous data at the next
    shutdown."""
    kinds = settings.klass.restored_volumes
    now = {v.kind: v for v in current.volumes} if current is not None else {}
    result = []
    for volume in settings.volumes:
        if volume.kind not in kinds:
            continue
        keep = volume.revisions_to_keep
        old = now.get(volume.kind)
        if (keep is not None and old is not None and old.revisions_to_keep is not None and keep_previous
                and keep < old.revisions_to_keep and volume.kind != "volatile"):
            problems.append(Problem(
                "fewer_revisions", f"its {volume.kind} volume kept {keep} revisions, now {old.revisions_to_keep}",
                f"left at {old.revisions_to_keep} so the previous data stays recoverable; lower it with "
                f"`qvm-volume config {settings.name}:{volume.kind} revisions_to_keep {keep}` later"))
            keep = old.revisions_to_keep
        result.append(VolumeSettings(volume.kind, volume.pool, volume.size, keep))
    return tuple(result)


def _template(settings: QubeSettings, world: World, problems: list[Problem]) -> str | None:
    if settings.klass not in (QubeClass.APP, QubeClass.DISP):
        return None
    name = settings.template
    resolved = world.resolve(name) if name else None
    final = world.final(resolved) if resolved else None
    if resolved is None or final is None:
        problems.append(Problem(
            "missing_template", f"its template {name!r} is neither here nor restored with it",
            f"refused: restore {name!r} too, or leave this qube out (--exclude)", blocking=True))
        return None
    if settings.klass is QubeClass.APP and final.klass is not QubeClass.TEMPLATE:
        problems.append(Problem("bad_template", f"{resolved!r} is not a TemplateVM here",
                                "refused: restore the qube under another name, or fix the template", blocking=True))
    if settings.klass is QubeClass.DISP and not final.template_for_dispvms:
        problems.append(Problem("bad_template", f"{resolved!r} is not a disposable template here",
                                f"refused: set template_for_dispvms on {resolved!r} or restore it too",
                                blocking=True))
    return resolved


def _reference(name: str, value: str, world: World, problems: list[Problem]) -> str | None:
    resolved = world.resolve(value)
    final = world.final(resolved) if resolved else None
    reason = None
    if resolved is None or final is None:
        reason = f"{name} {value!r} is neither here nor restored with it"
    elif name == "netvm" and not final.provides_network:
        reason = f"netvm {resolved!r} does not provide network here"
    elif name in ("default_dispvm", "management_dispvm") and not final.template_for_dispvms:
        reason = f"{name} {resolved!r} is not a disposable template here"
    if reason is None:
        return resolved
    if name == "netvm":
        problems.append(Problem("missing_netvm", reason, "netvm set to none: no network rather than another one"))
    else:
        problems.append(Problem(f"missing_{name}", reason, f"{name} left at the system default"))
    return None


def _with_backend(device: DeviceAssignment, backend: str) -> DeviceAssignment:
    return DeviceAssignment(device.devclass, backend, device.port_id, device.device_id, device.mode, device.options)


def fresh(klass: QubeClass, name: str, label: str | None, template: str | None) -> QubeSettings:
    """A qube as qubesd creates it, for comparing with the backup."""
    return QubeSettings(name=name, klass=klass, label=label, template=template, firewall=DEFAULT_FIREWALL, notes="")


def operations(desired: Desired, current: QubeSettings, created: bool) -> dict[StepKind, tuple[Op, ...]]:
    """The writes that make `current` equal to `desired`, by step."""
    steps: dict[StepKind, list[Op]] = {kind: [] for kind in StepKind}
    props = current.properties
    if current.label != desired.label and desired.label is not None:
        steps[StepKind.PROPERTIES].append(Op("set", "label", desired.label, current.label))
    if desired.template is not None and current.template != desired.template and not created:
        steps[StepKind.REFERENCES].append(Op("set", "template", desired.template, current.template))
    for name, value in sorted(desired.properties.items()):
        old = props.get(name)
        if old is not None and old.value == value.value:
            continue
        kind = _property_step(name, value.value, is_reference(name, value))
        steps[kind].append(Op("set", name, value.value, old.value if old else None))
    for name, old in sorted(props.items()):
        if name in desired.properties or name in IDENTITY or name in desired.untouched or name in ("label", "template"):
            continue
        kind = StepKind.CAPABILITIES_OFF if name in CAPABILITIES else (
            StepKind.REFERENCES if is_reference(name, old) else StepKind.PROPERTIES)
        steps[kind].append(Op("reset", name, None, old.value))
    _features(desired, current, steps[StepKind.FEATURES])
    _preload(desired, current, steps[StepKind.PRELOAD])
    _tags(desired, current, steps[StepKind.TAGS])
    if desired.firewall and normal_rules(desired.firewall) != normal_rules(current.firewall or ()):
        steps[StepKind.FIREWALL].append(Op("set", "rules", "\n".join(desired.firewall),
                                           "\n".join(current.firewall) if current.firewall is not None else None))
    if desired.notes is not None and desired.notes != (current.notes or ""):
        steps[StepKind.NOTES].append(Op("set", "notes", desired.notes, current.notes))
    _devices(desired, current, steps[StepKind.DEVICES])
    _volumes(desired, current, steps[StepKind.VOLUMES])
    return {kind: tuple(ops) for kind, ops in steps.items() if ops}


def _property_step(name: str, value: str, reference: bool) -> StepKind:
    if name in CAPABILITIES:
        return StepKind.CAPABILITIES if value == "True" else StepKind.CAPABILITIES_OFF
    return StepKind.REFERENCES if reference else StepKind.PROPERTIES


def _volumes(desired: Desired, current: QubeSettings, ops: list[Op]) -> None:
    now = {v.kind: v for v in current.volumes}
    for volume in desired.volumes:
        old = now.get(volume.kind)
        old_keep = old.revisions_to_keep if old is not None else None
        if volume.revisions_to_keep is not None and volume.revisions_to_keep != old_keep:
            ops.append(Op("revisions_to_keep", volume.kind, str(volume.revisions_to_keep),
                          None if old_keep is None else str(old_keep)))
        if volume.kind == "volatile" and (old is None or old.size != volume.size):
            ops.append(Op("resize", volume.kind, str(volume.size), None if old is None else str(old.size)))


def _untouched_feature(name: str) -> bool:
    """Features a restore never compares, sets or removes: those qubesd follows
    from a property, and those qubesd reserves for itself (wyngq.qubes.reserved)."""
    return name in MANAGED_FEATURES or is_reserved_feature(name)


def _features(desired: Desired, current: QubeSettings, ops: list[Op]) -> None:
    """Features made equal to the backup, but for PRELOAD_MAX (its own later step)."""
    for name, value in sorted(desired.features.items()):
        old = current.features.get(name)
        if old != value and name != PRELOAD_MAX:
            ops.append(Op("set", name, value, old))
    for name, old in sorted(current.features.items()):
        if name not in desired.features and not _untouched_feature(name) and name != PRELOAD_MAX:
            ops.append(Op("remove", name, None, old))


def _preload(desired: Desired, current: QubeSettings, ops: list[Op]) -> None:
    """`preload-dispvm-max`, set once every qube's features are in place: qubesd
    takes it only when the qube or its template supports preloading."""
    wanted, old = desired.features.get(PRELOAD_MAX), current.features.get(PRELOAD_MAX)
    if wanted is not None and wanted != old:
        ops.append(Op("set", PRELOAD_MAX, wanted, old))
    elif wanted is None and old is not None:
        ops.append(Op("remove", PRELOAD_MAX, None, old))


def _tags(desired: Desired, current: QubeSettings, ops: list[Op]) -> None:
    have = {t for t in current.tags if not managed_tag(t)}
    for tag in sorted(desired.tags - have):
        ops.append(Op("add", tag, tag, None))
    for tag in sorted(have - desired.tags):
        ops.append(Op("remove", tag, None, tag))


def normal_rules(rules: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Firewall rule lines in one spelling (qubesd answers dst4=/dst6=/dstname= for
    dsthost=, and a port range for a single port)."""
    result = []
    for rule in rules:
        words, _, comment = rule.partition("comment=")
        parts = sorted(_normal_word(word) for word in words.split())
        result.append(" ".join(parts) + (" comment=" + comment if comment else ""))
    return tuple(result)


def _normal_word(word: str) -> str:
    key, _, value = word.partition("=")
    if key in ("dst4", "dst6", "dstname"):
        key = "dsthost"
    if key == "dstports" and "-" not in value:
        value = f"{value}-{value}"
    return f"{key}={value}"


def device_key(device: DeviceAssignment) -> tuple[str, str, str]:
    return (device.devclass, device.backend, device.port_id)


def _normal_device(device: DeviceAssignment) -> tuple[object, ...]:
    options = tuple(sorted((k, v) for k, v in device.options if k not in IGNORED_DEVICE_OPTIONS))
    return (*device_key(device), device.device_id or "*", device.mode, options)


def _devices(desired: Desired, current: QubeSettings, ops: list[Op]) -> None:
    wanted = {device_key(d): d for d in desired.devices}
    have = {device_key(d): d for d in current.devices}
    for key, device in sorted(have.items()):
        if key not in wanted or _normal_device(wanted[key]) != _normal_device(device):
            ops.append(Op("unassign", ":".join(key), None, describe(device), device=device))
    for key, device in sorted(wanted.items()):
        if key not in have or _normal_device(have[key]) != _normal_device(device):
            ops.append(Op("assign", ":".join(key), describe(device), None, device=device))


def describe(device: DeviceAssignment) -> str:
    options = " ".join(f"{k}={v}" for k, v in device.options)
    identity = device.device_id or "*"
    return f"{device.backend}:{device.port_id} ({identity}) mode={device.mode}" + (f" {options}" if options else "")
