"""One wyngq operation at a time on a system (docs/architecture.md).

Wyng itself refuses a second Wyng process, but an operation of ours makes
several Wyng calls (list, send, list again, …): without a lock of our own, a
cron backup could slip in between them. The lock is held for the whole
operation; a second one fails fast with `busy` naming the holder, or waits
when asked to. The lock file records who holds it (pid, action, start time).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator

from wyngq.errors import BusyError, ConfigError

LOCK_PATH = "/run/wyng-util-qubes.lock"
LOCK_PATH_ENV = "WYNGQ_LOCK_PATH"
POLL_SECONDS = 0.25


def lock_path() -> str:
    return os.environ.get(LOCK_PATH_ENV) or LOCK_PATH


@contextlib.contextmanager
def operation_lock(action: str, *, wait: float | None = None, path: str | None = None) -> Iterator[None]:
    """Hold the system-wide wyngq lock while the block runs.

    `wait` None or 0: fail at once with BusyError if another operation holds it;
    a number of seconds: wait up to that long; math.inf: wait as long as it takes.
    """
    path = path or lock_path()
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as err:
        raise ConfigError(
            f"cannot open the lock file {path}: {err.strerror}",
            hint="run wyng-util-qubes as root (sudo)" if isinstance(err, PermissionError) else None,
        ) from err
    try:
        deadline = time.monotonic() + (wait or 0)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise BusyError(
                        f"another wyng-util-qubes operation is running ({_holder(fd)})",
                        hint="wait for it to finish, or pass --wait (or --wait=SECONDS)",
                    ) from None
                time.sleep(POLL_SECONDS)
        record = json.dumps({"pid": os.getpid(), "action": action, "since": int(time.time())}).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, record, 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
        since = time.strftime("%H:%M:%S", time.localtime(int(info["since"])))
        return f"{info['action']} by pid {int(info['pid'])} since {since}"
    except (ValueError, KeyError, TypeError, OSError):
        return "holder unknown"
