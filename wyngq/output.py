"""Everything wyngq prints on stdout: human text on a terminal, JSON Lines otherwise.

JSON mode: one object per line, each with a `type`; the last line is always
`{"type": "result", "ok": ..., "exit_code": N, "code": "...", ...}`, errors included.
Logs never go to stdout (they go to stderr through `logging`).
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
import sys
from collections.abc import Mapping
from typing import IO, Any

from wyngq.errors import ExitCode, Interrupted, WyngqError


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

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stdout

    def event(self, type: str, /, **fields: object) -> None:
        if type == "wyng_output":
            return
        self._write({"type": type, **{k: to_data(v) for k, v in fields.items()}})

    def result(self, action: str, exit_code: int, data: Any = None, error: WyngqError | None = None) -> None:
        document: dict[str, Any] = {
            "type": "result",
            "action": action,
            "ok": exit_code == 0,
            "exit_code": exit_code,
            "code": error.code if error is not None else ("ok" if exit_code == 0 else _code_name(exit_code)),
        }
        if error is not None:
            document["message"] = error.message
            if error.hint:
                document["hint"] = error.hint
        if data is not None:
            document.update(to_data(data))
        self._write(document)

    def _write(self, document: Mapping[str, Any]) -> None:
        try:
            self.stream.write(json.dumps(document, ensure_ascii=False, sort_keys=False) + "\n")
            self.stream.flush()
        except BrokenPipeError:
            pass  # the reader went away; the work goes on and the dom0 log keeps the result


def _code_name(exit_code: int) -> str:
    try:
        return ExitCode(exit_code).name.lower()
    except ValueError:
        return "signal"


class Human:
    """Reporter and presenter for people at a terminal."""

    def __init__(self, stream: IO[str] | None = None, verbose: int = 0, quiet: bool = False) -> None:
        self.stream = stream or sys.stdout
        self.verbose = verbose
        self.quiet = quiet

    def say(self, text: str = "") -> None:
        try:
            self.stream.write(text + "\n")
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
        elif type == "volume" and fields.get("state") == "started":
            owner = f"{fields['qube']}: " if fields.get("qube") else ""
            self.say(f"  {owner}{fields.get('volume')}")
        elif self.verbose:
            self.say(f"[{type}] " + ", ".join(f"{k}={v}" for k, v in fields.items()))

    def error(self, error: WyngqError) -> None:
        print(f"wyng-util-qubes: error: {error.message}", file=sys.stderr)
        if error.hint:
            print(f"  {error.hint}", file=sys.stderr)


def _words(value: object) -> list[str]:
    return [str(v) for v in value] if isinstance(value, (list, tuple)) else []


def format_time(epoch: float) -> str:
    stamp = datetime.datetime.fromtimestamp(epoch, datetime.UTC).astimezone()
    return stamp.strftime("%Y-%m-%d %H:%M:%S %z")
