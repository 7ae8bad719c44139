"""A passphrase that never shows up in a repr, a log line or an argv."""

from __future__ import annotations


class Secret:
    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if "\n" in value or "\r" in value:
            raise ValueError("a passphrase cannot contain a line break")
        self._value = value

    def reveal(self) -> str:
        return self._value

    def line(self) -> bytes:
        """The passphrase as Wyng reads it from a non-terminal stdin: one line."""
        return self._value.encode("utf-8") + b"\n"

    def __repr__(self) -> str:
        return "Secret(****)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)
