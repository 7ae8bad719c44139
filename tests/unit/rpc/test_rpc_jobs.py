"""wyngq.rpc.jobs and wyngq.rpc.audit: job records and the audit log, on disk."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from wyngq.contract.serialize import to_json
from wyngq.rpc import jobs
from wyngq.rpc.audit import AuditEntry, AuditLog
from wyngq.rpc.jobs import JobStore, job_infos
from wyngq.rpc.request import JOB_ID


def test_a_job_is_running_then_finished(tmp_path: Path) -> None:
    store = JobStore(str(tmp_path))
    record = store.start("laptop", "backup", "mgmt", ("work",))
    assert JOB_ID.fullmatch(record.id)
    (shown,) = store.jobs("laptop")
    assert shown.state == "running" and shown.pid == os.getpid()

    store.finish(record, exit_code=0, code="ok", session="20250102-030405", qubes=("work", "vault"))

    (shown,) = store.jobs("laptop")
    assert shown.state == "finished" and shown.code == "ok" and shown.session == "20250102-030405"
    assert shown.qubes == ("work", "vault") and shown.finished is not None
    assert store.job("laptop", record.id) == shown
    assert oct(os.stat(tmp_path / "jobs" / "laptop").st_mode & 0o777) == "0o700"


def test_a_running_job_whose_process_is_gone_is_lost(tmp_path: Path) -> None:
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(child.stdout)
    store = JobStore(str(tmp_path))
    record = store.start("laptop", "restore", "mgmt", ("work",))
    path = tmp_path / "jobs" / "laptop" / f"{record.id}.json"
    data = json.loads(path.read_text())
    data["pid"] = dead_pid
    path.write_text(json.dumps(data))

    (shown,) = store.jobs("laptop")
    assert shown.state == "lost"
    assert shown.message == "the job's process ended without recording an outcome"


def test_a_reused_pid_does_not_make_a_job_look_alive(tmp_path: Path) -> None:
    store = JobStore(str(tmp_path))
    record = store.start("laptop", "backup", "mgmt", ())
    path = tmp_path / "jobs" / "laptop" / f"{record.id}.json"
    data = json.loads(path.read_text())
    data["pid_start"] = "1"  # this pid, but a process that started at another time
    path.write_text(json.dumps(data))
    assert store.jobs("laptop")[0].state == "lost"


def test_only_the_newest_finished_jobs_are_kept(tmp_path: Path) -> None:
    store = JobStore(str(tmp_path))
    for _ in range(jobs.KEEP + 5):
        store.finish(store.start("laptop", "backup", "mgmt", ()), exit_code=0, code="ok")
    store.start("laptop", "backup", "mgmt", ())
    assert len(os.listdir(tmp_path / "jobs" / "laptop")) == jobs.KEEP + 1
    assert len(store.jobs("laptop")) == jobs.SHOWN
    assert store.jobs("other") == []


def test_unreadable_records_are_skipped(tmp_path: Path) -> None:
    store = JobStore(str(tmp_path))
    store.start("laptop", "backup", "mgmt", ())
    (tmp_path / "jobs" / "laptop" / "20250101-000000-00000000.json").write_text("{not json")
    assert len(store.jobs("laptop")) == 1


def test_job_infos_leave_out_the_bookkeeping(tmp_path: Path) -> None:
    store = JobStore(str(tmp_path))
    (info,) = job_infos([store.start("laptop", "backup", "mgmt", ("work",))])
    data = to_json(info)
    assert isinstance(data, dict)
    assert "pid" not in data and "pid_start" not in data and data["qubes"] == ["work"]


def test_audit_lines_are_appended_as_json(tmp_path: Path) -> None:
    log = AuditLog(str(tmp_path / "log"))
    log.write(AuditEntry("mgmt", "backup", "laptop", ("work",), "ok", 0, "20250102-030405-0123abcd"))
    log.write(AuditEntry("mgmt", "unknown"))
    lines = [json.loads(line) for line in (tmp_path / "log" / "audit.log").read_text().splitlines()]
    assert [(x["action"], x["outcome"], x["exit_code"]) for x in lines] == [("backup", "ok", 0),
                                                                          ("unknown", "internal", 1)]
    assert set(lines[0]) == {"time", "caller", "action", "profile", "qubes", "outcome", "exit_code", "job",
                             "caller_gone"}


def test_an_audit_log_that_cannot_be_written_does_not_fail_the_call(tmp_path: Path) -> None:
    (tmp_path / "log").write_text("a file where the directory should be")
    AuditLog(str(tmp_path / "log")).write(AuditEntry("mgmt", "list"))
