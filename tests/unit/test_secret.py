"""wyngq.secret: a passphrase that never shows itself."""

from __future__ import annotations

import logging

import pytest

from wyngq.secret import Secret

PASSPHRASE = "  correct -horse 'battery' \"staple\" ünï €  "


def test_reveal_is_exact() -> None:
    assert Secret(PASSPHRASE).reveal() == PASSPHRASE


def test_line_is_utf8_plus_one_newline() -> None:
    assert Secret(PASSPHRASE).line() == PASSPHRASE.encode("utf-8") + b"\n"


def test_never_shown_by_repr_str_or_format() -> None:
    secret = Secret("hunter2hunter2")
    percent = "%s" % secret  # noqa: UP031 - what logging does
    for shown in (repr(secret), str(secret), f"{secret}", f"{secret!r}", percent, str([secret])):
        assert "hunter2" not in shown
        assert "****" in shown


def test_never_shown_in_a_log_record(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("wyngq.test").debug("passphrase is %s / %r", Secret("hunter2hunter2"), Secret("x"))
    assert "hunter2" not in caplog.text


@pytest.mark.parametrize("value", ["two\nlines", "carriage\rreturn", "trailing\n", "\r\n"])
def test_line_breaks_are_refused(value: str) -> None:
    with pytest.raises(ValueError):
        Secret(value)


def test_equality_and_hash_follow_the_value() -> None:
    assert Secret("a-passphrase") == Secret("a-passphrase")
    assert Secret("a-passphrase") != Secret("a-passphrase ")
    assert Secret("a-passphrase") != "a-passphrase"
    assert len({Secret("a-passphrase"), Secret("a-passphrase")}) == 1


def test_no_instance_dict_to_leak_through() -> None:
    with pytest.raises(AttributeError):
        Secret("x").__dict__  # noqa: B018
