"""The vault-qube passphrase source: asks qubes.WyngPassphrase+PROFILE through qvm-run."""

from __future__ import annotations

from pathlib import Path

import pytest

from wyngq.errors import AuthError
from wyngq.passphrase import from_source, vault_command
from wyngq.profile import PassphraseSource, parse_profile


def fake_qvm_run(tmp_path: Path, output: str, status: int = 0) -> tuple[str, Path]:
    argv_log = tmp_path / "argv"
    script = tmp_path / "qvm-run"
    script.write_text(
        "#!/bin/sh\n"
        f'printf "%s\\n" "$@" > "{argv_log}"\n'
        f"printf '%s' '{output}'\n"
        f"exit {status}\n"
    )
    script.chmod(0o755)
    return str(script), argv_log


def test_vault_command_is_fixed_and_names_the_profile() -> None:
    assert vault_command("vault", "laptop", "/usr/bin/qvm-run") == (
        "/usr/bin/qvm-run", "--pass-io", "--no-gui", "--no-filter-escape-chars", "--service", "--",
        "vault", "qubes.WyngPassphrase+laptop",
    )


def test_vault_passphrase_is_taken_byte_exact(tmp_path: Path) -> None:
    qvm_run, argv_log = fake_qvm_run(tmp_path, " -spaced  pass ✓\n")
    secret = from_source(PassphraseSource(qube="vault"), "laptop", qvm_run=qvm_run)
    assert secret is not None and secret.reveal() == " -spaced  pass ✓"
    assert argv_log.read_text().split("\n")[-3:-1] == ["vault", "qubes.WyngPassphrase+laptop"]


def test_a_failing_vault_is_an_authentication_error(tmp_path: Path) -> None:
    qvm_run, _ = fake_qvm_run(tmp_path, "", status=1)
    with pytest.raises(AuthError, match="failed"):
        from_source(PassphraseSource(qube="vault"), "laptop", qvm_run=qvm_run)


def test_an_empty_answer_is_an_authentication_error(tmp_path: Path) -> None:
    qvm_run, _ = fake_qvm_run(tmp_path, "\n")
    with pytest.raises(AuthError, match="empty"):
        from_source(PassphraseSource(qube="vault"), "laptop", qvm_run=qvm_run)


def test_profile_takes_a_vault_qube_and_checks_its_name() -> None:
    good = parse_profile("laptop", {"dest": "file:/b", "passphrase": {"qube": "vault"}})
    assert good.passphrase == PassphraseSource(qube="vault")
    with pytest.raises(ValueError, match="not a qube name"):
        parse_profile("laptop", {"dest": "file:/b", "passphrase": {"qube": "-vault"}})
    with pytest.raises(ValueError, match="one of"):
        parse_profile("laptop", {"dest": "file:/b", "passphrase": {"qube": "vault", "file": "/p"}})


def test_a_vault_that_answers_too_much_is_refused_by_name(tmp_path: Path) -> None:
    qvm_run, _ = fake_qvm_run(tmp_path, "x" * 5000)
    with pytest.raises(AuthError, match="the vault qube vault printed more than 4096 bytes"):
        from_source(PassphraseSource(qube="vault"), "laptop", qvm_run=qvm_run)
