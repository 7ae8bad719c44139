"""Lab tier: restore against real qubesd, real qubesadmin and real Wyng.

A realistic set (template, disposable template and a named disposable, a
sys-net-like and a sys-firewall-like netvm, app qubes with firewall rules,
features, tags, notes, a device assignment and non-default properties, a
standalone in a second pool) is backed up by the engine, then:
(a) deleted and restored: every setting and every byte equal;
(b) changed and restored over with --on-conflict=replace: equal again, the
    previous data recoverable with a volume revert;
(c) restored beside the original with rename: original untouched, copy equal;
(d) restored from an older session;
(e) failures mid-way (at the Qubes port, and a corrupt archive chunk): exit 8,
    the right tags, nothing lost.
Also: the fake Qubes' rules checked against qubesd, and the cost of keeping
the previous data (scratch + import) measured against an in-place receive.
Run under `flock /tmp/wyngq-wyng.lock` (one Wyng per machine).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.helpers import Recorder
from tests.lab.conftest import SMALL, Lab
from wyngq.backup import BackupRequest, run_backup
from wyngq.errors import ExitCode, QubesError
from wyngq.model import QubeSettings

pytest.importorskip("qubesadmin", reason='needs the wyngq lab: lab up; eval "$(lab env)" (docs/development.md)')
from wyngq.qubes.admin import AdminQubes
from wyngq.restore.model import GUARD_TAG, Action, ConflictPolicy, RestoreRequest
from wyngq.restore.ops import IDENTITY, managed_tag
from wyngq.restore.plan import SCRATCH_PREFIX
from wyngq.restore.run import RestoreResult, run_restore
from wyngq.wyng.commands import InitOptions, WyngTarget
from wyngq.wyng.runner import Wyng

pytestmark = pytest.mark.lab

ORDER = ("tpl", "dvm", "net", "fw", "work", "vault", "disp")  # creation order; removal is the reverse


class Scenario:
    def __init__(self, lab: Lab, tmp_path: Path) -> None:
        self.lab = lab
        self.port = AdminQubes(lab.app)
        self.workdir = str(tmp_path)
        self.target = WyngTarget(lab.wyng, f"file:{lab.archive_dir}/restore.wyng", lab.meta_dir)

    def n(self, short: str) -> str:
        return self.lab.name(short)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.n(s) for s in ORDER)

    def wyng(self) -> Wyng:
        return Wyng(self.target)

    def build(self) -> None:
        lab, n = self.lab, self.n
        tpl = lab.create("tpl", "TemplateVM", label="black")
        lab.fill(tpl, "root", os.urandom(SMALL))
        lab.fill(tpl, "private", os.urandom(SMALL // 4))
        dvm = lab.create("dvm", "AppVM", template=n("tpl"), label="gray")
        dvm.template_for_dispvms = True
        lab.fill(dvm, "private", os.urandom(SMALL // 4))
        net = lab.create("net", "AppVM", template=n("tpl"), label="red")
        net.provides_network = True
        net.netvm = None
        lab.fill(net, "private", os.urandom(SMALL // 4))
        fw = lab.create("fw", "AppVM", template=n("tpl"), label="green")
        fw.provides_network = True
        fw.netvm = n("net")
        lab.fill(fw, "private", os.urandom(SMALL // 4))
        work = lab.create("work", "AppVM", template=n("tpl"), label="blue")
        work.netvm = n("fw")
        work.default_dispvm = n("dvm")
        work.memory = 500
        work.kernel = ""
        work.features["service.crond"] = "1"
        work.features["menu-items"] = "a.desktop b.desktop"
        work.tags.add("project-x")
        from qubesadmin.firewall import Rule

        work.firewall.rules = [Rule("action=accept dsthost=1.1.1.1"), Rule("action=accept proto=tcp dstports=443"),
                               Rule("action=drop")]
        work.set_notes("work notes ✓\nsecond line")
        from qubesadmin.device_protocol import DeviceAssignment, Port, VirtualDevice

        work.devices["block"].assign(DeviceAssignment(VirtualDevice(Port(net, "sdb", "block"), device_id="*"),
                                                      mode="auto-attach", options={"read-only": "yes"}))
        lab.fill(work, "private", os.urandom(SMALL))
        vault = lab.create("vault", "StandaloneVM", label="black", pool=os.environ["WYNGQ_LAB_POOL2"])
        vault.netvm = None
        lab.fill(vault, "root", os.urandom(SMALL // 2))
        lab.fill(vault, "private", os.urandom(SMALL // 4))
        lab.create("disp", "DispVM", template=n("dvm"), label="red")
        Wyng(self.target).arch_init(InitOptions(encrypt=False))

    def backup(self) -> str:
        time.sleep(1.05)  # session ids have one-second resolution
        result = run_backup(self.port, self.wyng(), BackupRequest(qubes=self.names), Recorder(), self.workdir)
        assert result.session and all(q.ok for q in result.qubes), result
        return result.session

    def change_work_data(self) -> tuple[Any, bytes]:
        """Give work's private volume new random data (behind qubesd, as a running qube
        would); return the qube and the data."""
        work = self.lab.app.domains[self.n("work")]
        changed = os.urandom(SMALL // 2)
        self.lab.fill(work, "private", changed)
        return work, changed

    def restore(self, *names: str, port: Any = None, reporter: Recorder | None = None,
                **options: Any) -> RestoreResult:
        options.setdefault("trust_archive_settings", True)  # the archive is unencrypted (restore.trust)
        request = RestoreRequest(qubes=names or self.names, **options)
        result = run_restore(port or self.port, self.wyng(), request, reporter or Recorder(), self.workdir)
        for outcome in result.qubes:
            if outcome.target not in self.lab.made:
                self.lab.made.append(outcome.target)
        return result

    def remove_all(self) -> None:
        self.lab.app.domains.refresh_cache(force=True)
        for name in reversed(self.names):
            del self.lab.app.domains[name]

    def state(self, names: tuple[str, ...] | None = None) -> dict[str, tuple[QubeSettings, dict[str, str]]]:
        """Settings without identity properties and qubesd's own tags; sha256 of each backed-up volume."""
        result = {}
        for name in names or self.names:
            s = self.port.settings(name)
            props = {k: v for k, v in s.properties.items() if k not in IDENTITY}
            # an AppVM's root and a disposable's volumes follow their template: derived, not restored
            kinds = (*s.klass.backed_up_volumes, "volatile")
            s = QubeSettings(s.name, s.klass, s.label, s.template, props, s.features,
                             tuple(t for t in s.tags if not managed_tag(t)), s.firewall, s.notes, s.devices,
                             tuple(v for v in s.volumes if v.kind in kinds))
            result[name] = (s, {kind: self.sha(name, kind) for kind in s.klass.backed_up_volumes})
        return result

    def path(self, name: str, kind: str) -> str:
        vol = self.lab.app.domains[name].volumes[kind]
        return os.path.join(dict(self.lab.app.pools[vol.pool].config)["dir_path"], vol.vid + ".img")

    def sha(self, name: str, kind: str) -> str:
        with open(self.path(name, kind), "rb") as handle:
            return hashlib.sha256(handle.read()).hexdigest()


def assert_same(after: dict[str, Any], before: dict[str, Any]) -> None:
    """Equal states, or a message naming each differing field."""
    differences = []
    for name in sorted(set(after) | set(before)):
        if after.get(name) == before.get(name):
            continue
        if name not in after or name not in before:
            differences.append(f"{name}: only {'after' if name in after else 'before'}")
            continue
        (s1, d1), (s2, d2) = after[name], before[name]
        differences += [f"{name}.{f}: {getattr(s1, f)!r} != {getattr(s2, f)!r}" for f in s1.__dataclass_fields__
                        if getattr(s1, f) != getattr(s2, f)]
        if d1 != d2:
            differences.append(f"{name} data: {d1} != {d2}")
    assert not differences, "\n".join(differences)


@pytest.fixture
def scenario(lab: Lab, tmp_path: Path) -> Iterator[Scenario]:
    built = Scenario(lab, tmp_path)
    built.build()
    yield built


def test_a_deleted_qubes_come_back_equal(scenario: Scenario) -> None:
    before = scenario.state()
    scenario.backup()
    scenario.remove_all()

    result = scenario.restore()

    assert result.exit_code is ExitCode.OK, [(q.target, q.failed_step, q.error) for q in result.qubes]
    assert {q.action for q in result.qubes} == {Action.CREATE}
    assert_same(scenario.state(), before)
    assert not any(GUARD_TAG in scenario.lab.app.domains[n].tags for n in scenario.names)


def test_b_replace_changed_qubes_and_previous_data_is_recoverable(scenario: Scenario) -> None:
    before = scenario.state()
    scenario.backup()
    app, n = scenario.lab.app, scenario.n
    work, changed = scenario.change_work_data()
    work.label = "purple"
    work.memory = 700
    work.vcpus = 1
    work.features["extra"] = "1"
    del work.features["service.crond"]
    work.tags.add("new-tag")
    from qubesadmin.firewall import Rule

    work.firewall.rules = [Rule("action=drop")]
    work.set_notes("changed")
    for assignment in list(work.devices["block"].get_assigned_devices()):
        work.devices["block"].unassign(assignment)
    app.domains[n("fw")].netvm = None
    app.domains[n("dvm")].template_for_dispvms = True
    work.start()  # running, with its netvm chain: --shutdown stops them gracefully

    refused = scenario.restore(on_conflict=ConflictPolicy.REPLACE)
    assert refused.exit_code is ExitCode.QUBES and work.is_running()

    result = scenario.restore(on_conflict=ConflictPolicy.REPLACE, shutdown=True)

    assert result.exit_code is ExitCode.OK, [(q.target, q.failed_step, q.error) for q in result.qubes]
    assert_same(scenario.state(), before)
    outcome = next(q for q in result.qubes if q.target == n("work"))
    assert outcome.revisions == (f"{n('work')}:private",)
    volume = work.volumes["private"]
    volume.revert(volume.revisions[-1])
    assert scenario.sha(n("work"), "private") == hashlib.sha256(changed).hexdigest()


def test_c_rename_leaves_the_original_and_makes_an_equal_copy(scenario: Scenario) -> None:
    before = scenario.state()
    scenario.backup()
    n = scenario.n
    scenario.lab.fill(scenario.lab.app.domains[n("work")], "private", b"newer" * 1000)
    original = scenario.state((n("work"),))

    result = scenario.restore(n("work"), on_conflict=ConflictPolicy.RENAME)

    assert result.exit_code is ExitCode.OK, result.qubes
    copy = f"{n('work')}-restored"
    assert [(q.action, q.target) for q in result.qubes] == [(Action.RENAME, copy)]
    assert scenario.state((n("work"),)) == original
    copy_settings, copy_data = scenario.state((copy,))[copy]
    want_settings, want_data = before[n("work")]
    assert copy_data == want_data
    assert copy_settings.properties == want_settings.properties  # netvm: the original fw, not a copy
    assert (copy_settings.label, copy_settings.template, copy_settings.features, copy_settings.tags,
            copy_settings.firewall, copy_settings.notes, copy_settings.devices) == (
        want_settings.label, want_settings.template, want_settings.features, want_settings.tags,
        want_settings.firewall, want_settings.notes, want_settings.devices)


def test_d_older_session(scenario: Scenario) -> None:
    n = scenario.n
    first_state = scenario.state((n("work"), n("vault")))
    first = scenario.backup()
    scenario.lab.fill(scenario.lab.app.domains[n("work")], "private", b"second" * 5000)
    scenario.lab.app.domains[n("vault")].label = "orange"
    second = scenario.backup()
    assert second > first

    result = scenario.restore(n("work"), n("vault"), session=first, on_conflict=ConflictPolicy.REPLACE)

    assert result.session == first and result.exit_code is ExitCode.OK, result.qubes
    assert scenario.state((n("work"), n("vault"))) == first_state


class FailingNotes(AdminQubes):
    """The real adapter, failing one write: a failure mid-way through a restore."""

    def __init__(self, app: Any, failing: str) -> None:
        super().__init__(app)
        self.failing = failing

    def set_notes(self, name: str, notes: str) -> None:
        if name == self.failing:
            raise QubesError(f"qube {name!r}: injected failure")
        super().set_notes(name, notes)


def test_e_failure_mid_way_exit_8_tags_and_nothing_lost(scenario: Scenario) -> None:
    before = scenario.state()
    scenario.backup()
    app, n = scenario.lab.app, scenario.n
    work, changed = scenario.change_work_data()
    work.set_notes("changed")

    result = scenario.restore(on_conflict=ConflictPolicy.REPLACE, port=FailingNotes(app, n("work")))

    assert result.exit_code is ExitCode.PARTIAL
    outcomes = {q.target: q for q in result.qubes}
    assert (outcomes[n("work")].ok, outcomes[n("work")].failed_step) == (False, "notes")
    assert f"qvm-volume revert {n('work')}:private" in (outcomes[n("work")].hint or "")
    assert all(o.ok for name, o in outcomes.items() if name != n("work"))
    assert GUARD_TAG in work.tags
    with pytest.raises(Exception, match="in progress"):
        work.start()  # qubesd refuses to start a qube being restored
    assert not any(GUARD_TAG in app.domains[name].tags for name in scenario.names if name != n("work"))
    assert scenario.sha(n("work"), "private") == before[n("work")][1]["private"]
    volume = work.volumes["private"]
    volume.revert(volume.revisions[-1])
    assert scenario.sha(n("work"), "private") == hashlib.sha256(changed).hexdigest()


def test_restore_over_a_qube_starts_from_wyngs_snapshot(scenario: Scenario) -> None:
    """The newest session restored over an existing qube: Wyng starts from its own
    snapshot of the volume (lent to the scratch volume) and writes nothing
    ("Snapshot retrieved."); the qube gets the backed-up data, its previous data is
    a revision, and neither the scratch qube nor the lent snapshot is left."""
    scenario.backup()
    n = scenario.n
    backed_up = scenario.sha(n("work"), "private")
    work, changed = scenario.change_work_data()
    recorder = Recorder()

    result = scenario.restore(n("work"), on_conflict=ConflictPolicy.REPLACE, reporter=recorder)

    assert result.exit_code is ExitCode.OK, result.qubes
    assert "Snapshot retrieved." in [str(e["line"]).strip() for e in recorder.of("wyng_output")]
    assert scenario.sha(n("work"), "private") == backed_up
    work.volumes["private"].revert(work.volumes["private"].revisions[-1])
    assert scenario.sha(n("work"), "private") == hashlib.sha256(changed).hexdigest()
    assert_no_scratch_left(scenario)


def test_e_corrupt_archive_chunk_never_touches_the_live_volume(scenario: Scenario) -> None:
    scenario.backup()
    n = scenario.n
    work, current = scenario.change_work_data()
    vid = scenario.wyng().catalog().volumes[f"appvms/{n('work')}/private.img"].vid
    _corrupt_chunks(Path(scenario.lab.archive_dir) / "restore.wyng", vid)

    # Wyng's local snapshot would give back the backed-up data without reading the
    # archive (test_restore_over_a_qube_starts_from_wyngs_snapshot): read the archive
    result = scenario.restore(n("work"), on_conflict=ConflictPolicy.REPLACE, use_snapshot=False)

    assert result.exit_code is ExitCode.PARTIAL
    (outcome,) = result.qubes
    assert (outcome.ok, outcome.failed_step) == (False, "receive")
    assert scenario.sha(n("work"), "private") == hashlib.sha256(current).hexdigest()
    assert GUARD_TAG in work.tags
    assert_no_scratch_left(scenario)


def assert_no_scratch_left(scenario: Scenario) -> None:
    """No scratch qube is left, in qubesd or as files in the pool."""
    scenario.lab.app.domains.refresh_cache(force=True)
    assert not [q.name for q in scenario.lab.app.domains if q.name.startswith(SCRATCH_PREFIX)]
    assert not list(Path(os.environ["WYNGQ_LAB_POOL_DIR"]).glob(f"appvms/{SCRATCH_PREFIX}*"))


def _corrupt_chunks(archive: Path, vid: str) -> None:
    """Flip a byte in every data chunk of one archive volume (Wyng keeps them as
    files `x<hex>` under `<archive>/<vid>/S_<session>/<prefix>/`)."""
    folder = archive / vid if (archive / vid).is_dir() else archive / f"Vol_{vid}"
    chunks = [p for p in folder.glob("S_*/*/x*") if p.is_file()]
    assert chunks, f"no chunk files under {folder}"
    for chunk in chunks:
        data = bytearray(chunk.read_bytes())
        data[len(data) // 2] ^= 0xFF
        chunk.write_bytes(bytes(data))


# -- the fake Qubes' rules, checked against real qubesd -----------------------------------------
class RealSide:
    """The lab through the real adapter, with the two test controls the fake has."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.port = AdminQubes(lab.app)

    def create(self, short: str, klass: str, **kwargs: Any) -> str:
        from wyngq.model import QubeClass

        name = self.lab.name(short)
        self.port.create_qube(name, QubeClass(klass), label=kwargs.get("label", "red"),
                              template=kwargs.get("template"), pool=None, pools={})
        self.lab.made.append(name)
        return name

    def start(self, name: str) -> None:
        try:
            self.lab.app.domains[name].start()
        except Exception as err:  # compared by outcome only
            raise QubesError(str(err)) from err

    def revert(self, name: str, kind: str) -> None:
        volume = self.lab.app.domains[name].volumes[kind]
        volume.revert(volume.revisions[-1])

    def read(self, name: str, kind: str) -> bytes:
        with open(self._path(name, kind), "rb") as f:
            return f.read()

    def write(self, name: str, kind: str, content: bytes) -> None:
        with open(self._path(name, kind), "wb") as f:  # behind qubesd's back, as Wyng writes
            f.write(content)

    def _path(self, name: str, kind: str) -> str:
        vol = self.lab.app.domains[name].volumes[kind]
        return os.path.join(dict(self.lab.app.pools[vol.pool].config)["dir_path"], vol.vid + ".img")


class FakeSide:
    def __init__(self, tmp_path: Path, prefix: str) -> None:
        from tests.fakes.qubes import FakeQubes

        (tmp_path / "pool").mkdir()
        self.port = FakeQubes({"varlibqubes": str(tmp_path / "pool")})
        self.prefix = prefix

    def create(self, short: str, klass: str, **kwargs: Any) -> str:
        from wyngq.model import QubeClass

        name = f"{self.prefix}-{short}"
        self.port.create_qube(name, QubeClass(klass), label=kwargs.get("label", "red"),
                              template=kwargs.get("template"), pool=None, pools={})
        return name

    def start(self, name: str) -> None:
        self.port.start(name)

    def revert(self, name: str, kind: str) -> None:
        self.port.revert(name, kind)

    def read(self, name: str, kind: str) -> bytes:
        return self.port.read_volume(name, kind)

    def write(self, name: str, kind: str, content: bytes) -> None:
        self.port.write_volume(name, kind, content)


def _size(port: Any, name: str, kind: str) -> int:
    return next(v.size for v in port.qube(name).volumes if v.kind == kind)


def _outcomes(side: Any, tmp_path: Path) -> dict[str, object]:
    """Run the same sequence of port calls; record what each did (ok, or refused)."""
    port = side.port
    seen: dict[str, object] = {}

    def attempt(what: str, call: Any) -> None:
        try:
            call()
            seen[what] = "ok"
        except QubesError:
            seen[what] = "refused"

    attempt("unknown label", lambda: side.create("badlabel", "AppVM", label="magenta", template=None))
    tpl = side.create("tpl", "TemplateVM")
    attempt("AppVM on a non-template", lambda: side.create("bad", "AppVM", template=side.create("x", "AppVM",
                                                                                              template=tpl)))
    net = side.create("net", "AppVM", template=tpl)
    app = side.create("app", "AppVM", template=tpl)
    seen["new qube tags"] = sorted(t for t in port.settings(app).tags)
    attempt("netvm without provides_network", lambda: port.set_property(app, "netvm", net))
    port.set_property(net, "provides_network", "True")
    seen["servicevm feature"] = port.settings(net).features.get("servicevm")
    attempt("netvm with provides_network", lambda: port.set_property(app, "netvm", net))
    attempt("default_dispvm not a disposable template", lambda: port.set_property(app, "default_dispvm", net))
    attempt("unknown kernel", lambda: port.set_property(app, "kernel", "nope"))
    attempt("empty firewall", lambda: port.set_firewall(app, []))
    attempt("empty notes", lambda: port.set_notes(app, ""))
    port.add_tag(app, GUARD_TAG)
    attempt("start while tagged", lambda: side.start(app))
    port.remove_tag(app, GUARD_TAG)
    # the restore's data path: Wyng writes a scratch qube's volume file behind qubesd's
    # back, then the Admin API clones it into place
    src = side.create("src", "StandaloneVM")
    side.write(src, "private", b"first" * 1000)
    port.clone_volume(app, "private", src)
    seen["clone takes the source's content and size"] = (
        side.read(app, "private") == b"first" * 1000 and _size(port, app, "private") == 5000)
    side.write(src, "private", b"second" * 1000)
    port.clone_volume(app, "private", src)
    side.revert(app, "private")
    seen["revert brings back the previous clone"] = side.read(app, "private") == b"first" * 1000
    attempt("clone of a volume the source lacks", lambda: port.clone_volume(app, "private", tpl + "-nope"))
    side.write(src, "root", b"from-root" * 1000)  # a scratch qube holds two qubes' data: root and private
    port.clone_volume(app, "private", src, "root")
    seen["clone from another kind of volume"] = (
        side.read(app, "private") == b"from-root" * 1000 and _size(port, app, "private") == 9000)
    side.revert(app, "private")
    seen["one volume read alone"] = (port.volume(app, "private").kind, port.volume(app, "private").size)
    attempt("one volume the qube lacks", lambda: port.volume(app, "nope"))
    side.start(app)
    attempt("template change while running (same value)", lambda: port.set_property(app, "template", tpl))
    attempt("clone into a running qube", lambda: port.clone_volume(app, "private", src))
    attempt("remove the scratch qube", lambda: port.remove_qube(src))
    attempt("shut down a netvm with a running client", lambda: port.shutdown(net))
    attempt("shut down the client", lambda: port.shutdown(app))
    attempt("shut down the netvm", lambda: port.shutdown(net))
    return seen


def test_fake_qubes_behaves_like_qubesd(lab: Lab, tmp_path: Path) -> None:
    real = _outcomes(RealSide(lab), tmp_path)
    fake = _outcomes(FakeSide(tmp_path, lab.prefix), tmp_path)
    assert fake == real
    assert real["netvm without provides_network"] == "refused" and real["servicevm feature"] == "1"


# -- what keeping the previous data costs --------------------------------------------------------
def test_nothing_lost_cost(lab: Lab, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Time a replace-restore of one 64 MiB volume: Wyng's receive (into the
    scratch qube's volume, the same work as an in-place receive) and the Admin
    API clone that keeps the previous data as a revision."""
    from wyngq.events import NullReporter
    from wyngq.restore import apply as apply_module

    scenario = Scenario(lab, tmp_path)
    vm = lab.create("big", "StandaloneVM", label="black")
    lab.fill(vm, "root", os.urandom(1 << 20))
    lab.fill(vm, "private", os.urandom(64 << 20))
    Wyng(scenario.target).arch_init(InitOptions(encrypt=False))
    time.sleep(1.05)
    run_backup(scenario.port, scenario.wyng(), BackupRequest(qubes=(vm.name,)), Recorder(), scenario.workdir)
    lab.fill(vm, "private", os.urandom(64 << 20))

    timings: dict[str, float] = {}
    original = apply_module.data.clone_volume

    def timed_import(qubes: Any, pair: Any) -> None:
        start = time.monotonic()
        original(qubes, pair)
        timings[f"import {pair.kind}"] = time.monotonic() - start

    real_receive = apply_module.data.receive

    def timed_receive(*args: Any, **kwargs: Any) -> Any:
        start = time.monotonic()
        result = real_receive(*args, **kwargs)
        timings["receive"] = time.monotonic() - start
        return result

    apply_module.data.clone_volume = timed_import  # type: ignore[assignment]
    apply_module.data.receive = timed_receive  # type: ignore[assignment]
    try:
        start = time.monotonic()
        result = run_restore(scenario.port, scenario.wyng(), RestoreRequest(
            qubes=(vm.name,), on_conflict=ConflictPolicy.REPLACE), NullReporter(), scenario.workdir)
        timings["whole restore"] = time.monotonic() - start
    finally:
        apply_module.data.clone_volume = original  # type: ignore[assignment]
        apply_module.data.receive = real_receive  # type: ignore[assignment]
    assert result.exit_code is ExitCode.OK
    with capsys.disabled():
        print("\nnothing-lost cost, 64 MiB random private + 1 MiB root:",
              ", ".join(f"{k} {v:.2f} s" for k, v in sorted(timings.items())))
    assert timings["import private"] < 10


def test_f_upstream_bundle_from_real_qubes_xml_keeps_43_device_mode(scenario: Scenario, tmp_path: Path) -> None:
    """A session as upstream wyng-util-qubes writes it: the settings bundle is
    qubesd's own qubes.xml with each qube's firewall.xml and notes.txt, no
    manifest. Restored qubes are equal, the auto-attach block device included
    (qubesadmin's Core3Qubes would make it `required`)."""
    import io
    import json
    import tarfile

    from wyngq.backup import plan_backup

    before = scenario.state()
    port, wyng = scenario.port, scenario.wyng()
    files = port.state_files(scenario.names)
    assert b'mode="auto-attach"' in files["qubes.xml"]
    bundle = tmp_path / "upstream.tgz"
    with tarfile.open(bundle, "w:gz") as tar:
        for name, content in sorted(files.items()):
            info = tarfile.TarInfo("./" + name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    volumes = tmp_path / "volumes.json"
    plan = plan_backup([port.qube(name) for name in scenario.names], port.pools())
    volumes.write_text(json.dumps(plan.local_from()))
    wyng.send(local_from=str(volumes), metadata_file=str(bundle), tags=("qubes",))
    scenario.remove_all()

    result = scenario.restore()

    assert result.plan.settings_source == "qubes.xml"
    assert result.exit_code is ExitCode.OK, [(q.target, q.failed_step, q.error) for q in result.qubes]
    assert_same(scenario.state(), before)
