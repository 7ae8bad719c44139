"""wyngq.tarstream: tar members read with every size bounded before it is read."""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.tarbuild import tar_of
from wyngq.tarstream import BLOCK, TarFormatError, TarLimits, read_members

SMALL = TarLimits(max_members=10, max_member_bytes=1000, max_total_bytes=1500, max_header_bytes=600,
                  max_stream_bytes=20 * BLOCK)


DEFAULT = TarLimits()


def _read(data: bytes, limits: TarLimits = DEFAULT) -> list[tuple[str, bytes]]:
    return list(read_members(io.BytesIO(data), limits))


def _header(name: str, size: int, kind: bytes, fmt: int = tarfile.USTAR_FORMAT) -> bytes:
    """A header that claims `size` bytes follow (none do)."""
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = size
    return info.tobuf(fmt, "utf-8", "surrogateescape")


LONG = "appvms/" + "q" * 150 + "/notes.txt"


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT],
                         ids=["pax", "gnu", "ustar"])
def test_reads_what_pythons_tarfile_writes_in_each_format(fmt: int) -> None:
    members = {"qubes.xml": b"<qubes/>", "appvms/w/notes.txt": b"", "appvms/w/firewall.xml": b"x" * 513}
    if fmt != tarfile.USTAR_FORMAT:
        members[LONG] = b"long"  # PAX path / GNU long name
        members["appvms/wörk/notes.txt"] = "✓".encode()
    else:
        members["appvms/" + "p" * 90 + "/notes.txt"] = b"prefix"  # ustar's prefix field
    assert _read(tar_of(members, fmt)) == list(members.items())


def test_reads_what_gnu_tar_writes(tmp_path: Path) -> None:
    tar = shutil.which("tar")
    if tar is None:
        pytest.skip("no tar program")
    (tmp_path / "d" / ("q" * 150)).mkdir(parents=True)
    (tmp_path / "d" / ("q" * 150) / "notes.txt").write_bytes(b"notes")
    (tmp_path / "d" / "qubes.xml").write_bytes(b"<qubes/>")
    for fmt in ("gnu", "posix", "ustar"):
        names = ["qubes.xml"] if fmt == "ustar" else ["qubes.xml", "q" * 150 + "/notes.txt"]
        done = subprocess.run([tar, f"--format={fmt}", "-cf", "-", *names], cwd=tmp_path / "d", check=True,
                              capture_output=True)
        got = dict(_read(done.stdout))
        assert got["qubes.xml"] == b"<qubes/>", fmt
        assert len(got) == len(names), fmt


def test_directories_are_skipped_and_links_refused() -> None:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        directory = tarfile.TarInfo("./appvms")
        directory.type = tarfile.DIRTYPE
        tar.addfile(directory)
        link = tarfile.TarInfo("./appvms/x")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/shadow"
        tar.addfile(link)
    with pytest.raises(TarFormatError, match="not a plain file"):
        _read(raw.getvalue())


@pytest.mark.parametrize(("kind", "fmt"), [
    (tarfile.XHDTYPE, tarfile.USTAR_FORMAT),  # a PAX header python's tarfile reads whole into memory
    (tarfile.XGLTYPE, tarfile.USTAR_FORMAT),
    (tarfile.GNUTYPE_LONGNAME, tarfile.GNU_FORMAT),  # likewise
], ids=["pax", "pax-global", "gnu-long-name"])
def test_an_extended_header_larger_than_allowed_is_refused_before_it_is_read(kind: bytes, fmt: int) -> None:
    stream = io.BytesIO(_header("x", 8 * 1024**3 - 1, kind, fmt))
    with pytest.raises(TarFormatError, match="extended tar header of 8589934591 bytes"):
        list(read_members(stream))
    assert stream.tell() == BLOCK  # nothing read past the header


def test_a_base256_size_is_refused() -> None:
    with pytest.raises(TarFormatError, match="base-256"):
        _read(_header("qubes.xml", 2**40, tarfile.REGTYPE, tarfile.GNU_FORMAT))


def test_a_member_larger_than_allowed_is_refused_before_it_is_read() -> None:
    stream = io.BytesIO(_header("qubes.xml", 1001, tarfile.REGTYPE) + bytes(2 * BLOCK))
    with pytest.raises(TarFormatError, match="larger than allowed"):
        list(read_members(stream, SMALL))
    assert stream.tell() == BLOCK


def test_a_pax_size_is_bounded_like_a_header_size() -> None:
    record = b"size=99999\n"
    line = str(len(record) + 3).encode() + b" " + record
    crafted = _header("././@PaxHeader", len(line), tarfile.XHDTYPE) + line.ljust(BLOCK, b"\0")
    crafted += _header("qubes.xml", 1, tarfile.REGTYPE) + b"x".ljust(BLOCK, b"\0") + bytes(2 * BLOCK)
    with pytest.raises(TarFormatError, match="99999 bytes"):
        _read(crafted, SMALL)


@pytest.mark.parametrize("record", [b"12 size=1e9\n", b"13 size=\xd9\xa1\xd9\xa2\n", b"99 path=x\n", b"x path=y\n",
                                    b"9 path=y"], ids=["float", "arabic digits", "long length", "no length",
                                                       "no newline"])
def test_malformed_pax_records_are_refused(record: bytes) -> None:
    crafted = _header("././@PaxHeader", len(record), tarfile.XHDTYPE) + record.ljust(BLOCK, b"\0")
    crafted += _header("qubes.xml", 0, tarfile.REGTYPE) + bytes(2 * BLOCK)
    with pytest.raises(TarFormatError, match="PAX"):
        _read(crafted)


def test_the_member_count_total_and_stream_are_bounded() -> None:
    with pytest.raises(TarFormatError, match="more than 10 members"):
        _read(tar_of({f"f{n}": b"" for n in range(11)}), SMALL)
    with pytest.raises(TarFormatError, match="larger than allowed"):
        _read(tar_of({"a": b"x" * 1000, "b": b"x" * 501}), SMALL)
    with pytest.raises(TarFormatError, match="stream is larger than allowed"):
        _read(tar_of({f"d{n}": b"x" * 100 for n in range(9)}), TarLimits(max_stream_bytes=10 * BLOCK))


@pytest.mark.parametrize("damage", [
    lambda t: t[:BLOCK + 10],
    lambda t: t[:3 * BLOCK],  # header and data, nothing after
    lambda t: t[:148] + b"0000000\0" + t[156:],
    lambda t: t[:148] + b"zzzzzzz\0" + t[156:],
    lambda t: t[:257] + b"xxxxx" + t[262:],
    lambda t: b"",
], ids=["cut inside a member", "no end block", "bad checksum", "checksum not octal", "no magic", "empty"])
def test_damaged_tars_are_refused(damage: object) -> None:
    good = tar_of({"qubes.xml": b"<qubes/>" * 100})
    with pytest.raises(TarFormatError):
        _read(damage(good))  # type: ignore[operator]


def test_a_name_that_is_not_utf8_is_refused() -> None:
    raw = _header("q\udcffx", 0, tarfile.REGTYPE) + bytes(2 * BLOCK)
    with pytest.raises(TarFormatError, match="not UTF-8"):
        _read(raw)
