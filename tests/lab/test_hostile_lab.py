"""Lab tier: a 64 MiB hostile settings bundle, stored by real Wyng in an unencrypted
archive, read by the qrexec service (`+verify`, `+list`) as qrexec runs it: the
call ends with a clean archive error, and the service stays within the readers'
bounds (docs/hostile-input.md: 150 MiB RSS, 10 s CPU), as its own getrusage says.

Run under `flock /tmp/wyngq-wyng.lock` (one Wyng per machine)."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest

from tests.conftest import ROOT
from tests.lab.conftest import SMALL, Lab
from tests.lab.test_rpc_lab import Dom0
from wyngq import bundle
from wyngq.backup import BackupRequest, run_backup
from wyngq.wyng.commands import WyngTarget
from wyngq.wyng.runner import Wyng

pytestmark = pytest.mark.lab

MIB = 1024 * 1024
MAX_RSS_KIB = 150 * 1024
MAX_CPU_SECONDS = 10.0


def _global_pax_member() -> bytes:
    info = tarfile.TarInfo("g")
    info.type, info.size = tarfile.XGLTYPE, 60 * 1024
    return gzip.compress(info.tobuf(tarfile.USTAR_FORMAT) + bytes(60 * 1024), compresslevel=9)


def write_bomb(path: str, _state_files: object, _manifest: bytes) -> None:
    """Stands in for bundle.write_bundle: exactly 64 MiB (the most wyngq fetches) of
    gzip members, each inflating to a 60 KiB PAX global header: some 40 GiB in all."""
    member = _global_pax_member()
    count, rest = divmod(bundle.MAX_BUNDLE_BYTES, len(member))
    with open(path, "wb") as handle:
        for _ in range(count):
            handle.write(member)
        handle.write(bytes(rest))  # trailing zeros: never reached, the reader stops long before


class Reporter:
    def event(self, type: str, /, **fields: object) -> None:
        return None


def test_a_64_mib_hostile_bundle_through_verify_and_list_stays_within_bounds(lab: Lab, tmp_path: Path) -> None:
    from wyngq.qubes.admin import AdminQubes  # qubesadmin exists only in the lab

    tpl = lab.create("tpl", "TemplateVM", label="black")
    app = lab.create("app", "AppVM", template=tpl, label="blue")
    lab.fill(app, "private", os.urandom(SMALL // 4))
    mgmt = lab.create("mgmt", "AppVM", template=tpl, label="purple")
    dom0 = Dom0(lab, tmp_path, mgmt.name, app.name, tpl.name)
    subprocess.run([sys.executable, "-m", "wyngq", f"--dest={dom0.dest}", f"--wyng={lab.wyng}",
                    f"--meta-dir={lab.meta_dir}", "--json", "create", "--encrypt=off"],
                   check=True, capture_output=True, cwd=ROOT, timeout=300, stdin=subprocess.DEVNULL)
    workdir = tmp_path / "work"
    workdir.mkdir()
    wyng = Wyng(WyngTarget(lab.wyng, dom0.dest, lab.meta_dir))
    # whoever writes the unencrypted archive writes the bundle: here, real Wyng stores ours
    with patch.object(bundle, "write_bundle", write_bomb):
        sent = run_backup(AdminQubes(), wyng, BackupRequest(qubes=(app.name,)), Reporter(), str(workdir))
    assert sent.session is not None and all(q.ok for q in sent.qubes), sent
    stored = wyng.catalog().volumes["wyng-qubes-metadata"].sessions[sent.session].volsize
    assert stored == bundle.MAX_BUNDLE_BYTES

    results: dict[str, Any] = {}
    for action, request in (("verify", {"profile": "lab", "qubes": [app.name], "session": sent.session}),
                            ("list", {"profile": "lab", "session": sent.session})):
        code, lines = dom0.call(action, request)
        usage = dom0.usage()
        results[action] = (code, lines[-1], usage)
        print(f"+{action}: exit {code}, service max RSS {usage['max_rss_kib'] / 1024:.1f} MiB, "
              f"CPU {usage['cpu_seconds']:.2f} s")
        assert usage["max_rss_kib"] < MAX_RSS_KIB and usage["cpu_seconds"] < MAX_CPU_SECONDS, usage

    verify_code, verify, _ = results["verify"]
    assert verify_code not in (0, 1) and verify["settings"].startswith("damaged: "), verify
    assert "stream is larger than allowed" in verify["settings"]
    assert [q["ok"] for q in verify["qubes"]] == [True]  # the data itself is fine
    list_code, listed, _ = results["list"]
    assert (list_code, listed["code"]) == (9, "bad_metadata"), listed
    assert [a["outcome"] for a in dom0.audit()][-2:] == [verify["code"], "bad_metadata"]
