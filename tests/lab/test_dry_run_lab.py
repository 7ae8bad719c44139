"""Lab tier: a backup dry run leaves the archive and the pools byte for byte, also
right after a restore; "due" is per archive. Real qubesd, real Wyng."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.integration.helpers import tree_hash
from tests.lab.conftest import SMALL, Lab

pytestmark = pytest.mark.lab


class Cli:
    def __init__(self, lab: Lab, tmp: Path) -> None:
        self.lab = lab
        self.env = {**os.environ, "WYNGQ_STATE_DIR": str(tmp / "state"), "WYNGQ_LOCK_PATH": str(tmp / "lock")}

    def __call__(self, dest: str, *args: str) -> tuple[int, dict[str, object]]:
        argv = [sys.executable, "-m", "wyngq", f"--dest={dest}", f"--wyng={self.lab.wyng}",
                f"--meta-dir={self.lab.meta_dir}", "--json", "--unattended", *args]
        done = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, cwd=ROOT,
                              env=self.env, timeout=600, check=False)
        lines = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
        assert lines and lines[-1]["type"] == "result", done.stdout + done.stderr
        return done.returncode, lines[-1]


def test_a_dry_run_changes_nothing_before_and_after_a_restore(lab: Lab, tmp_path: Path) -> None:
    cli = Cli(lab, tmp_path)
    tpl = lab.create("tpl", "TemplateVM", label="black")
    app = lab.create("app", "AppVM", template=tpl, label="blue")
    new = lab.create("new", "AppVM", template=tpl, label="green")
    for vm, kind in ((tpl, "root"), (app, "private"), (new, "private")):
        lab.fill(vm, kind, os.urandom(SMALL))
    dest = f"file:{lab.archive_dir}/dry.wyng"
    pools = Path(os.environ["WYNGQ_LAB_POOL_DIR"])
    watched = (lab.archive_dir, pools / "appvms" / app.name, pools / "appvms" / new.name,
               pools / "vm-templates" / tpl.name)
    assert cli(dest, "create", "--encrypt=off")[0] == 0
    code, first = cli(dest, "backup", tpl.name, app.name)
    assert code == 0, first

    for record in (True, False):  # from the archive record, then from the catalogue
        if not record:
            for path in (tmp_path / "state" / "archives").iterdir():
                path.unlink()
        before = tree_hash(*watched)
        code, planned = cli(dest, "backup", "--dry-run", tpl.name, app.name, new.name)
        assert code == 0 and planned["dry_run"] is True and planned["changed"] is True, planned
        assert tree_hash(*watched) == before  # no Vol_ folder, no archive.ini rewrite, no snapshot file
        incremental = {v["local_name"]: v["incremental"] for v in planned["volumes"]}  # type: ignore[union-attr]
        assert incremental[f"appvms/{app.name}/private.img"] is True
        assert incremental[f"appvms/{new.name}/private.img"] is False

    # a restore over the app, and one that creates it again: after the second, the new volume
    # has no Wyng snapshot and Wyng's own `send --dry-run` fails (S-tmp/manifest, docs/everyday.md)
    code, restored = cli(dest, "restore", "--on-conflict=replace", app.name)
    assert code == 0, restored
    name = app.name
    del lab.app.domains[name]
    code, restored = cli(dest, "restore", name)
    assert code == 0, restored
    assert not [n for n in os.listdir(pools / "appvms" / name) if n.endswith(".wyng1")]
    before = tree_hash(*watched)
    code, planned = cli(dest, "backup", "--dry-run", tpl.name, name)
    assert code == 0, planned
    assert tree_hash(*watched) == before
    code, done = cli(dest, "backup", tpl.name, name)  # and the real backup after it
    assert code == 0 and done["session"], done


def test_due_is_per_archive(lab: Lab, tmp_path: Path) -> None:
    cli = Cli(lab, tmp_path)
    std = lab.create("std", "StandaloneVM", label="blue")
    lab.fill(std, "private", os.urandom(SMALL))
    lab.fill(std, "root", os.urandom(SMALL))
    first, second = f"file:{lab.archive_dir}/a.wyng", f"file:{lab.archive_dir}/b.wyng"
    for dest in (first, second):
        assert cli(dest, "create", "--encrypt=off")[0] == 0
    code, done = cli(first, "backup", "--max-age=1h", std.name)
    assert code == 0 and done["session"], done
    code, again = cli(first, "backup", "--max-age=1h", std.name)
    assert code == 0 and again["changed"] is False and again["comment"].startswith("nothing due"), again
    code, other = cli(second, "backup", "--max-age=1h", "--dry-run", std.name)
    assert code == 0 and [e["name"] for e in other["schedule"] if e["due"]] == [std.name], other  # type: ignore
