"""A fake dom0 for the qrexec service: the restore world's qubes and archive,
a management qube `mgmt`, a profile with [rpc] rules, and the service run
in-process through `serve()` (stdin/stdout as bytes, a fake Qubes, the fake
`wyng` as real subprocesses, every path under tmp_path)."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from tests.conftest import FakeWyngFactory
from tests.integration.restore_world import RestoreWorld, make_restore_world
from wyngq.model import QubeClass
from wyngq.rpc.jobs import JobRecord, JobStore
from wyngq.rpc.service import Config, serve

ALL_ACTIONS = '["list", "backup", "restore", "verify", "prune", "status"]'

PROFILE = """\
dest = "{dest}"
wyng = "{wyng}"

[qubes]
include = ["fedora", "dvm", "sys-net", "sys-fw", "work", "vault", "disp1"]
exclude = ["untrusted"]

[rpc]
allow_unauthenticated_restore = true

[[rpc.allow]]
callers = ["mgmt"]
actions = {actions}
on_conflict = ["fail", "skip", "replace", "rename"]
shutdown = true
"""


@dataclass
class Reply:
    status: int
    lines: list[dict[str, Any]]

    @property
    def result(self) -> dict[str, Any]:
        assert self.lines and self.lines[-1]["type"] == "result", self.lines
        return self.lines[-1]

    def events(self, kind: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line["type"] == kind]


@dataclass
class RpcWorld:
    dom0: RestoreWorld
    config: Config
    root: Path
    fake_wyng: FakeWyngFactory

    def profile(self, text: str, name: str = "laptop") -> None:
        (Path(self.config.profile_dir) / f"{name}.toml").write_text(text, encoding="utf-8")

    def call(self, action: str, request: dict[str, Any] | bytes, caller: str = "mgmt",
             stdout: BinaryIO | None = None) -> Reply:
        data = request if isinstance(request, bytes) else json.dumps(request).encode()
        out = stdout if stdout is not None else io.BytesIO()
        status = serve(self.config, caller, action, io.BytesIO(data), out, qubes_factory=lambda: self.dom0.qubes)
        text = out.getvalue().decode() if isinstance(out, io.BytesIO) else ""
        return Reply(status, [json.loads(line) for line in text.splitlines()])

    def audit(self) -> list[dict[str, Any]]:
        path = Path(self.config.log_dir) / "audit.log"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def jobs(self, profile: str = "laptop") -> list[JobRecord]:
        return JobStore(self.config.state_dir).jobs(profile)

    def wyng_calls(self) -> list[dict[str, Any]]:
        return self.fake_wyng.calls()


def make_rpc_world(tmp_path: Path, fake_wyng: FakeWyngFactory, actions: str = ALL_ACTIONS) -> RpcWorld:
    dom0 = make_restore_world(tmp_path, fake_wyng)
    dom0.qubes.add("mgmt", QubeClass.APP, data={"private": b"m" * 100}, template="fedora", tags={"wyng-admin"},
                   include_in_backups=False)
    dom0.qubes.add("untrusted", QubeClass.APP, data={"private": b"u" * 100}, template="fedora")
    dom0.qubes.add("personal", QubeClass.APP, data={"private": b"p" * 100}, template="fedora",
                   include_in_backups=False)
    config = Config(
        profile_dir=str(tmp_path / "profiles"),
        log_dir=str(tmp_path / "log"),
        state_dir=str(tmp_path / "state"),
        lock_path=str(tmp_path / "wyngq.lock"),
    )
    Path(config.profile_dir).mkdir()
    world = RpcWorld(dom0, config, tmp_path, fake_wyng)
    world.profile(PROFILE.format(dest=dom0.dest, wyng=dom0.executable, actions=actions))
    # The calls made while building the world are not the service's.
    fake_wyng.log.unlink(missing_ok=True)
    return world
