"""Lab tier: an unencrypted archive whose settings bundle someone edited (with
real Wyng) to carry a dom0 PCI device, a GUI qube outside the restore and a
tag qrexec policy could match (restore.trust, docs/security.md).

- qrexec `+restore` refuses them, in a dry run and for real, even with a
  profile that allows restores from unauthenticated archives (exit 6);
- dom0 `restore --dry-run` lists each as a problem with its old and new value;
  `restore` refuses them (exit 6, also with -u) and applies them, through real
  qubesd, with `--trust-archive-settings`.

Run under `flock /tmp/wyngq-wyng.lock` (one Wyng per machine).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from tests.lab.conftest import SMALL, Lab
from tests.lab.hostile import edit_newest_session, hostile_edit
from tests.lab.test_backup_lab import cli
from tests.lab.test_rpc_lab import Dom0

pytestmark = pytest.mark.lab

HOSTILE = {"device:pci:dom0:00_14.0", "property:guivm", "tag:policy-admin"}


def untrusted(result: dict[str, Any], name: str) -> dict[str, dict[str, Any]]:
    (qube,) = [q for q in result["qubes"] if q["name"] == name]
    return {p["setting"]: p for p in qube["problems"] if p["code"] == "untrusted_setting"}


def test_an_edited_unencrypted_archive_is_refused_unless_dom0_trusts_it(lab: Lab, tmp_path: Path) -> None:
    tpl = lab.create("tpl", "TemplateVM", label="black")
    gui = lab.create("gui", "AppVM", template=tpl, label="purple")  # made first: removed after app
    app = lab.create("app", "AppVM", template=tpl, label="blue")
    lab.fill(app, "private", os.urandom(SMALL // 4))
    app.memory = 444
    mgmt = lab.create("mgmt", "AppVM", template=tpl, label="purple")
    dom0 = Dom0(lab, tmp_path, mgmt.name, app.name, tpl.name)
    assert cli(lab, dom0.dest, "create", "--encrypt=off")[0] == 0
    code, lines = cli(lab, dom0.dest, "backup", tpl.name, app.name)
    assert code == 0, lines[-1]
    pool_dir = dict(lab.app.pools[app.volumes["private"].pool].config)["dir_path"]
    session = edit_newest_session(lab.wyng, dom0.dest, lab.meta_dir, pool_dir, [f"appvms/{app.name}/private.img"],
                                  hostile_edit(app.name, gui.name), tmp_path)
    domains: Any = lab.app.domains
    del domains[app.name]
    time.sleep(1.05)

    for dry_run in (True, False):
        code, lines = dom0.call("restore", {"profile": "lab", "qubes": [app.name], "dry_run": dry_run},
                                assume_yes=True)
        assert (code, lines[-1]["code"]) == (6, "untrusted_settings"), lines[-1]
        assert set(untrusted(lines[-1], app.name)) == HOSTILE and lines[-1]["session"] == session
    lab.app.domains.refresh_cache(force=True)
    assert app.name not in lab.app.domains

    code, lines = cli(lab, dom0.dest, "restore", app.name, "--dry-run")
    result = lines[-1]
    assert (code, result["code"], result["dry_run"]) == (6, "untrusted_settings", True), result
    found = untrusted(result, app.name)
    assert set(found) == HOSTILE and all(p["blocking"] for p in found.values())
    assert (found["property:guivm"]["old"], found["property:guivm"]["new"]) == (None, gui.name)
    assert found["device:pci:dom0:00_14.0"]["new"] == "dom0:00_14.0 (*) mode=required"
    assert "a device of dom0" in found["device:pci:dom0:00_14.0"]["message"]

    code, lines = cli(lab, dom0.dest, "-u", "restore", app.name)
    assert (code, lines[-1]["code"], lines[-1]["changed"]) == (6, "untrusted_settings", False), lines[-1]
    lab.app.domains.refresh_cache(force=True)
    assert app.name not in lab.app.domains

    code, lines = cli(lab, dom0.dest, "restore", app.name, "--trust-archive-settings")
    assert code == 0, lines[-1]
    assert set(untrusted(lines[-1], app.name)) == HOSTILE
    lab.app.domains.refresh_cache(force=True)
    restored = lab.app.domains[app.name]
    assert restored.guivm.name == gui.name and restored.memory == 444
    assert "policy-admin" in restored.tags and "backup-restore-in-progress" not in restored.tags
    (assigned,) = list(restored.devices["pci"].get_assigned_devices())
    assert (assigned.backend_domain.name, assigned.port_id) == ("dom0", "00_14.0")
