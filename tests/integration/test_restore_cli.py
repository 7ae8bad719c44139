"""CI tier: `wyng-util-qubes restore` through the real CLI entry (in process,
with the fake Qubes), JSON results and exit codes 0 / 2 / 6 / 8."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import FakeWyngFactory
from tests.integration.restore_world import RestoreWorld, make_restore_world
from wyngq.cli import main
from wyngq.model import PropertyValue
from wyngq.restore.model import GUARD_TAG


@pytest.fixture
def world(tmp_path: Path, fake_wyng: FakeWyngFactory, monkeypatch: pytest.MonkeyPatch) -> RestoreWorld:
    monkeypatch.setenv("WYNGQ_LOCK_PATH", str(tmp_path / "wyngq.lock"))
    built = make_restore_world(tmp_path, fake_wyng)
    built.backup()
    return built


def cli(world: RestoreWorld, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, object]]:
    status = main(["restore", f"--dest={world.dest}", f"--wyng={world.executable}", "--json", *args],
                  connect=lambda: world.qubes)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert lines[-1]["type"] == "result"
    return status, lines[-1]


def test_conflict_refused_exit_6(world: RestoreWorld, capsys: pytest.CaptureFixture[str]) -> None:
    status, result = cli(world, capsys, "work")
    assert status == 6 and result["refused"] is True and result["code"] == "conflict"
    (work,) = result["qubes"]  # type: ignore[misc]
    assert work["problems"][0]["code"] == "exists" and work["problems"][0]["blocking"] is True
    assert [s["step"] for s in result["steps"]] == []  # type: ignore[union-attr]


def test_dry_run_prints_the_diff_exit_0(world: RestoreWorld, capsys: pytest.CaptureFixture[str]) -> None:
    world.qubes.domains["work"].notes = "changed"
    status, result = cli(world, capsys, "work", "--on-conflict=replace", "--dry-run")
    assert status == 0 and result["dry_run"] is True
    notes = [s for s in result["steps"] if s["step"] == "notes"]  # type: ignore[union-attr]
    assert notes == [{"step": "notes", "qube": "work",
                      "changes": [{"op": "set", "key": "notes", "old": "changed", "new": "work notes ✓\nsecond line"}]}]
    assert world.qubes.domains["work"].notes == "changed"


def test_restore_deleted_qube_exit_0(world: RestoreWorld, capsys: pytest.CaptureFixture[str]) -> None:
    world.remove("work")
    status, result = cli(world, capsys, "work", "--trust-archive-settings")  # the archive is unencrypted
    assert status == 0 and result["ok"] is True
    assert result["qubes"][0]["action"] == "create" and result["qubes"][0]["ok"] is True  # type: ignore[index]
    assert "work" in world.qubes.domains


def test_partial_failure_exit_8(world: RestoreWorld, capsys: pytest.CaptureFixture[str]) -> None:
    world.qubes.domains["sys-fw"].firewall = ["action=drop"]
    world.qubes.fail("set_firewall", "sys-fw")
    status, result = cli(world, capsys, "work", "sys-fw", "--on-conflict=replace")
    assert status == 8 and result["code"] == "partial"
    by_name = {q["target"]: q for q in result["qubes"]}  # type: ignore[union-attr]
    assert by_name["sys-fw"]["failed_step"] == "firewall" and by_name["work"]["ok"] is True
    assert GUARD_TAG in world.qubes.domains["sys-fw"].tags


@pytest.mark.parametrize("bad", [["--rename=work"], ["--pref=memory::s"], ["--session=yesterday"], ["-bad-name"],
                                 ["work", "--on-conflict=overwrite"]])
def test_usage_errors_exit_2(world: RestoreWorld, capsys: pytest.CaptureFixture[str], bad: list[str]) -> None:
    status, result = cli(world, capsys, *bad)
    assert status == 2 and result["code"] == "usage"


def test_all_with_names_or_session_is_a_usage_error_exit_2(world: RestoreWorld,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    status, result = cli(world, capsys, "--all", "work")
    assert status == 2 and "do not name qubes" in str(result["message"])
    status, result = cli(world, capsys, "--all", "--session=latest")
    assert status == 2 and "--as-of" in str(result["hint"])
    status, result = cli(world, capsys, "--all", "--as-of=latest")
    assert status == 2


def test_all_dry_run_names_each_qubes_session_and_the_prefs(world: RestoreWorld, capsys: pytest.CaptureFixture[str],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    world.qubes.prefs["clockvm"] = (False, PropertyValue("vm", "sys-net"))
    second = world.backup("work")
    world.qubes.prefs["clockvm"] = (False, PropertyValue("vm", ""))
    for name in ("disp1", "work"):
        world.remove(name)

    status, result = cli(world, capsys, "--all", "--prefs", "--on-conflict=skip", "--dry-run",
                         "--trust-archive-settings")  # the archive is unencrypted

    assert status == 0 and result["dry_run"] is True and result["changed"] is True  # would change
    sessions = {q["name"]: q["session"] for q in result["qubes"]}  # type: ignore[union-attr]
    assert sessions["work"] == second and sessions["fedora"] != second
    assert result["sessions"] == sorted(set(sessions.values()))
    prefs = result["prefs"]
    assert prefs["changes"] == [{"key": "clockvm", "old": "", "new": "sys-net", "ok": True}]  # type: ignore[index]
    (trusted,) = prefs["problems"]  # type: ignore[index]
    assert (trusted["code"], trusted["blocking"], trusted["setting"]) == ("untrusted_setting", False, "pref:clockvm")
    monkeypatch.setattr("sys.stdout.isatty", lambda: True)  # a terminal: the human text
    human = main(["restore", f"--dest={world.dest}", f"--wyng={world.executable}", "--all", "--prefs",
                  "--on-conflict=skip", "--dry-run", "--trust-archive-settings"], connect=lambda: world.qubes)
    out = capsys.readouterr().out
    assert human == 0 and f"Sessions {', '.join(result['sessions'])}, each qube from its own" in out  # type: ignore[arg-type]
    assert f"work                     AppVM         {second}  create" in out
    assert "set clockvm: '' -> 'sys-net'" in out
