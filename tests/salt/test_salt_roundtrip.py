"""CI tier: the Salt state over the execution module over the real command, in
subprocesses, against the fake Qubes (tests/integration/cli_driver.py) and the
fake `wyng`. Only `qvm-ls` is answered by the test, from the fake's state."""

from __future__ import annotations

import inspect
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, FakeWyngFactory
from tests.salt.conftest import load, run_for_real


class Minion:
    """The module and the state wired as Salt's loader wires them."""

    def __init__(self, tmp: Path, wyng: str) -> None:
        self.world = tmp / "world.json"
        pool = tmp / "pool"
        pool.mkdir()
        self.world.write_text(json.dumps({
            "pools": {"varlibqubes": str(pool)},
            "qubes": [
                {"name": "fedora", "klass": "TemplateVM", "data": {"root": (b"r" * 3000).hex(), "private": "aa" * 9}},
                {"name": "work", "klass": "AppVM", "data": {"private": os.urandom(20000).hex()}},
                {"name": "vault", "klass": "StandaloneVM",
                 "data": {"root": (b"s" * 4000).hex(), "private": os.urandom(5000).hex()}},
                {"name": "personal", "klass": "AppVM", "data": {"private": os.urandom(5000).hex()}},
            ],
        }))
        profiles = tmp / "profiles"
        profiles.mkdir()
        (tmp / "archive").mkdir()
        (profiles / "laptop.toml").write_text(
            f'dest = "file:{tmp / "archive"}"\nwyng = "{wyng}"\n[qubes]\ninclude = ["fedora", "work", "vault"]\n'
        )
        self.timestamps: dict[str, int] = {}
        real = run_for_real(ROOT, tmp)

        def run_all(argv: Sequence[str], **kwargs: Any) -> dict[str, Any]:
            if argv[0] == "qvm-ls":
                return {"retcode": 0, "stdout": self.qvm_ls(), "stderr": ""}
            done = real(argv, **kwargs)
            after = json.loads(self.world.read_text()).get("after", {})
            self.timestamps.update({n: s["backup_timestamp"] for n, s in after.items() if s["backup_timestamp"]})
            return done

        self.module = load("_modules")
        self.module.__opts__ = {"test": False, "wyngq": {
            "command": [sys.executable, "-m", "tests.integration.cli_driver", str(self.world)],
            "profile_dir": str(profiles),
        }}
        self.module.__context__ = {}
        self.module.__salt__ = {"cmd.run_all": run_all}
        self.state = load("_states")
        self.state.__opts__ = self.module.__opts__
        self.state.__salt__ = {f"wyngq.{name}": getattr(self.module, name) for name in ("due", "backup", "restore",
                                                                                       "present", "list_")}
        self.state.__salt__["wyngq.list"] = self.state.__salt__.pop("wyngq.list_")

    def qvm_ls(self) -> str:
        """What qvm-ls would say: the world's qubes and the timestamps the command set.
        (cli_driver builds a fresh fake per run, so the test carries them over.)"""
        spec = json.loads(self.world.read_text())
        rows = ["dom0|AdminVM", *(f"{qube['name']}|{qube['klass']}" for qube in spec["qubes"])]
        return "\n".join(rows) + "\n"

    def apply(self, *, test: bool = False, **kwargs: Any) -> dict[str, Any]:
        self.module.__opts__["test"] = test
        return dict(self.state.backed_up("nightly", profile="laptop", **kwargs))

    def restore(self, *, test: bool = False, **kwargs: Any) -> dict[str, Any]:
        self.module.__opts__["test"] = test
        return dict(self.state.restored("laptop-restored", profile="laptop", **kwargs))

    def remove_qube(self, name: str) -> None:
        spec = json.loads(self.world.read_text())
        spec["qubes"] = [q for q in spec["qubes"] if q["name"] != name]
        self.world.write_text(json.dumps(spec))


@pytest.fixture
def minion(tmp_path: Path, fake_wyng: FakeWyngFactory) -> Minion:
    m = Minion(tmp_path, fake_wyng())
    created = m.module.run("create", "laptop", args=["--encrypt=off"])
    assert created["ok"], created
    return m


def test_backed_up_backs_up_once_then_has_nothing_to_do(minion: Minion) -> None:
    planned = minion.apply(test=True, max_age="1d")
    assert planned["result"] is None, planned
    assert sorted(planned["changes"]["would_back_up"]) == ["fedora", "vault", "work"]
    assert planned["changes"]["would_back_up"]["work"]["volumes"] == ["appvms/work/private.img"]
    assert minion.timestamps == {}  # the dry run stored nothing

    first = minion.apply(max_age="1d")
    assert first["result"] is True, first
    session = first["changes"]["session"]
    assert first["changes"]["qubes"] == {name: {"old": None, "new": session} for name in ("fedora", "vault", "work")}
    assert sorted(minion.timestamps) == ["fedora", "vault", "work"]

    second = minion.apply(max_age="1d")
    assert second == {"name": "nightly", "result": True, "changes": {},
                      "comment": "All 3 qube(s) of profile 'laptop' have a session in its archive within 1d: "
                                 "fedora, vault, work"}

    listed = minion.module.list_("laptop")
    assert listed["ok"] and listed["qubes"] == {"fedora": [session], "vault": [session], "work": [session]}


def test_backed_up_reports_the_commands_error(minion: Minion, tmp_path: Path) -> None:
    profile = tmp_path / "profiles" / "laptop.toml"
    profile.write_text(profile.read_text().replace(str(tmp_path / "archive"), str(tmp_path / "nowhere")))

    ret = minion.apply(max_age="1d")

    assert ret["result"] is False and ret["changes"] == {}
    assert ret["comment"].startswith("cannot tell which qubes are due: [archive_not_found, exit 9] "), ret["comment"]
    assert minion.module.__context__["retcode"] == 9


def test_restored_restores_what_is_missing_and_leaves_what_exists(minion: Minion) -> None:
    session = minion.apply(max_age="1d")["changes"]["session"]

    present = minion.restore(qubes=["vault", "fedora"])
    assert present["result"] is True and present["changes"] == {}, present
    assert present["comment"] == (f"Nothing to restore: present already: vault (newest session {session}), "
                                  f"fedora (newest session {session})")  # qvm-ls and the catalogue only

    minion.remove_qube("vault")
    planned = minion.restore(test=True, qubes=["vault", "fedora"])
    assert planned["result"] is None, planned
    assert planned["changes"]["session"] == session
    plan = planned["changes"]["would_restore"]
    assert list(plan) == ["vault"] and plan["vault"]["action"] == "create"
    assert sorted(plan["vault"]["volumes"]) == ["appvms/vault/private.img", "appvms/vault/root.img"]

    done = minion.restore(qubes=["vault", "fedora"])
    assert done["result"] is True, done
    assert done["changes"]["session"] == session
    assert list(done["changes"]["qubes"]) == ["vault"] and done["changes"]["qubes"]["vault"]["action"] == "create"
    # (A second run finding it present is the first check above; the lab test runs both in order.)


def test_restored_refuses_a_blocked_plan_and_changes_nothing(minion: Minion) -> None:
    minion.apply(max_age="1d")

    ret = minion.restore(qubes=["vault"], on_conflict="fail")

    assert ret["result"] is False and ret["changes"] == {}
    assert ret["comment"].startswith("the restore plan failed: [conflict, exit 6]"), ret["comment"]
    assert "blocking: vault: a qube named 'vault' already exists" in ret["comment"]


def test_restored_never_restores_settings_that_give_power_from_an_unencrypted_archive(minion: Minion) -> None:
    spec = json.loads(minion.world.read_text())
    spec["qubes"].append({"name": "tagged", "klass": "AppVM", "template": "fedora", "tags": ["policy-admin"],
                          "data": {"private": "ab" * 100}})
    minion.world.write_text(json.dumps(spec))
    assert minion.module.backup("laptop", qubes=["tagged"])["ok"]
    minion.remove_qube("tagged")

    for test in (True, False):
        ret = minion.restore(test=test, qubes=["tagged"])
        assert ret["result"] is False and ret["changes"] == {}, ret
        assert ret["comment"].startswith("the restore plan failed: [untrusted_settings, exit 6]"), ret["comment"]
        assert "tag 'policy-admin' added from an archive Wyng does not authenticate" in ret["comment"]
    assert "tagged" not in json.loads(minion.world.read_text())["after"]
    assert "trust_archive_settings" not in inspect.signature(minion.module.restore).parameters


def test_backed_up_takes_dom0_items_as_the_profile_says(minion: Minion, tmp_path: Path) -> None:
    home = tmp_path / "dom0-home"
    home.mkdir()
    (home / ".bashrc").write_text("x\n")
    profile = tmp_path / "profiles" / "laptop.toml"
    profile.write_text(profile.read_text() + f'[dom0]\nhome = true\nhome_dir = "{home}"\n')

    planned = minion.apply(test=True, max_age="1d")
    done = minion.apply(max_age="1d")

    assert planned["changes"]["would_back_up_dom0"]["home"]["volume"] == "wyng-qubes-dom0-home"
    assert done["result"] is True, done
    assert done["changes"]["dom0"]["home"]["ok"] is True
