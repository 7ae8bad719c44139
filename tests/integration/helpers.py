"""Building blocks for CI-tier round trips: fake Qubes + fake `wyng`, real subprocesses."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tests.conftest import FakeWyngFactory
from tests.fakes.qubes import FakeQubes
from wyngq.contract.serialize import to_json
from wyngq.model import DeviceAssignment, PropertyValue, QubeClass
from wyngq.secret import Secret
from wyngq.wyng.commands import InitOptions, WyngTarget
from wyngq.wyng.runner import Wyng

if TYPE_CHECKING:
    from wyngq.contract.events import Event


class Recorder:
    """A Reporter that keeps every event, for assertions."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def event(self, event: Event, /) -> None:
        self.events.append(event)

    def of(self, type: str) -> list[dict[str, object]]:
        """The events of one JSON type (`wyng_output` too), as their JSON fields."""
        found = []
        for event in self.events:
            if type == event.TYPE:
                document = to_json(event)
                assert isinstance(document, dict)
                found.append(dict(document))
        return found


@dataclass
class World:
    qubes: FakeQubes
    dest: str
    executable: str
    workdir: str
    passphrase: Secret | None

    def wyng(self, executable: str | None = None, passphrase: Secret | None = None) -> Wyng:
        target = WyngTarget(executable=executable or self.executable, dest=self.dest)
        return Wyng(target, passphrase=passphrase if passphrase is not None else self.passphrase)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_world(tmp_path: Path, fake_wyng: FakeWyngFactory, *, encrypted: bool = False) -> World:
    """A fake dom0 with two reflink pools and a realistic set of qubes, and an
    empty archive created through the engine's own `create` path."""
    pools = {"varlibqubes": tmp_path / "pool-main", "pool2": tmp_path / "pool-2"}
    for path in pools.values():
        path.mkdir()
    qubes = FakeQubes({name: str(path) for name, path in pools.items()})
    qubes.add("fedora", QubeClass.TEMPLATE, data={"root": os.urandom(3000) * 7, "private": b"tpl-private" * 100},
              label="black", include_in_backups=False)
    qubes.add("work", QubeClass.APP, data={"private": os.urandom(50_000)}, template="fedora", label="blue",
              properties={"memory": PropertyValue("int", "800"), "netvm": PropertyValue("vm", "")},
              features={"service.crond": "1"}, tags={"project-x"},
              firewall=["action=accept dsthost=example.org", "action=drop"], notes="work notes ✓",
              devices=[DeviceAssignment("block", "sys-usb", "sda", "0781:5581", "auto-attach")])
    qubes.add("vault", QubeClass.STANDALONE, pool="pool2",
              data={"root": b"standalone-root" * 500, "private": b"secret" * 1000}, label="black")
    qubes.add("disp1", QubeClass.DISP, template="fedora", label="red")
    qubes.add("untrusted", QubeClass.APP, data={"private": b"junk" * 10}, template="fedora", include_in_backups=False)
    workdir = tmp_path / "work"
    workdir.mkdir()
    world = World(
        qubes=qubes,
        dest=f"file:{tmp_path / 'archive.wyng'}",
        executable=fake_wyng(),
        workdir=str(workdir),
        passphrase=Secret("correct horse  battery -staple ✓") if encrypted else None,
    )
    (tmp_path / "archive.wyng").mkdir()
    world.wyng().arch_init(InitOptions(encrypt=encrypted))
    return world


def tree_hash(*roots: Path) -> dict[str, str]:
    """Every file and directory under `roots`: path -> sha256 of its bytes (or 'dir').
    Files are hashed as a stream: a lab pool holds sparse volumes of 10 GiB."""
    found: dict[str, str] = {}
    for root in roots:
        for top, dirs, files in os.walk(root):
            for name in dirs:
                found[os.path.join(top, name)] = "dir"
            for name in files:
                path = os.path.join(top, name)
                with open(path, "rb") as handle:
                    found[path] = hashlib.file_digest(handle, "sha256").hexdigest()
    return found
