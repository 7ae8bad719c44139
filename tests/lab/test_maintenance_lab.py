"""Lab tier (real qubesd + real Wyng): verify, corruption, prune, interruption."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.lab.conftest import SMALL, Lab
from tests.lab.test_backup_lab import cli

pytestmark = pytest.mark.lab


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def receive(lab: Lab, dest: str, volume: str, session: str, out: Path) -> bytes:
    subprocess.run(
        [lab.wyng, f"--dest={dest}", f"--meta-dir={lab.meta_dir}", "-u", "--authmin=0", "--quiet",
         f"--save-to={out}", f"--session={session}", "receive", volume],
        check=True, capture_output=True, timeout=300,
    )
    data = out.read_bytes()
    out.unlink()
    return data


def interrupt_cli(lab: Lab, dest: str, qube: str, signum: int, *args: str) -> tuple[int, dict[str, object]]:
    """Run the CLI, send it `signum` once Wyng works on `qube`'s volume, return (status, result)."""
    argv = [sys.executable, "-m", "wyngq", f"--dest={dest}", f"--wyng={lab.wyng}", f"--meta-dir={lab.meta_dir}",
            "--json", *args]
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                             stdin=subprocess.DEVNULL)
    assert child.stdout is not None
    while line := child.stdout.readline():
        event = json.loads(line)
        if event.get("type") == "volume" and event.get("qube") == qube:
            break
    child.send_signal(signum)
    child.wait(timeout=120)
    return child.returncode, json.loads(child.stdout.read().splitlines()[-1])


def two_qubes(lab: Lab, dest: str) -> tuple[str, str]:
    assert cli(lab, dest, "create", "--encrypt=off")[0] == 0
    tpl = lab.create("tpl", "TemplateVM")
    lab.fill(tpl, "root", os.urandom(SMALL))
    lab.fill(tpl, "private", os.urandom(SMALL))
    work = lab.create("work", "AppVM", template=tpl)
    mail = lab.create("mail", "AppVM", template=tpl)
    lab.fill(work, "private", os.urandom(SMALL))
    lab.fill(mail, "private", os.urandom(SMALL))
    return work.name, mail.name


def test_verify_good_then_a_corrupt_chunk_names_the_qube(lab: Lab) -> None:
    dest = f"file:{lab.archive_dir}/v.wyng"
    work, mail = two_qubes(lab, dest)
    code, lines = cli(lab, dest, "backup", work, mail)
    assert code == 0, lines
    session = lines[-1]["session"]

    code, lines = cli(lab, dest, "verify")
    assert code == 0, lines
    assert lines[-1]["settings"] == "ok"

    # flip bytes in one data chunk of work's volume in that session
    catalog = subprocess.run([lab.wyng, f"--dest={dest}", f"--meta-dir={lab.meta_dir}", "-u", "--json", "list"],
                             capture_output=True, text=True, check=True).stdout
    listing = json.loads(catalog[catalog.index("\n{") + 1:])
    vid = listing["volumes"][f"appvms/{work}/private.img"]["vid"]
    chunks = sorted((lab.archive_dir / "v.wyng" / vid / f"S_{session}").glob("*/x*"))
    assert chunks
    data = bytearray(chunks[0].read_bytes())
    data[len(data) // 2] ^= 0xFF
    chunks[0].write_bytes(bytes(data))

    code, lines = cli(lab, dest, "verify", work, mail)
    checks = {q["name"]: q for q in lines[-1]["qubes"]}  # type: ignore[union-attr]
    assert code == 8, lines
    assert not checks[work]["ok"] and checks[mail]["ok"]


def test_prune_by_session_and_range_then_the_rest_restores_byte_exact(lab: Lab, tmp_path: Path) -> None:
    dest = f"file:{lab.archive_dir}/p.wyng"
    work, mail = two_qubes(lab, dest)
    contents: dict[str, bytes] = {}
    sessions = []
    for _ in range(4):
        content = os.urandom(SMALL)
        lab.fill(lab.app.domains[work], "private", content)
        code, lines = cli(lab, dest, "backup", work, mail)
        assert code == 0, lines
        sessions.append(lines[-1]["session"])
        contents[str(lines[-1]["session"])] = content
    s1, s2, s3, s4 = sessions

    code, lines = cli(lab, dest, "prune", f"--session={s1}", "--dry-run")
    assert code == 0 and lines[-1]["removed"] == {work: [s1], mail: [s1]}
    assert cli(lab, dest, "prune", f"--session={s1}")[0] == 0
    assert cli(lab, dest, "prune", work, f"--session={s2},{s3}")[0] == 0
    listed = cli(lab, dest, "list", "--all")[1][-1]["qubes"]
    assert listed[work] == [s4]  # type: ignore[index]
    assert listed[mail] == [s2, s3, s4]  # type: ignore[index]

    volume = f"appvms/{work}/private.img"
    assert sha(receive(lab, dest, volume, str(s4), tmp_path / "r.img")) == sha(contents[str(s4)])
    mail_now = lab.app.domains[mail]
    del mail_now  # mail's data did not change: every remaining session holds the same bytes
    mails = {sha(receive(lab, dest, f"appvms/{mail}/private.img", str(s), tmp_path / "m.img")) for s in (s2, s3, s4)}
    assert len(mails) == 1


def test_an_interrupted_real_send_leaves_a_consistent_archive(lab: Lab) -> None:
    dest = f"file:{lab.archive_dir}/i.wyng"
    work, mail = two_qubes(lab, dest)
    assert cli(lab, dest, "backup", work, mail)[0] == 0
    big = lab.create("big", "AppVM", template=lab.name("tpl"))
    lab.fill(big, "private", os.urandom(384 * 1024 * 1024))

    for signum, status in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
        code, result = interrupt_cli(lab, dest, big.name, signum, "backup", big.name, work)
        assert code == status, result
        assert result["code"] == "interrupted"

    # Real Wyng leaves a volume whose first send was interrupted with no session;
    # arch-check then fails on it (KeyError 'None', rc 2) until a send completes.
    # The next backup heals it, and the whole archive checks clean afterwards.
    code, lines = cli(lab, dest, "backup", "--check-after-send", big.name, work)
    assert code == 0, lines
    assert lines[-1]["check"] == "ok"
    check = subprocess.run([lab.wyng, f"--dest={dest}", f"--meta-dir={lab.meta_dir}", "-u", "--authmin=0",
                            "arch-check"], capture_output=True, text=True, timeout=600)
    assert check.returncode == 0, check.stdout + check.stderr


def test_an_interrupted_real_receive_loses_nothing(lab: Lab) -> None:
    dest = f"file:{lab.archive_dir}/ir.wyng"
    assert cli(lab, dest, "create", "--encrypt=off")[0] == 0
    tpl = lab.create("tpl", "TemplateVM")
    lab.fill(tpl, "root", os.urandom(SMALL))
    big = lab.create("big", "AppVM", template=tpl)
    lab.fill(big, "private", os.urandom(256 * 1024 * 1024))
    code, lines = cli(lab, dest, "backup", tpl.name, big.name)
    assert code == 0, lines
    live = os.urandom(SMALL)
    lab.fill(big, "private", live)  # what a restore would replace

    code, result = interrupt_cli(lab, dest, big.name, signal.SIGINT, "restore", "--on-conflict=replace", big.name)
    assert code == 130 and result["code"] == "interrupted", result

    path = Path(os.environ["WYNGQ_LAB_POOL_DIR"]) / f"{big.volumes['private'].vid}.img"
    assert sha(path.read_bytes()) == sha(live)  # the live volume was never written
    lab.app.domains.refresh_cache(force=True)
    assert "backup-restore-in-progress" in lab.app.domains[big.name].tags  # guarded until finished or undone
    check = subprocess.run([lab.wyng, f"--dest={dest}", f"--meta-dir={lab.meta_dir}", "-u", "--authmin=0",
                            "arch-check"], capture_output=True, text=True, timeout=600)
    assert check.returncode == 0, check.stdout + check.stderr
    lab.app.domains[big.name].tags.remove("backup-restore-in-progress")
    code, lines = cli(lab, dest, "backup", tpl.name, big.name)
    assert code == 0, lines
