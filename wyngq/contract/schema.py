"""Generate the JSON Schema (draft 2020-12) of every JSON line from the dataclasses.

    python3 -m wyngq.contract.schema OUT_DIR     (make schema)

writes OUT_DIR/line.json: a line is one of the events (`$defs/event.*`) or a
result (`$defs/result.*`: the envelope with one action's data merged in, or an
error). The package ships the generated file in wyngq/data/schema/; a test
checks that it equals what this module generates, so a renamed or retyped
field shows up as a changed schema (docs/json.md).
"""

from __future__ import annotations

import dataclasses
import enum
import json
import os
import sys
import types
import typing
from collections.abc import Mapping, Sequence

from wyngq.contract import SCHEMA
from wyngq.contract.registry import public_events, result_types
from wyngq.contract.results import ENVELOPE, ResultLine
from wyngq.contract.serialize import JSON, json_name

PUBLIC_EVENTS = public_events()

FILE_NAME = "line.json"
DRAFT = "https://json-schema.org/draft/2020-12/schema"


class _Builder:
    def __init__(self) -> None:
        self.defs: dict[str, JSON] = {}
        self.owners: dict[str, type] = {}

    def type_schema(self, hint: object) -> JSON:
        origin, args = typing.get_origin(hint), typing.get_args(hint)
        if origin in (typing.Union, types.UnionType):
            return {"anyOf": [self.type_schema(a) for a in args]}
        if origin is typing.Literal:
            return {"const": args[0]} if len(args) == 1 else {"enum": list(args)}
        if origin in (tuple, list, frozenset, set):
            array: dict[str, JSON] = {"type": "array", "items": self.type_schema(args[0])}
            if origin in (frozenset, set):
                array["uniqueItems"] = True
            return array
        if origin in (dict, Mapping):
            return {"type": "object", "additionalProperties": self.type_schema(args[1])}
        return self._plain(hint)

    def _plain(self, hint: object) -> JSON:
        simple = {str: "string", int: "integer", float: "number", bool: "boolean", type(None): "null"}
        if hint is None or (isinstance(hint, type) and hint in simple):
            return {"type": simple[type(None) if hint is None else hint]}
        if isinstance(hint, type) and issubclass(hint, enum.Enum):
            return {"enum": [m.value for m in hint]}
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            return {"$ref": f"#/$defs/{self.define(hint)}"}
        raise TypeError(f"{hint} is not a contract type")

    def define(self, cls: type) -> str:
        name = cls.__name__
        if self.owners.setdefault(name, cls) is not cls:
            raise TypeError(f"two contract dataclasses are named {name}: rename one")
        if name not in self.defs:
            self.defs[name] = {}  # a placeholder while its fields are built
            self.defs[name] = self.object_schema(cls)
        return name

    def properties(self, cls: type, leave_out: Sequence[str] = ()) -> tuple[dict[str, JSON], list[JSON]]:
        hints = typing.get_type_hints(cls)
        props: dict[str, JSON] = {}
        required: list[JSON] = []
        for field in dataclasses.fields(cls):
            name = json_name(field)
            if name in leave_out:
                continue
            hint = hints[field.name]
            if field.metadata.get("omit_none"):  # absent rather than null
                hint = _without_none(hint)
            else:
                required.append(name)
            props[name] = self.type_schema(hint)
        return props, required

    def object_schema(self, cls: type, leave_out: Sequence[str] = ()) -> JSON:
        props, required = self.properties(cls, leave_out)
        kind = getattr(cls, "TYPE", None)
        if isinstance(kind, str):
            props = {"type": {"const": kind}, **props}
            required = ["type", *required]
        described: dict[str, JSON] = {"type": "object", "properties": props, "required": required,
                                      "additionalProperties": False}
        doc = (cls.__doc__ or "").strip()
        if doc and not doc.startswith(f"{cls.__name__}("):  # dataclasses make up a doc of the signature
            described = {"description": " ".join(doc.split()), **described}
        return described


def _without_none(hint: object) -> object:
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if len(args) == 1 else hint


def _envelope() -> tuple[dict[str, JSON], list[str]]:
    """The result line's own fields (every result has them)."""
    props: dict[str, JSON] = {"type": {"const": ResultLine.TYPE}, "schema": {"const": SCHEMA},
                              "action": {"type": "string"}, "ok": {"type": "boolean"},
                              "exit_code": {"type": "integer"}, "code": {"type": "string"},
                              "changed": {"type": "boolean"}, "comment": {"type": "string"},
                              "message": {"type": "string"}, "hint": {"type": "string"}, "job": {"type": "string"}}
    fields = [json_name(f) for f in dataclasses.fields(ResultLine) if not f.metadata.get("flatten")]
    assert ["type", *fields] == list(props) == list(ENVELOPE), "the envelope's schema lags its dataclass"
    required = ["type", *(json_name(f) for f in dataclasses.fields(ResultLine)
                          if not f.metadata.get("omit_none") and not f.metadata.get("flatten"))]
    return props, required


def build() -> dict[str, JSON]:
    """The schema of one JSON line, as a JSON document."""
    builder = _Builder()
    lines: list[JSON] = []
    for event in PUBLIC_EVENTS:
        name = f"event.{event.__name__}"
        builder.defs[name] = builder.object_schema(event)
        lines.append({"$ref": f"#/$defs/{name}"})
    envelope, required = _envelope()
    error_props = {k: v for k, v in envelope.items()} | {"ok": {"const": False}}
    builder.defs["result.error"] = {
        "description": "A run that ended with an error: its message and hint, no data.",
        "type": "object", "properties": error_props, "required": [*required, "message"],
        "additionalProperties": False}
    results: list[JSON] = [{"$ref": "#/$defs/result.error"}]
    for action, classes in result_types().items():
        for cls in classes:
            props, data_required = builder.properties(cls, leave_out=ENVELOPE)
            name = f"result.{action}.{cls.__name__}"
            builder.defs[name] = {
                "description": f"The result of {action}, with the data of {cls.__name__} merged in.",
                "type": "object",
                "properties": {k: v for k, v in envelope.items() if k not in ("message", "hint")}
                | {"action": {"const": action}} | props,
                "required": [*required, *data_required], "additionalProperties": False}
            results.append({"$ref": f"#/$defs/{name}"})
    builder.defs["result"] = {"anyOf": results}
    lines.append({"$ref": "#/$defs/result"})
    return {"$schema": DRAFT, "$id": f"https://github.com/wyngq/schema/{SCHEMA}/{FILE_NAME}",
            "title": f"A JSON line of wyng-util-qubes ({SCHEMA})", "anyOf": lines,
            "$defs": dict(sorted(builder.defs.items()))}


def text() -> str:
    return json.dumps(build(), indent=1, sort_keys=False, ensure_ascii=False) + "\n"


def main(argv: Sequence[str]) -> int:
    if len(argv) != 1:
        print("usage: python3 -m wyngq.contract.schema OUT_DIR", file=sys.stderr)
        return 2
    os.makedirs(argv[0], exist_ok=True)
    with open(os.path.join(argv[0], FILE_NAME), "w", encoding="utf-8") as handle:
        handle.write(text())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
