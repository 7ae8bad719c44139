"""Device assignments through qubesadmin, for the Admin API adapter (wyngq.qubes.admin).

Qubes 4.2 and 4.3 differ here: 4.3 assignments carry a mode and a device
identity, which are read and written when the library offers them; 4.2 has
persistent attachments with options only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import qubesadmin

from wyngq.model import DeviceAssignment


def assigned(vm: qubesadmin.vm.QubesVM, devclasses: Iterable[str]) -> tuple[DeviceAssignment, ...]:
    """The qube's persistent device assignments of each class, sorted."""
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


Lookup = Callable[[str], qubesadmin.vm.QubesVM]  # a qube by name (its backend), QubesError if none


def assign(vm: qubesadmin.vm.QubesVM, lookup: Lookup, device: DeviceAssignment) -> None:
    """Assign persistently: 4.3 keeps mode and device identity, 4.2 a persistent attach."""
    collection = vm.devices[device.devclass]
    backend = lookup(device.backend)
    if hasattr(collection, "get_assigned_devices"):  # Qubes 4.3 and later
        collection.assign(_assignment_43(backend, device))
    else:  # Qubes 4.2: a persistent attachment; no mode, no device identity
        import qubesadmin.devices

        collection.attach(qubesadmin.devices.DeviceAssignment(
            backend, device.port_id, options=dict(device.options), persistent=True))


def unassign(vm: qubesadmin.vm.QubesVM, lookup: Lookup, device: DeviceAssignment) -> None:
    collection = vm.devices[device.devclass]
    if hasattr(collection, "get_assigned_devices"):
        collection.unassign(_assignment_43(lookup(device.backend), device))
    else:
        for assignment in collection.assignments(persistent=True):
            if assignment.backend_domain.name == device.backend and assignment.ident == device.port_id:
                collection.detach(assignment)


def _assignment_43(backend: qubesadmin.vm.QubesVM, device: DeviceAssignment) -> object:
    from qubesadmin.device_protocol import DeviceAssignment as Assignment
    from qubesadmin.device_protocol import Port, VirtualDevice

    port = Port(backend, device.port_id, device.devclass)
    return Assignment(VirtualDevice(port, device.device_id or "*"), mode=device.mode, options=dict(device.options))
