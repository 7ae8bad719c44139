"""wyngq.restore.data: the --local-from document, reading Wyng's receive output, and
the scratch qubes (against the fake Qubes)."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from tests.conftest import FIXTURES
from tests.fakes.qubes import FakeQubes
from wyngq.errors import QubesError
from wyngq.model import QubeClass
from wyngq.restore.data import (
    ReceiveTracker,
    clone_volume,
    discard_scratch,
    lend_snapshot,
    local_from,
    not_halted,
    prepare_scratch,
    return_snapshot,
)
from wyngq.restore.model import GUARD_TAG, VolumePair
from wyngq.restore.plan import SCRATCH_TAG, scratch_name


def pair(qube: str, kind: str, store: str, archive: str | None = None, pool: str = "p") -> VolumePair:
    scratch = scratch_name(qube)
    local = f"appvms/{scratch}/{kind}.img"
    return VolumePair(qube, kind, archive or f"appvms/{qube}/{kind}.img", 10, pool, store, local, f"{store}/{local}",
                      scratch)


def test_local_from_groups_by_store_and_aliases_every_scratch_copy() -> None:
    doc = local_from([pair("a", "private", "/p1/s"), pair("b", "private", "/p2/s"),
                      pair("c", "root", "/p1/s", archive="c.root.img")])
    a, b, c = (scratch_name(q) for q in "abc")
    assert doc == {"/p1/s": [["appvms/a/private.img", f"appvms/{a}/private.img"],
                             ["c.root.img", f"appvms/{c}/root.img"]],
                   "/p2/s": [["appvms/b/private.img", f"appvms/{b}/private.img"]]}


def test_tracker_reads_real_wyng_receive_output() -> None:
    tracker = ReceiveTracker()
    for line in (FIXTURES / "cmd" / "056_recv_pool_S2.stdout").read_text().splitlines():
        tracker(line)
    assert tracker.done == {"appvms/work/private.img", "appvms/personal/private.img", "vm-templates/fedora/root.img",
                            "vm-templates/fedora/private.img", "appvms/extra/private.img"}


def test_tracker_does_not_count_a_volume_that_failed() -> None:
    seen: list[str] = []
    tracker = ReceiveTracker(seen.append)
    for line in ["Receiving volume 'a' 20250101-000000", "[||||] 100% : OK",
                 "Receiving volume 'b' 20250101-000000", "[||", "ValueError: Bad hash"]:
        tracker(line)
    assert tracker.done == {"a"} and len(seen) == 5


def test_scratch_qubes_are_made_tagged_in_the_pool_and_removed(tmp_path: Path) -> None:
    pool_dir = tmp_path / "pool"
    pool_dir.mkdir()
    qubes = FakeQubes({"main": str(pool_dir)})
    pairs = [pair("a", "private", str(pool_dir), pool="main"), pair("a", "root", str(pool_dir), pool="main")]

    made: list[str] = []
    assert prepare_scratch(qubes, pairs, made) == {}
    assert made == [scratch_name("a")]

    scratch = qubes.qube(scratch_name("a"))
    assert scratch.klass is QubeClass.STANDALONE and {SCRATCH_TAG, GUARD_TAG} <= scratch.tags
    assert not scratch.include_in_backups  # a copy of a qube's data: never started, never backed up
    assert {v.kind: v.pool for v in scratch.volumes} == {"private": "main", "root": "main"}
    assert all(Path(p.scratch).exists() for p in pairs)
    assert discard_scratch(qubes, [scratch_name("a")]) == []
    assert scratch_name("a") not in qubes.domains
    assert not any(Path(p.scratch).exists() for p in pairs)
    assert discard_scratch(qubes, [scratch_name("a")]) == [scratch_name("a")]  # gone: reported, not raised


def test_two_qubes_share_a_scratch_qube_and_clone_from_their_slots(tmp_path: Path) -> None:
    one = two = tmp_path / "one"
    one.mkdir()
    qubes = FakeQubes({"one": str(one)})
    for name, pool in (("a", "one"), ("b", "one")):
        qubes.create_qube(name, QubeClass.STANDALONE, label="red", template=None, pool=pool, pools={})
    shared = scratch_name("a\nb")
    first = replace(pair("a", "private", str(one), pool="one"), scratch_qube=shared,
                    local_name=f"appvms/{shared}/private.img", scratch=f"{one}/appvms/{shared}/private.img")
    second = replace(pair("b", "private", str(two), pool="one"), scratch_qube=shared, scratch_kind="root",
                     local_name=f"appvms/{shared}/root.img", scratch=f"{two}/appvms/{shared}/root.img")

    made: list[str] = []
    assert prepare_scratch(qubes, [first, second], made) == {}
    assert made == [shared]
    assert {v.kind: v.pool for v in qubes.qube(shared).volumes} == {"private": "one", "root": "one"}
    Path(first.scratch).write_bytes(b"a" * 10)
    Path(second.scratch).write_bytes(b"b" * 20)
    clone_volume(qubes, first)
    clone_volume(qubes, second)
    assert (qubes.read_volume("a", "private"), qubes.read_volume("b", "private")) == (b"a" * 10, b"b" * 20)


def test_a_scratch_qube_that_cannot_be_made_fails_every_qube_in_it(tmp_path: Path) -> None:
    (tmp_path / "p").mkdir()
    qubes = FakeQubes({"p": str(tmp_path / "p")})
    shared = scratch_name("a\nb")
    pairs = [replace(pair(q, "private", str(tmp_path / "p"), pool="p"), scratch_qube=shared) for q in "ab"]
    qubes.fail("create_qube", shared, message="No space left on device")

    failed = prepare_scratch(qubes, pairs, [])

    assert sorted(failed) == ["a", "b"] and all("No space left on device" in m for m in failed.values())


def test_a_scratch_volume_not_where_wyng_writes_fails_that_qube(tmp_path: Path) -> None:
    pool_dir = tmp_path / "pool"
    pool_dir.mkdir()
    qubes = FakeQubes({"main": str(pool_dir)})
    wrong = VolumePair("a", "private", "appvms/a/private.img", 10, "main", str(pool_dir), "elsewhere/private.img",
                       "x", scratch_name("a"))

    made: list[str] = []
    failed = prepare_scratch(qubes, [wrong], made)

    assert "is not where Wyng is to write it" in failed["a"]
    assert made == [scratch_name("a")]  # made, so that the restore removes it


def snapshot_pair(tmp_path: Path) -> VolumePair:
    (tmp_path / "appvms" / "work").mkdir(parents=True)
    (tmp_path / "appvms" / scratch_name("work")).mkdir(parents=True)
    base = pair("work", "private", str(tmp_path), pool="main")
    return replace(base, snapshot=str(tmp_path / "appvms/work/snU_0001.wyng1"),
                   scratch_snapshot=str(tmp_path / f"appvms/{scratch_name('work')}/snU_0001.wyng1"))


def test_no_snapshot_to_lend_means_a_full_receive(tmp_path: Path) -> None:
    lent = snapshot_pair(tmp_path)
    assert lend_snapshot(lent) is False
    assert not Path(lent.scratch_snapshot).exists()


def test_a_snapshot_is_lent_by_reflink_with_its_mtime_or_not_at_all(tmp_path: Path) -> None:
    lent = snapshot_pair(tmp_path)
    Path(lent.snapshot).write_bytes(b"s" * 8192)
    os.chmod(lent.snapshot, 0o444)
    os.utime(lent.snapshot, ns=(1_700_000_000_123_456_789, 1_700_000_000_987_654_321))

    if lend_snapshot(lent):  # a filesystem with reflinks (Btrfs, XFS)
        copied = os.stat(lent.scratch_snapshot)
        assert copied.st_mtime_ns == 1_700_000_000_987_654_321 and copied.st_mode & 0o777 == 0o444
        assert Path(lent.scratch_snapshot).read_bytes() == b"s" * 8192
        return_snapshot(lent)
    assert not Path(lent.scratch_snapshot).exists()  # none half made, and none left after return
    assert Path(lent.snapshot).read_bytes() == b"s" * 8192  # Wyng's own snapshot untouched


def test_receive_output_of_a_snapshot_restore_counts_as_received() -> None:
    tracker = ReceiveTracker()
    for line in (FIXTURES / "cmd" / "057_recv_pool_latest_usesnap.stdout").read_text().splitlines():
        tracker(line)
    assert "appvms/work/private.img" in tracker.done and len(tracker.done) == 5


def test_wyngs_snapshot_lvs_beside_an_lvm_scratch_volume_are_removed(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "lvremove.log"
    fake = tmp_path / "bin" / "lvremove"
    fake.parent.mkdir()
    fake.write_text(f"#!/bin/sh\necho \"$*\" >> {log}\nexit 5\n")  # 5: no such LV
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:{os.environ['PATH']}")
    name = scratch_name("work")
    lvm = VolumePair("work", "private", "vm-work-private", 10, "lvm", "qubes_dom0/vm-pool",
                     f"vm-{name}-private", f"/dev/qubes_dom0/vm-{name}-private", name)

    return_snapshot(lvm)

    assert log.read_text().splitlines() == [f"-f qubes_dom0/vm-{name}-private.tick",
                                            f"-f qubes_dom0/vm-{name}-private.tock"]


def test_not_halted_names_each_qube_running_or_gone_from_one_list(tmp_path: Path) -> None:
    qubes = FakeQubes({"p": str(tmp_path)})
    for name in ("up", "down"):
        qubes.add(name, QubeClass.STANDALONE)
    qubes.domains["up"].running = True
    qubes.calls.clear()

    found = not_halted(qubes, {"up", "down", "gone"})

    assert sorted(found) == ["gone", "up"] and "started" in found["up"] and found["gone"] == "it is gone"
    assert qubes.calls == [("list_qubes",)]
    assert not_halted(qubes, ()) == {} and qubes.calls == [("list_qubes",)]  # nothing to clone: no call


def test_not_halted_fails_every_qube_when_qubesd_cannot_say(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    qubes = FakeQubes({"p": str(tmp_path)})
    qubes.add("down", QubeClass.STANDALONE)

    def refuse() -> dict[str, tuple[QubeClass, bool]]:
        raise QubesError("qubesd is gone")

    monkeypatch.setattr(qubes, "list_qubes", refuse)
    assert not_halted(qubes, {"down"}) == {"down": "cannot tell whether it is running: qubesd is gone"}
