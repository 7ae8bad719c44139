"""Wyng's snapshot names beside a local volume (wyngq.wyng.snapshots)."""

from __future__ import annotations

import pytest

from wyngq.wyng import snapshots


def test_the_snapshot_file_of_a_volume_is_named_for_the_archive_and_the_volume() -> None:
    assert snapshots.snapshot_file("3f3b89aa-0000", "Vol_3f3b89") == "sn3f3b89aa-0000_Vol_3f3b89.wyng1"


@pytest.mark.parametrize(("uuid", "vid"), [("../x", "Vol_1"), ("u1", "a/b"), ("", "Vol_1"), ("u1", ""),
                                           ("u1", ".."), ("u1", "x" * 65), ("u\n1", "Vol_1")])
def test_names_from_the_catalogue_that_are_not_plain_tokens_give_no_path(uuid: str, vid: str) -> None:
    assert snapshots.snapshot_file(uuid, vid) is None


def test_a_receive_leaves_the_finished_or_the_stopped_snapshot() -> None:
    assert snapshots.left_by_receive("/p/q/snU_1.wyng1") == ("/p/q/snU_1.wyng1", "/p/q/snU_1.wyng2")


def test_lvm_snapshots_are_the_tick_and_tock_lvs_beside_the_volume() -> None:
    assert snapshots.lvm_snapshots("qubes_dom0", "vm-q-private") == (
        "qubes_dom0/vm-q-private.tick", "qubes_dom0/vm-q-private.tock")
