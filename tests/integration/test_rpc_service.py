"""CI tier: the qrexec service in-process (serve()) against the fake dom0 and the
fake `wyng` run as real subprocesses: every action, every refusal, the audit
line, the job records, a caller that disconnects mid-backup, and hostile
requests that never reach Wyng's command line."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest

from tests import contract
from tests.conftest import FakeWyngFactory
from tests.integration.restore_world import QUBES
from tests.integration.rpc_world import ALL_ACTIONS, PROFILE, Reply, RpcWorld, make_rpc_world
from wyngq.lock import operation_lock
from wyngq.model import PropertyValue
from wyngq.rpc import service
from wyngq.rpc.service import CallerStream, SignalGate

LAPTOP = {"profile": "laptop"}


@pytest.fixture
def rpc(tmp_path: Path, fake_wyng: FakeWyngFactory) -> RpcWorld:
    return make_rpc_world(tmp_path, fake_wyng)


class Unreadable(io.BytesIO):
    def read(self, size: int | None = -1) -> bytes:
        raise AssertionError("stdin must not be read")


# -- the actions ----------------------------------------------------------------------
def test_backup_streams_a_job_event_progress_and_the_result_last(rpc: RpcWorld) -> None:
    reply = rpc.call("backup", {**LAPTOP, "qubes": ["work", "vault"]})

    assert reply.status == 0
    job = reply.lines[0]
    assert job["type"] == "job" and job["action"] == "backup" and job["profile"] == "laptop"
    assert reply.events("plan")[0]["qubes"] == ["vault", "work"]
    assert {e["qube"] for e in reply.events("volume") if "qube" in e} == {"vault", "work"}
    result = reply.result
    assert result["ok"] is True and result["code"] == "ok" and result["job"] == job["id"]
    assert [q["name"] for q in result["qubes"]] == ["vault", "work"]
    assert result["session"] in rpc.dom0.wyng().catalog().sessions()
    assert rpc.dom0.qubes.domains["work"].backup_timestamp is not None


def test_backup_without_qubes_backs_up_the_profile_selection(rpc: RpcWorld) -> None:
    reply = rpc.call("backup", LAPTOP)

    assert reply.status == 0, reply.result
    assert [q["name"] for q in reply.result["qubes"]] == sorted(
        ["fedora", "dvm", "sys-net", "sys-fw", "work", "vault", "disp1"]
    )
    (job,) = rpc.jobs()
    assert job.qubes == tuple(sorted(["fedora", "dvm", "sys-net", "sys-fw", "work", "vault", "disp1"]))


def test_dry_run_backup_stores_nothing(rpc: RpcWorld) -> None:
    reply = rpc.call("backup", {**LAPTOP, "qubes": ["work"], "dry_run": True})
    assert reply.status == 0 and reply.result["dry_run"] is True
    assert rpc.dom0.wyng().catalog().sessions() == []


def test_list_verify_prune_status_after_a_backup(rpc: RpcWorld) -> None:
    session = rpc.call("backup", {**LAPTOP, "qubes": ["work"]}).result["session"]

    listed = rpc.call("list", LAPTOP)
    assert listed.status == 0 and listed.result["qubes"] == {"work": [session]}
    assert listed.events("job") == []  # quick read-only calls are not jobs

    one = rpc.call("list", {**LAPTOP, "session": session})
    assert [q["name"] for q in one.result["session_qubes"]] == ["work"]

    verified = rpc.call("verify", {**LAPTOP, "qubes": ["work"]})
    assert verified.status == 0 and verified.result["session"] == session
    assert verified.result["qubes"][0]["ok"] is True and verified.result["settings"] == "ok"

    pruned = rpc.call("prune", {**LAPTOP, "session": session, "dry_run": True})
    # the only session is every volume's newest: Wyng would prune nothing, so it is refused with the reason
    assert pruned.status == 2 and pruned.result["code"] == "usage" and "newest session" in pruned.result["message"]

    status = rpc.call("status", LAPTOP)
    assert status.status == 0
    jobs = status.result["jobs"]
    assert [j["action"] for j in jobs] == ["prune", "verify", "backup"]
    assert jobs[2]["session"] == session and jobs[2]["code"] == "ok" and jobs[2]["state"] == "finished"
    assert all("pid" not in j for j in jobs)

    one_job = rpc.call("status", {**LAPTOP, "job": jobs[2]["id"]})
    assert [j["id"] for j in one_job.result["jobs"]] == [jobs[2]["id"]]
    missing = rpc.call("status", {**LAPTOP, "job": "20000101-000000-00000000"})
    assert missing.status == 2 and missing.result["message"] == "no job 20000101-000000-00000000 for profile 'laptop'"


def test_restore_of_a_removed_qube(rpc: RpcWorld) -> None:
    rpc.dom0.without_power("work")  # the archive is unencrypted (the profile allows it)
    before = rpc.dom0.state(("work",))
    rpc.call("backup", {**LAPTOP, "qubes": ["fedora", "sys-net", "sys-fw", "dvm", "work"]})
    rpc.dom0.remove("work")

    reply = rpc.call("restore", {**LAPTOP, "qubes": ["work"]})

    assert reply.status == 0, reply.result
    assert reply.result["qubes"][0]["action"] == "create" and reply.result["qubes"][0]["ok"] is True
    assert rpc.dom0.state(("work",)) == before
    assert rpc.jobs()[0].action == "restore" and rpc.jobs()[0].code == "ok"


def test_restore_conflict_policies_and_rename(rpc: RpcWorld) -> None:
    rpc.dom0.without_power("work")  # the archive is unencrypted (the profile allows it)
    rpc.call("backup", {**LAPTOP, "qubes": ["fedora", "sys-net", "sys-fw", "dvm", "work"]})

    refused = rpc.call("restore", {**LAPTOP, "qubes": ["work"]})
    assert refused.status == 6 and refused.result["refused"] is True
    assert "work" in rpc.dom0.qubes.domains

    minted = rpc.call("restore", {**LAPTOP, "qubes": ["work"], "on_conflict": "rename",
                                  "rename": {"work": "work-copy"}})
    assert minted.status == 4 and minted.result["code"] == "not_permitted"
    assert "work-copy" not in rpc.dom0.qubes.domains

    renamed = rpc.call("restore", {**LAPTOP, "qubes": ["work"], "on_conflict": "rename"})
    assert renamed.status == 0, renamed.result
    assert renamed.result["qubes"][0]["target"] == "work-restored"
    assert rpc.dom0.qubes.read_volume("work-restored", "private") == rpc.dom0.qubes.read_volume("work", "private")

    rpc.profile(PROFILE.replace('"disp1"]', '"disp1", "work-copy"]')
                .format(dest=rpc.dom0.dest, wyng=rpc.dom0.executable, actions=ALL_ACTIONS))
    named = rpc.call("restore", {**LAPTOP, "qubes": ["work"], "on_conflict": "rename",
                                 "rename": {"work": "work-copy"}})
    assert named.status == 0, named.result
    assert named.result["qubes"][0]["target"] == "work-copy"


def test_restore_all_covers_the_profile_only_and_prefs_need_the_rule(rpc: RpcWorld) -> None:
    prefs = rpc.dom0.qubes.prefs
    rpc.dom0.without_power(*QUBES)  # the archive is not encrypted: plain settings only
    rpc.call("backup", {**LAPTOP, "qubes": ["fedora", "sys-net", "sys-fw", "dvm", "work"]})
    prefs["clockvm"] = (False, PropertyValue("vm", "sys-net"))
    prefs["default_shutdown_timeout"] = (False, PropertyValue("int", "90"))
    newest = rpc.call("backup", {**LAPTOP, "qubes": ["vault"]}).result["session"]
    for name in ("work", "vault"):
        rpc.dom0.remove(name)
    prefs["clockvm"] = (False, PropertyValue("vm", ""))
    prefs["default_shutdown_timeout"] = (True, PropertyValue("int", "60"))
    narrow = PROFILE.replace("shutdown = true", 'shutdown = true\nqubes = ["work", "fedora"]')
    rpc.profile(narrow.format(dest=rpc.dom0.dest, wyng=rpc.dom0.executable, actions=ALL_ACTIONS))

    refused = rpc.call("restore", {**LAPTOP, "all": True, "prefs": True, "on_conflict": "skip"})
    assert refused.status == 4 and refused.result["code"] == "not_permitted"

    reply = rpc.call("restore", {**LAPTOP, "all": True, "on_conflict": "skip"})

    assert reply.status == 0, reply.result
    assert {q["name"]: q["action"] for q in reply.result["qubes"]} == {"work": "create", "fedora": "skip"}
    assert "vault" not in rpc.dom0.qubes.domains

    rpc.profile(narrow.replace("shutdown = true", "shutdown = true\nprefs = true")
                .format(dest=rpc.dom0.dest, wyng=rpc.dom0.executable, actions=ALL_ACTIONS))
    # this archive is not encrypted: a preference that gives power (dom0's clock) is refused over qrexec
    untrusted = rpc.call("restore", {**LAPTOP, "all": True, "prefs": True, "on_conflict": "skip"})
    assert untrusted.status == 6 and untrusted.result["code"] == "untrusted_settings", untrusted.result
    assert prefs["clockvm"][1].value == "" and prefs["default_shutdown_timeout"] == (True, PropertyValue("int", "60"))

    prefs["clockvm"] = (False, PropertyValue("vm", "sys-net"))  # as in the backup: nothing to write
    with_prefs = rpc.call("restore", {**LAPTOP, "all": True, "prefs": True, "on_conflict": "skip"})
    assert with_prefs.status == 0, with_prefs.result
    assert with_prefs.result["prefs"]["changes"] == [
        {"key": "default_shutdown_timeout", "old": "60", "new": "90", "ok": True}]
    assert prefs["default_shutdown_timeout"][1].value == "90"
    # the preferences come from the newest session, though none of its qubes is restored:
    # the result's session says so (Salt pins its apply with it)
    assert with_prefs.result["session"] == newest and newest not in with_prefs.result["sessions"]


def test_explicit_rename_onto_an_existing_qube_is_refused(rpc: RpcWorld) -> None:
    rpc.call("backup", {**LAPTOP, "qubes": ["fedora", "sys-net", "sys-fw", "dvm", "work"]})
    before = rpc.dom0.qubes.read_volume("vault", "private")

    reply = rpc.call("restore", {**LAPTOP, "qubes": ["work"], "on_conflict": "rename", "rename": {"work": "vault"}})

    assert reply.status == 6 and reply.result["refused"] is True
    assert rpc.dom0.qubes.read_volume("vault", "private") == before


def test_restore_from_an_unauthenticated_archive_needs_the_profile_to_allow_it(rpc: RpcWorld) -> None:
    rpc.call("backup", {**LAPTOP, "qubes": ["work"]})
    rpc.profile(PROFILE.replace("allow_unauthenticated_restore = true", "allow_unauthenticated_restore = false")
                .format(dest=rpc.dom0.dest, wyng=rpc.dom0.executable, actions=ALL_ACTIONS))
    rpc.dom0.remove("work")

    reply = rpc.call("restore", {**LAPTOP, "qubes": ["work"]})

    assert reply.status == 4
    assert reply.result["code"] == "unauthenticated_archive"
    assert reply.result["message"] == (
        "the archive is not authenticated (not encrypted): this restore requires an authenticated one"
    )
    assert "allow_unauthenticated_restore" in reply.result["hint"]
    assert "work" not in rpc.dom0.qubes.domains
    assert not any("receive" in c["argv"] for c in rpc.wyng_calls())


# -- refusals before any work ---------------------------------------------------------------
def test_unknown_action_is_refused_before_reading_stdin(rpc: RpcWorld) -> None:
    out = io.BytesIO()
    from wyngq.rpc.service import serve

    status = serve(rpc.config, "mgmt", "delete", Unreadable(), out, qubes_factory=lambda: pytest.fail("no Qubes"))

    (line,) = [json.loads(x) for x in out.getvalue().decode().splitlines()]
    assert status == 2
    assert line["type"] == "result" and line["code"] == "bad_request" and line["action"] == "unknown"
    assert line["message"] == "unknown action 'delete'"
    assert rpc.wyng_calls() == []
    assert rpc.audit()[-1] | {"time": None} == {
        "time": None, "caller": "mgmt", "action": "unknown", "profile": None, "qubes": [], "outcome": "bad_request",
        "exit_code": 2, "job": None, "caller_gone": False,
    }


@pytest.mark.parametrize("action", ["", "-h", "--help", "backup\n", "BACKUP", "backup+x", "list;id", "../list"])
def test_odd_actions_are_unknown(rpc: RpcWorld, action: str) -> None:
    reply = rpc.call(action, LAPTOP)
    assert reply.status == 2 and reply.result["code"] == "bad_request"
    assert reply.result["message"].startswith("unknown action ")
    assert rpc.wyng_calls() == []


@pytest.mark.parametrize("caller", ["", "dom0", "-x", "--profile=evil", "a b", "x" * 40])
def test_an_invalid_caller_is_refused(rpc: RpcWorld, caller: str) -> None:
    reply = rpc.call("backup", LAPTOP, caller=caller)
    assert reply.status == 2
    assert reply.result["message"] == (
        "the service was not started by qrexec with a valid caller (QREXEC_REMOTE_DOMAIN)"
    )
    assert rpc.wyng_calls() == []


def test_a_bad_request_is_refused_with_its_reason(rpc: RpcWorld) -> None:
    reply = rpc.call("backup", {**LAPTOP, "dest": "file:/tmp/elsewhere"})
    assert reply.status == 2
    assert reply.lines == [reply.result]
    assert reply.result["message"] == "unknown key 'dest' for backup"
    assert rpc.audit()[-1]["profile"] is None and rpc.audit()[-1]["outcome"] == "bad_request"


def test_an_oversize_request_is_refused(rpc: RpcWorld) -> None:
    reply = rpc.call("backup", b'{"profile": "laptop", "qubes": [' + b'"work", ' * 20_000 + b'"x"]}')
    assert reply.status == 2 and reply.result["message"] == "request is larger than 65536 bytes"


def test_a_profile_that_does_not_exist_and_one_the_caller_may_not_use_look_the_same(rpc: RpcWorld) -> None:
    missing = rpc.call("backup", {"profile": "nosuch"})
    stranger = rpc.call("backup", LAPTOP, caller="personal")

    assert missing.status == stranger.status == 4
    assert missing.result["message"] == "qube mgmt may not backup with profile 'nosuch'"
    assert stranger.result["message"] == "qube personal may not backup with profile 'laptop'"
    assert missing.result["hint"] == stranger.result["hint"]
    assert rpc.wyng_calls() == []


def test_an_invalid_profile_answers_like_a_forbidden_one(rpc: RpcWorld, caplog: pytest.LogCaptureFixture) -> None:
    """The caller cannot tell an invalid profile from a missing or forbidden one; dom0's log has why."""
    rpc.profile('dest = "file:/x"\npassphrase_command = "/bin/secret-tool lookup"\n')
    with caplog.at_level(logging.WARNING):
        reply = rpc.call("backup", LAPTOP)
    missing = rpc.call("backup", {**LAPTOP, "profile": "nosuchprofile"})
    assert reply.status == 4 and reply.result["code"] == "not_permitted"
    assert reply.result["message"] == missing.result["message"].replace("nosuchprofile", "laptop")
    assert "secret-tool" not in json.dumps(reply.lines)
    assert "passphrase_command" in caplog.text


def test_an_action_the_rule_does_not_grant(rpc: RpcWorld) -> None:
    rpc.profile(PROFILE.format(dest=rpc.dom0.dest, wyng=rpc.dom0.executable, actions='["list", "status"]'))
    reply = rpc.call("backup", {**LAPTOP, "qubes": ["work"]})
    assert reply.status == 4 and reply.result["message"] == "qube mgmt may not backup with profile 'laptop'"
    assert rpc.wyng_calls() == []


@pytest.mark.parametrize(
    ("qube", "message"),
    [
        ("untrusted", "qube untrusted is not covered by profile 'laptop'"),
        ("personal", "qube personal is not covered by profile 'laptop'"),
        ("mgmt", "qube mgmt is not covered by profile 'laptop'"),
    ],
)
def test_qubes_outside_the_profile_are_refused(rpc: RpcWorld, qube: str, message: str) -> None:
    reply = rpc.call("backup", {**LAPTOP, "qubes": ["work", qube]})
    assert reply.status == 4 and reply.result["message"] == message
    assert rpc.wyng_calls() == []
    assert rpc.jobs() == []


def test_a_rule_limited_to_some_qubes_conflict_policies_and_no_shutdown(rpc: RpcWorld) -> None:
    rpc.profile(f'dest = "{rpc.dom0.dest}"\nwyng = "{rpc.dom0.executable}"\n'
                '[qubes]\ninclude = ["work", "vault"]\n'
                '[rpc]\nallow_unauthenticated_restore = true\n'
                '[[rpc.allow]]\ncallers = ["@tag:wyng-admin"]\nactions = ["backup", "restore"]\nqubes = ["work"]\n')
    whole = rpc.call("backup", LAPTOP)
    assert whole.status == 4
    assert whole.result["message"] == "backup of every qube of profile 'laptop' is not allowed; name the qubes"
    vault = rpc.call("backup", {**LAPTOP, "qubes": ["vault"]})
    assert vault.result["message"] == "backup of qube vault with profile 'laptop' is not allowed"
    replace = rpc.call("restore", {**LAPTOP, "qubes": ["work"], "on_conflict": "replace"})
    assert replace.result["message"] == "restore with on_conflict=replace is not allowed (allowed: fail)"
    shutdown = rpc.call("restore", {**LAPTOP, "qubes": ["work"], "shutdown": True})
    assert shutdown.result["message"] == "restore may not shut down qubes (shutdown) for this caller"
    assert rpc.wyng_calls() == []

    allowed = rpc.call("backup", {**LAPTOP, "qubes": ["work"]})  # mgmt carries the tag wyng-admin
    assert allowed.status == 0, allowed.result


def test_busy_when_another_operation_holds_the_lock(rpc: RpcWorld) -> None:
    with operation_lock("backup", path=rpc.config.lock_path):
        reply = rpc.call("backup", {**LAPTOP, "qubes": ["work"]})
    assert reply.status == 5 and reply.result["code"] == "busy"
    assert rpc.jobs() == [] and rpc.wyng_calls() == []


def test_an_internal_error_gives_a_generic_message_and_logs_the_traceback(
    rpc: RpcWorld, caplog: pytest.LogCaptureFixture
) -> None:
    from wyngq.rpc.service import serve

    def broken() -> Any:
        raise RuntimeError("qubesd socket at /var/run/qubesd.sock exploded")

    out = io.BytesIO()
    with caplog.at_level(logging.ERROR):
        status = serve(rpc.config, "mgmt", "backup", io.BytesIO(json.dumps(LAPTOP).encode()), out,
                       qubes_factory=broken)

    result = json.loads(out.getvalue().decode().splitlines()[-1])
    assert status == 1
    assert result["code"] == "internal" and result["message"] == "internal error in dom0; the details are in dom0's log"
    assert "qubesd" not in out.getvalue().decode()
    assert "RuntimeError: qubesd socket" in caplog.text
    (job,) = rpc.jobs()
    assert job.state == "finished" and job.code == "internal" and job.exit_code == 1
    assert rpc.audit()[-1]["outcome"] == "internal" and rpc.audit()[-1]["job"] == job.id


def test_the_audit_log_has_one_line_per_call_and_no_secrets(rpc: RpcWorld) -> None:
    rpc.call("backup", {**LAPTOP, "qubes": ["work"]})
    rpc.call("list", LAPTOP)
    rpc.call("backup", b'{"profile": "laptop", "passphrase": "hunter2-secret"}')
    lines = rpc.audit()
    assert [(a["action"], a["outcome"], a["exit_code"]) for a in lines] == [
        ("backup", "ok", 0), ("list", "ok", 0), ("backup", "bad_request", 2)]
    assert lines[0]["qubes"] == ["work"] and lines[0]["job"] == rpc.jobs()[0].id
    text = (Path(rpc.config.log_dir) / "audit.log").read_text()
    assert "hunter2" not in text


# -- the caller goes away -----------------------------------------------------------------
def test_a_caller_that_disconnects_mid_backup_does_not_stop_it(tmp_path: Path, fake_wyng: FakeWyngFactory) -> None:
    rpc = make_rpc_world(tmp_path, fake_wyng)
    slow = fake_wyng("wyng-slow", FAKE_WYNG_DELAY="1.0")
    rpc.profile(PROFILE.format(dest=rpc.dom0.dest, wyng=slow, actions=ALL_ACTIONS))
    read_end, write_end = os.pipe()
    first_line: list[bytes] = []

    def caller() -> None:  # reads the job event, then goes away (qube shut down)
        with os.fdopen(read_end, "rb", buffering=0) as reader:
            first_line.append(reader.readline())

    thread = threading.Thread(target=caller)
    thread.start()
    with os.fdopen(write_end, "wb", buffering=0) as stdout:
        reply = rpc.call("backup", {**LAPTOP, "qubes": ["work"]}, stdout=stdout)
    thread.join()

    assert json.loads(first_line[0])["type"] == "job"
    assert reply.status == 0
    (job,) = rpc.jobs()
    assert job.state == "finished" and job.code == "ok" and job.exit_code == 0 and job.caller_gone is True
    assert job.session in rpc.dom0.wyng().catalog().sessions()
    assert rpc.audit()[-1]["caller_gone"] is True and rpc.audit()[-1]["outcome"] == "ok"
    assert rpc.dom0.qubes.domains["work"].backup_timestamp is not None


def test_caller_stream_drops_writes_after_epipe() -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)
    with os.fdopen(write_end, "wb", buffering=0) as raw:
        stream = CallerStream(raw)
        assert stream.write("one\n") == 4
        assert stream.drain(10)
        assert stream.gone
        assert stream.write("two\n") == 4


class Stalled(io.BytesIO):
    """A caller that is connected but does not read: every write blocks until `release`."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def write(self, data: Any) -> int:
        self.release.wait()
        return super().write(data)


def test_caller_stream_never_blocks_the_writer_and_keeps_the_result() -> None:
    raw = Stalled()
    stream = CallerStream(raw, max_pending=10_000)
    line = json.dumps({"type": "progress", "pad": "x" * 1000}) + "\n"

    for _ in range(500):  # would block at the first write if writes were synchronous
        stream.write(line)
    stream.finish()
    stream.write('{"type": "result"}\n')
    assert not stream.drain(0.2)  # still stalled: the result waits in the queue
    raw.release.set()
    assert stream.drain(10)

    lines = [json.loads(x) for x in raw.getvalue().decode().splitlines()]
    assert lines[-1] == {"type": "result"}
    kept = [x for x in lines if x["type"] == "progress"]
    assert 0 < len(kept) < 500
    (notice,) = [x for x in lines if x["type"] == "dropped"]
    assert notice["lines"] == 500 - len(kept)


def test_a_caller_that_stops_reading_does_not_hold_up_the_job(tmp_path: Path, fake_wyng: FakeWyngFactory) -> None:
    rpc = make_rpc_world(tmp_path, fake_wyng)
    rpc.config = replace(rpc.config, result_timeout=0.5)
    stalled = Stalled()
    done: list[int] = []
    worker = threading.Thread(target=lambda: done.append(rpc.call("backup", {**LAPTOP, "qubes": ["work"]},
                                                                  stdout=stalled).status), daemon=True)
    worker.start()
    worker.join(120)

    assert done == [0]  # finished while nothing was read
    (job,) = rpc.jobs()
    assert (job.state, job.code, job.caller_gone) == ("finished", "ok", True)
    assert job.session in rpc.dom0.wyng().catalog().sessions()
    assert rpc.audit()[-1]["caller_gone"] is True
    with operation_lock("next", path=rpc.config.lock_path):
        pass  # the operation lock is free
    stalled.release.set()


# -- nothing from the caller reaches Wyng's argv ------------------------------------------------
HOSTILE: list[tuple[str, dict[str, Any]]] = [
    ("backup", {**LAPTOP, "qubes": ["-work"]}),
    ("backup", {**LAPTOP, "qubes": ["--dest=file:/tmp/evil"]}),
    ("backup", {**LAPTOP, "qubes": ["../../etc"]}),
    ("backup", {**LAPTOP, "qubes": ["work/../../root"]}),
    ("backup", {**LAPTOP, "qubes": ["work", "--all"]}),
    ("list", {**LAPTOP, "session": "--all"}),
    ("list", {**LAPTOP, "session": "20250102-030405 --dest=file:/tmp/evil"}),
    ("verify", {**LAPTOP, "session": "-u"}),
    ("verify", {**LAPTOP, "qubes": ["--session=x"]}),
    ("prune", {**LAPTOP, "session": "--all-before"}),
    ("prune", {**LAPTOP, "session": "20250101-000000,--all"}),
    ("restore", {**LAPTOP, "qubes": ["work"], "session": "--use-snapshot"}),
    ("restore", {**LAPTOP, "qubes": ["work"], "on_conflict": "rename", "rename": {"work": "--force"}}),
    ("restore", {**LAPTOP, "qubes": ["-p"]}),
    ("status", {**LAPTOP, "job": "../../../../etc/shadow"}),
    ("backup", {"profile": "--dest=file:/tmp/evil"}),
    ("backup", {"profile": "../../../tmp/evil"}),
    ("backup", {**LAPTOP, "wyng": "/tmp/evil"}),
    ("backup", {**LAPTOP, "dest": "file:/tmp/evil"}),
]


@pytest.mark.parametrize(("action", "request_"), HOSTILE, ids=[json.dumps(r) for _, r in HOSTILE])
def test_option_injection_never_reaches_wyng(rpc: RpcWorld, action: str, request_: dict[str, Any]) -> None:
    reply = rpc.call(action, request_)
    assert reply.status == 2, reply.result
    assert reply.result["code"] == "bad_request"
    assert rpc.wyng_calls() == []
    assert not (Path(rpc.config.state_dir) / "jobs").exists()


def test_wyng_argv_holds_only_the_profiles_values_and_validated_names(rpc: RpcWorld) -> None:
    session = rpc.call("backup", {**LAPTOP, "qubes": ["work", "vault"]}).result["session"]
    rpc.call("verify", {**LAPTOP, "qubes": ["work"], "session": session})
    rpc.call("prune", {**LAPTOP, "qubes": ["work"], "session": session, "dry_run": True})
    rpc.call("list", {**LAPTOP, "session": session})

    calls = rpc.wyng_calls()
    drops = [c for c in calls if "--authmin=-1" in c["argv"]]
    assert len(drops) == 4  # one per job, before its own calls: see test_each_job_first_ends_any_key_agent
    for call in calls:
        argv = call["argv"]
        authmin = "--authmin=-1" if call in drops else "--authmin=0"
        assert argv[:4] == [f"--dest={rpc.dom0.dest}", "--config=/dev/null", "-u", authmin]
        if "--" in argv:  # volume names after `--`, built by wyngq from validated qube names
            assert all(v.startswith(("appvms/", "vm-templates/")) or v == "wyng-qubes-metadata"
                       for v in argv[argv.index("--") + 1:])
        for word in argv[4:]:
            if word == "--":
                break
            assert word.startswith("--") or word in {"-u", "send", "list", "verify", "receive", "prune"}, word
            if word.startswith("--session="):
                assert word == f"--session={session}"


def test_each_job_first_ends_any_key_agent(rpc: RpcWorld) -> None:
    """Wyng's key agent accepts any passphrase while it lives; a job started over
    qrexec first has Wyng use-and-kill any agent (--authmin=-1) in a listing
    given no passphrase, then makes its own calls with --authmin=0."""
    rpc.call("backup", {**LAPTOP, "qubes": ["work"]})
    calls = rpc.wyng_calls()
    assert calls[0]["argv"] == [f"--dest={rpc.dom0.dest}", "--config=/dev/null", "-u", "--authmin=-1", "--json",
                                "list"]
    assert calls[0]["passphrase"] is None
    assert all("--authmin=0" in c["argv"] for c in calls[1:])


def test_prune_without_qubes_stays_within_the_profiles_selection(rpc: RpcWorld) -> None:
    """A caller's prune never reaches qubes outside the profile (nor its settings bundles)."""
    from wyngq.model import QubeClass

    rpc.dom0.qubes.add("outsider", QubeClass.APP, data={"private": b"outside" * 100}, template="fedora")
    first = rpc.dom0.backup("work", "outsider")
    rpc.dom0.backup("work", "outsider")

    pruned = rpc.call("prune", {**LAPTOP, "session": first})

    assert pruned.status == 0, pruned.result
    assert pruned.result["removed"] == {"work": [first]}
    sessions = rpc.dom0.wyng().catalog().volumes["appvms/outsider/private.img"].sessions
    assert first in sessions
    prune_calls = [c["argv"] for c in rpc.wyng_calls() if "prune" in c["argv"]]
    assert prune_calls and all("--all" not in argv and "-a" not in argv for argv in prune_calls)


def test_an_interrupted_restore_ends_with_a_result_line_a_record_and_an_audit_line(
        tmp_path: Path, fake_wyng: FakeWyngFactory) -> None:
    rpc = make_rpc_world(tmp_path, fake_wyng)
    rpc.call("backup", {**LAPTOP, "qubes": ["fedora", "sys-net", "sys-fw", "dvm", "work"]})
    wrapper = fake_wyng.interrupting_receive(rpc.dom0.executable)
    rpc.profile(PROFILE.format(dest=rpc.dom0.dest, wyng=wrapper, actions=ALL_ACTIONS))

    reply = rpc.call("restore", {**LAPTOP, "qubes": ["work"], "on_conflict": "replace"})

    assert reply.status == 130
    assert (reply.result["code"], reply.result["ok"]) == ("interrupted", False)
    assert reply.result["qubes"][0]["failed_step"] == "receive"
    (job,) = [j for j in rpc.jobs() if j.action == "restore"]
    assert (job.state, job.code, job.exit_code) == ("finished", "interrupted", 130)
    assert rpc.audit()[-1]["outcome"] == "interrupted"


@pytest.mark.parametrize("text", [
    'dest = "file:/x"\nstall_timeout = ' + "9" * 5000 + "\n",
    'dest = "file:/x"\n[qubes]\ninclude = ' + "[" * 5000 + "]" * 5000 + "\n",
    'dest = "file:/x"\nwyng = "/usr/bin/wy\\u0000ng"\n',
    'dest = "file:/x"\0\n',
], ids=["huge integer", "deep arrays", "NUL escape", "NUL byte"])
def test_a_broken_profile_answers_exactly_like_a_missing_one(rpc: RpcWorld, text: str) -> None:
    rpc.profile(text)
    reply = rpc.call("backup", LAPTOP)
    missing = rpc.call("backup", {**LAPTOP, "profile": "nosuchprofile"})
    assert reply.status == missing.status == 4
    assert reply.result == {**missing.result, "message": missing.result["message"].replace("nosuchprofile", "laptop"),
                            "comment": missing.result["comment"].replace("nosuchprofile", "laptop")}
    assert rpc.wyng_calls() == []


@pytest.fixture
def service_signals() -> Iterator[SignalGate]:
    """The service's own handlers, as main() installs them, and a fresh gate."""
    gate = SignalGate()
    previous = {s: signal.signal(s, gate.handle) for s in (signal.SIGINT, signal.SIGTERM)}
    with patch.object(service, "SIGNALS", gate):
        yield gate
    for signum, handler in previous.items():
        signal.signal(signum, handler)


def _serve(rpc: RpcWorld, action: str, request: dict[str, Any]) -> Reply:
    out = io.BytesIO()
    status = service.serve(rpc.config, "mgmt", action, io.BytesIO(json.dumps(request).encode()), out,
                           qubes_factory=lambda: rpc.dom0.qubes, quiet_signals=True)
    return Reply(status, [json.loads(line) for line in out.getvalue().decode().splitlines()])


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_between_the_end_of_the_work_and_the_result_does_not_lose_it(
        rpc: RpcWorld, service_signals: SignalGate, signum: int) -> None:
    real_result_line = service.result_line

    def signal_then_result_line(*args: Any, **kwargs: Any) -> Any:
        os.kill(os.getpid(), signum)  # the handler runs here, right after the work
        return real_result_line(*args, **kwargs)

    with patch.object(service, "result_line", signal_then_result_line):
        reply = _serve(rpc, "backup", {**LAPTOP, "qubes": ["work"]})
    assert reply.status == 0 and reply.result["ok"] is True
    assert rpc.audit()[-1]["outcome"] == "ok"
    (job,) = [j for j in rpc.jobs() if j.action == "backup"]
    assert job.state == "finished" and job.exit_code == 0


def test_a_signal_during_the_work_still_interrupts_it_once(rpc: RpcWorld, service_signals: SignalGate) -> None:
    real_handle = service.actions.handle

    def signal_during_work(env: Any, request: Any) -> Any:
        os.kill(os.getpid(), signal.SIGTERM)
        return real_handle(env, request)

    with patch.object(service.actions, "handle", signal_during_work):
        reply = _serve(rpc, "verify", LAPTOP)
    assert reply.status == 128 + signal.SIGTERM and reply.result["code"] == "interrupted"
    assert rpc.audit()[-1]["outcome"] == "interrupted"
    os.kill(os.getpid(), signal.SIGTERM)  # a second one, after: only logged
    assert service_signals.armed is False


def test_a_stalled_wyng_is_stopped_after_the_profiles_stall_timeout_and_frees_the_lock(
        tmp_path: Path, fake_wyng: FakeWyngFactory) -> None:
    """As a `qubes://` destination whose qube stops answering: Wyng prints its header, then nothing."""
    rpc = make_rpc_world(tmp_path, fake_wyng)
    rpc.call("backup", {**LAPTOP, "qubes": ["work"]})
    stalling = tmp_path / "bin" / "wyng-stalling"
    stalling.write_text(f'#!/bin/sh\ncase "$*" in *" verify "*) echo "Wyng 0.8 rc4 release 20251028"; exec sleep 60;;'
                        f' esac\nexec "{rpc.dom0.executable}" "$@"\n')
    stalling.chmod(0o755)
    rpc.profile("stall_timeout = 1\n" + PROFILE.format(dest=rpc.dom0.dest, wyng=stalling, actions=ALL_ACTIONS))
    reply = rpc.call("verify", LAPTOP)
    assert (reply.status, reply.result["code"]) == (9, "wyng_stalled"), reply.result
    assert "stall_timeout" in reply.result["hint"]
    assert rpc.audit()[-1]["outcome"] == "wyng_stalled"
    assert rpc.call("list", LAPTOP).status == 0  # the operation lock was released


@pytest.mark.skipif(not contract.available(), reason=contract.MISSING)
def test_every_line_the_service_writes_is_in_the_contract(rpc: RpcWorld) -> None:
    """Accepted jobs, progress, results, refusals and errors: every line validates (docs/json.md)."""
    replies = [_serve(rpc, "backup", {**LAPTOP, "qubes": ["work"]}), _serve(rpc, "backup", {**LAPTOP, "dry_run": True})]
    replies += [_serve(rpc, action, request) for action, request in (
        ("list", LAPTOP), ("verify", LAPTOP), ("status", LAPTOP), ("restore", {**LAPTOP, "qubes": ["work"]}),
        ("restore", {**LAPTOP, "qubes": ["work"], "dry_run": True, "on_conflict": "rename"}),
        ("prune", {**LAPTOP, "session": "20000101-000000", "dry_run": True}),
        ("list", {"profile": "nosuchprofile"}), ("nosuchaction", LAPTOP), ("list", {**LAPTOP, "surprise": 1}),
    )]
    lines = [line for reply in replies for line in reply.lines]
    assert {line["type"] for line in lines} >= {"job", "plan", "volume", "result"}
    assert {line["code"] for line in lines if line["type"] == "result"} >= {"ok", "not_permitted", "bad_request"}
    assert {json.dumps(line): contract.check(line) for line in lines if contract.check(line)} == {}
