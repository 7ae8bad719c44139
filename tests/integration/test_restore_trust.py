"""CI tier: settings that give power, from an archive Wyng does not authenticate
(restore.trust), through the real CLI entry, the qrexec service and the engine.

`work` carries what someone who can write the unencrypted archive would add: a
PCI device of dom0, a GUI qube outside the restore, and a tag qrexec policy
could match."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FakeWyngFactory
from tests.integration.helpers import Recorder, make_world
from tests.integration.restore_world import RestoreWorld, make_restore_world
from tests.integration.rpc_world import RpcWorld, make_rpc_world
from wyngq.backup import BackupRequest, run_backup
from wyngq.cli import main
from wyngq.model import DeviceAssignment, PropertyValue, QubeClass
from wyngq.output import Human
from wyngq.render import restore as show
from wyngq.restore.model import RestoreRequest
from wyngq.restore.run import run_restore

PCI = DeviceAssignment("pci", "dom0", "00_14.0", None, "required", (("no-strict-reset", "True"),))
HOSTILE = {"device:pci:dom0:00_14.0", "property:guivm", "tag:policy-admin"}


def make_hostile(world: RestoreWorld) -> None:
    world.qubes.add("sys-gui-evil", QubeClass.APP, data={"private": b"e" * 10}, template="fedora",
                    include_in_backups=False)
    work = world.qubes.domains["work"]
    world.without_power("work")
    work.devices = [PCI]
    work.properties["guivm"] = PropertyValue("vm", "sys-gui-evil")
    work.tags.add("policy-admin")


@pytest.fixture
def world(tmp_path: Path, fake_wyng: FakeWyngFactory, monkeypatch: pytest.MonkeyPatch) -> RestoreWorld:
    monkeypatch.setenv("WYNGQ_LOCK_PATH", str(tmp_path / "wyngq.lock"))
    built = make_restore_world(tmp_path, fake_wyng)
    make_hostile(built)
    built.backup()
    built.remove("work")
    return built


def cli(world: RestoreWorld, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    status = main(["restore", f"--dest={world.dest}", f"--wyng={world.executable}", "--json", *args],
                  connect=lambda: world.qubes)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert lines[-1]["type"] == "result"
    return status, lines[-1]


def untrusted(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    (work,) = [q for q in result["qubes"] if q["name"] == "work"]
    return {p["setting"]: p for p in work["problems"] if p["code"] == "untrusted_setting"}


def test_the_dry_run_lists_each_setting_with_its_old_and_new_value(
    world: RestoreWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    status, result = cli(world, capsys, "work", "--dry-run")

    assert status == 6 and result["refused"] is True and result["code"] == "untrusted_settings"
    found = untrusted(result)
    assert set(found) == HOSTILE
    assert found["property:guivm"]["old"] is None and found["property:guivm"]["new"] == "sys-gui-evil"
    assert found["tag:policy-admin"]["new"] == "policy-admin"
    assert found["device:pci:dom0:00_14.0"]["new"] == "dom0:00_14.0 (*) mode=required no-strict-reset=True"
    assert all(p["blocking"] for p in found.values())
    assert "a device of dom0" in found["device:pci:dom0:00_14.0"]["message"]
    assert "--trust-archive-settings" in found["tag:policy-admin"]["resolution"]
    assert "work" not in world.qubes.domains


def test_the_human_dry_run_shows_them_as_problems(world: RestoreWorld) -> None:
    request = RestoreRequest(qubes=("work",), dry_run=True)
    result = run_restore(world.qubes, world.wyng(), request, Recorder(), world.workdir)
    out = io.StringIO()
    show(Human(out), result)
    text = out.getvalue()
    assert "! property guivm default -> 'sys-gui-evil' from an archive Wyng does not authenticate" in text
    assert "! tag 'policy-admin' added from an archive Wyng does not authenticate" in text
    assert "! pci device dom0:00_14.0 (*) mode=required no-strict-reset=True assigned" in text
    assert "Refused: nothing was changed" in text


def test_restore_refuses_them_without_the_override_even_unattended(
    world: RestoreWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    status, result = cli(world, capsys, "work", "-u")

    assert status == 6 and result["code"] == "untrusted_settings" and result["changed"] is False
    assert set(untrusted(result)) == HOSTILE
    assert "work" not in world.qubes.domains


def test_restore_applies_them_with_the_override_and_still_lists_them(
    world: RestoreWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    status, result = cli(world, capsys, "work", "--trust-archive-settings")

    assert status == 0, result
    found = untrusted(result)
    assert set(found) == HOSTILE and not any(p["blocking"] for p in found.values())
    work = world.qubes.domains["work"]
    assert work.devices == [PCI]
    assert work.properties["guivm"].value == "sys-gui-evil" and "policy-admin" in work.tags


def test_plain_settings_come_back_from_the_same_archive_without_the_override(
    world: RestoreWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    world.without_power("vault")
    world.remove("vault")
    status, result = cli(world, capsys, "vault")
    assert status == 0, result
    assert "vault" in world.qubes.domains


def test_an_authenticated_archive_restores_them_and_warns_of_what_reaches_beyond(
    tmp_path: Path, fake_wyng: FakeWyngFactory
) -> None:
    world = make_world(tmp_path, fake_wyng, encrypted=True)
    world.qubes.domains["work"].devices = [PCI]
    world.qubes.domains["work"].tags.add("policy-admin")
    done = run_backup(world.qubes, world.wyng(), BackupRequest(qubes=("fedora", "work")), Recorder(), world.workdir)
    assert done.exit_code == 0
    del world.qubes.domains["work"]

    result = run_restore(world.qubes, world.wyng(), RestoreRequest(qubes=("work",)), Recorder(), world.workdir)

    assert result.exit_code == 0, result.plan.problems
    (work,) = result.plan.qubes
    assert not [p for p in work.problems if p.code == "untrusted_setting"]
    beyond = {p.setting: p for p in work.problems if p.code == "reaches_beyond"}
    assert set(beyond) == {"device:pci:dom0:00_14.0"}  # (sys-usb is not here: that assignment is dropped)
    assert not beyond["device:pci:dom0:00_14.0"].blocking
    assert world.qubes.domains["work"].devices == [PCI] and "policy-admin" in world.qubes.domains["work"].tags


# -- qrexec: never the override -------------------------------------------------------
@pytest.fixture
def rpc(tmp_path: Path, fake_wyng: FakeWyngFactory) -> RpcWorld:
    built = make_rpc_world(tmp_path, fake_wyng)
    make_hostile(built.dom0)
    return built


def test_qrexec_restore_refuses_them_even_where_the_profile_allows_the_archive(rpc: RpcWorld) -> None:
    rpc.call("backup", {"profile": "laptop", "qubes": ["fedora", "sys-net", "sys-fw", "dvm", "work"]})
    rpc.dom0.remove("work")

    for dry_run in (True, False):
        reply = rpc.call("restore", {"profile": "laptop", "qubes": ["work"], "dry_run": dry_run})
        assert reply.status == 6 and reply.result["code"] == "untrusted_settings", reply.result
        assert set(untrusted(reply.result)) == HOSTILE
    assert "work" not in rpc.dom0.qubes.domains
    assert rpc.jobs()[0].code == "untrusted_settings"


def test_a_qrexec_request_cannot_ask_for_the_override(rpc: RpcWorld) -> None:
    reply = rpc.call("restore", {"profile": "laptop", "qubes": ["work"], "trust_archive_settings": True})
    assert reply.status == 2 and reply.result["code"] == "bad_request"
    assert "trust_archive_settings" in reply.result["message"]
