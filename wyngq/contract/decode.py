"""JSON lines back into contract dataclasses, checked field by field.

The management-qube client reads dom0's lines with this, so that what it
prints (or shows to a person) is the same typed contract dom0 wrote. Used by
the client only: it reads the dataclasses' type hints at run time.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import types
import typing
from collections.abc import Mapping
from typing import TYPE_CHECKING, TypeVar, cast

from wyngq.contract.registry import public_events
from wyngq.contract.results import ENVELOPE, ResultLine
from wyngq.contract.serialize import JSON, json_name

PUBLIC_EVENTS = public_events()

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

    from wyngq.contract.events import Event

T = TypeVar("T")


class ContractError(ValueError):
    """A JSON value that is not what the contract says."""


def decode(cls: type[T], value: JSON) -> T:
    """`value` as an instance of the dataclass `cls`; ContractError if it does not fit."""
    return cast(T, _decode(cls, value, cls.__name__))


def decode_event(document: dict[str, JSON]) -> Event:
    """The event `document` is (by its `type`, and for `plan` its `action`)."""
    problems = []
    for cls in PUBLIC_EVENTS:
        if document.get("type") == getattr(cls, "TYPE", None):
            try:
                return cast("Event", decode(cls, document))
            except ContractError as err:
                problems.append(str(err))
    raise ContractError("; ".join(problems) or f"no event has the type {str(document.get('type'))[:40]!r}")


def decode_result(document: dict[str, JSON], data_types: tuple[type, ...]) -> ResultLine:
    """The result line `document` is: its envelope, and (unless it reports an error)
    its data as one of `data_types`. A data field that shares its name with the
    envelope (`changed`, a failure's `code`) takes the envelope's value."""
    envelope = decode(ResultLine, {k: v for k, v in document.items() if k in ENVELOPE})
    if envelope.message is not None:
        return envelope
    rest = {k: v for k, v in document.items() if k not in ENVELOPE}
    shared = {"changed": envelope.changed} | ({} if envelope.ok else {"code": envelope.code})
    problems = []
    for cls in data_types:
        names = {json_name(f) for f in dataclasses.fields(cls)}
        try:
            data: object = decode(cls, rest | {k: v for k, v in shared.items() if k in names})
        except ContractError as err:
            problems.append(str(err))
            continue
        return dataclasses.replace(envelope, data=cast("DataclassInstance", data))
    raise ContractError("; ".join(problems) or "no data type for this result")


@functools.cache
def hints(cls: type) -> dict[str, object]:
    """The resolved type of each field of the dataclass `cls`."""
    # the result line's `data` is typed for mypy only (and merged, never decoded as such)
    return typing.get_type_hints(cls, localns={"DataclassInstance": object})


def _dataclass(cls: type, value: JSON, where: str) -> object:
    if not isinstance(value, dict):
        raise ContractError(f"{where}: expected an object")
    fields = {json_name(f): f for f in dataclasses.fields(cls) if f.init and not f.metadata.get("flatten")}
    unknown = set(value) - set(fields) - {"type"}
    if unknown:
        raise ContractError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    kind = getattr(cls, "TYPE", None)
    if "type" in value and value["type"] != kind:
        raise ContractError(f"{where}: type {value['type']!r} is not {kind!r}")
    types_of = hints(cls)
    given = {f.name: _decode(types_of[f.name], value[name], f"{where}.{name}")
             for name, f in fields.items() if name in value}
    try:
        return cls(**given)
    except TypeError as err:  # a required field is missing
        raise ContractError(f"{where}: {err}") from None


def _decode(hint: object, value: JSON, where: str) -> object:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        for arg in args:
            try:
                return _decode(arg, value, where)
            except ContractError:
                continue
        raise ContractError(f"{where}: {value!r} is none of {hint}")
    if origin is typing.Literal:
        if value in args:
            return value
        raise ContractError(f"{where}: {value!r} is not one of {args}")
    if origin in (tuple, list, frozenset, set):
        if not isinstance(value, list):
            raise ContractError(f"{where}: expected an array")
        items = [_decode(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)]
        return origin(items)
    if origin in (dict, Mapping):
        if not isinstance(value, dict):
            raise ContractError(f"{where}: expected an object")
        return {k: _decode(args[1], v, f"{where}.{k}") for k, v in value.items()}
    return _plain(hint, value, where)


def _plain(hint: object, value: JSON, where: str) -> object:
    if hint is type(None) or hint is None:
        if value is None:
            return None
    elif hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif hint is str:
        if isinstance(value, str):
            return value
    elif isinstance(hint, type) and issubclass(hint, enum.Enum):
        try:
            return hint(value)
        except ValueError:
            pass
    elif isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _dataclass(hint, value, where)
    else:
        raise ContractError(f"{where}: {hint} is not a contract type")
    raise ContractError(f"{where}: {value!r} is not a {getattr(hint, '__name__', hint)}")
