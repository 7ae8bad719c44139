"""The QubesPort over the Admin API; with wyngq.qubes.reads and .devices, the
only code that imports qubesadmin.

Reads use the cheapest calls qubesd offers (one `admin.vm.List` for all qubes,
one `property.GetAll` per qube, one `volume.Info` per volume); writes happen
only where asked, sent to qubesd directly where qubesadmin would look the qube
up again first. What a read answered is reused while it holds
(wyngq.qubes.known): a qube's class from the list needs no second list to
look it up, and a qube this adapter guarded and saw halted needs no power
state before a clone.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import replace

import qubesadmin
import qubesadmin.exc

from wyngq.errors import QubesError
from wyngq.model import (
    DeviceAssignment,
    LiveQube,
    Pool,
    PropertyValue,
    Qube,
    QubeClass,
    QubeSettings,
    Volume,
    VolumeSettings,
)
from wyngq.qubes import devices, reads
from wyngq.qubes.known import Known, Read
from wyngq.qubes.reads import qubes_errors as _qubes_errors
from wyngq.qubes.replies import is_running, parse_get_all, parse_vm_list, split_property
from wyngq.qubes.reserved import GUARD_TAG

log = logging.getLogger(__name__)

DEFAULT_QUBES_DIR = "/var/lib/qubes"


class AdminQubes:
    def __init__(self, app: qubesadmin.app.QubesBase | None = None) -> None:
        self.app = app if app is not None else qubesadmin.Qubes()
        self._skipped: set[str] = set()  # qubes of a class wyngq does not know, said once
        self._known = Known()  # what reads answered, while it holds
        self._devclasses: tuple[str, ...] | None = None

    # -- reading -------------------------------------------------------------
    def pools(self) -> dict[str, Pool]:
        return reads.pools(self.app)

    def list_qubes(self) -> dict[str, tuple[QubeClass, bool]]:
        return {name: (klass, running) for name, klass, running in self._domains()}

    def _forget(self) -> None:
        """Before a write: what earlier reads answered may no longer hold."""
        self._known.forget()

    def _domains(self) -> Iterator[tuple[str, QubeClass, bool]]:
        """Every qube but dom0, with its class and whether it is running, from one
        `admin.vm.List` (not one call per qube); qubes of a class wyngq does not
        know are skipped."""
        with _qubes_errors("dom0"):
            listed = parse_vm_list(self.app.qubesd_call("dom0", "admin.vm.List"))
        for name, entry in sorted(listed.items()):
            if name == "dom0":
                continue
            try:
                klass = QubeClass(entry.klass)
            except ValueError:
                # not a warning: every listing would repeat it for qubes nobody asked about;
                # a qube named on the command line is reported as not found (wyngq.backup)
                if name not in self._skipped:
                    self._skipped.add(name)
                    log.info("leaving out qube %s: wyngq does not know its class %s", name, entry.klass)
                continue
            self._known.listed_as(name, klass, entry.state)
            running = is_running(entry.state) if entry.state is not None else reads.running(self._vm(name))
            self._known.listed[name] = (klass, running)
            yield name, klass, running

    def qube(self, name: str) -> Qube:
        vm = self._vm(name)
        with _qubes_errors(name):
            klass = QubeClass(vm.klass)
            listed = self._known.listed.get(name)
            read = self._known.read.get(name) or Read(reads.all_properties(self.app, name))
            if read.tags is None:
                read = replace(read, tags=tuple(sorted(vm.tags)))
            self._known.read[name] = read
            volumes = self._volumes(vm, klass.backed_up_volumes, read.volumes)
            include = read.properties.get("include_in_backups")
            return Qube(
                name=name,
                klass=klass,
                running=listed[1] if listed is not None and listed[0] is klass else reads.running(vm),
                include_in_backups=include is not None and include[1].value == "True",
                volumes=volumes,
                tags=frozenset(read.tags or ()),
            )

    def volumes(self, name: str) -> tuple[Volume, ...]:
        vm = self._vm(name)
        with _qubes_errors(name):
            known = self._known.read[name].volumes if name in self._known.read else {}
            return self._volumes(vm, QubeClass(vm.klass).backed_up_volumes, known)

    def volume(self, name: str, kind: str) -> Volume:
        with _qubes_errors(name):
            found = reads.volume_info(self.app, name, kind)
        self._known.keeps[(name, kind)] = found.save_on_stop
        return found

    def settings(self, name: str) -> QubeSettings:
        vm = self._vm(name)
        with _qubes_errors(name):
            klass = QubeClass(vm.klass)
            read = self._known.read.get(name) or Read(reads.all_properties(self.app, name))
            self._known.read[name] = read
            every = read.properties
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
                tags=read.tags if read.tags is not None else tuple(sorted(vm.tags)),
                firewall=reads.firewall(vm),
                notes=reads.notes(vm),
                devices=devices.assigned(vm, self._device_classes()),
                volumes=tuple(
                    VolumeSettings(vol.kind, vol.pool, vol.size, vol.revisions_to_keep)
                    for vol in self._volumes(vm, klass.restored_volumes, read.volumes)
                ),
            )

    def state_files(self, names: Iterable[str]) -> dict[str, bytes]:
        base = self._qubes_dir()
        files: dict[str, bytes] = {}
        reads.read_into(files, base, "qubes.xml")
        names = list(names)
        listed = self._known.listed if all(n in self._known.listed for n in names) else self.list_qubes()
        for name in names:
            klass = listed.get(name, (QubeClass.APP, False))[0]
            subdir = "vm-templates" if klass is QubeClass.TEMPLATE else "appvms"
            for leaf in ("firewall.xml", "notes.txt"):
                reads.read_into(files, base, f"{subdir}/{name}/{leaf}")
        return files

    def set_backup_timestamp(self, name: str, when: int) -> None:
        self._forget()
        with _qubes_errors(name):
            self._vm(name).backup_timestamp = when

    def qubes_version(self) -> str:
        return reads.qubes_version()

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
        for name, klass, running in self._domains():
            with _qubes_errors(name):
                read = self._known.read[name] = Read(reads.all_properties(self.app, name))  # for settings()
            props = {prop: value.value for prop, (_, value) in read.properties.items()}
            result[name] = LiveQube(
                name=name,
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
        self._drop(name)
        payload = f"name={name} label={label}"  # as qubesadmin's add_new_vm, without looking the qube up after
        if pool:
            payload += f" pool={pool}"
        else:
            payload += "".join(f" pool:{kind}={where}" for kind, where in sorted(pools.items()))
        method = "admin.vm.CreateInPool." if pool or pools else "admin.vm.Create."
        with _qubes_errors(name):
            self.app.qubesd_call("dom0", method + klass.value, template, payload.encode("utf-8"))
            self.app.domains.clear_cache(invalidate_name=name)
        self._known.made(name, klass)

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
        if tag == GUARD_TAG:
            self._known.guard(name, True)

    def remove_tag(self, name: str, tag: str) -> None:
        if tag == GUARD_TAG:
            self._known.guard(name, False)  # before: should qubesd fail, it may have been removed all the same
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
            devices.assign(vm, self._vm, device)

    def unassign_device(self, name: str, device: DeviceAssignment) -> None:
        self._forget()
        vm = self._vm(name)
        with _qubes_errors(name):
            devices.unassign(vm, self._vm, device)

    def shutdown(self, name: str) -> None:
        self._forget()
        with _qubes_errors(name):
            vm = self._vm(name)
            if reads.running(vm):
                vm.shutdown(wait=True)

    def kill(self, name: str) -> None:
        self._forget()
        with _qubes_errors(name):
            vm = self._vm(name)
            if reads.running(vm):
                vm.kill()

    def start(self, name: str) -> None:
        self._known.started(name)
        with _qubes_errors(name):
            vm = self._vm(name)
            if not reads.running(vm):
                vm.start()

    def clone_volume(self, name: str, kind: str, source: str, source_kind: str | None = None) -> None:
        origin = source_kind or kind
        keeps = {(name, kind): self._keeps_data(name, kind), (source, origin): self._keeps_data(source, origin)}
        self._forget()
        with _qubes_errors(name):
            # qubesd clones into a running qube's volume too (seen in the lab; a file-reflink
            # pool commits the running qube's own copy over it at its shutdown): never do that.
            # A qube guarded and seen halted since cannot have been started (wyngq.qubes.known).
            if name not in self._known.halted:
                state = reads.power_state(self.app, name)
                self._known.seen(name, state)
                if state != "Halted":
                    raise QubesError(f"qube {name!r}: Domain is not powered off: {name!r}")
            # qubesd silently does nothing for a volume that is not save_on_stop (storage
            # drivers' import_volume): refuse that here instead of restoring nothing
            for (owner, which), keep in keeps.items():
                if not keep:
                    raise QubesError(f"qube {owner!r}: its {which} volume does not keep data (not save_on_stop)")
            token = self.app.qubesd_call(source, "admin.vm.volume.CloneFrom", origin)  # as qubesadmin's clone()
            self.app.qubesd_call(name, "admin.vm.volume.CloneTo", kind, token)

    def remove_qube(self, name: str) -> None:
        self._forget()
        self._drop(name)
        with _qubes_errors(name):
            self.app.qubesd_call(name, "admin.vm.Remove")
            self.app.domains.clear_cache(invalidate_name=name)

    def set_revisions_to_keep(self, name: str, kind: str, count: int) -> None:
        self._call(name, "admin.vm.volume.Set.revisions_to_keep", kind, str(count).encode("ascii"))

    def resize_volume(self, name: str, kind: str, size: int) -> None:  # as qubesadmin's resize(allow_shrink=True)
        self._call(name, "admin.vm.volume.Resize", kind, str(size).encode("ascii"))

    def revisions(self, name: str, kind: str) -> tuple[str, ...]:
        with _qubes_errors(name):
            return tuple(self.app.qubesd_call(name, "admin.vm.volume.ListSnapshots", kind).decode("ascii").splitlines())

    def _call(self, name: str, method: str, arg: str | None = None, payload: bytes | None = None) -> None:
        self._forget()
        with _qubes_errors(name):
            self.app.qubesd_call(name, method, arg, payload)

    # -- helpers ---------------------------------------------------------------
    def _volumes(self, vm: qubesadmin.vm.QubesVM, kinds: Iterable[str], known: dict[str, Volume]
                 ) -> tuple[Volume, ...]:
        found = reads.volumes(vm, kinds, known)
        self._known.keeps.update(((vm.name, vol.kind), vol.save_on_stop) for vol in found)
        return found

    def _keeps_data(self, name: str, kind: str) -> bool:
        """Whether the qube's `kind` volume is save_on_stop (read once)."""
        keeps = self._known.keeps
        if (name, kind) not in keeps:
            with _qubes_errors(name):
                keeps[(name, kind)] = reads.volume_info(self.app, name, kind).save_on_stop
        return keeps[(name, kind)]

    def _drop(self, name: str) -> None:
        """A qube of this name is created or removed: what was known of one is not."""
        self._known.drop(name)

    def _device_classes(self) -> tuple[str, ...]:
        """The device classes qubesd knows: the same for every qube, so asked once."""
        if self._devclasses is None:
            with _qubes_errors("dom0"):
                raw = self.app.qubesd_call("dom0", "admin.deviceclass.List")
            self._devclasses = tuple(sorted(raw.decode("ascii").split()))
        return self._devclasses

    def _vm(self, name: str) -> qubesadmin.vm.QubesVM:
        klass = self._known.classes.get(name)
        if klass is not None:  # listed since it was made: no second admin.vm.List to look it up
            return qubesadmin.vm.QubesVM(self.app, name, klass=klass.value)
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

