"""Lab tier: backup and list against real qubesd, real qubesadmin and real Wyng."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.lab.conftest import SMALL, Lab
from wyngq import bundle, volnames

pytestmark = pytest.mark.lab


def cli(lab: Lab, dest: str, *args: str) -> tuple[int, list[dict[str, object]]]:
    argv = [sys.executable, "-m", "wyngq", f"--dest={dest}", f"--wyng={lab.wyng}", f"--meta-dir={lab.meta_dir}",
            "--json", *args]
    done = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, cwd=ROOT, timeout=600)
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    assert lines and lines[-1]["type"] == "result", done.stdout + done.stderr
    return done.returncode, lines


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_backup_of_template_app_and_standalone(lab: Lab, tmp_path: Path) -> None:
    dest = f"file:{lab.archive_dir}/a.wyng"
    code, lines = cli(lab, dest, "create", "--encrypt=off")
    assert code == 0, lines

    tpl = lab.create("tpl", "TemplateVM", label="black")
    app = lab.create("app", "AppVM", template=tpl, label="blue")
    std = lab.create("std", "StandaloneVM", label="green")
    data = {
        (tpl.name, "root"): os.urandom(SMALL),
        (tpl.name, "private"): os.urandom(SMALL // 2),
        (app.name, "private"): os.urandom(SMALL),
        (std.name, "root"): b"standalone root " * (SMALL // 16),
        (std.name, "private"): os.urandom(SMALL),
    }
    for (name, kind), content in data.items():
        lab.fill(lab.app.domains[name], kind, content)
    app.memory = 777
    app.features["service.crond"] = "1"
    app.tags.add("wyngq-test")
    app.set_notes("notes for the app\nsecond line")

    code, lines = cli(lab, dest, "backup", tpl.name, app.name, std.name)
    result = lines[-1]
    assert code == 0, lines
    session = result["session"]
    assert isinstance(session, str)
    assert [q["name"] for q in result["qubes"]] == sorted([tpl.name, app.name, std.name])  # type: ignore[union-attr]
    lab.app.domains.refresh_cache(force=True)
    for name in (tpl.name, app.name, std.name):
        assert lab.app.domains[name].backup_timestamp > 0

    code, lines = cli(lab, dest, "list")
    assert code == 0
    assert lines[-1]["qubes"] == {tpl.name: [session], app.name: [session], std.name: [session]}

    for (name, kind), content in data.items():
        klass = lab.app.domains[name].klass
        top = "vm-templates" if klass == "TemplateVM" else "appvms"
        volume = f"{top}/{name}/{kind}.img"
        out = tmp_path / f"{name}-{kind}.img"
        subprocess.run(
            [lab.wyng, f"--dest={dest}", f"--meta-dir={lab.meta_dir}", "-u", "--authmin=0", "--quiet",
             f"--save-to={out}", f"--session={session}", "receive", volume],
            check=True, capture_output=True, timeout=300,
        )
        assert sha(out.read_bytes()) == sha(content), volume

    meta = tmp_path / "meta.tgz"
    subprocess.run(
        [lab.wyng, f"--dest={dest}", f"--meta-dir={lab.meta_dir}", "-u", "--authmin=0", "--quiet",
         f"--save-to={meta}", f"--session={session}", "receive", volnames.METADATA_VOLUME],
        check=True, capture_output=True, timeout=300,
    )
    stored = bundle.read_bundle(str(meta))
    assert stored.manifest is not None
    from wyngq.qubes.admin import AdminQubes  # qubesadmin exists only in the lab

    live = AdminQubes()
    for name in (tpl.name, app.name, std.name):
        backed_up = stored.manifest.qubes[name]
        now = live.settings(name)
        # backup_timestamp is set after the send, so it is the one expected difference
        assert {k: v for k, v in now.properties.items() if k != "backup_timestamp"} == dict(backed_up.properties)
        assert now.features == dict(backed_up.features)
        assert now.tags == backed_up.tags
        assert (now.label, now.template, now.firewall, now.notes, now.devices) == (
            backed_up.label, backed_up.template, backed_up.firewall, backed_up.notes, backed_up.devices)
    assert stored.manifest.qubes[app.name].properties["memory"].value == "777"
    assert stored.manifest.qubes[app.name].notes == "notes for the app\nsecond line"
    assert stored.qubes_xml is not None and app.name.encode() in stored.qubes_xml

    code, lines = cli(lab, dest, "list", f"--session={session}")
    assert code == 0
    assert {q["name"] for q in lines[-1]["session_qubes"]} == {tpl.name, app.name, std.name}  # type: ignore[union-attr]


def test_running_qube_saves_its_committed_state_and_says_so(lab: Lab, tmp_path: Path) -> None:
    dest = f"file:{lab.archive_dir}/r.wyng"
    assert cli(lab, dest, "create", "--encrypt=off")[0] == 0
    tpl = lab.create("tpl", "TemplateVM")
    app = lab.create("app", "AppVM", template=tpl)
    committed = os.urandom(SMALL)
    lab.fill(app, "private", committed)
    lab.fill(tpl, "root", os.urandom(SMALL))
    app.start()
    try:
        code, lines = cli(lab, dest, "backup", app.name)
        assert code == 0, lines
        outcome = lines[-1]["qubes"][0]  # type: ignore[index]
        assert outcome["running"] is True and "running" in outcome["note"]
        plan = next(line for line in lines if line["type"] == "plan")
        assert plan["running"] == [app.name]
    finally:
        app.kill()


def test_encrypted_archive_and_a_named_disposable(lab: Lab, tmp_path: Path) -> None:
    passfile = tmp_path / "pass"
    passfile.write_text("a passphrase with  spaces, 'quotes' and -dash ✓\n")
    passfile.chmod(0o600)
    dest = f"file:{lab.archive_dir}/e.wyng"
    code, lines = cli(lab, dest, f"--passphrase-file={passfile}", "create")
    assert code == 0, lines
    assert lines[-1]["encrypted"] is True

    tpl = lab.create("tpl", "TemplateVM")
    dvm = lab.create("dvm", "AppVM", template=tpl)
    dvm.template_for_dispvms = True
    disp = lab.create("disp", "DispVM", template=dvm)
    lab.fill(tpl, "root", os.urandom(SMALL))
    lab.fill(tpl, "private", os.urandom(SMALL))
    lab.fill(dvm, "private", os.urandom(SMALL))

    code, lines = cli(lab, dest, f"--passphrase-file={passfile}", "backup", tpl.name, dvm.name, disp.name)
    assert code == 0, lines
    outcomes = {q["name"]: q for q in lines[-1]["qubes"]}  # type: ignore[union-attr]
    assert outcomes[disp.name]["volumes"] == [] and outcomes[disp.name]["ok"] is True

    code, lines = cli(lab, dest, f"--passphrase-file={passfile}", "list", f"--session={lines[-1]['session']}")
    assert code == 0, lines
    kinds = {q["name"]: q["klass"] for q in lines[-1]["session_qubes"]}  # type: ignore[union-attr]
    assert kinds == {tpl.name: "TemplateVM", dvm.name: "AppVM", disp.name: "DispVM"}
    assert lines[-1]["archive"]["encrypted"] is True  # type: ignore[index]

    wrong = tmp_path / "wrong"
    wrong.write_text("not the right passphrase\n")
    wrong.chmod(0o600)
    code, lines = cli(lab, dest, f"--passphrase-file={wrong}", "list")
    assert code == 7 and lines[-1]["code"] == "auth"
