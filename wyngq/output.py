"""Everything wyngq prints on stdout: human text on a terminal, JSON Lines otherwise.

JSON mode: one object per line, each with a `type`; the last line is always
`{"type": "result", "ok": ..., "exit_code": N, "code": "...", ...}`, errors included.
Logs never go to stdout (they go to stderr through `logging`).

Nothing an archive supplies reaches a terminal raw: every line of human text
(`Human`) and every log line (`SafeFormatter`) passes through `shown` /
`terminal_text`, which write escape and control characters as `\\x1b`-style
escapes. JSON escapes control characters itself.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
import logging
import shutil
import sys
import time
from collections.abc import Callable, Mapping
from typing import IO, Any

from wyngq.errors import ExitCode, Interrupted, WyngqError
from wyngq.progress import ProgressBoard


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


def to_data(value: Any) -> Any:
    """Dataclasses, enums, tuples and mappings as plain JSON values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_data(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): to_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [to_data(v) for v in value]
        return sorted(items) if isinstance(value, (set, frozenset)) else items
    return value


class JsonLines:
    """Reporter and presenter for machines: JSON Lines on stdout."""

    def __init__(self, stream: IO[str] | None = None, *, quiet: bool = False) -> None:
        self.stream = stream or sys.stdout
        self.quiet = quiet  # only the result line: Salt's `stateful` protocol wants one object

    def event(self, type: str, /, **fields: object) -> None:
        if type == "wyng_output" or self.quiet:
            return
        self._write({"type": type, **{k: to_data(v) for k, v in fields.items()}})

    def result(self, action: str, exit_code: int, data: Any = None, error: WyngqError | None = None) -> None:
        document: dict[str, Any] = {
            "type": "result",
            "action": action,
            "ok": exit_code == 0,
            "exit_code": exit_code,
            "code": error.code if error is not None else result_code(exit_code, data),
            # for Salt's `stateful` protocol, and anyone who only wants to know
            # whether something was changed, in one line
            "changed": bool(_field(data, "changed")),
            "comment": error.message if error is not None else _comment(action, exit_code, data),
        }
        if error is not None:
            document["message"] = error.message
            if error.hint:
                document["hint"] = error.hint
        if data is not None:
            # the action's data never overwrites the contract fields above
            document |= {k: v for k, v in to_data(data).items() if k not in document}
        self._write(document)

    def _write(self, document: Mapping[str, Any]) -> None:
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


def result_code(exit_code: int, data: Any) -> str:
    """`ok`, or for a result that failed without an error (partial failure, a
    refused plan) the code the result gives, else the exit code's name."""
    if exit_code == 0:
        return "ok"
    code = _field(data, "code")
    return code if isinstance(code, str) else _code_name(exit_code)


def _field(data: Any, name: str) -> Any:
    """A result's own `changed` / `summary`: an attribute, or a key of a mapping."""
    return data.get(name) if isinstance(data, Mapping) else getattr(data, name, None)


def _comment(action: str, exit_code: int, data: Any) -> str:
    summary = _field(data, "summary")
    if isinstance(summary, str):
        return summary
    return f"{action}: done" if exit_code == 0 else f"{action}: failed (exit {exit_code})"


def _code_name(exit_code: int) -> str:
    try:
        return ExitCode(exit_code).name.lower()
    except ValueError:
        return "signal"


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

    def event(self, type: str, /, **fields: object) -> None:
        if self.quiet:
            return
        if type == "wyng_output":
            if self.verbose:
                self.say(f"  | {fields.get('line', '')}")
            return
        if type == "plan":
            verb = "Would back up" if fields.get("dry_run") else "Backing up"
            qubes = _words(fields.get("qubes"))
            self.say(f"{verb} {len(qubes)} qube(s): {', '.join(qubes)}")
            running = _words(fields.get("running"))
            if running:
                self.say("Running, so their state at their last start is saved: " + ", ".join(running))
            sizes = fields.get("sizes")
            if isinstance(sizes, Mapping):
                self.board.plan({str(k): int(v) for k, v in sizes.items() if isinstance(v, int)})
        elif type == "opening":
            self.say("Opening the archive (Wyng derives the key first: a few seconds)...")
        elif type == "volume":
            self._volume(fields)
        elif self.verbose:
            self.say(f"[{type}] " + ", ".join(f"{k}={v}" for k, v in fields.items()))

    def _volume(self, fields: Mapping[str, object]) -> None:
        """One line per volume; on a terminal it is redrawn as Wyng progresses, with
        bytes done, rate and time left (wyngq.progress), and ends with its size and time."""
        owner = f"{fields['qube']}: " if fields.get("qube") else ""
        label = f"  {owner}{fields.get('volume')}"
        state = fields.get("state")
        size = fields.get("size")
        if state == "started":
            line = self.board.start(str(fields.get("volume")), label, size if isinstance(size, int) else None)
            self._redraw(line) if self.live else self.say(label)
        elif state == "progress":
            percent = fields.get("percent")
            line = self.board.advance(percent if isinstance(percent, int) else 0)
            if self.live:
                self._redraw(line)
        elif state == "done":
            line = self.board.finish()
            if self.live:
                self._redraw(line)
                self._write("\n")
                self._shown = 0
        elif state == "deleted":
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


def _words(value: object) -> list[str]:
    return [str(v) for v in value] if isinstance(value, (list, tuple)) else []


def format_time(epoch: float) -> str:
    stamp = datetime.datetime.fromtimestamp(epoch, datetime.UTC).astimezone()
    return stamp.strftime("%Y-%m-%d %H:%M:%S %z")
