"""CI tier: restores of what Qubes 4.3 adds, through the fake Qubes (which refuses
reserved features as qubesd does) and real subprocesses of the fake `wyng`."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import FakeWyngFactory
from tests.integration.restore_world import RestoreWorld, make_restore_world, pv
from wyngq.errors import ExitCode, QubesError
from wyngq.restore.model import ConflictPolicy

RESERVED = {"preload-dispvm": "disp9", "preload-dispvm-completed": "1", "deferred-netvm-original": "sys-fw"}
PRELOAD_SUPPORT = {"qrexec": "1", "supported-rpc.qubes.WaitForRunningSystem": "1",
                   "supported-rpc.qubes.WaitForSession": "1"}


@pytest.fixture
def world(tmp_path: Path, fake_wyng: FakeWyngFactory) -> RestoreWorld:
    return make_restore_world(tmp_path, fake_wyng)


def feature_writes(world: RestoreWorld) -> list[tuple[str, ...]]:
    return [c[2:] for c in world.qubes.calls if c[:2] in (("write", "set_feature"), ("write", "remove_feature"))]


def test_the_fake_refuses_reserved_features_as_qubesd_does(world: RestoreWorld) -> None:
    with pytest.raises(QubesError, match="PermissionDenied"):
        world.qubes.set_feature("dvm", "preload-dispvm", "x")
    with pytest.raises(QubesError, match="does not support qrexec"):
        world.qubes.set_feature("dvm", "preload-dispvm-max", "1")


def test_a_dvm_template_with_reserved_features_restores_cleanly(world: RestoreWorld) -> None:
    world.qubes.domains["fedora"].features.update(PRELOAD_SUPPORT)
    world.qubes.domains["dvm"].features.update({**RESERVED, "preload-dispvm-max": "2"})
    world.backup()
    world.remove("disp1")
    world.remove("dvm")

    result = world.restore("dvm", "disp1")

    assert result.exit_code is ExitCode.OK, (result.qubes, result.warnings)
    features = world.qubes.domains["dvm"].features
    assert features.get("preload-dispvm-max") == "2" and not set(RESERVED) & set(features)
    writes = feature_writes(world)
    assert not any(w[1] in RESERVED for w in writes)
    assert writes[-1] == ("dvm", "preload-dispvm-max", "2")  # after every other feature
    assert result.menus  # the result says what became of the app menus (here: no qvm-appmenus)


def test_preload_max_set_after_the_template_restored_with_it_supports_it(world: RestoreWorld) -> None:
    world.qubes.domains["fedora"].features.update(PRELOAD_SUPPORT)
    world.qubes.domains["dvm"].features["preload-dispvm-max"] = "1"
    world.backup()
    for name in ("disp1", "work", "dvm", "fedora"):
        world.remove(name)
    result = world.restore("fedora", "dvm")
    assert result.exit_code is ExitCode.OK, (result.qubes, result.warnings)
    assert world.qubes.domains["dvm"].features["preload-dispvm-max"] == "1"


def test_preload_max_refused_here_is_a_warning_and_the_qube_is_restored(world: RestoreWorld) -> None:
    world.qubes.domains["dvm"].features["preload-dispvm-max"] = "1"  # fedora says nothing of qrexec
    world.backup()
    world.remove("disp1")
    world.remove("dvm")
    result = world.restore("dvm")
    assert result.exit_code is ExitCode.OK
    assert any("qvm-features dvm preload-dispvm-max 1" in w for w in result.warnings)
    assert "backup-restore-in-progress" not in world.qubes.domains["dvm"].tags


def test_reserved_features_qubesd_set_on_the_live_qube_stay(world: RestoreWorld) -> None:
    world.backup()
    world.qubes.domains["dvm"].features.update(RESERVED)  # qubesd's own, set since the backup
    result = world.restore("dvm", on_conflict=ConflictPolicy.REPLACE, shutdown=True)
    assert result.exit_code is ExitCode.OK, result.qubes
    assert set(RESERVED) <= set(world.qubes.domains["dvm"].features)


def test_bootmode_and_the_device_deny_list_round_trip(world: RestoreWorld) -> None:
    fedora, work = world.qubes.domains["fedora"], world.qubes.domains["work"]
    fedora.features["boot-mode.kernelopts.hardened"] = "x=1"
    fedora.properties["appvm_default_bootmode"] = pv("str", "hardened")
    work.properties["bootmode"] = pv("str", "hardened")
    work.properties["devices_denied"] = pv("str", "u03****p0e****")
    world.backup()
    work.properties.pop("bootmode")
    work.properties["devices_denied"] = pv("str", "")
    fedora.properties.pop("appvm_default_bootmode")

    result = world.restore("fedora", "work", on_conflict=ConflictPolicy.REPLACE, shutdown=True)

    assert result.exit_code is ExitCode.OK, result.qubes
    assert work.properties["bootmode"].value == "hardened"
    assert work.properties["devices_denied"].value == "u03****p0e****"
    assert fedora.properties["appvm_default_bootmode"].value == "hardened"


def test_a_snapshots_disabled_volume_is_replaced_only_when_asked(world: RestoreWorld) -> None:
    world.backup()
    world.qubes.domains["work"].volumes["private"].revisions_to_keep = -1
    refused = world.restore("work", on_conflict=ConflictPolicy.REPLACE)
    assert refused.refused and refused.exit_code == ExitCode.QUBES
    assert [p.code for _, p in refused.plan.blocking] == ["no_revisions"]

    done = world.restore("work", on_conflict=ConflictPolicy.REPLACE, keep_previous=False)
    assert done.exit_code is ExitCode.OK, done.qubes
