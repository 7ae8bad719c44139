"""wyngq.backup, the pure parts: selection, planning and finding the new session."""

from __future__ import annotations

import json
from collections.abc import Iterable

import pytest

from tests.conftest import FIXTURES
from wyngq.backup import (
    BackupPlan,
    BackupRequest,
    BackupResult,
    PlannedVolume,
    QubeOutcome,
    new_session,
    plan_backup,
    select_qubes,
    session_id_now,
)
from wyngq.errors import ConfigError, ExitCode, UsageError
from wyngq.model import Pool, PoolDriver, Qube, QubeClass, Volume
from wyngq.names import is_session_id
from wyngq.wyng.catalog import Archive, parse_list_output

APP, TEMPLATE, STANDALONE, DISP = QubeClass.APP, QubeClass.TEMPLATE, QubeClass.STANDALONE, QubeClass.DISP


def _archive(name: str) -> Archive:
    return parse_list_output((FIXTURES / "json" / f"{name}.json").read_text(encoding="utf-8"))


# -- select_qubes ---------------------------------------------------------------------------
LISTED = {
    "work": (APP, True),
    "personal": (APP, False),
    "vault": (APP, False),
    "fedora-42": (TEMPLATE, False),
    "sys-net": (APP, True),
    "disp1234": (DISP, True),
}
FLAGGED = {"work", "vault", "fedora-42"}
TAGS = {"work": {"backup"}, "personal": {"backup", "no-backup"}, "sys-net": {"infra"}}


def _select(request: BackupRequest) -> tuple[str, ...]:
    return select_qubes(request, LISTED, lambda n: n in FLAGGED, lambda n: TAGS.get(n, set()))


def _never(_name: str) -> bool:
    raise AssertionError("asked although the request does not need it")


def _never_tags(_name: str) -> Iterable[str]:
    raise AssertionError("asked although the request does not need it")


def test_named_qubes_sorted() -> None:
    assert _select(BackupRequest(qubes=("work", "fedora-42", "personal"))) == ("fedora-42", "personal", "work")


def test_named_qubes_ask_nothing_else_of_qubes() -> None:
    assert select_qubes(BackupRequest(qubes=("work",)), LISTED, _never, _never_tags) == ("work",)


def test_a_name_given_twice_is_backed_up_once() -> None:
    assert _select(BackupRequest(qubes=("work", "work"))) == ("work",)


def test_dom0_is_refused() -> None:
    with pytest.raises(UsageError) as caught:
        _select(BackupRequest(qubes=("work", "dom0")))
    assert "dom0" in caught.value.message


def test_unknown_names_are_listed() -> None:
    with pytest.raises(UsageError) as caught:
        _select(BackupRequest(qubes=("work", "wrok", "persnal")))
    assert "persnal, wrok" in caught.value.message
    assert caught.value.hint


def test_include_flagged() -> None:
    assert _select(BackupRequest(include_flagged=True)) == ("fedora-42", "vault", "work")


def test_include_flagged_plus_names() -> None:
    assert _select(BackupRequest(qubes=("personal",), include_flagged=True)) == (
        "fedora-42",
        "personal",
        "vault",
        "work",
    )


def test_include_tags() -> None:
    assert _select(BackupRequest(include_tags=("backup",))) == ("personal", "work")
    assert _select(BackupRequest(include_tags=("backup", "infra"))) == ("personal", "sys-net", "work")


def test_exclude_names_win_over_includes() -> None:
    assert _select(BackupRequest(include_flagged=True, exclude=("vault",))) == ("fedora-42", "work")
    assert _select(BackupRequest(qubes=("work", "personal"), exclude=("work",))) == ("personal",)


def test_exclude_tags() -> None:
    assert _select(BackupRequest(include_tags=("backup",), exclude_tags=("no-backup",))) == ("work",)


def test_excluding_a_name_that_is_not_a_qube_is_harmless() -> None:
    assert _select(BackupRequest(qubes=("work",), exclude=("old-qube",))) == ("work",)


@pytest.mark.parametrize(
    "request_",
    [
        BackupRequest(),
        BackupRequest(qubes=("work",), exclude=("work",)),
        BackupRequest(include_tags=("nobody-has-this",)),
        BackupRequest(include_tags=("backup",), exclude_tags=("backup",)),
    ],
)
def test_nothing_selected_is_a_usage_error(request_: BackupRequest) -> None:
    with pytest.raises(UsageError) as caught:
        _select(request_)
    assert "-i" in (caught.value.hint or "")


# -- plan_backup ----------------------------------------------------------------------------
REFLINK_POOL = Pool("varlibqubes", PoolDriver.FILE_REFLINK, "/var/lib/qubes")
LVM_POOL = Pool("vm-pool", PoolDriver.LVM_THIN, "qubes_dom0/vm-pool")
POOLS = {
    "varlibqubes": REFLINK_POOL,
    "vm-pool": LVM_POOL,
    "linux-kernel": Pool("linux-kernel", "linux-kernel", None),
    "old-file": Pool("old-file", "file", None),
}


def _reflink_qube(name: str, klass: QubeClass, running: bool = False, pool: str = "varlibqubes") -> Qube:
    top = "vm-templates" if klass is TEMPLATE else "appvms"
    volumes = [Volume("private", pool, f"{top}/{name}/private", 2 << 30)]
    if klass in (TEMPLATE, STANDALONE):
        volumes.append(Volume("root", pool, f"{top}/{name}/root", 20 << 30))
    else:  # AppVMs and DispVMs have a root snapshot and a kernel that are not theirs to keep
        volumes.append(Volume("root", pool, f"{top}/{name}/root", 20 << 30, save_on_stop=False))
        volumes.append(Volume("kernel", "linux-kernel", "6.12.1", 0, save_on_stop=False))
    volumes.append(Volume("volatile", pool, f"{top}/{name}/volatile", 12 << 30, save_on_stop=False))
    return Qube(name, klass, running=running, volumes=tuple(volumes))


def _lvm_qube(name: str, klass: QubeClass) -> Qube:
    kinds = ("private", "root") if klass in (TEMPLATE, STANDALONE) else ("private",)
    return Qube(name, klass, volumes=tuple(Volume(k, "vm-pool", f"qubes_dom0/vm-{name}-{k}", 1 << 30) for k in kinds))


def test_appvm_sends_private_only() -> None:
    plan = plan_backup([_reflink_qube("work", APP)], POOLS)
    assert plan.volumes == (
        PlannedVolume("work", "private", "/var/lib/qubes", "appvms/work/private.img", "appvms/work/private.img"),
    )
    assert plan.qubes == ("work",)
    assert plan.settings_only == ()


def test_template_sends_private_and_root() -> None:
    plan = plan_backup([_reflink_qube("fedora-42", TEMPLATE)], POOLS)
    assert [v.local_name for v in plan.volumes] == [
        "vm-templates/fedora-42/private.img",
        "vm-templates/fedora-42/root.img",
    ]


def test_standalone_on_lvm_sends_private_and_root() -> None:
    plan = plan_backup([_lvm_qube("legacy", STANDALONE)], POOLS)
    assert plan.volumes == (
        PlannedVolume("legacy", "private", "qubes_dom0/vm-pool", "vm-legacy-private", "vm-legacy-private"),
        PlannedVolume("legacy", "root", "qubes_dom0/vm-pool", "vm-legacy-root", "vm-legacy-root"),
    )


def test_dispvm_is_settings_only() -> None:
    plan = plan_backup([_reflink_qube("disp1234", DISP, running=True), _reflink_qube("work", APP)], POOLS)
    assert plan.settings_only == ("disp1234",)
    assert plan.qubes == ("disp1234", "work")
    assert {v.qube for v in plan.volumes} == {"work"}


def test_running_qubes_are_noted() -> None:
    plan = plan_backup([_reflink_qube("work", APP, running=True), _reflink_qube("vault", APP)], POOLS)
    assert plan.running == ("work",)


def test_a_qube_without_the_volume_is_skipped_not_failed() -> None:
    plan = plan_backup([Qube("odd", APP, volumes=())], POOLS)
    assert plan.volumes == ()
    assert plan.qubes == ("odd",)


def test_unsupported_pool_is_a_config_error_naming_every_volume() -> None:
    qubes = [_reflink_qube("work", APP), _reflink_qube("old", STANDALONE, pool="old-file")]
    with pytest.raises(ConfigError) as caught:
        plan_backup(qubes, POOLS)
    assert "old:private (pool old-file)" in caught.value.message
    assert "old:root (pool old-file)" in caught.value.message
    assert "work" not in caught.value.message
    assert "--exclude" in (caught.value.hint or "")


def test_unknown_pool_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        plan_backup([_reflink_qube("work", APP, pool="gone")], POOLS)


def test_reflink_qube_whose_archive_has_only_the_lvm_name() -> None:
    archive = parse_list_output(json.dumps(_archive_doc(["vm-work-private", "wyng-qubes-metadata"])))
    plan = plan_backup([_reflink_qube("work", APP)], POOLS, set(archive.volumes))
    (volume,) = plan.volumes
    assert volume.local_name == "appvms/work/private.img"
    assert volume.archive_name == "vm-work-private"
    assert plan.local_from() == {"/var/lib/qubes": [["vm-work-private", "appvms/work/private.img"]]}


def test_lvm_template_whose_archive_has_only_the_reflink_names() -> None:
    archive = _archive("list_01_after_full")  # reflink: vm-templates/fedora/{root,private}.img
    plan = plan_backup([_lvm_qube("fedora", TEMPLATE)], POOLS, set(archive.volumes))
    assert plan.local_from() == {
        "qubes_dom0/vm-pool": [
            ["vm-templates/fedora/private.img", "vm-fedora-private"],
            ["vm-templates/fedora/root.img", "vm-fedora-root"],
        ]
    }


def test_lvm_appvm_whose_archive_has_only_the_reflink_name() -> None:
    plan = plan_backup([_lvm_qube("work", APP)], POOLS, set(_archive("list_01_after_full").volumes))
    assert plan.local_from() == {"qubes_dom0/vm-pool": [["appvms/work/private.img", "vm-work-private"]]}


def test_no_alias_across_template_and_appvm_directories() -> None:
    # The archive's "fedora" is a template; an LVM AppVM called fedora is another volume.
    plan = plan_backup([_lvm_qube("fedora", APP)], POOLS, set(_archive("list_01_after_full").volumes))
    assert plan.local_from() == {"qubes_dom0/vm-pool": [["vm-fedora-private", None]]}


def test_no_alias_when_the_archive_has_the_local_name_too() -> None:
    archive = parse_list_output(json.dumps(_archive_doc(["vm-work-private", "appvms/work/private.img"])))
    plan = plan_backup([_reflink_qube("work", APP)], POOLS, set(archive.volumes))
    assert plan.local_from() == {"/var/lib/qubes": [["appvms/work/private.img", None]]}


def test_no_alias_without_an_archive_listing() -> None:
    plan = plan_backup([_lvm_qube("work", APP)], POOLS)
    assert plan.local_from() == {"qubes_dom0/vm-pool": [["vm-work-private", None]]}


def test_local_from_matches_the_file_real_wyng_took() -> None:
    """fixtures/wyng/json/local-from_send.json is what Wyng read in the recorded full send."""
    pools = {
        "qubes": Pool("qubes", PoolDriver.FILE_REFLINK, "/var/lib/qubes-pool/qubes"),
        "pool2": Pool("pool2", PoolDriver.FILE_REFLINK, "/var/lib/qubes-pool/pool2"),
    }
    qubes = [
        _reflink_qube("work", APP, pool="qubes"),
        _reflink_qube("personal", APP, pool="qubes"),
        _reflink_qube("fedora", TEMPLATE, pool="qubes"),
        _reflink_qube("extra", APP, pool="pool2"),
    ]
    plan = plan_backup(qubes, {**POOLS, **pools})
    ours = json.loads(json.dumps(plan.local_from()))  # what json.dump writes for Wyng
    recorded = json.loads((FIXTURES / "json" / "local-from_send.json").read_text())
    assert {pool: sorted(pairs) for pool, pairs in ours.items()} == {
        pool: sorted(pairs) for pool, pairs in recorded.items()
    }


def test_local_from_groups_by_pool_in_one_document() -> None:
    qubes = [_reflink_qube("work", APP), _lvm_qube("legacy", STANDALONE), _reflink_qube("fedora-42", TEMPLATE)]
    doc = plan_backup(qubes, POOLS).local_from()
    assert list(doc) == ["/var/lib/qubes", "qubes_dom0/vm-pool"]
    assert doc["/var/lib/qubes"] == [
        ["appvms/work/private.img", None],
        ["vm-templates/fedora-42/private.img", None],
        ["vm-templates/fedora-42/root.img", None],
    ]
    assert doc["qubes_dom0/vm-pool"] == [["vm-legacy-private", None], ["vm-legacy-root", None]]


def test_volume_owner_by_either_name() -> None:
    plan = plan_backup([_lvm_qube("work", APP)], POOLS, set(_archive("list_01_after_full").volumes))
    assert plan.volume_owner("vm-work-private") == "work"
    assert plan.volume_owner("appvms/work/private.img") == "work"
    assert plan.volume_owner("wyng-qubes-metadata") is None


def _archive_doc(volumes: list[str]) -> dict[str, object]:
    doc: dict[str, object] = json.loads((FIXTURES / "json" / "list_01_after_full.json").read_text())
    session = {"volsize": 1, "sequence": 0, "ts": 1, "chg": True, "tags": {"qubes": ""}}
    doc["volumes"] = {
        name: {"vid": f"Vol_{n}", "desc": "", "last": "S_20261126-151007", "ts": 1,
               "sessions": {"S_20261126-151007": session}}
        for n, name in enumerate(volumes)
    }
    return doc


# -- new_session ----------------------------------------------------------------------------
def test_new_session_after_an_incremental_send() -> None:
    assert new_session(_archive("list_03_after_nochange_unchanged").sessions(), _archive("list_04_after_incr1")) == (
        "20261126-151117"
    )


def test_new_session_when_unchanged_volumes_are_left_out() -> None:
    before, after = _archive("list_05_after_incr2"), _archive("list_06_after_incr3")
    session = new_session(before.sessions(), after)
    assert session is not None
    assert session not in before.sessions()
    assert "wyng-qubes-metadata" in after.session_volumes(session)


def test_no_new_session_when_nothing_was_recorded() -> None:
    # 030: a send where nothing changed, without --send-unchanged: Wyng exits 0, records nothing.
    assert new_session(_archive("list_01_after_full").sessions(), _archive("list_02_after_nochange")) is None


def test_no_new_session_without_the_settings_bundle() -> None:
    # 040/041: sends of one volume with --local, no bundle: not a Qubes backup session.
    assert new_session(_archive("list_07_after_tty_quiet").sessions(), _archive("list_08_after_big")) is None


def test_new_session_into_an_empty_archive() -> None:
    assert new_session((), _archive("list_01_after_full")) == "20261126-151007"


# -- small pieces ---------------------------------------------------------------------------
def test_session_id_now_is_a_session_id() -> None:
    assert is_session_id(session_id_now())
    assert is_session_id(session_id_now(1795705810.0))


@pytest.mark.parametrize(
    ("oks", "check", "expected"),
    [
        ((True, True), None, ExitCode.OK),
        ((True, False), None, ExitCode.PARTIAL),
        ((False, False), None, ExitCode.WYNG),
        ((True, True), "ok", ExitCode.OK),
        ((True, True), "failed", ExitCode.WYNG),
    ],
)
def test_backup_result_exit_code(oks: tuple[bool, ...], check: str | None, expected: ExitCode) -> None:
    outcomes = tuple(QubeOutcome(f"q{n}", ok) for n, ok in enumerate(oks))
    assert BackupResult(session="20261126-151007", dry_run=False, qubes=outcomes, check=check).exit_code is expected


def test_empty_plan_has_an_empty_local_from() -> None:
    assert BackupPlan(qubes=(), volumes=()).local_from() == {}


def test_a_session_older_than_the_send_is_never_taken_for_it() -> None:
    after = _archive("list_04_after_incr1")
    before = _archive("list_03_after_nochange_unchanged").sessions()
    assert new_session(before, after) is not None
    assert new_session(before, after, not_before="99991231-000000") is None
