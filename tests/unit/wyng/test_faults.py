"""wyngq.wyng.faults: failed Wyng runs that say what happened, from the stderr
real Wyng 0.8 rc4 printed (measured in the lab)."""

from __future__ import annotations

from pathlib import Path

import pytest

from wyngq.errors import ArchiveFullError, DestinationUnreachableError, ExitCode, WyngMissingError
from wyngq.wyng import faults
from wyngq.wyng.commands import WyngTarget
from wyngq.wyng.runner import Wyng

SSH_DOWN = ("Wyng 0.8 rc4 release 20251028\nssh: connect to host 127.0.0.1 port 1: Connection refused\r\n"
            "[0, 255]\n\n\nStorageError: Destination not ready to receive commands.\n")
QUBE_MISSING = ("Wyng 0.8 rc4 release 20251028\nlab-qvm-run: no such qube: 'nosuchqube'\n[0, 1]\n\n\n"
                "StorageError: Destination not ready to receive commands.\n")
BROKEN_PIPE = "Traceback (most recent call last):\n  File \"/usr/bin/wyng\"\nBrokenPipeError: [Errno 32] Broken pipe\n"


def test_an_ssh_host_that_is_down_is_unreachable_with_sshs_own_line() -> None:
    error = faults.explain("ssh://me@host/archive", 5, SSH_DOWN, sending=False)
    assert isinstance(error, DestinationUnreachableError) and error.code == "destination_unreachable"
    assert "Connection refused" in error.message and "ssh" in (error.hint or "")
    assert "\r" not in error.message


def test_a_qube_that_is_not_there_is_unreachable() -> None:
    error = faults.explain("qubes://backup-vm/archive", 5, QUBE_MISSING, sending=False)
    assert isinstance(error, DestinationUnreachableError)
    assert "no such qube" in error.message and "running" in (error.hint or "")


def test_status_5_for_other_reasons_keeps_the_generic_error() -> None:
    assert faults.explain("file:/x", 5, "StorageError: Archive already exists: file:/x\n", sending=False) is None


def test_a_broken_pipe_with_no_space_evidence_is_archive_full(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                              ) -> None:
    log = tmp_path / "err.log"
    log.write_text("tar: ./Vol_1/S_tmp/x: Cannot write: No space left on device\n")
    monkeypatch.setattr(faults, "WYNG_DEBUG_LOG", str(log))
    error = faults.explain(f"file:{tmp_path}/archive", 1, BROKEN_PIPE, sending=True)
    assert isinstance(error, ArchiveFullError) and error.exit_code is ExitCode.WYNG
    assert "MiB free" in error.message and "intact" in error.message and "prune" in (error.hint or "")


def test_a_broken_pipe_elsewhere_says_the_free_space_is_unknown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                                ) -> None:
    log = tmp_path / "err.log"
    log.write_text("No space left on device\n")
    monkeypatch.setattr(faults, "WYNG_DEBUG_LOG", str(log))
    error = faults.explain("qubes://backup-vm/archive", 1, BROKEN_PIPE, sending=True)
    assert isinstance(error, ArchiveFullError) and "free space unknown" in error.message


def test_only_a_send_is_taken_for_a_full_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(faults, "WYNG_DEBUG_LOG", str(tmp_path / "none"))
    assert faults.explain("file:/x", 1, BROKEN_PIPE + "No space left on device", sending=False) is None


def test_a_debug_log_someone_else_could_write_is_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    link = tmp_path / "err.log"
    target = tmp_path / "real.log"
    target.write_text("No space left on device\n")
    link.symlink_to(target)
    monkeypatch.setattr(faults, "WYNG_DEBUG_LOG", str(link))
    assert faults.explain("qubes://vm/a", 1, BROKEN_PIPE, sending=True) is None


def test_free_space_of_a_file_destination_that_does_not_exist_yet(tmp_path: Path) -> None:
    free = faults.free_space(f"file:{tmp_path}/not/yet/there")
    assert free is not None and free > 0
    assert faults.free_space("ssh://host/x") is None


def test_a_missing_wyng_says_so(tmp_path: Path) -> None:
    wyng = Wyng(WyngTarget(str(tmp_path / "no-wyng"), "file:/x"))
    with pytest.raises(WyngMissingError) as caught:
        wyng.catalog()
    assert caught.value.code == "wyng_missing" and caught.value.exit_code is ExitCode.CONFIG
    assert "--wyng" in (caught.value.hint or "")


def test_a_wyng_too_old_has_its_own_code() -> None:
    from wyngq.errors import WyngTooOldError
    from wyngq.wyng.catalog import check_wyng_version

    with pytest.raises(WyngTooOldError) as caught:
        check_wyng_version("0.8 rc2", "20240101")
    assert caught.value.code == "wyng_too_old" and caught.value.exit_code is ExitCode.CONFIG
