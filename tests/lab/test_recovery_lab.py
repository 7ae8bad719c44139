"""Lab tier: whole-machine recovery (`restore --all`) against real qubesd, real
qubesadmin and real Wyng.

A template, a netvm chain, a DVM template, an AppVM using all three (firewall,
tags, features), a StandaloneVM and a named disposable are backed up over
three sessions (not every qube in each), with dom0's global preferences; then
every qube is removed, a new Wyng meta dir is used and a global preference is
changed; `restore --all --prefs` brings every qube back equal in settings and
sha256 to its newest session, the preferences back, no guard tag left; a
second run with `--on-conflict=skip` changes nothing; the first backup after it
works. Also a restore of everything into the lab's second pool.
Run under `flock /tmp/wyngq-wyng.lock` (one Wyng per machine).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.helpers import Recorder
from tests.lab.conftest import SMALL, Lab
from wyngq.errors import ExitCode

pytest.importorskip("qubesadmin", reason='needs the wyngq lab: lab up; eval "$(lab env)" (docs/development.md)')
from tests.lab.test_restore_lab import Scenario, assert_same
from wyngq.backup import BackupRequest, run_backup
from wyngq.restore.model import GUARD_TAG, Action, ConflictPolicy, RestoreRequest
from wyngq.restore.run import RestoreResult, run_restore
from wyngq.wyng.commands import WyngTarget
from wyngq.wyng.known import KnownArchives
from wyngq.wyng.runner import Wyng

pytestmark = pytest.mark.lab

TIMEOUT = "default_shutdown_timeout"


class Recovery(Scenario):
    """The restore scenario over three sessions, with global preferences."""

    def __init__(self, lab: Lab, tmp_path: Path) -> None:
        super().__init__(lab, tmp_path)
        self.tmp = tmp_path
        self.saved_prefs: dict[str, Any] = {}
        self.known: KnownArchives | None = None  # with it, backups carry settings entries forward

    def backup(self) -> str:
        import time

        time.sleep(1.05)  # session ids have one-second resolution
        result = run_backup(self.port, self.wyng(), BackupRequest(qubes=self.names), Recorder(), self.workdir,
                            known_archives=self.known)
        assert result.session and all(q.ok for q in result.qubes), result
        return result.session

    def set_prefs(self, **values: Any) -> None:
        for name, value in values.items():
            if name not in self.saved_prefs:
                app = self.lab.app
                self.saved_prefs[name] = None if app.property_is_default(name) else getattr(app, name)
            setattr(self.lab.app, name, value)

    def put_prefs_back(self) -> None:
        """Leave dom0's preferences as the lab had them (no test qube is a default)."""
        for name, value in self.saved_prefs.items():
            if value is None:
                delattr(self.lab.app, name)
            else:
                setattr(self.lab.app, name, value)

    def three_sessions(self) -> dict[str, str]:
        """Each qube's newest session: all in the first; work and fw changed in the
        second; vault and the named disposable in the third."""
        n = self.n
        first = self.backup()
        self.change_work_data()
        self.lab.app.domains[n("fw")].features["second"] = "1"
        second = self.backup_some("work", "fw")
        self.lab.fill(self.lab.app.domains[n("vault")], "private", os.urandom(SMALL // 8))
        self.lab.app.domains[n("disp")].label = "orange"
        third = self.backup_some("vault", "disp")
        newest = dict.fromkeys(self.names, first)
        newest |= {n("work"): second, n("fw"): second, n("vault"): third, n("disp"): third}
        return newest

    def backup_some(self, *short: str) -> str:
        import time

        time.sleep(1.05)
        names = tuple(self.n(s) for s in short)
        result = run_backup(self.port, self.wyng(), BackupRequest(qubes=names), Recorder(), self.workdir,
                            known_archives=self.known)
        assert result.session and all(q.ok for q in result.qubes), result
        return result.session

    def fresh_meta_dir(self) -> None:
        meta = self.tmp / "new-meta"
        meta.mkdir()
        self.target = WyngTarget(self.target.executable, self.target.dest, str(meta))

    def restore_all(self, **options: Any) -> RestoreResult:
        """`restore --all`; the lab archive is not encrypted, so its settings (devices,
        netvms, tags, the preferences naming qubes) are trusted explicitly."""
        request = RestoreRequest(all=True, trust_archive_settings=True, **options)
        result = run_restore(self.port, self.wyng(), request, Recorder(), self.workdir)
        for outcome in result.qubes:
            if outcome.target not in self.lab.made:
                self.lab.made.append(outcome.target)
        return result


@pytest.fixture
def recovery(lab: Lab, tmp_path: Path) -> Iterator[Recovery]:
    built = Recovery(lab, tmp_path)
    built.build()
    try:
        yield built
    finally:
        built.put_prefs_back()


def failures(result: RestoreResult) -> list[tuple[str, str | None, str | None]]:
    return [(q.target, q.failed_step, q.error) for q in result.qubes if not q.ok]


def test_restore_all_onto_a_fresh_machine_with_the_prefs(recovery: Recovery) -> None:
    n, app = recovery.n, recovery.lab.app
    recovery.set_prefs(default_dispvm=n("dvm"), **{TIMEOUT: 75})
    newest = recovery.three_sessions()
    expected = recovery.state()
    recovery.set_prefs(default_dispvm=None, **{TIMEOUT: 61})  # changed; and no test qube is a default any more
    recovery.remove_all()
    recovery.fresh_meta_dir()

    result = recovery.restore_all(prefs=True)

    assert result.exit_code is ExitCode.OK, (failures(result), result.warnings)
    assert {q.source: q.session for q in result.plan.qubes} == newest
    assert len(result.plan.sessions) == 3
    assert {q.action for q in result.qubes} == {Action.CREATE}
    assert_same(recovery.state(), expected)
    assert str(app.default_dispvm) == n("dvm") and int(getattr(app, TIMEOUT)) == 75
    app.domains.refresh_cache(force=True)
    assert not any(GUARD_TAG in app.domains[name].tags for name in recovery.names)

    again = recovery.restore_all(prefs=True, on_conflict=ConflictPolicy.SKIP)

    assert again.exit_code is ExitCode.OK and again.changed is False, failures(again)
    assert all(q.action is Action.SKIP for q in again.plan.qubes) and again.plan.prefs == ()
    assert_same(recovery.state(), expected)

    after = run_backup(recovery.port, recovery.wyng(), BackupRequest(qubes=recovery.names), Recorder(),
                       recovery.workdir)  # the first backup after the restore, on the fresh meta dir
    assert after.session and all(q.ok for q in after.qubes), after


def test_restore_all_into_the_second_pool(recovery: Recovery) -> None:
    recovery.three_sessions()
    expected = {name: data for name, (_, data) in recovery.state().items()}
    recovery.remove_all()
    pool2 = os.environ["WYNGQ_LAB_POOL2"]

    result = recovery.restore_all(pool=pool2)

    assert result.exit_code is ExitCode.OK, failures(result)
    assert {name: data for name, (_, data) in recovery.state().items()} == expected
    app = recovery.lab.app
    app.domains.refresh_cache(force=True)
    for name in recovery.names:
        for volume in recovery.port.volumes(name):
            assert volume.pool == pool2, (name, volume.kind)


def test_restore_all_receives_one_settings_bundle_when_the_backups_carried_entries(
        recovery: Recovery, monkeypatch: pytest.MonkeyPatch) -> None:
    recovery.known = KnownArchives(str(recovery.tmp / "state"))
    newest = recovery.three_sessions()
    expected = recovery.state()
    recovery.remove_all()
    recovery.fresh_meta_dir()
    calls: list[tuple[str, ...]] = []
    run = Wyng._run

    def counted(self: Wyng, args: Any, *rest: Any, **options: Any) -> Any:
        calls.append(tuple(str(a) for a in args))
        return run(self, args, *rest, **options)

    monkeypatch.setattr(Wyng, "_run", counted)

    result = recovery.restore_all()

    assert result.exit_code is ExitCode.OK, (failures(result), result.warnings)
    assert {q.source: q.session for q in result.plan.qubes} == newest
    assert_same(recovery.state(), expected)
    bundles = [c for c in calls if "wyng-qubes-metadata" in c]
    assert len(bundles) == 1 and f"--session={max(newest.values())}" in bundles[0], calls
    assert len(calls) == 1 + 1 + 3, calls  # the catalogue, the newest bundle, one data receive per session
