import enum
from typing import Any

from qubesadmin.vm import QubesVM

class AssignmentMode(enum.Enum):
    MANUAL = "manual"
    ASK = "ask-to-attach"
    AUTO = "auto-attach"
    REQUIRED = "required"

class Port:
    def __init__(self, backend_domain: QubesVM | None, port_id: str, devclass: str) -> None: ...

class VirtualDevice:
    def __init__(self, port: Port, device_id: str | None = ...) -> None: ...

class DeviceAssignment:
    def __init__(
        self,
        device: VirtualDevice,
        frontend_domain: QubesVM | None = ...,
        options: dict[str, object] | None = ...,
        mode: str | AssignmentMode = ...,
    ) -> None: ...
    mode: AssignmentMode
    options: dict[str, Any]
    backend_domain: QubesVM | None
    backend_name: str
    port_id: str
    devclass: str
    device_id: str
    frontend_domain: QubesVM | None
    @classmethod
    def new(
        cls,
        backend_domain: QubesVM,
        port_id: str,
        devclass: str,
        device_id: str | None = ...,
        *,
        frontend_domain: QubesVM | None = ...,
        options: dict[str, object] | None = ...,
        mode: str | AssignmentMode = ...,
    ) -> DeviceAssignment: ...
