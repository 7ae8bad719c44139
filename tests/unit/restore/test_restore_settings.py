"""restore.settings: a session's settings as a restore reads them, and verify's check."""

from __future__ import annotations

import pytest

from tests.unit.restore.test_restore_qubesxml import QUBES_XML
from wyngq.bundle import Bundle, BundleError, Manifest
from wyngq.model import QubeClass, QubeSettings
from wyngq.restore.settings import left_out, read_settings, usable

WORK = QubeSettings("work", QubeClass.APP, "blue", "fedora")
MANIFEST = Manifest("2026-01-01T00:00:00Z", "1", "4.2", {"work": WORK}, {"far": "RemoteVM"})


def test_the_manifest_comes_first() -> None:
    read = read_settings(Bundle(MANIFEST, {"qubes.xml": QUBES_XML}))
    assert (dict(read.qubes), read.source, dict(read.unsupported)) == ({"work": WORK}, "manifest", {"far": "RemoteVM"})
    assert left_out(read) == ("qube 'far' is a RemoteVM in the backup: wyng-util-qubes does not restore that class; "
                              "left out",)


def test_qubes_xml_without_a_manifest() -> None:
    read = read_settings(Bundle(None, {"qubes.xml": QUBES_XML}))
    assert read.source == "qubes.xml" and read.unsupported == {"far": "RemoteVM"} and "work" in read.qubes


def test_a_bundle_with_neither_is_damaged() -> None:
    with pytest.raises(BundleError, match=r"neither wyngq\.json nor qubes\.xml"):
        read_settings(Bundle(None, {}))
    assert usable(Bundle(None, {}), ["work"]).startswith("damaged: the session's settings bundle has neither")


@pytest.mark.parametrize(("with_data", "expected"), [
    (["work", "dom0"], "ok"),
    (["work", "vault"], "damaged: the settings (manifest) lack qube(s) with data: vault"),
    (["far"], "unsupported: qube(s) of a class wyngq does not restore: far (RemoteVM)"),
])
def test_usable(with_data: list[str], expected: str) -> None:
    assert usable(Bundle(MANIFEST), with_data) == expected
