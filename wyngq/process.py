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
import signal
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import IO

from wyngq.errors import ConfigError

log = logging.getLogger(__name__)

LineHandler = Callable[[str], None]


@dataclass(frozen=True)
class Completed:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


def run(
    argv: Sequence[str],
    *,
    stdin: bytes | None = None,
    on_stdout_line: LineHandler | None = None,
    on_partial_line: LineHandler | None = None,
    env: Mapping[str, str] | None = None,
    inherit_stdin: bool = False,
) -> Completed:
    """Run `argv`, wait for it and return what it printed.

    `stdin` is written to the child then closed (None: the child gets /dev/null,
    or our own stdin when `inherit_stdin`). Each stdout line is passed to
    `on_stdout_line` as it arrives (Wyng updates progress lines with `\\r`, so
    both `\\r` and `\\n` end a line); `on_partial_line` sees a line still being
    written (Wyng draws its progress bar one `|` at a time). Raise ConfigError
    if the program is missing.
    SIGINT/SIGTERM received while waiting are forwarded to the child, and the
    child's exit status tells the caller what happened.
    """
    log.debug("run: %s", " ".join(argv))
    stdin_arg: int | None
    if stdin is not None:
        stdin_arg = subprocess.PIPE
    elif inherit_stdin:
        stdin_arg = None
    else:
        stdin_arg = subprocess.DEVNULL
    # The forwarding handlers go in before the child exists and come out after it
    # is reaped: a signal in between is never lost (see _ForwardSignals).
    with _ForwardSignals() as forwarding:
        try:
            child = subprocess.Popen(
                list(argv),
                stdin=stdin_arg,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=dict(env) if env is not None else None,
                # Its own session: a terminal's Ctrl-C reaches only us, and we pass
                # it on exactly once (below), so Wyng sees one interrupt.
                start_new_session=True,
            )
        except FileNotFoundError as err:
            raise ConfigError(f"program not found: {argv[0]}", hint="install it or give its path") from err
        except PermissionError as err:
            raise ConfigError(f"program not executable: {argv[0]}") from err
        forwarding.attach(child)

        stderr_chunks: list[bytes] = []
        assert child.stderr is not None and child.stdout is not None
        stderr_thread = threading.Thread(target=_drain, args=(child.stderr, stderr_chunks), daemon=True)
        stderr_thread.start()
        if stdin is not None:
            assert child.stdin is not None
            try:
                child.stdin.write(stdin)
                child.stdin.close()
            except BrokenPipeError:
                pass
        stdout_text = _read_lines(child.stdout, on_stdout_line, on_partial_line)
        returncode = child.wait()
        stderr_thread.join()
    stderr_text = b"".join(stderr_chunks).decode("utf-8", errors="replace")
    log.debug("rc=%d from %s", returncode, argv[0])
    return Completed(tuple(argv), returncode, stdout_text, stderr_text)


def _drain(stream: IO[bytes], sink: list[bytes]) -> None:
    while chunk := stream.read(65536):
        sink.append(chunk)


def _read_lines(stream: IO[bytes], on_line: LineHandler | None, on_partial: LineHandler | None = None) -> str:
    """Read the child's stdout to the end, calling on_line for each line and
    on_partial with the unfinished last line whenever it grows."""
    read1 = getattr(stream, "read1", stream.read)
    collected: list[str] = []
    pending = b""
    while chunk := read1(65536):
        collected.append(chunk.decode("utf-8", errors="replace"))
        if on_line is None:
            continue
        pending += chunk
        *lines, pending = pending.replace(b"\r", b"\n").split(b"\n")
        for line in lines:
            if line.strip():
                on_line(line.decode("utf-8", errors="replace"))
        if on_partial is not None and pending.strip():
            on_partial(pending.decode("utf-8", errors="replace"))
    if on_line is not None and pending.strip():
        on_line(pending.decode("utf-8", errors="replace"))
    return "".join(collected)


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
