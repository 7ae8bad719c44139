"""dom0's global qube preferences that wyngq knows (what `qubes-prefs` shows),
and what a backup records of them. Restoring them is wyngq.restore.prefs; this
module is apart so that a backup loads none of the restore's code.
"""

from __future__ import annotations

from collections.abc import Mapping

from wyngq.model import PropertyValue

# The global properties a restore may write, with their qubesd type. Read-only
# ones (maxmem, no_cpus) and anything unknown are never written.
GLOBAL_PREFS: Mapping[str, str] = {
    "clockvm": "vm", "updatevm": "vm", "default_template": "vm", "default_netvm": "vm", "default_dispvm": "vm",
    "default_guivm": "vm", "default_audiovm": "vm", "management_dispvm": "vm",
    "default_kernel": "str", "default_pool": "str", "default_pool_private": "str", "default_pool_root": "str",
    "default_pool_volatile": "str", "default_pool_kernel": "str",
    "default_qrexec_timeout": "int", "default_shutdown_timeout": "int", "stats_interval": "int",
    "check_updates_vm": "bool",
}
MAX_VALUE = 256


def capture(every: Mapping[str, tuple[bool, PropertyValue]]) -> dict[str, PropertyValue]:
    """The preferences a backup records: those of GLOBAL_PREFS set explicitly."""
    return {name: value for name, (is_default, value) in sorted(every.items())
            if name in GLOBAL_PREFS and not is_default}
