"""wyngq.dom0.tarwrite: the stream is deterministic, keeps numeric owners, modes
and nanosecond mtimes, aligns data so that unchanged files keep their chunks,
and is read by tarfile and GNU tar."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.dom0.trees import MTIME_NS, make_tree
from wyngq.dom0 import tarwrite, walk
from wyngq.dom0.walk import FILE, Entry


def members(data: bytes) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return tar.getmembers()


def contents(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]


def stream(root: Path) -> bytes:
    out = io.BytesIO()
    tarwrite.write(out, str(root), walk.walk(str(root)).entries)
    return out.getvalue()


FILES = {
    "b.txt": b"bee\n",
    "a/one": b"1" * 5000,
    "a/two": os.urandom(300_000),
    "a-b/c": b"",
    "z/deep/er/file": os.urandom(70_000),
}


def test_the_same_tree_gives_the_same_bytes_whatever_order_it_was_made_in(tmp_path: Path) -> None:
    first = make_tree(tmp_path / "one", FILES, dirs=["empty"], links={"l": "a/one"})
    second = make_tree(tmp_path / "two", FILES, dirs=["empty"], links={"l": "a/one"}, order=reversed(list(FILES)))

    assert stream(first) == stream(first)
    assert stream(first) == stream(second)


def test_members_are_sorted_with_each_directory_before_its_contents(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "t", FILES, dirs=["empty"], links={"l": "a/one"})
    names = [m.name for m in members(stream(root))]

    assert names == ["a", "a/one", "a/two", "a-b", "a-b/c", "b.txt", "empty", "l", "z", "z/deep", "z/deep/er",
                     "z/deep/er/file"]


def test_headers_keep_numeric_owners_modes_and_nanosecond_mtimes_only(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "t", {"x": b"data"})
    (root / "x").chmod(0o640)
    os.utime(root / "x", ns=(MTIME_NS, MTIME_NS))
    (member,) = members(stream(root))

    assert (member.uname, member.gname) == ("", "")
    assert (member.uid, member.gid) == (os.getuid(), os.getgid())
    assert member.mode == 0o640
    assert member.pax_headers["mtime"] == "1700000000.123456789"
    assert (member.devmajor, member.devminor) == (0, 0)


def test_the_stream_reads_back_byte_exact(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "t", FILES, links={"l": "a/one"})
    data = stream(root)
    assert {k: v for k, v in contents(data).items()} == FILES
    assert [m.linkname for m in members(data) if m.name == "l"] == ["a/one"]


@pytest.mark.skipif(shutil.which("tar") is None, reason="no GNU tar")
def test_gnu_tar_lists_and_extracts_it_without_complaint(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "t", {**FILES, "é long " + "n" * 150: b"x"})
    archive = tmp_path / "s.tar"
    archive.write_bytes(stream(root))
    (tmp_path / "out").mkdir()

    done = subprocess.run(["tar", "-xf", str(archive), "-C", str(tmp_path / "out")], capture_output=True, text=True)

    assert done.returncode == 0 and done.stderr == ""
    assert (tmp_path / "out" / "a" / "two").read_bytes() == FILES["a/two"]


def test_large_files_start_their_data_on_a_chunk_boundary(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "t", {f"f{i}": os.urandom(tarwrite.ALIGN + i * 777) for i in range(5)})
    assert [m.offset_data % tarwrite.ALIGN for m in members(stream(root))] == [0] * 5


def chunks(data: bytes) -> set[str]:
    size = tarwrite.ALIGN
    return {hashlib.sha256(data[i:i + size]).hexdigest() for i in range(0, len(data), size)}


def test_a_file_that_changes_size_changes_only_the_chunks_up_to_the_next_aligned_member(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = {f"d{i:03d}/f": os.urandom(20_000 + (i * 7919) % 400_000) for i in range(120)}
    root = make_tree(tmp_path / "t", files)
    before = stream(root)
    (root / "d003" / "f").write_bytes(os.urandom(31_234))  # an early file, another size
    os.utime(root / "d003" / "f", ns=(MTIME_NS, MTIME_NS))
    after = stream(root)
    monkeypatch.setattr(tarwrite, "aligned", lambda entry: False)
    unaligned = len(chunks(stream(root)) - chunks(before))

    new = len(chunks(after) - chunks(before))

    # the changed file's own chunk and those of the small files up to the next aligned one
    assert new <= 8 and unaligned >= 60, (new, unaligned, len(chunks(after)))


def test_a_file_changing_size_while_read_is_stored_at_its_listed_size(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "t", {"grows": b"a" * 1000, "shrinks": b"b" * 1000})
    entries = walk.walk(str(root)).entries
    (root / "grows").write_bytes(b"a" * 5000)
    (root / "shrinks").write_bytes(b"b" * 10)
    out = io.BytesIO()

    written = tarwrite.write(out, str(root), entries)

    assert written.changed == ("grows", "shrinks")
    assert contents(out.getvalue()) == {"grows": b"a" * 1000, "shrinks": b"b" * 10 + bytes(990)}


def test_a_file_gone_or_replaced_by_a_symlink_since_the_walk_is_left_out(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "t", {"gone": b"1", "swapped": b"2", "kept": b"3"})
    (tmp_path / "secret").write_bytes(b"not yours")
    entries = walk.walk(str(root)).entries
    (root / "gone").unlink()
    (root / "swapped").unlink()
    os.symlink(tmp_path / "secret", root / "swapped")
    out = io.BytesIO()

    written = tarwrite.write(out, str(root), entries)

    assert [m.name for m in members(out.getvalue())] == ["kept"]
    assert written.members == 1 and b"not yours" not in out.getvalue()


@settings(max_examples=200, deadline=None)
@given(offset_blocks=st.integers(0, 4 * tarwrite.ALIGN // 512), name_length=st.integers(1, 300),
       size=st.integers(tarwrite.ALIGN, 10 * tarwrite.ALIGN), nanos=st.booleans())
def test_an_aligned_header_always_ends_on_a_chunk_boundary(offset_blocks: int, name_length: int, size: int,
                                                           nanos: bool) -> None:
    entry = Entry("n" * name_length, FILE, 0o644, 0, 0, MTIME_NS if nanos else 1_700_000_000 * 10**9, size)
    offset = offset_blocks * 512

    block = tarwrite.header_at(entry, offset)

    assert (offset + len(block)) % tarwrite.ALIGN == 0
    assert tarfile.TarInfo.frombuf(block[-512:], "utf-8", "surrogateescape").size == size
