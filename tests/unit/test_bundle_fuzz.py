"""Fuzz: 10 000 generated bundles through the bundle, manifest and qubes.xml readers.

A seeded generator (the same bundles on every run) mutates good bundles at
every layer a writer of the archive controls: the compressed bytes, the tar
headers and blocks, and the members' JSON and XML. Every outcome must be a
settings read or a BundleError; anything else is an internal error."""

from __future__ import annotations

import gzip
import random
import re
import tarfile
import traceback
from collections.abc import Callable
from pathlib import Path

from tests.tarbuild import tar_of
from tests.unit.restore.test_restore_qubesxml import FIREWALL, QUBES_XML
from tests.unit.test_bundle import DISP, TEMPLATE, WORK, _manifest
from wyngq.bundle import BundleError, read_bundle
from wyngq.restore.settings import read_settings

RUNS = 10_000
SEED = 20261204

JSON_TOKENS = [
    b"NaN", b"-Infinity", b"1e999", b"1.5", b"9" * 30, b"9" * 5000, b"-0", b'"\\u0000"', b'"\\ud800"', b"[" * 40,
    b"]" * 3, b"{}", b"[]", b"null", b"true", b'""', b'"\x1b[31m"', b",", b":", b'"a":', b"\xff",
]
XML_TOKENS = [b"<!DOCTYPE q>", b"<!ENTITY a 'b'>", b"&amp;", b"&#0;", b"&#x1b;", b"<a>", b"</a>", b"<a/>" * 20,
              b' size="\xd9\xa1"', b' size="1e9"', b' size="99999999999999999999999"', b' revisions_to_keep="-"',
              b' name="../x"', b' class="RemoteVM"', b' mode="bogus"', b"<![CDATA[x]]>", b"<?pi x?>", b"\x00",
              b"\xff\xfe", b' backend-domain="dom0"', b"<property name=\"name\">dom0</property>", b"\x1b[2J"]
# replacements for one attribute value or element text of a good document
XML_VALUES = [b"\xc2\xb2", b"\xd9\xa1", b"9" * 5000, b"1e9", b"-", b"", b"../..", b"dom0", b"\x1b[31m", b"&#27;",
              b"RemoteVM", b"AdminVM", b"required", b"x" * 300, b"&lt;", b"\xff", b"-1", b"a b"]
VALUE = re.compile(rb'(?<==")[^"]*|(?<=>)[^<]+')
JSON_VALUE = re.compile(rb'(?<=: )("[^"]*"|-?[0-9]+|true|false|null)')


SEEDS: list[tuple[dict[str, bytes], int]] = [
    ({"./qubes.xml": b"<qubes><domains/></qubes>", "./wyngq.json": _manifest(WORK, TEMPLATE, DISP)},
     tarfile.PAX_FORMAT),
    ({"qubes.xml": QUBES_XML, "appvms/work/firewall.xml": FIREWALL, "appvms/work/notes.txt": b"notes \xe2\x9c\x93"},
     tarfile.GNU_FORMAT),
    ({"qubes.xml": QUBES_XML, "appvms/" + "w" * 120 + "/notes.txt": b"n"}, tarfile.PAX_FORMAT),
]


def _mutate_bytes(rng: random.Random, data: bytes, tokens: list[bytes] | None = None) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if not buf:
            buf += b"x"
        at = rng.randrange(len(buf))
        choice = rng.randrange(7 if tokens else 5)
        if choice == 6:
            assert tokens is not None
            pattern, values = (JSON_VALUE, JSON_TOKENS) if tokens is JSON_TOKENS else (VALUE, XML_VALUES)
            spans = [m.span() for m in pattern.finditer(buf)]
            if spans:
                begin, end = rng.choice(spans)
                buf[begin:end] = rng.choice(values)
            continue
        if choice == 0:
            buf[at] = rng.randrange(256)
        elif choice == 1:
            del buf[at:at + rng.randint(1, 64)]
        elif choice == 2:
            buf[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        elif choice == 3:
            del buf[rng.randrange(len(buf) + 1):]
        elif choice == 4:
            start = rng.randrange(len(buf))
            buf[at:at] = buf[start:start + rng.randint(1, 512)]
        else:
            assert tokens is not None
            buf[at:at] = rng.choice(tokens)
    return bytes(buf)


def _mutate_tar(rng: random.Random, tar: bytes) -> bytes:
    """Damage the tar's structure: header fields, type flags, sizes, blocks."""
    buf = bytearray(tar)
    headers = [n for n in range(0, len(buf) - 512, 512) if buf[n + 257:n + 262] == b"ustar"] or [0]
    at = rng.choice(headers)
    field = rng.choice([(0, 100), (124, 12), (148, 8), (156, 1), (257, 8), (345, 155)])
    start, width = at + field[0], field[1]
    value = rng.choice([b"0" * width, b"7" * width, bytes(width), b"\x80" + b"\xff" * (width - 1),
                        bytes(rng.randrange(256) for _ in range(width)), b"x", b"L", b"K", b"g", b"1", b"2", b"S"])
    buf[start:start + width] = value[:width].ljust(width, b"\0")
    if rng.random() < 0.3:
        block = rng.randrange(max(1, len(buf) // 512)) * 512
        buf[block:block] = buf[block:block + 512] * rng.randint(1, 3)
    return bytes(buf)


def _generate(rng: random.Random) -> bytes:
    members, fmt = rng.choice(SEEDS)
    members = dict(members)
    layer = rng.randrange(4)
    if layer == 0:  # a member's content
        name = rng.choice(list(members))
        tokens = JSON_TOKENS if name.endswith(".json") else XML_TOKENS
        members[name] = _mutate_bytes(rng, members[name], tokens)
        return gzip.compress(tar_of(members, fmt), compresslevel=1)
    if layer == 1:  # the tar's structure
        return gzip.compress(_mutate_tar(rng, tar_of(members, fmt)), compresslevel=1)
    if layer == 2:  # the compressed bytes
        return _mutate_bytes(rng, gzip.compress(tar_of(members, fmt), compresslevel=1))
    # the members themselves: odd names, extra or missing ones
    extra: Callable[[], tuple[str, bytes]] = rng.choice([
        lambda: ("wyngq.json", rng.choice(JSON_TOKENS)),
        lambda: ("appvms/work/firewall.xml", rng.choice(XML_TOKENS)),
        lambda: ("../../etc/x", b"x"),
        lambda: ("appvms/\x1b[2J/notes.txt", b"x"),
        lambda: ("qubes.xml", b""),
    ])
    name, data = extra()
    members[name] = data
    return gzip.compress(tar_of(members, rng.choice([tarfile.PAX_FORMAT, tarfile.GNU_FORMAT])), compresslevel=1)


def test_ten_thousand_generated_bundles_cause_no_internal_error(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    path = tmp_path / "bundle.tgz"
    outcomes = {"read": 0, "refused": 0}
    internal: list[str] = []
    for run in range(RUNS):
        path.write_bytes(_generate(rng))
        try:
            read_settings(read_bundle(str(path)))
            outcomes["read"] += 1
        except BundleError:
            outcomes["refused"] += 1
        except Exception:  # an internal error: the bundle is kept for the report
            internal.append(f"run {run}: {traceback.format_exc(limit=3)}")
            (tmp_path / f"internal-{run}.tgz").write_bytes(path.read_bytes())
    print(outcomes)
    assert internal == [], "\n".join(internal[:5])
    assert sum(outcomes.values()) == RUNS
    assert outcomes["read"] > 100 and outcomes["refused"] > 1000, outcomes  # both paths were exercised
