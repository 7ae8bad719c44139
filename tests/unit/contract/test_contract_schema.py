"""The shipped JSON Schema is generated from the contract's dataclasses, and it
tells contract lines from others: a renamed field changes it and fails the check."""

from __future__ import annotations

import dataclasses
import json
from typing import ClassVar

import pytest

from tests import contract
from tests.contract_samples import EVENTS, RESULTS, STATUS
from wyngq.contract import SCHEMA, events, registry, schema
from wyngq.contract.decode import ContractError, decode_event, decode_result
from wyngq.contract.results import VersionResult, result_line
from wyngq.contract.serialize import JSON, to_json
from wyngq.errors import AuthError

needs_jsonschema = pytest.mark.skipif(not contract.available(), reason=contract.MISSING)


def test_the_shipped_schema_is_the_one_the_dataclasses_generate() -> None:
    assert contract.SCHEMA_FILE.read_text(encoding="utf-8") == schema.text(), (
        "the contract changed: run `make schema` and say what changed in docs/json.md")


def test_the_generator_writes_the_file(tmp_path: object) -> None:
    out = str(tmp_path)
    assert schema.main([out]) == 0
    with open(f"{out}/{schema.FILE_NAME}", encoding="utf-8") as handle:
        assert handle.read() == schema.text()
    assert schema.main([]) == 2


@dataclasses.dataclass(frozen=True)
class RenamedOpening:
    """Opening with `dest` renamed."""

    TYPE: ClassVar[str] = "opening"
    destination: str


@dataclasses.dataclass(frozen=True)
class RenamedVersion:
    release: str


def test_a_renamed_event_field_changes_the_schema_and_fails_the_shipped_one(monkeypatch: pytest.MonkeyPatch) -> None:
    renamed = tuple(RenamedOpening if e is events.Opening else e for e in schema.PUBLIC_EVENTS)
    monkeypatch.setattr(schema, "PUBLIC_EVENTS", renamed)
    changed = schema.text()
    assert changed != contract.SCHEMA_FILE.read_text(encoding="utf-8")
    assert '"destination"' in changed
    if contract.available():
        line = to_json(RenamedOpening("file:/a"))
        assert contract.check(line)  # the shipped schema refuses the renamed field
        assert contract.check(line, changed) == []  # the regenerated one takes it


def test_a_renamed_result_field_changes_the_schema_and_fails_the_shipped_one(monkeypatch: pytest.MonkeyPatch) -> None:
    types = registry.result_types() | {"version": (RenamedVersion,)}
    monkeypatch.setattr(schema, "result_types", lambda: types)
    changed = schema.text()
    assert changed != contract.SCHEMA_FILE.read_text(encoding="utf-8")
    if contract.available():
        line = to_json(result_line("version", 0, RenamedVersion("1.0")))
        assert contract.check(line)
        assert contract.check(line, changed) == []


def test_two_contract_dataclasses_of_one_name_are_refused() -> None:
    builder = schema._Builder()
    builder.define(events.Opening)
    other = dataclasses.make_dataclass("Opening", [("dest", str)], frozen=True)
    with pytest.raises(TypeError, match="two contract dataclasses are named Opening"):
        builder.define(other)


@needs_jsonschema
def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    import jsonschema

    document = json.loads(contract.SCHEMA_FILE.read_text(encoding="utf-8"))
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(document)


@needs_jsonschema
@pytest.mark.parametrize("event", EVENTS, ids=lambda e: f"{type(e).__name__}")
def test_every_event_validates(event: events.Event) -> None:
    assert contract.check(to_json(event)) == []


@needs_jsonschema
@pytest.mark.parametrize("action", sorted(RESULTS))
def test_every_result_validates(action: str) -> None:
    data = RESULTS[action]
    line = to_json(result_line(action, 0, data, job="20261126-151007-0123abcd"))
    assert isinstance(line, dict) and line["schema"] == SCHEMA
    assert contract.check(line) == []
    assert contract.check(to_json(result_line("status", 0, STATUS))) == []
    assert contract.check(to_json(result_line(action, 7, error=AuthError("no", hint="check it")))) == []


def _backup_line() -> dict[str, JSON]:
    line = to_json(result_line("backup", 8, RESULTS["backup"]))
    assert isinstance(line, dict)
    return line


@needs_jsonschema
@pytest.mark.parametrize("spoil", [
    lambda d: d.pop("schema"),
    lambda d: d.update(schema="wyngq/0"),
    lambda d: d.update(surprise=1),
    lambda d: d.pop("qubes"),
    lambda d: d.update(exit_code="8"),
    lambda d: d.update(action="list"),  # a backup's data under another action
    lambda d: d["qubes"][0].update(name=None),
    lambda d: d["volumes"][0].update(driver="zfs"),
], ids=["no schema", "old schema", "unknown field", "missing field", "string exit code", "wrong action",
        "null name", "unknown driver"])
def test_lines_outside_the_contract_fail(spoil: object) -> None:
    line = _backup_line()
    assert contract.check(line) == []
    spoil(line)  # type: ignore[operator]
    assert contract.check(line)


@needs_jsonschema
def test_events_outside_the_contract_fail() -> None:
    assert contract.check({"type": "note", "text": "x"})
    assert contract.check({"type": "volume", "volume": "v", "state": "half"})
    assert contract.check({"type": "volume", "volume": "v", "state": "progress", "percent": None})
    assert contract.check({"type": "wyng_output", "line": "internal"})


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: f"{type(e).__name__}")
def test_every_event_reads_back_as_itself(event: events.Event) -> None:
    line = to_json(event)
    assert isinstance(line, dict)
    assert decode_event(json.loads(json.dumps(line))) == event


@pytest.mark.parametrize("action", sorted(RESULTS))
def test_every_result_reads_back_as_itself(action: str) -> None:
    line = result_line(action, 0, RESULTS[action], job="j")
    document = json.loads(json.dumps(to_json(line)))
    types = registry.result_types()[action]
    assert decode_result(document, types) == line


def test_an_error_result_reads_back_without_data() -> None:
    line = result_line("list", 7, error=AuthError("no", hint="check it"))
    document = to_json(line)
    assert isinstance(document, dict)
    assert decode_result(document, registry.result_types()["list"]) == line


@pytest.mark.parametrize("document", [
    {"type": "opening"},
    {"type": "opening", "dest": 3},
    {"type": "opening", "dest": "x", "extra": True},
    {"type": "plan", "action": "backup"},
    {"type": "nothing-like-it"},
])
def test_what_is_not_an_event_is_refused_on_reading(document: dict[str, JSON]) -> None:
    with pytest.raises(ContractError):
        decode_event(document)


def test_a_result_with_foreign_data_is_refused_on_reading() -> None:
    document = to_json(result_line("version", 0, VersionResult("1")))
    assert isinstance(document, dict)
    with pytest.raises(ContractError):
        decode_result(document | {"surprise": 1}, (VersionResult,))
