"""CI tier: a hostile settings bundle in the archive (stored through the fake `wyng`,
which keeps real bytes), read by every reader of the dom0 CLI: `list --session`,
`verify`, `restore --dry-run`. Each ends with an archive error (exit 9, code
bad_metadata; verify: the settings `damaged`), within the readers' bounds measured
in this process (tests/bounds.py)."""

from __future__ import annotations

import gzip
import json
import tarfile
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest

from tests.bounds import MIB, measure
from tests.conftest import FakeWyngFactory
from tests.integration.restore_world import RestoreWorld, make_restore_world
from wyngq import bundle
from wyngq.cli import main


def _global_pax_member() -> bytes:
    info = tarfile.TarInfo("g")
    info.type, info.size = tarfile.XGLTYPE, 60 * 1024
    return gzip.compress(info.tobuf(tarfile.USTAR_FORMAT) + bytes(60 * 1024), compresslevel=9)


def _write_bomb(path: str, _state_files: object, _manifest: bytes) -> None:
    """16 MiB of gzip members that inflate to some 10 GiB of PAX global headers."""
    member = _global_pax_member()
    with open(path, "wb") as handle:
        handle.write(member * (16 * MIB // len(member)))


@pytest.fixture
def world(tmp_path: Path, fake_wyng: FakeWyngFactory, monkeypatch: pytest.MonkeyPatch) -> tuple[RestoreWorld, str]:
    monkeypatch.setenv("WYNGQ_LOCK_PATH", str(tmp_path / "wyngq.lock"))
    built = make_restore_world(tmp_path, fake_wyng)
    with patch.object(bundle, "write_bundle", _write_bomb):
        session = built.backup("work")
    return built, session


def _cli(world: RestoreWorld, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    status = main([args[0], f"--dest={world.dest}", f"--wyng={world.executable}", "--json", *args[1:]],
                  connect=lambda: world.qubes)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    return status, lines[-1]


@pytest.mark.parametrize("args", [
    ("list", "--session={session}"),
    ("restore", "work", "--session={session}", "--on-conflict=replace", "--dry-run"),
], ids=["list --session", "restore --dry-run"])
def test_a_reader_ends_with_an_archive_error_within_bounds(
        world: tuple[RestoreWorld, str], capsys: pytest.CaptureFixture[str], args: tuple[str, ...]) -> None:
    restore_world, session = world
    usage = measure(lambda: _cli(restore_world, capsys, *(a.format(session=session) for a in args)))
    status, result = usage.value
    assert (status, result["code"]) == (9, "bad_metadata"), result
    assert "stream is larger than allowed" in result["message"]
    assert usage.within_reader_bounds(), (usage.peak_bytes / MIB, usage.cpu_seconds)


def test_verify_reports_the_settings_damaged_within_bounds(
        world: tuple[RestoreWorld, str], capsys: pytest.CaptureFixture[str]) -> None:
    restore_world, session = world
    usage = measure(lambda: _cli(restore_world, capsys, "verify", f"--session={session}", "work"))
    status, result = usage.value
    assert status not in (0, 1) and result["settings"].startswith("damaged: "), result
    assert [q["ok"] for q in result["qubes"]] == [True]
    assert usage.within_reader_bounds(), (usage.peak_bytes / MIB, usage.cpu_seconds)
