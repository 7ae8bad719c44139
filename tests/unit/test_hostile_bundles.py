"""Hostile settings bundles: each is refused with a BundleError (exit 9, code bad_metadata),
within the readers' memory and CPU bounds, measured in this process (tests/bounds.py).

Whoever can write an unencrypted archive writes its bundle: these are what such
a writer could hand dom0 (docs/hostile-input.md)."""

from __future__ import annotations

import gzip
import json
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.bounds import MIB, measure
from tests.tarbuild import tar_of
from wyngq import bundle
from wyngq.bundle import MAX_BUNDLE_BYTES, BundleError, read_bundle
from wyngq.errors import ExitCode
from wyngq.listing import read_session_bundle
from wyngq.restore.qubesxml import QubesXmlError, read_qubes_xml
from wyngq.restore.settings import read_settings
from wyngq.volnames import METADATA_VOLUME
from wyngq.wyng.catalog import Archive, ArchiveVolume, SessionEntry

ZEROS_1M = gzip.compress(bytes(MIB), compresslevel=9)  # ~1 KiB that inflates to 1 MiB


def _header(name: str, size: int, kind: bytes = tarfile.REGTYPE, fmt: int = tarfile.USTAR_FORMAT) -> bytes:
    info = tarfile.TarInfo(name)
    info.type, info.size = kind, size
    return info.tobuf(fmt, "utf-8", "surrogateescape")


def _file(tmp_path: Path, data: bytes, name: str = "bundle.tgz") -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def _inflating(prefix: bytes, mib: int) -> bytes:
    """gzip of `prefix` then `mib` MiB of zeros, in a file of some `mib` KiB."""
    return gzip.compress(prefix) + ZEROS_1M * mib


def _read_all(path: str) -> Any:
    """What every reader does with a bundle: read it, then its settings."""
    return read_settings(read_bundle(path))


def _assert_refused_within_bounds(work: Callable[[], Any], match: str) -> None:
    usage = measure(work)
    assert isinstance(usage.error, BundleError), usage.error
    assert match in usage.error.message, usage.error.message
    assert usage.error.exit_code is ExitCode.WYNG and usage.error.code == "bad_metadata"
    print(f"peak {usage.peak_bytes / MIB:.1f} MiB, cpu {usage.cpu_seconds:.2f} s")
    assert usage.within_reader_bounds(), (usage.peak_bytes / MIB, usage.cpu_seconds)


# -- bundle bombs ---------------------------------------------------------------------------
BOMBS: dict[str, tuple[Callable[[], bytes], str]] = {
    # each inflates to 1 GiB or more: python's tarfile would read the header whole
    "PAX header of 1 GiB": (lambda: _inflating(_header("././@PaxHeader", 1024 * MIB, tarfile.XHDTYPE), 1024),
                            "extended tar header"),
    "GNU long name of 1 GiB": (lambda: _inflating(
        _header("././@LongLink", 1024 * MIB, tarfile.GNUTYPE_LONGNAME, tarfile.GNU_FORMAT), 1024),
        "extended tar header"),
    "member of 1 GiB": (lambda: _inflating(_header("qubes.xml", 1024 * MIB), 1024), "larger than allowed"),
    "global PAX headers to 1 GiB": (lambda: gzip.compress(
        (_header("g", 60 * 1024, tarfile.XGLTYPE) + bytes(60 * 1024)) * 10) * 1800, "stream is larger"),
    "100 000 members": (lambda: gzip.compress(_header("d", 0, tarfile.DIRTYPE) * 100_000), "more than 20000"),
    "members over the total": (lambda: gzip.compress(tar_of({f"f{n}": bytes(7 * MIB) for n in range(3)})),
                               "larger than allowed"),
}


@pytest.mark.parametrize("bomb", BOMBS.values(), ids=BOMBS.keys())
def test_a_bundle_bomb_is_refused_within_bounds(tmp_path: Path, bomb: tuple[Callable[[], bytes], str]) -> None:
    make, match = bomb
    path = _file(tmp_path, make())
    _assert_refused_within_bounds(lambda: _read_all(path), match)


def test_a_bundle_file_larger_than_the_cap_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "bundle.tgz"
    with open(path, "wb") as handle:
        handle.truncate(MAX_BUNDLE_BYTES + 1)  # sparse: costs no disk
    _assert_refused_within_bounds(lambda: read_bundle(str(path)), "more than the")


def test_the_catalogues_size_is_checked_before_the_bundle_is_fetched(tmp_path: Path) -> None:
    class Wyng:
        def __init__(self) -> None:
            self.fetched: list[str] = []

        def receive_to_file(self, volume: str, session: str, path: str) -> None:
            self.fetched.append(path)

    session = "20261126-151007"
    entry = SessionEntry(session, MAX_BUNDLE_BYTES + 1, 0, True)
    archive = Archive("0.8 rc4", "20251028", "u", 0.0, False, False, "file:/a",
                      {METADATA_VOLUME: ArchiveVolume(METADATA_VOLUME, "Vol_1", session, {session: entry})})
    wyng = Wyng()
    with pytest.raises(BundleError, match="more than the"):
        read_session_bundle(wyng, session, str(tmp_path), archive=archive)  # type: ignore[arg-type]
    assert wyng.fetched == []


# -- XML amplification and deep documents -----------------------------------------------------
def _upstream_bundle(tmp_path: Path, qubes_xml: bytes, extra: dict[str, bytes] | None = None) -> str:
    return _file(tmp_path, gzip.compress(tar_of({"qubes.xml": qubes_xml, **(extra or {})}), compresslevel=1))


XML_BOMBS: dict[str, tuple[bytes, str]] = {
    "a million elements": (b"<qubes>" + b"<a/>" * 1_000_000 + b"</qubes>", "larger than wyngq reads"),
    "600 000 attributes": (b"<qubes><a " + b" ".join(b'a%d=""' % n for n in range(600_000)) + b"/></qubes>",
                           "more than 150000 attributes"),
    "100 000 levels": (b"<a>" * 100_000 + b"</a>" * 100_000, "larger than wyngq reads"),
    "billion laughs": (b'<?xml version="1.0"?><!DOCTYPE q [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;'
                       b'&a;&a;&a;&a;&a;">]><qubes>&b;</qubes>', "DTD or entities"),
    "external entity": (b'<?xml version="1.0"?><!DOCTYPE q [<!ENTITY x SYSTEM "file:///etc/shadow">]>'
                        b"<qubes>&x;</qubes>", "DTD or entities"),
    "UTF-16 DTD": ('<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE q><qubes/>'.encode("utf-16"),
                   "not in UTF-8"),
}


@pytest.mark.parametrize("document", XML_BOMBS.values(), ids=XML_BOMBS.keys())
def test_an_xml_amplification_is_refused_within_bounds(tmp_path: Path, document: tuple[bytes, str]) -> None:
    data, match = document
    path = _upstream_bundle(tmp_path, data)
    _assert_refused_within_bounds(lambda: _read_all(path), match)


def test_a_firewall_xml_bomb_is_refused_within_bounds(tmp_path: Path) -> None:
    qubes_xml = (b'<qubes><domains><domain class="AppVM"><properties><property name="name">work</property>'
                 b"</properties></domain></domains></qubes>")
    firewall = b'<firewall version="2"><rules>' + b"<rule/>" * 1_000_000 + b"</rules></firewall>"
    path = _upstream_bundle(tmp_path, qubes_xml, {"appvms/work/firewall.xml": firewall})
    _assert_refused_within_bounds(lambda: _read_all(path), "larger than wyngq reads")


def test_a_big_but_plausible_qubes_xml_is_read_within_bounds(tmp_path: Path) -> None:
    domain = (b'<domain class="AppVM"><properties><property name="name">q%d</property>'
              + b"".join(b'<property name="p%d">value</property>' % n for n in range(40))
              + b"</properties><features>"
              + b"".join(b'<feature name="f%d">1</feature>' % n for n in range(20))
              + b"</features></domain>")
    qubes_xml = b"<qubes><domains>" + b"".join(domain.replace(b"%d", str(n).encode(), 1) for n in range(1000)) + (
        b"</domains></qubes>")
    path = _upstream_bundle(tmp_path, qubes_xml)
    usage = measure(lambda: _read_all(path))
    assert usage.error is None, usage.error
    assert len(usage.value.qubes) == 1000
    print(f"peak {usage.peak_bytes / MIB:.1f} MiB, cpu {usage.cpu_seconds:.2f} s")
    assert usage.within_reader_bounds(), (usage.peak_bytes / MIB, usage.cpu_seconds)


# -- manifests: deep, wide, bad numbers -------------------------------------------------------
def _manifest_bundle(tmp_path: Path, manifest: bytes) -> str:
    return _file(tmp_path, gzip.compress(tar_of({"wyngq.json": manifest}), compresslevel=1))


def _with_qube(qube: dict[str, Any]) -> bytes:
    return json.dumps({"format": "wyngq-manifest", "version": 1, "qubes": {"work": qube}}).encode()


MANIFESTS: dict[str, tuple[bytes, str]] = {
    "100 000 levels of arrays": (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
    "100 000 levels of objects": (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "not valid JSON"),
    "two million empty lists": (b"[" + b"[]," * 2_000_000 + b"[]]", "more than 500000 values"),
    "a 5000-digit size": (_with_qube({"class": "AppVM", "volumes": [
        {"kind": "private", "pool": "p", "size": int("9" * 4000)}]}).replace(b"9" * 4000, b"9" * 5000),
        "not an integer of at most 20 digits"),
    "a 21-digit size": (b'{"format": "wyngq-manifest", "version": 1, "qubes": {"work": {"class": "AppVM", '
                        b'"volumes": [{"kind": "private", "pool": "p", "size": 123456789012345678901}]}}}',
                        "not an integer of at most 20 digits"),
    "a float size": (b'{"format": "wyngq-manifest", "version": 1, "qubes": {"work": {"class": "AppVM", '
                     b'"volumes": [{"kind": "private", "pool": "p", "size": 1e300}]}}}', "is not an integer"),
    "NaN": (b'{"format": "wyngq-manifest", "version": NaN, "qubes": {}}', "is not an integer"),
    "Infinity": (b'{"format": "wyngq-manifest", "version": -Infinity, "qubes": {}}', "is not an integer"),
    "a negative size": (_with_qube({"class": "AppVM", "volumes": [{"kind": "private", "pool": "p", "size": -1}]}),
                        "bad volume size"),
    "a NUL in a name": (b'{"format": "wyngq-manifest", "version": 1, "qubes": {"wo\\u0000rk": {}}}',
                        "bad qube name"),
}


@pytest.mark.parametrize("manifest", MANIFESTS.values(), ids=MANIFESTS.keys())
def test_a_hostile_manifest_is_refused_within_bounds(tmp_path: Path, manifest: tuple[bytes, str]) -> None:
    data, match = manifest
    path = _manifest_bundle(tmp_path, data)
    _assert_refused_within_bounds(lambda: _read_all(path), match)


XML_NUMBERS = [b"\xd9\xa1\xd9\xa2", b"\xc2\xb2", b"1" * 21, b"1e9", b"-1", b" 1", b"0x10"]


@pytest.mark.parametrize("size", XML_NUMBERS, ids=["arabic digits", "superscript two", "21 digits", "float",
                                                    "negative", "space", "hex"])
def test_a_bad_number_in_qubes_xml_is_refused(size: bytes) -> None:
    qubes_xml = (b'<qubes><domains><domain class="AppVM"><properties><property name="name">work</property>'
                 b'</properties><volume-config><volume name="private" pool="p" size="' + size
                 + b'"/></volume-config></domain></domains></qubes>')
    with pytest.raises(QubesXmlError, match="bad size"):
        read_qubes_xml(qubes_xml, {})


def test_the_limits_are_those_the_docs_state() -> None:
    text = (Path(__file__).parents[2] / "docs" / "hostile-input.md").read_text()
    for figure in (f"{bundle.MAX_BUNDLE_BYTES // MIB} MiB", f"{bundle.MAX_MEMBER_BYTES // MIB} MiB",
                   f"{bundle.MAX_CONTENT_BYTES // MIB} MiB", f"{bundle.MAX_MANIFEST_VALUES:,}"):
        assert figure in text, figure


MAX_MANIFESTS: dict[str, bytes] = {
    "500 000 short strings": _with_qube({"class": "AppVM", "tags": [f"t{n}" for n in range(499_000)]}),
    "8 MiB of notes with one emoji": _with_qube({"class": "AppVM", "notes": "n" * (8 * MIB - 200) + "\U0001f600"}),
}


@pytest.mark.parametrize("manifest", MAX_MANIFESTS.values(), ids=MAX_MANIFESTS.keys())
def test_a_manifest_at_the_limits_is_read_within_bounds(tmp_path: Path, manifest: bytes) -> None:
    path = _manifest_bundle(tmp_path, manifest)
    usage = measure(lambda: _read_all(path))
    assert usage.error is None, usage.error
    print(f"peak {usage.peak_bytes / MIB:.1f} MiB, cpu {usage.cpu_seconds:.2f} s")
    assert usage.within_reader_bounds(), (usage.peak_bytes / MIB, usage.cpu_seconds)
