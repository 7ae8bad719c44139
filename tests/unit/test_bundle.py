"""wyngq.bundle: the settings bundle, written like upstream's and read as untrusted input."""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import shutil
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wyngq.bundle import (
    BUNDLE_LIMITS,
    MANIFEST_FORMAT,
    MANIFEST_VERSION,
    MAX_MEMBER_BYTES,
    BundleError,
    Manifest,
    SettingsTooLargeError,
    encode_manifest,
    parse_manifest,
    read_bundle,
    write_bundle,
)
from wyngq.model import DeviceAssignment, PropertyValue, QubeClass, QubeSettings, VolumeSettings
from wyngq.names import is_qube_name

WORK = QubeSettings(
    name="work",
    klass=QubeClass.APP,
    label="blue",
    template="fedora-42-xfce",
    properties={
        "netvm": PropertyValue("vm", "sys-firewall"),
        "memory": PropertyValue("int", "800"),
        "include_in_backups": PropertyValue("bool", "True"),
        "kernelopts": PropertyValue("str", ""),
    },
    features={"service.cups": "1", "menu-items": "firefox.desktop org.gnome.Terminal.desktop"},
    tags=("backup", "created-by-dom0"),
    firewall=("action=accept dsthost=example.com proto=tcp dstports=443-443", "action=drop"),
    notes="Work qube.\nSecond line — with UTF-8.\n",
    devices=(
        DeviceAssignment(
            devclass="pci",
            backend="dom0",
            port_id="00_14.0",
            device_id="0x8086:0xa36d::p0c0330",
            mode="required",
            options=(("no-strict-reset", "True"), ("permissive", "True")),
        ),
        DeviceAssignment(devclass="block", backend="sys-usb", port_id="sda"),
    ),
    volumes=(
        VolumeSettings("private", "varlibqubes", 2147483648, 2),
        VolumeSettings("root", "varlibqubes", 21474836480, 0),
    ),
)
TEMPLATE = QubeSettings(
    name="fedora-42-xfce",
    klass=QubeClass.TEMPLATE,
    label="black",
    volumes=(VolumeSettings("root", "vm-pool", 21474836480, 1), VolumeSettings("private", "vm-pool", 2147483648)),
)
DISP = QubeSettings(
    name="disp-work",
    klass=QubeClass.DISP,
    label=None,
    template="dvm-work",
    firewall=None,
    notes=None,
)
STATE_FILES = {
    "qubes.xml": b'<?xml version="1.0" encoding="utf-8"?>\n<qubes><domains/></qubes>\n',
    "appvms/work/firewall.xml": b"<firewall/>\n",
    "appvms/work/notes.txt": "Work qube.\nSecond line — with UTF-8.\n".encode(),
    "vm-templates/fedora-42-xfce/firewall.xml": b"<firewall/>\n",
}


def _manifest(*qubes: QubeSettings) -> bytes:
    return encode_manifest(qubes, wyngq_version="0.1.0", qubes_version="4.3", created=1795705810)


def _doc(*qubes: QubeSettings) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(_manifest(*qubes))
    return doc


# -- the manifest -------------------------------------------------------------------------
def test_manifest_round_trip_equals_the_settings() -> None:
    manifest = parse_manifest(_manifest(WORK, TEMPLATE, DISP))
    assert manifest == Manifest(
        created="2026-11-26T15:10:10Z",
        wyngq_version="0.1.0",
        qubes_version="4.3",
        qubes={"work": WORK, "fedora-42-xfce": TEMPLATE, "disp-work": DISP},
    )


def test_manifest_keeps_the_global_preferences() -> None:
    prefs = {"default_template": PropertyValue("vm", "fedora-42-xfce"),
             "default_shutdown_timeout": PropertyValue("int", "90")}
    data = encode_manifest([WORK], wyngq_version="0.1.0", qubes_version="4.3", prefs=prefs)
    assert parse_manifest(data).prefs == prefs
    assert parse_manifest(_manifest(WORK)).prefs is None  # recorded by an older wyngq: none
    broken = json.loads(data)
    broken["prefs"] = {"clockvm": "sys-net"}
    with pytest.raises(BundleError, match="malformed"):
        parse_manifest(json.dumps(broken).encode())


def test_manifest_header() -> None:
    doc = _doc(WORK)
    assert doc["format"] == MANIFEST_FORMAT == "wyngq-manifest"
    assert doc["version"] == MANIFEST_VERSION == 1
    assert doc["created"] == "2026-11-26T15:10:10Z"
    assert doc["wyngq"] == "0.1.0"
    assert doc["qubes_version"] == "4.3"
    assert list(doc["qubes"]) == ["work"]


def test_manifest_is_stable_for_the_same_input() -> None:
    assert _manifest(WORK, TEMPLATE) == _manifest(TEMPLATE, WORK)


def test_manifest_keeps_non_ascii_as_utf8() -> None:
    assert "Second line — with UTF-8.".encode() in _manifest(WORK)


def test_empty_manifest_round_trip() -> None:
    assert parse_manifest(_manifest()).qubes == {}


SAFE_TEXT = st.text(max_size=12)
QUBE_NAMES = st.text("abcxyz019.-", max_size=15).map(lambda s: "q" + s).filter(is_qube_name)
SORTED_PAIRS = st.dictionaries(SAFE_TEXT, SAFE_TEXT, max_size=3).map(lambda d: tuple(sorted(d.items())))
DEVICES = st.builds(
    DeviceAssignment,
    devclass=st.sampled_from(["pci", "usb", "block", "mic"]),
    backend=QUBE_NAMES,
    port_id=SAFE_TEXT,
    device_id=st.none() | SAFE_TEXT,
    mode=st.sampled_from(["auto-attach", "ask-to-attach", "required"]),
    options=SORTED_PAIRS,
)
VOLUMES = st.builds(
    VolumeSettings,
    kind=st.sampled_from(["private", "root", "volatile"]),
    pool=SAFE_TEXT,
    size=st.integers(min_value=0, max_value=2**50),
    revisions_to_keep=st.none() | st.integers(min_value=-1, max_value=10),
)
SETTINGS = st.builds(
    QubeSettings,
    name=QUBE_NAMES,
    klass=st.sampled_from(list(QubeClass)),
    label=st.none() | st.sampled_from(["red", "blue", "black"]),
    template=st.none() | QUBE_NAMES,
    properties=st.dictionaries(SAFE_TEXT, st.builds(PropertyValue, st.sampled_from(["str", "int", "vm"]), SAFE_TEXT)),
    features=st.dictionaries(SAFE_TEXT, SAFE_TEXT, max_size=4),
    tags=st.frozensets(SAFE_TEXT, max_size=4).map(lambda s: tuple(sorted(s))),
    firewall=st.none() | st.lists(SAFE_TEXT, max_size=3).map(tuple),
    notes=st.none() | st.text(max_size=40),
    devices=st.lists(DEVICES, max_size=2).map(tuple),
    volumes=st.lists(VOLUMES, max_size=3).map(tuple),
)


@settings(max_examples=30, deadline=None)
@given(st.lists(SETTINGS, max_size=4, unique_by=lambda s: s.name))
def test_any_settings_round_trip_through_the_manifest(qubes: list[QubeSettings]) -> None:
    assert parse_manifest(_manifest(*qubes)).qubes == {q.name: q for q in qubes}


# -- writing and reading the tar ------------------------------------------------------------
def test_write_then_read_round_trip(tmp_path: Path) -> None:
    path = str(tmp_path / "qubes-metadata.tgz")
    write_bundle(path, STATE_FILES, _manifest(WORK, TEMPLATE))
    bundle = read_bundle(path)
    assert bundle.files == STATE_FILES
    assert bundle.qubes_xml == STATE_FILES["qubes.xml"]
    assert bundle.manifest == parse_manifest(_manifest(WORK, TEMPLATE))


def test_written_tar_looks_like_upstreams(tmp_path: Path) -> None:
    path = tmp_path / "qubes-metadata.tgz"
    write_bundle(str(path), STATE_FILES, _manifest(WORK))
    assert path.read_bytes()[:2] == b"\x1f\x8b"  # gzip, as upstream's `tar -czf`
    with tarfile.open(path, "r:gz") as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == [
        "./appvms/work/firewall.xml",
        "./appvms/work/notes.txt",
        "./qubes.xml",
        "./vm-templates/fedora-42-xfce/firewall.xml",
        "./wyngq.json",
    ]
    assert all(m.isfile() and m.mode == 0o644 for m in members)


def test_bundle_is_readable_with_the_tar_program_upstream_uses(tmp_path: Path) -> None:
    tar = shutil.which("tar")
    if tar is None:
        pytest.skip("no tar program")
    path = tmp_path / "qubes-metadata.tgz"
    write_bundle(str(path), STATE_FILES, _manifest(WORK))
    out = tmp_path / "out"
    out.mkdir()
    subprocess.run([tar, "-xzf", str(path)], cwd=out, check=True)
    assert (out / "qubes.xml").read_bytes() == STATE_FILES["qubes.xml"]
    assert (out / "appvms/work/notes.txt").read_bytes() == STATE_FILES["appvms/work/notes.txt"]


def test_reads_a_bundle_made_the_way_upstream_makes_it(tmp_path: Path) -> None:
    tar = shutil.which("tar")
    if tar is None:
        pytest.skip("no tar program")
    qubes_dir = tmp_path / "var-lib-qubes"
    for name, data in STATE_FILES.items():
        if name.endswith(".xml"):
            (qubes_dir / name).parent.mkdir(parents=True, exist_ok=True)
            (qubes_dir / name).write_bytes(data)
    path = tmp_path / "qmeta.tgz"
    # wyng-util-qubes: find . -name '*.xml' | tar -czf TARPATH --verbatim-files-from -T -
    listing = subprocess.run(["find", ".", "-name", "*.xml"], cwd=qubes_dir, check=True, capture_output=True)
    subprocess.run(
        [tar, "-czf", str(path), "--verbatim-files-from", "-T", "-"], cwd=qubes_dir, input=listing.stdout, check=True
    )
    bundle = read_bundle(str(path))
    assert bundle.manifest is None
    assert bundle.files == {name: data for name, data in STATE_FILES.items() if name.endswith(".xml")}


def test_directory_members_are_skipped(tmp_path: Path) -> None:
    path = _tar(tmp_path, [*_good_members(), _dir("./appvms"), _dir("./")])
    assert read_bundle(path).files == {"qubes.xml": STATE_FILES["qubes.xml"]}


# -- hostile or broken bundles: each one mutation away from a good one ----------------------
Member = tuple[tarfile.TarInfo, bytes]


def _file(name: str, data: bytes) -> Member:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    return info, data


def _dir(name: str) -> Member:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    return info, b""


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> Member:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info, b""


def _special(name: str, kind: bytes) -> Member:
    info = tarfile.TarInfo(name)
    info.type = kind
    return info, b""


def _good_members(manifest: bytes | None = None) -> list[Member]:
    return [
        _file("./qubes.xml", STATE_FILES["qubes.xml"]),
        _file("./wyngq.json", manifest if manifest is not None else _manifest(WORK)),
    ]


def _tar(tmp_path: Path, members: list[Member], name: str = "bundle.tgz") -> str:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
    path = tmp_path / name
    path.write_bytes(gzip.compress(raw.getvalue(), compresslevel=1))
    return str(path)


def test_the_good_bundle_the_mutations_start_from(tmp_path: Path) -> None:
    bundle = read_bundle(_tar(tmp_path, _good_members()))
    assert bundle.files == {"qubes.xml": STATE_FILES["qubes.xml"]}
    assert bundle.manifest is not None
    assert bundle.manifest.qubes == {"work": WORK}


HOSTILE_MEMBERS: dict[str, Member] = {
    "parent path": _file("../x", b"x"),
    "parent inside path": _file("./appvms/../../x", b"x"),
    "absolute path": _file("/etc/qubes.xml", b"x"),
    "absolute path without dot": _file("/qubes.xml", b"x"),
    "symlink": _link("./appvms/work/firewall.xml", "/etc/shadow"),
    "symlink to qubes.xml": _link("./appvms/work/notes.txt", "../../qubes.xml"),
    "hard link": _link("./appvms/work/notes.txt", "./qubes.xml", tarfile.LNKTYPE),
    "device": _special("./appvms/work/dev", tarfile.CHRTYPE),
    "fifo": _special("./appvms/work/fifo", tarfile.FIFOTYPE),
}


@pytest.mark.parametrize("member", HOSTILE_MEMBERS.values(), ids=HOSTILE_MEMBERS.keys())
def test_hostile_member_is_refused(tmp_path: Path, member: Member) -> None:
    with pytest.raises(BundleError):
        read_bundle(_tar(tmp_path, [*_good_members(), member]))


def test_oversize_member_is_refused(tmp_path: Path) -> None:
    big = _file("./qubes.xml", bytes(MAX_MEMBER_BYTES + 1))
    with pytest.raises(BundleError) as caught:
        read_bundle(_tar(tmp_path, [big, _good_members()[1]]))
    assert "larger than allowed" in caught.value.message


def test_member_of_exactly_the_cap_is_fine(tmp_path: Path) -> None:
    at_cap = _file("./qubes.xml", bytes(MAX_MEMBER_BYTES))
    assert len(read_bundle(_tar(tmp_path, [at_cap])).files["qubes.xml"]) == MAX_MEMBER_BYTES


def test_plain_tar_not_gzip_is_refused(tmp_path: Path) -> None:
    good = Path(_tar(tmp_path, _good_members()))
    plain = tmp_path / "plain.tar"
    plain.write_bytes(gzip.decompress(good.read_bytes()))
    with pytest.raises(BundleError):
        read_bundle(str(plain))


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: b"",
        lambda data: b"not a bundle at all\n",
        lambda data: data[: len(data) // 2],  # truncated
        lambda data: data[:40] + bytes(b ^ 0xFF for b in data[40:80]) + data[80:],  # corrupt deflate stream
    ],
    ids=["empty", "text", "truncated", "corrupt body"],
)
def test_damaged_gzip_is_refused(tmp_path: Path, damage: Callable[[bytes], bytes]) -> None:
    path = Path(_tar(tmp_path, _good_members()))
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(BundleError):
        read_bundle(str(path))


def test_missing_bundle_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BundleError):
        read_bundle(str(tmp_path / "no-such.tgz"))


def _mutated(change: Callable[[dict[str, Any]], object]) -> bytes:
    doc = _doc(WORK)
    change(doc)
    return json.dumps(doc).encode()


def _work(doc: dict[str, Any]) -> dict[str, Any]:
    work: dict[str, Any] = doc["qubes"]["work"]
    return work


BAD_MANIFESTS: dict[str, bytes] = {
    "empty": b"",
    "truncated JSON": _manifest(WORK)[:-10],
    "not UTF-8": b'{"format": "wyngq-manifest", "\xff": 1}',
    "a list": b"[]",
    "no format": _mutated(lambda d: d.pop("format")),
    "wrong format": _mutated(lambda d: d.update(format="wyng-util-qubes")),
    "version 2": _mutated(lambda d: d.update(version=2)),
    "version string": _mutated(lambda d: d.update(version="1")),
    "no qubes": _mutated(lambda d: d.pop("qubes")),
    "qubes a list": _mutated(lambda d: d.update(qubes=[])),
    "qube name with slash": _mutated(lambda d: d["qubes"].update({"../work": d["qubes"].pop("work")})),
    "qube name with dash": _mutated(lambda d: d["qubes"].update({"-work": d["qubes"].pop("work")})),
    "qube named dom0": _mutated(lambda d: d["qubes"].update({"dom0": d["qubes"].pop("work")})),
    "qube not an object": _mutated(lambda d: d["qubes"].update(work="AppVM")),
    "no class": _mutated(lambda d: _work(d).pop("class")),
    "class a list": _mutated(lambda d: _work(d).update({"class": ["AppVM"]})),
    "label a number": _mutated(lambda d: _work(d).update(label=1)),
    "template a list": _mutated(lambda d: _work(d).update(template=["fedora"])),
    "properties a list": _mutated(lambda d: _work(d).update(properties=[])),
    "property without type": _mutated(lambda d: _work(d)["properties"]["netvm"].pop("type")),
    "property value a number": _mutated(lambda d: _work(d)["properties"]["memory"].update(value=800)),
    "features a list": _mutated(lambda d: _work(d).update(features=["service.cups"])),
    "feature value a number": _mutated(lambda d: _work(d)["features"].update({"service.cups": 1})),
    "tags a string": _mutated(lambda d: _work(d).update(tags="backup")),
    "tag a number": _mutated(lambda d: _work(d).update(tags=[1])),
    "firewall a string": _mutated(lambda d: _work(d).update(firewall="action=drop")),
    "notes a list": _mutated(lambda d: _work(d).update(notes=["x"])),
    "devices an object": _mutated(lambda d: _work(d).update(devices={})),
    "device without port_id": _mutated(lambda d: _work(d)["devices"][0].pop("port_id")),
    "device option a number": _mutated(lambda d: _work(d)["devices"][0]["options"].update(permissive=True)),
    "volumes an object": _mutated(lambda d: _work(d).update(volumes={})),
    "volume size a string": _mutated(lambda d: _work(d)["volumes"][0].update(size="2G")),
    "volume size negative": _mutated(lambda d: _work(d)["volumes"][0].update(size=-1)),
    "volume size a bool": _mutated(lambda d: _work(d)["volumes"][0].update(size=True)),
    "volume size a float": _mutated(lambda d: _work(d)["volumes"][0].update(size=2.5)),
    "revisions_to_keep a bool": _mutated(lambda d: _work(d)["volumes"][0].update(revisions_to_keep=True)),
    "volume without pool": _mutated(lambda d: _work(d)["volumes"][0].pop("pool")),
    "created a number": _mutated(lambda d: d.update(created=1795705810)),
}


@pytest.mark.parametrize("manifest", BAD_MANIFESTS.values(), ids=BAD_MANIFESTS.keys())
def test_bad_manifest_is_refused(manifest: bytes) -> None:
    with pytest.raises(BundleError) as caught:
        parse_manifest(manifest)
    assert caught.value.code == "bad_metadata"


@pytest.mark.parametrize("manifest", list(BAD_MANIFESTS.values())[:6], ids=list(BAD_MANIFESTS)[:6])
def test_bad_manifest_inside_a_bundle_is_refused(tmp_path: Path, manifest: bytes) -> None:
    with pytest.raises(BundleError):
        read_bundle(_tar(tmp_path, _good_members(manifest)))


def test_mutations_start_from_a_good_manifest() -> None:
    assert parse_manifest(_mutated(lambda d: None)).qubes == {"work": WORK}


def test_optional_fields_may_be_absent() -> None:
    minimal = {"format": MANIFEST_FORMAT, "version": 1, "qubes": {"work": {"class": "AppVM"}}}
    manifest = parse_manifest(json.dumps(minimal).encode())
    assert manifest.qubes["work"] == QubeSettings(name="work", klass=QubeClass.APP, label=None)
    assert manifest.created == ""


@settings(deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_as_manifest_parse_or_are_a_bundle_error(data: bytes) -> None:
    with contextlib.suppress(BundleError):
        parse_manifest(data)


@pytest.mark.parametrize(("klass", "shown"), [("RemoteVM", "RemoteVM"), ("Evil\x1b[2J", "unknown"), ("", "unknown")])
def test_a_qube_of_a_class_wyngq_does_not_restore_is_kept_apart(klass: str, shown: str) -> None:
    manifest = parse_manifest(_mutated(lambda d: _work(d).update({"class": klass})))
    assert "work" not in manifest.qubes and manifest.unsupported == {"work": shown}


# -- a bundle is written only if a restore can read it ---------------------------------
def test_a_member_at_the_limit_is_written_and_read_back(tmp_path: Path) -> None:
    path = str(tmp_path / "qubes-metadata.tgz")
    big = b"x" * MAX_MEMBER_BYTES
    write_bundle(path, {"qubes.xml": big}, _manifest(WORK))
    assert read_bundle(path).files["qubes.xml"] == big


@pytest.mark.parametrize(("files", "words"), [
    ({"qubes.xml": b"x" * (MAX_MEMBER_BYTES + 1)}, "'qubes.xml' is"),
    ({f"appvms/q{i}/notes.txt": b"y" * (4 * 1024 * 1024) for i in range(5)}, "would hold 2097[0-9]* bytes"),
    ({f"appvms/q{i}/firewall.xml": b"" for i in range(BUNDLE_LIMITS.max_members)}, "files, more than"),
])
def test_a_bundle_a_restore_would_refuse_is_not_written(tmp_path: Path, files: dict[str, bytes], words: str) -> None:
    with pytest.raises(SettingsTooLargeError, match=words) as raised:
        write_bundle(str(tmp_path / "b.tgz"), files, _manifest(WORK))
    assert raised.value.code == "settings_too_large"


def test_headers_count_towards_the_stream_a_restore_reads(tmp_path: Path) -> None:
    # long names take a PAX header each: 15,000 small members make a tar stream
    # of more than max_stream_bytes while their data is far below max_total_bytes
    files = {f"appvms/{'q' * 31}/{'n' * 90}{i:05}.xml": b"<a/>" for i in range(15_000)}
    with pytest.raises(SettingsTooLargeError, match="compressed"):
        write_bundle(str(tmp_path / "b.tgz"), files, _manifest(WORK))
