"""The audit log: one line per qrexec call, in dom0.

`LOG_DIR/audit.log`, one JSON object per line: time, caller, action, profile,
qubes, outcome (the result's `code`), exit code, job id, and whether the
caller was still there for the result. Only values the service trusts are
written: the caller and action come from qrexec, the profile and qubes only
once the request parser accepted them. Never a passphrase, never the raw
request. A line that cannot be written is reported on stderr (dom0's qrexec
log) and does not fail the call.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

LOG_DIR = "/var/log/wyng-util-qubes"
AUDIT_FILE = "audit.log"

log = logging.getLogger(__name__)


@dataclass
class AuditEntry:
    """Filled in as the call goes; written once at its end."""

    caller: str
    action: str
    profile: str | None = None
    qubes: Sequence[str] = field(default_factory=tuple)
    outcome: str = "internal"
    exit_code: int = 1
    job: str | None = None
    caller_gone: bool = False

    def line(self, now: float | None = None) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(now))
        document = {
            "time": stamp,
            "caller": self.caller,
            "action": self.action,
            "profile": self.profile,
            "qubes": list(self.qubes),
            "outcome": self.outcome,
            "exit_code": self.exit_code,
            "job": self.job,
            "caller_gone": self.caller_gone,
        }
        return json.dumps(document, ensure_ascii=True) + "\n"


class AuditLog:
    def __init__(self, log_dir: str = LOG_DIR) -> None:
        self.path = os.path.join(log_dir, AUDIT_FILE)

    def write(self, entry: AuditEntry) -> None:
        """Append one line (a single write on an O_APPEND file, so lines of
        concurrent calls never interleave)."""
        data = entry.line().encode("ascii")
        try:
            os.makedirs(os.path.dirname(self.path), mode=0o750, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
        except OSError as err:
            log.error("cannot write the audit log %s: %s; the line was: %s", self.path, err, data.decode().strip())
