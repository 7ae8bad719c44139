"""wyngq.dom0.extract: hostile members are refused with a clear error and leave
nothing behind; a good stream comes back with its modes, owners and mtimes;
nothing is ever written through a symlink."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.unit.dom0.hostile import HOSTILE
from tests.unit.dom0.trees import MTIME_NS, make_tree
from wyngq.dom0 import extract, tarwrite, walk
from wyngq.dom0.extract import Limits, UnsafeArchiveError

LIMITS = Limits(max_member=10_000, max_total=50_000)


def write_stream(tmp_path: Path, data: bytes) -> str:
    path = tmp_path / "stream.tar"
    path.write_bytes(data)
    return str(path)


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_member_is_refused_and_nothing_is_left_behind(tmp_path: Path, case: str) -> None:
    build, words = HOSTILE[case]
    source = write_stream(tmp_path, build())
    out = tmp_path / "out"
    out.mkdir()

    with pytest.raises(UnsafeArchiveError) as caught:
        extract.extract(source, str(out / "target"), LIMITS)

    assert words in caught.value.message
    assert caught.value.code == "unsafe_archive"
    assert os.listdir(out) == []  # no target, no partial directory
    with pytest.raises(UnsafeArchiveError):
        extract.check(source, LIMITS)


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_nothing_is_ever_written_outside_the_target(tmp_path: Path, case: str) -> None:
    before = {p for p in tmp_path.rglob("*")}
    build, _ = HOSTILE[case]
    source = write_stream(tmp_path, build())
    with pytest.raises(UnsafeArchiveError):
        extract.extract(source, str(tmp_path / "target"), LIMITS)

    assert {p for p in tmp_path.rglob("*")} == before | {Path(source)}


def stream_of(tmp_path: Path, root: Path) -> str:
    out = io.BytesIO()
    tarwrite.write(out, str(root), walk.walk(str(root)).entries)
    return write_stream(tmp_path, out.getvalue())


def tree_state(root: Path) -> dict[str, tuple[object, ...]]:
    state: dict[str, tuple[object, ...]] = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        content = os.readlink(path) if path.is_symlink() else path.read_bytes() if path.is_file() else None
        state[str(path.relative_to(root))] = (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_mtime_ns, content)
    return state


def test_a_round_trip_keeps_contents_modes_owners_and_mtimes(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "home", {"a/x": b"x" * 3000, "a/secret": b"s", "b": os.urandom(300_000)},
                     dirs=["ro"], links={"a/l": "x"})
    (root / "a" / "secret").chmod(0o600)
    (root / "ro").chmod(0o500)
    (root / "a").chmod(0o750)
    for path in ("a/secret", "ro", "a"):
        os.utime(root / path, ns=(MTIME_NS, MTIME_NS))
    source = stream_of(tmp_path, root)

    done = extract.extract(source, str(tmp_path / "back"), Limits(10**7, 10**7))

    assert tree_state(tmp_path / "back") == tree_state(root)
    assert done.files == 3 and done.data_bytes == 303_001
    assert stat.S_IMODE((tmp_path / "back").stat().st_mode) == 0o700


def test_setuid_and_setgid_bits_never_come_back(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "t", {"tool": b"#!/bin/sh\n"})
    (root / "tool").chmod(0o6755)

    extract.extract(stream_of(tmp_path, root), str(tmp_path / "back"), Limits(10**6, 10**6))

    assert stat.S_IMODE((tmp_path / "back" / "tool").stat().st_mode) == 0o755


@pytest.mark.skipif(os.geteuid() != 0, reason="changing owners needs root")
def test_a_fixed_owner_owns_everything_extracted(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "t", {"d/f": b"1"}, links={"l": "d/f"})

    extract.extract(stream_of(tmp_path, root), str(tmp_path / "back"), Limits(10**6, 10**6),
                    extract.fixed_owner(4321, 8765))

    owners = {(p.lstat().st_uid, p.lstat().st_gid) for p in [tmp_path / "back", *(tmp_path / "back").rglob("*")]}
    assert owners == {(4321, 8765)}


@pytest.mark.skipif(os.geteuid() != 0, reason="changing owners needs root")
def test_owners_from_the_stream_come_back_as_numbers(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "t", {"f": b"1"})
    os.chown(root / "f", 1234, 5678)

    extract.extract(stream_of(tmp_path, root), str(tmp_path / "back"), Limits(10**6, 10**6))

    st = (tmp_path / "back" / "f").stat()
    assert (st.st_uid, st.st_gid) == (1234, 5678)


def test_an_existing_target_is_refused_before_reading_anything(tmp_path: Path) -> None:
    (tmp_path / "target").mkdir()
    with pytest.raises(FileExistsError):
        extract.extract(str(tmp_path / "missing.tar"), str(tmp_path / "target"), LIMITS)


def test_a_symlink_planted_where_a_directory_would_go_is_not_followed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Between two members someone replaces a directory in the partial tree by a
    symlink to a directory outside: the next member is refused, not written there."""
    outside = tmp_path / "outside"
    outside.mkdir()
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in ("d/first", "d/second"):
            info = tarfile.TarInfo(name)
            info.size = 1
            tar.addfile(info, io.BytesIO(b"1"))
    source = write_stream(tmp_path, data.getvalue())
    real_add: Callable[..., None] = extract._Writer.add
    calls = []

    def planting_add(self: extract._Writer, member: extract.Entry, stream: object) -> None:
        if calls:
            partial = next(tmp_path.glob(".target.partial-*"))
            os.rename(partial / "d", partial / "moved")
            os.symlink(outside, partial / "d")
        calls.append(member.path)
        real_add(self, member, stream)

    monkeypatch.setattr(extract._Writer, "add", planting_add)
    with pytest.raises(UnsafeArchiveError, match="through or over"):
        extract.extract(source, str(tmp_path / "target"), LIMITS)

    assert os.listdir(outside) == []


def test_more_members_than_allowed_are_refused(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "t", {f"f{i}": b"" for i in range(5)})

    with pytest.raises(UnsafeArchiveError, match="more than allowed"):
        extract.extract(stream_of(tmp_path, root), str(tmp_path / "back"), Limits(10, 10, max_members=3))
    assert not (tmp_path / "back").exists()
