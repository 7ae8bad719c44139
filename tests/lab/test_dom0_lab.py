"""Lab tier: dom0's home and configuration with real qubesd and real Wyng.

The lab has no dom0 user and no rpm database of dom0's packages: a temporary
directory stands in for the home (`--dom0-home-dir`), another for dom0's
system root (WYNGQ_DOM0_ROOT), and the fake rpm answers which files packages
own (WYNGQ_RPM). Everything else is the real program: Wyng stores both
streams in the qubes' session, receives them, verifies them.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.lab.conftest import SMALL, Lab

pytestmark = pytest.mark.lab

POLICY = "etc/qubes/policy.d/30-user.policy"
PACKAGED = "etc/qubes/policy.d/90-default.policy"


def make_home(root: Path, count: int = 300) -> None:
    rng = random.Random(15)
    for i in range(count):
        path = root / f"dir{i % 12}" / f"sub{i % 5}" / f"file{i:03d}.dat"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(rng.choice([100, 2_000, 20_000, 90_000, 300_000])))
        if i % 7 == 0:
            path.chmod(0o600)
    (root / ".cache" / "junk").parent.mkdir(parents=True)
    (root / ".cache" / "junk").write_bytes(b"regenerated")
    os.symlink("dir0/sub0/file000.dat", root / "latest")
    (root / "dir3").chmod(0o750)


def tree(root: Path) -> dict[str, tuple[Any, ...]]:
    """Per path: mode, mtime in ns, and sha256 (files) or target (symlinks)."""
    found: dict[str, tuple[Any, ...]] = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        what = (os.readlink(path) if path.is_symlink() else
                hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir")
        found[str(path.relative_to(root))] = (stat.S_IMODE(st.st_mode), st.st_mtime_ns, what)
    return found


class Dom0Lab:
    def __init__(self, lab: Lab, tmp: Path) -> None:
        self.lab = lab
        self.dest = f"file:{lab.archive_dir}/dom0.wyng"
        self.home = tmp / "home"
        self.sysroot = tmp / "sysroot"
        owned = tmp / "owned.txt"
        owned.write_text(f"/{PACKAGED}\n")
        rpm = tmp / "rpm"
        rpm.write_text(f"#!/bin/sh\nexport FAKE_RPM_OWNED='{owned}'\n"
                       f'exec "{sys.executable}" "{ROOT / "tests" / "fakes" / "fake_rpm.py"}" "$@"\n')
        rpm.chmod(0o755)
        self.env = {**os.environ, "WYNGQ_DOM0_ROOT": str(self.sysroot), "WYNGQ_RPM": str(rpm)}

    def cli(self, *args: str) -> tuple[int, dict[str, Any]]:
        argv = [sys.executable, "-m", "wyngq", f"--dest={self.dest}", f"--wyng={self.lab.wyng}",
                f"--meta-dir={self.lab.meta_dir}", "--json", *args]
        done = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, cwd=ROOT, timeout=900,
                              env=self.env)
        lines = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
        assert lines and lines[-1]["type"] == "result", done.stdout + done.stderr
        return done.returncode, lines[-1]

    def backup(self, qube: str) -> dict[str, Any]:
        code, result = self.cli("backup", qube, "--dedup", "--dom0-home", f"--dom0-home-dir={self.home}",
                                "--dom0-config")
        assert code == 0, result
        return result


def test_dom0_home_and_config_backed_up_with_a_qube_changed_and_restored_beside(lab: Lab, tmp_path: Path) -> None:
    world = Dom0Lab(lab, tmp_path)
    code, result = world.cli("create", "--encrypt=off")
    assert code == 0, result
    tpl = lab.create("tpl", "TemplateVM", label="black")
    app = lab.create("app", "AppVM", template=tpl)
    lab.fill(app, "private", os.urandom(SMALL))
    make_home(world.home)
    (world.sysroot / POLICY).parent.mkdir(parents=True)
    (world.sysroot / POLICY).write_text("qubes.Filecopy * work vault deny\n")
    (world.sysroot / PACKAGED).write_text("# from a package\n")

    first = world.backup(app.name)
    assert [(d["item"], d["ok"]) for d in first["dom0"]] == [("home", True), ("config", True)]
    assert first["dom0"][0]["members"] > 300

    # 1 % of the files change (3 of 300), one of them grows; the policy changes
    for i in (5, 150, 299):
        path = world.home / f"dir{i % 12}" / f"sub{i % 5}" / f"file{i:03d}.dat"
        path.write_bytes(os.urandom(path.stat().st_size + (4096 if i == 150 else 0)))
    (world.sysroot / POLICY).write_text("qubes.Filecopy * work vault allow\n")
    second = world.backup(app.name)
    assert second["session"] != first["session"]

    code, listed = world.cli("list", f"--session={second['session']}")
    assert code == 0 and {d["item"] for d in listed["dom0"]} == {"home", "config"}
    assert all(d["size"] > 0 for d in listed["dom0"])
    code, verified = world.cli("verify")
    assert code == 0 and [(d["item"], d["ok"]) for d in verified["dom0"]] == [("home", True), ("config", True)]

    into = tmp_path / "home-restore"
    code, restored = world.cli("restore", "--dom0-home", f"--session={second['session']}", f"--into={into}")
    assert code == 0, restored
    expected = {p: v for p, v in tree(world.home).items() if not p.startswith(".cache")}
    assert tree(into) == expected  # sha256 per file, modes, mtimes; .cache left out

    code, config = world.cli("restore", "--dom0-config", f"--session={first['session']}", "--diff",
                             f"--into={tmp_path / 'config-restore'}")
    assert code == 0, config
    (item,) = config["restored"]
    states = {f["path"]: f for f in item["config_files"]}
    assert list(states) == [f"/{POLICY}"]  # the packaged policy does not travel
    assert states[f"/{POLICY}"]["state"] == "different"
    assert "-qubes.Filecopy * work vault allow\n+qubes.Filecopy * work vault deny\n" in states[f"/{POLICY}"]["diff"]
    assert (world.sysroot / POLICY).read_text() == "qubes.Filecopy * work vault allow\n"  # live file untouched


def test_the_whole_machine_comes_back_in_one_restore(lab: Lab, tmp_path: Path) -> None:
    """The worst day: the qubes are gone; one command brings them back and puts
    dom0's home beside the live one (the config's place is shown by a dry run:
    the lab has no dom0 user for a default home directory)."""
    world = Dom0Lab(lab, tmp_path)
    assert world.cli("create", "--encrypt=off")[0] == 0
    tpl = lab.create("tpl", "TemplateVM", label="black")
    app = lab.create("app", "AppVM", template=tpl)
    data = os.urandom(SMALL)
    lab.fill(app, "private", data)
    make_home(world.home, count=40)
    (world.sysroot / POLICY).parent.mkdir(parents=True)
    (world.sysroot / POLICY).write_text("qubes.Filecopy * work vault deny\n")
    code, backed_up = world.cli("backup", tpl.name, app.name, "--dom0-home", f"--dom0-home-dir={world.home}",
                                "--dom0-config")
    assert code == 0, backed_up
    session = backed_up["session"]
    names = [app.name, tpl.name]
    for name in names:
        del lab.app.domains[name]
    state = tmp_path / "state"
    world.env["WYNGQ_STATE_DIR"] = str(state)

    code, plan = world.cli("restore", "--all", "--prefs", "--dom0-config", "--dry-run")
    assert code == 0, plan
    assert plan["dom0"]["into"] == {"config": str(state / "restored" / session)}
    assert not (state / "restored").exists()

    into = tmp_path / "home-restore"
    code, done = world.cli("restore", "--all", "--prefs", "--dom0-home", f"--into={into}")

    assert code == 0, done
    assert sorted((q["name"], q["action"], q["ok"]) for q in done["qubes"]) == sorted(
        (n, "create", True) for n in names)
    assert done["dom0"]["session"] == session
    assert tree(into) == {p: v for p, v in tree(world.home).items() if not p.startswith(".cache")}
    lab.app.domains.refresh_cache(force=True)
    restored = lab.app.domains[app.name]
    volume = restored.volumes["private"]
    path = os.path.join(dict(lab.app.pools[volume.pool].config)["dir_path"], volume.vid + ".img")
    assert Path(path).read_bytes() == data
    assert str(restored.template) == tpl.name
