"""CI tier: a failure injected at every apply step leaves a correct outcome,
the right guard tags, and nothing lost."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.conftest import FakeWyngFactory
from tests.integration.helpers import Recorder
from tests.integration.restore_world import QUBES, RestoreWorld, make_restore_world, pv
from wyngq.errors import ExitCode
from wyngq.model import QubeClass
from wyngq.restore.model import GUARD_TAG, ConflictPolicy, RestoreRequest, StepKind
from wyngq.restore.plan import SCRATCH_PREFIX, SCRATCH_TAG, scratch_name
from wyngq.restore.run import run_restore
from wyngq.wyng.runner import Wyng, WyngRun

CHANGED = b"changed after the backup" * 100


def prepare(world: RestoreWorld) -> dict[str, dict[str, str]]:
    """Back up everything, then: remove work, dvm and disp1 (so they are created),
    change sys-fw and run it (so it is shut down and replaced), and give vault a
    capability the backup lacks (switched off at the end). Return the backup's
    data hashes."""
    world.backup()
    backed_up = {name: data for name, (_, data) in world.state().items()}
    for name in ("disp1", "work", "dvm"):
        world.remove(name)
    fw = world.qubes.domains["sys-fw"]
    world.qubes.write_volume("sys-fw", "private", CHANGED)
    fw.label, fw.notes, fw.firewall = "orange", "changed", ["action=drop"]
    fw.properties["memory"] = pv("int", "123")
    fw.features["extra"] = "1"
    fw.tags.add("extra-tag")
    world.qubes.domains["vault"].properties["provides_network"] = pv("bool", "True")
    world.qubes.start("sys-fw")
    return backed_up


def no_scratch_left(world: RestoreWorld, tmp_path: Path) -> bool:
    """No scratch qube, and no file of one, is left."""
    qubes = [name for name in world.qubes.domains if name.startswith(SCRATCH_PREFIX)]
    files = list(tmp_path.glob(f"pool-*/appvms/{SCRATCH_PREFIX}*/*"))
    return not qubes and not files


# (step, fake method and arguments to fail or a Wyng fault, the qube that fails, the others that fail with it)
CASES = [
    # sys-fw stays up, so its netvm sys-net cannot stop either (qubesd: clients connected)
    (StepKind.GUARD, ("add_tag", "sys-fw", GUARD_TAG), None, "sys-fw", {"sys-net"}),
    (StepKind.SHUTDOWN, ("shutdown", "sys-fw"), None, "sys-fw", {"sys-net"}),
    (StepKind.CREATE, ("create_qube", "work"), None, "work", set()),
    # dvm is no disposable template: disp1 cannot be created, work's default_dispvm cannot point at it
    (StepKind.CAPABILITIES, ("set_property", "dvm", "template_for_dispvms"), None, "dvm", {"disp1", "work"}),
    (StepKind.RECEIVE, None, "vol=appvms/work/private.img", "work", set()),
    # a corrupt chunk stops Wyng: volumes it had not reported received fail with it
    (StepKind.RECEIVE, None, "corrupt=appvms/sys-fw/private.img", "sys-fw", {"dvm", "vault", "work", "sys-net",
                                                                            "fedora"}),
    (StepKind.IMPORT, ("clone_volume", "sys-fw", "private"), None, "sys-fw", set()),
    (StepKind.PROPERTIES, ("set_property", "sys-fw", "label"), None, "sys-fw", set()),
    (StepKind.REFERENCES, ("set_property", "work", "netvm"), None, "work", set()),
    (StepKind.CAPABILITIES_OFF, ("reset_property", "vault", "provides_network"), None, "vault", set()),
    (StepKind.FEATURES, ("set_feature", "work"), None, "work", set()),
    (StepKind.TAGS, ("add_tag", "work", "project-x"), None, "work", set()),
    (StepKind.FIREWALL, ("set_firewall", "sys-fw"), None, "sys-fw", set()),
    (StepKind.NOTES, ("set_notes", "sys-fw"), None, "sys-fw", set()),
    (StepKind.DEVICES, ("assign_device", "work"), None, "work", set()),
    (StepKind.FINISH, ("remove_tag", "sys-fw", GUARD_TAG), None, "sys-fw", set()),
]


@pytest.mark.parametrize(("kind", "fault", "wyng_fault", "target", "also"), CASES,
                         ids=[f"{c[0].value}-{c[3]}-{i}" for i, c in enumerate(CASES)])
def test_failure_at_every_step(
    tmp_path: Path, fake_wyng: FakeWyngFactory, kind: StepKind, fault: tuple[str, ...] | None,
    wyng_fault: str | None, target: str, also: set[str],
) -> None:
    world = make_restore_world(tmp_path, fake_wyng)
    backed_up = prepare(world)
    if fault is not None:
        world.qubes.fail(*fault)

    result = world.restore(*QUBES, on_conflict=ConflictPolicy.REPLACE, shutdown=True,
                           env={"FAKE_WYNG_FAIL": wyng_fault} if wyng_fault else None)

    assert result.exit_code is ExitCode.PARTIAL
    outcomes = {q.target: q for q in result.qubes}
    assert outcomes[target].failed_step == kind.value, outcomes[target]
    assert outcomes[target].hint and outcomes[target].error
    failed = {name for name, o in outcomes.items() if not o.ok}
    assert target in failed and failed - {target} <= also, failed
    for name, outcome in outcomes.items():
        tags = world.qubes.domains[name].tags if name in world.qubes.domains else set()
        if outcome.ok:
            assert GUARD_TAG not in tags, name
            _, data = world.state((name,))[name]
            assert name not in backed_up or data == backed_up[name], name
        elif name in world.qubes.domains and not (name == target and kind is StepKind.GUARD):
            assert GUARD_TAG in tags, name
    # nothing lost: sys-fw holds either its newer data untouched, or the backup's with the newer as a revision
    current = hashlib.sha256(world.qubes.read_volume("sys-fw", "private")).hexdigest()
    if current != hashlib.sha256(CHANGED).hexdigest():
        assert current == backed_up["sys-fw"]["private"]
        world.qubes.revert("sys-fw", "private")
        assert world.qubes.read_volume("sys-fw", "private") == CHANGED


def test_scratch_copies_are_gone_after_every_run(tmp_path: Path, fake_wyng: FakeWyngFactory) -> None:
    world = make_restore_world(tmp_path, fake_wyng)
    prepare(world)
    world.qubes.fail("clone_volume", "sys-fw")
    world.restore(*QUBES, on_conflict=ConflictPolicy.REPLACE, shutdown=True)
    assert no_scratch_left(world, tmp_path)


def test_a_failed_qube_can_be_finished_by_running_the_restore_again(
        tmp_path: Path, fake_wyng: FakeWyngFactory) -> None:
    world = make_restore_world(tmp_path, fake_wyng)
    backed_up = prepare(world)
    world.qubes.fail("set_notes", "sys-fw")
    first = world.restore(*QUBES, on_conflict=ConflictPolicy.REPLACE, shutdown=True)
    assert first.exit_code is ExitCode.PARTIAL
    world.qubes._faults().clear()

    again = world.restore("sys-fw", on_conflict=ConflictPolicy.REPLACE)

    assert again.exit_code is ExitCode.OK
    assert GUARD_TAG not in world.qubes.domains["sys-fw"].tags
    assert world.state(("sys-fw",))["sys-fw"][1] == backed_up["sys-fw"]
    assert world.qubes.domains["sys-fw"].notes == "the firewall"


def test_json_result_names_the_failed_step(tmp_path: Path, fake_wyng: FakeWyngFactory) -> None:
    world = make_restore_world(tmp_path, fake_wyng)
    prepare(world)
    world.qubes.fail("set_firewall", "sys-fw")
    from wyngq.contract.serialize import to_json
    from wyngq.restore.report import restore_report

    result = world.restore(*QUBES, on_conflict=ConflictPolicy.REPLACE, shutdown=True)
    data = json.loads(json.dumps(to_json(restore_report(result))))
    assert isinstance(data, dict)
    entry = next(q for q in data["qubes"] if q["target"] == "sys-fw")
    assert (entry["ok"], entry["failed_step"]) == (False, "firewall")
    assert "qvm-volume revert sys-fw:private" in entry["hint"]
    assert entry["revisions"] == ["sys-fw:private"]


def test_an_interruption_stops_the_restore_and_says_where_each_qube_stopped(
        tmp_path: Path, fake_wyng: FakeWyngFactory) -> None:
    world = make_restore_world(tmp_path, fake_wyng)
    prepare(world)
    world.executable = fake_wyng.interrupting_receive(world.executable)

    result = world.restore(*QUBES, on_conflict=ConflictPolicy.REPLACE, shutdown=True)

    assert (result.exit_code, result.code, result.interrupted) == (130, "interrupted", 2)
    assert "INTERRUPTED" in result.summary
    outcomes = {q.target: q for q in result.qubes}
    assert not any(o.ok for o in outcomes.values())
    with_data = {q.target for q in result.plan.qubes if q.volumes}
    assert {n for n, o in outcomes.items() if o.failed_step == "receive"} == with_data
    assert outcomes["disp1"].failed_step != "receive"  # no data: stopped at its own next step
    assert all("interrupted (signal 2)" in (o.error or "") for o in outcomes.values())
    fw_hint = outcomes["sys-fw"].hint or ""
    assert "keeps the tag" in fw_hint and "data was not changed" in fw_hint
    assert "qvm-remove work" in (outcomes["work"].hint or "")  # created before the receive: incomplete
    assert GUARD_TAG in world.qubes.domains["sys-fw"].tags  # touched: tagged, will not start half-restored
    assert world.qubes.read_volume("sys-fw", "private") == CHANGED  # its data untouched
    assert no_scratch_left(world, tmp_path)


@pytest.mark.parametrize("error", [UnicodeEncodeError("ascii", "é", 0, 1, "ordinal not in range(128)"),
                                   PermissionError(13, "Permission denied"), RuntimeError("a bug")],
                         ids=["unicode", "oserror", "bug"])
def test_an_unexpected_error_fails_that_qube_and_the_others_go_on(
        tmp_path: Path, fake_wyng: FakeWyngFactory, error: Exception) -> None:
    world = make_restore_world(tmp_path, fake_wyng)
    backed_up = prepare(world)
    world.qubes.fail("set_firewall", "sys-fw", error=error)

    result = world.restore(*QUBES, on_conflict=ConflictPolicy.REPLACE, shutdown=True)

    assert result.exit_code is ExitCode.PARTIAL
    outcomes = {q.target: q for q in result.qubes}
    assert {n for n, o in outcomes.items() if not o.ok} == {"sys-fw"}
    assert outcomes["sys-fw"].failed_step == "firewall"
    assert (outcomes["sys-fw"].error or "").startswith(f"unexpected error: {type(error).__name__}")
    assert "qvm-volume revert sys-fw:private" in (outcomes["sys-fw"].hint or "")
    assert GUARD_TAG in world.qubes.domains["sys-fw"].tags
    assert world.state(("work",))["work"][1] == backed_up["work"]


def scratch_of(world: RestoreWorld, qube: str) -> tuple[str, set[str]]:
    """The scratch qube the restore of QUBES receives `qube` into, and every qube received there."""
    plan = world.restore(*QUBES, on_conflict=ConflictPolicy.REPLACE, shutdown=True, dry_run=True).plan
    name = plan.qube(qube).volumes[0].scratch_qube
    return name, {q.target for q in plan.qubes if any(p.scratch_qube == name for p in q.volumes)}


def test_two_appvms_share_a_scratch_qube_a_template_has_its_own(tmp_path: Path, fake_wyng: FakeWyngFactory) -> None:
    world = make_restore_world(tmp_path, fake_wyng)
    prepare(world)
    plan = world.restore(*QUBES, on_conflict=ConflictPolicy.REPLACE, shutdown=True, dry_run=True).plan
    slots = {(p.qube, p.kind): (p.scratch_qube, p.slot) for q in plan.qubes for p in q.volumes}
    for qube in ("fedora", "vault"):  # a template and a standalone: root and private, in their own
        assert slots[(qube, "root")] == (scratch_name(qube), "root")
        assert slots[(qube, "private")] == (scratch_name(qube), "private")
    apps = {name: sorted(slot for (q, _), (n, slot) in slots.items() if n == name)
            for (q, _), (name, _) in slots.items() if q in ("dvm", "sys-net", "sys-fw", "work")}
    assert list(apps.values()) == [["private", "root"]] * 2  # four AppVMs' private volumes, two to a scratch qube


def test_a_scratch_qube_that_cannot_be_made_fails_only_its_qubes(tmp_path: Path, fake_wyng: FakeWyngFactory) -> None:
    world = make_restore_world(tmp_path, fake_wyng)
    backed_up = prepare(world)
    name, inside = scratch_of(world, "sys-fw")
    assert len(inside) == 2
    world.qubes.fail("create_qube", name, message="No space left on device")

    result = world.restore(*QUBES, on_conflict=ConflictPolicy.REPLACE, shutdown=True)

    assert result.exit_code is ExitCode.PARTIAL
    outcomes = {q.target: q for q in result.qubes}
    for qube in inside:
        assert (outcomes[qube].ok, outcomes[qube].failed_step) == (False, "receive")
        assert "cannot prepare the scratch qube" in (outcomes[qube].error or "")
        assert "No space left on device" in (outcomes[qube].error or "")
    assert world.qubes.read_volume("sys-fw", "private") == CHANGED
    others = [q for q in ("sys-net", "work", "vault") if q not in inside]
    assert all(outcomes[q].ok for q in others)
    assert all(world.state((q,))[q][1] == backed_up[q] for q in others)
    assert no_scratch_left(world, tmp_path)


def test_a_scratch_qube_left_by_a_crashed_run_is_replaced(tmp_path: Path, fake_wyng: FakeWyngFactory) -> None:
    world = make_restore_world(tmp_path, fake_wyng)
    backed_up = prepare(world)
    leftover, _ = scratch_of(world, "sys-fw")
    world.qubes.add(leftover, QubeClass.STANDALONE, data={"private": b"stale" * 100, "root": b""}, tags={SCRATCH_TAG})
    # and one of a restore that put its volumes elsewhere
    other = scratch_name("something-else")
    world.qubes.add(other, QubeClass.STANDALONE, data={"private": b"stale" * 100, "root": b""}, tags={SCRATCH_TAG})

    result = world.restore(*QUBES, on_conflict=ConflictPolicy.REPLACE, shutdown=True)

    assert result.exit_code is ExitCode.OK, result.qubes
    assert world.state(("sys-fw",))["sys-fw"][1] == backed_up["sys-fw"]
    assert no_scratch_left(world, tmp_path)


def test_a_users_qube_with_the_scratch_name_is_left_alone(tmp_path: Path, fake_wyng: FakeWyngFactory) -> None:
    world = make_restore_world(tmp_path, fake_wyng)
    prepare(world)
    mine, _ = scratch_of(world, "sys-fw")
    world.qubes.add(mine, QubeClass.STANDALONE, data={"private": b"mine" * 100, "root": b""})
    also_mine = scratch_name("something-else")  # named like one, not tagged as one
    world.qubes.add(also_mine, QubeClass.STANDALONE, data={"private": b"mine" * 100, "root": b""})

    result = world.restore(*QUBES, on_conflict=ConflictPolicy.REPLACE, shutdown=True)

    outcomes = {q.target: q for q in result.qubes}
    assert (outcomes["sys-fw"].ok, outcomes["sys-fw"].failed_step) == (False, "receive")
    assert "is not a wyngq scratch qube" in (outcomes["sys-fw"].error or "")
    assert world.qubes.read_volume(mine, "private") == b"mine" * 100
    assert world.qubes.read_volume(also_mine, "private") == b"mine" * 100
    assert world.qubes.read_volume("sys-fw", "private") == CHANGED


def test_a_qube_whose_start_was_under_way_when_its_restore_began_is_not_cloned_into(
        tmp_path: Path, fake_wyng: FakeWyngFactory) -> None:
    """A start qubesd let through just before the guard tag went on runs by the
    end of the receive: that qube fails at the receive with the reason, keeps its
    data and its guard tag; the others go on."""
    world = make_restore_world(tmp_path, fake_wyng)
    world.backup()
    world.qubes.write_volume("work", "private", CHANGED)

    class StartDuringReceive(Wyng):
        def receive(self, *, local_from: str, session: str, use_snapshot: bool = False) -> WyngRun:
            world.qubes.domains["work"].running = True  # past qubesd's pre-start check, tag or not
            return super().receive(local_from=local_from, session=session, use_snapshot=use_snapshot)

    request = RestoreRequest(qubes=("work", "vault"), on_conflict=ConflictPolicy.REPLACE, trust_archive_settings=True)
    result = run_restore(world.qubes, StartDuringReceive(world.wyng().target), request, Recorder(), world.workdir)

    outcome = {q.target: q for q in result.qubes}
    assert result.exit_code is ExitCode.PARTIAL
    assert (outcome["work"].ok, outcome["work"].failed_step) == (False, StepKind.RECEIVE.value)
    assert "started" in (outcome["work"].error or "") and outcome["work"].revisions == ()
    assert world.qubes.read_volume("work", "private") == CHANGED
    assert not [c for c in world.qubes.calls if c[:2] == ("clone_volume", "work")]
    assert GUARD_TAG in world.qubes.domains["work"].tags
    assert outcome["vault"].ok and no_scratch_left(world, tmp_path)
