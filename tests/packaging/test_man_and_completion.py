"""The man page and the bash completion, both made from the parsers `--help` prints
(wyngq/cli/manual.py): the page renders with man(1) and names every action and option;
the completion loads in bash and completes verbs, options, values, profiles and qubes."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from wyngq import cli, client
from wyngq.cli import manual as cli_docs
from wyngq.errors import ExitCode

ROOT = Path(__file__).resolve().parents[2]


def generate(what: str, out: Path) -> Path:
    done = subprocess.run([sys.executable, "-m", "wyngq.cli.manual", what, str(out)],
                          capture_output=True, text=True, check=False, cwd=ROOT,
                          env={**os.environ, "SOURCE_DATE_EPOCH": "0"})
    assert done.returncode == 0, done.stderr
    return out


def flags_of(parser_factory: object) -> tuple[set[str], set[str]]:
    parser = parser_factory()  # type: ignore[operator]
    verbs = set(cli_docs._subparsers(parser).choices)
    flags = {f for o in cli_docs.global_options(parser) for f in o.flags}
    flags |= {f for v in cli_docs.verbs(parser) for o in v.options for f in o.flags}
    return verbs, flags


@pytest.mark.skipif(shutil.which("man") is None, reason="man is not installed (Debian: man-db, groff-base)")
def test_the_man_page_renders_and_names_every_action_and_option(tmp_path: Path) -> None:
    page = generate("man", tmp_path / "wyng-util-qubes.1")
    done = subprocess.run(["man", "--warnings", "-l", str(page)], capture_output=True, text=True, check=False,
                          env={**os.environ, "MANWIDTH": "200", "LC_ALL": "C.UTF-8"})
    assert done.returncode == 0 and done.stderr == "", done.stderr
    text = re.sub(".\b", "", done.stdout)  # bold and underline are overstrikes off a terminal
    assert text.startswith("WYNG-UTIL-QUBES(1)") and "1970-01-01" in text
    for section in ("NAME", "SYNOPSIS", "OPTIONS", "ACTIONS", "MANAGEMENT QUBE", "EXIT STATUS", "FILES"):
        assert f"\n{section}\n" in text
    for factory in (cli.build_parser, client.build_parser):
        verbs, flags = flags_of(factory)
        assert verbs and flags
        for word in verbs | flags:
            assert word in text, word
    # Each action's own options are listed under that action's heading.
    actions = text[text.index("\nACTIONS\n"):text.index("\nMANAGEMENT QUBE\n")]
    chunks = dict(re.findall(r"^   (\w+)[^\n]*\n(.*?)(?=^   \w|\Z)", actions, re.MULTILINE | re.DOTALL))
    for verb in cli_docs.verbs(cli.build_parser()):
        assert verb.name in chunks, verb.name
        for option in verb.options:
            assert all(flag in chunks[verb.name] for flag in option.flags), (verb.name, option.flags)


def test_every_exit_code_has_its_meaning_in_the_man_page() -> None:
    assert set(cli_docs.EXIT_MEANINGS) == set(ExitCode)


def test_the_man_page_escapes_what_roff_would_read_as_requests() -> None:
    assert cli_docs.roff(".hidden") == "\\&.hidden"
    assert cli_docs.roff("'quoted") == "\\&'quoted"
    assert cli_docs.roff("a\\b --x") == "a\\eb \\-\\-x"


def complete(script: Path, words: list[str], env: dict[str, str] | None = None) -> list[str]:
    """COMPREPLY after completing the last of `words` (as bash would when Tab is pressed)."""
    line = " ".join(f"'{w}'" for w in words)
    program = (f"source '{script}'\nCOMP_WORDS=({line})\nCOMP_CWORD={len(words) - 1}\n"
               "_wyng_util_qubes\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n")
    base = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/"), "WYNGQ_REMOTE": "0"}
    done = subprocess.run(["bash", "--norc", "--noprofile", "-c", program], capture_output=True, text=True,
                          env={**base, **(env or {})}, check=False)
    assert done.returncode == 0, done.stderr
    return sorted(w for w in done.stdout.splitlines() if w)


@pytest.fixture(scope="module")
def script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("bash") is None:
        pytest.skip("bash is not installed")
    return generate("completion", tmp_path_factory.mktemp("completion") / "wyng-util-qubes")


def test_the_completion_loads_in_bash(script: Path) -> None:
    done = subprocess.run(["bash", "--norc", "--noprofile", "-c", f"source '{script}' && complete -p wyng-util-qubes"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert done.stdout.strip() == "complete -F _wyng_util_qubes wyng-util-qubes"


def test_the_completion_offers_the_parsers_verbs_and_options(script: Path) -> None:
    verbs, _ = flags_of(cli.build_parser)
    assert complete(script, ["wyng-util-qubes", ""]) == sorted(verbs)
    assert complete(script, ["wyng-util-qubes", "--profile=x", "re"]) == ["restore"]
    restore = {f for v in cli_docs.verbs(cli.build_parser()) if v.name == "restore" for o in v.options for f in o.flags}
    offered = set(complete(script, ["wyng-util-qubes", "restore", "--"]))
    assert {f for f in restore if f.startswith("--")} <= offered and "--dest" in offered
    assert complete(script, ["wyng-util-qubes", "restore", "--on-c"]) == ["--on-conflict"]
    assert complete(script, ["wyng-util-qubes", "restore", "--on-conflict="]) == [
        "--on-conflict=fail", "--on-conflict=rename", "--on-conflict=replace", "--on-conflict=skip"]
    assert complete(script, ["wyng-util-qubes", "backup", "--autoprune", ""]) == ["full", "off", "on"]


def test_the_completion_offers_profiles_and_qube_names(script: Path, tmp_path: Path) -> None:
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    for name in ("laptop", "nas"):
        (profiles / f"{name}.toml").write_text('dest = "file:/x"\n')
    (profiles / "example.toml.sample").write_text("")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    qvm_ls = bin_dir / "qvm-ls"
    qvm_ls.write_text('#!/bin/sh\n[ "$1" = --raw-list ] || exit 2\nprintf "dom0\\nwork\\nvault\\npersonal\\n"\n')
    qvm_ls.chmod(0o755)
    env = {"WYNGQ_PROFILE_DIR": str(profiles), "PATH": f"{bin_dir}:{os.environ['PATH']}"}

    assert complete(script, ["wyng-util-qubes", "--profile", ""], env) == ["laptop", "nas"]
    assert complete(script, ["wyng-util-qubes", "--profile=l"], env) == ["--profile=laptop"]
    assert complete(script, ["wyng-util-qubes", "backup", "w"], env) == ["work"]
    assert complete(script, ["wyng-util-qubes", "restore", "--exclude", "p"], env) == ["personal"]
    assert complete(script, ["wyng-util-qubes", "status", ""], env) == []  # status takes no qube


def test_in_a_qube_the_completion_offers_the_clients_verbs(script: Path) -> None:
    verbs, _ = flags_of(client.build_parser)
    assert complete(script, ["wyng-util-qubes", ""], {"WYNGQ_REMOTE": "1"}) == sorted(verbs)
    assert "create" not in verbs
    assert complete(script, ["wyng-util-qubes", "--remote", "restore", "--d"]) == ["--dry-run"]
