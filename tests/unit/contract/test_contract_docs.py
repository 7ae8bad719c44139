"""docs/json.md describes every field of every contract dataclass."""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Iterator
from pathlib import Path

from wyngq.contract import SCHEMA
from wyngq.contract.decode import hints
from wyngq.contract.registry import public_events, result_types
from wyngq.contract.results import ENVELOPE
from wyngq.contract.serialize import json_name

DOC = (Path(__file__).resolve().parents[3] / "docs" / "json.md").read_text(encoding="utf-8")


def _nested(hint: object) -> Iterator[type]:
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        yield hint
    for arg in typing.get_args(hint):
        yield from _nested(arg)


def contract_dataclasses() -> list[type]:
    """Every dataclass a JSON line can hold, the nested ones too."""
    todo = [*public_events(), *(cls for classes in result_types().values() for cls in classes)]
    seen: list[type] = []
    while todo:
        cls = todo.pop()
        if cls in seen:
            continue
        seen.append(cls)
        for hint in hints(cls).values():
            todo.extend(_nested(hint))
    return seen


def test_every_field_of_every_contract_dataclass_is_documented() -> None:
    missing = [f"{cls.__name__}.{json_name(f)}" for cls in contract_dataclasses() for f in dataclasses.fields(cls)
               if f"`{json_name(f)}`" not in DOC]
    assert missing == []


def test_every_contract_dataclass_and_event_type_is_named() -> None:
    classes = contract_dataclasses()
    assert len(classes) > 30
    assert [c.__name__ for c in classes if f"`{c.__name__}`" not in DOC] == []
    assert [e.TYPE for e in public_events() if f"`{e.TYPE}`" not in DOC] == []  # type: ignore[attr-defined]


def test_the_envelope_and_the_version_are_documented() -> None:
    assert [name for name in ENVELOPE if f"| `{name}` |" not in DOC] == []
    assert f"`{SCHEMA}`" in DOC or f'"schema": "{SCHEMA}"' in DOC
