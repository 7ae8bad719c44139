"""CI tier: backup -> list -> read back, through real subprocesses of the fake `wyng`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from tests.conftest import ROOT, FakeWyngFactory
from tests.integration.helpers import Recorder, World, make_world, sha
from wyngq import bundle, volnames
from wyngq.backup import BackupRequest, BackupResult, run_backup
from wyngq.create import create_archive
from wyngq.errors import AuthError, BusyError, ConfigError, ExitCode, Interrupted
from wyngq.listing import ListRequest, list_archive, read_session_bundle
from wyngq.model import PoolDriver
from wyngq.secret import Secret
from wyngq.wyng.commands import InitOptions, WyngTarget
from wyngq.wyng.known import KnownArchive, KnownArchives, executable_stamp
from wyngq.wyng.runner import Wyng

ALL = ("fedora", "work", "vault", "disp1")


def backup(world: World, *names: str, wyng_exe: str | None = None, known: KnownArchives | None = None,
           **options: object) -> BackupResult:
    request = BackupRequest(qubes=names, **options)  # type: ignore[arg-type]
    return run_backup(world.qubes, world.wyng(wyng_exe), request, Recorder(), world.workdir, known)


@pytest.fixture
def world(tmp_path: Path, fake_wyng: FakeWyngFactory) -> World:
    return make_world(tmp_path, fake_wyng)


def read_back(world: World, volume: str, session: str) -> bytes:
    path = os.path.join(world.workdir, "read-back.img")
    world.wyng().receive_to_file(volume, session, path)
    try:
        return Path(path).read_bytes()
    finally:
        os.unlink(path)


def test_backup_stores_every_volume_and_the_settings_in_one_session(world: World) -> None:
    before = {(q, k): sha(world.qubes.read_volume(q, k)) for q, fq in world.qubes.domains.items() for k in fq.volumes}

    result = backup(world, *ALL)

    assert result.exit_code is ExitCode.OK  # type: ignore[attr-defined]
    session = result.session  # type: ignore[attr-defined]
    archive = world.wyng().catalog()
    expected = {
        "vm-templates/fedora/root.img", "vm-templates/fedora/private.img", "appvms/work/private.img",
        "appvms/vault/root.img", "appvms/vault/private.img", volnames.METADATA_VOLUME,
    }
    assert archive.session_volumes(session) == expected
    for name in expected - {volnames.METADATA_VOLUME}:
        parsed = volnames.parse(name)
        assert parsed is not None
        assert sha(read_back(world, name, session)) == before[(parsed.qube, parsed.kind)]
    assert archive.session_tags(session) == {"qubes": ""}


def test_backup_settings_manifest_equals_the_live_settings(world: World) -> None:
    result = backup(world, *ALL)
    wyng = world.wyng()
    settings = read_session_bundle(wyng, result.session, world.workdir, archive=wyng.catalog())  # type: ignore[attr-defined]

    assert settings.manifest is not None
    assert dict(settings.manifest.qubes) == {name: world.qubes.settings(name) for name in ALL}
    assert settings.qubes_xml is not None and b'class="DispVM"' in settings.qubes_xml
    assert settings.files["appvms/work/notes.txt"] == "work notes ✓".encode()
    assert "appvms/work/firewall.xml" in settings.files


def test_backup_sets_backup_timestamp_only_on_success(world: World) -> None:
    backup(world, *ALL)
    assert all(world.qubes.domains[n].backup_timestamp for n in ALL)
    assert world.qubes.domains["untrusted"].backup_timestamp is None


def test_dry_run_stores_nothing_and_stamps_nothing(world: World) -> None:
    result = backup(world, "work", dry_run=True)
    assert result.dry_run and result.session is None  # type: ignore[attr-defined]
    assert world.wyng().catalog().sessions() == []
    assert world.qubes.domains["work"].backup_timestamp is None


def test_includes_flag_adds_include_in_backups_qubes_and_excludes_win(world: World) -> None:
    request = BackupRequest(include_flagged=True, exclude=("vault",))
    result = run_backup(world.qubes, world.wyng(), request, Recorder(), world.workdir)
    assert [q.name for q in result.qubes] == ["disp1", "work"]


def test_list_shows_qubes_sessions_and_disposables(world: World) -> None:
    first = backup(world, "work", "fedora").session  # type: ignore[attr-defined]
    world.qubes.write_volume("work", "private", b"changed" * 99)
    second = backup(world, *ALL).session  # type: ignore[attr-defined]

    latest = list_archive(world.wyng(), ListRequest(), world.workdir)
    assert dict(latest.qubes) == {"fedora": (second,), "work": (second,), "vault": (second,)}
    every = list_archive(world.wyng(), ListRequest(all=True), world.workdir)
    assert every.qubes["work"] == (first, second)
    one = list_archive(world.wyng(), ListRequest(session=second), world.workdir)
    assert {q.name: q.klass for q in one.session_qubes} == {
        "fedora": "TemplateVM", "work": "AppVM", "vault": "StandaloneVM", "disp1": "DispVM",
    }
    assert one.settings_source == "manifest"
    # each session still holds its own bytes
    assert read_back(world, "appvms/work/private.img", second) == b"changed" * 99
    assert read_back(world, "appvms/work/private.img", first) != b"changed" * 99


def test_a_volume_wyng_fails_is_a_partial_failure(world: World, fake_wyng: FakeWyngFactory) -> None:
    failing = fake_wyng("wyng-volfail", FAKE_WYNG_FAIL="vol=appvms/work/private.img")
    result = backup(world, "work", "vault", wyng_exe=failing)
    outcome = {q.name: q for q in result.qubes}  # type: ignore[attr-defined]
    assert result.exit_code is ExitCode.PARTIAL  # type: ignore[attr-defined]
    assert not outcome["work"].ok and outcome["vault"].ok
    assert world.qubes.domains["work"].backup_timestamp is None
    assert world.qubes.domains["vault"].backup_timestamp is not None


def test_a_missing_volume_file_is_caught_although_wyng_exits_0(world: World) -> None:
    os.unlink(world.qubes.volume_path("vault", "private"))
    result = backup(world, "work", "vault")
    outcome = {q.name: q for q in result.qubes}  # type: ignore[attr-defined]
    assert result.exit_code is ExitCode.PARTIAL  # type: ignore[attr-defined]
    assert not outcome["vault"].ok and "appvms/vault/private.img" in (outcome["vault"].error or "")
    assert outcome["work"].ok


@pytest.mark.parametrize(
    ("fault", "error", "status"),
    [
        ("lock", BusyError, 5),
        ("auth", AuthError, 7),
        ("interrupt", Interrupted, 128 + signal.SIGINT),
    ],
)
def test_wyng_failures_map_to_their_errors(
    world: World, fake_wyng: FakeWyngFactory, fault: str, error: type[Exception], status: int
) -> None:
    from wyngq.output import exit_status

    failing = fake_wyng(f"wyng-{fault}", FAKE_WYNG_FAIL=fault)
    with pytest.raises(error) as raised:
        backup(world, "work", wyng_exe=failing)
    assert exit_status(raised.value) == status  # type: ignore[arg-type]
    assert world.qubes.domains["work"].backup_timestamp is None


def test_too_old_wyng_is_refused_before_anything_is_sent(world: World, fake_wyng: FakeWyngFactory) -> None:
    old = fake_wyng("wyng-old", FAKE_WYNG_DATE="20250101")
    with pytest.raises(ConfigError, match="too old"):
        backup(world, "work", wyng_exe=old)
    assert world.wyng().catalog().sessions() == []


def test_encrypted_archive_gets_the_passphrase_byte_exact(tmp_path: Path, fake_wyng: FakeWyngFactory) -> None:
    world = make_world(tmp_path, fake_wyng, encrypted=True)
    result = backup(world, "work")
    assert result.exit_code is ExitCode.OK  # type: ignore[attr-defined]
    assert {c["passphrase"] for c in fake_wyng.calls()} == {"correct horse  battery -staple ✓"}
    assert all(not any("horse" in a for a in c["argv"]) for c in fake_wyng.calls())  # type: ignore[union-attr]
    with pytest.raises(AuthError):
        world.wyng(passphrase=Secret("wrong passphrase!")).catalog()


def test_wyng_argv_never_carries_user_text_as_an_option(world: World, fake_wyng: FakeWyngFactory) -> None:
    backup(world, *ALL)
    for call in fake_wyng.calls():
        argv = call["argv"]
        assert isinstance(argv, list)
        assert "--config=/dev/null" in argv and "-u" in argv and "--authmin=0" in argv


def test_cli_list_and_create_as_subprocesses(tmp_path: Path, fake_wyng: FakeWyngFactory) -> None:
    archive = tmp_path / "cli.wyng"
    archive.mkdir()
    base = [sys.executable, "-m", "wyngq", f"--dest=file:{archive}", f"--wyng={fake_wyng()}", "--json"]
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), "WYNGQ_LOCK_PATH": str(tmp_path / "lock"),
           "WYNGQ_STATE_DIR": str(tmp_path / "state")}

    created = subprocess.run([*base, "create", "--encrypt=off"], capture_output=True, text=True, env=env)
    assert created.returncode == 0, created.stderr
    listed = subprocess.run([*base, "list"], capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL)
    result = json.loads(listed.stdout.splitlines()[-1])
    assert listed.returncode == 0
    assert result["type"] == "result" and result["ok"] and result["qubes"] == {}
    assert result["archive"]["encrypted"] is False

    again = subprocess.run([*base, "create", "--encrypt=off"], capture_output=True, text=True, env=env)
    last = json.loads(again.stdout.splitlines()[-1])
    assert again.returncode == 9 and last["ok"] is False and last["exit_code"] == 9


def test_bundle_in_archive_is_upstream_compatible(world: World) -> None:
    result = backup(world, "work")
    path = os.path.join(world.workdir, "meta.tgz")
    world.wyng().receive_to_file(volnames.METADATA_VOLUME, result.session, path)  # type: ignore[attr-defined]
    import tarfile

    with tarfile.open(path, "r:gz") as tar:
        names = tar.getnames()
    assert "./qubes.xml" in names and "./appvms/work/firewall.xml" in names and "./wyngq.json" in names
    assert bundle.read_bundle(path).manifest is not None


def test_check_after_send_stamps_the_qubes_only_when_the_check_passes(world: World, fake_wyng: FakeWyngFactory
                                                                      ) -> None:
    checked = backup(world, "work", check_after_send=True)
    assert (checked.exit_code, checked.check) == (ExitCode.OK, "ok")  # type: ignore[attr-defined]
    stamped = world.qubes.domains["work"].backup_timestamp
    assert stamped is not None
    world.qubes.domains["work"].backup_timestamp = None

    damaged = fake_wyng("wyng-damaged", FAKE_WYNG_FAIL="corrupt=appvms/work/private.img")
    failed = backup(world, "work", wyng_exe=damaged, check_after_send=True)

    assert failed.check == "failed" and failed.exit_code != ExitCode.OK  # type: ignore[attr-defined]
    assert world.qubes.domains["work"].backup_timestamp is None  # the next backup runs again
    assert "backup_timestamp not set" in " ".join(failed.warnings)  # type: ignore[attr-defined]
    assert failed.session is not None  # type: ignore[attr-defined]


def wyng_actions(fake_wyng: FakeWyngFactory, since: int) -> list[str]:
    return [str(call["argv"][-1]) for call in fake_wyng.calls()[since:]]


def test_with_an_archive_record_a_repeated_backup_is_one_wyng_call(
        world: World, fake_wyng: FakeWyngFactory, tmp_path: Path) -> None:
    known = KnownArchives(str(tmp_path / "state"))

    def back_up(*names: str) -> BackupResult:
        done = backup(world, *names, known=known)
        assert done.exit_code == ExitCode.OK
        return done

    start = len(fake_wyng.calls())
    first = back_up("work", "vault")
    assert wyng_actions(fake_wyng, start) == ["list", "send"]  # no record yet: the catalogue is read

    start = len(fake_wyng.calls())
    world.qubes.write_volume("work", "private", b"changed" * 1000)
    second = back_up("work", "vault")
    assert wyng_actions(fake_wyng, start) == ["send"]
    assert second.session > first.session  # type: ignore[attr-defined]
    assert read_back(world, "appvms/work/private.img", second.session) == b"changed" * 1000  # type: ignore[attr-defined]

    start = len(fake_wyng.calls())
    third = back_up("work", "fedora")  # fedora is new to the archive: the record says so, no catalogue read
    assert wyng_actions(fake_wyng, start) == ["send"]
    assert read_back(world, "vm-templates/fedora/root.img", third.session) == (  # type: ignore[attr-defined]
        world.qubes.read_volume("fedora", "root"))


def test_the_first_backup_into_an_archive_wyngq_created_is_one_wyng_call(
        tmp_path: Path, fake_wyng: FakeWyngFactory) -> None:
    world = make_world(tmp_path, fake_wyng)
    (tmp_path / "new.wyng").mkdir()
    world = replace(world, dest=f"file:{tmp_path / 'new.wyng'}")
    known = KnownArchives(str(tmp_path / "state"))
    create_archive(world.wyng(), InitOptions(encrypt=False), known)

    start = len(fake_wyng.calls())
    done = backup(world, "work", known=known)

    assert done.exit_code == ExitCode.OK
    assert wyng_actions(fake_wyng, start) == ["send"]
    assert read_back(world, "appvms/work/private.img", done.session or "") == world.qubes.read_volume("work", "private")


def test_create_refuses_to_record_an_archive_made_by_a_too_old_wyng(
        tmp_path: Path, fake_wyng: FakeWyngFactory) -> None:
    (tmp_path / "old.wyng").mkdir()
    old = fake_wyng("wyng-old", FAKE_WYNG_DATE="20250101")
    target = WyngTarget(executable=old, dest=f"file:{tmp_path / 'old.wyng'}")
    known = KnownArchives(str(tmp_path / "state"))
    with pytest.raises(ConfigError, match=r"the archive was created, but Wyng .* is too old"):
        create_archive(Wyng(target), InitOptions(encrypt=False), known)
    assert known.get(target) is None


def test_a_record_that_misleads_an_alias_is_dropped_after_the_failed_backup(
        world: World, fake_wyng: FakeWyngFactory, tmp_path: Path) -> None:
    """Another program sent `work` under its LVM name and deleted that volume again,
    behind wyngq's back: the record still names it, so the plan takes it for an
    alias. That volume fails (reported, nothing lost), the record is dropped, and
    the next backup reads the catalogue and succeeds."""
    known = KnownArchives(str(tmp_path / "state"))
    target = world.wyng().target
    lvm_name = volnames.convert("appvms/work/private.img", PoolDriver.LVM_THIN, False)
    assert lvm_name is not None
    known.put(target, KnownArchive(frozenset({lvm_name}), frozenset(), executable_stamp(target.executable)))

    failed = backup(world, "work", known=known)
    assert failed.exit_code != ExitCode.OK and not failed.qubes[0].ok
    assert known.get(target) is None

    start = len(fake_wyng.calls())
    done = backup(world, "work", known=known)
    assert done.exit_code == ExitCode.OK
    assert wyng_actions(fake_wyng, start) == ["list", "send"]
    assert read_back(world, "appvms/work/private.img", done.session or "") == world.qubes.read_volume("work", "private")


def test_a_stale_record_does_no_harm(world: World, fake_wyng: FakeWyngFactory, tmp_path: Path) -> None:
    """The record names volumes the archive no longer has (deleted behind wyngq's back):
    the backup sends them as new volumes, and the session is still confirmed."""
    known = KnownArchives(str(tmp_path / "state"))
    backup(world, "work", known=known)
    world.wyng().delete("appvms/work/private.img")

    done = backup(world, "work", known=known)

    assert done.exit_code == ExitCode.OK and done.session is not None
    assert read_back(world, "appvms/work/private.img", done.session) == world.qubes.read_volume("work", "private")


@pytest.mark.parametrize(("fault", "error"), [("interrupt", Interrupted), ("crash", Exception)])
def test_a_send_that_stops_midway_drops_the_record(
        world: World, fake_wyng: FakeWyngFactory, tmp_path: Path, fault: str, error: type[Exception]) -> None:
    """Wyng renames aliased volumes in the archive before it sends them: after a send
    that stopped, the record may be wrong, so the next backup reads the catalogue."""
    known = KnownArchives(str(tmp_path / "state"))
    target = world.wyng().target
    backup(world, "work", known=known)
    assert known.get(target) is not None

    stopping = world.wyng(fake_wyng(f"wyng-{fault}", FAKE_WYNG_FAIL=fault))
    known.put(stopping.target, KnownArchive.of(world.wyng().catalog(), stopping.target.executable))
    start = len(fake_wyng.calls())
    with pytest.raises(error):
        backup(world, "work", wyng_exe=stopping.target.executable, known=known)
    assert wyng_actions(fake_wyng, start) == ["send"]  # the record was trusted: straight to the send
    assert known.get(stopping.target) is None and known.get(target) is None

    start = len(fake_wyng.calls())
    done = backup(world, "work", known=known)
    assert done.exit_code == ExitCode.OK
    assert wyng_actions(fake_wyng, start) == ["list", "send"]


def test_the_recorder_keeps_every_event_by_its_json_type(world: World) -> None:
    recorder = Recorder()
    run_backup(world.qubes, world.wyng(), BackupRequest(qubes=("work",)), recorder, world.workdir)
    (plan,) = [e for e in recorder.of("plan") if e.get("action") == "backup"]
    assert plan["qubes"] == ["work"]
    assert recorder.of("wyng_output") and all(isinstance(e["line"], str) for e in recorder.of("wyng_output"))
