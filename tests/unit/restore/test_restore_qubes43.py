"""Restore planning of what Qubes 4.3 adds: features qubesd reserves,
`preload-dispvm-max`, volumes with snapshots disabled (pure)."""

from __future__ import annotations

from dataclasses import replace

from tests.fakes.qubes_restore import PROHIBITED_FEATURES
from tests.unit.restore.restore_builders import T, chain, kinds, live_from, ops, plan, problems, qube, session
from wyngq.model import Volume
from wyngq.qubes.reserved import PRELOAD_MAX, RESERVED_FEATURES
from wyngq.restore.model import ConflictPolicy, StepKind

RESERVED = {"preload-dispvm": "disp9 disp10", "preload-dispvm-completed": "1", "preload-dispvm-in-progress": "",
            "deferred-netvm-original": "sys-fw"}


def test_the_reserved_list_is_qubesds_own() -> None:
    # the fake spells out qubesd's PROHIBITED_FEATURES (qubes/ext/admin.py); both must move together
    assert RESERVED_FEATURES == PROHIBITED_FEATURES


def _dvm(**features: str) -> list:  # type: ignore[type-arg]
    return [qube("fedora", T, features={"qrexec": "1"}),
            qube("dvm", template="fedora", template_for_dispvms=True, features=features)]


def test_reserved_features_of_the_backup_are_never_set() -> None:
    result = plan(session(_dvm(**RESERVED, **{PRELOAD_MAX: "2", "appmenus-dispvm": "1"})), qubes=("dvm",))
    features = ops(result, StepKind.FEATURES, "dvm")
    assert set(features) == {"appmenus-dispvm"}
    assert ops(result, StepKind.PRELOAD, "dvm") == {PRELOAD_MAX: ("set", None, "2")}


def test_reserved_features_qubesd_set_here_are_never_removed() -> None:
    backed_up = _dvm(**{PRELOAD_MAX: "1"})
    live = live_from([*_dvm(**RESERVED, **{PRELOAD_MAX: "1"})][::-1])
    result = plan(session(backed_up), live, qubes=("dvm",), on_conflict=ConflictPolicy.REPLACE)
    assert not any(k in RESERVED for k in ops(result, StepKind.FEATURES, "dvm"))
    assert ops(result, StepKind.PRELOAD, "dvm") == {}  # already equal


def test_preload_max_is_removed_when_the_backup_has_none() -> None:
    live = live_from(_dvm(**{PRELOAD_MAX: "3"}))
    result = plan(session(_dvm()), live, qubes=("dvm",), on_conflict=ConflictPolicy.REPLACE)
    assert ops(result, StepKind.PRELOAD, "dvm") == {PRELOAD_MAX: ("remove", "3", None)}


def test_preload_max_comes_after_every_qubes_features_and_before_the_guard_goes() -> None:
    qubes = [qube("fedora", T, features={"qrexec": "1", "supported-rpc.qubes.WaitForSession": "1"}),
             qube("dvm", template="fedora", template_for_dispvms=True, features={PRELOAD_MAX: "1"}),
             qube("work", netvm=None, features={"service.crond": "1"})]
    steps = kinds(plan(session(qubes)))
    preload = steps.index("preload")
    assert preload > max(i for i, k in enumerate(steps) if k == "features")
    assert preload < min(i for i, k in enumerate(steps) if k == "finish")


def test_a_volume_with_snapshots_disabled_is_not_replaced_without_the_explicit_option() -> None:
    qubes = chain()
    live = live_from(qubes)
    work = tuple(replace(v, revisions_to_keep=-1) for v in live.volumes["work"])
    live = replace(live, volumes={**live.volumes, "work": work})
    refused = plan(session(qubes), live, qubes=("work",), on_conflict=ConflictPolicy.REPLACE)
    assert problems(refused, "work") == {"no_revisions": True}
    problem = next(p for q in refused.qubes for p in q.problems if q.source == "work")
    assert "snapshots disabled" in problem.message and "--no-keep-previous" in problem.resolution

    allowed = plan(session(qubes), live, qubes=("work",), on_conflict=ConflictPolicy.REPLACE, keep_previous=False)
    assert problems(allowed, "work") == {"no_revisions": False} and not allowed.blocking
    problem = next(p for q in allowed.qubes for p in q.problems if q.source == "work")
    assert "current data is lost" in problem.resolution


def test_a_volume_keeping_revisions_is_replaced_without_a_problem() -> None:
    qubes = chain()
    live = live_from(qubes)
    assert all(isinstance(v, Volume) and v.revisions_to_keep == 1 for v in live.volumes["work"])
    replaced = plan(session(qubes), live, qubes=("work",), on_conflict=ConflictPolicy.REPLACE)
    assert "no_revisions" not in problems(replaced, "work")
