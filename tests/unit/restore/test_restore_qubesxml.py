"""wyngq.restore.qubesxml: upstream bundles, read without qubesadmin, 4.3 device modes kept."""

from __future__ import annotations

import pytest

from wyngq.model import DeviceAssignment, PropertyValue, QubeClass
from wyngq.restore.ops import normal_rules
from wyngq.restore.qubesxml import QubesXmlError, read_domains, read_firewall, read_qubes_xml

QUBES_XML = b"""<?xml version='1.0' encoding='UTF-8'?>
<qubes>
  <labels>
    <label id="label-1" color="0xcc0000">red</label>
    <label id="label-8" color="0x000000">black</label>
  </labels>
  <properties><property name="default_netvm">sys-fw</property></properties>
  <domains>
    <domain id="domain-0" class="AdminVM"><properties><property name="label">black</property></properties>
      <features/><tags/></domain>
    <domain id="domain-1" class="TemplateVM">
      <properties><property name="label">label-8</property><property name="name">fedora</property>
        <property name="qid">1</property><property name="uuid">u-1</property></properties>
      <features><feature name="os">Linux</feature></features><tags><tag name="created-by-dom0"/></tags>
      <volume-config>
        <volume name="root" pool="varlibqubes" vid="vm-templates/fedora/root" revisions_to_keep="1" size="10737418240"/>
        <volume name="private" pool="varlibqubes" vid="vm-templates/fedora/private" size="2147483648"/>
        <volume name="kernel" pool="linux-kernel" vid="6.12"/>
      </volume-config>
    </domain>
    <domain id="domain-2" class="AppVM">
      <properties><property name="label">red</property><property name="name">work</property>
        <property name="template">fedora</property><property name="netvm">sys-fw</property>
        <property name="memory">800</property><property name="default_dispvm"></property></properties>
      <features><feature name="service.crond">1</feature><feature name="empty"/></features>
      <tags><tag name="project-x"/></tags>
      <devices class="block">
        <device backend-domain="sys-usb" id="sda" mode="auto-attach" identity="0781:5581:SanDisk">
          <option name="read-only">yes</option></device>
      </devices>
      <devices class="pci">
        <device backend-domain="dom0" id="00_1f.3" mode="required" identity="*"/>
      </devices>
      <devices class="usb">
        <device backend-domain="sys-usb" id="2-1" required="no"/>
      </devices>
    </domain>
    <domain id="domain-3" class="RemoteVM"><properties><property name="name">far</property></properties></domain>
  </domains>
</qubes>
"""

FIREWALL = b"""<firewall version="2"><rules>
<rule><properties><property name="action">accept</property><property name="dsthost">1.1.1.1/32</property>
<property name="proto">tcp</property><property name="dstports">443-443</property>
<property name="comment">the dns, mostly</property></properties></rule>
<rule><properties><property name="action">drop</property></properties></rule>
</rules></firewall>"""


def test_reads_qubes_with_43_device_modes_identity_firewall_and_notes() -> None:
    qubes = read_qubes_xml(QUBES_XML, {"appvms/work/firewall.xml": FIREWALL, "appvms/work/notes.txt": b"n\xe2\x9c\x93"})
    assert sorted(qubes) == ["fedora", "work"]
    fedora, work = qubes["fedora"], qubes["work"]
    assert (fedora.klass, fedora.label, fedora.template) == (QubeClass.TEMPLATE, "black", None)
    assert fedora.properties == {"qid": PropertyValue("", "1"), "uuid": PropertyValue("", "u-1")}
    assert [(v.kind, v.size, v.revisions_to_keep) for v in fedora.volumes] == [
        ("root", 10737418240, 1), ("private", 2147483648, None)]
    assert (work.template, work.label, work.notes) == ("fedora", "red", "n✓")
    assert work.properties["netvm"] == PropertyValue("vm", "sys-fw")
    assert work.properties["default_dispvm"] == PropertyValue("vm", "")
    assert work.features == {"service.crond": "1", "empty": ""}
    assert work.devices == (
        DeviceAssignment("block", "sys-usb", "sda", "0781:5581:SanDisk", "auto-attach", (("read-only", "yes"),)),
        DeviceAssignment("pci", "dom0", "00_1f.3", None, "required"),
        DeviceAssignment("usb", "sys-usb", "2-1", None, "auto-attach"),
    )
    assert work.firewall == ("action=accept proto=tcp dsthost=1.1.1.1/32 dstports=443-443 comment=the dns, mostly",
                             "action=drop")


def test_firewall_v1_is_not_restored() -> None:
    assert read_firewall(b'<QubesFirewallRules policy="allow" dns="allow"/>', "x") is None


@pytest.mark.parametrize("bad", [
    b'<!DOCTYPE x [<!ENTITY a "aaaa">]><qubes/>',
    b"<qubes><domains><domain class='AppVM'><properties><property name='name'>-rm</property>"
    b"</properties></domain></domains></qubes>",
    b"<qubes><domains><domain class='AppVM'><properties><property name='name'>ok</property>"
    b"<property name='netvm'>../x</property></properties></domain></domains></qubes>",
    b"<qubes><domains><domain class='AppVM'><properties><property name='name'>ok</property></properties>"
    b"<tags><tag name='a b'/></tags></domain></domains></qubes>",
    b"<qubes><domains><domain class='AppVM'><properties><property name='name'>ok</property></properties>"
    b"<devices class='usb'><device backend-domain='x' id='1' mode='sometimes'/></devices></domain></domains></qubes>",
    b"<qubes><domains>",
])
def test_malformed_input_is_refused(bad: bytes) -> None:
    with pytest.raises(QubesXmlError):
        read_qubes_xml(bad, {})


@pytest.mark.parametrize("bad", [
    b'<firewall version="2"><rules><rule><properties><property name="dsthost">1.1.1.1</property>'
    b"</properties></rule></rules></firewall>",
    b'<firewall version="2"><rules><rule><properties><property name="action">accept</property>'
    b'<property name="evil">1</property></properties></rule></rules></firewall>',
    b'<firewall version="2"><rules><rule><properties><property name="action">accept</property>'
    b'<property name="comment">a\nb</property></properties></rule></rules></firewall>',
])
def test_malformed_firewall_is_refused(bad: bytes) -> None:
    with pytest.raises(QubesXmlError):
        read_firewall(bad, "x")


def test_a_comment_qubesd_would_refuse_is_made_safe_not_dropped() -> None:
    xml = ('<firewall version="2"><rules><rule><properties><property name="action">accept</property>'
           '<property name="comment">café ✓ (ok!) "q"</property></properties></rule></rules></firewall>')
    assert read_firewall(xml.encode(), "x") == ("action=accept comment=caf_ _ _ok__ _q_",)


def test_rule_spellings_compare_equal() -> None:
    ours = ("action=accept proto=tcp dsthost=1.1.1.1/32 dstports=443-443", "action=drop")
    qubesd = ("action=accept dst4=1.1.1.1/32 proto=tcp dstports=443-443", "action=drop")
    assert normal_rules(ours) == normal_rules(qubesd)
    assert normal_rules(("action=accept dsthost=example.org proto=udp dstports=53",)) == normal_rules(
        ("action=accept dstname=example.org proto=udp dstports=53-53",))
    assert normal_rules(("action=accept comment=a b",)) != normal_rules(("action=accept comment=a c",))


def test_a_dtd_in_another_encoding_is_refused_too() -> None:
    from wyngq.restore.qubesxml import QubesXmlError, read_qubes_xml

    text = ('<?xml version="1.0" encoding="UTF-16"?>\n<!DOCTYPE q [<!ENTITY a "aaaa">]>\n'
            "<qubes><domains/></qubes>")
    with pytest.raises(QubesXmlError, match=r"DTD|not in UTF-8"):
        read_qubes_xml(text.encode("utf-16"), {})


def test_qubes_of_a_class_wyngq_does_not_restore_are_named_apart() -> None:
    qubes, unsupported = read_domains(QUBES_XML, {})
    assert "far" not in qubes and unsupported == {"far": "RemoteVM"}
    odd = QUBES_XML.replace(b'class="RemoteVM"', b'class="Remote VM/.."')
    assert read_domains(odd, {})[1] == {"far": "unknown"}
