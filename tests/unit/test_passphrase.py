"""wyngq.passphrase: the passphrase exactly as the profile's source gives it."""

from __future__ import annotations

import os
import shutil
import signal
import sys
from pathlib import Path

import pytest

from tests.bounds import MIB, measure
from wyngq import passphrase
from wyngq.errors import AuthError, ConfigError
from wyngq.passphrase import MAX_PASSPHRASE_BYTES, from_source
from wyngq.profile import PassphraseSource
from wyngq.secret import Secret

AWKWARD = "  -leading dash, 'single' \"double\" $HOME `id` *; ünïcødé € \\ trailing  "


def _file(tmp_path: Path, content: bytes, mode: int = 0o600, name: str = "laptop.pass") -> str:
    path = tmp_path / name
    path.write_bytes(content)
    path.chmod(mode)
    return str(path)


def _from_file(path: str) -> Secret | None:
    return from_source(PassphraseSource(file=path))


# -- file source --------------------------------------------------------------------------
def test_file_with_trailing_newline(tmp_path: Path) -> None:
    assert _from_file(_file(tmp_path, b"correct horse battery\n")) == Secret("correct horse battery")


def test_file_without_trailing_newline(tmp_path: Path) -> None:
    assert _from_file(_file(tmp_path, b"correct horse battery")) == Secret("correct horse battery")


def test_file_keeps_every_other_byte(tmp_path: Path) -> None:
    secret = _from_file(_file(tmp_path, AWKWARD.encode("utf-8") + b"\n"))
    assert secret is not None
    assert secret.reveal() == AWKWARD
    assert secret.line() == AWKWARD.encode("utf-8") + b"\n"


def test_file_readable_by_group_or_others_is_refused(tmp_path: Path) -> None:
    for mode in (0o644, 0o640, 0o604, 0o660, 0o602):
        path = _file(tmp_path, b"correct horse battery\n", mode)
        with pytest.raises(ConfigError) as caught:
            _from_file(path)
        assert "chmod 600" in (caught.value.hint or "")


def test_read_only_owner_file_is_fine(tmp_path: Path) -> None:
    assert _from_file(_file(tmp_path, b"correct horse battery\n", 0o400)) == Secret("correct horse battery")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the file to another user")
def test_file_owned_by_someone_else_is_refused(tmp_path: Path) -> None:
    path = _file(tmp_path, b"correct horse battery\n")
    os.chown(path, 65534, 65534)
    with pytest.raises(ConfigError):
        _from_file(path)


def test_symlink_is_refused_even_to_a_good_file(tmp_path: Path) -> None:
    target = _file(tmp_path, b"correct horse battery\n")
    link = tmp_path / "link.pass"
    link.symlink_to(target)
    with pytest.raises(ConfigError):
        _from_file(str(link))


def test_directory_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "dir.pass"
    directory.mkdir(mode=0o700)
    with pytest.raises(ConfigError):
        _from_file(str(directory))


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        _from_file(str(tmp_path / "no-such.pass"))


def test_empty_file_is_an_auth_error(tmp_path: Path) -> None:
    for content in (b"", b"\n", b"\n\n"):
        with pytest.raises(AuthError):
            _from_file(_file(tmp_path, content))


def test_two_lines_are_refused(tmp_path: Path) -> None:
    with pytest.raises(AuthError):
        _from_file(_file(tmp_path, b"first line\nsecond line\n"))


def test_windows_line_ending_is_refused_not_kept(tmp_path: Path) -> None:
    with pytest.raises(AuthError):
        _from_file(_file(tmp_path, b"correct horse battery\r\n"))


def test_file_not_utf8_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        _from_file(_file(tmp_path, b"caf\xe9 latin-1\n"))


def test_file_too_large_is_refused(tmp_path: Path) -> None:
    assert _from_file(_file(tmp_path, b"x" * MAX_PASSPHRASE_BYTES)) == Secret("x" * MAX_PASSPHRASE_BYTES)
    with pytest.raises(ConfigError):
        _from_file(_file(tmp_path, b"x" * (MAX_PASSPHRASE_BYTES + 1)))


def test_no_source_is_none() -> None:
    assert from_source(PassphraseSource()) is None


# -- command source -------------------------------------------------------------------------
def _printf() -> str:
    path = shutil.which("printf")
    assert path is not None
    return path


def test_command_runs_without_a_shell() -> None:
    # Through a shell, $HOME and `id` would expand and * would glob.
    secret = from_source(PassphraseSource(command=(_printf(), "%s", AWKWARD)))
    assert secret is not None
    assert secret.reveal() == AWKWARD


def test_command_output_loses_only_trailing_newlines() -> None:
    secret = from_source(PassphraseSource(command=(_printf(), "%s\n\n", " spaced out ")))
    assert secret == Secret(" spaced out ")


def test_command_with_a_leading_dash_argument() -> None:
    secret = from_source(PassphraseSource(command=(_printf(), "--", "-x-")))
    assert secret == Secret("-x-")


def test_command_gets_no_stdin(tmp_path: Path) -> None:
    script = tmp_path / "pass-cmd"
    script.write_text('#!/bin/sh\nread line && exit 3\necho "stdin was empty"\n')
    script.chmod(0o700)
    assert from_source(PassphraseSource(command=(str(script),))) == Secret("stdin was empty")


def test_failing_command_is_an_auth_error() -> None:
    false = shutil.which("false")
    assert false is not None
    with pytest.raises(AuthError) as caught:
        from_source(PassphraseSource(command=(false,)))
    assert "status 1" in caught.value.message


def test_command_with_empty_output_is_an_auth_error() -> None:
    with pytest.raises(AuthError):
        from_source(PassphraseSource(command=(_printf(), "\n")))


def test_missing_command_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        from_source(PassphraseSource(command=(str(tmp_path / "no-such-command"),)))


def test_command_wins_over_nothing_else_configured() -> None:
    source = PassphraseSource(command=(sys.executable, "-c", "print('from python')"))
    assert from_source(source) == Secret("from python")


def test_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.pass"
    os.mkfifo(fifo, 0o600)
    previous = signal.signal(signal.SIGALRM, _too_slow)
    signal.alarm(5)
    try:
        with pytest.raises(ConfigError):
            _from_file(str(fifo))
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _too_slow(_signum: int, _frame: object) -> None:
    raise AssertionError("opening the FIFO blocked")


# -- bounded: size and time ---------------------------------------------------------------------
def test_a_command_that_prints_too_much_is_stopped_unread() -> None:
    flood = "import sys\nwhile True:\n    sys.stdout.write('x' * 65536); sys.stdout.flush()"
    usage = measure(lambda: from_source(PassphraseSource(command=(sys.executable, "-c", flood))))
    assert isinstance(usage.error, AuthError), usage.error
    assert "printed more than 4096 bytes" in usage.error.message
    assert usage.peak_bytes < 4 * MIB and usage.cpu_seconds < 2.0


def test_a_passphrase_of_exactly_the_limit_is_fine() -> None:
    script = f"print('p' * {MAX_PASSPHRASE_BYTES})"
    assert from_source(PassphraseSource(command=(sys.executable, "-c", script))) == Secret("p" * MAX_PASSPHRASE_BYTES)
    script = f"print('p' * {MAX_PASSPHRASE_BYTES + 1})"
    with pytest.raises(AuthError, match="more than 4096 bytes"):
        from_source(PassphraseSource(command=(sys.executable, "-c", script)))


def test_a_command_that_does_not_answer_is_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passphrase, "COMMAND_TIMEOUT", 1.0)
    with pytest.raises(AuthError, match="gave no passphrase within 1 s") as caught:
        from_source(PassphraseSource(command=(sys.executable, "-c", "import time; time.sleep(60)")))
    assert "unlocked" in (caught.value.hint or "")
