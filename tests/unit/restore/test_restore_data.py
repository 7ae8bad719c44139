"""wyngq.restore.data: the --local-from document and reading Wyng's receive output."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import FIXTURES
from wyngq.restore.data import ReceiveTracker, discard_scratch, local_from, prepare_scratch
from wyngq.restore.model import VolumePair
from wyngq.restore.plan import SCRATCH_DIR


def pair(qube: str, kind: str, store: str, archive: str | None = None) -> VolumePair:
    local = f"{qube}.{kind}.img"
    return VolumePair(qube, kind, archive or f"appvms/{qube}/{kind}.img", 10, "p", store, local, f"{store}/{local}")


def test_local_from_groups_by_store_and_aliases_every_scratch_copy() -> None:
    doc = local_from([pair("a", "private", "/p1/s"), pair("b", "private", "/p2/s"),
                      pair("c", "root", "/p1/s", archive="c.root.img")])
    assert doc == {"/p1/s": [["appvms/a/private.img", "a.private.img"], ["c.root.img", None]],
                   "/p2/s": [["appvms/b/private.img", "b.private.img"]]}


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


def test_scratch_directories_are_made_empty_and_removed(tmp_path: Path) -> None:
    store = tmp_path / SCRATCH_DIR
    store.mkdir()
    (store / "left-by-a-crash.img").write_bytes(b"x")
    pairs = [pair("a", "private", str(store))]
    prepare_scratch(pairs)
    assert list(store.iterdir()) == []
    Path(pairs[0].scratch).write_bytes(b"data")
    assert discard_scratch(pairs) == []
    assert not store.exists()
