"""The QubesPort over the Admin API: the only module that imports qubesadmin.

Reads use the cheapest calls qubesadmin offers (one `admin.vm.List` for all
qubes, one `property.GetAll` per qube); writes only happen where asked. What a
read already answered (a qube's power state from the list, its properties,
tags and volumes from `qube()` for the `settings()` that follows) is used
once instead of asked again, and forgotten at the first write.
Qubes 4.2 and 4.3 differ in the device API: 4.3 assignments carry a mode and
a device identity, which are read here when the library offers them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import qubesadmin
import qubesadmin.exc

from wyngq.errors import QubesError
from wyngq.model import (
    DeviceAssignment,
    LiveQube,
    Pool,
    PoolDriver,
    PropertyValue,
    Qube,
    QubeClass,
    QubeSettings,
    Volume,
    VolumeSettings,
)
from wyngq.qubes.replies import (
    BadReply,
    is_running,
    parse_get_all,
    parse_vm_list,
    parse_volume_info,
    split_property,
    volume_from_info,
)

log = logging.getLogger(__name__)

DEFAULT_QUBES_DIR = "/var/lib/qubes"


class AdminQubes:
    def __init__(self, app: qubesadmin.app.QubesBase | None = None) -> None:
        self.app = app if app is not None else qubesadmin.Qubes()
        self._skipped: set[str] = set()  # qubes of a class wyngq does not know, said once
        self._listed: dict[str, tuple[QubeClass, bool]] = {}  # the last admin.vm.List
        self._read: dict[str, _Read] = {}  # what qube() read, for settings()
        self._devclasses: tuple[str, ...] | None = None

    # -- reading -------------------------------------------------------------
    def pools(self) -> dict[str, Pool]:
        result = {}
        for pool in self.app.pools.values():
            config = dict(pool.config)
            driver = pool.driver
            path: str | None = None
            if driver == PoolDriver.FILE_REFLINK:
                path = config.get("dir_path")
            elif driver == PoolDriver.LVM_THIN:
                vg, thin = config.get("volume_group"), config.get("thin_pool")
                path = f"{vg}/{thin}" if vg and thin else None
            result[pool.name] = Pool(pool.name, driver, path)
        return result

    def list_qubes(self) -> dict[str, tuple[QubeClass, bool]]:
        return {vm.name: (klass, running) for vm, klass, running in self._domains()}

    def _forget(self) -> None:
        """Before a write: what earlier reads answered may no longer hold."""
        self._listed.clear()
        self._read.clear()

    def _domains(self) -> Iterator[tuple[qubesadmin.vm.QubesVM, QubeClass, bool]]:
        """Every qube but dom0, with its class and whether it is running (the power
        states of one `admin.vm.List`, not one call per qube); qubes of a class
        wyngq does not know are skipped."""
        with _qubes_errors("dom0"):
            listed = parse_vm_list(self.app.qubesd_call("dom0", "admin.vm.List"))
        for vm in self.app.domains:
            if vm.name == "dom0":
                continue
            try:
                klass = QubeClass(vm.klass)
            except ValueError:
                # not a warning: every listing would repeat it for qubes nobody asked about;
                # a qube named on the command line is reported as not found (wyngq.backup)
                if vm.name not in self._skipped:
                    self._skipped.add(vm.name)
                    log.info("leaving out qube %s: wyngq does not know its class %s", vm.name, vm.klass)
                continue
            state = listed[vm.name].state if vm.name in listed else None
            running = is_running(state) if state is not None else _running(vm)
            self._listed[vm.name] = (klass, running)
            yield vm, klass, running

    def qube(self, name: str) -> Qube:
        vm = self._vm(name)
        with _qubes_errors(name):
            klass = QubeClass(vm.klass)
            listed = self._listed.get(name)
            read = _Read(_all_properties(vm), tuple(sorted(vm.tags)), {})
            volumes = _volumes(vm, klass.backed_up_volumes, read.volumes)
            self._read[name] = read
            include = read.properties.get("include_in_backups")
            return Qube(
                name=name,
                klass=klass,
                running=listed[1] if listed is not None and listed[0] is klass else _running(vm),
                include_in_backups=include is not None and include[1].value == "True",
                volumes=volumes,
                tags=frozenset(read.tags),
            )

    def volumes(self, name: str) -> tuple[Volume, ...]:
        vm = self._vm(name)
        with _qubes_errors(name):
            return _volumes(vm, QubeClass(vm.klass).backed_up_volumes, {})

    def settings(self, name: str) -> QubeSettings:
        vm = self._vm(name)
        read = self._read.pop(name, None)
        with _qubes_errors(name):
            klass = QubeClass(vm.klass)
            every = read.properties if read is not None else _all_properties(vm)
            label = every.get("label")
            template = every.get("template")
            return QubeSettings(
                name=name,
                klass=klass,
                label=label[1].value or None if label else None,
                template=template[1].value or None if template else None,
                properties={
                    prop: value
                    for prop, (is_default, value) in every.items()
                    if not is_default and prop not in ("label", "template")
                },
                features={str(k): str(v) for k, v in vm.features.items()},
                tags=read.tags if read is not None else tuple(sorted(vm.tags)),
                firewall=_firewall(vm),
                notes=_notes(vm),
                devices=_devices(vm, self._device_classes()),
                volumes=tuple(
                    VolumeSettings(vol.kind, vol.pool, vol.size, vol.revisions_to_keep)
                    for vol in _volumes(vm, ("private", "root", "volatile"), read.volumes if read else {})
                ),
            )

    def state_files(self, names: Iterable[str]) -> dict[str, bytes]:
        base = self._qubes_dir()
        files: dict[str, bytes] = {}
        _read_into(files, base, "qubes.xml")
        names = list(names)
        listed = self._listed if all(n in self._listed for n in names) else self.list_qubes()
        for name in names:
            klass = listed.get(name, (QubeClass.APP, False))[0]
            subdir = "vm-templates" if klass is QubeClass.TEMPLATE else "appvms"
            for leaf in ("firewall.xml", "notes.txt"):
                _read_into(files, base, f"{subdir}/{name}/{leaf}")
        return files

    def set_backup_timestamp(self, name: str, when: int) -> None:
        self._forget()
        with _qubes_errors(name):
            self._vm(name).backup_timestamp = when

    def qubes_version(self) -> str:
        try:
            with open("/etc/qubes-release", encoding="utf-8") as handle:
                text = handle.read()
        except OSError:
            return ""
        words = [w for w in text.split() if w[:1].isdigit()]
        return words[0] if words else ""

    def global_prefs(self) -> dict[str, tuple[bool, PropertyValue]]:
        """One `admin.property.GetAll` (one Get each where qubesd lacks it)."""
        with _qubes_errors("dom0"):
            try:
                raw = self.app.qubesd_call("dom0", "admin.property.GetAll")
            except qubesadmin.exc.QubesException:
                return {prop: split_property(self.app.qubesd_call("dom0", "admin.property.Get", prop))
                        for prop in self.app.property_list()}
            return parse_get_all(raw)

    def set_global_pref(self, prop: str, value: str) -> None:
        self._call("dom0", "admin.property.Set", prop, value.encode())

    # -- restore: reading the whole system, then writing ------------------------
    def overview(self) -> dict[str, LiveQube]:
        result: dict[str, LiveQube] = {}
        for vm, klass, running in self._domains():
            with _qubes_errors(vm.name):
                props = {name: value.value for name, (_, value) in _all_properties(vm).items()}
            result[vm.name] = LiveQube(
                name=vm.name,
                klass=klass,
                running=running,
                template=props.get("template") or None,
                netvm=props.get("netvm") or None,
                audiovm=props.get("audiovm") or None,
                guivm=props.get("guivm") or None,
                provides_network=props.get("provides_network") == "True",
                template_for_dispvms=props.get("template_for_dispvms") == "True",
            )
        return result

    def labels(self) -> frozenset[str]:
        with _qubes_errors("dom0"):
            names = self.app.labels.keys()
            return frozenset(str(name) for name in names)

    def default_pool(self) -> str | None:
        with _qubes_errors("dom0"):
            return str(self.app.default_pool or "") or None

    def kernels(self) -> frozenset[str] | None:
        with _qubes_errors("dom0"):
            pools = [p for p in self.app.pools.values() if p.driver == "linux-kernel"]
            if not pools:
                return None
            return frozenset(str(vol.vid) for pool in pools for vol in pool.volumes)

    def create_qube(
        self, name: str, klass: QubeClass, *, label: str, template: str | None, pool: str | None,
        pools: Mapping[str, str],
    ) -> None:
        self._forget()
        with _qubes_errors(name):
            if pool:
                self.app.add_new_vm(klass.value, name, label, template=template, pool=pool)
            else:
                self.app.add_new_vm(klass.value, name, label, template=template, pools=dict(pools) or None)

    def set_property(self, name: str, prop: str, value: str) -> None:
        self._call(name, "admin.vm.property.Set", prop, value.encode("utf-8"))

    def reset_property(self, name: str, prop: str) -> None:
        self._call(name, "admin.vm.property.Reset", prop)

    def set_feature(self, name: str, feature: str, value: str) -> None:
        self._call(name, "admin.vm.feature.Set", feature, value.encode("utf-8"))

    def remove_feature(self, name: str, feature: str) -> None:
        self._call(name, "admin.vm.feature.Remove", feature)

    def add_tag(self, name: str, tag: str) -> None:
        self._call(name, "admin.vm.tag.Set", tag)

    def remove_tag(self, name: str, tag: str) -> None:
        self._call(name, "admin.vm.tag.Remove", tag)

    def set_firewall(self, name: str, rules: Sequence[str]) -> None:
        if not rules:
            raise QubesError(f"qube {name!r}: qubesd takes no empty firewall rule list")
        self._call(name, "admin.vm.firewall.Set", None, "".join(rule + "\n" for rule in rules).encode("ascii"))

    def set_notes(self, name: str, notes: str) -> None:
        self._call(name, "admin.vm.notes.Set", None, notes.encode("utf-8"))

    def assign_device(self, name: str, device: DeviceAssignment) -> None:
        self._forget()
        vm = self._vm(name)
        with _qubes_errors(name):
            collection = vm.devices[device.devclass]
            if hasattr(collection, "get_assigned_devices"):  # Qubes 4.3 and later
                collection.assign(self._assignment_43(device))
            else:  # Qubes 4.2: a persistent attachment; no mode, no device identity
                import qubesadmin.devices

                backend = self._vm(device.backend)
                collection.attach(qubesadmin.devices.DeviceAssignment(
                    backend, device.port_id, options=dict(device.options), persistent=True))

    def unassign_device(self, name: str, device: DeviceAssignment) -> None:
        self._forget()
        vm = self._vm(name)
        with _qubes_errors(name):
            collection = vm.devices[device.devclass]
            if hasattr(collection, "get_assigned_devices"):
                collection.unassign(self._assignment_43(device))
            else:
                for assignment in collection.assignments(persistent=True):
                    if assignment.backend_domain.name == device.backend and assignment.ident == device.port_id:
                        collection.detach(assignment)

    def shutdown(self, name: str) -> None:
        self._forget()
        with _qubes_errors(name):
            vm = self._vm(name)
            if _running(vm):
                vm.shutdown(wait=True)

    def kill(self, name: str) -> None:
        self._forget()
        with _qubes_errors(name):
            vm = self._vm(name)
            if _running(vm):
                vm.kill()

    def start(self, name: str) -> None:
        with _qubes_errors(name):
            vm = self._vm(name)
            if not _running(vm):
                vm.start()

    def clone_volume(self, name: str, kind: str, source: str) -> None:
        self._forget()
        target, origin = self._vm(name), self._vm(source)
        with _qubes_errors(name):
            # qubesd clones into a running qube's volume too (seen in the lab): never do that
            if target.get_power_state() != "Halted":
                raise QubesError(f"qube {name!r}: Domain is not powered off: {name!r}")
            volume, source_volume = target.volumes[kind], origin.volumes[kind]
            # qubesd silently does nothing for a volume that is not save_on_stop (storage
            # drivers' import_volume): refuse that here instead of restoring nothing
            for vol, owner in ((volume, name), (source_volume, source)):
                if not vol.save_on_stop:
                    raise QubesError(f"qube {owner!r}: its {kind} volume does not keep data (not save_on_stop)")
            volume.clone(source_volume)

    def remove_qube(self, name: str) -> None:
        self._forget()
        with _qubes_errors(name):
            del self.app.domains[name]

    def set_revisions_to_keep(self, name: str, kind: str, count: int) -> None:
        self._forget()
        with _qubes_errors(name):
            self._vm(name).volumes[kind].revisions_to_keep = count

    def resize_volume(self, name: str, kind: str, size: int) -> None:
        self._forget()
        with _qubes_errors(name):
            self._vm(name).volumes[kind].resize(size, allow_shrink=True)

    def revisions(self, name: str, kind: str) -> tuple[str, ...]:
        with _qubes_errors(name):
            return tuple(str(rev) for rev in self._vm(name).volumes[kind].revisions)

    def _assignment_43(self, device: DeviceAssignment) -> object:
        from qubesadmin.device_protocol import DeviceAssignment as Assignment
        from qubesadmin.device_protocol import Port, VirtualDevice

        backend = self._vm(device.backend)
        port = Port(backend, device.port_id, device.devclass)
        return Assignment(VirtualDevice(port, device.device_id or "*"), mode=device.mode, options=dict(device.options))

    def _call(self, name: str, method: str, arg: str | None = None, payload: bytes | None = None) -> None:
        self._forget()
        with _qubes_errors(name):
            self.app.qubesd_call(name, method, arg, payload)

    # -- helpers ---------------------------------------------------------------
    def _device_classes(self) -> tuple[str, ...]:
        """The device classes qubesd knows: the same for every qube, so asked once."""
        if self._devclasses is None:
            with _qubes_errors("dom0"):
                raw = self.app.qubesd_call("dom0", "admin.deviceclass.List")
            self._devclasses = tuple(sorted(raw.decode("ascii").split()))
        return self._devclasses

    def _vm(self, name: str) -> qubesadmin.vm.QubesVM:
        try:
            return self.app.domains[name]
        except KeyError as err:
            raise QubesError(f"no qube named {name!r}", hint="check the name with qvm-ls") from err

    def _qubes_dir(self) -> str:
        """Where qubes.xml lives: the `varlibqubes` pool's directory (it is
        /var/lib/qubes in dom0), taken from the Admin API rather than assumed."""
        try:
            pool = self.app.pools["varlibqubes"]
            path = dict(pool.config).get("dir_path")
        except (KeyError, qubesadmin.exc.QubesException):
            path = None
        return path or DEFAULT_QUBES_DIR


class _qubes_errors:
    """Turn qubesadmin's exceptions into QubesError naming the qube."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, _tb: object) -> None:
        # qubesd's protocol errors (e.g. an unknown label, an empty payload) come as
        # qubesadmin.exc.ProtocolError, an AssertionError rather than a QubesException
        if exc is not None and isinstance(
            exc, qubesadmin.exc.QubesException | qubesadmin.exc.ProtocolError | BadReply
        ):
            raise QubesError(f"qube {self.name!r}: {exc}") from exc


@dataclass(frozen=True)
class _Read:
    """What `qube()` read of one qube: its properties, tags and volumes by kind."""

    properties: dict[str, tuple[bool, PropertyValue]]
    tags: tuple[str, ...]
    volumes: dict[str, Volume]


def _running(vm: qubesadmin.vm.QubesVM) -> bool:
    try:
        return is_running(vm.get_power_state())
    except qubesadmin.exc.QubesException:
        return False


def _all_properties(vm: qubesadmin.vm.QubesVM) -> dict[str, tuple[bool, PropertyValue]]:
    """Every property: (is it at its default, its value in qubesd's type and
    string form). One GetAll call where qubesd offers it, else one Get each."""
    try:
        raw = vm.qubesd_call(vm.name, "admin.vm.property.GetAll")
    except qubesadmin.exc.QubesException:
        return {
            prop: split_property(vm.qubesd_call(vm.name, "admin.vm.property.Get", prop))
            for prop in vm.property_list()
        }
    return parse_get_all(raw)


def _volumes(vm: qubesadmin.vm.QubesVM, kinds: Iterable[str], known: dict[str, Volume]) -> tuple[Volume, ...]:
    """Each of `kinds` the qube has, read with one `volume.Info` call per volume
    (qubesadmin's Volume makes one per attribute read) unless `known` has it;
    what is read is added to `known`."""
    for kind in sorted(vm.volumes):
        if kind in kinds and kind not in known:
            known[kind] = volume_from_info(
                kind, parse_volume_info(vm.qubesd_call(vm.name, "admin.vm.volume.Info", kind)))
    return tuple(known[kind] for kind in sorted(known) if kind in kinds)


def _firewall(vm: qubesadmin.vm.QubesVM) -> tuple[str, ...]:
    """The qube's firewall rules. A failure to read them fails the qube's settings
    (QubesError): a backup without them would restore qubesd's accept-all default."""
    try:
        raw = vm.qubesd_call(vm.name, "admin.vm.firewall.Get")
        return tuple(line for line in raw.decode("ascii").splitlines() if line)
    except (qubesadmin.exc.QubesException, UnicodeDecodeError) as err:
        raise QubesError(f"qube {vm.name!r}: cannot read its firewall rules: {err}",
                         hint="fix the qube's firewall (qvm-firewall), or leave it out of the backup") from err


def _notes(vm: qubesadmin.vm.QubesVM) -> str | None:
    """The qube's notes (every class has them since Qubes 4.3); None where this
    qubesadmin has none. A failure to read them fails the qube's settings."""
    get_notes = getattr(vm, "get_notes", None)
    if get_notes is None:
        return None
    try:
        return str(get_notes())
    except qubesadmin.exc.QubesException as err:
        raise QubesError(f"qube {vm.name!r}: cannot read its notes: {err}",
                         hint="check the qube's notes (qvm-notes), or leave it out of the backup") from err


def _devices(vm: qubesadmin.vm.QubesVM, devclasses: Iterable[str]) -> tuple[DeviceAssignment, ...]:
    result: list[DeviceAssignment] = []
    for devclass in devclasses:
        collection = vm.devices[devclass]
        if hasattr(collection, "get_assigned_devices"):
            for assignment in collection.get_assigned_devices():
                result.append(
                    DeviceAssignment(
                        devclass=devclass,
                        backend=assignment.backend_name,
                        port_id=assignment.port_id,
                        device_id=assignment.device_id,
                        mode=assignment.mode.value,
                        options=tuple(sorted((str(k), str(v)) for k, v in assignment.options.items())),
                    )
                )
        else:  # Qubes 4.2: persistent assignments, no mode or device identity
            for assignment in collection.assignments(persistent=True):
                options = {str(k): str(v) for k, v in assignment.options.items()}
                required = options.pop("required", "") in ("True", "yes", "1")
                result.append(
                    DeviceAssignment(
                        devclass=devclass,
                        backend=assignment.backend_domain.name,
                        port_id=assignment.ident,
                        mode="required" if required else "auto-attach",
                        options=tuple(sorted(options.items())),
                    )
                )
    return tuple(sorted(result, key=lambda d: (d.devclass, d.backend, d.port_id)))


def _read_into(files: dict[str, bytes], base: str, relpath: str) -> None:
    try:
        with open(os.path.join(base, relpath), "rb") as handle:
            files[relpath] = handle.read()
    except FileNotFoundError:
        return


