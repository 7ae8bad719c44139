"""Checks JSON lines against the shipped schema (wyngq/data/schema/line.json, docs/json.md).

`check(document)` returns the problems of one line ([] if it validates). The
test session wraps `JsonLines._write` (tests/conftest.py, and in the CLI and
service processes the tests start, tests/contract_site/sitecustomize.py) so
that every line written in the CI tier goes through it. It needs the
`jsonschema` package (CI installs it); without it `available()` is False and
the checks skip with that reason.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_FILE = ROOT / "wyngq" / "data" / "schema" / "line.json"
FAILURES_ENV = "WYNGQ_TEST_CONTRACT_FAILURES"  # a file the subprocesses append problems to
MISSING = "jsonschema is not installed (pip install jsonschema): the JSON lines are not checked against the schema"


def available() -> bool:
    try:
        import jsonschema  # noqa: F401
    except ImportError:
        return False
    return True


@functools.cache
def validator(schema_text: str | None = None) -> Any:
    import jsonschema

    schema = json.loads(schema_text if schema_text is not None else SCHEMA_FILE.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def check(document: object, schema_text: str | None = None) -> list[str]:
    """What is wrong with `document` as a JSON line of the contract."""
    from jsonschema.exceptions import best_match

    problems = []
    for error in validator(schema_text).iter_errors(document):
        # of the branches a line could be (event or result kinds), the one it came closest to
        error = best_match(error.context) or error if error.context else error
        problems.append(f"{'/'.join(map(str, error.absolute_path)) or '(line)'}: {error.message[:300]}")
    return problems


def install(record: Any) -> None:
    """Wrap JsonLines._write so that each document written is checked; `record(problems, document)`
    gets the problems of a line that does not validate."""
    from wyngq.output import JsonLines

    if getattr(JsonLines._write, "contract_checked", False):
        return
    original = JsonLines._write

    def checked(self: JsonLines, document: Any) -> None:
        problems = check(json.loads(json.dumps(document)))
        if problems:
            record(problems, document)
        original(self, document)

    checked.contract_checked = True  # type: ignore[attr-defined]
    JsonLines._write = checked  # type: ignore[method-assign]
