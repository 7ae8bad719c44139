"""The repository stands alone: what its code and tests cite and read is in it.

A copy of the tracked files alone, in an empty folder with nothing beside it,
runs a representative part of the CI tier (the fixtures of real Wyng output,
the fake `wyng` against them, a backup -> restore round trip through the CLI).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Citations of things that are not in the repository: design notes, fact files,
# a sibling folder, issue numbers.
OUTSIDE = re.compile(r"DESIGN\s*§|\bfacts/\w+\.md|\.\./shared|\bshared/(facts|lab|fixtures)|\b[Ii]ssues? #?\d+\b")
SOURCE_SUFFIXES = (".py", ".in", ".toml", ".policy", ".sh", ".bash", ".service", ".timer", ".md")
SOURCE_DIRS = ("qubes-rpc/", ".ci/", "debian/", "completion/")
CITED_DOC = re.compile(r"\bdocs/([\w.-]+\.md)")
# Tests that together touch every layer: parsers on the recorded fixtures, the
# fake wyng held to them, the CLI end to end through the fakes.
SUBSET = (
    "tests/unit/wyng/test_catalog.py",
    "tests/fakes/test_fake_wyng.py",
    "tests/unit/test_profile.py",
    "tests/integration/test_restore_roundtrip.py",
)


def tracked_files() -> list[str]:
    if not (ROOT / ".git").exists() or shutil.which("git") is None:
        pytest.skip("not a git checkout")
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return sorted(p for p in out.split("\0") if p and (ROOT / p).is_file())


def source_texts() -> dict[str, str]:
    """Code, tests, packaging files and documents (not the recorded fixtures, which are data)."""
    def is_source(name: str) -> bool:
        if name.startswith("tests/fixtures/") and name != "tests/fixtures/README.md":
            return False
        return name.endswith(SOURCE_SUFFIXES) or name == "Makefile" or name.startswith(SOURCE_DIRS)

    return {name: (ROOT / name).read_text(encoding="utf-8", errors="replace")
            for name in tracked_files() if is_source(name)}


def test_code_and_tests_cite_only_what_is_in_the_repository() -> None:
    outside = [f"{name}:{n}: {line.strip()}" for name, text in source_texts().items()
               for n, line in enumerate(text.splitlines(), 1) if OUTSIDE.search(line)]
    assert outside == []


def test_every_cited_document_exists() -> None:
    missing = sorted({f"{name}: docs/{doc}" for name, text in source_texts().items()
                      for doc in CITED_DOC.findall(text)
                      if not (ROOT / "docs" / doc).is_file()})
    assert missing == []


def test_the_readme_links_only_documents_that_exist() -> None:
    readme = (ROOT / "README.md").read_text()
    links = set(re.findall(r"\]\((docs/[\w.-]+\.md)\)", readme))
    assert links, "the README links no document under docs/"
    assert sorted(link for link in links if not (ROOT / link).is_file()) == []
    assert "<!--" not in readme


def test_documents_link_only_documents_that_exist() -> None:
    broken = sorted(f"{doc.name}: {link}" for doc in (ROOT / "docs").glob("*.md")
                    for link in re.findall(r"\]\(([\w.-]+\.md)(?:#[\w-]*)?\)", doc.read_text())
                    if not (ROOT / "docs" / link).is_file())
    assert broken == []


def test_a_copy_of_the_tracked_tree_alone_runs_the_tests(tmp_path: Path) -> None:
    copy = tmp_path / "alone" / "wyngq"
    for name in tracked_files():
        target = copy / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    # Nothing beside the copy, and nothing of this checkout on the path.
    assert sorted(p.name for p in copy.parent.iterdir()) == ["wyngq"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "WYNGQ_", "QUBESD_"))}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    probe = "import wyngq, tests.conftest as c; print(wyngq.__file__, c.FIXTURES)"
    where = subprocess.run([sys.executable, "-c", probe], cwd=copy, env=env,
                           capture_output=True, text=True, check=True).stdout.split()
    assert all(Path(p).is_relative_to(copy) for p in where), where  # the copy's code and fixtures, not ours
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", *SUBSET],
        cwd=copy, env=env, capture_output=True, text=True, check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert re.search(r"\b\d+ passed\b", done.stdout) and " failed" not in done.stdout
