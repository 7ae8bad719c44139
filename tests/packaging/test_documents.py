"""The reference documents keep up with the code: every profile key the parser
accepts is in docs/profile.md, every restore and backup option in docs/restore.md
and docs/backup.md, every exit code in docs/exit-codes.md."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from wyngq import cli
from wyngq.errors import ExitCode, WyngqError

ROOT = Path(__file__).resolve().parents[2]


def accepted_profile_keys() -> set[str]:
    """The keys of every `_only(table, {...}, where)` check in wyngq/profile/schema.py."""
    tree = ast.parse((ROOT / "wyngq/profile/schema.py").read_text())
    keys: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "_only":
            allowed = node.args[1]
            assert isinstance(allowed, ast.Set), ast.dump(allowed)
            keys |= {e.value for e in allowed.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)}
    return keys


def test_every_profile_key_is_documented() -> None:
    keys = accepted_profile_keys()
    assert {"dest", "passphrase", "qube", "allow_unauthenticated_restore"} <= keys
    text = (ROOT / "docs/profile.md").read_text()
    assert sorted(k for k in keys if f"`{k}`" not in text and f"[{k}]" not in text) == []


def verb_flags(verb: str) -> set[str]:
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "action")
    globals_ = {a.dest for a in parser._actions if a.option_strings}
    return {f for a in sub.choices[verb]._actions  # type: ignore[attr-defined]
            if a.option_strings and a.dest not in globals_ | {"help"} for f in a.option_strings}


@pytest.mark.parametrize(("verb", "document"), [("restore", "restore.md"), ("backup", "backup.md")])
def test_every_option_is_documented(verb: str, document: str) -> None:
    text = (ROOT / "docs" / document).read_text()
    flags = verb_flags(verb)
    assert flags
    assert sorted(f for f in flags if not re.search(rf"`{re.escape(f)}[`=\s]", text)) == []


def test_every_exit_code_and_result_code_is_documented() -> None:
    text = (ROOT / "docs/exit-codes.md").read_text()
    assert sorted(int(c) for c in ExitCode if not re.search(rf"^\| {int(c)} \|", text, re.MULTILINE)) == []
    codes = {cls.code for cls in _subclasses(WyngqError)} | {"ok", "partial"}
    assert sorted(c for c in codes if f"`{c}`" not in text) == []


def _subclasses(cls: type) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub} | _subclasses(sub)
    return found | {cls}
