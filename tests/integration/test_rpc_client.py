"""CI tier: the management-qube client end to end. A fake `qrexec-client-vm`
checks its command line, applies a stand-in policy (126 for a refused action,
as qrexec does) and runs the real service process against the fake dom0; the
client streams progress, prints the result and exits with dom0's status."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests import contract
from tests.conftest import ROOT, FakeWyngFactory
from tests.integration.rpc_driver import describe
from tests.integration.rpc_world import RpcWorld, make_rpc_world
from wyngq import client, remote
from wyngq.output import Human

FAKE_QREXEC_CLIENT_VM = """\
#!{python}
# A stand-in for qrexec-client-vm in a management qube: one call to dom0.
import json, os, subprocess, sys
with open({log!r}, "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
target, service = sys.argv[1:]
assert target == "@adminvm", target
name, _, action = service.partition("+")
if name != "qubes.WyngBackup" or action in {denied!r}:
    sys.exit(126)                     # refused by dom0's policy: no output at all
if {missing!r}:
    sys.exit(127)                     # no such service in dom0
os.chdir({root!r})
done = subprocess.run([sys.executable, "-m", "tests.integration.rpc_driver", {world!r}, "mgmt", action])
sys.exit(done.returncode)
"""


class Qube:
    """The management qube: the fake qrexec-client-vm and what it was asked."""

    def __init__(self, rpc: RpcWorld, denied: tuple[str, ...] = (), missing: bool = False) -> None:
        self.rpc = rpc
        self.log = rpc.root / "qrexec-calls.jsonl"
        world = rpc.root / "world.json"
        world.write_text(json.dumps(describe(rpc.dom0.qubes, rpc.config)))
        self.bin = rpc.root / "qube-bin"
        self.bin.mkdir(exist_ok=True)
        self.executable = self.bin / "qrexec-client-vm"
        self.executable.write_text(FAKE_QREXEC_CLIENT_VM.format(
            python=sys.executable, log=str(self.log), denied=list(denied), missing=missing, root=str(ROOT),
            world=str(world)))
        self.executable.chmod(0o755)

    def calls(self) -> list[list[str]]:
        return [json.loads(line) for line in self.log.read_text().splitlines()] if self.log.exists() else []

    def run(self, *words: str) -> int:
        return client.main(["--remote", "--profile=laptop", "--json", *words], executable=str(self.executable))


@pytest.fixture
def rpc(tmp_path: Path, fake_wyng: FakeWyngFactory) -> RpcWorld:
    return make_rpc_world(tmp_path, fake_wyng)


def output(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_backup_from_the_management_qube(rpc: RpcWorld, capsys: pytest.CaptureFixture[str]) -> None:
    qube = Qube(rpc)
    status = qube.run("backup", "work", "vault")

    lines = output(capsys)
    assert status == 0
    assert qube.calls() == [["@adminvm", "qubes.WyngBackup+backup"]]
    assert lines[0]["type"] == "job"
    assert any(line["type"] == "volume" for line in lines)
    result = lines[-1]
    assert result["type"] == "result" and result["ok"] is True and result["action"] == "backup"
    assert [q["name"] for q in result["qubes"]] == ["vault", "work"]
    assert result["session"] in rpc.dom0.wyng().catalog().sessions()


def test_list_status_and_restore_from_the_management_qube(rpc: RpcWorld, capsys: pytest.CaptureFixture[str]) -> None:
    rpc.dom0.without_power("work")  # the archive is unencrypted (the profile allows it)
    qube = Qube(rpc)
    assert qube.run("backup", "fedora", "sys-net", "sys-fw", "dvm", "work") == 0
    session = output(capsys)[-1]["session"]

    assert qube.run("list") == 0
    assert output(capsys)[-1]["qubes"]["work"] == [session]

    assert qube.run("status") == 0
    (job,) = output(capsys)[-1]["jobs"]
    assert job["action"] == "backup" and job["session"] == session

    assert qube.run("restore", "work") == 6  # it exists: refused by the default conflict policy, dom0's status
    assert output(capsys)[-1]["refused"] is True

    assert qube.run("restore", "work", "--on-conflict=rename", "--rename=work:work-copy") == 4  # not in the profile
    assert output(capsys)[-1]["code"] == "not_permitted"
    assert qube.run("restore", "work", "--on-conflict=rename") == 0
    assert output(capsys)[-1]["qubes"][0]["target"] == "work-restored"
    pool = Path(rpc.dom0.qubes.pools()["varlibqubes"].wyng_path or "")  # dom0 ran in its own process:
    copy = (pool / "appvms" / "work-restored" / "private.img").read_bytes()  # look at the data it wrote
    assert copy == rpc.dom0.qubes.read_volume("work", "private")


def test_a_call_refused_by_policy(rpc: RpcWorld, capsys: pytest.CaptureFixture[str]) -> None:
    status = Qube(rpc, denied=("restore",)).run("restore", "work")
    (line,) = output(capsys)
    assert status == 4
    assert line["code"] == "not_permitted" and line["message"] == "dom0 refused qubes.WyngBackup+restore"


def test_no_service_in_dom0(rpc: RpcWorld, capsys: pytest.CaptureFixture[str]) -> None:
    status = Qube(rpc, missing=True).run("list")
    assert status == 3
    assert output(capsys)[-1]["message"] == "qubes.WyngBackup+list is not installed in dom0"


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (["backup", "--", "-work"], "'qubes' item 0 is not a valid qube name: '-work'"),
        (["backup", "-work"], "unrecognized arguments: -work"),
        (["backup", "work", "../etc"], "'qubes' item 1 is not a valid qube name: '../etc'"),
        (["backup", "--dest=file:/tmp/x", "work"], "unrecognized arguments: --dest=file:/tmp/x"),
        (["restore", "work", "--session=yesterday"],
         "'session' must be a session id YYYYMMDD-HHMMSS or 'latest', not 'yesterday'"),
        (["restore", "work", "--rename=work"], "--rename takes OLD:NEW"),
        (["prune", "--session=latest"],
         "'session' must be a session id YYYYMMDD-HHMMSS or a range ID,ID, not 'latest'"),
        (["delete", "work"], "argument ACTION: invalid choice: 'delete' (choose from 'list', 'backup', 'restore', "
                             "'verify', 'prune', 'status', 'version')"),
    ],
)
def test_mistakes_are_caught_in_the_qube_before_anything_is_sent(
    rpc: RpcWorld, capsys: pytest.CaptureFixture[str], words: list[str], message: str
) -> None:
    qube = Qube(rpc)
    status = qube.run(*words)
    (line,) = output(capsys)
    assert status == 2 and line["message"] == message
    assert qube.calls() == []


def test_the_profile_must_be_named(rpc: RpcWorld, capsys: pytest.CaptureFixture[str]) -> None:
    qube = Qube(rpc)
    status = client.main(["--remote", "--json", "list"], executable=str(qube.executable))
    assert status == 2 and output(capsys)[-1]["message"] == "name the dom0 profile"
    assert qube.calls() == []


def test_human_output(rpc: RpcWorld) -> None:
    qube = Qube(rpc)
    stream = io.StringIO()
    data = json.dumps({"profile": "laptop", "qubes": ["work"]}).encode()
    status = client.forward("backup", data, Human(stream), executable=str(qube.executable))
    text = stream.getvalue()
    assert status == 0
    assert text.startswith("dom0 job ")
    assert "Backing up 1 qube(s): work" in text
    assert "Session " in text and "  work" in text and " ok" in text
    assert "status --job=" in text


# -- when the command is a client --------------------------------------------------------------
@pytest.mark.parametrize(
    ("words", "environ", "marker", "forwards"),
    [
        (["list"], {}, False, False),
        (["list"], {}, True, True),
        (["--remote", "list"], {}, False, True),
        (["list"], {"WYNGQ_REMOTE": "1"}, False, True),
        (["list"], {"WYNGQ_REMOTE": "0"}, True, False),
        (["list"], {"WYNGQ_REMOTE": "no"}, False, False),
    ],
)
def test_wants_remote(tmp_path: Path, words: list[str], environ: dict[str, str], marker: bool, forwards: bool) -> None:
    marker_path = tmp_path / "this-is-appvm"
    if marker:
        marker_path.touch()
    assert remote.wants_remote(words, environ, markers=(str(marker_path),)) is forwards


def test_the_cli_forwards_to_dom0_from_a_qube(rpc: RpcWorld) -> None:
    """`wyng-util-qubes` itself, in a qube (WYNGQ_REMOTE=1), with qrexec-client-vm on PATH."""
    qube = Qube(rpc)
    env = {"PATH": f"{qube.bin}{os.pathsep}{os.environ['PATH']}", "WYNGQ_REMOTE": "1"}
    done = subprocess.run([sys.executable, "-m", "wyngq", "--profile=laptop", "backup", "work"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert done.returncode == 0, done.stderr
    assert lines[-1]["type"] == "result" and lines[-1]["ok"] is True
    assert qube.calls() == [["@adminvm", "qubes.WyngBackup+backup"]]


@pytest.mark.skipif(not contract.available(), reason=contract.MISSING)
def test_every_line_the_client_prints_is_in_the_contract(rpc: RpcWorld, capsys: pytest.CaptureFixture[str]) -> None:
    """The client reads dom0's lines into the contract's dataclasses and prints them again:
    every line validates, and a result keeps dom0's fields (docs/json.md)."""
    rpc.dom0.without_power("work")
    qube = Qube(rpc)
    lines: list[dict[str, Any]] = []
    for words in (("backup", "work"), ("backup", "--dry-run"), ("list",), ("status",), ("verify",),
                  ("restore", "work"), ("restore", "work", "--on-conflict=rename", "--dry-run"),
                  ("restore", "work", "--on-conflict=rename", "--rename=work:work-copy"), ("version",)):
        qube.run(*words)
        lines += output(capsys)
    assert {line["type"] for line in lines} >= {"job", "plan", "volume", "result", "restore_plan"}
    results = [line for line in lines if line["type"] == "result"]
    assert {(r["action"], r["code"]) for r in results} >= {("backup", "ok"), ("restore", "not_permitted")}
    assert all(r["schema"] == "wyngq/1" for r in results)
    assert any("job" in r for r in results)
    assert {json.dumps(line): contract.check(line) for line in lines if contract.check(line)} == {}


def test_a_result_the_client_cannot_read_is_an_error(rpc: RpcWorld, capsys: pytest.CaptureFixture[str]) -> None:
    fake = rpc.root / "odd-qrexec-client-vm"
    fake.write_text(f"#!{sys.executable}\nprint('{{\"type\": \"result\", \"ok\": true, \"surprise\": 1}}')\n")
    fake.chmod(0o755)
    status = client.main(["--remote", "--profile=laptop", "--json", "list"], executable=str(fake))
    (line,) = output(capsys)
    assert status == 1 and line["code"] == "internal"
    assert "cannot read" in line["message"] and "same version" in line["hint"]
