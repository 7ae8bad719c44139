"""One instance of every public event, and results of every action, for the contract tests."""

from __future__ import annotations

from wyngq.backup import BackupResult, PlannedVolume, QubeOutcome
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
from wyngq.contract.jobs import JobInfo, ProfileJobs, StatusResult
from wyngq.contract.maintenance import DeletePlanned, MonitorPlanned, PrunePlanned, VerifyPlanned
from wyngq.contract.restore import (
    Dom0RestorePlanned,
    OpChange,
    PlannedRestoreQube,
    ProblemReport,
    RestoredQube,
    RestoredVolume,
    RestorePlanned,
    RestoreReport,
    StepReport,
)
from wyngq.contract.results import VersionResult
from wyngq.maintenance import PruneResult, QubeCheck, VerifyResult
from wyngq.model import PoolDriver

EVENTS = (
    BackupPlanned(("work",), ("appvms/work/private.img",), ("work",), False, {"appvms/work/private.img": 4096}),
    ShutdownPlanned(("work", "sys-net"), dry_run=True),
    VerifyPlanned("20261126-151007", ("work",)),
    PrunePlanned(True, {"work": ("20261126-151007",)}),
    DeletePlanned("work", ("appvms/work/private.img",)),
    MonitorPlanned(()),
    Opening("file:/backups/laptop"),
    VolumeProgress("appvms/work/private.img", "started", qube="work", size=4096),
    VolumeProgress("appvms/work/private.img", "progress", percent=55),
    StepStarted("arch-check"),
    StepStarted("settings", qube="work", operations=3),
    RestorePlanned("20261126-151007", ("20261126-151007",), True,
                   (PlannedRestoreQube("work", "work-2", "rename", None),), problems=0, refused=False),
    Dom0RestorePlanned("20261126-151007", ("home",), {"home": "/home/user/restored-home-20261126-151007"}),
    Dom0Streamed("home", "wyng-dom0-home", 12, 300, 10240),
    QubeShutDown("work"),
    QubeStarted("work"),
    QubeFailed("work", "firewall", "qubesd refused the rule"),
    JobAccepted("20261126-151007-0123abcd", "laptop", "backup"),
)

JOB = JobInfo("20261126-151007-0123abcd", "laptop", "backup", "mgmt", ("work",), 1764169807.0, "finished",
              1764169900.5, 0, "ok", None, "20261126-151007", False)

BACKUP = BackupResult(
    session=None, dry_run=True,
    qubes=(QubeOutcome("work", True, ("appvms/work/private.img",)), QubeOutcome("vault", False, error="no pool")),
    volumes=(PlannedVolume("work", "private", "/var/lib/qubes", "appvms/work/private.img",
                           "appvms/work/private.img", PoolDriver.FILE_REFLINK, 4096, True),),
)

RESTORE = RestoreReport(
    session="20261126-151007", sessions=("20261126-151007",), dry_run=False, refused=False, changed=True,
    summary="restored from session 20261126-151007: work", settings_source="20261126-151007",
    qubes=(RestoredQube("work", "work", "AppVM", "replace", "20261126-151007",
                        (ProblemReport("p", "m", "r", False),),
                        (RestoredVolume("private", "appvms/work/private.img", 4096, "varlibqubes", True),),
                        ok=True, changes=4, revisions=("work:private",)),),
    warnings=(), menus=(), steps=(StepReport("settings", "work", (OpChange("set", "label", "red", "blue"),)),),
)

RESULTS = {
    "backup": BACKUP,
    "restore": RESTORE,
    "verify": VerifyResult("20261126-151007", (QubeCheck("work", True, ("appvms/work/private.img",)),), "ok"),
    "prune": PruneResult(False, {"work": ("20261126-151007",)}, ("20261127-151007",)),
    "status": ProfileJobs("laptop", (JOB,)),
    "version": VersionResult("1.2.3"),
}
STATUS = StatusResult({"laptop": (JOB,)})
