"""The write side of the fake Qubes, for restore: what FakeQubes does when the
engine creates qubes and changes their settings, power state and volumes.

Each rule below is a qubesd behaviour seen in the lab (docs/facts.md,
tests/lab/test_restore_lab.py checks the same calls against real qubesd):
qubes get `created-by-dom0`/`audiovm-dom0`/`guivm-dom0` tags; a template cannot
change while the qube runs (even to the same value); a netvm must provide
network; a disposable template must have template_for_dispvms; unknown labels
and kernels are refused; an import needs exactly the declared size, is refused
while the qube runs, and keeps the old content as a revision; a netvm with
running clients does not shut down; a tagged qube does not start; an empty
firewall rule list is refused. Failures can be injected per call with `fail`.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from wyngq.errors import QubesError
from wyngq.model import DeviceAssignment, LiveQube, PropertyValue, QubeClass

if TYPE_CHECKING:
    from tests.fakes.qubes import FakeQube

GUARD_TAG = "backup-restore-in-progress"
LABELS = frozenset({"red", "orange", "yellow", "green", "gray", "blue", "purple", "black"})
KERNELS = frozenset({"6.12.0-fake.1"})
NEW_VOLUME_SIZE = 64 * 1024  # qubesd makes 2 GiB sparse files; small ones keep tests fast
READ_ONLY = frozenset({"qid", "uuid", "xid", "name", "klass", "dns", "ip", "ip6", "gateway", "visible_ip",
                       "start_time", "icon", "updateable", "stubdom_xid"})
BOOL = frozenset({"provides_network", "template_for_dispvms", "debug", "autostart", "include_in_backups",
                  "auto_cleanup"})
INT = frozenset({"memory", "maxmem", "vcpus", "qrexec_timeout", "shutdown_timeout", "backup_timestamp"})
VM = frozenset({"netvm", "default_dispvm", "management_dispvm", "audiovm", "guivm"})
# qubesd's admin extension refuses to set or remove these (qubes/ext/admin.py, PROHIBITED_FEATURES)
PROHIBITED_FEATURES = frozenset({"deferred-netvm-original", "preload-dispvm", "preload-dispvm-completed",
                                 "preload-dispvm-in-progress"})


_Fault = tuple[str, tuple[str, ...], str, BaseException | None]  # method, leading arguments, message, error


class RestoreOps:
    """Mixed into FakeQubes: the QubesPort methods restore uses."""

    domains: dict[str, FakeQube]
    calls: list[tuple[str, ...]]
    prefs: dict[str, tuple[bool, PropertyValue]]

    if TYPE_CHECKING:
        def _get(self, name: str) -> FakeQube: ...
        def add(self, name: str, klass: QubeClass = ..., *, pool: str | None = ...,
                data: dict[str, bytes] | None = ..., **attrs: object) -> FakeQube: ...
        def volume_path(self, name: str, kind: str) -> str: ...
        def pools(self) -> dict[str, Any]: ...

    # -- test controls ----------------------------------------------------------------
    def fail(self, method: str, *args: str, message: str = "injected failure",
             error: BaseException | None = None) -> None:
        """Make the next calls of `method` whose arguments start with `args` raise
        QubesError (or `error`: anything else a call could raise)."""
        self._faults().append((method, args, message, error))

    def start(self, name: str) -> None:
        """Start a qube as qubesd would (its netvm first); refused while tagged."""
        self._write_call("start", name)
        self._start(name)

    def _start(self, name: str) -> None:
        qube = self._get(name)
        if qube.running:  # qubesd returns at once for a running qube
            return
        if GUARD_TAG in qube.tags:
            raise QubesError(f"qube {name!r}: Restore of this domain in progress, cannot start")
        netvm = self._prop(qube, "netvm")
        if netvm:
            self._start(netvm)
        qube.running = True

    def revert(self, name: str, kind: str) -> None:
        """`qvm-volume revert`: bring back the newest revision."""
        revisions = self._revisions().get((name, kind), [])
        if not revisions:
            raise QubesError(f"qube {name!r}: no revision of {kind}")
        _, content = revisions.pop()
        self._write(name, kind, content)

    # -- reading ----------------------------------------------------------------------
    def overview(self) -> dict[str, LiveQube]:
        self.calls.append(("overview",))
        return {
            name: LiveQube(
                name=name, klass=q.klass, running=q.running, template=q.template,
                netvm=self._prop(q, "netvm"), audiovm=self._prop(q, "audiovm"), guivm=self._prop(q, "guivm"),
                provides_network=self._prop(q, "provides_network") == "True",
                template_for_dispvms=self._prop(q, "template_for_dispvms") == "True",
            )
            for name, q in sorted(self.domains.items())
        }

    def labels(self) -> frozenset[str]:
        return LABELS

    def default_pool(self) -> str | None:
        return next(iter(self.pools()))

    def kernels(self) -> frozenset[str] | None:
        return KERNELS

    def file_size(self, name: str, kind: str) -> int:
        """A volume's size as qubesd reports it: the size of its file (Wyng may
        have rewritten it in place)."""
        try:
            return os.path.getsize(self.volume_path(name, kind))
        except FileNotFoundError:
            return self._get(name).volumes[kind].size

    def revisions(self, name: str, kind: str) -> tuple[str, ...]:
        return tuple(rev for rev, _ in self._revisions().get((name, kind), []))

    # -- writing ----------------------------------------------------------------------
    def create_qube(self, name: str, klass: QubeClass, *, label: str, template: str | None, pool: str | None,
                    pools: Mapping[str, str]) -> None:
        self._write_call("create_qube", name)
        if name in self.domains or name == "dom0":
            raise QubesError(f"qube {name!r}: a qube with this name already exists")
        if label not in LABELS:
            raise QubesError(f"qube {name!r}: ProtocolError (unknown label {label!r})")
        if klass in (QubeClass.APP, QubeClass.DISP):
            self._check_template(name, klass, template)
        elif template is not None:
            raise QubesError(f"qube {name!r}: a {klass.value} has no template")
        kinds = klass.backed_up_volumes
        pool_of = {kind: pool or pools.get(kind) or self.default_pool() for kind in kinds}
        if not kinds and pools:
            pool_of = dict(pools)
        if len(set(pool_of.values())) > 1:  # FakeQubes.add takes one pool; enough for the tests
            raise QubesError(f"qube {name!r}: the fake puts all volumes in one pool")
        qube = self.add(name, klass, pool=next(iter(pool_of.values()), None), label=label, template=template,
                        include_in_backups=klass is not QubeClass.DISP)
        qube.firewall = ["action=accept"]
        qube.notes = ""
        qube.tags = {"created-by-dom0", "audiovm-dom0", "guivm-dom0"}
        if klass is QubeClass.DISP:
            qube.properties["auto_cleanup"] = PropertyValue("bool", "False")
        for kind in kinds:
            with open(self.volume_path(name, kind), "wb") as handle:
                handle.truncate(NEW_VOLUME_SIZE)
            qube.volumes[kind].size = NEW_VOLUME_SIZE

    def set_property(self, name: str, prop: str, value: str) -> None:
        self._write_call("set_property", name, prop, value)
        qube = self._get(name)
        if prop in READ_ONLY:
            raise QubesError(f"qube {name!r}: property {prop!r} on {qube.klass.value} instance cannot be set")
        if prop == "include_in_backups":  # an attribute of FakeQube, as qube() reports it
            qube.include_in_backups = value == "True"
        if prop == "label":
            if value not in LABELS:
                raise QubesError(f"qube {name!r}: no such label {value!r}")
            qube.label = value
            return
        if prop == "template":
            if qube.running:
                raise QubesError(f"qube {name!r}: Cannot change template while qube is running")
            self._check_template(name, qube.klass, value)
            qube.template = value
            return
        self._check_value(qube, prop, value)
        if prop == "template_for_dispvms" and value == "False":
            self._check_no_dispvm_users(name)
        qube.properties[prop] = PropertyValue(self._type(prop), value)
        if prop == "provides_network":
            self._servicevm(qube)

    def set_global_pref(self, prop: str, value: str) -> None:
        """qubesd refuses read-only global properties and a reference to no qube."""
        self._write_call("set_global_pref", prop, value)
        prefs = self.prefs
        if prop in ("maxmem", "no_cpus") or prop not in prefs:
            raise QubesError(f"dom0: property {prop!r} cannot be set")
        kind = prefs[prop][1].type
        if kind == "vm" and value not in ("", "dom0") and value not in self.domains:
            raise QubesError(f"dom0: no such domain: {value!r}")
        prefs[prop] = (False, PropertyValue(kind, value))

    def reset_property(self, name: str, prop: str) -> None:
        self._write_call("reset_property", name, prop)
        qube = self._get(name)
        if prop == "template":
            raise QubesError(f"qube {name!r}: Cannot unset template")
        if prop == "template_for_dispvms":
            self._check_no_dispvm_users(name)
        qube.properties.pop(prop, None)
        if prop == "provides_network":
            self._servicevm(qube)

    def set_feature(self, name: str, feature: str, value: str) -> None:
        self._write_call("set_feature", name, feature, value)
        qube = self._get(name)
        self._check_feature_change(name, feature)
        if feature == "preload-dispvm-max":
            self._check_preload(qube, value)
        qube.features[feature] = value

    def remove_feature(self, name: str, feature: str) -> None:
        self._write_call("remove_feature", name, feature)
        self._check_feature_change(name, feature)
        if self._get(name).features.pop(feature, None) is None:
            raise QubesError(f"qube {name!r}: no feature {feature!r}")

    def add_tag(self, name: str, tag: str) -> None:
        self._write_call("add_tag", name, tag)
        self._get(name).tags.add(tag)

    def remove_tag(self, name: str, tag: str) -> None:
        self._write_call("remove_tag", name, tag)
        qube = self._get(name)
        if tag not in qube.tags:
            raise QubesError(f"qube {name!r}: no tag {tag!r}")
        qube.tags.discard(tag)

    def set_firewall(self, name: str, rules: Sequence[str]) -> None:
        self._write_call("set_firewall", name)
        if not rules:
            raise QubesError(f"qube {name!r}: ProtocolError: expected payload")
        self._get(name).firewall = list(rules)

    def set_notes(self, name: str, notes: str) -> None:
        self._write_call("set_notes", name)
        if not notes:
            raise QubesError(f"qube {name!r}: ProtocolError: expected payload")
        self._get(name).notes = notes

    def assign_device(self, name: str, device: DeviceAssignment) -> None:
        self._write_call("assign_device", name, device.devclass, device.backend, device.port_id)
        qube = self._get(name)
        if device.backend != "dom0":
            self._get(device.backend)
        if device.devclass == "pci" and device.mode != "required":
            raise QubesError(f"qube {name!r}: PCI devices cannot be assigned as not required.")
        key = (device.devclass, device.backend, device.port_id)
        if any((d.devclass, d.backend, d.port_id) == key for d in qube.devices):
            raise QubesError(f"qube {name!r}: device {device.backend}:{device.port_id} is already assigned")
        qube.devices.append(device)

    def unassign_device(self, name: str, device: DeviceAssignment) -> None:
        self._write_call("unassign_device", name, device.devclass, device.backend, device.port_id)
        qube = self._get(name)
        key = (device.devclass, device.backend, device.port_id)
        kept = [d for d in qube.devices if (d.devclass, d.backend, d.port_id) != key]
        if len(kept) == len(qube.devices):
            raise QubesError(f"qube {name!r}: device {device.backend}:{device.port_id} is not assigned")
        qube.devices = kept

    def shutdown(self, name: str) -> None:
        self._write_call("shutdown", name)
        qube = self._get(name)
        if not qube.running:
            return
        clients = sorted(n for n, q in self.domains.items() if q.running and self._prop(q, "netvm") == name)
        if clients and self._prop(qube, "provides_network") == "True":
            raise QubesError(f"qube {name!r}: There are other VMs connected to this VM: {', '.join(clients)}")
        qube.running = False

    def kill(self, name: str) -> None:
        self._write_call("kill", name)
        self._get(name).running = False

    def clone_volume(self, name: str, kind: str, source: str, source_kind: str | None = None) -> None:
        """As qubesd's CloneFrom/CloneTo: the target takes the source volume's content
        and size, from any of the source's volumes; its previous content becomes a
        revision (when it keeps any)."""
        self._write_call("clone_volume", name, kind)
        qube, origin = self._get(name), self._get(source)
        source_kind = source_kind or kind
        if qube.running:
            raise QubesError(f"qube {name!r}: Domain is not powered off: {name!r}")
        if source_kind not in origin.volumes:
            raise QubesError(f"qube {source!r}: no volume {source_kind!r}")
        with open(self.volume_path(source, source_kind), "rb") as handle:
            content = handle.read()
        keep = qube.volumes[kind].revisions_to_keep
        revisions = self._revisions().setdefault((name, kind), [])
        if keep > 0:
            number = str(int(revisions[-1][0]) + 1) if revisions else "1"
            with open(self.volume_path(name, kind), "rb") as handle:
                revisions.append((number, handle.read()))
            del revisions[:-keep]
        self._write(name, kind, content)
        qube.volumes[kind].size = len(content)

    def remove_qube(self, name: str) -> None:
        self._write_call("remove_qube", name)
        qube = self._get(name)
        if qube.running:
            raise QubesError(f"qube {name!r}: Domain is not powered off: {name!r}")
        for kind in qube.volumes:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.volume_path(name, kind))
        del self.domains[name]

    def set_revisions_to_keep(self, name: str, kind: str, count: int) -> None:
        self._write_call("set_revisions_to_keep", name, kind)
        self._volume(name, kind).revisions_to_keep = count

    def resize_volume(self, name: str, kind: str, size: int) -> None:
        self._write_call("resize_volume", name, kind)
        if self._get(name).running:
            raise QubesError(f"qube {name!r}: the fake resizes only halted qubes")
        self._volume(name, kind).size = size

    # -- helpers ------------------------------------------------------------------------
    def _volume(self, name: str, kind: str) -> Any:
        qube = self._get(name)
        if kind not in qube.volumes:
            from tests.fakes.qubes import FakeVolume

            pool = next(iter(qube.volumes.values())).pool if qube.volumes else self.default_pool()
            qube.volumes[kind] = FakeVolume(pool or "", f"appvms/{name}/{kind}", 0)
        return qube.volumes[kind]

    def _faults(self) -> list[_Fault]:
        if not hasattr(self, "_fault_list"):
            self._fault_list: list[_Fault] = []
        return self._fault_list

    def _revisions(self) -> dict[tuple[str, str], list[tuple[str, bytes]]]:
        if not hasattr(self, "_revision_store"):
            self._revision_store: dict[tuple[str, str], list[tuple[str, bytes]]] = {}
        return self._revision_store

    def _read_fault(self, method: str, name: str, what: str) -> None:
        """A read injected to fail (`fail("firewall", NAME)`), as AdminQubes reports it."""
        for fault_method, fault_args, message, _error in self._faults():
            if fault_method == method and (name,)[: len(fault_args)] == fault_args:
                raise QubesError(f"qube {name!r}: cannot read its {what}: {message}")

    def _write_call(self, method: str, *args: str) -> None:
        self.calls.append(("write", method, *args))
        for fault_method, fault_args, message, error in self._faults():
            if fault_method == method and args[: len(fault_args)] == fault_args:
                if error is not None:
                    raise error
                raise QubesError(f"qube {args[0]!r}: {message}" if args else message)

    def _write(self, name: str, kind: str, content: bytes) -> None:
        path = self.volume_path(name, kind)
        with open(path, "wb") as handle:
            handle.write(content)
        os.utime(path, (time.time(), time.time()))
        self._get(name).volumes[kind].size = len(content)

    @staticmethod
    def _prop(qube: FakeQube, prop: str) -> str | None:
        if prop == "template":
            return qube.template
        value = qube.properties.get(prop)
        return value.value or None if value is not None else None

    @staticmethod
    def _type(prop: str) -> str:
        return "bool" if prop in BOOL else "int" if prop in INT else "vm" if prop in VM else "str"

    def _check_value(self, qube: FakeQube, prop: str, value: str) -> None:
        name = qube.name
        kind = self._type(prop)
        if kind == "bool" and value not in ("True", "False"):
            raise QubesError(f"qube {name!r}: invalid boolean value {value!r}")
        if kind == "int" and not value.lstrip("-").isdigit():
            raise QubesError(f"qube {name!r}: invalid integer value {value!r}")
        if prop == "kernel" and value and value not in KERNELS:
            raise QubesError(f"qube {name!r}: Kernel {value!r} not installed")
        if kind != "vm" or not value:
            return
        if value != "dom0" and value not in self.domains:
            raise QubesError(f"qube {name!r}: no such domain {value!r}")
        target = self.domains.get(value)
        if prop == "netvm":
            if target is None or self._prop(target, "provides_network") != "True":
                raise QubesError(f"qube {name!r}: The {value} qube does not provide network")
            hop: str | None = value
            while hop is not None:
                if hop == name:
                    raise QubesError(f"qube {name!r}: Loops in network are unsupported")
                hop = self._prop(self.domains[hop], "netvm") if hop in self.domains else None
        if prop in ("default_dispvm", "management_dispvm") and (
                target is None or self._prop(target, "template_for_dispvms") != "True"):
            raise QubesError(f"qube {name!r}: {prop} {value!r} has template_for_dispvms set to False")

    def _check_template(self, name: str, klass: QubeClass, template: str | None) -> None:
        target = self.domains.get(template or "")
        if target is None:
            raise QubesError(f"qube {name!r}: no template {template!r}")
        if klass is QubeClass.APP and target.klass is not QubeClass.TEMPLATE:
            raise QubesError(f"qube {name!r}: wrong VM class: {template} is not a TemplateVM")
        if klass is QubeClass.DISP and self._prop(target, "template_for_dispvms") != "True":
            raise QubesError(f"qube {name!r}: {template} is not a disposable template")

    def _check_no_dispvm_users(self, name: str) -> None:
        users = sorted(n for n, q in self.domains.items() if n != name and (
            (q.klass is QubeClass.DISP and q.template == name) or self._prop(q, "default_dispvm") == name))
        if users:
            raise QubesError(f"qube {name!r}: Cannot change template_for_dispvms to False while it is in use")

    @staticmethod
    def _check_feature_change(name: str, feature: str) -> None:
        if feature in PROHIBITED_FEATURES:
            raise QubesError(f"qube {name!r}: PermissionDenied: changing this feature is prohibited by "
                             "qubes.ext.admin.AdminExtension")

    def _check_preload(self, qube: FakeQube, value: str) -> None:
        """As qubesd's disposable-template mixin: the qube or its template must say it
        supports qrexec and the services preloading waits for; the value is a number."""
        template = self.domains.get(qube.template or "")

        def has(feature: str) -> bool:
            found = qube.features.get(feature, template.features.get(feature) if template else None)
            return bool(found) and found not in ("0", "False")

        if not has("qrexec"):
            raise QubesError(f"qube {qube.name!r}: Qube does not support qrexec")
        missing = [s for s in ("qubes.WaitForRunningSystem", "qubes.WaitForSession") if not has("supported-rpc." + s)]
        if missing:
            raise QubesError(f"qube {qube.name!r}: Qube does not support the RPC(s) '{', '.join(missing)}'")
        if not (value or "0").isdigit():
            raise QubesError(f"qube {qube.name!r}: Invalid preload-dispvm-max value: not a digit")

    def _servicevm(self, qube: FakeQube) -> None:
        if self._prop(qube, "provides_network") == "True":
            qube.features["servicevm"] = "1"
        else:
            qube.features.pop("servicevm", None)
