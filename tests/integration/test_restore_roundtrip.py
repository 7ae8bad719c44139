"""CI tier: backup -> restore round trips (fake Qubes, fake `wyng` as a real subprocess)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.conftest import FakeWyngFactory
from tests.integration.restore_world import QUBES, WITH_DATA, RestoreWorld, make_restore_world, pv
from wyngq.errors import ExitCode
from wyngq.restore.model import GUARD_TAG, Action, ConflictPolicy


@pytest.fixture
def world(tmp_path: Path, fake_wyng: FakeWyngFactory) -> RestoreWorld:
    return make_restore_world(tmp_path, fake_wyng)


def test_deleted_qubes_come_back_equal(world: RestoreWorld) -> None:
    before = world.state()
    world.backup()
    for name in reversed(QUBES):
        world.remove(name)

    result = world.restore(*QUBES)

    assert result.exit_code is ExitCode.OK, result.qubes
    assert [q.action for q in result.qubes] == [Action.CREATE] * len(QUBES)
    assert world.state() == before
    assert not any(GUARD_TAG in q.tags for q in world.qubes.domains.values())


def test_restore_over_changed_qubes_puts_everything_back_and_keeps_the_old_data(world: RestoreWorld) -> None:
    before = world.state()
    world.backup()
    work = world.qubes.domains["work"]
    changed = os.urandom(1234)
    world.qubes.write_volume("work", "private", changed)
    work.label, work.notes = "red", "changed"
    work.properties["memory"] = pv("int", "300")
    work.properties["vcpus"] = pv("int", "4")
    work.features["extra"] = "1"
    work.tags.add("new-tag")
    work.firewall = ["action=drop"]
    work.devices = []
    world.qubes.domains["sys-fw"].properties["netvm"] = pv("vm", "")

    result = world.restore("work", "sys-fw", on_conflict=ConflictPolicy.REPLACE)

    assert result.exit_code is ExitCode.OK, result.qubes
    assert world.state() == before
    outcome = next(q for q in result.qubes if q.target == "work")
    assert outcome.revisions == ("work:private",)
    world.qubes.revert("work", "private")
    assert world.qubes.read_volume("work", "private") == changed


def test_rename_leaves_the_original_untouched_and_the_copy_equal(world: RestoreWorld) -> None:
    before = world.state()
    world.backup()
    world.qubes.write_volume("work", "private", b"newer data")
    work_now = world.state(("work",))

    result = world.restore("work", on_conflict=ConflictPolicy.RENAME)

    assert result.exit_code is ExitCode.OK
    assert [(q.action, q.target) for q in result.qubes] == [(Action.RENAME, "work-restored")]
    assert world.state(("work",)) == work_now
    copy_settings, copy_data = world.state(("work-restored",))["work-restored"]
    orig_settings, orig_data = before["work"]
    assert copy_data == orig_data
    assert copy_settings.properties == orig_settings.properties  # netvm still the original sys-fw
    assert (copy_settings.features, copy_settings.tags, copy_settings.firewall, copy_settings.notes,
            copy_settings.devices) == (orig_settings.features, orig_settings.tags, orig_settings.firewall,
                                       orig_settings.notes, orig_settings.devices)


def test_an_older_session(world: RestoreWorld) -> None:
    first_state = world.state(("work",))
    first = world.backup()
    time.sleep(1.1)  # Wyng session ids have one-second resolution
    world.qubes.write_volume("work", "private", b"second")
    world.qubes.domains["work"].notes = "second"
    second = world.backup()
    assert second > first

    result = world.restore("work", session=first, on_conflict=ConflictPolicy.REPLACE)

    assert result.session == first and result.exit_code is ExitCode.OK
    assert world.state(("work",)) == first_state


def test_dry_run_changes_nothing(world: RestoreWorld) -> None:
    world.backup()
    world.qubes.write_volume("work", "private", b"changed")
    world.qubes.domains["work"].notes = "changed"
    world.remove("vault")
    before = world.state(tuple(n for n in QUBES if n != "vault"))
    calls = len(world.qubes.calls)

    result = world.restore(*WITH_DATA, on_conflict=ConflictPolicy.REPLACE, dry_run=True)

    assert result.exit_code is ExitCode.OK and result.dry_run and not result.qubes
    assert not [c for c in world.qubes.calls[calls:] if c[0] == "write"]
    assert world.state(tuple(n for n in QUBES if n != "vault")) == before
    assert "vault" not in world.qubes.domains
    receives = [c for c in world.factory.calls() if "receive" in c["argv"] and not any(  # type: ignore[operator]
        str(a).startswith("--save-to") for a in c["argv"])]  # type: ignore[union-attr]
    assert receives == []
    assert {q.target: q.action for q in result.plan.qubes}["vault"] is Action.CREATE


def test_conflicts_are_refused_without_changing_anything(world: RestoreWorld) -> None:
    world.backup()
    calls = len(world.qubes.calls)
    result = world.restore("work")
    assert result.exit_code is ExitCode.QUBES and result.refused
    assert not [c for c in world.qubes.calls[calls:] if c[0] == "write"]


def test_running_qube_is_refused_then_shut_down_gracefully(world: RestoreWorld) -> None:
    world.backup()
    world.qubes.start("work")
    refused = world.restore("sys-fw", on_conflict=ConflictPolicy.REPLACE)
    assert refused.refused and world.qubes.domains["work"].running

    done = world.restore("sys-fw", on_conflict=ConflictPolicy.REPLACE, shutdown=True)

    assert done.exit_code is ExitCode.OK, done.qubes
    assert not any(world.qubes.domains[n].running for n in ("work", "sys-fw"))
    assert world.qubes.domains["sys-net"].running  # sys-fw's netvm need not stop
    assert ("write", "shutdown", "work") in world.qubes.calls


def test_one_receive_for_all_data(world: RestoreWorld) -> None:
    world.backup()
    for name in reversed(QUBES):
        world.remove(name)
    world.restore(*QUBES)
    receives = [c for c in world.factory.calls() if c["argv"][-1] == "receive"]  # type: ignore[index]
    assert len(receives) == 1


UPSTREAM_XML = """<?xml version='1.0' encoding='utf-8'?>
<qubes>
  <labels><label id="label-6" color="0x3465a4">blue</label></labels>
  <domains>
    <domain id="domain-5" class="AppVM">
      <properties><property name="label">blue</property><property name="name">work</property>
        <property name="qid">5</property><property name="template">fedora</property>
        <property name="netvm">sys-fw</property><property name="memory">800</property></properties>
      <features><feature name="service.crond">1</feature></features>
      <tags><tag name="project-x"/><tag name="created-by-dom0"/></tags>
      <devices class="block">
        <device backend-domain="sys-net" id="sda" mode="auto-attach" identity="0781:5581">
          <option name="read-only">yes</option></device>
      </devices>
      <volume-config><volume name="private" pool="varlibqubes" vid="appvms/work/private" size="60000"/>
      </volume-config>
    </domain>
  </domains>
</qubes>
"""
UPSTREAM_FIREWALL = """<firewall version="2"><rules>
<rule><properties><property name="action">accept</property><property name="dsthost">example.org</property>
</properties></rule><rule><properties><property name="action">drop</property></properties></rule>
</rules></firewall>"""


def test_restore_from_an_upstream_bundle_keeps_43_device_modes(world: RestoreWorld, tmp_path: Path) -> None:
    """An archive written by upstream wyng-util-qubes: qubes.xml, no manifest."""
    import json

    from wyngq.bundle import write_bundle

    bundle = tmp_path / "upstream.tgz"
    write_bundle(str(bundle), {"qubes.xml": UPSTREAM_XML.encode(), "appvms/work/firewall.xml":
                               UPSTREAM_FIREWALL.encode(), "appvms/work/notes.txt": b"from upstream"}, b"{}")
    _drop_manifest(bundle)
    data = world.qubes.read_volume("work", "private")
    volumes = tmp_path / "volumes.json"
    volumes.write_text(json.dumps({world.qubes.pools()["varlibqubes"].wyng_path: [["appvms/work/private.img", None]]}))
    world.wyng().send(local_from=str(volumes), metadata_file=str(bundle), tags=("qubes",))
    world.remove("work")

    result = world.restore("work")

    assert result.exit_code is ExitCode.OK, (result.plan.problems, result.qubes)
    assert result.plan.settings_source == "qubes.xml"
    work = world.qubes.settings("work")
    assert work.devices[0].mode == "auto-attach" and work.devices[0].device_id == "0781:5581"
    assert work.firewall == ("action=accept dsthost=example.org", "action=drop")
    assert work.notes == "from upstream"
    assert (work.label, work.template, work.properties["netvm"].value, work.properties["memory"].value) == (
        "blue", "fedora", "sys-fw", "800")
    assert "qid" not in work.properties
    assert world.qubes.read_volume("work", "private") == data

    from wyngq.listing import ListRequest, list_archive

    listed = list_archive(world.wyng(), ListRequest(session=result.session), world.workdir)
    assert listed.settings_source == "qubes.xml"
    assert {q.name: q.klass for q in listed.session_qubes}["work"] == "AppVM"


def _drop_manifest(path: Path) -> None:
    import io
    import tarfile

    with tarfile.open(path, "r:gz") as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar if m.isfile() and not m.name.endswith("wyngq.json")]  # type: ignore[union-attr]
    with tarfile.open(path, "w:gz") as tar:
        for member, content in members:
            tar.addfile(member, io.BytesIO(content))


def test_force_kills_a_qube_that_does_not_shut_down(world: RestoreWorld) -> None:
    world.backup()
    world.qubes.start("work")
    world.qubes.fail("shutdown", "work", message="Domain shutdown timed out")

    stuck = world.restore("work", on_conflict=ConflictPolicy.REPLACE, shutdown=True)
    assert stuck.exit_code is ExitCode.PARTIAL and stuck.qubes[0].failed_step == "shutdown"
    assert world.qubes.domains["work"].running

    forced = world.restore("work", on_conflict=ConflictPolicy.REPLACE, force=True)
    assert forced.exit_code is ExitCode.OK, forced.qubes
    assert ("write", "kill", "work") in world.qubes.calls
    assert any("killed" in w for w in forced.warnings)
