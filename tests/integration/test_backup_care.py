"""CI tier: backups of running qubes (--shutdown, snapshots disabled), settings
that cannot be read, session tags and archive care from a profile, and a
destination that fills up, through the fake Qubes and real subprocesses of the
fake `wyng`."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.conftest import FakeWyngFactory
from tests.integration.helpers import Recorder, World, make_world
from wyngq.backup import BackupRequest, BackupResult, run_backup
from wyngq.errors import ArchiveFullError, ExitCode, Interrupted, SnapshotsDisabledError, UsageError, WyngError
from wyngq.model import PropertyValue, QubeClass
from wyngq.wyng import faults
from wyngq.wyng.commands import ArchiveCare, WyngTarget
from wyngq.wyng.runner import Wyng


@pytest.fixture
def world(tmp_path: Path, fake_wyng: FakeWyngFactory) -> World:
    return make_world(tmp_path, fake_wyng)


def backup(world: World, *names: str, wyng: Wyng | None = None, **options: object) -> BackupResult:
    request = BackupRequest(qubes=names, **options)  # type: ignore[arg-type]
    return run_backup(world.qubes, wyng or world.wyng(), request, Recorder(), world.workdir)


def power_calls(world: World) -> list[tuple[str, ...]]:
    return [c[1:] for c in world.qubes.calls if c[:2] in (("write", "shutdown"), ("write", "start"))]


def sessions(world: World) -> list[str]:
    return world.wyng().catalog().sessions()


# -- snapshots disabled, --shutdown ------------------------------------------------------
def test_a_running_qube_whose_volume_keeps_no_snapshots_is_refused(world: World) -> None:
    world.qubes.domains["work"].running = True
    world.qubes.domains["work"].volumes["private"].revisions_to_keep = -1
    with pytest.raises(SnapshotsDisabledError) as caught:
        backup(world, "work", "fedora")
    assert "work:private" in caught.value.message and "--shutdown" in (caught.value.hint or "")
    assert caught.value.exit_code is ExitCode.QUBES and caught.value.code == "snapshots_disabled"
    assert sessions(world) == []


def test_shutdown_backs_it_up_halted_and_starts_it_again(world: World) -> None:
    world.qubes.domains["work"].running = True
    world.qubes.domains["work"].volumes["private"].revisions_to_keep = -1

    result = backup(world, "work", "fedora", shutdown=True)

    assert result.exit_code is ExitCode.OK and result.session in sessions(world)
    assert result.shut_down == ("work",) and result.restarted == ("work",)
    assert power_calls(world) == [("shutdown", "work"), ("start", "work")]
    assert world.qubes.domains["work"].running
    assert not any(q.running for q in result.qubes)  # backed up halted: no "running" note


def test_shutdown_starts_again_only_the_qubes_it_stopped(world: World) -> None:
    world.qubes.domains["work"].running = True
    world.qubes.domains["fedora"].running = False
    result = backup(world, "work", "fedora", shutdown=True)
    assert result.restarted == ("work",) and power_calls(world) == [("shutdown", "work"), ("start", "work")]


def test_shutdown_starts_them_again_when_the_send_fails(world: World, fake_wyng: FakeWyngFactory) -> None:
    world.qubes.domains["work"].running = True
    failing = world.wyng(fake_wyng("wyng-full", FAKE_WYNG_FAIL="full"))  # the catalogue reads; the send fails
    with pytest.raises(WyngError):
        backup(world, "work", wyng=failing, shutdown=True)
    assert power_calls(world) == [("shutdown", "work"), ("start", "work")]
    assert world.qubes.domains["work"].running


def test_an_archive_that_cannot_be_opened_stops_no_qube(world: World, fake_wyng: FakeWyngFactory) -> None:
    world.qubes.domains["work"].running = True
    failing = world.wyng(fake_wyng("wyng-crash", FAKE_WYNG_FAIL="crash"))
    with pytest.raises(WyngError):
        backup(world, "work", wyng=failing, shutdown=True)
    assert power_calls(world) == [] and world.qubes.domains["work"].running


def test_shutdown_starts_them_again_when_interrupted(world: World, fake_wyng: FakeWyngFactory) -> None:
    world.qubes.domains["work"].running = True
    interrupted = world.wyng(fake_wyng("wyng-int", FAKE_WYNG_FAIL="interrupt"))
    with pytest.raises(Interrupted) as caught:
        backup(world, "work", wyng=interrupted, shutdown=True)
    assert caught.value.signum == signal.SIGINT
    assert power_calls(world) == [("shutdown", "work"), ("start", "work")]
    assert world.qubes.domains["work"].running and sessions(world) == []


def _netvm_world(world: World) -> None:
    world.qubes.add("sys-net", QubeClass.APP, template="fedora", running=True,
                    properties={"provides_network": PropertyValue("bool", "True")})
    world.qubes.domains["work"].properties["netvm"] = PropertyValue("vm", "sys-net")
    world.qubes.domains["work"].running = True


def test_shutdown_refuses_before_stopping_anything_when_others_depend_on_a_qube(world: World) -> None:
    _netvm_world(world)
    with pytest.raises(UsageError) as caught:
        backup(world, "sys-net", shutdown=True)
    assert "sys-net: work" in caught.value.message and "--shutdown-dependants" in (caught.value.hint or "")
    assert power_calls(world) == [] and world.qubes.domains["work"].running


def test_shutdown_dependants_stops_clients_first_and_starts_them_last(world: World) -> None:
    _netvm_world(world)
    result = backup(world, "sys-net", shutdown=True, shutdown_dependants=True)
    assert result.exit_code is ExitCode.OK
    assert power_calls(world) == [("shutdown", "work"), ("shutdown", "sys-net"), ("start", "sys-net"),
                                  ("start", "work")]
    assert result.restarted == ("sys-net", "work")


def test_a_qube_that_will_not_start_again_is_a_warning_with_the_fix(world: World) -> None:
    world.qubes.domains["work"].running = True
    world.qubes.fail("start", "work", message="not enough memory")
    result = backup(world, "work", shutdown=True)
    assert result.exit_code is ExitCode.OK and result.restarted == ()
    assert any("qvm-start work" in w and "not enough memory" in w for w in result.warnings)


def test_a_dry_run_with_shutdown_stops_nothing(world: World) -> None:
    world.qubes.domains["work"].running = True
    result = backup(world, "work", shutdown=True, dry_run=True)
    assert result.dry_run and power_calls(world) == [] and result.shut_down == ()


def test_a_dry_run_with_shutdown_plans_a_snapshots_disabled_qube_as_the_real_run_would_find_it(world: World
                                                                                                ) -> None:
    world.qubes.domains["work"].running = True
    world.qubes.domains["work"].volumes["private"].revisions_to_keep = -1

    result = backup(world, "work", "fedora", shutdown=True, dry_run=True)  # the real run stops it first

    assert result.exit_code is ExitCode.OK and result.dry_run
    assert {q.name for q in result.qubes} == {"work", "fedora"} and power_calls(world) == []
    assert sessions(world) == []


def test_max_age_with_shutdown_stops_only_the_qubes_that_are_due(world: World) -> None:
    first = backup(world, "work")
    world.qubes.domains["work"].running = True
    world.qubes.domains["vault"].running = True

    result = backup(world, "work", "vault", shutdown=True, max_age=3600)

    assert result.exit_code is ExitCode.OK and result.session != first.session
    assert [q.name for q in result.qubes] == ["vault"]
    assert power_calls(world) == [("shutdown", "vault"), ("start", "vault")]
    assert {e.name: e.due for e in result.schedule} == {"work": False, "vault": True}


def test_max_age_with_shutdown_and_nothing_due_stops_nothing(world: World) -> None:
    backup(world, "work")
    world.qubes.domains["work"].running = True

    result = backup(world, "work", shutdown=True, max_age=3600)

    assert result.session is None and result.qubes == () and power_calls(world) == []


# -- settings that cannot be read ----------------------------------------------------------
@pytest.mark.parametrize("what", ["firewall", "notes"])
def test_a_qube_whose_settings_cannot_be_read_fails_loudly_and_the_rest_is_backed_up(world: World, what: str
                                                                                    ) -> None:
    world.qubes.fail(what, "work", message="PermissionDenied")
    result = backup(world, "work", "fedora")
    assert result.exit_code is ExitCode.PARTIAL
    outcome = {q.name: q for q in result.qubes}
    assert outcome["fedora"].ok and not outcome["work"].ok
    assert "settings could not be read" in (outcome["work"].error or "") and what in (outcome["work"].error or "")
    archive = world.wyng().catalog()
    assert "appvms/work/private.img" not in archive.volumes  # never stored without its settings
    assert world.qubes.domains["work"].backup_timestamp is None


# -- archive care from a profile -----------------------------------------------------------
def test_profile_tags_and_care_reach_wyng(world: World, fake_wyng: FakeWyngFactory) -> None:
    care = ArchiveCare(apdays="0:30:1:2", vouch=("reflink_fs_xfs",))
    wyng = Wyng(WyngTarget(executable=world.executable, dest=world.dest, care=care))
    result = backup(world, "work", wyng=wyng, tags=("weekly",))
    assert result.exit_code is ExitCode.OK
    send = next(c for c in fake_wyng.calls() if "send" in c["argv"])  # type: ignore[operator]
    argv = send["argv"]
    assert "--tag=qubes" in argv and "--tag=weekly" in argv  # type: ignore[operator]
    assert "--apdays=0:30:1:2" in argv and "--vouch=reflink_fs_xfs" in argv  # type: ignore[operator]
    catalog = world.wyng().catalog()
    tags = catalog.volumes["appvms/work/private.img"].sessions[str(result.session)].tags
    assert set(tags) == {"qubes", "weekly"}


# -- a destination that fills up -----------------------------------------------------------
def test_a_full_destination_says_so_and_keeps_the_earlier_sessions(
    world: World, fake_wyng: FakeWyngFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = backup(world, "work")
    log = tmp_path / "wyng-err.log"
    monkeypatch.setattr(faults, "WYNG_DEBUG_LOG", str(log))
    full = world.wyng(fake_wyng("wyng-full", FAKE_WYNG_FAIL="full", FAKE_WYNG_DEBUG_LOG=str(log)))
    world.qubes.write_volume("work", "private", b"changed" * 1000)
    with pytest.raises(ArchiveFullError) as caught:
        backup(world, "work", wyng=full)
    error = caught.value
    assert error.code == "archive_full" and error.exit_code is ExitCode.WYNG
    assert "full" in error.message and "MiB free" in error.message and "intact" in error.message
    assert "Broken pipe" not in str(error)
    assert sessions(world) == [first.session]


def test_a_broken_pipe_with_room_left_and_no_cause_stays_a_plain_wyng_failure(
    world: World, fake_wyng: FakeWyngFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(faults, "WYNG_DEBUG_LOG", str(tmp_path / "absent.log"))
    broken = world.wyng(fake_wyng("wyng-broken", FAKE_WYNG_FAIL="full"))
    with pytest.raises(WyngError) as caught:
        backup(world, "work", wyng=broken)
    assert not isinstance(caught.value, ArchiveFullError)


# -- Wyng's monitor for lvm_thin pools ------------------------------------------------------
def test_monitor_goes_only_to_volumes_in_lvm_thin_pools(world: World, fake_wyng: FakeWyngFactory) -> None:
    from wyngq.model import Pool, PoolDriver
    from wyngq.monitor import run_monitor

    world.qubes.add_pool(Pool("vm-pool", PoolDriver.LVM_THIN, "qubes_dom0/vm-pool"))
    world.qubes.domains["vault"].volumes["private"].pool = "vm-pool"
    world.qubes.domains["vault"].volumes["root"].pool = "vm-pool"
    result = run_monitor(world.qubes, world.wyng(), BackupRequest(qubes=("work", "vault")), Recorder(),
                         world.workdir)
    assert result.volumes == ("vm-vault-private", "vm-vault-root")
    assert result.skipped == ("appvms/work/private.img",)
    call = next(c for c in fake_wyng.calls() if "monitor" in c["argv"])  # type: ignore[operator]
    assert call["rc"] == 0 and call["argv"][-1] == "monitor"  # type: ignore[index]


def test_monitor_without_lvm_thin_runs_no_wyng(world: World, fake_wyng: FakeWyngFactory) -> None:
    from wyngq.monitor import run_monitor

    result = run_monitor(world.qubes, world.wyng(), BackupRequest(qubes=("work",)), Recorder(), world.workdir)
    assert result.volumes == () and not any("monitor" in c["argv"] for c in fake_wyng.calls())  # type: ignore[operator]
