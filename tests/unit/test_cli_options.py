"""Option parsing of the dom0 CLI, as other tools parse options."""

from __future__ import annotations

import math

import pytest

from wyngq.cli import action_word, build_parser, parse
from wyngq.cli.common import wait_words
from wyngq.errors import UsageError
from wyngq.profile import load_profile


@pytest.mark.parametrize(("words", "action", "wait"), [
    (["--wait", "list"], "list", math.inf),          # the verb is not eaten
    (["list", "--wait"], "list", math.inf),
    (["--wait", "30", "list"], "list", 30.0),
    (["--wait=30", "list"], "list", 30.0),
    (["--wait=0.5", "backup", "work"], "backup", 0.5),
    (["backup", "--wait", "--", "work"], "backup", math.inf),
    (["list"], "list", None),
])
def test_wait_takes_a_value_only_as_a_number(words: list[str], action: str, wait: float | None) -> None:
    args = build_parser().parse_args(wait_words(words))
    assert (args.action, args.wait) == (action, wait)


def test_wait_list_keeps_the_qube_names() -> None:
    args = build_parser().parse_args(wait_words(["--wait", "backup", "work", "vault"]))
    assert args.qubes == ["work", "vault"] and args.wait == math.inf


@pytest.mark.parametrize("bad", [["--wait=soon", "list"], ["--wait=-1", "list"], ["backup", "--max-age=soon"]])
def test_bad_values_are_usage_errors(bad: list[str]) -> None:
    with pytest.raises(UsageError):
        build_parser().parse_args(wait_words(bad))


def test_help_shows_remote_wait_and_max_age(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    shown = capsys.readouterr().out
    assert "--remote" in shown and "--wait" in shown and "PATH" in shown
    with pytest.raises(SystemExit):
        build_parser().parse_args(["backup", "--help"])
    assert "--max-age AGE" in capsys.readouterr().out


def test_a_bad_profile_name_says_what_a_name_may_be() -> None:
    with pytest.raises(UsageError) as raised:
        load_profile("Laptop!")
    assert raised.value.hint is not None and "lower-case letters, digits" in raised.value.hint
    assert "1-64 characters" in raised.value.hint


def test_a_missing_qrexec_client_vm_names_the_package_providing_it() -> None:
    from wyngq import client
    from wyngq.errors import ConfigError
    from wyngq.output import JsonLines

    with pytest.raises(ConfigError) as raised:
        client.forward("list", b"{}", JsonLines(), executable="qrexec-client-vm-not-installed")
    assert "not found" in raised.value.message
    assert raised.value.hint is not None and "qubes-core-qrexec-vm" in raised.value.hint


@pytest.mark.parametrize("words", [
    ["--wait", "30", "list"],
    ["--profile", "list", "backup", "work"],   # a profile named like an action
    ["--prof", "list", "backup", "work"],      # an abbreviated option: the narrow parse fails, the whole one answers
    ["--dest=file:/a", "-v", "restore", "--on-conflict=replace", "work"],
    ["backup", "--wait", "--", "list"],        # a qube named `list`
    ["-q", "status"],
])
def test_the_parser_of_one_action_reads_the_words_as_the_whole_parser_does(words: list[str]) -> None:
    assert vars(parse(wait_words(words))) == vars(build_parser().parse_args(wait_words(words)))


@pytest.mark.parametrize(("words", "found"), [
    (["list"], "list"),
    (["--dest", "file:/x", "--json", "backup", "work"], "backup"),
    (["--wait", "5", "verify"], "verify"),
    (["--profile", "list", "backup"], "backup"),
    (["--help", "list"], None),                # help before the action: the whole parser's help
    (["restroe"], None),
    ([], None),
])
def test_action_word_is_the_first_word_that_is_no_option_or_value(words: list[str], found: str | None) -> None:
    assert action_word(words) == found


def test_a_wrong_option_gets_the_whole_parsers_error() -> None:
    with pytest.raises(UsageError, match="unrecognized arguments: --no-such"):
        parse(["list", "--no-such"])
