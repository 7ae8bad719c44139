"""wyngq.volnames: archive volume names exactly as upstream wyng-util-qubes writes them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import FIXTURES
from wyngq.model import PoolDriver, QubeClass
from wyngq.names import is_qube_name
from wyngq.volnames import (
    METADATA_VOLUME,
    VolumeName,
    archive_name,
    convert,
    is_template_name,
    parse,
    template_hint,
)
from wyngq.wyng.catalog import parse_list_output

LVM = PoolDriver.LVM_THIN
REFLINK = PoolDriver.FILE_REFLINK


def test_metadata_volume_name_is_upstreams() -> None:
    assert METADATA_VOLUME == "wyng-qubes-metadata"


@pytest.mark.parametrize(
    ("qube", "kind", "driver", "vid", "expected"),
    [
        ("work", "private", LVM, "qubes_dom0/vm-work-private", "vm-work-private"),
        ("fedora-42", "root", LVM, "qubes_dom0/vm-fedora-42-root", "vm-fedora-42-root"),
        ("work", "private", LVM, None, "vm-work-private"),  # LVM names do not need the vid
        ("work", "private", REFLINK, "appvms/work/private", "appvms/work/private.img"),
        ("fedora-42", "root", REFLINK, "vm-templates/fedora-42/root", "vm-templates/fedora-42/root.img"),
        ("fedora-42", "private", REFLINK, "vm-templates/fedora-42/private", "vm-templates/fedora-42/private.img"),
    ],
)
def test_archive_name(qube: str, kind: str, driver: PoolDriver, vid: str | None, expected: str) -> None:
    assert archive_name(qube, kind, driver, vid) == expected


def test_reflink_archive_name_needs_the_vid() -> None:
    with pytest.raises(ValueError):
        archive_name("work", "private", REFLINK)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("vm-work-private", VolumeName("work", "private", LVM)),
        ("vm-fedora-42-root", VolumeName("fedora-42", "root", LVM)),
        ("vm-sys-net-private", VolumeName("sys-net", "private", LVM)),
        ("vm-my-root-private", VolumeName("my-root", "private", LVM)),
        ("appvms/work/private.img", VolumeName("work", "private", REFLINK)),
        ("appvms/standalone-1/root.img", VolumeName("standalone-1", "root", REFLINK)),
        ("vm-templates/fedora/root.img", VolumeName("fedora", "root", REFLINK)),
        ("vm-templates/fedora/private.img", VolumeName("fedora", "private", REFLINK)),
    ],
)
def test_parse_qube_volume_names(name: str, expected: VolumeName) -> None:
    assert parse(name) == expected


@pytest.mark.parametrize(
    "name",
    [
        "wyng-qubes-metadata",
        "",
        "vm--private",  # no qube name
        "vm-work-volatile",
        "vm-work-private-snap",
        "vm-work-private.img",
        "work-private",
        "appvms/work/volatile.img",
        "appvms/work/private",
        "appvms//private.img",
        "appvms/work/sub/private.img",
        "other/work/private.img",
        "/appvms/work/private.img",
        "appvms/work/private.img/",
        "vm-templates/fedora/root.img.wyng1",
    ],
)
def test_parse_non_qube_volume_names(name: str) -> None:
    assert parse(name) is None


@pytest.mark.parametrize(
    "name",
    [
        "vm--work-private",  # qube "-work"
        "vm-../etc-private",
        "vm-a b-private",
        "appvms/../private.img",
        "appvms/-work/private.img",
        "appvms/dom0/private.img",
        "vm-work-dm-private",
    ],
)
def test_parse_refuses_names_whose_qube_part_is_no_qube_name(name: str) -> None:
    # An archive is written by someone else: a volume name is never the way a
    # name that would fail qube_name() gets into wyngq.
    assert parse(name) is None


@given(st.text(max_size=50))
def test_parsed_qube_is_always_a_valid_qube_name(name: str) -> None:
    parsed = parse(name)
    if parsed is not None:
        assert is_qube_name(parsed.qube)
        assert parsed.kind in ("private", "root")


@pytest.mark.parametrize(
    ("name", "to", "template", "expected"),
    [
        ("vm-work-private", REFLINK, False, "appvms/work/private.img"),
        ("vm-fedora-42-root", REFLINK, True, "vm-templates/fedora-42/root.img"),
        ("vm-fedora-42-private", REFLINK, True, "vm-templates/fedora-42/private.img"),
        ("vm-standalone-root", REFLINK, False, "appvms/standalone/root.img"),
        ("appvms/work/private.img", LVM, False, "vm-work-private"),
        ("vm-templates/fedora-42/root.img", LVM, True, "vm-fedora-42-root"),
        # converting to the same driver rebuilds the same name
        ("vm-work-private", LVM, False, "vm-work-private"),
        ("appvms/work/private.img", REFLINK, False, "appvms/work/private.img"),
    ],
)
def test_convert(name: str, to: PoolDriver, template: bool, expected: str) -> None:
    assert convert(name, to, template) == expected


@pytest.mark.parametrize("name", ["wyng-qubes-metadata", "appvms/work/volatile.img", "vm-work-kernel"])
def test_convert_non_qube_names_is_none(name: str) -> None:
    assert convert(name, LVM, False) is None
    assert convert(name, REFLINK, True) is None


@given(
    qube=st.text("abcxyz019-", max_size=20).map(lambda s: "q" + s).filter(is_qube_name),
    kind=st.sampled_from(["private", "root"]),
    template=st.booleans(),
)
def test_convert_round_trip(qube: str, kind: str, template: bool) -> None:
    lvm = f"vm-{qube}-{kind}"
    reflink = convert(lvm, REFLINK, template)
    assert reflink is not None
    assert parse(reflink) == VolumeName(qube, kind, REFLINK)
    assert convert(reflink, LVM, template) == lvm


def test_every_qube_volume_in_the_recorded_archive_parses() -> None:
    archive = parse_list_output((FIXTURES / "json" / "list_99_final.json").read_text(encoding="utf-8"))
    parsed = {name: parse(name) for name in archive.volumes}
    assert parsed[METADATA_VOLUME] is None
    assert parsed["appvms/work/private.img"] == VolumeName("work", "private", REFLINK)
    assert parsed["vm-templates/fedora/root.img"] == VolumeName("fedora", "root", REFLINK)


def test_template_helpers() -> None:
    assert is_template_name("vm-templates/fedora/root.img")
    assert not is_template_name("appvms/fedora/root.img")
    assert not is_template_name("vm-fedora-root")
    assert template_hint(QubeClass.TEMPLATE)
    assert not template_hint(QubeClass.STANDALONE)
    assert not template_hint(QubeClass.APP)
