"""Lab tier: the Admin API calls of a restore, counted at qubesadmin's one door
(`qubesd_call`), and the guard tag they rely on.

A restore over an AppVM whose settings did not change reads the live qube once
(its properties, features, tags, firewall, notes, devices and the volumes it
configures), guards it, clones its private volume from the scratch qube and
takes the guard off: no power-state call of its own before the clone (the
guarded qube was seen halted in the list made after the receive, and qubesd
refuses to start a guarded qube: the second test; a start already under way
when the tag went on fails the qube: the third), no `volume.List`, no second
`admin.vm.List` to look a listed qube up, no read of its template's `root`.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.integration.helpers import Recorder
from tests.lab.conftest import SMALL, Lab
from wyngq.backup import BackupRequest, run_backup

pytest.importorskip("qubesadmin", reason='needs the wyngq lab: lab up; eval "$(lab env)" (docs/development.md)')
from wyngq.qubes.admin import AdminQubes
from wyngq.restore.model import GUARD_TAG, ConflictPolicy, RestoreRequest
from wyngq.restore.plan import SCRATCH_PREFIX
from wyngq.restore.run import RestoreResult, run_restore
from wyngq.wyng.commands import InitOptions, WyngTarget
from wyngq.wyng.runner import Wyng, WyngRun

pytestmark = pytest.mark.lab

# per restored AppVM, nothing changed: (method+argument) -> calls naming the qube itself
APPVM_CALLS = {
    "admin.vm.property.GetAll": 1,
    "admin.vm.feature.List": 1,
    "admin.vm.tag.List": 1,
    "admin.vm.firewall.Get": 1,
    "admin.vm.notes.Get": 1,
    "admin.vm.device.block.Assigned": 1,
    "admin.vm.device.pci.Assigned": 1,
    "admin.vm.volume.Info+private": 1,
    "admin.vm.volume.Info+volatile": 1,
    "admin.vm.tag.Set+backup-restore-in-progress": 1,
    "admin.vm.volume.CloneTo+private": 1,
    "admin.vm.tag.Remove+backup-restore-in-progress": 1,
}
# its scratch qube: created (a call to dom0), tagged, left out of backups, its volume read, cloned from, removed
SCRATCH_CALLS = {
    "admin.vm.tag.Set+wyngq-restore-scratch": 1,
    "admin.vm.tag.Set+backup-restore-in-progress": 1,
    "admin.vm.property.Set+include_in_backups": 1,
    "admin.vm.volume.Info+private": 1,
    "admin.vm.volume.CloneFrom+private": 1,
    "admin.vm.Remove": 1,
}
# what one restore asks dom0 once: the qube list (planning, before the receive, and after it for the power
# states the clones rely on), pools, labels, ...
DOM0_CALLS = {
    "admin.vm.List": 3,
    "admin.deviceclass.List": 1,
    "admin.property.Get+default_pool": 1,
    "admin.label.List": 1,
    "admin.vm.CreateInPool.StandaloneVM": 1,
}


class Counting(AdminQubes):
    """AdminQubes over a qubesadmin app whose every call to qubesd is recorded."""

    def __init__(self) -> None:
        import qubesadmin

        app = qubesadmin.Qubes()
        self.seen: list[tuple[str, str]] = []  # (qube the call names, method+argument)
        real = app.qubesd_call

        def counted(dest: str | None, method: str, arg: str | None = None, *rest: Any, **kwargs: Any) -> bytes:
            self.seen.append((dest or "", f"{method}+{arg}" if arg else method))
            return real(dest, method, arg, *rest, **kwargs)

        app.qubesd_call = counted  # type: ignore[method-assign]
        super().__init__(app)


class TryStart(AdminQubes):
    """Tries to start each qube (through qubesadmin, as anyone could) just before
    its volume is cloned into; records what qubesd answered."""

    def __init__(self, lab: Lab) -> None:
        super().__init__(lab.app)
        self.lab = lab
        self.refusals: list[str] = []

    def clone_volume(self, name: str, kind: str, source: str, source_kind: str | None = None) -> None:
        try:
            self.lab.app.domains[name].start()
        except Exception as err:  # what qubesd said is the point
            self.refusals.append(f"{name}: {err}")
        else:
            self.lab.app.domains[name].kill()
            raise AssertionError(f"qubesd started {name} while it carried {GUARD_TAG}")
        super().clone_volume(name, kind, source, source_kind)


def _world(lab: Lab) -> tuple[WyngTarget, str]:
    tpl = lab.create("tpl", "TemplateVM")
    lab.fill(tpl, "root", os.urandom(SMALL // 4))
    app = lab.create("app", "AppVM", template=tpl.name)
    lab.fill(app, "private", os.urandom(SMALL // 4))
    target = WyngTarget(lab.wyng, f"file:{lab.archive_dir}/calls.wyng", lab.meta_dir)
    Wyng(target).arch_init(InitOptions(encrypt=False))
    return target, app.name


def _backup(lab: Lab, target: WyngTarget, name: str, workdir: str) -> None:
    result = run_backup(AdminQubes(lab.app), Wyng(target), BackupRequest(qubes=(name,)), Recorder(), workdir)
    assert result.session and all(q.ok for q in result.qubes), result


def _restore(port: AdminQubes, target: WyngTarget, name: str, workdir: str) -> RestoreResult:
    request = RestoreRequest(qubes=(name,), on_conflict=ConflictPolicy.REPLACE, trust_archive_settings=True)
    result = run_restore(port, Wyng(target), request, Recorder(), workdir)
    assert not result.refused and all(q.ok for q in result.qubes), result
    return result


def test_restore_of_one_appvm_nothing_changed_makes_these_admin_api_calls(lab: Lab, tmp_path: Path) -> None:
    target, name = _world(lab)
    _backup(lab, target, name, str(tmp_path))
    _restore(AdminQubes(lab.app), target, name, str(tmp_path))  # the first restore may change settings
    port = Counting()

    _restore(port, target, name, str(tmp_path))

    scratch = {dest for dest, _ in port.seen if dest.startswith(SCRATCH_PREFIX)}
    assert len(scratch) == 1
    by_qube = {who: Counter(m for dest, m in port.seen if dest == who) for who in (name, *scratch, "dom0")}
    assert by_qube[name] == Counter(APPVM_CALLS)
    assert by_qube[scratch.pop()] == Counter(SCRATCH_CALLS)
    pools = {m: n for m, n in by_qube["dom0"].items() if m.startswith("admin.pool.")}  # one List, one Info each
    assert by_qube["dom0"] - Counter(pools) == Counter(DOM0_CALLS)
    assert pools["admin.pool.List"] == 1 and all(n == 1 for n in pools.values())
    assert not [m for _, m in port.seen if m in ("admin.vm.CurrentState", "admin.vm.volume.List")]


def test_restore_of_a_removed_appvm_creates_it_without_looking_it_up_again(lab: Lab, tmp_path: Path) -> None:
    """A qube this restore creates is known by its class: its volume settings are
    written to qubesd directly, with no `admin.vm.List` or `volume.List` per write."""
    target, name = _world(lab)
    vm = lab.app.domains[name]
    vm.volumes["private"].revisions_to_keep = 2
    _backup(lab, target, name, str(tmp_path))
    del lab.app.domains[name]
    port = Counting()

    request = RestoreRequest(qubes=(name,), trust_archive_settings=True)
    result = run_restore(port, Wyng(target), request, Recorder(), str(tmp_path))

    assert not result.refused and all(q.ok for q in result.qubes), result
    mine = Counter(m for dest, m in port.seen if dest == name)
    assert mine["admin.vm.volume.Set.revisions_to_keep+private"] == 1
    assert not [m for m in mine if m.startswith(("admin.vm.volume.List", "admin.vm.CurrentState"))], mine
    assert Counter(m for _, m in port.seen)["admin.vm.List"] == 3, port.seen  # planning, before and after the receive
    lab.app.domains.refresh_cache(force=True)
    assert lab.app.domains[name].volumes["private"].revisions_to_keep == 2

def test_qubesd_refuses_to_start_a_qube_being_restored_until_its_data_is_in_place(lab: Lab, tmp_path: Path) -> None:
    """The clone does not ask for the power state: it relies on this refusal."""
    target, name = _world(lab)
    _backup(lab, target, name, str(tmp_path))
    before = lab.app.domains[name].volumes["private"].revisions
    port = TryStart(lab)

    result = _restore(port, target, name, str(tmp_path))

    assert len(port.refusals) == 1 and "in progress" in port.refusals[0], port.refusals
    assert result.qubes[0].revisions == (f"{name}:private",)
    assert lab.app.domains[name].volumes["private"].revisions != before  # the clone was committed
    assert GUARD_TAG not in lab.app.domains[name].tags
    assert lab.app.domains[name].is_halted()


class StartedDuringReceive(Wyng):
    """Leaves the qube running with its guard tag during the receive, as a start
    qubesd let through just before the tag went on would."""

    def __init__(self, target: WyngTarget, lab: Lab, name: str) -> None:
        super().__init__(target)
        self.lab, self.name = lab, name

    def receive(self, *, local_from: str, session: str, use_snapshot: bool = False) -> WyngRun:
        vm = self.lab.app.domains[self.name]
        vm.tags.discard(GUARD_TAG)
        vm.start()
        vm.tags.add(GUARD_TAG)
        return super().receive(local_from=local_from, session=session, use_snapshot=use_snapshot)


def test_a_qube_whose_start_was_under_way_when_the_guard_went_on_is_not_cloned_into(
        lab: Lab, tmp_path: Path) -> None:
    target, name = _world(lab)
    _backup(lab, target, name, str(tmp_path))
    newer = os.urandom(SMALL // 4)
    lab.fill(lab.app.domains[name], "private", newer)
    request = RestoreRequest(qubes=(name,), on_conflict=ConflictPolicy.REPLACE, trust_archive_settings=True)

    try:
        result = run_restore(AdminQubes(lab.app), StartedDuringReceive(target, lab, name), request, Recorder(),
                             str(tmp_path))
    finally:
        lab.app.domains[name].kill()

    outcome = result.qubes[0]
    assert (outcome.ok, outcome.failed_step, outcome.revisions) == (False, "receive", ()), outcome
    assert "started" in (outcome.error or "")
    vol = lab.app.domains[name].volumes["private"]
    path = os.path.join(dict(lab.app.pools[vol.pool].config)["dir_path"], vol.vid + ".img")
    assert Path(path).read_bytes() == newer  # nothing cloned in (the kill committed the running copy)
    assert GUARD_TAG in lab.app.domains[name].tags
    assert not [q for q in lab.app.domains if q.name.startswith(SCRATCH_PREFIX)]
