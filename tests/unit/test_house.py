"""The house rules a newcomer can rely on (docs/architecture.md):

- no module of `wyngq/` over 400 lines, no function over 60;
- what knows Wyng's output or its files lives under `wyngq/wyng/`: no module
  elsewhere compiles a regex for Wyng's output lines (its words, as the real Wyng
  prints them in tests/fixtures/wyng/cmd, or the form of its session ids), and
  none names the files Wyng leaves beside volumes (`.wyng1`, `.tick`, `.tock`).

The allow-lists name what is still over while it is being reworked; each entry
must still be over, so it is dropped as soon as its file is fixed.
"""

from __future__ import annotations

import ast
import re
import re._parser as sre_parse  # the stdlib's regex parser, to read a pattern's literal text
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, ROOT

PACKAGE = ROOT / "wyngq"
WYNG_PACKAGE = PACKAGE / "wyng"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60

# Still over, being split: remove an entry when its file is under the limits.
LONG_MODULES = {"wyngq/qubes/admin.py"}
LONG_FUNCTIONS = {"wyngq/restore/ops.py:desired_settings"}
# Still spelling Wyng's formats outside wyngq/wyng/ (receive output, scratch snapshot names).
WYNG_FORMATS_ELSEWHERE = {"wyngq/restore/data.py", "wyngq/restore/plan.py"}

WYNG_FILE_SUFFIXES = (".wyng1", ".wyng2", ".tick", ".tock")
MIN_WORDS = 4  # a literal run this long, with a letter, that Wyng prints, makes a regex Wyng's
SESSION_ID = "20261126-151007"


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def name(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def long_modules() -> set[str]:
    return {name(p) for p in modules() if len(p.read_text(encoding="utf-8").splitlines()) > MAX_MODULE_LINES}


def long_functions() -> dict[str, int]:
    found: dict[str, int] = {}
    for path in modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    found[f"{name(path)}:{node.name}"] = length
    return found


def test_no_module_is_over_400_lines() -> None:
    assert long_modules() - LONG_MODULES == set()


def test_no_function_is_over_60_lines() -> None:
    assert {k: v for k, v in long_functions().items() if k not in LONG_FUNCTIONS} == {}


def test_every_size_allowance_is_still_needed() -> None:
    assert LONG_MODULES - long_modules() == set(), "under the limit now: drop it from LONG_MODULES"
    assert LONG_FUNCTIONS - set(long_functions()) == set(), "under the limit now: drop it from LONG_FUNCTIONS"


# -- Wyng's formats --------------------------------------------------------------------------------
@cache
def wyng_lines() -> tuple[str, ...]:
    """Every line the real Wyng printed in the recorded runs."""
    lines: set[str] = set()
    for path in (FIXTURES / "cmd").iterdir():
        if path.suffix in (".stdout", ".stderr"):
            text = path.read_text(encoding="utf-8", errors="replace").replace("\r", "\n")
            lines |= {line.strip() for line in text.splitlines() if line.strip()}
    return tuple(sorted(lines))


def literal_runs(pattern: str) -> Iterator[str]:
    """The runs of literal characters in a regex, at every nesting level."""
    def walk(parsed: sre_parse.SubPattern | list[tuple[object, object]]) -> Iterator[str]:
        run = ""
        for op, arg in parsed:
            if op is sre_parse.LITERAL and isinstance(arg, int):
                run += chr(arg)
                continue
            if run:
                yield run
            run = ""
            for part in arg if isinstance(arg, list | tuple) else ():
                if isinstance(part, sre_parse.SubPattern):
                    yield from walk(part)
                elif isinstance(part, list | tuple):
                    for sub in part:
                        if isinstance(sub, sre_parse.SubPattern):
                            yield from walk(sub)
        if run:
            yield run

    yield from walk(sre_parse.parse(pattern))


def is_wyng_regex(pattern: str) -> bool:
    """Whether a regex reads Wyng's output: a literal run of its that Wyng prints,
    or a pattern for exactly the form of a session id."""
    for run in literal_runs(pattern):
        if len(run) >= MIN_WORDS and any(c.isalpha() for c in run) and any(run in line for line in wyng_lines()):
            return True
    compiled = re.compile(pattern)
    return (compiled.fullmatch(SESSION_ID) is not None and compiled.fullmatch("abcdefgh-ijklmn") is None
            and compiled.fullmatch("2026112-151007") is None)


def regex_patterns(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """The patterns given to re.compile, re.match and the like, as strings or
    f-strings (each value put in stands for a group of its own)."""
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "re"
                and node.func.attr in ("compile", "match", "fullmatch", "search", "findall", "finditer", "sub",
                                       "split") and node.args):
            pattern = node.args[0]
            if isinstance(pattern, ast.Constant) and isinstance(pattern.value, str):
                yield node.lineno, pattern.value
            elif isinstance(pattern, ast.JoinedStr):
                parts = [p for p in pattern.values if isinstance(p, ast.Constant | ast.FormattedValue)]
                yield node.lineno, "".join(p.value if isinstance(p, ast.Constant) else "(?:x)" for p in parts)


def docstrings(tree: ast.AST) -> set[int]:
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def wyng_format_uses(source: str) -> list[str]:
    """Where a module's code reads Wyng's output with a regex or names Wyng's files."""
    tree = ast.parse(source)
    uses = [f"line {line}: regex {pattern!r}" for line, pattern in regex_patterns(tree) if is_wyng_regex(pattern)]
    skip = docstrings(tree)
    for node in ast.walk(tree):
        if (isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip
                and any(suffix in node.value for suffix in WYNG_FILE_SUFFIXES)):
            uses.append(f"line {node.lineno}: names {node.value!r}")
    return uses


def modules_using_wyng_formats() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in modules():
        if path.is_relative_to(WYNG_PACKAGE):
            continue
        uses = wyng_format_uses(path.read_text(encoding="utf-8"))
        if uses:
            found[name(path)] = uses
    return found


def test_wyng_formats_live_under_wyngq_wyng() -> None:
    found = modules_using_wyng_formats()
    assert {k: v for k, v in found.items() if k not in WYNG_FORMATS_ELSEWHERE} == {}


def test_every_wyng_format_allowance_is_still_needed() -> None:
    assert WYNG_FORMATS_ELSEWHERE - set(modules_using_wyng_formats()) == set(), "drop it from the allow-list"


def test_the_recorded_wyng_output_is_there() -> None:
    lines = wyng_lines()
    assert len(lines) > 100
    assert any(line.startswith("Receiving volume '") for line in lines)


def test_wyngq_wyng_itself_is_found_reading_wyng_output() -> None:
    """The check finds what it looks for: the readers in wyngq/wyng/text.py."""
    uses = wyng_format_uses((WYNG_PACKAGE / "text.py").read_text(encoding="utf-8"))
    assert len(uses) >= 2, uses


@pytest.mark.parametrize("source", [
    'import re\n_RECEIVING = re.compile(r"^Receiving volume \'(?P<name>[^\']+)\'")\n',
    'import re\nX = re.compile(r"^(?:Volume|Receiving volume|Verifying volume) \'(?P<name>[^\']+)\'")\n',
    'import re\nSENDING = re.compile(r"^Sending backup session (?P<s>\\d{8}-\\d{6}):")\n',
    'import re\nSENDING = re.compile(rf"^Sending backup session (?P<s>{PATTERN}):")\n',
    'import re\nSESSION = re.compile(r"(\\d{8})-(\\d{6})")\n',
    'import re\nok = re.fullmatch(r"\\d{8}-\\d{6}", text)\n',
    'def f(vid):\n    return f"sn{vid}.wyng1"\n',
    'SUFFIXES = (".tick", ".tock")\n',
])
def test_the_check_finds_wyng_formats(source: str) -> None:
    assert wyng_format_uses(source)


@pytest.mark.parametrize("source", [
    'import re\nNAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,30}")\n',
    'import re\nJOB = re.compile(r"\\d{8}-\\d{6}-[0-9a-f]{8}")\n',
    'import re\nTAG = re.compile(r"[a-z0-9_.-]{1,25}")\n',
    'import re\nVOUCH = re.compile(r"reflink_fs_[a-z0-9]{1,16}|fs_online_factors")\n',
    'def f():\n    """Wyng leaves `.wyng1` beside a volume (docs/facts.md)."""\n',
    'from wyngq.wyng.text import receiving_volume\n',
])
def test_the_check_leaves_other_patterns_alone(source: str) -> None:
    assert wyng_format_uses(source) == []
