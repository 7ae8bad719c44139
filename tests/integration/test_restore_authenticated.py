"""CI tier: a restore that requires an authenticated archive (the qrexec one)
keeps that guarantee for the whole job, not only for the first catalogue read.

The archive is swapped for an unencrypted one holding the same session between
Wyng calls (what someone who can write to the archive's storage could do); the
restore must stop before anything changes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.conftest import FakeWyngFactory
from tests.integration.helpers import Recorder, World, make_world
from wyngq.backup import BackupRequest, run_backup
from wyngq.errors import UnauthenticatedArchiveError
from wyngq.restore.model import ConflictPolicy, RestoreRequest
from wyngq.restore.run import RestoreResult, run_restore
from wyngq.wyng.commands import InitOptions, WyngTarget
from wyngq.wyng.runner import Wyng

NOW = "20260101-120000"
SWAPPER = """\
#!{python}
import os, sys
if any(arg.startswith("--save-to=") for arg in sys.argv[1:]) and os.path.isdir({plain!r}):
    os.rename({archive!r}, {archive!r} + ".encrypted")
    os.rename({plain!r}, {archive!r})
os.execv({wyng!r}, [{wyng!r}, *sys.argv[1:]])
"""


def back_up(world: World, wyng: Wyng) -> str:
    done = run_backup(world.qubes, wyng, BackupRequest(qubes=("work",)), Recorder(), world.workdir)
    assert done.exit_code == 0 and done.session is not None
    return done.session


@pytest.fixture
def swapped(tmp_path: Path, fake_wyng: FakeWyngFactory) -> tuple[World, Wyng]:
    """An encrypted archive that turns into an unencrypted one with the same
    session as soon as the settings bundle is read."""
    world = make_world(tmp_path, fake_wyng, encrypted=True)
    same_second = fake_wyng("wyng-now", FAKE_WYNG_NOW=NOW)
    session = back_up(world, world.wyng(same_second))
    archive = tmp_path / "archive.wyng"
    plain = tmp_path / "plain.wyng"
    plain.mkdir()
    unencrypted = Wyng(WyngTarget(executable=same_second, dest=f"file:{plain}"))
    unencrypted.arch_init(InitOptions(encrypt=False))
    assert back_up(world, unencrypted) == session
    swapper = tmp_path / "bin" / "wyng-swapper"
    swapper.write_text(SWAPPER.format(python=sys.executable, plain=str(plain), archive=str(archive),
                                      wyng=world.executable))
    swapper.chmod(0o755)
    return world, world.wyng(str(swapper))


def restore_work(world: World, wyng: Wyng, *, require_authenticated: bool) -> RestoreResult:
    request = RestoreRequest(qubes=("work",), on_conflict=ConflictPolicy.REPLACE,
                             require_authenticated=require_authenticated)
    return run_restore(world.qubes, wyng, request, Recorder(), world.workdir)


def test_an_archive_swapped_mid_restore_for_an_unencrypted_one_stops_it(
    swapped: tuple[World, Wyng], fake_wyng: FakeWyngFactory
) -> None:
    world, wyng = swapped
    before = world.qubes.read_volume("work", "private")
    world.qubes.domains["work"].notes = "changed after the backup"

    with pytest.raises(UnauthenticatedArchiveError, match="in the middle of a job"):
        restore_work(world, wyng, require_authenticated=True)

    assert world.qubes.domains["work"].notes == "changed after the backup"
    assert world.qubes.read_volume("work", "private") == before
    assert not any(call["argv"][-1] == "receive" for call in fake_wyng.calls())  # no data receive


def test_the_same_swap_stops_a_dom0_restore_too(swapped: tuple[World, Wyng]) -> None:
    """A dom0 restore needs no authenticated archive, but one that began with an
    authenticated catalogue plans with its settings trusted (restore.trust), so
    it holds every later call to that too."""
    world, wyng = swapped
    world.qubes.domains["work"].notes = "changed after the backup"

    with pytest.raises(UnauthenticatedArchiveError, match="in the middle of a job"):
        restore_work(world, wyng, require_authenticated=False)

    assert world.qubes.domains["work"].notes == "changed after the backup"
    archive = world.dest.removeprefix("file:")
    assert Path(archive + ".encrypted").is_dir()  # the control: the swap happened


def test_an_unencrypted_archive_is_refused_before_any_settings_are_read(
    tmp_path: Path, fake_wyng: FakeWyngFactory
) -> None:
    world = make_world(tmp_path, fake_wyng)
    back_up(world, world.wyng())
    calls_before = len(fake_wyng.calls())

    with pytest.raises(UnauthenticatedArchiveError, match="not authenticated"):
        restore_work(world, world.wyng(), require_authenticated=True)

    (only,) = fake_wyng.calls()[calls_before:]
    assert "list" in only["argv"]
