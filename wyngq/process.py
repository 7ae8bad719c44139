"""The one place that starts subprocesses.

Every external program (Wyng, a passphrase command, qrexec-client-vm) runs
through `run`: argv only (never a shell), stdin fed from memory or closed,
stdout streamed line by line to a callback, stderr collected. Command lines
are logged at debug level; secrets never appear in them because they travel
on stdin only.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import IO

from wyngq.errors import ConfigError

log = logging.getLogger(__name__)

LineHandler = Callable[[str], None]


MAX_LINE_BYTES = 4096  # a line longer than this reaches the callbacks as its last 4096 bytes
MAX_KEPT_BYTES = 16 * 1024 * 1024  # of stdout (stderr: MAX_KEPT_STDERR) kept from the start ...
MAX_KEPT_STDERR = 1024 * 1024
TAIL_BYTES = 256 * 1024  # ... plus this much of the end; what lies between is dropped
STOP_GRACE = 10.0  # seconds between SIGTERM and SIGKILL for a child that is stopped
POLL_INTERVAL = 1.0


@dataclass(frozen=True)
class Completed:
    """What a child left: status and output. `stopped` says why wyngq stopped it
    (`stalled`: no output for `idle_timeout`; `timeout`; `overflow`: more stdout
    than `max_stdout`); `truncated`, that the middle of stdout was dropped."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    stopped: str | None = None
    truncated: bool = False


class ProgramMissingError(ConfigError):
    """The program to run does not exist (callers say which program it is)."""


def run(
    argv: Sequence[str],
    *,
    stdin: bytes | None = None,
    on_stdout_line: LineHandler | None = None,
    on_partial_line: LineHandler | None = None,
    env: Mapping[str, str] | None = None,
    inherit_stdin: bool = False,
    idle_timeout: float | None = None,
    timeout: float | None = None,
    max_stdout: int | None = None,
) -> Completed:
    """Run `argv`, wait for it and return what it printed.

    `stdin` is written to the child then closed (None: the child gets /dev/null,
    or our own stdin when `inherit_stdin`). Each stdout line is passed to
    `on_stdout_line` as it arrives (Wyng updates progress lines with `\\r`, so
    both `\\r` and `\\n` end a line); `on_partial_line` sees a line still being
    written (Wyng draws its progress bar one `|` at a time). Reading costs linear
    time whatever the child prints: lines are cut to MAX_LINE_BYTES, and the
    output kept is bounded (MAX_KEPT_BYTES and TAIL_BYTES). Raise ConfigError if
    the program is missing.
    A child that prints nothing (stdout or stderr) for `idle_timeout` seconds,
    runs longer than `timeout`, or prints more than `max_stdout` bytes is stopped
    (SIGTERM, then SIGKILL after STOP_GRACE) and `stopped` says why.
    SIGINT/SIGTERM received while waiting are forwarded to the child, and the
    child's exit status tells the caller what happened.
    """
    log.debug("run: %s", " ".join(argv))
    # The forwarding handlers go in before the child exists and come out after it
    # is reaped: a signal in between is never lost (see _ForwardSignals).
    with _ForwardSignals() as forwarding:
        child = _start(argv, _stdin_source(stdin, inherit_stdin), env)
        forwarding.attach(child)

        watch = _Watch(child, idle_timeout=idle_timeout, timeout=timeout, max_stdout=max_stdout)
        stderr = _Kept(MAX_KEPT_STDERR)
        assert child.stderr is not None and child.stdout is not None
        stderr_thread = threading.Thread(target=_drain, args=(child.stderr, stderr, watch), daemon=True)
        stderr_thread.start()
        if stdin is not None:
            _write_stdin(child, stdin)
        stdout = _read_lines(child.stdout, on_stdout_line, on_partial_line, watch)
        returncode = child.wait()
        stderr_thread.join(STOP_GRACE if watch.stopped else None)
    log.debug("rc=%d from %s%s", returncode, argv[0], f" (stopped: {watch.stopped})" if watch.stopped else "")
    return Completed(tuple(argv), returncode, stdout.text(), stderr.text(), watch.stopped, stdout.truncated)


def _stdin_source(stdin: bytes | None, inherit_stdin: bool) -> int | None:
    """What the child's stdin is: a pipe for `stdin`, ours, or /dev/null."""
    if stdin is not None:
        return subprocess.PIPE
    return None if inherit_stdin else subprocess.DEVNULL


def _start(argv: Sequence[str], stdin: int | None, env: Mapping[str, str] | None) -> subprocess.Popen[bytes]:
    """Start the child with piped stdout and stderr; raise ProgramMissingError or
    ConfigError when the program is missing or not executable."""
    try:
        return subprocess.Popen(
            list(argv),
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(env) if env is not None else None,
            # Its own session: a terminal's Ctrl-C reaches only us, and we pass
            # it on exactly once (_ForwardSignals), so Wyng sees one interrupt.
            start_new_session=True,
        )
    except FileNotFoundError as err:
        raise ProgramMissingError(f"program not found: {argv[0]}", hint="install it or give its path") from err
    except PermissionError as err:
        raise ConfigError(f"program not executable: {argv[0]}") from err


def _write_stdin(child: subprocess.Popen[bytes], data: bytes) -> None:
    """Write `data` to the child's stdin and close it; a child that does not read it is no error."""
    assert child.stdin is not None
    try:
        child.stdin.write(data)
        child.stdin.close()
    except BrokenPipeError:
        pass


class _Kept:
    """Output kept from a child: its first `head` bytes and its last TAIL_BYTES."""

    def __init__(self, head: int) -> None:
        self.head_limit = head
        self.head = bytearray()
        self.tail = bytearray()
        self.truncated = False

    def add(self, chunk: bytes) -> None:
        room = self.head_limit - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            self.tail += chunk
            if len(self.tail) > 2 * TAIL_BYTES:
                del self.tail[:-TAIL_BYTES]
                self.truncated = True

    def text(self) -> str:
        if len(self.tail) > TAIL_BYTES:
            del self.tail[:-TAIL_BYTES]
            self.truncated = True
        gap = "\n[... output dropped ...]\n" if self.truncated else ""
        head = self.head.decode("utf-8", errors="replace")
        return head + gap + bytes(self.tail).decode("utf-8", errors="replace")


class _Watch:
    """Stops a child that stalls, runs too long or prints too much."""

    def __init__(self, child: subprocess.Popen[bytes], *, idle_timeout: float | None, timeout: float | None,
                 max_stdout: int | None) -> None:
        self.child = child
        self.idle_timeout = idle_timeout or None
        self.deadline = time.monotonic() + timeout if timeout else None
        self.max_stdout = max_stdout
        self.stdout_bytes = 0
        self.last_output = time.monotonic()
        self.stopped: str | None = None
        self._terminated_at: float | None = None
        self._killed = False

    @property
    def armed(self) -> bool:
        return self.idle_timeout is not None or self.deadline is not None or self.max_stdout is not None

    def output(self, size: int, *, stdout: bool) -> None:
        self.last_output = time.monotonic()
        if stdout:
            self.stdout_bytes += size
            if self.max_stdout is not None and self.stdout_bytes > self.max_stdout:
                self.stop("overflow")

    def check(self) -> None:
        now = time.monotonic()
        if self.deadline is not None and now > self.deadline:
            self.stop("timeout")
        elif self.idle_timeout is not None and now - self.last_output > self.idle_timeout:
            self.stop("stalled")
        if self._terminated_at is not None and now - self._terminated_at > STOP_GRACE and not self._killed:
            # SIGTERM went to the child alone (Wyng cleans up on it); what is left of
            # its process group now goes, the child included
            self._killed = True
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.child.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                self.child.kill()

    def stop(self, why: str) -> None:
        if self.stopped is None:
            self.stopped = why
            log.warning("stopping %s: %s", self.child.args[0] if isinstance(self.child.args, list) else "", why)
            self._terminated_at = time.monotonic()
            with contextlib.suppress(ProcessLookupError):
                self.child.terminate()

    def give_up_reading(self) -> bool:
        """Once a stopped child is gone, a helper it left holding the pipe is not waited for."""
        return self.stopped is not None and self.child.poll() is not None and (
            time.monotonic() - (self._terminated_at or 0) > STOP_GRACE)


def _drain(stream: IO[bytes], sink: _Kept, watch: _Watch) -> None:
    while chunk := os.read(stream.fileno(), 65536):
        watch.output(len(chunk), stdout=False)
        sink.add(chunk)


def _read_lines(stream: IO[bytes], on_line: LineHandler | None, on_partial: LineHandler | None,
                watch: _Watch) -> _Kept:
    """Read the child's stdout to the end (or until `watch` stops the child),
    calling on_line for each line and on_partial with the unfinished last line
    whenever it grows. Each chunk costs time linear in its own size: separators
    are searched in the new chunk only, and the unfinished line is kept to its
    last MAX_LINE_BYTES."""
    kept = _Kept(MAX_KEPT_BYTES)
    pending = bytearray()
    fd = stream.fileno()
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while True:
            if watch.armed and not selector.select(POLL_INTERVAL):
                watch.check()
                if watch.give_up_reading():
                    break
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            watch.output(len(chunk), stdout=True)
            if watch.armed:
                watch.check()
            kept.add(chunk)
            if on_line is not None:
                _feed(chunk, pending, on_line, on_partial)
    if on_line is not None and pending.strip():
        on_line(pending.decode("utf-8", errors="replace"))
    return kept


def _feed(chunk: bytes, pending: bytearray, on_line: LineHandler, on_partial: LineHandler | None) -> None:
    *lines, last = chunk.replace(b"\r", b"\n").split(b"\n")
    for line in lines:
        pending += line[-MAX_LINE_BYTES:]
        if pending.strip():
            on_line(pending[-MAX_LINE_BYTES:].decode("utf-8", errors="replace"))
        pending.clear()
    pending += last[-MAX_LINE_BYTES:]
    if len(pending) > MAX_LINE_BYTES:
        del pending[:-MAX_LINE_BYTES]
    if on_partial is not None and pending.strip():
        on_partial(pending.decode("utf-8", errors="replace"))


class _ForwardSignals:
    """While a child runs, pass SIGINT/SIGTERM on to it instead of dying first.

    The child (Wyng) then stops cleanly, and its exit status (8 for SIGINT, 143
    for SIGTERM) reaches the caller, who turns it into Interrupted. Each kind of
    signal is passed on once (Wyng stops on the first; a SIGTERM after a SIGINT
    still gets through). A signal that comes before the child exists is passed
    on as soon as it does. When the child could not be started, or did not end
    as interrupted (it exited 0, or failed in some other way, as the signal came),
    the signal is raised again once the previous handlers are back, so the caller
    still sees it: none is ever dropped. Only the main thread can handle signals;
    elsewhere this does nothing.
    """

    _SIGNALS = (signal.SIGINT, signal.SIGTERM)
    # how a child ends when a signal stopped it: Wyng's 8 for SIGINT, 128+N, or killed by N
    _INTERRUPTED = frozenset({8, 128 + signal.SIGINT, 128 + signal.SIGTERM, -signal.SIGINT, -signal.SIGTERM})

    def __init__(self) -> None:
        self._child: subprocess.Popen[bytes] | None = None
        self._previous: dict[int, object] = {}
        self._received: list[int] = []
        self._sent: set[int] = set()

    def __enter__(self) -> _ForwardSignals:
        if threading.current_thread() is threading.main_thread():
            for signum in self._SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def attach(self, child: subprocess.Popen[bytes]) -> None:
        self._child = child
        for signum in list(self._received):
            self._send(signum)

    def _handle(self, signum: int, _frame: object) -> None:
        self._received.append(signum)
        if self._child is not None:
            self._send(signum)

    def _send(self, signum: int) -> None:
        assert self._child is not None
        if signum in self._sent or self._child.returncode is not None:
            return
        self._sent.add(signum)
        with contextlib.suppress(ProcessLookupError):
            os.kill(self._child.pid, signum)

    def __exit__(self, *_exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
        child = self._child
        if self._received and (child is None or child.returncode not in self._INTERRUPTED):
            signal.raise_signal(self._received[0])
