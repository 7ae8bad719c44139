"""One exception base for every failure the user can act on, and the exit-code table.

Only entry points turn these into exit codes; the engine and adapters raise them.
Each error carries a stable `code` string (for JSON results and Salt) and, where
possible, a `hint` that tells the user what to do next.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """The public exit-code contract (docs/exit-codes.md)."""

    OK = 0
    INTERNAL = 1
    USAGE = 2
    CONFIG = 3
    NOT_PERMITTED = 4
    BUSY = 5
    QUBES = 6
    AUTH = 7
    PARTIAL = 8
    WYNG = 9


class WyngqError(Exception):
    """Base of all expected failures.

    `message` says what went wrong, `hint` what to do about it.
    """

    exit_code: ExitCode = ExitCode.INTERNAL
    code: str = "internal"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"


class UsageError(WyngqError):
    exit_code = ExitCode.USAGE
    code = "usage"


class ConfigError(WyngqError):
    exit_code = ExitCode.CONFIG
    code = "config"


class WyngMissingError(ConfigError):
    code = "wyng_missing"


class WyngTooOldError(ConfigError):
    code = "wyng_too_old"


class NotPermittedError(WyngqError):
    exit_code = ExitCode.NOT_PERMITTED
    code = "not_permitted"


class UnauthenticatedArchiveError(NotPermittedError):
    """The archive is not one Wyng authenticates (or stopped being one mid-job)."""

    code = "unauthenticated_archive"


class BusyError(WyngqError):
    exit_code = ExitCode.BUSY
    code = "busy"


class QubesError(WyngqError):
    exit_code = ExitCode.QUBES
    code = "qubes"


class ConflictError(QubesError):
    code = "conflict"


class UnsupportedQubeError(QubesError):
    """A restore names a qube of a class wyngq does not restore (e.g. RemoteVM)."""

    code = "unsupported_class"


class SnapshotsDisabledError(QubesError):
    """A running qube's volume is written live (revisions_to_keep -1): no consistent copy."""

    code = "snapshots_disabled"


class AuthError(WyngqError):
    exit_code = ExitCode.AUTH
    code = "auth"


class WyngError(WyngqError):
    """Wyng failed; `wyng_rc` is its own exit status."""

    exit_code = ExitCode.WYNG
    code = "wyng"

    def __init__(self, message: str, *, wyng_rc: int | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.wyng_rc = wyng_rc


class ArchiveNotFoundError(WyngError):
    code = "archive_not_found"


class WyngStalledError(WyngError):
    """A Wyng call printed nothing for the profile's stall_timeout and was stopped."""

    code = "wyng_stalled"


class ArchiveFullError(WyngError):
    """The archive's destination ran out of space during a send; the sessions
    already in the archive are untouched."""

    code = "archive_full"


class DestinationUnreachableError(WyngError):
    """Wyng could not reach the archive's destination (qube, ssh host)."""

    code = "destination_unreachable"


class Interrupted(WyngqError):
    """The operation was stopped by a signal; exit status 128+N."""

    code = "interrupted"

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by signal {signum}")
        self.signum = signum

    @property
    def exit_status(self) -> int:
        return 128 + self.signum
