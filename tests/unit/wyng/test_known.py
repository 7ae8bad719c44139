"""wyngq.wyng.known: the archive record kept between runs."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from wyngq.wyng.commands import WyngTarget
from wyngq.wyng.known import KnownArchive, KnownArchives, executable_stamp


@pytest.fixture
def wyng(tmp_path: Path) -> str:
    path = tmp_path / "bin" / "wyng"
    path.parent.mkdir()
    path.write_text("#!/bin/sh\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def record(wyng: str) -> KnownArchive:
    return KnownArchive(frozenset({"appvms/work/private.img"}), frozenset({"20260101-000000", "20260102-000000"}),
                        executable_stamp(wyng))


def test_a_record_comes_back_as_it_was_kept(tmp_path: Path, wyng: str) -> None:
    store, target = KnownArchives(str(tmp_path / "state")), WyngTarget(wyng, "file:/a")
    store.put(target, record(wyng))
    got = store.get(target)
    assert got == record(wyng)
    assert got is not None and got.newest == "20260102-000000"
    assert oct(os.stat(tmp_path / "state" / "archives").st_mode & 0o777) == "0o700"


def test_a_record_is_per_archive_and_meta_dir(tmp_path: Path, wyng: str) -> None:
    store = KnownArchives(str(tmp_path))
    store.put(WyngTarget(wyng, "file:/a"), record(wyng))
    assert store.get(WyngTarget(wyng, "file:/b")) is None
    assert store.get(WyngTarget(wyng, "file:/a", meta_dir="/var/lib/other")) is None


def test_a_changed_wyng_executable_makes_the_record_unusable(tmp_path: Path, wyng: str) -> None:
    store, target = KnownArchives(str(tmp_path)), WyngTarget(wyng, "file:/a")
    store.put(target, record(wyng))
    Path(wyng).write_text("#!/bin/sh\n# a newer Wyng\n")
    assert store.get(target) is None


@pytest.mark.parametrize("content", ["", "{", "[]", '{"format": 1}', '{"format": 2, "dest": "file:/a"}',
                                     '{"format": 1, "dest": "file:/a", "meta_dir": null, "wyng": "x", '
                                     '"volumes": [], "sessions": []}',
                                     '{"format": 1, "dest": "file:/a", "meta_dir": null, "wyng": ["p", 1, 2], '
                                     '"volumes": [1], "sessions": []}',
                                     '{"format": 1, "dest": "file:/a", "meta_dir": null, "wyng": ["p", 1, 2], '
                                     '"volumes": [], "sessions": [], "last": {}}'])
def test_a_damaged_record_is_not_used(tmp_path: Path, wyng: str, content: str) -> None:
    store, target = KnownArchives(str(tmp_path)), WyngTarget(wyng, "file:/a")
    store.put(target, record(wyng))
    (path,) = (tmp_path / "archives").iterdir()
    path.write_text(content)
    assert store.get(target) is None


def test_no_directory_or_an_unwritable_one_keeps_nothing_and_fails_nothing(tmp_path: Path, wyng: str) -> None:
    target = WyngTarget(wyng, "file:/a")
    KnownArchives(None).put(target, record(wyng))
    assert KnownArchives(None).get(target) is None
    blocker = tmp_path / "file"
    blocker.write_text("")
    KnownArchives(str(blocker)).put(target, record(wyng))  # cannot make a directory under a file
    assert KnownArchives(str(blocker)).get(target) is None


def test_with_session_adds_what_a_backup_sent(wyng: str) -> None:
    known = record(wyng).with_session("20260103-000000", ["appvms/new/private.img"])
    assert known.newest == "20260103-000000"
    assert known.volumes == {"appvms/work/private.img", "appvms/new/private.img"}


def test_with_session_drops_the_names_wyng_renamed_away(wyng: str) -> None:
    known = record(wyng).with_session("20260103-000000", ["appvms/work/private.img"],
                                      renamed=["qubes_dom0/vm-work-private"])
    before = KnownArchive(frozenset({"qubes_dom0/vm-work-private"}), frozenset(), executable_stamp(wyng))
    after = before.with_session("20260103-000000", ["appvms/work/private.img"], renamed=["qubes_dom0/vm-work-private"])
    assert after.volumes == {"appvms/work/private.img"}
    assert known.volumes == {"appvms/work/private.img"}


def test_an_empty_record_of_a_new_archive(tmp_path: Path, wyng: str) -> None:
    records, target = KnownArchives(str(tmp_path)), WyngTarget(executable=wyng, dest="file:/new")
    records.put(target, KnownArchive.empty(wyng))
    known = records.get(target)
    assert known is not None and known.volumes == frozenset() and known.newest is None
    records.forget(target)
    assert records.get(target) is None
    records.forget(target)  # nothing there: no error


def test_each_qubes_last_session_is_rebuilt_from_the_catalogue() -> None:
    from tests.conftest import FIXTURES
    from wyngq.wyng.catalog import parse_list_output
    from wyngq.wyng.known import last_sessions

    archive = parse_list_output((FIXTURES / "json" / "list_06_after_incr3.json").read_text(encoding="utf-8"))
    assert last_sessions(archive) == {"work": "20261126-151138", "personal": "20261126-151125",
                                      "fedora": "20261126-151125", "extra": "20261126-151125"}


def test_a_backup_moves_the_last_session_of_its_qubes_only(tmp_path: Path, wyng: str) -> None:
    store, target = KnownArchives(str(tmp_path)), WyngTarget(wyng, "file:/a")
    old = KnownArchive(frozenset(), frozenset({"20260101-000000"}), executable_stamp(wyng),
                       {"work": "20260101-000000", "vault": "20260101-000000"})
    store.put(target, old.with_session("20260102-000000", ["appvms/work/private.img"], qubes=["work", "disp1"]))
    got = store.get(target)
    assert got is not None
    assert got.last == {"work": "20260102-000000", "vault": "20260101-000000", "disp1": "20260102-000000"}


def test_a_record_naming_a_session_it_does_not_hold_is_not_used(tmp_path: Path, wyng: str) -> None:
    store, target = KnownArchives(str(tmp_path)), WyngTarget(wyng, "file:/a")
    store.put(target, KnownArchive(frozenset(), frozenset({"20260101-000000"}), executable_stamp(wyng),
                                   {"work": "20990101-000000"}))
    assert store.get(target) is None
