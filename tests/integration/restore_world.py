"""A realistic fake dom0 for restore round trips: template, disposable template
and a named disposable, a netvm chain with provides_network, app qubes with
firewall rules, features, tags, notes, a device assignment, non-default
properties, a standalone in a second pool. Backed up and restored by the
engine itself, through real subprocesses of the fake `wyng`."""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import FakeWyngFactory
from tests.fakes.qubes import FakeQubes
from tests.integration.helpers import Recorder
from wyngq.backup import BackupRequest, run_backup
from wyngq.model import DeviceAssignment, PropertyValue, QubeClass, QubeSettings
from wyngq.restore import trust
from wyngq.restore.model import RestoreRequest
from wyngq.restore.run import RestoreResult, run_restore
from wyngq.wyng.commands import InitOptions, WyngTarget
from wyngq.wyng.known import KnownArchives
from wyngq.wyng.runner import Wyng

QUBES = ("fedora", "dvm", "sys-net", "sys-fw", "work", "vault", "disp1")
WITH_DATA = ("fedora", "dvm", "sys-net", "sys-fw", "work", "vault")
MANAGED = ("created-by-", "audiovm-", "guivm-")


def pv(kind: str, value: str) -> PropertyValue:
    return PropertyValue(kind, value)


@dataclass
class RestoreWorld:
    qubes: FakeQubes
    dest: str
    executable: str
    workdir: str
    factory: FakeWyngFactory
    known: KnownArchives | None = None  # the archive records (and manifest copies) backups keep

    def wyng(self, **env: str) -> Wyng:
        executable = self.factory(f"wyng-{len(env)}-{abs(hash(tuple(env.items())))}", **env) if env else \
            self.executable
        return Wyng(WyngTarget(executable=executable, dest=self.dest))

    def backup(self, *names: str) -> str:
        result = run_backup(self.qubes, self.wyng(), BackupRequest(qubes=names or QUBES), Recorder(), self.workdir,
                            known_archives=self.known)
        assert result.session is not None and all(q.ok for q in result.qubes), result
        return result.session

    def restore(self, *names: str, env: dict[str, str] | None = None, **options: object) -> RestoreResult:
        """Restore through the engine. The archive is unencrypted, so its settings are
        trusted explicitly unless a test says otherwise (trust_archive_settings=False)."""
        options.setdefault("trust_archive_settings", True)
        request = RestoreRequest(qubes=names, **options)  # type: ignore[arg-type]
        return run_restore(self.qubes, self.wyng(**(env or {})), request, Recorder(), self.workdir)

    def without_power(self, *names: str) -> None:
        """Take from these qubes every setting that gives power (restore.trust), so
        they come back from this unencrypted archive without --trust-archive-settings."""
        for name in names:
            qube = self.qubes.domains[name]
            qube.tags = {t for t in qube.tags if t.startswith(MANAGED)}
            qube.devices = []
            qube.features = {k: v for k, v in qube.features.items() if trust.feature_power(k) is None}
            qube.properties = {k: v for k, v in qube.properties.items() if k not in trust.PROPERTIES}

    def remove(self, name: str) -> None:
        """`qvm-remove`: the qube and its volume files go."""
        qube = self.qubes.domains.pop(name)
        for kind in qube.volumes:
            pool_dir = self.qubes.pools()[qube.volumes[kind].pool].wyng_path
            assert pool_dir is not None
            shutil.rmtree(os.path.join(pool_dir, os.path.dirname(qube.volumes[kind].vid)), ignore_errors=True)

    def state(self, names: tuple[str, ...] = QUBES) -> dict[str, tuple[QubeSettings, dict[str, str]]]:
        """Every setting (without qubesd's own tags) and the sha256 of every volume."""
        result = {}
        for name in names:
            s = self.qubes.settings(name)
            s = QubeSettings(s.name, s.klass, s.label, s.template, s.properties, s.features,
                             tuple(t for t in s.tags if not t.startswith(MANAGED)), s.firewall, s.notes, s.devices,
                             s.volumes)
            data = {k: hashlib.sha256(self.qubes.read_volume(name, k)).hexdigest()
                    for k in self.qubes.domains[name].volumes}
            result[name] = (s, data)
        return result


def make_restore_world(tmp_path: Path, fake_wyng: FakeWyngFactory) -> RestoreWorld:
    pools = {"varlibqubes": tmp_path / "pool-main", "pool2": tmp_path / "pool-2"}
    for path in pools.values():
        path.mkdir()
    qubes = FakeQubes({name: str(path) for name, path in pools.items()})
    rnd = os.urandom
    qubes.add("fedora", QubeClass.TEMPLATE, data={"root": rnd(40_000), "private": rnd(3000)}, label="black")
    qubes.add("dvm", QubeClass.APP, data={"private": rnd(5000)}, template="fedora", label="gray",
              properties={"template_for_dispvms": pv("bool", "True")})
    qubes.add("sys-net", QubeClass.APP, data={"private": rnd(4000)}, template="fedora", label="red",
              properties={"provides_network": pv("bool", "True"), "netvm": pv("vm", "")},
              features={"servicevm": "1"})
    qubes.add("sys-fw", QubeClass.APP, data={"private": rnd(4000)}, template="fedora", label="green",
              properties={"provides_network": pv("bool", "True"), "netvm": pv("vm", "sys-net")},
              features={"servicevm": "1"}, firewall=["action=accept"], notes="the firewall")
    qubes.add("work", QubeClass.APP, data={"private": rnd(60_000)}, template="fedora", label="blue",
              properties={"netvm": pv("vm", "sys-fw"), "default_dispvm": pv("vm", "dvm"), "memory": pv("int", "800"),
                          "kernel": pv("str", "")},
              features={"service.crond": "1", "menu-items": "a.desktop b.desktop"}, tags={"project-x", "daily"},
              firewall=["action=accept dsthost=example.org", "action=accept proto=tcp dstports=443-443",
                        "action=drop"],
              notes="work notes ✓\nsecond line",
              devices=[DeviceAssignment("block", "sys-net", "sda", "0781:5581", "auto-attach",
                                        (("read-only", "yes"),))])
    qubes.add("vault", QubeClass.STANDALONE, pool="pool2", data={"root": rnd(20_000), "private": rnd(7000)},
              label="black", properties={"netvm": pv("vm", "")})
    qubes.add("disp1", QubeClass.DISP, template="dvm", label="red",
              properties={"auto_cleanup": pv("bool", "False"), "netvm": pv("vm", "sys-fw")})
    for name in QUBES:
        qubes.domains[name].tags |= {"created-by-dom0", "audiovm-dom0", "guivm-dom0"}
    workdir = tmp_path / "work"
    workdir.mkdir()
    (tmp_path / "archive.wyng").mkdir()
    world = RestoreWorld(qubes, f"file:{tmp_path / 'archive.wyng'}", fake_wyng(), str(workdir), fake_wyng)
    world.wyng().arch_init(InitOptions(encrypt=False))
    return world
