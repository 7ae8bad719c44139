"""Everything wyngq prints on stdout: human text on a terminal, JSON Lines otherwise.

JSON mode: one object per line, each with a `type`; the last line is always
`{"type": "result", "schema": "wyngq/1", "ok": ..., "exit_code": N, "code": "...", ...}`,
errors included. Every line is a dataclass of `wyngq.contract` written by its
one serializer (docs/json.md).
Logs never go to stdout (they go to stderr through `logging`).

Nothing an archive supplies reaches a terminal raw: every line of human text
(`Human`) and every log line (`SafeFormatter`) passes through `shown` /
`terminal_text`, which write escape and control characters as `\\x1b`-style
escapes. JSON escapes control characters itself.
"""

from __future__ import annotations

import datetime
import json
import logging
import shutil
import sys
import time
from collections.abc import Callable
from typing import IO, TYPE_CHECKING

from wyngq.contract.events import BackupPlanned, Opening, VolumeProgress, WyngOutput
from wyngq.contract.results import ResultLine, result_line
from wyngq.contract.serialize import JSON, to_json
from wyngq.errors import Interrupted, WyngqError
from wyngq.progress import ProgressBoard

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

    from wyngq.contract.events import Event


def shown(value: object) -> str:
    """`value` as text that is safe on a terminal, on one line: every character
    that is not printable (C0 and C1 controls such as ESC and CSI, DEL, line
    breaks, bidi overrides) is written as a Python-style escape (`\\x1b`)."""
    text = str(value)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _escape(c) for c in text)


def terminal_text(text: str) -> str:
    """Like `shown`, but the line breaks wyngq put in its own text stay."""
    return "\n".join(shown(line) for line in text.split("\n"))


def _escape(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


# JSON escapes C0 controls itself; these others (DEL, C1 controls such as CSI, bidi
# controls) can only occur inside JSON strings, where a \\u escape means the same
_JSON_ESCAPES = {c: f"\\u{c:04x}" for c in [*range(0x7F, 0xA0), *range(0x202A, 0x202F), *range(0x2066, 0x206A),
                                            0x200E, 0x200F, 0x2028, 0x2029]}


class SafeFormatter(logging.Formatter):
    """Log lines with `terminal_text` applied (tracebacks included)."""

    def format(self, record: logging.LogRecord) -> str:
        return terminal_text(super().format(record))


def log_to_stderr(level: int, fmt: str) -> None:
    """logging.basicConfig to stderr, each line through SafeFormatter."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(SafeFormatter(fmt))
    logging.basicConfig(level=level, handlers=[handler])


def exit_status(error: WyngqError) -> int:
    return error.exit_status if isinstance(error, Interrupted) else int(error.exit_code)


class JsonLines:
    """Reporter and presenter for machines: JSON Lines on stdout."""

    def __init__(self, stream: IO[str] | None = None, *, quiet: bool = False) -> None:
        self.stream = stream or sys.stdout
        self.quiet = quiet  # only the result line: Salt's `stateful` protocol wants one object

    def event(self, event: Event, /) -> None:
        if isinstance(event, WyngOutput) or self.quiet:
            return
        self._write(to_json(event))

    def result(self, action: str, exit_code: int, data: DataclassInstance | None = None,
               error: WyngqError | None = None, *, job: str | None = None) -> None:
        self.line(result_line(action, exit_code, data, error, job=job))

    def line(self, line: ResultLine) -> None:
        self._write(to_json(line))

    def _write(self, document: JSON) -> None:
        try:
            self.stream.write(json.dumps(document, ensure_ascii=False, sort_keys=False).translate(_JSON_ESCAPES) + "\n")
            self.stream.flush()
        except BrokenPipeError:
            pass  # the reader went away; the work goes on and the dom0 log keeps the result


def report_error(presenter: JsonLines | Human, action: str, error: WyngqError) -> int:
    """Show a failed action the way the presenter shows results; return its exit status."""
    status = exit_status(error)
    if isinstance(presenter, JsonLines):
        presenter.result(action, status, error=error)
    else:
        presenter.error(error)
    return status


class Human:
    """Reporter and presenter for people at a terminal."""

    def __init__(self, stream: IO[str] | None = None, verbose: int = 0, quiet: bool = False,
                 clock: Callable[[], float] = time.monotonic, live: bool | None = None) -> None:
        self.stream = stream or sys.stdout
        self.verbose = verbose
        self.quiet = quiet
        self.board = ProgressBoard(clock)
        self.live = self.stream.isatty() if live is None else live  # redraw one line with \r
        self._shown = 0  # length of the line being redrawn

    def say(self, text: str = "") -> None:
        try:
            self.stream.write(terminal_text(text) + "\n")
            self.stream.flush()
        except BrokenPipeError:
            pass

    def event(self, event: Event, /) -> None:
        if self.quiet:
            return
        if isinstance(event, WyngOutput):
            if self.verbose:
                self.say(f"  | {event.line}")
        elif isinstance(event, BackupPlanned):
            verb = "Would back up" if event.dry_run else "Backing up"
            self.say(f"{verb} {len(event.qubes)} qube(s): {', '.join(event.qubes)}")
            if event.running:
                self.say("Running, so their state at their last start is saved: " + ", ".join(event.running))
            self.board.plan(dict(event.sizes))
        elif isinstance(event, Opening):
            self.say("Opening the archive (Wyng derives the key first: a few seconds)...")
        elif isinstance(event, VolumeProgress):
            self._volume(event)
        elif self.verbose:
            fields = to_json(event)
            assert isinstance(fields, dict)
            self.say(f"[{fields.pop('type')}] " + ", ".join(f"{k}={v}" for k, v in fields.items()))

    def _volume(self, event: VolumeProgress) -> None:
        """One line per volume; on a terminal it is redrawn as Wyng progresses, with
        bytes done, rate and time left (wyngq.progress), and ends with its size and time."""
        owner = f"{event.qube}: " if event.qube else ""
        label = f"  {owner}{event.volume}"
        if event.state == "started":
            line = self.board.start(event.volume, label, event.size)
            self._redraw(line) if self.live else self.say(label)
        elif event.state == "progress":
            line = self.board.advance(event.percent or 0)
            if self.live:
                self._redraw(line)
        elif event.state == "done":
            line = self.board.finish()
            if self.live:
                self._redraw(line)
                self._write("\n")
                self._shown = 0
        elif event.state == "deleted":
            self.say(f"{label}  deleted")

    def _redraw(self, line: str) -> None:
        """Draw `line` over the one shown, padded so that nothing of a longer one stays,
        and cut to the terminal's width (a wrapped line could not be redrawn)."""
        line = line[: max(20, shutil.get_terminal_size().columns - 1)]
        self._write("\r" + line.ljust(self._shown))
        self._shown = len(line)

    def _write(self, text: str) -> None:
        try:
            self.stream.write("\r".join(terminal_text(part) for part in text.split("\r")))
            self.stream.flush()
        except BrokenPipeError:
            pass

    def error(self, error: WyngqError) -> None:
        print(f"wyng-util-qubes: error: {terminal_text(error.message)}", file=sys.stderr)
        if error.hint:
            print(f"  {terminal_text(error.hint)}", file=sys.stderr)


def format_time(epoch: float) -> str:
    stamp = datetime.datetime.fromtimestamp(epoch, datetime.UTC).astimezone()
    return stamp.strftime("%Y-%m-%d %H:%M:%S %z")
