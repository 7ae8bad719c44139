"""CI tier: dom0's home and configuration through the real CLI in subprocesses
(fake Qubes, fake `wyng`, fake `rpm`), and through the qrexec service in-process."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import pty
import stat
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, FakeWyngFactory
from tests.integration.rpc_world import PROFILE, RpcWorld, make_rpc_world
from tests.unit.dom0.hostile import HOSTILE
from tests.unit.dom0.trees import make_tree
from wyngq.dom0 import CONFIG_VOLUME, HOME_VOLUME

HOME = {
    ".bashrc": b"export EDITOR=vi\n",
    "Documents/report.odt": os.urandom(400_000),
    "Documents/notes.txt": "notes ✓\n".encode(),
    ".cache/thumbnails/x.png": b"regenerated",
    "QubesIncoming/work/download.iso": b"copied in",
    ".config/app/settings.ini": b"[a]\nb=1\n",
}
SYSTEM = {
    "etc/qubes/policy.d/30-user.policy": b"qubes.Filecopy * work vault deny\n",
    "etc/qubes/policy.d/90-default.policy": b"# packaged\n",
    "srv/user_salt/my.sls": b"x: {}\n",
}
OWNED = "/etc/qubes/policy.d/90-default.policy\n"


@dataclass
class Dom0World:
    tmp: Path
    spec_path: Path
    dest: str
    wyng: str
    home: Path
    sysroot: Path
    env: dict[str, str]

    def run(self, *args: str, profile: bool = False) -> tuple[int, list[dict[str, Any]]]:
        where = ["--profile=laptop"] if profile else [f"--dest={self.dest}", f"--wyng={self.wyng}"]
        argv = [sys.executable, "-m", "tests.integration.cli_driver", str(self.spec_path), *where, "--json", *args]
        done = subprocess.run(argv, capture_output=True, text=True, env=self.env, stdin=subprocess.DEVNULL,
                              cwd=ROOT, timeout=120)
        lines = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
        assert lines and lines[-1]["type"] == "result", done.stdout + done.stderr
        return done.returncode, lines

    def result(self, *args: str, profile: bool = False) -> dict[str, Any]:
        return self.run(*args, profile=profile)[1][-1]

    def backup(self, *args: str) -> dict[str, Any]:
        done = self.result("backup", "work", "--dom0-home", f"--dom0-home-dir={self.home}", "--dom0-config", *args)
        assert done["ok"], done
        return done

    def read_volume(self, volume: str, session: str) -> bytes:
        out = self.tmp / "read.tar"
        subprocess.run([self.wyng, f"--dest={self.dest}", "--config=/dev/null", "-u", f"--save-to={out}",
                        f"--session={session}", "receive", "--", volume], check=True, capture_output=True,
                       env=self.env)
        try:
            return out.read_bytes()
        finally:
            out.unlink()


def fake_rpm(tmp: Path, owned: str) -> str:
    listing = tmp / "rpm-owned.txt"
    listing.write_text(owned)
    program = tmp / "bin" / "rpm"
    program.parent.mkdir(exist_ok=True)
    program.write_text(f"#!/bin/sh\nexport FAKE_RPM_OWNED='{listing}'\n"
                       f'exec "{sys.executable}" "{ROOT / "tests" / "fakes" / "fake_rpm.py"}" "$@"\n')
    program.chmod(0o755)
    return str(program)


@pytest.fixture
def world(tmp_path: Path, fake_wyng: FakeWyngFactory) -> Dom0World:
    pool = tmp_path / "pool"
    pool.mkdir()
    spec = {"pools": {"varlibqubes": str(pool)},
            "qubes": [{"name": "fedora", "klass": "TemplateVM", "data": {"root": "ab" * 3000, "private": "cd" * 10}},
                      {"name": "work", "klass": "AppVM", "template": "fedora", "data": {"private": "ee" * 5000}}]}
    spec_path = tmp_path / "world.json"
    spec_path.write_text(json.dumps(spec))
    for name in ("archive", "tmp", "profiles"):
        (tmp_path / name).mkdir()
    home = make_tree(tmp_path / "home", HOME)
    (home / "Documents" / "notes.txt").chmod(0o600)
    sysroot = make_tree(tmp_path / "sysroot", SYSTEM)
    env = {
        "PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp_path / "tmp"),
        "WYNGQ_LOCK_PATH": str(tmp_path / "wyngq.lock"), "WYNGQ_STATE_DIR": str(tmp_path / "state"),
        "WYNGQ_PROFILE_DIR": str(tmp_path / "profiles"), "WYNGQ_DOM0_ROOT": str(sysroot),
        "WYNGQ_RPM": fake_rpm(tmp_path, OWNED),
    }
    wyng = fake_wyng()
    dest = f"file:{tmp_path / 'archive' / 'a.wyng'}"
    w = Dom0World(tmp_path, spec_path, dest, wyng, home, sysroot, env)
    assert w.result("create", "--encrypt=off")["ok"]
    return w


def digest_tree(root: Path) -> dict[str, tuple[object, ...]]:
    found = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        content = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
        found[str(path.relative_to(root))] = (stat.S_IMODE(st.st_mode), st.st_mtime_ns, content)
    return found


def test_dom0_home_and_config_travel_in_the_qubes_session_and_list_and_verify_show_them(world: Dom0World) -> None:
    done = world.backup()
    session = done["session"]

    assert [(d["item"], d["volume"], d["ok"]) for d in done["dom0"]] == [
        ("home", HOME_VOLUME, True), ("config", CONFIG_VOLUME, True)]
    assert "dom0 home, dom0 config" in done["comment"]
    listed = world.result("list", f"--session={session}")
    sizes = {d["item"]: d["size"] for d in listed["dom0"]}
    assert set(sizes) == {"home", "config"} and sizes["home"] > 400_000
    with tarfile.open(fileobj=io.BytesIO(world.read_volume(HOME_VOLUME, session))) as tar:
        names = tar.getnames()
    assert ".cache" not in names and "QubesIncoming" not in names and "Documents/report.odt" in names
    with tarfile.open(fileobj=io.BytesIO(world.read_volume(CONFIG_VOLUME, session))) as tar:
        assert [n for n in tar.getnames() if tar.getmember(n).isfile()] == [
            "etc/qubes/policy.d/30-user.policy", "srv/user_salt/my.sls"]
    verified = world.result("verify")
    assert verified["ok"] and [(d["item"], d["ok"]) for d in verified["dom0"]] == [("home", True), ("config", True)]


def test_a_whole_archive_prune_plans_and_reports_the_dom0_items_it_removes(world: Dom0World) -> None:
    first, second = world.backup()["session"], world.backup()["session"]

    plan = world.result("prune", f"--session={first}", "--dry-run")
    assert plan["dom0"] == {"home": [first], "config": [first]} and not plan["changed"]
    assert world.result("list", f"--session={first}")["dom0"]  # the dry run removed nothing

    done = world.result("prune", f"--session={first}")
    assert done["ok"] and done["changed"] and done["dom0"] == {"home": [first], "config": [first]}
    assert {d["item"] for d in world.result("list", f"--session={second}")["dom0"]} == {"home", "config"}


def test_a_prune_of_named_qubes_leaves_the_dom0_items_alone(world: Dom0World) -> None:
    first = world.backup()["session"]
    world.backup()

    done = world.result("prune", "work", f"--session={first}")
    assert done["ok"] and done["removed"] == {"work": [first]} and done["dom0"] == {}
    assert {d["item"] for d in world.result("list", f"--session={first}")["dom0"]} == {"home", "config"}


def test_an_unchanged_home_gives_the_same_stream_again(world: Dom0World) -> None:
    first = world.backup()["session"]
    second = world.backup()["session"]

    assert world.read_volume(HOME_VOLUME, first) == world.read_volume(HOME_VOLUME, second)


def test_the_home_comes_back_byte_exact_beside_the_live_one(world: Dom0World) -> None:
    session = world.backup()["session"]
    (world.home / ".bashrc").write_bytes(b"changed since\n")
    into = world.tmp / "restored-home"

    status, lines = world.run("restore", "--dom0-home", f"--session={session}", f"--into={into}")

    assert status == 0, lines[-1]
    (restored,) = lines[-1]["restored"]
    assert restored["directory"] == str(into) and restored["files"] == 4
    original = make_tree(world.tmp / "original", HOME)
    (original / "Documents" / "notes.txt").chmod(0o600)
    for gone in (".cache", "QubesIncoming"):
        subprocess.run(["rm", "-r", str(original / gone)], check=True)
    assert digest_tree(into) == digest_tree(original)
    assert (world.home / ".bashrc").read_bytes() == b"changed since\n"  # the live home is untouched


def test_the_config_comes_back_beside_the_live_files_with_what_differs(world: Dom0World) -> None:
    session = world.backup()["session"]
    (world.sysroot / "etc/qubes/policy.d/30-user.policy").write_text("qubes.Filecopy * work vault allow\n")
    (world.sysroot / "srv/user_salt/my.sls").unlink()

    status, lines = world.run("restore", "--dom0-config", "--diff")

    assert status == 0, lines[-1]
    (restored,) = lines[-1]["restored"]
    assert restored["directory"] == str(world.tmp / "state" / "restored" / session)
    states = {f["path"]: f for f in restored["config_files"]}
    assert {p: f["state"] for p, f in states.items()} == {
        "/etc/qubes/policy.d/30-user.policy": "different", "/srv/user_salt/my.sls": "new"}
    assert "-qubes.Filecopy * work vault allow\n+qubes.Filecopy * work vault deny\n" in states[
        "/etc/qubes/policy.d/30-user.policy"]["diff"]
    assert "sudo cp -a" in states["/srv/user_salt/my.sls"]["put_in_place"]
    assert not (world.sysroot / "srv/user_salt/my.sls").exists()  # nothing installed


def test_restoring_into_an_existing_directory_is_refused_and_changes_nothing(world: Dom0World) -> None:
    world.backup()
    into = world.tmp / "exists"
    into.mkdir()

    status, lines = world.run("restore", "--dom0-home", f"--into={into}")

    assert status == 2 and "exists already" in lines[-1]["message"]
    assert list(into.iterdir()) == []


def test_qubes_and_dom0_items_come_back_in_one_restore(world: Dom0World) -> None:
    session = world.backup()["session"]
    into = world.tmp / "restored-home"

    status, lines = world.run("restore", "work", "--on-conflict=replace", "--dom0-home", f"--into={into}")

    assert status == 0, lines[-1]
    done = lines[-1]
    assert [(q["name"], q["action"], q["ok"]) for q in done["qubes"]] == [("work", "replace", True)]
    assert done["dom0"]["session"] == session and done["dom0"]["into"] == {"home": str(into)}
    assert [r["directory"] for r in done["dom0"]["restored"]] == [str(into)]
    assert (into / "Documents" / "report.odt").is_file()
    assert done["changed"] and "dom0 home of session" in done["comment"] and "work" in done["comment"]
    assert [e["dom0"] for e in lines if e["type"] == "restore_plan" and "dom0" in e] == [["home"]]


def test_a_person_sees_the_qubes_then_the_dom0_items(world: Dom0World) -> None:
    session = world.backup()["session"]
    into = world.tmp / "restored-home"
    argv = [sys.executable, "-m", "tests.integration.cli_driver", str(world.spec_path), f"--dest={world.dest}",
            f"--wyng={world.wyng}", "restore", "work", "--on-conflict=replace", "--dom0-home", f"--into={into}"]

    primary, secondary = pty.openpty()  # a terminal: the CLI then writes for a person
    with os.fdopen(primary, "rb", buffering=0) as terminal:
        done = subprocess.Popen(argv, stdout=secondary, stderr=subprocess.PIPE, env=world.env,
                                stdin=subprocess.DEVNULL, cwd=ROOT)
        os.close(secondary)
        chunks = []
        with contextlib.suppress(OSError):  # EIO once the child has closed the terminal
            while chunk := terminal.read(65536):
                chunks.append(chunk)
        assert done.wait(timeout=120) == 0, done.stderr.read() if done.stderr else ""
    text = b"".join(chunks).decode()
    assert "work" in text and "restored" in text
    assert f"dom0 home of session {session}: 4 file(s)" in text and str(into) in text
    assert text.index("restored") < text.index("dom0 home of session")


def test_a_whole_machine_dry_run_plans_the_dom0_items_and_writes_nothing(world: Dom0World) -> None:
    session = world.backup()["session"]
    config_dir = world.tmp / "state" / "restored" / session

    status, lines = world.run("restore", "--all", "--on-conflict=replace", "--dom0-config", "--dry-run")

    assert status == 0, lines[-1]
    done = lines[-1]
    assert done["dry_run"] and done["dom0"]["dry_run"] and done["dom0"]["into"] == {"config": str(config_dir)}
    assert done["dom0"]["restored"] == [] and not config_dir.exists()


def test_a_dom0_dry_run_alone_writes_nothing(world: Dom0World) -> None:
    world.backup()
    into = world.tmp / "restored-home"

    status, lines = world.run("restore", "--dom0-home", f"--into={into}", "--dry-run")

    assert status == 0 and lines[-1]["dry_run"] and lines[-1]["into"] == {"home": str(into)}
    assert not into.exists()


def test_a_dom0_directory_that_exists_refuses_the_whole_restore_before_any_qube_is_touched(world: Dom0World) -> None:
    world.backup()
    into = world.tmp / "exists"
    into.mkdir()

    status, lines = world.run("restore", "work", "--on-conflict=replace", "--dom0-home", f"--into={into}")

    assert status == 2 and "exists already" in lines[-1]["message"]
    assert [e for e in lines if e["type"] in ("restore_plan", "volume", "step")] == []
    assert list(into.iterdir()) == []


def test_a_refused_qube_restore_restores_no_dom0_item_either(world: Dom0World) -> None:
    world.backup()
    into = world.tmp / "restored-home"

    status, lines = world.run("restore", "work", "--dom0-home", f"--into={into}")  # work exists: fail

    assert status == 6 and lines[-1]["code"] == "conflict" and lines[-1]["dom0"] is None
    assert not into.exists()


def test_a_hostile_home_stream_is_refused_with_its_reason_and_nothing_is_created(world: Dom0World) -> None:
    world.backup()
    hostile = world.tmp / "hostile.tar"
    hostile.write_bytes(HOSTILE["symlink pointing outside"][0]())
    volumes = world.tmp / "volumes.json"
    volumes.write_text(json.dumps({str(world.tmp / "pool"): [["appvms/work/private.img", None]]}))
    time.sleep(1.1)  # Wyng refuses a second session in the same second
    sent = subprocess.run([world.wyng, f"--dest={world.dest}", "--config=/dev/null", "-u", f"--local-from={volumes}",
                           "--send-unchanged", f"--import-other-from=wyng-qubes-metadata:|:{hostile}",
                           f"--import-other-from={HOME_VOLUME}:|:{hostile}", "send"], capture_output=True,
                          text=True, env=world.env)
    assert sent.returncode == 0, sent.stderr
    into = world.tmp / "restored-home"

    status, lines = world.run("restore", "--dom0-home", f"--into={into}")

    assert status == 9 and lines[-1]["code"] == "unsafe_archive"
    assert "pointing outside" in lines[-1]["message"]
    assert not into.exists() and [p.name for p in world.tmp.glob(".restored-home*")] == []


def test_the_profile_decides_unless_the_command_line_says_otherwise(world: Dom0World) -> None:
    (world.tmp / "profiles" / "laptop.toml").write_text(
        f'dest = "{world.dest}"\nwyng = "{world.wyng}"\n[dom0]\nhome = true\nhome_dir = "{world.home}"\n')

    with_home = world.result("backup", "work", profile=True)
    without = world.result("backup", "work", "--no-dom0-home", profile=True)

    assert [d["item"] for d in with_home["dom0"]] == ["home"]
    assert without["ok"] and without["dom0"] == []


def test_a_home_that_cannot_be_read_fails_the_backup_before_anything_is_sent(world: Dom0World) -> None:
    status, lines = world.run("backup", "work", "--dom0-home", f"--dom0-home-dir={world.tmp / 'nohome'}")
    assert status == 2 and "not a directory" in lines[-1]["message"]


# -- over qrexec ----------------------------------------------------------------------
@pytest.fixture
def rpc(tmp_path: Path, fake_wyng: FakeWyngFactory) -> RpcWorld:
    return make_rpc_world(tmp_path, fake_wyng)


def test_a_backup_over_qrexec_takes_dom0_items_only_when_the_profile_says_so(rpc: RpcWorld, tmp_path: Path) -> None:
    home = make_tree(tmp_path / "dom0-home", {"f": b"1"})
    plain = rpc.call("backup", {"profile": "laptop", "qubes": ["work"]})
    text = PROFILE.format(dest=rpc.dom0.dest, wyng=rpc.dom0.executable, actions='["backup"]')
    rpc.profile(text.replace("[rpc]", f'[dom0]\nhome = true\nhome_dir = "{home}"\n\n[rpc]'))

    with_home = rpc.call("backup", {"profile": "laptop", "qubes": ["work"]})

    assert plain.result["ok"] and plain.result["dom0"] == []
    assert with_home.result["ok"] and [d["item"] for d in with_home.result["dom0"]] == ["home"]
    assert str(home) not in json.dumps(with_home.lines)  # no dom0 path reaches the caller


@pytest.mark.parametrize("key", ["dom0_home", "dom0_config"])
def test_restoring_dom0_items_over_qrexec_is_refused_whatever_the_rules(rpc: RpcWorld, key: str) -> None:
    reply = rpc.call("restore", {"profile": "laptop", "qubes": ["work"], key: True})

    assert reply.status == 4 and reply.result["code"] == "not_permitted"
    assert "never over qrexec" in reply.result["message"]
    assert rpc.wyng_calls() == []


@pytest.mark.skipif(os.geteuid() != 0, reason="giving the files to the dom0 user needs root")
def test_by_default_the_home_comes_back_in_the_dom0_users_home_owned_by_that_user(
        tmp_path: Path, fake_wyng: FakeWyngFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.integration.helpers import Recorder, make_world
    from wyngq.backup import BackupRequest, run_backup
    from wyngq.dom0 import restore as dom0_restore
    from wyngq.dom0.backup import Dom0Backup
    from wyngq.dom0.user import Dom0User

    live_home = make_tree(tmp_path / "home" / "alice", {"a/b.txt": b"hello", "c": os.urandom(300_000)})
    alice = Dom0User("alice", 4321, 4322, str(live_home))
    monkeypatch.setattr(dom0_restore, "find_dom0_user", lambda: alice)
    monkeypatch.setattr(dom0_restore, "dom0_user", lambda: alice)
    dom0 = make_world(tmp_path, fake_wyng)
    done = run_backup(dom0.qubes, dom0.wyng(), BackupRequest(qubes=("work",), dom0=Dom0Backup(home=True,
                      home_dir=str(live_home))), Recorder(), dom0.workdir)

    restored = dom0_restore.run_restore(dom0.wyng(), dom0_restore.Dom0RestoreRequest(home=True), Recorder())

    target = live_home / f"home-restore-{done.session}"
    assert [r.directory for r in restored.restored] == [str(target)] and restored.restored[0].owner == "alice"
    assert (target / "a" / "b.txt").read_bytes() == b"hello"
    owners = {(p.lstat().st_uid, p.lstat().st_gid) for p in [target, *target.rglob("*")]}
    assert owners == {(4321, 4322)}


def test_a_dom0_item_wyng_could_not_send_is_a_partial_failure_and_the_qubes_still_count(
        tmp_path: Path, fake_wyng: FakeWyngFactory) -> None:
    from tests.integration.helpers import Recorder, make_world
    from wyngq.backup import BackupRequest, run_backup
    from wyngq.dom0.backup import Dom0Backup
    from wyngq.errors import ExitCode

    home = make_tree(tmp_path / "home", {"f": b"1"})
    dom0 = make_world(tmp_path, fake_wyng)
    failing = fake_wyng("wyng-failing-home", FAKE_WYNG_FAIL=f"vol={HOME_VOLUME}")

    done = run_backup(dom0.qubes, dom0.wyng(failing), BackupRequest(qubes=("work",), dom0=Dom0Backup(
                      home=True, home_dir=str(home))), Recorder(), dom0.workdir)

    assert done.exit_code is ExitCode.PARTIAL
    assert [(q.name, q.ok) for q in done.qubes] == [("work", True)]
    assert [(d.item, d.ok, d.error) for d in done.dom0] == [("home", False, "Wyng could not send it")]
    assert "FAILED: dom0 home" in done.summary
