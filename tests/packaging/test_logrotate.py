"""The audit log's logrotate snippet: it names the file the service writes, and
logrotate (where installed) rotates it."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from wyngq.rpc import audit
from wyngq.rpc.audit import AuditEntry, AuditLog

ROOT = Path(__file__).resolve().parents[2]
SNIPPET = ROOT / "wyngq/data/logrotate/wyng-util-qubes"


def test_the_snippet_rotates_the_audit_log_the_service_writes() -> None:
    text = SNIPPET.read_text()
    assert f"{audit.LOG_DIR}/{audit.AUDIT_FILE} {{" in text
    assert "copytruncate" not in text  # each line opens the file anew: moving it away is enough


def test_logrotate_rotates_it_and_the_next_line_starts_a_new_file(tmp_path: Path) -> None:
    logrotate = shutil.which("logrotate") or ("/usr/sbin/logrotate" if os.path.exists("/usr/sbin/logrotate") else None)
    if logrotate is None:
        pytest.skip("logrotate is not installed")
    log_dir = tmp_path / "log"
    AuditLog(str(log_dir)).write(AuditEntry(caller="mgmt", action="list"))
    config = tmp_path / "wyng-util-qubes"
    config.write_text(SNIPPET.read_text().replace(audit.LOG_DIR, str(log_dir)).replace("create 0640 root root",
                                                                                       "create 0640"))
    done = subprocess.run([logrotate, "--force", "--state", str(tmp_path / "state"), str(config)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert (log_dir / "audit.log.1").exists()
    AuditLog(str(log_dir)).write(AuditEntry(caller="mgmt", action="status"))
    assert '"action": "status"' in (log_dir / "audit.log").read_text()
