"""CI tier: a backup never stores settings its own restore would refuse to read."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import FakeWyngFactory
from tests.integration.helpers import Recorder, World, make_world
from wyngq import bundle
from wyngq.backup import BackupRequest, run_backup
from wyngq.listing import read_session_bundle


@pytest.fixture
def world(tmp_path: Path, fake_wyng: FakeWyngFactory) -> World:
    return make_world(tmp_path, fake_wyng)


def test_settings_larger_than_a_restore_reads_fail_the_backup_before_anything_is_sent(world: World) -> None:
    sessions_before = world.wyng().catalog().sessions()
    world.qubes.domains["work"].notes = "x" * (bundle.MAX_MEMBER_BYTES + 1)

    with pytest.raises(bundle.SettingsTooLargeError) as raised:
        run_backup(world.qubes, world.wyng(), BackupRequest(qubes=("work",)), Recorder(), world.workdir)

    assert raised.value.code == "settings_too_large" and raised.value.exit_code == 6
    assert "appvms/work/notes.txt" in raised.value.message
    assert world.wyng().catalog().sessions() == sessions_before  # no session, not even a partial one
    assert world.qubes.domains["work"].backup_timestamp is None


def test_large_settings_within_the_limits_are_backed_up_and_read_back(world: World) -> None:
    notes = "n" * (3 * 1024 * 1024)  # the manifest carries the notes too: 6 MiB of the 16 a restore reads
    world.qubes.domains["work"].notes = notes

    result = run_backup(world.qubes, world.wyng(), BackupRequest(qubes=("work",)), Recorder(), world.workdir)

    assert result.exit_code == 0
    wyng = world.wyng()
    settings = read_session_bundle(wyng, result.session, world.workdir, archive=wyng.catalog())
    assert settings.files["appvms/work/notes.txt"] == notes.encode()
