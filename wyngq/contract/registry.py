"""Which dataclass is the data of each action's result (docs/json.md).

The engine's result dataclasses are imported here only when asked for (by the
schema generator, the documentation test and the client), never at import.
"""

from __future__ import annotations

from wyngq.contract.results import ProfileJobs, RestoreReport, StatusResult, VersionResult


def result_types() -> dict[str, tuple[type, ...]]:
    """Each action and the dataclasses its result's data can be: restore's are
    the restore of qubes, of dom0 items, or of both, status's dom0's (every profile) or the
    qrexec service's (one profile)."""
    from wyngq.backup import BackupResult
    from wyngq.create import CreateResult
    from wyngq.dom0.restore import Dom0RestoreResult
    from wyngq.listing import ListResult
    from wyngq.machine import MachineReport
    from wyngq.maintenance import DeleteResult, PruneResult, VerifyResult
    from wyngq.monitor import MonitorResult

    return {
        "create": (CreateResult,),
        "backup": (BackupResult,),
        "restore": (RestoreReport, Dom0RestoreResult, MachineReport),
        "verify": (VerifyResult,),
        "prune": (PruneResult,),
        "monitor": (MonitorResult,),
        "delete": (DeleteResult,),
        "list": (ListResult,),
        "status": (StatusResult, ProfileJobs),
        "version": (VersionResult,),
    }
