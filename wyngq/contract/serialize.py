"""The one serializer: a contract dataclass as a JSON value.

Dataclasses become objects (their fields in order; an event's or result's
`TYPE` first as `type`), enums their values, tuples and lists arrays, sets
sorted arrays, mappings objects with string keys. Field metadata (from the
helpers below) says when a field is left out (`OMIT_NONE`: absent rather than
null), when it has another name in JSON (`named("class")`), and when a nested
dataclass's fields are merged into the object (`FLATTEN`: the result line's data).
"""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import Mapping
from typing import TypeAlias

JSON: TypeAlias = "bool | int | float | str | list[JSON] | dict[str, JSON] | None"

OMIT_NONE = {"omit_none": True}
FLATTEN = {"flatten": True}


def named(name: str, *, omit_none: bool = False) -> dict[str, object]:
    """Metadata for a field whose JSON name is not its Python name (`class`)."""
    return {"json": name, "omit_none": omit_none}


def json_name(field: dataclasses.Field[object]) -> str:
    name = field.metadata.get("json")
    return name if isinstance(name, str) else field.name


def to_json(value: object) -> JSON:
    """`value` (a contract dataclass, or any value one holds) as plain JSON."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _object(value)
    if isinstance(value, enum.Enum):
        return to_json(value.value)
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return sorted((to_json(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True))
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"not part of the JSON contract: {type(value).__name__}")


def _object(value: object) -> dict[str, JSON]:
    document: dict[str, JSON] = {}
    kind = getattr(type(value), "TYPE", None)
    if isinstance(kind, str):
        document["type"] = kind
    for field in dataclasses.fields(value):  # type: ignore[arg-type]
        item = getattr(value, field.name)
        if item is None and field.metadata.get("omit_none"):
            continue
        if field.metadata.get("flatten"):
            if item is not None:
                nested = _object(item)
                document |= {k: v for k, v in nested.items() if k not in document}
            continue
        document[json_name(field)] = to_json(item)
    return document
