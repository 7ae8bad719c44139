"""The result line, and the data of the results that have no engine dataclass.

Every run ends with one result line: the envelope (`ResultLine`: whether it
worked, its exit code and stable code, whether anything changed, one line of
comment, the error's message and hint) with the action's data merged in. The
actions' data are the engine's result dataclasses (`BackupResult`,
`ListResult`, ...; `wyngq.contract.registry` lists them per action) and those
of the contract itself: the version here, a restore's report in
`wyngq.contract.restore`, the job records in `wyngq.contract.jobs` (docs/json.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from wyngq.contract import SCHEMA
from wyngq.contract.serialize import FLATTEN, OMIT_NONE
from wyngq.errors import ExitCode, WyngqError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance


@dataclass(frozen=True)
class ResultLine:
    TYPE: ClassVar[str] = "result"
    schema: str
    action: str
    ok: bool
    exit_code: int
    code: str
    changed: bool
    comment: str
    message: str | None = field(default=None, metadata=OMIT_NONE)  # errors only
    hint: str | None = field(default=None, metadata=OMIT_NONE)
    job: str | None = field(default=None, metadata=OMIT_NONE)  # the qrexec service's job id
    data: DataclassInstance | None = field(default=None, metadata=FLATTEN)


ENVELOPE = ("type", "schema", "action", "ok", "exit_code", "code", "changed", "comment", "message", "hint", "job")


def result_line(action: str, exit_code: int, data: DataclassInstance | None = None,
                error: WyngqError | None = None, *, job: str | None = None) -> ResultLine:
    """The result line of `action`: `data` is the action's result (its `changed`,
    `summary` and, for a result that failed without an error, `code` go into
    the envelope), `error` the error that ended it."""
    return ResultLine(
        schema=SCHEMA,
        action=action,
        ok=exit_code == 0,
        exit_code=exit_code,
        code=error.code if error is not None else result_code(exit_code, data),
        # for Salt's `stateful` protocol, and anyone who only wants to know
        # whether something was changed, in one line
        changed=error is None and getattr(data, "changed", False) is True,
        comment=error.message if error is not None else _comment(action, exit_code, data),
        message=error.message if error is not None else None,
        hint=error.hint if error is not None else None,
        job=job,
        data=data if error is None else None,
    )


def result_code(exit_code: int, data: object = None) -> str:
    """`ok`, or for a result that failed without an error (partial failure, a
    refused plan) the code the result gives, else the exit code's name."""
    if exit_code == 0:
        return "ok"
    code = getattr(data, "code", None)
    return code if isinstance(code, str) else code_name(exit_code)


def code_name(exit_code: int) -> str:
    try:
        return ExitCode(exit_code).name.lower()
    except ValueError:
        return "signal"


def _comment(action: str, exit_code: int, data: object) -> str:
    summary = getattr(data, "summary", None)
    if isinstance(summary, str):
        return summary
    return f"{action}: done" if exit_code == 0 else f"{action}: failed (exit {exit_code})"


@dataclass(frozen=True)
class VersionResult:
    version: str
