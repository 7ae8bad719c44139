"""Lab tier: what Qubes 4.3 adds, against real qubesd, real qubesadmin and real Wyng.

- a disposable template whose features include the ones qubesd reserves
  (qubesd sets them itself when it preloads disposables) restores cleanly;
- `bootmode`, `appvm_default_bootmode` and the device deny list round-trip;
- a backup into a small ext4 destination that fills up says so (archive_full)
  and the earlier session stays restorable byte-exact;
- `backup --shutdown` of a running qube (one with snapshots disabled too)
  backs it up halted and starts it again.
Run under `flock /tmp/wyngq-wyng.lock` (one Wyng per machine).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.helpers import Recorder
from tests.lab.conftest import SMALL, Lab
from wyngq.backup import BackupRequest, BackupResult, run_backup
from wyngq.errors import ArchiveFullError, ExitCode, SnapshotsDisabledError

pytest.importorskip("qubesadmin", reason="needs the wyngq lab (tests/lab)")
import qubesadmin.exc

from wyngq.qubes.admin import AdminQubes
from wyngq.qubes.reserved import PRELOAD_MAX, RESERVED_FEATURES
from wyngq.restore.model import ConflictPolicy, RestoreRequest
from wyngq.restore.run import RestoreResult, run_restore
from wyngq.wyng.commands import InitOptions, WyngTarget
from wyngq.wyng.runner import Wyng

pytestmark = pytest.mark.lab

PRELOAD_SUPPORT = ("qrexec", "gui", "supported-rpc.qubes.WaitForRunningSystem", "supported-rpc.qubes.WaitForSession")


class World:
    def __init__(self, lab: Lab, tmp_path: Path, dest: str | None = None) -> None:
        self.lab = lab
        self.port = AdminQubes(lab.app)
        self.workdir = str(tmp_path)
        self.target = WyngTarget(lab.wyng, dest or f"file:{lab.archive_dir}/q43.wyng", lab.meta_dir)
        Wyng(self.target).arch_init(InitOptions(encrypt=False))

    def backup(self, *names: str, **options: object) -> BackupResult:
        request = BackupRequest(qubes=names, **options)  # type: ignore[arg-type]
        return run_backup(self.port, Wyng(self.target), request, Recorder(), self.workdir)

    def restore(self, *names: str, **options: object) -> RestoreResult:
        # the archive is unencrypted: the settings these tests are about give power
        # (restore.trust), so the dom0 user's override is what lets them back
        request = RestoreRequest(qubes=names, trust_archive_settings=True, **options)  # type: ignore[arg-type]
        return run_restore(self.port, Wyng(self.target), request, Recorder(), self.workdir)


def _template(lab: Lab) -> Any:
    tpl = lab.create("tpl", "TemplateVM", label="black")
    lab.fill(tpl, "root", os.urandom(SMALL // 4))
    for feature in PRELOAD_SUPPORT:
        tpl.features[feature] = "1"
    return tpl


def _stop_preloading(lab: Lab, dvm: Any) -> None:
    """Preloaded disposables are qubesd's own: stop preloading, then kill and remove them."""
    lab.app.domains.refresh_cache(force=True)
    names = str(dvm.features.get("preload-dispvm", "") or "").split()
    if PRELOAD_MAX in dvm.features:
        del dvm.features[PRELOAD_MAX]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        lab.app.domains.refresh_cache(force=True)
        names += [vm.name for vm in lab.app.domains if vm.klass == "DispVM" and getattr(vm, "template", None) == dvm]
        left = [n for n in dict.fromkeys(names) if n in lab.app.domains]
        for name in left:  # qubesd removes them too, at its own pace: either may be first
            with contextlib.suppress(qubesadmin.exc.QubesException, KeyError):
                vm = lab.app.domains[name]
                if not vm.is_halted():
                    vm.kill()
                del lab.app.domains[name]
        if not left:
            return
        time.sleep(0.5)


def test_a_disposable_template_with_reserved_features_restores_cleanly(lab: Lab, tmp_path: Path) -> None:
    world = World(lab, tmp_path)
    tpl = _template(lab)
    dvm = lab.create("dvm", "AppVM", template=tpl, label="gray")
    dvm.template_for_dispvms = True
    lab.fill(dvm, "private", os.urandom(SMALL // 4))
    dvm.features[PRELOAD_MAX] = "1"
    deadline = time.monotonic() + 30
    while not dvm.features.get("preload-dispvm") and time.monotonic() < deadline:
        time.sleep(0.5)
    try:
        held = {k: v for k, v in dvm.features.items()}
        assert set(held) & RESERVED_FEATURES, held  # qubesd set its own features: the backup holds them
        session = world.backup(tpl.name, dvm.name).session
        assert session is not None
    finally:
        _stop_preloading(lab, dvm)
    del lab.app.domains[dvm.name]

    result = world.restore(dvm.name, session=session)
    try:
        assert result.exit_code == ExitCode.OK, (result.plan.problems, result.qubes, result.warnings)
        lab.app.domains.refresh_cache(force=True)
        restored = lab.app.domains[dvm.name]
        assert restored.features[PRELOAD_MAX] == "1"
        assert "backup-restore-in-progress" not in restored.tags
    finally:
        if dvm.name in lab.app.domains:
            _stop_preloading(lab, lab.app.domains[dvm.name])


def test_bootmode_and_the_deny_list_round_trip_through_qubesd(lab: Lab, tmp_path: Path) -> None:
    world = World(lab, tmp_path)
    tpl = _template(lab)
    tpl.features["boot-mode.kernelopts.hardened"] = "lockdown=1"
    tpl.appvm_default_bootmode = "hardened"
    app = lab.create("app", "AppVM", template=tpl, label="blue")
    lab.fill(app, "private", os.urandom(SMALL // 4))
    app.bootmode = "hardened"
    lab.app.qubesd_call(app.name, "admin.vm.device.denied.Add", None, b"u03****p0e****")
    denied = lab.app.qubesd_call(app.name, "admin.vm.device.denied.List")
    assert world.backup(tpl.name, app.name).exit_code == ExitCode.OK

    del app.bootmode
    del tpl.appvm_default_bootmode
    lab.app.qubesd_call(app.name, "admin.vm.device.denied.Remove", None, b"all")
    assert lab.app.qubesd_call(app.name, "admin.vm.device.denied.List") == b""

    result = world.restore(tpl.name, app.name, on_conflict=ConflictPolicy.REPLACE)
    assert result.exit_code == ExitCode.OK, (result.plan.problems, result.qubes)
    lab.app.domains.refresh_cache(force=True)
    app, tpl = lab.app.domains[app.name], lab.app.domains[tpl.name]
    assert app.bootmode == "hardened" and not app.property_is_default("bootmode")
    assert tpl.appvm_default_bootmode == "hardened"
    assert lab.app.qubesd_call(app.name, "admin.vm.device.denied.List") == denied


@pytest.fixture
def small_ext4(tmp_path: Path) -> Iterator[Path]:
    """A 40 MiB ext4 image of our own, loop-mounted under the lab home, removed after."""
    home = Path(os.environ["WYNGQ_LAB_HOME"])
    image = home / f"small-{uuid.uuid4().hex[:6]}.ext4"
    mount = Path(f"{os.environ.get('WYNGQ_LAB_MNT_PREFIX', '/mnt/wyngq-lab')}-small-{image.stem[-6:]}")
    subprocess.run(["truncate", "-s", "40M", str(image)], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-m", "0", str(image)], check=True)
    mount.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-o", "loop", str(image), str(mount)], check=True)
    try:
        yield mount
    finally:
        for _ in range(40):  # Wyng's helpers may hold the filesystem a moment after it exits
            if subprocess.run(["umount", str(mount)], check=False, capture_output=True).returncode == 0:
                break
            time.sleep(0.25)
        mount.rmdir()
        image.unlink()


def test_a_full_destination_says_so_and_the_earlier_session_restores(lab: Lab, tmp_path: Path, small_ext4: Path
                                                                     ) -> None:
    world = World(lab, tmp_path, dest=f"file:{small_ext4}/small.wyng")
    first = os.urandom(SMALL)
    app = lab.create("app", "StandaloneVM", label="blue")
    lab.fill(app, "private", first)
    lab.fill(app, "root", b"\0" * (SMALL // 4))
    session = world.backup(app.name).session
    assert session is not None
    lab.fill(app, "private", os.urandom(64 * 1024 * 1024))  # more than the disk holds

    with pytest.raises(ArchiveFullError) as caught:
        world.backup(app.name)
    error = caught.value
    assert error.code == "archive_full" and "MiB free" in error.message and "intact" in error.message
    assert "Broken pipe" not in str(error)

    archive = Wyng(world.target).catalog()
    # Wyng keeps what it finished before the disk filled (here the settings bundle, sent
    # first): the data volumes have the earlier session only
    assert all(sorted(v.sessions) == [session] for name, v in archive.volumes.items()
               if name != "wyng-qubes-metadata")
    out = tmp_path / "back.img"
    Wyng(world.target).receive_to_file("appvms/" + app.name + "/private.img", session, str(out))
    assert hashlib.sha256(out.read_bytes()).digest() == hashlib.sha256(first).digest()


def test_backup_shutdown_backs_up_a_running_qube_and_starts_it_again(lab: Lab, tmp_path: Path) -> None:
    world = World(lab, tmp_path)
    tpl = _template(lab)
    app = lab.create("app", "AppVM", template=tpl, label="blue")
    lab.fill(app, "private", os.urandom(SMALL // 4))
    app.volumes["private"].revisions_to_keep = -1
    app.start()
    assert app.is_running()

    with pytest.raises(SnapshotsDisabledError):
        world.backup(app.name)
    result = world.backup(app.name, shutdown=True)

    assert result.exit_code == ExitCode.OK, result
    assert result.shut_down == (app.name,) and result.restarted == (app.name,)
    lab.app.domains.refresh_cache(force=True)
    assert lab.app.domains[app.name].is_running()
    assert not result.qubes[0].running  # backed up halted


@pytest.mark.parametrize("dest", ["qubes://no-such-qube/archive", "ssh://nobody@127.0.0.1:1/archive"])
def test_an_unreachable_destination_says_so(lab: Lab, dest: str) -> None:
    from wyngq.errors import DestinationUnreachableError

    with pytest.raises(DestinationUnreachableError) as caught:
        Wyng(WyngTarget(lab.wyng, dest, lab.meta_dir)).catalog()
    assert caught.value.code == "destination_unreachable" and dest in caught.value.message
