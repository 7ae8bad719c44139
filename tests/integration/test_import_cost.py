"""CI tier: what each action loads. A run imports only its own action's code:
`list` loads no backup, restore, dom0 or tar code and not qubesadmin, a backup no
restore or maintenance code. Counted as modules in a real subprocess run (through
the fake `wyng` and the fake Qubes), so a new top-level import fails here rather
than only slowing every run down (docs/benchmarks.md: start-up is most of wyngq's
own time in a small backup)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, FakeWyngFactory

# Runs the CLI in-process against the fake Qubes of tests/integration/cli_driver.py
# and writes the modules loaded by the end of the run.
DRIVER = """
import json, sys
from tests.integration.cli_driver import build
from wyngq.cli import main
with open(sys.argv[1], encoding="utf-8") as handle:
    fake = build(json.load(handle))
status = main(sys.argv[3:], connect=lambda: fake)
with open(sys.argv[2], "w", encoding="utf-8") as handle:
    json.dump({"status": status, "modules": sorted(sys.modules)}, handle)
"""

WORLD = {
    "pools": {"varlibqubes": ""},
    "qubes": [{"name": "fedora", "klass": "TemplateVM", "data": {"root": "00" * 4096, "private": "11" * 4096}},
              {"name": "work", "klass": "AppVM", "template": "fedora", "data": {"private": "22" * 8192}}],
}
# Never needed by a backup: what restores (the restore package's planner for --shutdown's dependants
# aside, below), maintenance, the qrexec request parser, the management-qube client, the other
# actions' part of the JSON contract, and the other actions' CLI modules.
RESTORE_ONLY = (*(f"wyngq.restore.{m}" for m in ("apply", "run", "plan", "ops", "data", "qubesxml", "select",
                                                 "sessions", "settings", "menus", "carried", "prefs", "trust",
                                                 "model", "report")),
                "wyngq.dom0.restore", "wyngq.dom0.extract", "wyngq.dom0.compare", "wyngq.maintenance", "wyngq.rpc",
                "wyngq.client", "wyngq.contract.decode", "wyngq.contract.registry", "wyngq.contract.restore",
                "wyngq.contract.maintenance", "wyngq.contract.jobs",
                "wyngq.cli.restore", "wyngq.cli.prune", "wyngq.cli.verify", "wyngq.cli.delete", "wyngq.cli.listing")
# Needed by a backup only when it asks for them: dom0's home and configuration, --shutdown's dependants.
BACKUP_OPTIONAL = ("wyngq.dom0.walk", "wyngq.dom0.tarwrite", "wyngq.dom0.configfiles", "wyngq.dom0.rpm",
                   "wyngq.dom0.user", "wyngq.restore.resolve")
# Never needed by `list` without --session: no backup, no bundle or tar code, no dom0 item, not qubesadmin.
NOT_FOR_LIST = ("wyngq.backup", "wyngq.bundle", "wyngq.carry", "wyngq.tarstream", "wyngq.dom0", "wyngq.create",
                "wyngq.restore", "wyngq.qubes.admin", "qubesadmin", "tarfile", "gzip", "lxml", "wyngq.cli.backup",
                "wyngq.cli.create", *(m for m in RESTORE_ONLY if m != "wyngq.cli.listing"))


def loaded(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> dict[str, object]:
    world = tmp_path / "world.json"
    if not world.exists():
        pool = tmp_path / "pool"
        pool.mkdir()
        world.write_text(json.dumps({**WORLD, "pools": {"varlibqubes": str(pool)}}))
    out = tmp_path / "modules.json"
    done = subprocess.run([sys.executable, "-c", DRIVER, str(world), str(out), *args], cwd=ROOT, check=True,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})
    result: dict[str, object] = json.loads(out.read_text())
    return {**result, "stderr": done.stderr}


def offending(modules: object, prefixes: tuple[str, ...]) -> list[str]:
    assert isinstance(modules, list)
    return [m for m in modules if any(m == p or m.startswith(p + ".") for p in prefixes)]


def test_importing_the_cli_loads_no_action(tmp_path: Path) -> None:
    probe = "import json, sys, wyngq.cli; print(json.dumps(sorted(sys.modules)))"
    modules = json.loads(subprocess.run([sys.executable, "-c", probe], cwd=ROOT, check=True, capture_output=True,
                                        text=True, timeout=60).stdout)
    assert "wyngq.cli.common" in modules  # the probe sees what it imports
    assert offending(modules, NOT_FOR_LIST + RESTORE_ONLY) == []


def test_list_and_backup_load_only_their_own_code(tmp_path: Path, fake_wyng: FakeWyngFactory) -> None:
    archive = tmp_path / "archive"
    archive.mkdir()
    common = (f"--dest=file:{archive}", f"--wyng={fake_wyng()}", "--json", "--unattended")
    assert loaded(tmp_path, *common, "create", "--encrypt=off")["status"] == 0

    backup = loaded(tmp_path, *common, "backup", "fedora", "work")
    listing = loaded(tmp_path, *common, "list")

    assert backup["status"] == 0 and listing["status"] == 0
    assert "wyngq.backup" in backup["modules"]  # type: ignore[operator]
    assert "wyngq.listing" in listing["modules"]  # type: ignore[operator]
    assert offending(backup["modules"], RESTORE_ONLY + BACKUP_OPTIONAL) == []
    assert offending(listing["modules"], NOT_FOR_LIST) == []


def test_phase_times_come_on_stderr_only_when_asked(tmp_path: Path, fake_wyng: FakeWyngFactory) -> None:
    archive = tmp_path / "archive"
    archive.mkdir()
    common = (f"--dest=file:{archive}", f"--wyng={fake_wyng()}", "--json", "--unattended")
    quiet = loaded(tmp_path, *common, "create", "--encrypt=off", env={"WYNGQ_PHASE_TIMES": "0"})
    timed = loaded(tmp_path, *common, "backup", "work", env={"WYNGQ_PHASE_TIMES": "1"})

    assert quiet["status"] == 0 and "phase" not in str(quiet["stderr"])
    phases = [line.split(": ")[2] for line in str(timed["stderr"]).splitlines() if ": phase " in line]
    assert {"phase start-up", "phase connect", "phase wyng send", "phase backup"} <= set(phases), timed["stderr"]


def test_a_restore_times_its_phases_too(tmp_path: Path, fake_wyng: FakeWyngFactory) -> None:
    archive = tmp_path / "archive"
    archive.mkdir()
    common = (f"--dest=file:{archive}", f"--wyng={fake_wyng()}", "--json", "--unattended")
    assert loaded(tmp_path, *common, "create", "--encrypt=off")["status"] == 0
    assert loaded(tmp_path, *common, "backup", "work")["status"] == 0
    timed = loaded(tmp_path, *common, "restore", "--on-conflict=replace", "work", env={"WYNGQ_PHASE_TIMES": "1"})

    assert timed["status"] == 0, timed["stderr"]
    phases = {line.split(": ")[2] for line in str(timed["stderr"]).splitlines() if ": phase " in line}
    assert {"phase settings read", "phase read qubes", "phase plan", "phase apply", "phase wyng receive",
            "phase restore"} <= phases, timed["stderr"]
