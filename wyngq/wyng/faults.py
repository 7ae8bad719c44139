"""What a failed Wyng run means, when its exit status alone misleads.

- Destination full: Wyng's send dies with `BrokenPipeError` (status 1); the
  cause, "No space left on device", is only in its debug log (one path for the
  whole machine, which the next Wyng run replaces), so the free space of a
  `file:` destination is the main evidence. Wyng keeps what it finished (often
  just the settings bundle) in a partial session; the earlier sessions are
  intact.
- Destination unreachable: status 5 with "Destination not ready to receive
  commands", after the line of the helper that failed (ssh, qvm-run).
- Wyng missing: the program cannot be run at all.

`explain` turns such a run into the error that says so, with what to do; the
free space is measured for `file:` destinations (elsewhere it cannot be told
from dom0).
"""

from __future__ import annotations

import os
import stat

from wyngq.errors import ArchiveFullError, DestinationUnreachableError, WyngError

NOT_READY = "Destination not ready to receive commands"
NO_SPACE = "No space left on device"
# a file: destination with less than this free is taken as full when the send broke off
NEARLY_FULL = 64 * 1024 * 1024
WYNG_DEBUG_LOG = "/tmp/wyng-debug/err.log"
_LOG_TAIL = 64 * 1024


def explain(dest: str, returncode: int, stderr: str, *, sending: bool) -> WyngError | None:
    """The specific error for this failed run, or None to keep the generic one."""
    if returncode == 5 and NOT_READY in stderr:
        return unreachable(dest, stderr)
    if sending and returncode == 1 and ("BrokenPipeError" in stderr or NO_SPACE in stderr):
        free = free_space(dest)
        evidence = NO_SPACE in stderr or NO_SPACE in _debug_log_tail()
        if evidence or (free is not None and free < NEARLY_FULL):
            return archive_full(dest, free, returncode)
    return None


def archive_full(dest: str, free: int | None, returncode: int) -> ArchiveFullError:
    where = f"{free // (1024 * 1024)} MiB free" if free is not None else "free space unknown from here"
    return ArchiveFullError(
        f"the archive's destination is full ({where} at {dest}); this backup did not complete (Wyng keeps "
        "only what it finished, e.g. the settings bundle, in a partial session), and the sessions already in "
        "the archive are intact",
        wyng_rc=returncode,
        hint="free space there (e.g. `prune` old sessions) or move the archive to a larger disk, then back up again",
    )


def unreachable(dest: str, stderr: str) -> DestinationUnreachableError:
    scheme = dest.split(":", 1)[0]
    hints = {
        "qubes": "is the qube holding the archive running, and does qrexec policy let dom0 use it?",
        "qubes-ssh": "is the qube running, and can it reach the ssh host?",
        "ssh": "is the host up and reachable with ssh (key, host name, port)?",
    }
    helper = _helper_line(stderr)
    return DestinationUnreachableError(
        f"cannot reach the archive at {dest}" + (f": {helper}" if helper else ""),
        wyng_rc=5,
        hint=hints.get(scheme, "check that the destination exists and is writable"),
    )


def free_space(dest: str) -> int | None:
    """Bytes free on the filesystem of a `file:` destination (as root sees it:
    reserved blocks count), or None where it cannot be told."""
    if not dest.startswith("file:"):
        return None
    path = dest.removeprefix("file:")
    while path and not os.path.exists(path):
        path = os.path.dirname(path.rstrip("/"))
    try:
        stats = os.statvfs(path or "/")
    except OSError:
        return None
    return stats.f_bfree * stats.f_frsize


def _debug_log_tail() -> str:
    """The end of Wyng's debug error log, where it writes the cause of a broken
    send; only a regular file owned by root or by us is read."""
    try:
        fd = os.open(WYNG_DEBUG_LOG, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return ""
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid not in (0, os.getuid()):
            return ""
        os.lseek(fd, max(0, info.st_size - _LOG_TAIL), os.SEEK_SET)
        return os.read(fd, _LOG_TAIL).decode("utf-8", errors="replace")
    finally:
        os.close(fd)


def _helper_line(stderr: str) -> str:
    """The line the failing helper (ssh, qvm-run) printed, made safe to show."""
    for line in stderr.splitlines():
        text = line.strip().replace("\r", "")
        if text.startswith(("ssh:", "qvm-run", "lab-qvm-run", "Permission denied", "Host key")):
            return "".join(c for c in text if c.isprintable())[:200]
    return ""
