"""wyngq.output: JSON Lines whose last line is always the result, and plain data."""

from __future__ import annotations

import enum
import io
import json
import logging
import signal
from dataclasses import dataclass, field
from typing import Any

import pytest

from wyngq.backup import BackupResult, QubeOutcome
from wyngq.contract import SCHEMA
from wyngq.contract.events import BackupPlanned, QubeFailed, StepStarted, VolumeProgress, WyngOutput
from wyngq.contract.maintenance import PrunePlanned
from wyngq.contract.results import VersionResult
from wyngq.contract.serialize import to_json
from wyngq.errors import AuthError, ConfigError, ExitCode, Interrupted, WyngError, WyngqError
from wyngq.model import QubeClass
from wyngq.output import Human, JsonLines, SafeFormatter, exit_status, shown, terminal_text


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    text = stream.getvalue()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def test_events_then_result_last() -> None:
    out = io.StringIO()
    jsonl = JsonLines(out)
    jsonl.event(BackupPlanned(("work", "vault"), ("appvms/work/private.img",), (), False, {}))
    jsonl.event(VolumeProgress("appvms/work/private.img", "started", qube="work"))
    jsonl.result("version", 0, VersionResult("1.2"))
    lines = _lines(out)
    assert lines == [
        {"type": "plan", "qubes": ["work", "vault"], "volumes": ["appvms/work/private.img"], "running": [],
         "dry_run": False, "sizes": {}, "action": "backup"},
        {"type": "volume", "volume": "appvms/work/private.img", "state": "started", "qube": "work"},
        {"type": "result", "schema": SCHEMA, "action": "version", "ok": True, "exit_code": 0, "code": "ok",
         "changed": False, "comment": "version: done", "version": "1.2"},
    ]


def test_quiet_json_prints_only_the_result_with_changed_and_comment() -> None:
    from wyngq.maintenance import PruneResult

    out = io.StringIO()
    jsonl = JsonLines(out, quiet=True)
    jsonl.event(PrunePlanned(False, {}))
    jsonl.result("prune", 0, PruneResult(False, {"work": ("20261126-151007",)}))
    (line,) = _lines(out)
    assert line["changed"] is True and line["comment"] == "prune: done"
    assert line["removed"] == {"work": ["20261126-151007"]}


def test_wyngs_raw_output_is_not_a_json_line() -> None:
    out = io.StringIO()
    JsonLines(out).event(WyngOutput("Volume 'appvms/work/private.img'"))
    assert out.getvalue() == ""


def test_error_result_carries_code_message_and_hint() -> None:
    out = io.StringIO()
    error = AuthError("the archive did not accept the passphrase", hint="check the passphrase")
    JsonLines(out).result("list", exit_status(error), error=error)
    assert _lines(out) == [
        {
            "type": "result",
            "schema": SCHEMA,
            "action": "list",
            "ok": False,
            "exit_code": 7,
            "code": "auth",
            "changed": False,
            "comment": "the archive did not accept the passphrase",
            "message": "the archive did not accept the passphrase",
            "hint": "check the passphrase",
        }
    ]


def test_error_without_hint_has_no_hint_key() -> None:
    out = io.StringIO()
    error = WyngError("Wyng failed (status 9): OptionError", wyng_rc=9)
    JsonLines(out).result("backup", exit_status(error), error=error)
    (result,) = _lines(out)
    assert result["code"] == "wyng"
    assert result["exit_code"] == 9
    assert "hint" not in result


@pytest.mark.outside_contract  # a result with neither data nor an error, to see the code alone
@pytest.mark.parametrize(
    ("exit_code", "code"), [(0, "ok"), (8, "partial"), (9, "wyng"), (5, "busy"), (130, "signal"), (143, "signal")]
)
def test_result_code_without_an_error_comes_from_the_exit_code(exit_code: int, code: str) -> None:
    out = io.StringIO()
    JsonLines(out).result("backup", exit_code)
    (result,) = _lines(out)
    assert result["ok"] is (exit_code == 0)
    assert result["exit_code"] == exit_code
    assert result["code"] == code


def test_partial_backup_result_with_its_data() -> None:
    out = io.StringIO()
    result = BackupResult(
        session="20261126-151007",
        dry_run=False,
        qubes=(QubeOutcome("vault", True, ("appvms/vault/private.img",)), QubeOutcome("work", False, error="failed")),
    )
    JsonLines(out).result("backup", int(result.exit_code), result)
    (line,) = _lines(out)
    assert line["ok"] is False
    assert line["exit_code"] == 8
    assert line["code"] == "partial"
    assert line["session"] == "20261126-151007"
    assert [q["name"] for q in line["qubes"]] == ["vault", "work"]
    assert line["qubes"][0]["volumes"] == ["appvms/vault/private.img"]


def test_non_ascii_is_written_as_is() -> None:
    out = io.StringIO()
    JsonLines(out).event(QubeFailed("work", "receive", "5 volumes, 960——>43 MB"))
    assert "960——>43" in out.getvalue()


class _ClosedPipe(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError

    def flush(self) -> None:
        raise BrokenPipeError


@pytest.mark.outside_contract
def test_broken_pipe_is_ignored() -> None:
    jsonl = JsonLines(_ClosedPipe())
    jsonl.event(StepStarted("arch-check"))
    jsonl.result("backup", 0)
    Human(_ClosedPipe()).say("hello")


def test_exit_status() -> None:
    assert exit_status(ConfigError("x")) == ExitCode.CONFIG
    assert int(ExitCode.CONFIG) == 3
    assert exit_status(WyngError("x")) == 9
    assert exit_status(Interrupted(signal.SIGINT)) == 130
    assert exit_status(Interrupted(signal.SIGTERM)) == 143


class Color(enum.Enum):
    RED = "red"


@dataclass(frozen=True)
class Inner:
    klass: QubeClass
    tags: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Outer:
    name: str
    inner: Inner
    items: tuple[Inner, ...] = ()
    mapping: dict[Any, Any] = field(default_factory=dict)
    color: Color = Color.RED
    nothing: None = None


def test_to_json_on_nested_dataclasses_enums_and_collections() -> None:
    value = Outer(
        name="work",
        inner=Inner(QubeClass.TEMPLATE, frozenset({"b", "a"})),
        items=(Inner(QubeClass.APP),),
        mapping={"k": (1, 2), 3: {"x"}},
    )
    assert to_json(value) == {
        "name": "work",
        "inner": {"klass": "TemplateVM", "tags": ["a", "b"]},
        "items": [{"klass": "AppVM", "tags": []}],
        "mapping": {"k": [1, 2], "3": ["x"]},
        "color": "red",
        "nothing": None,
    }
    json.dumps(to_json(value))  # plain JSON, nothing left over


def test_to_json_leaves_plain_values_alone() -> None:
    for value in (None, True, 3, 2.5, "text"):
        assert to_json(value) == value


def test_to_json_refuses_what_is_not_json() -> None:
    for value in (Inner, object(), b"bytes"):
        with pytest.raises(TypeError, match="not part of the JSON contract"):
            to_json(value)


def test_human_prints_plan_and_volumes() -> None:
    out = io.StringIO()
    human = Human(out)
    human.event(BackupPlanned(("vault", "work"), (), ("work",), True, {}))
    human.event(VolumeProgress("appvms/work/private.img", "started", qube="work"))
    human.event(VolumeProgress("appvms/work/private.img", "done", qube="work"))
    human.event(WyngOutput("hidden unless verbose"))
    assert out.getvalue().splitlines() == [
        "Would back up 2 qube(s): vault, work",
        "Running, so their state at their last start is saved: work",
        "  work: appvms/work/private.img",
    ]


def test_human_quiet_prints_nothing() -> None:
    out = io.StringIO()
    Human(out, quiet=True).event(BackupPlanned(("work",), (), (), False, {}))
    assert out.getvalue() == ""


# -- nothing raw to a terminal ---------------------------------------------------------------
HOSTILE_TEXT = "a\x1b[2Jb\x07c\x9b31md\u202ee\x7ff\tg\rh\x00i"


def test_shown_escapes_every_control_character_and_keeps_the_rest() -> None:
    assert shown(HOSTILE_TEXT) == "a\\x1b[2Jb\\x07c\\x9b31md\\u202ee\\x7ff\\x09g\\x0dh\\x00i"
    assert shown("plain — ✓ wörk 🎉") == "plain — ✓ wörk 🎉"
    assert shown("two\nlines") == "two\\x0alines"
    assert terminal_text("two\nlines\x1b") == "two\nlines\\x1b"


def test_human_output_and_errors_carry_no_raw_control_character(capsys: pytest.CaptureFixture[str]) -> None:
    out = io.StringIO()
    human = Human(out, verbose=1)
    human.say(f"qube {HOSTILE_TEXT}")
    human.event(WyngOutput(HOSTILE_TEXT))
    human.event(QubeFailed("work", "receive", HOSTILE_TEXT))
    human.error(WyngqError(f"bad {HOSTILE_TEXT}", hint=HOSTILE_TEXT))
    for text in (out.getvalue(), capsys.readouterr().err):
        assert not any(not c.isprintable() and c != "\n" for c in text), repr(text)
        assert "\\x1b[2J" in text


def test_json_lines_escape_c1_and_bidi_controls_and_mean_the_same() -> None:
    out = io.StringIO()
    JsonLines(out).event(VolumeProgress(HOSTILE_TEXT, "deleted"))
    line = out.getvalue()
    assert not any(not c.isprintable() and c != "\n" for c in line), repr(line)
    assert json.loads(line)["volume"] == HOSTILE_TEXT


def test_log_lines_are_escaped() -> None:
    record = logging.LogRecord("wyngq", logging.WARNING, __file__, 1, "archive said %s", (HOSTILE_TEXT,), None)
    text = SafeFormatter("%(levelname)s: %(message)s").format(record)
    assert text.startswith("WARNING: archive said a\\x1b[2J") and "\x1b" not in text
