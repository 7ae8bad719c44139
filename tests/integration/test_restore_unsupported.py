"""CI tier: sessions whose settings name a qube of a class wyngq does not
restore (a RemoteVM), or lack a qube that has data: a clean refusal naming
it, never a crash; `verify` reads the settings as a restore does."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FakeWyngFactory
from tests.integration.helpers import Recorder
from tests.integration.restore_world import RestoreWorld, make_restore_world
from tests.integration.rpc_world import ALL_ACTIONS, PROFILE, make_rpc_world
from wyngq import bundle, maintenance
from wyngq.cli import main
from wyngq.errors import ExitCode, UnsupportedQubeError
from wyngq.restore.model import ConflictPolicy

REMOTE = {"class": "RemoteVM", "label": "red", "properties": {"relayvm": {"type": "vm", "value": "sys-net"}}}


def send_session(world: RestoreWorld, tmp_path: Path, edit: Any, volumes: tuple[str, ...] = ("work",),
                 now: str | None = None) -> str:
    """A session holding these qubes' private volumes and a manifest of the
    world's qubes as `edit` changes it (what someone who can write the archive does)."""
    document = json.loads(bundle.encode_manifest([world.qubes.settings(n) for n in ("fedora", "work")],
                                                 wyngq_version="test", qubes_version="4.2"))
    edit(document["qubes"])
    path = tmp_path / "edited.tgz"
    bundle.write_bundle(str(path), {}, json.dumps(document).encode())
    pool = world.qubes.pools()["varlibqubes"].wyng_path
    local = tmp_path / "volumes.json"
    local.write_text(json.dumps({pool: [[f"appvms/{n}/private.img", None] for n in volumes]}))
    wyng = world.wyng(FAKE_WYNG_NOW=now) if now else world.wyng()
    wyng.send(local_from=str(local), metadata_file=str(path), tags=("qubes",))
    return now or sorted(world.wyng().catalog().sessions())[-1]


@pytest.fixture
def world(tmp_path: Path, fake_wyng: FakeWyngFactory, monkeypatch: pytest.MonkeyPatch) -> RestoreWorld:
    monkeypatch.setenv("WYNGQ_LOCK_PATH", str(tmp_path / "wyngq.lock"))
    return make_restore_world(tmp_path, fake_wyng)


def test_a_remotevm_named_in_a_restore_is_refused_by_name(world: RestoreWorld, tmp_path: Path) -> None:
    send_session(world, tmp_path, lambda qubes: qubes.update(remote1=REMOTE))

    with pytest.raises(UnsupportedQubeError, match=r"remote1 \(RemoteVM\)") as caught:
        world.restore("work", "remote1", on_conflict=ConflictPolicy.SKIP)
    assert caught.value.code == "unsupported_class" and caught.value.exit_code is ExitCode.QUBES


def test_the_cli_answers_with_its_own_code(world: RestoreWorld, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    send_session(world, tmp_path, lambda qubes: qubes.update(remote1=REMOTE))

    status = main(["restore", f"--dest={world.dest}", f"--wyng={world.executable}", "--json", "remote1"],
                  connect=lambda: world.qubes)

    result = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert status == 6 and result["code"] == "unsupported_class" and "remote1 (RemoteVM)" in result["message"]


def test_a_whole_session_restore_leaves_it_out_and_says_so(world: RestoreWorld, tmp_path: Path) -> None:
    session = send_session(world, tmp_path, lambda qubes: qubes.update(remote1=REMOTE))

    done = world.restore(session=session, on_conflict=ConflictPolicy.SKIP)

    assert done.exit_code is ExitCode.OK
    assert [q.source for q in done.plan.qubes] == ["work"]
    assert done.warnings == ("qube 'remote1' is a RemoteVM in the backup: wyng-util-qubes does not restore that "
                             "class; left out",)


def test_an_unknown_class_is_shown_as_a_plain_word(world: RestoreWorld, tmp_path: Path) -> None:
    send_session(world, tmp_path, lambda qubes: qubes["work"].update({"class": "Evil\x1b]0;owned\x07VM"}))

    with pytest.raises(UnsupportedQubeError, match=r"work \(unknown\)"):
        world.restore("work")


def verify_settings(world: RestoreWorld, session: str) -> str:
    return maintenance.verify(world.wyng(), (), session, Recorder(), world.workdir).settings


def test_verify_reads_the_settings_as_a_restore_does(world: RestoreWorld, tmp_path: Path) -> None:
    good = send_session(world, tmp_path, lambda qubes: None, now="20260101-000001")
    assert verify_settings(world, good) == "ok"

    lacking = send_session(world, tmp_path, lambda qubes: qubes.pop("work"), now="20260101-000002")
    assert verify_settings(world, lacking) == "damaged: the settings (manifest) lack qube(s) with data: work"

    remote = send_session(world, tmp_path, lambda qubes: qubes["work"].update(REMOTE), now="20260101-000003")
    assert verify_settings(world, remote) == "unsupported: qube(s) of a class wyngq does not restore: work (RemoteVM)"

    broken = send_session(world, tmp_path, lambda qubes: qubes["work"].update(tags="not-a-list"),
                          now="20260101-000004")
    assert verify_settings(world, broken).startswith("damaged: the settings manifest is malformed")
    done = maintenance.verify(world.wyng(), (), broken, Recorder(), world.workdir)
    assert done.exit_code != ExitCode.OK


def test_a_qrexec_restore_naming_one_is_refused_by_name(tmp_path: Path, fake_wyng: FakeWyngFactory) -> None:
    rpc = make_rpc_world(tmp_path, fake_wyng)
    rpc.profile(PROFILE.replace('"disp1"]', '"disp1", "remote1"]')
                .format(dest=rpc.dom0.dest, wyng=rpc.dom0.executable, actions=ALL_ACTIONS))
    send_session(rpc.dom0, tmp_path, lambda qubes: qubes.update(remote1=REMOTE))

    reply = rpc.call("restore", {"profile": "laptop", "qubes": ["remote1"]})

    assert reply.status == 6 and reply.result["code"] == "unsupported_class", reply.result
    assert "remote1 (RemoteVM)" in reply.result["message"]
    assert rpc.jobs()[0].code == "unsupported_class"
