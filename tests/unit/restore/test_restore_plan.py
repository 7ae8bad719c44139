"""wyngq.restore.plan: the whole plan for realistic sessions and systems."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.unit.restore.restore_builders import (
    EMPTY,
    POOL_DIR,
    A,
    D,
    T,
    chain,
    kinds,
    live_from,
    ops,
    plan,
    problems,
    props,
    qube,
    session,
    step,
)
from wyngq.model import DeviceAssignment, PropertyValue
from wyngq.restore.model import Action, ConflictPolicy, StepKind
from wyngq.restore.plan import SCRATCH_PREFIX, scratch_name

CHAIN = ("fedora", "dvm", "sys-net", "sys-fw", "work", "disp1")


def test_everything_missing_is_created_in_dependency_order() -> None:
    result = plan(session(chain()), include_disposable=True)

    assert [q.target for q in result.qubes] == list(CHAIN)
    assert all(q.action is Action.CREATE for q in result.qubes)
    assert not result.blocking
    creates = [s.qube for s in result.steps if s.kind is StepKind.CREATE]
    assert creates == list(CHAIN)
    order = kinds(result)
    # the disposable is created after the disposable template can host it
    assert order.index("capabilities") < len(order) - order[::-1].index("create") - 1
    assert order.count("receive") == 1
    assert order[-6:] == ["finish"] * 6


def test_step_kinds_follow_the_contract_order() -> None:
    result = plan(session(chain()), include_disposable=True)
    sequence = kinds(result)
    first = {k: sequence.index(k) for k in set(sequence)}
    last = {k: len(sequence) - 1 - sequence[::-1].index(k) for k in set(sequence)}
    assert last["capabilities"] < first["receive"] < first["properties"]
    assert last["properties"] < first["references"]
    assert last["references"] < first["features"]
    assert first["finish"] > last["devices"]


def test_created_qubes_get_their_template_and_label_at_creation_and_no_template_write() -> None:
    result = plan(session(chain()), include_disposable=True)
    work = result.qube("work")
    assert (work.template, work.label) == ("fedora", "blue")
    assert result.qube("disp1").template == "dvm"
    assert "template" not in ops(result, StepKind.REFERENCES, "work")


def test_capabilities_before_references_and_references_resolved() -> None:
    result = plan(session(chain()), include_disposable=True)
    assert ops(result, StepKind.CAPABILITIES, "sys-net") == {"provides_network": ("set", None, "True")}
    assert ops(result, StepKind.CAPABILITIES, "dvm") == {"template_for_dispvms": ("set", None, "True")}
    assert ops(result, StepKind.REFERENCES, "work") == {
        "netvm": ("set", None, "sys-fw"), "default_dispvm": ("set", None, "dvm")}
    assert ops(result, StepKind.REFERENCES, "sys-net") == {"netvm": ("set", None, "")}
    refs = [s.qube for s in result.steps if s.kind is StepKind.REFERENCES]
    assert refs.index("sys-net") < refs.index("sys-fw") < refs.index("work")


def test_settings_of_a_new_qube() -> None:
    result = plan(session(chain()))
    assert ops(result, StepKind.PROPERTIES, "work") == {"memory": ("set", None, "800")}
    assert ops(result, StepKind.FEATURES, "work") == {"service.crond": ("set", None, "1")}
    assert ops(result, StepKind.TAGS, "work") == {"project-x": ("add", None, "project-x")}
    assert ops(result, StepKind.FIREWALL, "work")["rules"][2] == "action=accept dsthost=example.org\naction=drop"
    assert ops(result, StepKind.NOTES, "work") == {"notes": ("set", "", "notes")}
    device = step(result, StepKind.DEVICES, "work").ops[0]
    assert device.verb == "assign" and device.device is not None and device.device.mode == "auto-attach"
    assert device.device.device_id == "0781:5581"


def test_disposables_only_when_asked_or_named() -> None:
    assert "disp1" not in [q.source for q in plan(session(chain())).qubes]
    assert [q.source for q in plan(session(chain()), qubes=("disp1", "dvm", "fedora")).qubes] == [
        "fedora", "dvm", "disp1"]


# -- conflicts ----------------------------------------------------------------------------
def test_conflict_fail_refuses_everything_and_says_what_to_do() -> None:
    live = live_from(chain())
    result = plan(session(chain()), live, qubes=("work",))
    assert problems(result, "work") == {"exists": True}
    assert result.blocking
    resolution = result.qubes[0].problems[0].resolution
    assert "--on-conflict=replace" in resolution and "--on-conflict=rename" in resolution


def test_conflict_skip() -> None:
    live = live_from(chain()[:4])
    result = plan(session(chain()), live, on_conflict=ConflictPolicy.SKIP)
    actions = {q.source: q.action for q in result.qubes}
    assert actions == {"fedora": Action.SKIP, "dvm": Action.SKIP, "sys-net": Action.SKIP, "sys-fw": Action.SKIP,
                       "work": Action.CREATE}
    assert not result.blocking
    assert {s.qube for s in result.steps} - {None} == {"work"}


def test_conflict_replace_identical_qube_changes_no_setting() -> None:
    live = live_from(chain())
    result = plan(session(chain()), live, qubes=("work",), on_conflict=ConflictPolicy.REPLACE)
    assert result.qubes[0].action is Action.REPLACE
    assert kinds(result, "work") == ["guard", "import", "finish"]


def test_conflict_replace_changes_what_differs_and_resets_what_was_default() -> None:
    backup = chain()
    changed = replace(backup[4], label="red", properties={**backup[4].properties, **props(vcpus=4, memory=400)},
                      features={"service.crond": "0", "extra": "1"}, tags=("project-x", "new", "created-by-dom0"),
                      firewall=("action=drop",), notes="other", devices=(), template="fedora2")
    live = live_from([*backup[:4], changed, qube("fedora2", T)])
    result = plan(session(backup), live, qubes=("work",), on_conflict=ConflictPolicy.REPLACE)
    assert ops(result, StepKind.PROPERTIES, "work") == {
        "label": ("set", "red", "blue"), "memory": ("set", "400", "800"), "vcpus": ("reset", "4", None)}
    assert ops(result, StepKind.REFERENCES, "work") == {"template": ("set", "fedora2", "fedora")}
    assert ops(result, StepKind.FEATURES, "work") == {
        "service.crond": ("set", "0", "1"), "extra": ("remove", "1", None)}
    assert ops(result, StepKind.TAGS, "work") == {"new": ("remove", "new", None)}  # created-by-* is qubesd's
    assert "rules" in ops(result, StepKind.FIREWALL, "work")
    assert ops(result, StepKind.NOTES, "work") == {"notes": ("set", "other", "notes")}
    assert [o.verb for o in step(result, StepKind.DEVICES, "work").ops] == ["assign"]


def test_replace_keeps_identity_properties_and_pref_excluded_ones() -> None:
    backup = chain()
    live_work = replace(backup[4], properties={**backup[4].properties, **props(qid=7, uuid="x", name="work",
                                                                              kernel="6.12.1", debug=True)})
    live = live_from([*backup[:4], live_work])
    result = plan(session(backup), live, qubes=("work",), on_conflict=ConflictPolicy.REPLACE,
                  skip_properties=frozenset({"debug"}))
    assert ops(result, StepKind.PROPERTIES, "work") == {"kernel": ("reset", "6.12.1", None)}


def test_backup_identity_properties_are_never_written() -> None:
    backup = [*chain()[:4], replace(chain()[4], properties={**chain()[4].properties, **props(
        qid=3, uuid="u", name="work", backup_timestamp=5, xid=9)})]
    result = plan(session(backup), qubes=("work", *CHAIN[:4]))
    written = {o.key for s in result.steps if s.qube == "work" for o in s.ops}
    assert not written & {"qid", "uuid", "name", "backup_timestamp", "xid"}


def test_class_mismatch_is_refused() -> None:
    live = live_from([qube("fedora", T), qube("work", T)])
    result = plan(session(chain()), live, qubes=("work",), on_conflict=ConflictPolicy.REPLACE)
    assert problems(result, "work") == {"class_mismatch": True}


def test_rename_policy_restores_beside_and_keeps_references_to_the_originals() -> None:
    live = live_from(chain())
    result = plan(session(chain()), live, qubes=("sys-fw", "work"), on_conflict=ConflictPolicy.RENAME)
    targets = {q.source: (q.action, q.target) for q in result.qubes}
    assert targets == {"sys-fw": (Action.RENAME, "sys-fw-restored"), "work": (Action.RENAME, "work-restored")}
    # work's netvm stays the original sys-fw, never the renamed copy (qvm-backup-restore's bug)
    assert ops(result, StepKind.REFERENCES, "work-restored")["netvm"] == ("set", None, "sys-fw")
    assert problems(result, "work") == {"exists": False, "reaches_beyond": False}
    assert not result.blocking


def test_rename_follows_a_renamed_qube_only_when_this_restore_creates_it() -> None:
    live = live_from(chain()[:3])  # fedora, dvm, sys-net exist; sys-fw does not
    result = plan(session(chain()), live, qubes=("sys-fw", "work"), renames=(("sys-fw", "fw2"),))
    assert {q.source: q.target for q in result.qubes} == {"sys-fw": "fw2", "work": "work"}
    assert ops(result, StepKind.REFERENCES, "work")["netvm"] == ("set", None, "fw2")
    assert result.qube("work").depends_on == ("dvm", "fedora", "fw2", "sys-net")


def test_explicit_rename_onto_an_existing_qube_is_a_conflict() -> None:
    live = live_from(chain())
    result = plan(session(chain()), live, qubes=("work",), renames=(("work", "sys-net"),),
                  on_conflict=ConflictPolicy.RENAME)
    assert problems(result, "work") == {"exists": True}


def test_two_qubes_to_one_name_are_refused() -> None:
    result = plan(session(chain()), qubes=CHAIN[:5], renames=(("sys-fw", "work"),))
    assert problems(result, "work") == {"duplicate_target": True} or problems(result, "sys-fw") == {
        "duplicate_target": True}


# -- missing things ------------------------------------------------------------------------
def test_missing_template_is_refused() -> None:
    result = plan(session(chain()), qubes=("work",))
    assert problems(result, "work")["missing_template"] is True


def test_missing_netvm_becomes_none_not_another_netvm() -> None:
    live = live_from(chain()[:2])
    result = plan(session(chain()), live, qubes=("work",))
    assert problems(result, "work") == {"missing_netvm": False, "missing_device_backend": False,
                                        "reaches_beyond": False}
    assert ops(result, StepKind.REFERENCES, "work")["netvm"] == ("set", None, "")
    assert "sys-net" not in result.qube("work").depends_on


def test_netvm_that_no_longer_provides_network() -> None:
    here = [*chain()[:2], qube("sys-net"), qube("sys-fw", netvm="sys-net")]
    result = plan(session(chain()), live_from(here), qubes=("work",))
    assert problems(result, "work")["missing_netvm"] is False
    assert ops(result, StepKind.REFERENCES, "work")["netvm"][2] == ""


def test_default_dispvm_that_is_no_disposable_template_is_left_at_default() -> None:
    here = [chain()[0], qube("dvm"), *chain()[2:4]]
    result = plan(session(chain()), live_from(here), qubes=("work",))
    assert problems(result, "work") == {"missing_default_dispvm": False, "reaches_beyond": False}
    assert "default_dispvm" not in ops(result, StepKind.REFERENCES, "work")


def test_dispvm_needs_a_disposable_template() -> None:
    here = [chain()[0], qube("dvm")]
    result = plan(session(chain()), live_from(here), qubes=("disp1",))
    assert problems(result, "disp1") == {"bad_template": True}


def test_appvm_template_must_be_a_template() -> None:
    here = [qube("fedora", A, template="x"), *chain()[1:4]]
    result = plan(session(chain()), live_from(here), qubes=("work",))
    assert problems(result, "work")["bad_template"] is True


def test_missing_kernel_label_audiovm_and_device_backend() -> None:
    odd = qube("odd", label="magenta", kernel="5.0", audiovm="sys-audio", guivm="dom0",
               devices=(DeviceAssignment("pci", "dom0", "00_1f.3", None, "required"),
                        DeviceAssignment("usb", "sys-usb", "2-1", None, "auto-attach")))
    result = plan(session([chain()[0], odd]), live_from([chain()[0]]), qubes=("odd",))
    assert problems(result, "odd") == {"missing_label": False, "missing_kernel": False, "missing_audiovm": False,
                                       "missing_device_backend": False, "reaches_beyond": False}
    assert result.qube("odd").label == "red"
    assert ops(result, StepKind.REFERENCES, "odd") == {"guivm": ("set", None, "dom0")}
    assert [o.key for o in step(result, StepKind.DEVICES, "odd").ops] == ["pci:dom0:00_1f.3"]


# -- running qubes -------------------------------------------------------------------------
def test_running_target_is_refused_with_advice() -> None:
    live = live_from(chain(), running=("work",))
    result = plan(session(chain()), live, qubes=("work",), on_conflict=ConflictPolicy.REPLACE)
    assert problems(result, "work") == {"running": True}
    assert "--shutdown" in result.qubes[0].problems[0].resolution


def test_shutdown_stops_running_dependants_deepest_first() -> None:
    here = [*chain(), qube("app2", netvm="sys-fw"), qube("disp9", D, template="dvm"),
            qube("idle", netvm="sys-fw")]
    live = live_from(here, running=("sys-net", "sys-fw", "work", "app2", "disp9"))
    result = plan(session(chain()), live, qubes=("sys-net", "dvm"), on_conflict=ConflictPolicy.REPLACE,
                  shutdown=True)
    assert not result.blocking
    assert result.qube("sys-net").shutdown == ("app2", "work", "sys-fw", "sys-net")
    assert result.qube("dvm").shutdown == ("disp9",)
    assert problems(result, "sys-net") == {"running": False, "running_dependants": False}
    sequence = kinds(result)
    assert sequence.index("shutdown") > max(i for i, k in enumerate(sequence) if k == "guard")


def test_running_dependants_without_shutdown_are_refused() -> None:
    live = live_from(chain(), running=("sys-net", "sys-fw"))
    result = plan(session(chain()), live, qubes=("sys-net",), on_conflict=ConflictPolicy.REPLACE)
    assert problems(result, "sys-net") == {"running": True, "running_dependants": True}


def test_force_says_it_may_kill() -> None:
    live = live_from(chain(), running=("work",))
    result = plan(session(chain()), live, qubes=("work",), on_conflict=ConflictPolicy.REPLACE, force=True)
    assert "killed" in result.qubes[0].problems[0].resolution
    assert result.force


def test_a_dependant_shut_down_twice_is_stopped_once() -> None:
    live = live_from(chain(), running=("sys-net", "sys-fw", "work"))
    result = plan(session(chain()), live, qubes=("sys-net", "sys-fw"), on_conflict=ConflictPolicy.REPLACE,
                  shutdown=True)
    stopped = [o.key for s in result.steps if s.kind is StepKind.SHUTDOWN for o in s.ops]
    assert stopped == ["work", "sys-fw", "sys-net"]
    assert [(s.qube, [o.key for o in s.ops]) for s in result.steps if s.kind is StepKind.SHUTDOWN] == [
        ("sys-fw", ["work", "sys-fw"]), ("sys-net", ["sys-net"])]


def test_the_qube_holding_the_archive_is_never_stopped() -> None:
    live = live_from(chain(), running=("sys-net", "sys-fw"), archive_qube="sys-fw")
    result = plan(session(chain()), live, qubes=("sys-net",), on_conflict=ConflictPolicy.REPLACE, shutdown=True)
    assert problems(result, "sys-net")["archive_qube"] is True


# -- data volumes --------------------------------------------------------------------------
def test_every_volume_goes_through_a_scratch_qubes_volume_and_a_clone() -> None:
    live = live_from(chain()[:1])
    result = plan(session(chain()), live, qubes=("fedora", "work"), on_conflict=ConflictPolicy.REPLACE)
    (private,) = result.qube("work").volumes
    work_scratch, fedora_scratch = scratch_name("work"), scratch_name("fedora")
    assert (private.store, private.local_name, private.scratch, private.scratch_qube, private.replaces) == (
        POOL_DIR, f"appvms/{work_scratch}/private.img", f"{POOL_DIR}/appvms/{work_scratch}/private.img",
        work_scratch, False)
    fedora = {v.kind: v for v in result.qube("fedora").volumes}
    assert fedora["root"].scratch == f"{POOL_DIR}/appvms/{fedora_scratch}/root.img"
    assert fedora["root"].replaces and fedora["root"].size == 4096
    assert [o.key for o in step(result, StepKind.IMPORT, "fedora").ops] == ["private", "root"]
    assert [o.value for o in step(result, StepKind.IMPORT, "work").ops] == [work_scratch]
    sequence = kinds(result)
    assert sequence.index("receive") < sequence.index("import") < sequence.index("properties")


def test_wyngs_snapshot_of_a_reflink_volume_is_lent_to_the_scratch_volume() -> None:
    live = live_from(chain()[:1])
    data = session(chain())
    data = replace(data, archive_uuid="u1", vids={name: f"v-{name[-11:-4]}" for name in data.sizes})
    result = plan(data, live, qubes=("work",), on_conflict=ConflictPolicy.REPLACE)
    (private,) = result.qube("work").volumes
    vid = data.vids["appvms/work/private.img"]
    assert private.snapshot == f"{POOL_DIR}/appvms/work/snu1_{vid}.wyng1"
    assert private.scratch_snapshot == f"{POOL_DIR}/appvms/{scratch_name('work')}/snu1_{vid}.wyng1"
    lvm = replace(live, volumes={"fedora": tuple(replace(v, pool="lvm") for v in live.volumes["fedora"])})
    in_lvm = plan(data, lvm, qubes=("fedora",), on_conflict=ConflictPolicy.REPLACE)
    assert {(v.snapshot, v.scratch_snapshot) for v in in_lvm.qube("fedora").volumes} == {("", "")}
    unknown = plan(session(chain()), live, qubes=("work",), on_conflict=ConflictPolicy.REPLACE)
    assert unknown.qube("work").volumes[0].snapshot == ""
    refused = plan(data, live, qubes=("work",), on_conflict=ConflictPolicy.REPLACE, use_snapshot=False)
    assert refused.qube("work").volumes[0].snapshot == ""  # --no-snapshot-restore: nothing lent
    assert refused.qube("work").volumes[0].scratch_snapshot == private.scratch_snapshot  # what Wyng leaves goes


@pytest.mark.parametrize(("uuid", "vid"), [("u1", "../../../etc/x"), ("u1", "a/b"), ("../u", "v1"), ("u1", ""),
                                           ("", "v1"), ("u1", ".hidden"), ("u1", "v" * 65)])
def test_a_catalogue_value_that_is_not_a_plain_token_never_becomes_a_path(uuid: str, vid: str) -> None:
    live = live_from(chain()[:1])
    data = session(chain())
    data = replace(data, archive_uuid=uuid, vids={name: vid for name in data.sizes})
    result = plan(data, live, qubes=("work",), on_conflict=ConflictPolicy.REPLACE)
    assert (result.qube("work").volumes[0].snapshot, result.qube("work").volumes[0].scratch_snapshot) == ("", "")


def test_scratch_names_are_short_fixed_and_distinct() -> None:
    names = {scratch_name(q) for q in ("work", "work2", "a" * 31, "fedora-42-xfce")}
    assert len(names) == 4
    assert all(n.startswith(SCRATCH_PREFIX) and len(n) <= 31 for n in names)
    assert scratch_name("work") == scratch_name("work")


def test_volume_keeping_no_revisions_is_refused_unless_opted_out() -> None:
    live = live_from(chain()[:1], keep=0)
    refused = plan(session(chain()), live, qubes=("fedora",), on_conflict=ConflictPolicy.REPLACE)
    assert problems(refused, "fedora") == {"no_revisions": True}
    allowed = plan(session(chain()), live, qubes=("fedora",), on_conflict=ConflictPolicy.REPLACE,
                   keep_previous=False)
    assert not allowed.blocking


def test_lvm_scratch_is_the_scratch_qubes_thin_volume() -> None:
    live = live_from(chain()[:1])
    live = replace(live, volumes={"fedora": tuple(replace(v, pool="lvm") for v in live.volumes["fedora"])})
    result = plan(session(chain()), live, qubes=("fedora",), on_conflict=ConflictPolicy.REPLACE)
    root = {v.kind: v for v in result.qube("fedora").volumes}["root"]
    name = scratch_name("fedora")
    assert (root.store, root.local_name, root.scratch) == (
        "qubes_dom0/vm-pool", f"vm-{name}-root", f"/dev/qubes_dom0/vm-{name}-root")


def test_incomplete_session_is_refused() -> None:
    result = plan(session(chain(), without=[("fedora", "root")]), qubes=("fedora",))
    assert problems(result, "fedora") == {"incomplete": True}


def test_new_qube_pools_backup_pool_default_pool_and_pool_option() -> None:
    backup = [qube("fedora", T, pool="pool2"), qube("gone", T, pool="elsewhere")]
    result = plan(session(backup))
    assert result.qube("fedora").pools == (("private", "pool2"), ("root", "pool2"))
    assert {v.store for v in result.qube("fedora").volumes} == {"/pool2"}
    assert problems(result, "gone") == {"missing_pool": False}
    assert {v.pool for v in result.qube("gone").volumes} == {"varlibqubes"}
    chosen = plan(session(backup), pool="lvm")
    assert chosen.qube("gone").pool == "lvm"
    assert {v.local_name for v in chosen.qube("gone").volumes} == {
        f"vm-{scratch_name('gone')}-private", f"vm-{scratch_name('gone')}-root"}
    assert problems(plan(session(backup), pool="nope"), "fedora") == {"missing_pool": True}


def test_settings_only_restore_has_no_receive() -> None:
    result = plan(session(chain()), live_from(chain()[:2]), qubes=("disp1",))
    assert "receive" not in kinds(result)
    assert kinds(result, "disp1")[0] == "create"


# -- capabilities switched off after references -------------------------------------------
def test_capability_is_switched_off_after_clients_moved_away() -> None:
    backup = [*chain()[:4], qube("old-net", netvm=None), replace(chain()[4], devices=())]
    here = [*chain()[:4], qube("old-net", provides_network=True, netvm=None),
            replace(chain()[4], properties={**chain()[4].properties, **props(netvm="old-net")}, devices=())]
    result = plan(session(backup), live_from(here), qubes=("old-net", "work"), on_conflict=ConflictPolicy.REPLACE)
    assert ops(result, StepKind.CAPABILITIES_OFF, "old-net") == {"provides_network": ("reset", "True", None)}
    sequence = kinds(result)
    assert sequence.index("capabilities-off") > sequence.index("references")


def test_equal_values_are_never_written() -> None:
    result = plan(session(chain()), live_from(chain()), on_conflict=ConflictPolicy.REPLACE)
    writes = [s for s in result.steps if s.ops and s.kind not in (StepKind.IMPORT, StepKind.RECEIVE)]
    assert writes == []


@pytest.mark.parametrize("policy", list(ConflictPolicy))
def test_every_policy_on_an_empty_system_creates(policy: ConflictPolicy) -> None:
    result = plan(session(chain()), EMPTY, on_conflict=policy)
    assert {q.action for q in result.qubes} == {Action.CREATE}


def test_property_types_survive() -> None:
    odd = qube("odd", template="fedora", netvm=None)
    odd = replace(odd, properties={**odd.properties, "virt_mode": PropertyValue("str", "hvm")})
    result = plan(session([chain()[0], odd]), live_from([chain()[0]]), qubes=("odd",))
    assert ops(result, StepKind.PROPERTIES, "odd") == {"virt_mode": ("set", None, "hvm")}


def test_volume_config_revisions_and_volatile_size() -> None:
    from wyngq.model import VolumeSettings

    backup = replace(chain()[4], volumes=(VolumeSettings("private", "varlibqubes", 1000, 2),
                                         VolumeSettings("root", "varlibqubes", 9999, 1),
                                         VolumeSettings("volatile", "varlibqubes", 5000, 0)))
    live_work = replace(chain()[4], volumes=(VolumeSettings("private", "varlibqubes", 1000, 1),
                                            VolumeSettings("volatile", "varlibqubes", 10000, 0)))
    here = [*chain()[:4], live_work]
    result = plan(session([*chain()[:4], backup]), live_from(here), qubes=("work",),
                  on_conflict=ConflictPolicy.REPLACE)
    assert ops(result, StepKind.VOLUMES, "work") == {  # an AppVM's root follows its template: never set
        "private": ("revisions_to_keep", "1", "2"), "volatile": ("resize", "10000", "5000")}
    sequence = kinds(result, "work")
    assert sequence.index("import") < sequence.index("volumes")
    created = plan(session([*chain()[:4], backup]), live_from(chain()[:4]), qubes=("work",))
    assert ops(created, StepKind.VOLUMES, "work") == {
        "private": ("revisions_to_keep", None, "2"), "volatile": ("resize", None, "5000")}


def test_a_replaced_volume_never_keeps_fewer_revisions() -> None:
    from wyngq.model import VolumeSettings

    backup = replace(chain()[4], volumes=(VolumeSettings("private", "varlibqubes", 1000, 0),))
    live_work = replace(chain()[4], volumes=(VolumeSettings("private", "varlibqubes", 1000, 1),))
    result = plan(session([*chain()[:4], backup]), live_from([*chain()[:4], live_work]), qubes=("work",),
                  on_conflict=ConflictPolicy.REPLACE)
    assert problems(result, "work") == {"fewer_revisions": False}
    assert StepKind.VOLUMES not in {s.kind for s in result.steps}
    opted_out = plan(session([*chain()[:4], backup]), live_from([*chain()[:4], live_work]), qubes=("work",),
                     on_conflict=ConflictPolicy.REPLACE, keep_previous=False)
    assert ops(opted_out, StepKind.VOLUMES, "work") == {"private": ("revisions_to_keep", "1", "0")}


def test_notes_cannot_be_cleared_and_the_plan_says_so() -> None:
    backup = replace(chain()[4], notes="")
    result = plan(session([*chain()[:4], backup]), live_from(chain()), qubes=("work",),
                  on_conflict=ConflictPolicy.REPLACE)
    assert problems(result, "work") == {"notes_not_cleared": False}
    assert StepKind.NOTES not in {s.kind for s in result.steps}


def test_appvms_share_a_scratch_qube_two_to_one_in_the_same_pool_only() -> None:
    backup = [qube("fedora", T), qube("a", A, "fedora"), qube("b", A, "fedora"), qube("c", A, "fedora"),
              qube("d", A, "fedora", pool="pool2")]
    result = plan(session(backup))
    homes = {v.qube: (v.scratch_qube, v.slot) for q in result.qubes for v in q.volumes if v.kind == "private"}
    assert homes["a"] == (scratch_name("a\nb"), "private") and homes["b"] == (scratch_name("a\nb"), "root")
    private_b, shared = result.qube("b").volumes[0], scratch_name("a\nb")
    assert (private_b.kind, private_b.local_name) == ("private", f"appvms/{shared}/root.img")
    assert homes["c"] == (scratch_name("c"), "private")  # the odd one out
    assert homes["d"] == (scratch_name("d"), "private")  # in another pool: alone
    assert homes["fedora"] == (scratch_name("fedora"), "private")
