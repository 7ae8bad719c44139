"""Settings that give power, and what reaches beyond the restore (restore.trust)."""

from __future__ import annotations

import pytest

from tests.unit.restore.restore_builders import chain, live_from, plan, problems, qube, session
from wyngq.model import DeviceAssignment
from wyngq.restore import trust
from wyngq.restore.model import ConflictPolicy, Op, StepKind

PCI = DeviceAssignment("pci", "dom0", "00_14.0", None, "required")
USB = DeviceAssignment("usb", "sys-usb", "2-1", None, "auto-attach")


@pytest.mark.parametrize(("kind", "op"), [
    (StepKind.REFERENCES, Op("set", "guivm", "sys-gui")),
    (StepKind.REFERENCES, Op("set", "audiovm", "sys-audio")),
    (StepKind.REFERENCES, Op("set", "management_dispvm", "evil-dvm")),
    (StepKind.REFERENCES, Op("set", "default_dispvm", "evil-dvm")),
    (StepKind.REFERENCES, Op("set", "netvm", "sys-net")),
    (StepKind.PROPERTIES, Op("set", "kernel", "")),
    (StepKind.PROPERTIES, Op("set", "kernelopts", "iommu=off")),
    (StepKind.PROPERTIES, Op("set", "virt_mode", "pv", "pvh")),
    (StepKind.CAPABILITIES, Op("set", "provides_network", "True")),
    (StepKind.CAPABILITIES, Op("set", "template_for_dispvms", "True")),
    (StepKind.FEATURES, Op("set", "internal", "1")),
    (StepKind.FEATURES, Op("set", "service.guivm", "1")),
    (StepKind.FEATURES, Op("set", "gui-allow-fullscreen", "1")),
    (StepKind.FEATURES, Op("set", "qemu-extra-args", "-foo")),
    (StepKind.FEATURES, Op("set", "tag-created-vm-with", "policy-admin")),
    (StepKind.FEATURES, Op("set", "boot-mode.kernelopts.x", "init=/bin/sh")),
    (StepKind.TAGS, Op("add", "anything", "anything")),
    (StepKind.DEVICES, Op("assign", "pci:dom0:00_14.0", "dom0:00_14.0", device=PCI)),
    (StepKind.DEVICES, Op("assign", "usb:sys-usb:2-1", "sys-usb:2-1", device=USB)),
])
def test_changes_that_give_power(kind: StepKind, op: Op) -> None:
    assert trust.power(kind, op)


@pytest.mark.parametrize(("kind", "op"), [
    (StepKind.PROPERTIES, Op("set", "memory", "800")),
    (StepKind.PROPERTIES, Op("set", "label", "red")),
    (StepKind.REFERENCES, Op("set", "netvm", "")),
    (StepKind.REFERENCES, Op("set", "guivm", "dom0")),
    (StepKind.REFERENCES, Op("set", "audiovm", "dom0")),
    (StepKind.REFERENCES, Op("set", "default_dispvm", "")),
    (StepKind.REFERENCES, Op("reset", "guivm", None, "sys-gui")),  # taking power away
    (StepKind.PROPERTIES, Op("reset", "kernelopts", None, "nosmt")),
    (StepKind.CAPABILITIES_OFF, Op("set", "provides_network", "False", "True")),
    (StepKind.FEATURES, Op("set", "menu-items", "a.desktop")),
    (StepKind.FEATURES, Op("set", "os-distribution", "fedora")),
    (StepKind.FEATURES, Op("remove", "internal", None, "1")),
    (StepKind.TAGS, Op("remove", "policy-admin", None, "policy-admin")),
    (StepKind.DEVICES, Op("unassign", "pci:dom0:00_14.0", None, "dom0:00_14.0", device=PCI)),
    (StepKind.FIREWALL, Op("set", "rules", "action=accept")),
    (StepKind.NOTES, Op("set", "notes", "x")),
])
def test_changes_that_give_none(kind: StepKind, op: Op) -> None:
    assert trust.power(kind, op) is None


def test_what_reaches_beyond_the_restored_qubes() -> None:
    restored = {"work", "sys-usb"}
    assert trust.reach(StepKind.DEVICES, Op("assign", "k", "v", device=PCI), restored) == "a device of dom0"
    assert trust.reach(StepKind.DEVICES, Op("assign", "k", "v", device=USB), restored) is None
    assert "sys-usb" in (trust.reach(StepKind.DEVICES, Op("assign", "k", "v", device=USB), {"work"}) or "")
    assert trust.reach(StepKind.REFERENCES, Op("set", "guivm", "sys-gui"), restored)
    assert trust.reach(StepKind.REFERENCES, Op("set", "guivm", "sys-usb"), restored) is None
    assert trust.reach(StepKind.REFERENCES, Op("set", "guivm", "dom0"), restored) is None
    assert trust.reach(StepKind.REFERENCES, Op("set", "template", "fedora"), restored) is None
    assert trust.reach(StepKind.REFERENCES, Op("set", "netvm", ""), restored) is None
    assert trust.reach(StepKind.REFERENCES, Op("reset", "guivm", None, "sys-gui"), restored) is None


def test_review_refuses_unless_trusted_and_lists_old_and_new() -> None:
    ops = {StepKind.REFERENCES: (Op("set", "guivm", "sys-gui", "dom0"),),
           StepKind.PROPERTIES: (Op("set", "memory", "8"),)}

    (refused,) = trust.review(ops, {"work"}, authenticated=False, trusted=False)
    assert refused.code == trust.UNTRUSTED and refused.blocking
    assert (refused.setting, refused.old, refused.new) == ("property:guivm", "dom0", "sys-gui")
    assert "property guivm 'dom0' -> 'sys-gui'" in refused.message and "does not restore" in refused.message

    (allowed,) = trust.review(ops, {"work"}, authenticated=False, trusted=True)
    assert allowed.code == trust.UNTRUSTED and not allowed.blocking and "--trust-archive-settings" in allowed.resolution

    (beyond,) = trust.review(ops, {"work"}, authenticated=True, trusted=False)
    assert beyond.code == trust.REACHES and not beyond.blocking


def test_an_unauthenticated_session_blocks_each_powerful_change_of_the_plan() -> None:
    odd = qube("odd", guivm="sys-gui", kernelopts="nosmt=off", tags=["policy-admin"],
               features={"service.guivm": "1", "menu-items": "a"}, devices=(PCI,))
    backup = [chain()[0], odd]
    result = plan(session(backup, authenticated=False), live_from([chain()[0], qube("sys-gui")]), qubes=("odd",))
    found = {p.setting: p.blocking for q in result.qubes for p in q.problems if p.code == trust.UNTRUSTED}
    assert found == {"property:guivm": True, "property:kernelopts": True, "tag:policy-admin": True,
                     "feature:service.guivm": True, "device:pci:dom0:00_14.0": True}
    assert result.blocking

    trusted = plan(session(backup, authenticated=False), live_from([chain()[0], qube("sys-gui")]), qubes=("odd",),
                   trust_archive_settings=True)
    assert not trusted.blocking
    assert problems(trusted, "odd") == {trust.UNTRUSTED: False}


def test_a_replaced_qube_that_already_has_the_settings_gets_nothing_new() -> None:
    odd = qube("odd", guivm="sys-gui", tags=["policy-admin"], devices=(PCI,))
    here = [chain()[0], qube("sys-gui"), odd]
    result = plan(session([chain()[0], odd], authenticated=False), live_from(here), qubes=("odd",),
                  on_conflict=ConflictPolicy.REPLACE)
    assert not result.blocking
    assert problems(result, "odd") == {}  # no change: nothing to refuse, nothing new that reaches beyond
