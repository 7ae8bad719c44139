"""wyngq.names: qube names by qubesd's rule, Wyng session ids."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wyngq.errors import UsageError
from wyngq.names import (
    LATEST,
    is_qube_name,
    is_session_id,
    qube_name,
    session_id,
    session_selector,
)


@pytest.mark.parametrize(
    "name",
    [
        "work",
        "sys-net",
        "fedora-42-xfce",
        "debian-12-minimal",
        "a",
        "A.b_c-d",
        "disp1234",
        "x" * 31,
        "default-dvm",  # a reserved word inside a name is fine
        "dom0x",
        "nonetheless",
        "NONE",  # qubesd compares case-sensitively
        "Dom0",
    ],
)
def test_valid_qube_names(name: str) -> None:
    assert is_qube_name(name)
    assert qube_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "-work",  # would read as an option
        "--dest=file:/x",
        "1work",  # must start with a letter
        "_work",
        ".work",
        ".",
        "..",
        "../work",
        "work/private",
        "/work",
        "x" * 32,  # longer than 31
        "dom0",
        "none",
        "default",
        "work-dm",  # qubesd keeps -dm for stubdomains
        "a-dm",
        "work space",
        "work\n",  # a trailing newline must not slip through a `$` anchor
        "work\x00",
        "wörk",
        "work;rm",
        "work:private",
    ],
)
def test_invalid_qube_names(name: str) -> None:
    assert not is_qube_name(name)
    with pytest.raises(UsageError) as caught:
        qube_name(name)
    assert repr(name) in caught.value.message
    assert caught.value.hint


@given(st.text())
def test_no_accepted_name_starts_with_dash_or_holds_a_slash(text: str) -> None:
    for candidate in (text, "-" + text, text + "/", "a/" + text, "a" + text + "/b"):
        if candidate.startswith("-") or "/" in candidate:
            assert not is_qube_name(candidate)


@given(st.text(max_size=40))
def test_every_accepted_name_is_short_ascii_and_starts_with_a_letter(text: str) -> None:
    if is_qube_name(text):
        assert 1 <= len(text) <= 31
        assert text.isascii() and text[0].isalpha()
        assert not text.endswith("-dm")
        assert text not in ("dom0", "none", "default")
        assert qube_name(text) == text
    else:
        with pytest.raises(UsageError):
            qube_name(text)


@pytest.mark.parametrize("text", ["20261126-151007", "20000101-000000", "20991231-235959", "20261126-235960"])
def test_valid_session_ids(text: str) -> None:
    assert is_session_id(text)
    assert session_id(text) == text


@pytest.mark.parametrize(
    "text",
    [
        "",
        "latest",
        "newest",  # Wyng keyword for prune/arch-check only
        "^qubes",  # Wyng's tag selector
        "S_20261126-151007",  # the catalogue key, not the id
        "2026-11-26",
        "20261126151007",
        "20261126-15100",
        "20261126-1510070",
        "20261326-151007",  # month 13
        "20261100-151007",  # day 0
        "20261132-151007",
        "20261126-241007",
        "20261126-156007",
        "20261126-151007\n",
        " 20261126-151007",
        "20261126-151007,20261126-151124",  # Wyng range syntax
        "--session=20261126-151007",
    ],
)
def test_invalid_session_ids(text: str) -> None:
    assert not is_session_id(text)
    with pytest.raises(UsageError) as caught:
        session_id(text)
    assert caught.value.hint


def test_session_selector_takes_latest_or_an_id() -> None:
    assert session_selector("latest") == LATEST
    assert session_selector("20261126-151007") == "20261126-151007"
    with pytest.raises(UsageError):
        session_selector("Latest")
    with pytest.raises(UsageError):
        session_selector("newest")


@given(st.text())
def test_session_ids_never_start_with_dash(text: str) -> None:
    if is_session_id(text):
        assert text[0].isdigit() and len(text) == 15
