"""CI tier: whole-machine recovery (`restore --all`) across sessions, with dom0's
global preferences, through the fake `wyng` as a real subprocess."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conftest import FakeWyngFactory
from tests.integration.restore_world import QUBES, RestoreWorld, make_restore_world
from wyngq.errors import ExitCode, UsageError
from wyngq.listing import ListRequest, list_archive
from wyngq.model import PropertyValue
from wyngq.restore.model import GUARD_TAG, Action, ConflictPolicy
from wyngq.wyng.commands import WyngTarget
from wyngq.wyng.known import KnownArchives
from wyngq.wyng.runner import Wyng

PREFS = {"default_template": "fedora", "default_netvm": "sys-fw", "clockvm": "sys-net", "updatevm": "sys-fw"}


@pytest.fixture
def world(tmp_path: Path, fake_wyng: FakeWyngFactory) -> RestoreWorld:
    return make_restore_world(tmp_path, fake_wyng)


def set_prefs(world: RestoreWorld, values: dict[str, str]) -> None:
    for name, value in values.items():
        world.qubes.prefs[name] = (False, PropertyValue("vm", value))


def three_sessions(world: RestoreWorld) -> tuple[list[str], dict[str, str]]:
    """Everything in the first session; then work and sys-fw changed and backed up;
    then vault changed and backed up with the named disposable. Returns the
    sessions and each qube's newest."""
    set_prefs(world, PREFS)
    first = world.backup()
    world.qubes.write_volume("work", "private", b"work, second" * 999)
    world.qubes.domains["sys-fw"].notes = "second notes"
    second = world.backup("work", "sys-fw")
    world.qubes.write_volume("vault", "private", b"vault, third" * 777)
    world.qubes.domains["disp1"].label = "orange"
    third = world.backup("vault", "disp1")
    newest = {name: first for name in QUBES} | {"work": second, "sys-fw": second, "vault": third, "disp1": third}
    return [first, second, third], newest


def fresh_dom0(world: RestoreWorld, tmp_path: Path) -> None:
    """Every qube gone, dom0's preferences at the installer's, a new empty Wyng meta dir."""
    for name in reversed(QUBES):
        world.remove(name)
    set_prefs(world, dict.fromkeys(PREFS, ""))
    meta = tmp_path / "new-meta"
    meta.mkdir()
    world.wyng = lambda **env: Wyng(WyngTarget(world.executable, world.dest, meta_dir=str(meta)))  # type: ignore[method-assign]


def test_all_brings_every_qube_back_from_its_newest_session_with_the_prefs(world: RestoreWorld,
                                                                            tmp_path: Path) -> None:
    sessions, newest = three_sessions(world)
    expected = world.state()
    fresh_dom0(world, tmp_path)
    calls_before = len(world.factory.calls())

    result = world.restore(all=True, prefs=True)

    assert result.exit_code is ExitCode.OK, (result.qubes, result.warnings)
    assert {q.source: q.session for q in result.plan.qubes} == newest
    assert result.plan.sessions == tuple(sessions)
    assert [q.action for q in result.qubes] == [Action.CREATE] * len(QUBES)
    assert world.state() == expected
    assert {k: world.qubes.prefs[k][1].value for k in PREFS} == PREFS
    assert not any(GUARD_TAG in q.tags for q in world.qubes.domains.values())
    argvs = [c["argv"] for c in world.factory.calls()[calls_before:]]
    receives = [a for a in argvs if a[-1] == "receive"]  # type: ignore[index]
    assert len(receives) == 3  # one per session
    assert all("--meta-dir=" + str(tmp_path / "new-meta") in a for a in argvs)  # type: ignore[operator]
    bundles = [a for a in argvs if "wyng-qubes-metadata" in a]  # type: ignore[operator]
    assert len(bundles) == 3  # one settings bundle per session, none twice


def test_all_again_with_skip_changes_nothing(world: RestoreWorld, tmp_path: Path) -> None:
    three_sessions(world)
    fresh_dom0(world, tmp_path)
    assert world.restore(all=True, prefs=True).exit_code is ExitCode.OK
    state = world.state()
    writes = len([c for c in world.qubes.calls if c[0] == "write"])

    again = world.restore(all=True, prefs=True, on_conflict=ConflictPolicy.SKIP)

    assert again.exit_code is ExitCode.OK and again.changed is False
    assert all(q.action is Action.SKIP for q in again.plan.qubes)
    assert again.plan.prefs == ()
    assert len([c for c in world.qubes.calls if c[0] == "write"]) == writes
    assert world.state() == state


def test_dry_run_shows_the_whole_plan_and_changes_nothing(world: RestoreWorld, tmp_path: Path) -> None:
    _, newest = three_sessions(world)
    fresh_dom0(world, tmp_path)

    result = world.restore(all=True, prefs=True, dry_run=True)

    assert result.dry_run and result.changed and result.exit_code is ExitCode.OK  # changed: what it would do
    assert {q.source: q.session for q in result.plan.qubes} == newest
    assert {o.key: o.value for o in result.plan.prefs} == PREFS
    assert world.qubes.domains == {}
    assert not [c for c in world.qubes.calls if c[0] == "write"]


def test_as_of_and_exclude(world: RestoreWorld, tmp_path: Path) -> None:
    sessions, _ = three_sessions(world)
    fresh_dom0(world, tmp_path)

    result = world.restore(all=True, as_of=sessions[1], exclude=("vault",), dry_run=True)

    placed = {q.source: q.session for q in result.plan.qubes}
    assert "vault" not in placed
    assert placed["work"] == sessions[1] and placed["disp1"] == sessions[0] and placed["fedora"] == sessions[0]


def test_named_qubes_come_each_from_their_own_newest_session(world: RestoreWorld, tmp_path: Path) -> None:
    sessions, _ = three_sessions(world)
    for name in ("vault", "work"):
        world.remove(name)

    result = world.restore("vault", "work")

    assert result.exit_code is ExitCode.OK
    assert {q.source: q.session for q in result.plan.qubes} == {"vault": sessions[2], "work": sessions[1]}
    assert world.qubes.read_volume("work", "private") == b"work, second" * 999
    assert world.qubes.read_volume("vault", "private") == b"vault, third" * 777


def test_a_named_disposable_is_found_in_an_older_bundle(world: RestoreWorld) -> None:
    sessions, _ = three_sessions(world)
    world.backup("work")  # a fourth session without disp1
    world.remove("disp1")

    result = world.restore("disp1")

    assert result.exit_code is ExitCode.OK
    assert [(q.source, q.session) for q in result.plan.qubes] == [("disp1", sessions[2])]
    assert world.qubes.domains["disp1"].label == "orange"


def test_usage_errors_say_why(world: RestoreWorld) -> None:
    world.backup()
    with pytest.raises(UsageError, match="do not name qubes"):
        world.restore("work", all=True)
    with pytest.raises(UsageError, match="cannot be combined with --session"):
        world.restore(all=True, session="latest")
    with pytest.raises(UsageError, match="name the qubes"):
        world.restore()
    with pytest.raises(UsageError, match="no backups of: nosuch"):
        world.restore("nosuch")


def test_a_pref_naming_a_qube_that_is_not_there_is_left_and_reported(world: RestoreWorld, tmp_path: Path) -> None:
    three_sessions(world)
    fresh_dom0(world, tmp_path)

    result = world.restore(all=True, exclude=("sys-fw",), prefs=True, dry_run=True)

    assert {o.key for o in result.plan.prefs} == {"default_template", "clockvm"}
    left = [p.message for p in result.plan.prefs_problems if p.code == "missing_pref_qube"]
    assert len(left) == 2 and all("'sys-fw'" in m for m in left)


def test_without_prefs_nothing_global_changes(world: RestoreWorld, tmp_path: Path) -> None:
    three_sessions(world)
    fresh_dom0(world, tmp_path)

    result = world.restore(all=True)

    assert result.exit_code is ExitCode.OK and result.plan.prefs == ()
    assert all(world.qubes.prefs[k][1].value == "" for k in PREFS)
    assert not [c for c in world.qubes.calls if c[:2] == ("write", "set_global_pref")]


def test_the_first_backup_after_the_restore_clears_another_archives_snapshot(world: RestoreWorld,
                                                                             tmp_path: Path) -> None:
    """Wyng refuses to send a volume whose (LVM) snapshot belongs to another archive
    unless --remap: the backup after a restore onto a machine that used another
    archive must just work."""
    three_sessions(world)
    fresh_dom0(world, tmp_path)
    assert world.restore(all=True).exit_code is ExitCode.OK
    pool = tmp_path / "pool-main"
    (pool / ".fake-wyng-lvm").write_text("")
    snapshot = Path(world.qubes.volume_path("work", "private") + ".tick.tags")
    snapshot.write_text('["wyng", "arch-another-archive", "S_20240101-000000"]')

    session = world.backup()

    assert '"arch-another-archive"' not in snapshot.read_text() and session in snapshot.read_text()
    sends = [c for c in world.factory.calls() if c["argv"][-1] == "send"]  # type: ignore[index]
    assert "--remap" in sends[-1]["argv"]  # type: ignore[operator]


def test_a_failed_receive_in_one_session_fails_only_its_qubes(world: RestoreWorld) -> None:
    three_sessions(world)
    for name in reversed(QUBES):
        world.remove(name)

    result = world.restore(all=True, prefs=True, env={"FAKE_WYNG_FAIL": "vol=appvms/vault/private.img"})

    assert result.exit_code is ExitCode.PARTIAL
    failed = {q.target: q.failed_step for q in result.qubes if not q.ok}
    assert failed == {"vault": "receive"}  # the third session's other qube (disp1) has no data
    assert GUARD_TAG in world.qubes.domains["vault"].tags
    assert world.qubes.read_volume("work", "private") == b"work, second" * 999
    assert {k: world.qubes.prefs[k][1].value for k in PREFS} == PREFS


def test_a_backup_records_no_prefs_when_qubesd_will_not_tell(world: RestoreWorld, tmp_path: Path) -> None:
    from wyngq.errors import QubesError

    def refuse() -> dict[str, object]:
        raise QubesError("dom0: not allowed")

    world.qubes.global_prefs = refuse  # type: ignore[assignment,method-assign]
    world.backup()
    for name in reversed(QUBES):
        world.remove(name)
    del world.qubes.global_prefs  # type: ignore[method-assign]

    result = world.restore(all=True, prefs=True)

    assert result.exit_code is ExitCode.OK and result.plan.prefs == ()
    assert [p.code for p in result.plan.prefs_problems] == ["no_prefs"]


def test_carried_entries_cut_the_bundle_receives_to_one_and_restore_the_same(
        world: RestoreWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    world.known = KnownArchives(str(tmp_path / "state"))  # backups keep the last manifest: entries are carried
    sessions, newest = three_sessions(world)
    expected = world.state()
    fresh_dom0(world, tmp_path)
    calls_before = len(world.factory.calls())

    carried = world.restore(all=True, prefs=True)

    argvs = [c["argv"] for c in world.factory.calls()[calls_before:]]
    assert [a[-1] for a in argvs].count("list") == 1  # type: ignore[index]
    assert len([a for a in argvs if "wyng-qubes-metadata" in a]) == 1  # type: ignore[operator]
    assert len([a for a in argvs if a[-1] == "receive"]) == len(sessions)  # type: ignore[index]  # the data
    assert len(argvs) == 1 + 1 + len(sessions)  # the catalogue, one bundle, one data receive per session
    assert carried.exit_code is ExitCode.OK, (carried.qubes, carried.warnings)
    assert world.state() == expected
    assert {k: world.qubes.prefs[k][1].value for k in PREFS} == PREFS

    listed = list_archive(world.wyng(), ListRequest(session=sessions[-1]), world.workdir)
    assert [q.name for q in listed.session_qubes] == ["disp1", "vault"]  # not the qubes it carries

    # the same archive, every bundle received: the same plan and the same qubes
    for name in reversed(QUBES):
        world.remove(name)
    set_prefs(world, dict.fromkeys(PREFS, ""))
    monkeypatch.setattr("wyngq.restore.run.covered_sessions", lambda *args: {})
    calls_before = len(world.factory.calls())
    every = world.restore(all=True, prefs=True)

    argvs = [c["argv"] for c in world.factory.calls()[calls_before:]]
    assert len([a for a in argvs if "wyng-qubes-metadata" in a]) == len(sessions)  # type: ignore[operator]
    assert every.plan == carried.plan
    assert {q.source: q.session for q in every.plan.qubes} == newest
    assert world.state() == expected


def test_a_session_another_writer_added_is_read_and_its_qubes_come_from_it(world: RestoreWorld,
                                                                           tmp_path: Path) -> None:
    known = world.known = KnownArchives(str(tmp_path / "state"))
    first = world.backup()
    world.qubes.write_volume("work", "private", b"work, by another writer" * 99)
    world.qubes.domains["work"].label = "purple"
    world.known = None  # another writer: this dom0's record and manifest copy do not learn of its session
    other = world.backup("work")
    world.known = known
    world.qubes.write_volume("vault", "private", b"vault, third" * 77)
    time.sleep(1.1)  # the record does not know `other`: a send in its second would be refused as a duplicate
    third = world.backup("vault")  # carries work's entry of `first`, as it knows it
    expected = world.state()
    fresh_dom0(world, tmp_path)
    calls_before = len(world.factory.calls())

    result = world.restore(all=True)

    assert result.exit_code is ExitCode.OK, (result.qubes, result.warnings)
    assert {q.source: q.session for q in result.plan.qubes}["work"] == other
    assert world.state() == expected  # work as the other writer backed it up: purple
    argvs = [c["argv"] for c in world.factory.calls()[calls_before:]]
    received = sorted(x for a in argvs if "wyng-qubes-metadata" in a for x in a  # type: ignore[union-attr,operator]
                      if x.startswith("--session="))  # type: ignore[union-attr]
    assert first < other < third
    assert received == [f"--session={other}", f"--session={third}"]  # first's qubes: carried entries
