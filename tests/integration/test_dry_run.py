"""CI tier: a backup dry run changes nothing anywhere, and "due" is per archive.

The fake `wyng` writes on `send --dry-run` what real Wyng writes (volumes added,
archive rewritten, snapshot files in the pools), so a dry run that reached Wyng's
send would change the hashes below.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import FakeWyngFactory
from tests.integration.helpers import Recorder, World, make_world, tree_hash
from wyngq.backup import BackupRequest, BackupResult, run_backup
from wyngq.errors import ExitCode
from wyngq.wyng.commands import InitOptions, WyngTarget
from wyngq.wyng.known import KnownArchives
from wyngq.wyng.runner import Wyng

QUBES = ("fedora", "work", "vault", "disp1")


@pytest.fixture
def world(tmp_path: Path, fake_wyng: FakeWyngFactory) -> World:
    return make_world(tmp_path, fake_wyng)


def watched(world: World, tmp_path: Path) -> dict[str, str]:
    return tree_hash(tmp_path / "archive.wyng", tmp_path / "pool-main", tmp_path / "pool-2")


def run(world: World, known: KnownArchives | None, wyng: Wyng | None = None, **options: object) -> BackupResult:
    request = BackupRequest(qubes=options.pop("qubes", QUBES), **options)  # type: ignore[arg-type]
    return run_backup(world.qubes, wyng or world.wyng(), request, Recorder(), world.workdir, known)


def sends(log: Path) -> list[list[str]]:
    calls = [json.loads(line)["argv"] for line in log.read_text().splitlines()] if log.exists() else []
    return [argv for argv in calls if "send" in argv]


@pytest.mark.parametrize("with_record", [True, False])
def test_a_dry_run_leaves_the_archive_and_the_pools_byte_for_byte(
    world: World, tmp_path: Path, with_record: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    known = KnownArchives(str(tmp_path / "state"))
    first = run(world, known, qubes=("work",))  # an archive with history: one qube in, the others new
    assert first.exit_code is ExitCode.OK
    if not with_record:
        known.forget(world.wyng().target)
    log = tmp_path / "wyng.log"
    monkeypatch.setenv("FAKE_WYNG_LOG", str(log))
    before = watched(world, tmp_path)

    result = run(world, known, dry_run=True)

    assert watched(world, tmp_path) == before
    assert sends(log) == []
    assert result.exit_code is ExitCode.OK and result.dry_run and result.changed  # would change: Salt test mode
    assert [q.name for q in result.qubes if q.ok] == sorted(QUBES)
    by_name = {v.local_name: v for v in result.volumes}
    assert by_name["appvms/work/private.img"].incremental
    assert not by_name["appvms/vault/private.img"].incremental
    assert by_name["appvms/work/private.img"].size == len(world.qubes.read_volume("work", "private"))
    assert all(world.qubes.domains[n].backup_timestamp is None for n in ("fedora", "vault"))


def test_wyngs_own_send_dry_run_is_what_the_check_above_catches(world: World, tmp_path: Path) -> None:
    # the fake behaves like Wyng: its send --dry-run writes, so the hash check has teeth
    run(world, None, qubes=("work",))
    before = watched(world, tmp_path)
    local = tmp_path / "v.json"
    local.write_text(json.dumps({str(tmp_path / "pool-main"): [["appvms/work/private.img", None]]}))
    done = world.wyng()._run([*world.wyng().target.base(), f"--local-from={local}", "--dry-run", "send"])
    assert done.returncode == 0
    assert watched(world, tmp_path) != before


def test_a_dry_run_names_a_qube_whose_volume_file_is_missing(world: World, tmp_path: Path) -> None:
    os.unlink(tmp_path / "pool-main" / "appvms" / "work" / "private.img")
    result = run(world, None, dry_run=True)
    (work,) = [q for q in result.qubes if q.name == "work"]
    assert not work.ok and work.error is not None and "appvms/work/private.img" in work.error
    assert result.summary == "dry run: would back up disp1, fedora, vault; would FAIL: work"


def test_due_is_per_archive(world: World, tmp_path: Path, fake_wyng: FakeWyngFactory) -> None:
    known = KnownArchives(str(tmp_path / "state"))
    first = run(world, known, max_age=3600)
    assert [e.name for e in first.schedule if e.due] == sorted(QUBES) and first.session is not None

    again = run(world, known, max_age=3600)
    assert not again.changed and again.qubes == () and again.summary.startswith("nothing due")
    assert {e.last_session for e in again.schedule} == {first.session}

    (tmp_path / "other.wyng").mkdir()
    other = Wyng(WyngTarget(world.executable, f"file:{tmp_path / 'other.wyng'}"))
    other.arch_init(InitOptions(encrypt=False))
    fresh = run(world, known, other, max_age=3600, dry_run=True)
    assert [e.name for e in fresh.schedule if e.due] == sorted(QUBES)  # a new archive: all due


def test_due_is_rebuilt_from_the_catalogue_when_the_record_is_gone(world: World, tmp_path: Path) -> None:
    known = KnownArchives(str(tmp_path / "state"))
    first = run(world, known, qubes=("work", "vault"))
    shutil.rmtree(tmp_path / "state")

    result = run(world, known, max_age=3600, dry_run=True)

    due = {e.name: e for e in result.schedule}
    assert not due["work"].due and due["work"].last_session == first.session
    assert not due["vault"].due
    assert due["fedora"].due and due["fedora"].last_session is None
    assert due["disp1"].due  # settings only: goes along with fedora
    assert [q.name for q in result.qubes] == ["disp1", "fedora"]


def test_a_due_disposable_alone_is_not_due(world: World, tmp_path: Path) -> None:
    known = KnownArchives(str(tmp_path / "state"))
    run(world, known, qubes=("work",))
    result = run(world, known, qubes=("work", "disp1"), max_age=3600)
    assert result.qubes == () and not any(e.due for e in result.schedule)
