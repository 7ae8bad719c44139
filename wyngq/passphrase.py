"""Get the archive passphrase from where the profile says, exactly as it is.

The passphrase reaches Wyng on its stdin only (see wyng.runner), never in an
argv, an environment variable or a file of ours, and is never logged. Unlike
upstream's `--passcmd=echo $VAR`, nothing here goes through a shell, so spaces,
quotes, leading dashes and non-ASCII characters survive byte for byte.
"""

from __future__ import annotations

import getpass
import os
import stat
import sys

from wyngq import process
from wyngq.errors import AuthError, ConfigError
from wyngq.profile import PassphraseSource
from wyngq.secret import Secret

MAX_PASSPHRASE_BYTES = 4096
COMMAND_TIMEOUT = 120.0  # a vault qube may have to start, or its user to unlock it


QVM_RUN = "/usr/bin/qvm-run"
VAULT_SERVICE = "qubes.WyngPassphrase"


def from_source(source: PassphraseSource, profile: str = "", *, qvm_run: str = QVM_RUN) -> Secret | None:
    """Return the passphrase the source yields, or None if none is configured.

    A vault qube is asked with the qrexec service `qubes.WyngPassphrase+PROFILE`
    (run from dom0, so no policy is involved): the service prints the passphrase.
    """
    if source.command:
        return _from_command(source.command, f"the passphrase command {source.command[0]}")
    if source.file:
        return _from_file(source.file)
    if source.qube:
        return _from_command(vault_command(source.qube, profile, qvm_run), f"the vault qube {source.qube}")
    return None


def vault_command(qube: str, profile: str, qvm_run: str = QVM_RUN) -> tuple[str, ...]:
    """The command that asks a vault qube for the passphrase of `profile`."""
    service = f"{VAULT_SERVICE}+{profile}" if profile else VAULT_SERVICE
    return (qvm_run, "--pass-io", "--no-gui", "--no-filter-escape-chars", "--service", "--", qube, service)


def prompt(what: str = "Archive passphrase: ") -> Secret:
    """Ask on the terminal; raise AuthError when there is none to ask on."""
    if not sys.stdin.isatty():
        raise AuthError(
            "the archive needs a passphrase and there is no terminal to ask for it",
            hint="set [passphrase] in the profile, or pass --passphrase-file",
        )
    return _secret(getpass.getpass(what), "the passphrase you typed")


def _from_command(argv: tuple[str, ...], what: str) -> Secret:
    """The passphrase a command (or a vault qube, through qvm-run) prints: at most
    MAX_PASSPHRASE_BYTES (line breaks at the end aside), within COMMAND_TIMEOUT."""
    # room for the line breaks that end the passphrase; more is refused without being read
    done = process.run(argv, timeout=COMMAND_TIMEOUT, max_stdout=MAX_PASSPHRASE_BYTES + 2)
    if done.stopped == "timeout":
        raise AuthError(f"{what} gave no passphrase within {COMMAND_TIMEOUT:.0f} s and was stopped",
                        hint="check that it does not wait for input (a vault qube may need to be unlocked)")
    if done.stopped == "overflow" or len(done.stdout.rstrip("\n").encode("utf-8")) > MAX_PASSPHRASE_BYTES:
        raise AuthError(f"{what} printed more than {MAX_PASSPHRASE_BYTES} bytes, which is no passphrase",
                        hint="it must print the passphrase alone, on one line")
    if done.returncode != 0:
        raise AuthError(f"{what} failed (status {done.returncode})")
    return _secret(done.stdout.rstrip("\n"), what)


def _from_file(path: str) -> Secret:
    try:
        # O_NONBLOCK: a FIFO must not hang us; it is refused below like any non-file.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as err:
        raise ConfigError(f"cannot open passphrase file {path}: {err.strerror}") from err
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):  # checked before fdopen, which raises on a directory
        os.close(fd)
        raise ConfigError(f"passphrase file {path} is not a regular file")
    with os.fdopen(fd, "rb") as handle:
        if info.st_mode & 0o077 or info.st_uid != os.geteuid():
            raise ConfigError(
                f"passphrase file {path} can be read by others",
                hint=f"chown root:root {path} && chmod 600 {path}",
            )
        data = handle.read(MAX_PASSPHRASE_BYTES + 1)
    if len(data) > MAX_PASSPHRASE_BYTES:
        raise ConfigError(f"passphrase file {path} is too large")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(f"passphrase file {path} is not UTF-8") from err
    return _secret(text.rstrip("\n"), f"passphrase file {path}")


def _secret(text: str, where: str) -> Secret:
    if not text:
        raise AuthError(f"{where} gave an empty passphrase")
    try:
        return Secret(text)
    except ValueError as err:
        raise AuthError(f"{where} has a line break inside the passphrase") from err
