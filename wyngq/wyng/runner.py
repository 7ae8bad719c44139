"""Run Wyng and turn its exit status into wyngq's errors, through one table.

This module owns the Wyng subprocess contract (docs/facts.md): the passphrase
travels on stdin only, a stale `<local-from>.error` is removed before each run
and read after exit 2, and every exit status maps to exactly one outcome;
unknown statuses are failures.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from wyngq import phases, process
from wyngq.errors import (
    ArchiveNotFoundError,
    AuthError,
    BusyError,
    ConfigError,
    Interrupted,
    UnauthenticatedArchiveError,
    WyngError,
    WyngMissingError,
    WyngqError,
    WyngStalledError,
)
from wyngq.secret import Secret
from wyngq.wyng import commands, faults
from wyngq.wyng.catalog import Archive, check_header_version, check_version, parse_list_output

log = logging.getLogger(__name__)

ProgressLine = Callable[[str], None]


@dataclass(frozen=True)
class WyngRun:
    """What one Wyng call left behind: its status, output and failed volumes."""

    returncode: int
    stdout: str
    stderr: str
    failed_volumes: tuple[str, ...] = ()
    truncated: bool = False  # the middle of stdout was dropped (process.MAX_KEPT_BYTES)


class Wyng:
    """The Wyng port: every Wyng call wyngq makes goes through one of these methods."""

    def __init__(
        self,
        target: commands.WyngTarget,
        *,
        passphrase: Secret | None = None,
        on_output: ProgressLine | None = None,
    ) -> None:
        self.target = target
        self.passphrase = passphrase
        self.on_output = on_output
        self.encrypted_only = False

    def pin_encrypted(self) -> None:
        """From now on, refuse the outcome of any call whose header says the archive
        is not encrypted. A job that checked the catalogue once (`authenticated`)
        thereby keeps that guarantee for every later call: an archive swapped for
        an unencrypted one between calls is caught (an encrypted one with another
        key fails to authenticate anyway)."""
        self.encrypted_only = True

    # -- the calls -----------------------------------------------------------
    def catalog(self) -> Archive:
        """Return the archive's catalogue; raise ConfigError if Wyng is too old."""
        result = self._run(commands.list_command(self.target), stream=False)
        if result.truncated:
            raise WyngError(f"Wyng's archive listing is larger than the {process.MAX_KEPT_BYTES} bytes wyngq reads")
        archive = parse_list_output(result.stdout)
        check_version(archive)
        return archive

    def arch_init(self, options: commands.InitOptions) -> None:
        """Create the archive; raise ConfigError if the Wyng that made it is too old."""
        made = self._run(commands.arch_init_command(self.target, options))
        try:
            check_header_version(made.stdout)
        except ConfigError as err:
            raise ConfigError(f"the archive was created, but {err.message}", hint=err.hint) from err

    def send(
        self,
        *,
        local_from: str,
        metadata_file: str,
        tags: Sequence[str] = (),
        dedup: bool = False,
        autoprune: str | None = None,
        dry_run: bool = False,
        other_imports: Sequence[tuple[str, str]] = (),
    ) -> WyngRun:
        argv = commands.send_command(
            self.target,
            local_from=local_from,
            metadata_file=metadata_file,
            tags=tags,
            dedup=dedup,
            autoprune=autoprune,
            dry_run=dry_run,
            other_imports=other_imports,
        )
        return self._run(argv, error_file=local_from + ".error", sending=True)

    def monitor(self, *, local_from: str) -> WyngRun:
        return self._run(commands.monitor_command(self.target, local_from), error_file=local_from + ".error")

    def receive(self, *, local_from: str, session: str, use_snapshot: bool = False) -> WyngRun:
        argv = commands.receive_command(self.target, local_from=local_from, session=session, use_snapshot=use_snapshot)
        return self._run(argv, error_file=local_from + ".error")

    def receive_to_file(self, volume: str, session: str, path: str) -> None:
        self._run(commands.receive_to_file_command(self.target, volume, session, path), stream=False)

    def verify(self, session: str, volumes: Sequence[str]) -> WyngRun:
        return self._run(commands.verify_command(self.target, session, volumes), accept=_CHECK_FAILED)

    def arch_check(self, session: str | None = "newest") -> WyngRun:
        return self._run(commands.arch_check_command(self.target, session), accept=_CHECK_FAILED)

    def prune(
        self,
        *,
        volumes: Sequence[str] = (),
        session: str | None = None,
        all_before: bool = False,
        all_volumes: bool = False,
        autoprune: str | None = None,
    ) -> WyngRun:
        return self._run(
            commands.prune_command(
                self.target,
                volumes=volumes,
                session=session,
                all_before=all_before,
                all_volumes=all_volumes,
                autoprune=autoprune,
            )
        )

    def delete(self, volume: str) -> WyngRun:
        return self._run(commands.delete_command(self.target, volume), stream=False)

    # -- the mechanism ---------------------------------------------------------
    def _run(
        self,
        argv: list[str],
        *,
        error_file: str | None = None,
        stream: bool = True,
        accept: frozenset[int] = frozenset(),
        sending: bool = False,
    ) -> WyngRun:
        """Run Wyng. Exit 2 with failed volumes named in `error_file`, and any
        status in `accept`, come back as a WyngRun; every other failure raises
        the error `error_for` gives (busy, authentication and interruption always)."""
        if error_file is not None:
            _remove(error_file)
        stdin = self.passphrase.line() if self.passphrase is not None else None
        handler = self.on_output if stream else None
        try:
            with phases.phase("wyng " + next((word for word in argv[1:] if not word.startswith("-")), "")):
                done = process.run(
                    argv,
                    stdin=stdin,
                    on_stdout_line=handler,
                    on_partial_line=getattr(handler, "partial", None),
                    idle_timeout=self.target.stall_timeout,
                )
        except process.ProgramMissingError as err:
            raise WyngMissingError(f"Wyng is not installed at {argv[0]!r}",
                                   hint="install Wyng (wyng-backup), or give its path with --wyng or the "
                                        "profile's `wyng` key") from err
        if done.stopped is not None:
            raise WyngStalledError(
                f"Wyng printed nothing for {self.target.stall_timeout:.0f} s and was stopped",
                wyng_rc=done.returncode,
                hint="check that the destination answers (a qubes:// qube that hangs, a network mount); "
                     "a profile can allow more time with stall_timeout",
            )
        failed: tuple[str, ...] = ()
        if done.returncode == 2 and error_file is not None:
            failed = _read_error_file(error_file)
        run = WyngRun(done.returncode, done.stdout, done.stderr, failed, done.truncated)
        if self.encrypted_only:
            check_encrypted(done.stdout, header_required=done.returncode in (0, 2, *accept))
        if done.returncode == 0:
            return run
        error = error_for(done.returncode, done.stderr, done.stdout)
        if isinstance(error, BusyError | AuthError | Interrupted):
            raise error
        if (done.returncode == 2 and failed) or done.returncode in accept:
            return run
        raise faults.explain(self.target.dest, done.returncode, done.stderr, sending=sending) or error


HEADER = re.compile(r"^(Encrypted|Un-encrypted) archive '", re.MULTILINE)


def check_encrypted(stdout: str, *, header_required: bool = True) -> None:
    """Raise unless Wyng's header says `Encrypted archive`. Wyng prints it once, after
    anything taken from the archive itself (a "Prior operation in progress" line
    quotes archive.ini and could carry a forged header), so the LAST header line
    is Wyng's own; any run that printed one is checked, whatever its exit status."""
    found = HEADER.findall(stdout)
    if not found and not header_required:
        return
    if not found or found[-1] != "Encrypted":
        kind = "an unencrypted" if found else "an unidentified"
        raise UnauthenticatedArchiveError(
            f"Wyng reported {kind} archive in the middle of a job that requires an encrypted one",
            hint="the archive was changed or replaced while the job ran; check who can write to it",
        )


# verify and arch-check report a damaged archive with 1 (corrupt chunk) or 2 (missing session)
_CHECK_FAILED = frozenset({1, 2})


def error_for(returncode: int, stderr: str, stdout: str = "") -> WyngqError:
    """Translate a failed Wyng run into the one error that says what happened."""
    detail = _last_error_line(stderr) or _last_error_line(stdout) or f"Wyng exited with status {returncode}"
    if returncode == 1 and "obtaining lock" in stderr:
        return BusyError("another Wyng process is running on this system", hint="wait for it to finish, or use --wait")
    if returncode == 3:
        return AuthError(
            "the archive did not accept the passphrase",
            hint="check the passphrase, or the profile's passphrase source",
        )
    if returncode == 6:
        return ArchiveNotFoundError(f"no Wyng archive at this destination: {detail}", wyng_rc=returncode,
                                    hint="check --dest, or create one with `create`")
    if returncode == 5:
        return WyngError(f"the destination is not ready: {detail}", wyng_rc=returncode)
    if returncode in (8, 128 + signal.SIGINT, -signal.SIGINT):  # -N: the signal came before Wyng's handler
        return Interrupted(signal.SIGINT)
    if returncode in (128 + signal.SIGTERM, -signal.SIGTERM):
        return Interrupted(signal.SIGTERM)
    if returncode in (128 + signal.SIGKILL, -signal.SIGKILL):
        return WyngError("Wyng was killed", wyng_rc=returncode)
    if returncode == 127:
        return ConfigError("Wyng could not be run", hint="check the path to wyng")
    return WyngError(f"Wyng failed (status {returncode}): {detail}", wyng_rc=returncode)


def _last_error_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for index in range(len(lines) - 1, -1, -1):
        line = lines[index]
        if "Error" in line or "error" in line or line.startswith("***"):
            reason = _EXPLAINED_BEFORE.get(line)
            if reason is not None and index > 0 and reason.match(lines[index - 1]):
                return f"{lines[index - 1]} ({line})"  # Wyng's own reason, said on the line before
            return line
    return lines[-1] if lines else ""


# Errors whose reason Wyng prints on the line before: a too-short passphrase read
# from stdin ends in "Passphrase required." after saying why.
_EXPLAINED_BEFORE = {"InputError: Passphrase required.": re.compile(r"Passphrase must be .+")}


def _read_error_file(path: str) -> tuple[str, ...]:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return ()
    finally:
        _remove(path)
    volumes = data.get("volumes") if isinstance(data, dict) else None
    if not isinstance(volumes, list):
        return ()
    return tuple(str(v) for v in volumes)


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
