# Qubes 4.2's device API (qubesadmin.devices), the slice wyngq uses.
from typing import Any

from qubesadmin.vm import QubesVM

class DeviceAssignment:
    backend_domain: QubesVM
    ident: str
    options: dict[str, Any]
    persistent: bool
    def __init__(
        self,
        backend_domain: QubesVM,
        ident: str,
        options: dict[str, Any] | None = ...,
        persistent: bool = ...,
        bus: str | None = ...,
    ) -> None: ...
