"""CI tier, through the real CLI in subprocesses: verify, prune, delete, the
operation lock, signals, and passphrase sources."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests import contract
from tests.conftest import ROOT, FakeWyngFactory
from wyngq.lock import operation_lock


@dataclass
class CliWorld:
    tmp: Path
    spec_path: Path
    dest: str
    wyng: str
    env: dict[str, str] = field(default_factory=dict)

    def argv(self, *args: str, wyng: str | None = None) -> list[str]:
        return [sys.executable, "-m", "tests.integration.cli_driver", str(self.spec_path),
                f"--dest={self.dest}", f"--wyng={wyng or self.wyng}", "--json", *args]

    def run(self, *args: str, wyng: str | None = None) -> tuple[int, list[dict[str, object]]]:
        done = subprocess.run(self.argv(*args, wyng=wyng), capture_output=True, text=True, env=self.env,
                              stdin=subprocess.DEVNULL, cwd=ROOT, timeout=120)
        lines = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
        assert lines and lines[-1]["type"] == "result", done.stdout + done.stderr
        return done.returncode, lines

    def result(self, *args: str, wyng: str | None = None) -> dict[str, object]:
        return self.run(*args, wyng=wyng)[1][-1]

    def sessions(self, qube: str) -> list[str]:
        return list(self.result("list", "--all")["qubes"].get(qube, []))  # type: ignore[attr-defined]


@pytest.fixture
def world(tmp_path: Path, fake_wyng: FakeWyngFactory) -> CliWorld:
    pools = {"varlibqubes": tmp_path / "pool"}
    pools["varlibqubes"].mkdir()
    spec = {
        "pools": {k: str(v) for k, v in pools.items()},
        "qubes": [
            {"name": "fedora", "klass": "TemplateVM", "data": {"root": (b"r" * 3000).hex(), "private": "aa" * 10}},
            {"name": "work", "klass": "AppVM", "template": "fedora", "data": {"private": os.urandom(20000).hex()}},
            {"name": "vault", "klass": "AppVM", "template": "fedora", "data": {"private": os.urandom(9000).hex()}},
        ],
    }
    spec_path = tmp_path / "world.json"
    spec_path.write_text(json.dumps(spec))
    (tmp_path / "archive").mkdir()
    (tmp_path / "tmp").mkdir()
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(ROOT),
        "WYNGQ_LOCK_PATH": str(tmp_path / "wyngq.lock"),
        "WYNGQ_STATE_DIR": str(tmp_path / "state"),
        "TMPDIR": str(tmp_path / "tmp"),
    }
    w = CliWorld(tmp_path, spec_path, f"file:{tmp_path / 'archive'}", fake_wyng(), env)
    code, lines = w.run("create", "--encrypt=off")
    assert code == 0, lines
    return w


def backup_sessions(world: CliWorld, count: int) -> list[str]:
    sessions = []
    for _ in range(count):
        result = world.result("backup", "fedora", "work", "vault")
        assert result["ok"], result
        sessions.append(str(result["session"]))
    return sessions


def test_verify_a_good_session(world: CliWorld) -> None:
    (session,) = backup_sessions(world, 1)
    code, lines = world.run("verify")
    result = lines[-1]
    assert code == 0 and result["session"] == session and result["settings"] == "ok"
    assert {q["name"]: q["ok"] for q in result["qubes"]} == {"fedora": True, "work": True, "vault": True}  # type: ignore[union-attr]


def test_verify_names_the_damaged_qube(world: CliWorld, fake_wyng: FakeWyngFactory) -> None:
    backup_sessions(world, 1)
    corrupt = fake_wyng("wyng-corrupt", FAKE_WYNG_FAIL="corrupt=appvms/work/private.img")
    code, lines = world.run("verify", wyng=corrupt)
    checks = {q["name"]: q for q in lines[-1]["qubes"]}  # type: ignore[union-attr]
    assert code == 8
    assert not checks["work"]["ok"] and checks["vault"]["ok"] and checks["fedora"]["ok"]


def test_verify_of_an_unknown_session_is_a_usage_error(world: CliWorld) -> None:
    backup_sessions(world, 1)
    code, lines = world.run("verify", "--session=20000101-000000")
    assert code == 2 and "20000101-000000" in str(lines[-1]["message"])


def test_prune_dry_run_then_one_session_then_a_range_keeps_the_newest(world: CliWorld) -> None:
    s1, s2, s3, s4 = backup_sessions(world, 4)
    plan = world.result("prune", f"--session={s1}", "--dry-run")
    assert plan["dry_run"] is True and plan["removed"] == {"fedora": [s1], "work": [s1], "vault": [s1]}
    assert world.sessions("work") == [s1, s2, s3, s4]

    assert world.result("prune", f"--session={s1}")["removed"] == {"fedora": [s1], "work": [s1], "vault": [s1]}
    assert world.sessions("work") == [s2, s3, s4]

    world.result("prune", "work", f"--session={s3},{s4}")
    assert world.sessions("work") == [s2, s4]  # s4 is the newest: never pruned
    assert world.sessions("vault") == [s2, s3, s4]

    world.result("prune", "--all-before", f"--session={s4}")
    assert world.sessions("vault") == [s4]


def test_prune_refuses_bad_selections(world: CliWorld) -> None:
    s1, s2 = backup_sessions(world, 2)
    assert world.run("prune")[0] == 2
    assert world.run("prune", f"--session={s2},{s1}")[0] == 2
    assert world.run("prune", "--all-before", f"--session={s1},{s2}")[0] == 2
    assert world.run("prune", "--session=-rf")[0] == 2


def test_delete_removes_every_backup_of_one_qube(world: CliWorld) -> None:
    records = world.tmp / "state" / "archives"
    assert len(list(records.glob("*.json"))) == 1  # `create` recorded the new archive
    backup_sessions(world, 2)
    code, lines = world.run("-u", "delete", "work")
    assert code == 0 and lines[-1]["volumes"] == ["appvms/work/private.img"]
    assert list(records.glob("*.json")) == []  # the next backup reads the catalogue
    listed = world.result("list", "--all")["qubes"]
    assert "work" not in listed and "vault" in listed  # type: ignore[operator]
    assert world.run("-u", "delete", "work")[0] == 2


def test_a_second_operation_is_busy_or_waits(world: CliWorld) -> None:
    lock_path = world.env["WYNGQ_LOCK_PATH"]
    with operation_lock("backup", path=lock_path):
        code, lines = world.run("list")
        assert code == 5 and lines[-1]["code"] == "busy"
        assert f"backup by pid {os.getpid()}" in str(lines[-1]["message"])

    release = threading.Event()

    def hold() -> None:
        with operation_lock("backup", path=lock_path):
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    time.sleep(0.3)
    threading.Timer(1.0, release.set).start()
    started = time.monotonic()
    code, _ = world.run("--wait=20", "list")
    holder.join()
    assert code == 0 and time.monotonic() - started >= 0.7


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
@pytest.mark.parametrize("action", ["backup", "verify"])
def test_a_signal_stops_the_operation_cleanly(
    world: CliWorld, fake_wyng: FakeWyngFactory, action: str, signum: int, status: int
) -> None:
    if action == "verify":
        backup_sessions(world, 1)
    slow = fake_wyng("wyng-slow", FAKE_WYNG_DELAY="30")
    before = world.sessions("work")
    args = ("backup", "fedora", "work", "vault") if action == "backup" else ("verify",)
    child = subprocess.Popen(world.argv(*args, wyng=slow), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=world.env, stdin=subprocess.DEVNULL, cwd=ROOT)
    assert child.stdout is not None
    while line := child.stdout.readline():  # wait until Wyng is moving data
        if json.loads(line).get("type") == "volume":
            break
    child.send_signal(signum)
    child.wait(timeout=30)
    rest = child.stdout.read()
    result = json.loads(rest.splitlines()[-1])
    assert child.returncode == status and result["code"] == "interrupted"
    assert world.sessions("work") == before  # nothing half-recorded
    assert os.listdir(world.env["TMPDIR"]) == []  # temporary files removed
    assert world.run("list")[0] == 0  # the lock was released


def test_passphrase_file_reaches_wyng_byte_exact(tmp_path: Path, fake_wyng: FakeWyngFactory, world: CliWorld) -> None:
    secret = " correct 'horse' \"battery\" -staple ✓ "
    passfile = tmp_path / "pass"
    passfile.write_text(secret + "\n")
    passfile.chmod(0o600)
    (tmp_path / "enc").mkdir()
    world.dest = f"file:{tmp_path / 'enc'}"
    assert world.run(f"--passphrase-file={passfile}", "create")[0] == 0
    assert world.run(f"--passphrase-file={passfile}", "backup", "work")[0] == 0
    seen = {call["passphrase"] for call in fake_wyng.calls() if "--dest=file:" + str(tmp_path / "enc") in call["argv"]}  # type: ignore[operator]
    assert seen == {secret}
    passfile.chmod(0o644)
    code, lines = world.run(f"--passphrase-file={passfile}", "list")
    assert code == 3 and "chmod 600" in str(lines[-1]["hint"])


def test_prune_alone_follows_the_profile_policy(world: CliWorld) -> None:
    backup_sessions(world, 2)
    profiles = world.tmp / "profiles"
    profiles.mkdir()
    profile = f'dest = "{world.dest}"\nwyng = "{world.wyng}"\n[backup]\nautoprune = "off"\n'
    (profiles / "laptop.toml").write_text(profile)
    world.env["WYNGQ_PROFILE_DIR"] = str(profiles)
    argv = [a for a in world.argv("prune") if not a.startswith(("--dest=", "--wyng="))] + ["--profile=laptop"]
    done = subprocess.run(argv, capture_output=True, text=True, env=world.env, cwd=ROOT, stdin=subprocess.DEVNULL)
    result = json.loads(done.stdout.splitlines()[-1])
    assert done.returncode == 0 and result["removed"] == {}
    assert len(world.sessions("work")) == 2


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_during_a_restore_receive_loses_nothing(
    world: CliWorld, fake_wyng: FakeWyngFactory, signum: int, status: int
) -> None:
    backup_sessions(world, 1)
    spec = json.loads(world.spec_path.read_text())
    newer = os.urandom(20000)
    for qube in spec["qubes"]:
        if qube["name"] == "work":
            qube["data"] = {"private": newer.hex()}  # the live data the restore would replace
    world.spec_path.write_text(json.dumps(spec))
    slow = fake_wyng("wyng-slow", FAKE_WYNG_DELAY="4")  # also delays the settings fetch: keep it short
    child = subprocess.Popen(world.argv("restore", "--on-conflict=replace", "work", wyng=slow),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=world.env,
                             stdin=subprocess.DEVNULL, cwd=ROOT)
    assert child.stdout is not None
    while line := child.stdout.readline():  # wait until Wyng is receiving
        if json.loads(line).get("type") == "volume":
            break
    child.send_signal(signum)
    child.wait(timeout=30)
    result = json.loads(child.stdout.read().splitlines()[-1])
    assert child.returncode == status and result["code"] == "interrupted"
    after = json.loads(world.spec_path.read_text())["after"]
    assert (world.tmp / "pool" / "appvms" / "work" / "private.img").read_bytes() == newer  # live data untouched
    assert "backup-restore-in-progress" in after["work"]["tags"]  # left guarded, as docs/restore-semantics.md says
    assert os.listdir(world.env["TMPDIR"]) == []
    assert world.run("list")[0] == 0  # the lock was released


def test_an_unusable_lock_path_is_a_clear_result_not_a_traceback(world: CliWorld) -> None:
    world.env["WYNGQ_LOCK_PATH"] = str(world.tmp)  # a directory: cannot be opened as the lock file
    code, lines = world.run("list")
    assert code == 3 and lines[-1]["code"] == "config" and "lock file" in str(lines[-1]["message"])


def test_verify_full_runs_wyngs_arch_check_of_the_whole_archive(world: CliWorld, fake_wyng: FakeWyngFactory
                                                                ) -> None:
    backup_sessions(world, 2)
    code, lines = world.run("verify", "--full")
    assert code == 0 and lines[-1]["archive_check"] == "ok"
    checks = [c["argv"] for c in fake_wyng.calls() if "arch-check" in c["argv"]]  # type: ignore[operator]
    assert checks and not any(str(a).startswith("--session") for a in checks[-1])  # type: ignore[union-attr]
    assert world.result("verify")["archive_check"] is None


def test_prune_of_the_newest_session_is_refused_with_the_reason(world: CliWorld) -> None:
    s1, s2 = backup_sessions(world, 2)
    for extra in ((), ("--dry-run",), ("work",)):
        code, lines = world.run("prune", f"--session={s2}", *extra)
        assert code == 2, lines
        assert "newest session" in str(lines[-1]["message"]) and s2 in str(lines[-1]["message"])
    assert world.sessions("work") == [s1, s2]
    code, _ = world.run("prune", f"--session={s1}")
    assert code == 0 and world.sessions("work") == [s2]


@pytest.mark.skipif(not contract.available(), reason=contract.MISSING)
def test_every_line_the_cli_prints_is_in_the_contract(world: CliWorld) -> None:
    """Each action in JSON mode, successes and failures: every line validates (docs/json.md)."""
    runs = [world.run("backup", "fedora", "work", "vault"), world.run("backup", "work", "--dry-run")]
    session = str(runs[0][1][-1]["session"])
    runs += [world.run(*args) for args in (
        ("list",), ("list", "--all"), (f"--session={session}", "list"), ("verify",), ("verify", "--full"),
        ("prune", f"--session={session}", "--dry-run"), ("restore", "work", "--dry-run"),
        ("restore", "work"), ("delete", "vault"), ("version",), ("status",), ("prune", "--session=-rf"),
        ("restore", "nosuchqube"),
    )]
    lines = [line for _, run in runs for line in run]
    assert {line["type"] for line in lines} >= {"plan", "volume", "opening", "result", "restore_plan"}
    assert {(line["action"], line["ok"]) for line in lines if line["type"] == "result"} >= {
        ("backup", True), ("restore", False), ("delete", True), ("prune", False), ("status", True)}
    assert {json.dumps(line): contract.check(line) for line in lines if contract.check(line)} == {}
