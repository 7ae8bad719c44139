"""Every public event, and which dataclass is the data of each action's result
(docs/json.md).

Both are imported here only when asked for (by the schema generator, the
decoder, the documentation test and the client), never at import: a run
defines only the dataclasses of its own action.
"""

from __future__ import annotations


def public_events() -> tuple[type, ...]:
    """Every event that is written as JSON, in the order the decoder tries them."""
    from wyngq.contract.events import (
        BackupPlanned,
        Dom0Streamed,
        JobAccepted,
        Opening,
        QubeFailed,
        QubeShutDown,
        QubeStarted,
        ShutdownPlanned,
        StepStarted,
        VolumeProgress,
    )
    from wyngq.contract.maintenance import DeletePlanned, MonitorPlanned, PrunePlanned, VerifyPlanned
    from wyngq.contract.restore import Dom0RestorePlanned, RestorePlanned

    return (
        BackupPlanned, ShutdownPlanned, VerifyPlanned, PrunePlanned, DeletePlanned, MonitorPlanned, Opening,
        VolumeProgress, StepStarted, RestorePlanned, Dom0RestorePlanned, Dom0Streamed, QubeShutDown, QubeStarted,
        QubeFailed, JobAccepted,
    )


def result_types() -> dict[str, tuple[type, ...]]:
    """Each action and the dataclasses its result's data can be: restore's are
    the restore of qubes, of dom0 items, or of both, status's dom0's (every profile) or the
    qrexec service's (one profile)."""
    from wyngq.backup import BackupResult
    from wyngq.contract.jobs import ProfileJobs, StatusResult
    from wyngq.contract.restore import RestoreReport
    from wyngq.contract.results import VersionResult
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
