"""Back up qubes: select (which qubes), plan (pure: what will be sent), then run
one Wyng send for everything and confirm what it stored.

- `model`: the request, the plan and the result;
- `select`: the request from the caller's choices and the profile, and the qubes it selects;
- `plan`: the volumes to send and their archive names, refusals, outcomes, a dry run's result;
- `session`: the session a send makes, confirmed from Wyng's output or its catalogue;
- `shutdown`: `--shutdown`, stopping running qubes for the backup and starting them again;
- `run`: the whole backup, from the selection to the qubes' backup timestamps.

The public names are re-exported here: `from wyngq.backup import run_backup`.
"""

from wyngq.backup.model import TAG, BackupPlan, BackupRequest, BackupResult, PlannedVolume, QubeOutcome
from wyngq.backup.plan import check_live_volumes, dry_run_result, plan_backup
from wyngq.backup.run import read_settings, run_backup
from wyngq.backup.select import dom0_request, request_for_profile, select_qubes
from wyngq.backup.session import new_session, sent_volumes, session_id_now

__all__ = [
    "TAG",
    "BackupPlan",
    "BackupRequest",
    "BackupResult",
    "PlannedVolume",
    "QubeOutcome",
    "check_live_volumes",
    "dom0_request",
    "dry_run_result",
    "new_session",
    "plan_backup",
    "read_settings",
    "request_for_profile",
    "run_backup",
    "select_qubes",
    "sent_volumes",
    "session_id_now",
]
