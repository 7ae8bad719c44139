"""The Qubes port and its adapters.

`connect()` returns the real adapter (the only code that imports qubesadmin);
tests give the engine an in-memory fake with the same methods instead.
"""

from __future__ import annotations

from wyngq.errors import ConfigError
from wyngq.qubes.port import QubesPort

__all__ = ["QubesPort", "connect"]


def connect() -> QubesPort:
    """Return a QubesPort talking to qubesd through qubesadmin."""
    try:
        from wyngq.qubes.admin import AdminQubes
    except ImportError as err:
        raise ConfigError(
            "the qubesadmin Python package is not available",
            hint="run wyng-util-qubes in dom0, where python3-qubesadmin is installed",
        ) from err
    return AdminQubes()
