"""wyngq.wyng.runner: Wyng's exit codes through one table, the `.error` file, and
the Wyng port run against tiny throwaway programs written into tmp_path."""

from __future__ import annotations

import json
import shutil
import signal
from pathlib import Path

import pytest

from tests.conftest import FIXTURES
from wyngq.errors import (
    ArchiveNotFoundError,
    AuthError,
    BusyError,
    ConfigError,
    ExitCode,
    Interrupted,
    WyngError,
    WyngqError,
    WyngStalledError,
)
from wyngq.secret import Secret
from wyngq.wyng.catalog import parse_list_output
from wyngq.wyng.commands import InitOptions, WyngTarget, list_command, send_command
from wyngq.wyng.runner import Wyng, WyngRun, _read_error_file, error_for

CMD = FIXTURES / "cmd"
DEST = "file:/mnt/backup/A.wyng"


def _recorded_rc(fixture_id: str) -> int:
    for line in (FIXTURES / "index.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        fields = line.split("\t")
        if fields[0] == fixture_id:
            return int(fields[1])
    raise LookupError(fixture_id)


def _recorded_error(fixture_id: str) -> WyngqError:
    stderr = (CMD / f"{fixture_id}.stderr").read_text(encoding="utf-8")
    stdout = (CMD / f"{fixture_id}.stdout").read_text(encoding="utf-8")
    return error_for(_recorded_rc(fixture_id), stderr, stdout)


# -- the exit-code table on real recorded failures ---------------------------------------
@pytest.mark.parametrize(
    ("fixture_id", "expected"),
    [
        ("0d1_concurrent_list_same", BusyError),
        ("0d2_concurrent_list_other", BusyError),
        ("090_err_wrong_pass_passcmd", AuthError),
        ("091_err_wrong_pass_stdin", AuthError),
        ("092_err_no_pass", AuthError),
        ("095_err_archive_path_missing_list", ArchiveNotFoundError),
        ("097_err_not_initialised", ArchiveNotFoundError),
        ("015_init_exists", WyngError),  # 5
        ("0a2_ro_send", WyngError),  # 5
        ("016_init_shortpass", WyngError),  # 9
        ("099_err_bad_dest_scheme", WyngError),  # 9
        ("093_err_passcmd_fails", WyngError),  # 1 without the lock message
        ("0g2_same_second_b", WyngError),  # 1, a traceback
        ("0f1_send_D_full", WyngError),  # 1, disk full
        ("09h_err_recv_no_session", WyngError),  # 2 on its own
        ("0e2_sigkill", WyngError),  # 137: killed, not an interruption we asked for
    ],
)
def test_recorded_failure_maps_to_one_error(fixture_id: str, expected: type[WyngqError]) -> None:
    error = _recorded_error(fixture_id)
    assert type(error) is expected
    if isinstance(error, WyngError):
        assert error.wyng_rc == _recorded_rc(fixture_id)


def test_lock_held_is_busy_with_a_hint() -> None:
    error = _recorded_error("0d1_concurrent_list_same")
    assert error.exit_code is ExitCode.BUSY
    assert error.code == "busy"
    assert error.hint


def test_wrong_passphrase_is_auth() -> None:
    error = _recorded_error("090_err_wrong_pass_passcmd")
    assert error.exit_code is ExitCode.AUTH
    assert error.code == "auth"
    assert error.hint


def test_archive_not_found_names_wyngs_reason() -> None:
    error = _recorded_error("097_err_not_initialised")
    assert error.code == "archive_not_found"
    assert error.exit_code is ExitCode.WYNG
    assert "Archive not found at 'file:/mnt/backup/empty.wyng'" in error.message
    assert "create" in (error.hint or "")


def test_destination_not_ready_names_wyngs_reason() -> None:
    error = _recorded_error("015_init_exists")
    assert "not ready" in error.message
    assert "Archive already exists" in error.message


def test_option_error_names_wyngs_reason() -> None:
    error = _recorded_error("099_err_bad_dest_scheme")
    assert "'ftp' not an accepted dest type." in error.message


def test_traceback_is_summed_up_by_its_last_error_line() -> None:
    error = _recorded_error("0g2_same_second_b")
    assert "Duplicate session name" in error.message


def test_sigint_is_interrupted_by_sigint() -> None:
    error = _recorded_error("0e0_sigint")
    assert isinstance(error, Interrupted)
    assert error.signum == signal.SIGINT
    assert error.exit_status == 130


def test_sigterm_is_interrupted_by_sigterm() -> None:
    error = _recorded_error("0e1_sigterm")
    assert _recorded_rc("0e1_sigterm") == 143
    assert isinstance(error, Interrupted)
    assert error.signum == signal.SIGTERM
    assert error.exit_status == 143


def test_sigterm_seen_as_a_negative_status_is_interrupted_too() -> None:
    error = error_for(-signal.SIGTERM, "")
    assert isinstance(error, Interrupted)
    assert error.signum == signal.SIGTERM


def test_killed_is_a_failure() -> None:
    for status in (137, -signal.SIGKILL):
        error = error_for(status, "")
        assert type(error) is WyngError
        assert error.wyng_rc == status


def test_rc_1_is_busy_only_with_the_lock_message() -> None:
    assert type(error_for(1, "Traceback ...\nValueError: Duplicate session name\n")) is WyngError


def test_rc_127_means_wyng_could_not_be_run() -> None:
    assert type(error_for(127, "sh: wyng: not found")) is ConfigError


@pytest.mark.parametrize("status", [4, 7, 10, 42, 255])
def test_unknown_status_is_a_failure(status: int) -> None:
    error = error_for(status, "")
    assert type(error) is WyngError
    assert error.wyng_rc == status
    assert f"status {status}" in error.message


def test_error_text_comes_from_stdout_when_stderr_is_empty() -> None:
    error = error_for(9, "", "Wyng 0.8 rc4 release 20251028\nError: something specific\n")
    assert "Error: something specific" in error.message


# -- the <local-from>.error file, with Wyng's real ones -----------------------------------------
@pytest.mark.parametrize("fixture", ["send_nopool.json.error", "send_notsubvol.json.error"])
def test_read_error_file_lists_the_failed_volumes_and_removes_it(tmp_path: Path, fixture: str) -> None:
    path = tmp_path / "volumes.json.error"
    shutil.copy(FIXTURES / "json" / fixture, path)
    assert _read_error_file(str(path)) == ("appvms/work/private.img",)
    assert not path.exists()


def test_read_error_file_missing_is_no_volumes(tmp_path: Path) -> None:
    assert _read_error_file(str(tmp_path / "volumes.json.error")) == ()


@pytest.mark.parametrize(
    "content",
    [
        "",
        '{"rc": 2, "volumes": ["appvms/work/private.img"',  # truncated
        '["appvms/work/private.img"]',
        '{"rc": 2}',
        '{"rc": 2, "volumes": "appvms/work/private.img"}',
        '{"rc": 2, "volumes": {"appvms/work/private.img": 1}}',
    ],
)
def test_read_error_file_malformed_is_no_volumes_and_removed(tmp_path: Path, content: str) -> None:
    path = tmp_path / "volumes.json.error"
    path.write_text(content)
    assert _read_error_file(str(path)) == ()
    assert not path.exists()


def test_read_error_file_non_utf8_is_no_volumes(tmp_path: Path) -> None:
    path = tmp_path / "volumes.json.error"
    path.write_bytes(b'{"rc": 2, "volumes": ["\xff"]}')
    assert _read_error_file(str(path)) == ()


# -- the Wyng port against throwaway programs ------------------------------------------------
class Program:
    """A shell script standing in for `wyng`: it records its argv and stdin in
    `tmp_path` and then runs `body` (with $lf = the --local-from file, if any)."""

    def __init__(self, tmp_path: Path, body: str) -> None:
        self.dir = tmp_path
        self.path = tmp_path / "wyng"
        self.path.write_text(
            "#!/bin/sh\n"
            f'dir="{tmp_path}"\n'
            'printf "%s\\n" "$@" > "$dir/argv"\n'
            'cat > "$dir/stdin"\n'
            "lf=\n"
            'for arg in "$@"; do case "$arg" in --local-from=*) lf="${arg#--local-from=}";; esac; done\n'
            f"{body}\n"
        )
        self.path.chmod(0o755)

    @property
    def argv(self) -> list[str]:
        return (self.dir / "argv").read_text().splitlines()

    @property
    def stdin(self) -> bytes:
        return (self.dir / "stdin").read_bytes()

    def wyng(self, **kwargs: object) -> Wyng:
        return Wyng(WyngTarget(str(self.path), DEST), **kwargs)  # type: ignore[arg-type]


def _local_from(tmp_path: Path) -> str:
    path = tmp_path / "volumes.json"
    path.write_text((FIXTURES / "json" / "local-from_send.json").read_text())
    return str(path)


def test_catalog_parses_the_real_stdout_with_its_header_lines(tmp_path: Path) -> None:
    fixture = CMD / "list_json_01_after_full.stdout"
    program = Program(tmp_path, f'cat "{fixture}"')
    lines: list[str] = []
    archive = program.wyng(on_output=lines.append).catalog()
    assert archive == parse_list_output(fixture.read_text(encoding="utf-8"))
    assert program.argv == list_command(WyngTarget(str(program.path), DEST))[1:]
    assert lines == []  # listings are data, not progress


def test_catalog_refuses_a_wyng_that_is_too_old(tmp_path: Path) -> None:
    old = tmp_path / "old.stdout"
    text = (CMD / "list_json_01_after_full.stdout").read_text(encoding="utf-8")
    old.write_text(text.replace('"wdate": "20251028"', '"wdate": "20240528"'), encoding="utf-8")
    program = Program(tmp_path, f'cat "{old}"')
    with pytest.raises(ConfigError):
        program.wyng().catalog()


def test_catalog_of_a_missing_archive(tmp_path: Path) -> None:
    program = Program(
        tmp_path,
        f'cat "{CMD}/097_err_not_initialised.stdout"; cat "{CMD}/097_err_not_initialised.stderr" >&2; exit 6',
    )
    with pytest.raises(ArchiveNotFoundError) as caught:
        program.wyng().catalog()
    assert "Archive not found" in caught.value.message


def test_catalog_with_garbage_output_is_a_wyng_error(tmp_path: Path) -> None:
    program = Program(tmp_path, "echo 'Wyng 0.8 rc4 release 20251028'; echo '{not json'")
    with pytest.raises(WyngError):
        program.wyng().catalog()


def test_passphrase_goes_on_stdin_as_one_line_and_never_in_argv(tmp_path: Path) -> None:
    passphrase = "  -x 'single' \"double\" $HOME ünïcødé € \\ end "
    program = Program(tmp_path, f'cat "{CMD}/011_init_A_passcmd.stdout"')
    program.wyng(passphrase=Secret(passphrase)).arch_init(InitOptions())
    assert program.stdin == passphrase.encode("utf-8") + b"\n"
    assert program.argv == [f"--dest={DEST}", "--config=/dev/null", "-u", "--authmin=0", "arch-init"]
    assert not any(passphrase.strip() in arg for arg in program.argv)


def test_without_passphrase_stdin_is_empty(tmp_path: Path) -> None:
    program = Program(tmp_path, f'cat "{CMD}/012_init_U_unencrypted.stdout"')
    program.wyng().arch_init(InitOptions(encrypt=False))
    assert program.stdin == b""
    assert program.argv[-2:] == ["--encrypt=off", "arch-init"]


@pytest.mark.parametrize("stdout", ["Wyng 0.8 beta release 20240528", "no release line"])
def test_arch_init_by_a_too_old_or_unknown_wyng_says_the_archive_was_made(tmp_path: Path, stdout: str) -> None:
    program = Program(tmp_path, f"echo '{stdout}'; echo; echo \"Create new archive: '{DEST}'\"")
    with pytest.raises(ConfigError, match="the archive was created, but") as caught:
        program.wyng().arch_init(InitOptions(encrypt=False))
    assert "20250820" in (caught.value.hint or "")


def test_send_streams_progress_lines(tmp_path: Path) -> None:
    program = Program(tmp_path, f'cat "{CMD}/020_send_full.stdout"')
    lines: list[str] = []
    local_from = _local_from(tmp_path)
    run = program.wyng(on_output=lines.append).send(
        local_from=local_from, metadata_file="/tmp/m.tgz", tags=("qubes",)
    )
    assert run == WyngRun(0, (CMD / "020_send_full.stdout").read_text(encoding="utf-8"), "", ())
    assert "Volume 'wyng-qubes-metadata'" in lines
    assert "5 volumes, 960——>43 MB in 0.9 seconds." in lines
    assert program.argv == send_command(
        WyngTarget(str(program.path), DEST), local_from=local_from, metadata_file="/tmp/m.tgz", tags=("qubes",)
    )[1:]


def test_send_removes_a_stale_error_file_before_running(tmp_path: Path) -> None:
    local_from = _local_from(tmp_path)
    shutil.copy(FIXTURES / "json" / "send_nopool.json.error", local_from + ".error")
    program = Program(tmp_path, 'if [ -e "$lf.error" ]; then exit 99; fi; exit 0')
    run = program.wyng().send(local_from=local_from, metadata_file="/tmp/m.tgz")
    assert run.returncode == 0
    assert run.failed_volumes == ()


def test_send_rc_2_without_a_fresh_error_file_is_a_failure_not_a_stale_partial(tmp_path: Path) -> None:
    local_from = _local_from(tmp_path)
    shutil.copy(FIXTURES / "json" / "send_nopool.json.error", local_from + ".error")
    program = Program(tmp_path, "exit 2")
    with pytest.raises(WyngError) as caught:
        program.wyng().send(local_from=local_from, metadata_file="/tmp/m.tgz")
    assert caught.value.wyng_rc == 2


def test_send_rc_2_with_the_error_file_is_a_partial_result(tmp_path: Path) -> None:
    local_from = _local_from(tmp_path)
    program = Program(
        tmp_path,
        f'cp "{FIXTURES}/json/send_notsubvol.json.error" "$lf.error"\n'
        f'cat "{CMD}/09o_err_send_not_subvol.stderr" >&2\n'
        "exit 2",
    )
    run = program.wyng().send(local_from=local_from, metadata_file="/tmp/m.tgz")
    assert run.returncode == 2
    assert run.failed_volumes == ("appvms/work/private.img",)
    assert "Error on volumes: appvms/work/private.img" in run.stderr
    assert not Path(local_from + ".error").exists()


def test_receive_rc_2_with_the_error_file_is_a_partial_result(tmp_path: Path) -> None:
    local_from = str(tmp_path / "recv.json")
    shutil.copy(FIXTURES / "json" / "local-from_receive.json", local_from)
    program = Program(
        tmp_path,
        'printf \'{"rc": 2, "volumes": ["appvms/extra/private.img", "vm-templates/fedora/root.img"]}\' > "$lf.error"\n'
        f'cat "{CMD}/056c_recv_pool_S4_strict.stdout"\n'
        "exit 2",
    )
    lines: list[str] = []
    run = program.wyng(on_output=lines.append).receive(local_from=local_from, session="20261126-151138")
    assert run.failed_volumes == ("appvms/extra/private.img", "vm-templates/fedora/root.img")
    assert "Receiving volume 'appvms/work/private.img' 20261126-151138" in lines
    assert program.argv[-5:] == [
        f"--local-from={local_from}",
        "--session=20261126-151138",
        "--force",
        "--sparse-write",
        "receive",
    ]


def test_verify_rc_2_is_a_result_to_look_at(tmp_path: Path) -> None:
    program = Program(tmp_path, f'cat "{CMD}/09m_err_verify_no_session.stderr" >&2; exit 2')
    run = program.wyng().verify("20000101-000000", ["appvms/work/private.img"])
    assert run.returncode == 2
    assert program.argv[-3:] == ["verify", "--", "appvms/work/private.img"]


@pytest.mark.parametrize("fixture_id", ["0ac_corrupt_archcheck", "0f2_archcheck_D"])
def test_arch_check_reports_a_damaged_archive_as_a_result(tmp_path: Path, fixture_id: str) -> None:
    rc = _recorded_rc(fixture_id)
    program = Program(tmp_path, f'cat "{CMD}/{fixture_id}.stderr" >&2; exit {rc}')
    assert program.wyng().arch_check().returncode == rc


@pytest.mark.parametrize(
    ("fixture_id", "expected"),
    [("0d1_concurrent_list_same", BusyError), ("090_err_wrong_pass_passcmd", AuthError), ("0e0_sigint", Interrupted)],
)
def test_checks_still_raise_busy_auth_and_interrupted(
    tmp_path: Path, fixture_id: str, expected: type[WyngqError]
) -> None:
    rc = _recorded_rc(fixture_id)
    program = Program(tmp_path, f'cat "{CMD}/{fixture_id}.stderr" >&2; exit {rc}')
    with pytest.raises(expected):
        program.wyng().arch_check()
    with pytest.raises(expected):
        program.wyng().verify("20261126-151007", ["appvms/work/private.img"])


def test_receive_to_file_failure(tmp_path: Path) -> None:
    program = Program(tmp_path, f'cat "{CMD}/09d_err_recv_unknown_vol.stderr" >&2; exit 1')
    with pytest.raises(WyngError):
        program.wyng().receive_to_file("no/such/volume.img", "20261126-151007", str(tmp_path / "out"))


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (f'cat "{CMD}/0d1_concurrent_list_same.stderr" >&2; exit 1', BusyError),
        (f'cat "{CMD}/090_err_wrong_pass_passcmd.stderr" >&2; exit 3', AuthError),
        (f'cat "{CMD}/095_err_archive_path_missing_list.stderr" >&2; exit 6', ArchiveNotFoundError),
        (f'cat "{CMD}/0a2_ro_send.stderr" >&2; exit 5', WyngError),
        (f'cat "{CMD}/099_err_bad_dest_scheme.stderr" >&2; exit 9', WyngError),
        ("exit 77", WyngError),
    ],
)
def test_exit_status_of_the_program_goes_through_the_table(
    tmp_path: Path, body: str, expected: type[WyngqError]
) -> None:
    program = Program(tmp_path, body)
    with pytest.raises(WyngqError) as caught:
        program.wyng().receive_to_file("appvms/work/private.img", "20261126-151007", str(tmp_path / "out"))
    assert type(caught.value) is expected


def test_wyng_interrupted_by_sigint(tmp_path: Path) -> None:
    program = Program(tmp_path, f'cat "{CMD}/0e0_sigint.stderr" >&2; exit 8')
    with pytest.raises(Interrupted) as caught:
        program.wyng().send(local_from=_local_from(tmp_path), metadata_file="/tmp/m.tgz")
    assert caught.value.signum == signal.SIGINT


def test_wyng_terminated_by_sigterm(tmp_path: Path) -> None:
    program = Program(tmp_path, 'kill -TERM "$$"')
    with pytest.raises(Interrupted) as caught:
        program.wyng().send(local_from=_local_from(tmp_path), metadata_file="/tmp/m.tgz")
    assert caught.value.signum == signal.SIGTERM
    assert caught.value.exit_status == 143


def test_wyng_that_does_not_exist(tmp_path: Path) -> None:
    wyng = Wyng(WyngTarget(str(tmp_path / "no-such-wyng"), DEST))
    with pytest.raises(ConfigError):
        wyng.catalog()


def test_local_from_document_reaches_wyng_unchanged(tmp_path: Path) -> None:
    local_from = _local_from(tmp_path)
    program = Program(tmp_path, 'cp "$lf" "$dir/seen.json"')
    program.wyng().send(local_from=local_from, metadata_file="/tmp/m.tgz")
    assert json.loads((tmp_path / "seen.json").read_text()) == json.loads(
        (FIXTURES / "json" / "local-from_send.json").read_text()
    )


def test_a_wyng_call_that_prints_nothing_for_the_stall_timeout_is_stopped(tmp_path: Path) -> None:
    program = Program(tmp_path, "echo 'Wyng 0.8 rc4 release 20251028'; sleep 60")
    wyng = Wyng(WyngTarget(str(program.path), DEST, stall_timeout=1.0))
    with pytest.raises(WyngStalledError) as caught:
        wyng.verify("20261126-151007", ["appvms/work/private.img"])
    assert caught.value.code == "wyng_stalled" and caught.value.exit_code is ExitCode.WYNG
    assert "printed nothing for 1 s" in caught.value.message and "stall_timeout" in (caught.value.hint or "")


def test_the_stall_timeout_is_not_part_of_which_archive_it_is() -> None:
    assert WyngTarget("wyng", DEST, stall_timeout=5.0) == WyngTarget("wyng", DEST)


def test_a_short_passphrase_at_create_names_wyngs_own_reason() -> None:
    # on stdin Wyng says why, then fails with a bare "Passphrase required." (docs/facts.md)
    stderr = "Enter new encryption passphrase: \nPassphrase must be 10 or more characters.\n\n" \
             "InputError: Passphrase required.\n"
    error = error_for(9, stderr)
    assert "Passphrase must be 10 or more characters." in error.message
    assert "Passphrase required" in error.message
