"""Lab tier: real `salt-call --local` applies the `wyngq` states against real
qubesd, real qubesadmin (qvm-ls) and real Wyng.

Salt is not a project dependency: install it apart, e.g.
    python3 -m venv /var/tmp/wyngq-salt-venv && /var/tmp/wyngq-salt-venv/bin/pip install salt
and point `WYNGQ_SALT_CALL` at its `salt-call` (that path is also tried, then PATH).
The module runs the wyngq command (Salt's own Python never imports wyngq).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.integration.helpers import tree_hash
from tests.lab.conftest import SMALL, Lab
from tests.lab.hostile import edit_newest_session, hostile_edit

pytestmark = pytest.mark.lab

DEFAULT_SALT_CALL = "/var/tmp/wyngq-salt-venv/bin/salt-call"


def salt_call_path() -> str | None:
    given = os.environ.get("WYNGQ_SALT_CALL")
    if given:
        return given
    if os.access(DEFAULT_SALT_CALL, os.X_OK):
        return DEFAULT_SALT_CALL
    return shutil.which("salt-call")


class Minion:
    """A masterless minion in tmp: file_roots = the sls files here + the repo's salt/."""

    def __init__(self, tmp: Path, salt_call: str, lab: Lab) -> None:
        self.salt_call = salt_call
        self.root = tmp / "minion"
        self.srv = self.root / "srv"
        self.profiles = tmp / "profiles"
        for path in (self.srv, self.profiles, self.root / "conf"):
            path.mkdir(parents=True)
        command = [sys.executable, "-m", "wyngq"]
        config = {
            "file_client": "local",
            "file_roots": {"base": [str(self.srv), str(ROOT / "salt")]},
            "root_dir": str(self.root),
            "cachedir": str(self.root / "cache"),
            "pki_dir": str(self.root / "pki"),
            "log_file": str(self.root / "minion.log"),
            "wyngq": {"command": command, "profile_dir": str(self.profiles)},
        }
        (self.root / "conf" / "minion").write_text(json.dumps(config))  # JSON is YAML
        self.env = {
            **os.environ,
            "PYTHONPATH": f"{ROOT}:{os.environ.get('PYTHONPATH', '')}",
            "WYNGQ_LOCK_PATH": str(tmp / "wyngq.lock"),
            "WYNGQ_STATE_DIR": str(tmp / "state"),
        }
        self.lab = lab

    def call(self, *args: str, passthrough: bool = True) -> tuple[int, Any]:
        argv = [self.salt_call, "--local", "-c", str(self.root / "conf"),
                *(["--retcode-passthrough"] if passthrough else []), "--out=json", "--log-level=quiet", *args]
        done = subprocess.run(argv, capture_output=True, text=True, env=self.env, cwd=self.root,
                              stdin=subprocess.DEVNULL, timeout=600, check=False)
        start = done.stdout.find("{")
        assert start >= 0, f"salt-call printed no JSON (exit {done.returncode}):\n{done.stdout}\n{done.stderr}"
        return done.returncode, json.loads(done.stdout[start:])["local"]

    def apply(self, sls: str, body: str, *, test: bool = False, passthrough: bool = True) -> tuple[int, dict[str, Any]]:
        (self.srv / f"{sls}.sls").write_text(body)
        code, states = self.call("state.apply", sls, *(["test=True"] if test else []), passthrough=passthrough)
        assert isinstance(states, dict) and len(states) == 1, states
        return code, next(iter(states.values()))


@pytest.fixture
def minion(lab: Lab, tmp_path: Path) -> Minion:
    salt_call = salt_call_path()
    if salt_call is None:
        pytest.skip("salt-call not found: pip install salt in a venv and set WYNGQ_SALT_CALL (see module docstring)")
    m = Minion(tmp_path, salt_call, lab)
    code, synced = m.call("saltutil.sync_all")
    assert code == 0 and "states.wyngq" in synced["states"] and "modules.wyngq" in synced["modules"], synced
    return m


def test_salt_call_backs_up_restores_and_is_idempotent(lab: Lab, minion: Minion) -> None:
    tpl = lab.create("tpl", "TemplateVM", label="black")
    app = lab.create("app", "AppVM", template=tpl, label="blue")
    lab.fill(tpl, "root", os.urandom(SMALL))
    lab.fill(app, "private", os.urandom(SMALL))
    app.memory = 555
    (minion.profiles / "lab.toml").write_text(
        f'dest = "file:{lab.archive_dir}/salt.wyng"\nwyng = "{lab.wyng}"\nmeta_dir = "{lab.meta_dir}"\n'
        f'[qubes]\ninclude = ["{tpl.name}", "{app.name}"]\n'
    )
    code, created = minion.call("wyngq.run", "create", "lab", 'args=["--encrypt=off"]')
    assert code == 0 and created["ok"], created

    backup_sls = "nightly:\n  wyngq.backed_up:\n    - profile: lab\n    - max_age: 1d\n"
    code, planned = minion.apply("backup", backup_sls, test=True)
    assert code == 0 and planned["result"] is None, planned
    assert sorted(planned["changes"]["would_back_up"]) == sorted([tpl.name, app.name])
    assert planned["changes"]["would_back_up"][app.name]["volumes"] == [f"appvms/{app.name}/private.img"]
    lab.app.domains.refresh_cache(force=True)
    assert getattr(lab.app.domains[app.name], "backup_timestamp", None) is None  # the dry run set nothing

    code, first = minion.apply("backup", backup_sls)
    assert code == 0 and first["result"] is True, first
    session = first["changes"]["session"]
    assert first["changes"]["qubes"] == {tpl.name: {"old": None, "new": session},
                                         app.name: {"old": None, "new": session}}
    lab.app.domains.refresh_cache(force=True)
    assert lab.app.domains[app.name].backup_timestamp > 0

    code, again = minion.apply("backup", backup_sls)
    assert code == 0 and again["result"] is True and again["changes"] == {}, again

    # The app qube is lost; the state puts it back from the session, once.
    del lab.app.domains[app.name]
    restore_sls = f"app-present:\n  wyngq.restored:\n    - profile: lab\n    - qubes: [{app.name}, {tpl.name}]\n"
    code, plan = minion.apply("restore", restore_sls, test=True)
    assert code == 0 and plan["result"] is None, plan
    assert list(plan["changes"]["would_restore"]) == [app.name]
    assert plan["changes"]["would_restore"][app.name]["action"] == "create"

    code, restored = minion.apply("restore", restore_sls)
    assert code == 0 and restored["result"] is True, restored
    assert list(restored["changes"]["qubes"]) == [app.name]
    assert restored["changes"]["qubes"][app.name]["action"] == "create"
    lab.app.domains.refresh_cache(force=True)
    assert int(lab.app.domains[app.name].memory) == 555

    code, present = minion.apply("restore", restore_sls)
    assert code == 0 and present["result"] is True and present["changes"] == {}, present


def test_salt_call_reports_failure_with_the_commands_code(lab: Lab, minion: Minion) -> None:
    app = lab.create("std", "StandaloneVM", label="blue")
    (minion.profiles / "lab.toml").write_text(
        f'dest = "file:{lab.archive_dir}/missing.wyng"\nwyng = "{lab.wyng}"\nmeta_dir = "{lab.meta_dir}"\n'
        f'[qubes]\ninclude = ["{app.name}"]\n'
    )

    code, ret = minion.apply("backup", "nightly:\n  wyngq.backed_up:\n    - profile: lab\n")

    assert code != 0 and ret["result"] is False and ret["changes"] == {}, ret
    assert ret["comment"].startswith("cannot tell which qubes are due: [archive_not_found, exit 9]"), ret["comment"]

    code, result = minion.call("wyngq.list", "lab")
    assert code == result["exit_code"] != 0 and result["ok"] is False
    # without --retcode-passthrough salt-call still fails, with its own status 1
    code, result = minion.call("wyngq.list", "lab", passthrough=False)
    assert code == 1 and result["ok"] is False
    code, ret = minion.apply("backup", "nightly:\n  wyngq.backed_up:\n    - profile: lab\n", passthrough=False)
    assert code == 1 and ret["result"] is False



def test_salt_never_restores_settings_that_give_power_from_an_edited_unencrypted_archive(
    lab: Lab, minion: Minion, tmp_path: Path
) -> None:
    """The archive as in tests/lab/test_trust_lab.py: Salt has no override, in test mode or not."""
    tpl = lab.create("tpl", "TemplateVM", label="black")
    gui = lab.create("gui", "AppVM", template=tpl, label="purple")
    app = lab.create("app", "AppVM", template=tpl, label="blue")
    lab.fill(app, "private", os.urandom(SMALL // 4))
    dest = f"file:{lab.archive_dir}/salt-trust.wyng"
    (minion.profiles / "lab.toml").write_text(
        f'dest = "{dest}"\nwyng = "{lab.wyng}"\nmeta_dir = "{lab.meta_dir}"\n'
        f'[qubes]\ninclude = ["{tpl.name}", "{app.name}"]\n'
    )
    code, created = minion.call("wyngq.run", "create", "lab", 'args=["--encrypt=off"]')
    assert code == 0 and created["ok"], created
    code, done = minion.call("wyngq.backup", "lab")
    assert code == 0 and done["ok"], done
    pool_dir = dict(lab.app.pools[app.volumes["private"].pool].config)["dir_path"]
    edit_newest_session(lab.wyng, dest, lab.meta_dir, pool_dir, [f"appvms/{app.name}/private.img"],
                        hostile_edit(app.name, gui.name), tmp_path)
    domains: Any = lab.app.domains
    del domains[app.name]

    restore_sls = f"app-present:\n  wyngq.restored:\n    - profile: lab\n    - qubes: [{app.name}]\n"
    for test in (True, False):
        code, ret = minion.apply("restore", restore_sls, test=test)
        assert code != 0 and ret["result"] is False and ret["changes"] == {}, ret
        assert ret["comment"].startswith("the restore plan failed: [untrusted_settings, exit 6]"), ret["comment"]
        assert f"property guivm default -> '{gui.name}'" in ret["comment"]
    lab.app.domains.refresh_cache(force=True)
    assert app.name not in lab.app.domains


def test_salt_test_mode_changes_nothing_and_due_is_per_archive(lab: Lab, minion: Minion) -> None:
    tpl = lab.create("tpl", "TemplateVM", label="black")
    app = lab.create("app", "AppVM", template=tpl, label="blue")
    lab.fill(tpl, "root", os.urandom(SMALL))
    lab.fill(app, "private", os.urandom(SMALL))
    pools = Path(os.environ["WYNGQ_LAB_POOL_DIR"])
    for name, archive in (("lab", "one.wyng"), ("other", "two.wyng")):
        (minion.profiles / f"{name}.toml").write_text(
            f'dest = "file:{lab.archive_dir}/{archive}"\nwyng = "{lab.wyng}"\nmeta_dir = "{lab.meta_dir}"\n'
            f'[qubes]\ninclude = ["{tpl.name}", "{app.name}"]\n')
        code, created = minion.call("wyngq.run", "create", name, 'args=["--encrypt=off"]')
        assert code == 0 and created["ok"], created

    def watched() -> dict[str, str]:
        return tree_hash(lab.archive_dir, pools / "appvms" / app.name, pools / "vm-templates" / tpl.name)

    backup_sls = "nightly:\n  wyngq.backed_up:\n    - profile: lab\n    - max_age: 1d\n"
    before = watched()
    code, planned = minion.apply("backup", backup_sls, test=True)
    assert code == 0 and planned["result"] is None and sorted(planned["changes"]["would_back_up"]) == sorted(
        [tpl.name, app.name]), planned
    assert watched() == before  # the archive and the pools byte for byte

    code, first = minion.apply("backup", backup_sls)
    assert code == 0 and first["result"] is True and first["changes"]["session"], first
    code, again = minion.apply("backup", backup_sls, test=True)
    assert code == 0 and again["result"] is True and again["changes"] == {}, again

    # the qube comes back from the archive; then test mode still works (no Wyng send --dry-run)
    del lab.app.domains[app.name]
    restore_sls = f"app-present:\n  wyngq.restored:\n    - profile: lab\n    - qubes: [{app.name}]\n"
    code, restored = minion.apply("restore", restore_sls)
    assert code == 0 and restored["result"] is True and list(restored["changes"]["qubes"]) == [app.name], restored
    code, present = minion.apply("restore", restore_sls)  # from qvm-ls and the catalogue
    assert code == 0 and present["result"] is True and "present already" in present["comment"], present
    code, after = minion.apply("backup", backup_sls, test=True)
    assert code == 0 and after["result"] is True, after  # restored, not due: its session is in this archive

    # the same qubes are due for another archive
    other_sls = "other-nightly:\n  wyngq.backed_up:\n    - profile: other\n    - max_age: 1d\n"
    code, other = minion.apply("other", other_sls, test=True)
    assert code == 0 and other["result"] is None and sorted(other["changes"]["would_back_up"]) == sorted(
        [tpl.name, app.name]), other

    # the plain `cmd.run` recipe with `stateful`: test mode reports result None with the would-be changes
    command = f"{sys.executable} -m wyngq --json --quiet --unattended --profile=other backup --max-age=20h"
    recipe = (f"other-backup:\n  cmd.run:\n    - name: {command}\n    - env:\n"
              f"      - WYNGQ_PROFILE_DIR: {minion.profiles}\n    - stateful:\n"
              f"      - test_name: {command} --dry-run\n")
    before = watched()
    code, stateful = minion.apply("recipe", recipe, test=True)
    assert code == 0 and stateful["result"] is None and stateful["changes"]["dry_run"] is True, stateful
    assert watched() == before
