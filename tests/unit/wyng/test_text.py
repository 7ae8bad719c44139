"""wyngq.wyng.text and wyngq.wyng.sessions: Wyng's output lines and session ids,
read from the outputs recorded from the real program."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import FIXTURES
from wyngq.wyng import text
from wyngq.wyng.sessions import has_session_form, session_id_now, session_time

RECORDED = sorted((FIXTURES / "cmd").glob("*.stdout"))
LINES = [line for path in RECORDED for line in path.read_text(encoding="utf-8").replace("\r", "\n").splitlines()]
HEADERS = {"Volume '": text.sending_volume, "Receiving volume '": text.receiving_volume,
           "Verifying volume '": text.verifying_volume}


def test_the_recorded_outputs_have_every_kind_of_header() -> None:
    for opening in (*HEADERS, "Sending backup session "):
        assert any(line.startswith(opening) for line in LINES), opening


@pytest.mark.parametrize("opening", list(HEADERS))
def test_each_recorded_volume_header_names_its_volume_for_its_own_verb_only(opening: str) -> None:
    lines = [line for line in LINES if line.startswith(opening)]
    for line in lines:
        name = line[len(opening):].split("'", 1)[0]
        assert text.volume_header(line) == name
        for other, read in HEADERS.items():
            assert read(line) == (name if other == opening else None), (other, line)


def test_no_other_recorded_line_is_taken_for_a_header() -> None:
    others = [line for line in LINES if not line.startswith(tuple(HEADERS))]
    assert others
    assert [line for line in others if text.volume_header(line) is not None] == []


def test_a_header_indented_or_with_a_session_after_it_still_counts() -> None:
    assert text.receiving_volume("  Receiving volume 'appvms/work/private.img' 20261126-151007\n") == (
        "appvms/work/private.img")
    assert text.sending_volume("Volume appvms/work/private.img") is None  # unquoted: not Wyng's header


def test_each_recorded_send_names_its_session() -> None:
    lines = [line for line in LINES if line.startswith("Sending backup session ")]
    for line in lines:
        session = text.sending_session(line)
        assert session is not None and has_session_form(session)
        assert line.startswith(f"Sending backup session {session}:")
    assert text.sending_session("Sending backup session 2026112-151007:") is None
    assert text.sending_session("Volume 'a'") is None


@pytest.mark.parametrize(("fragment", "expected"), [
    ("[||||||||||||||||||||] 100% : OK", 100),
    ("  12.5%", 12),
    ("3% then 47.0%", 47),
    ("  [||||||", 30),
    ("  [", None),
    ("[....", 0),  # the bar drawn, no cell filled yet
    ("no change", None),
])
def test_percent_reads_the_figure_or_the_bar(fragment: str, expected: int | None) -> None:
    assert text.percent(fragment) == expected


def test_sent_volumes_reads_the_session_and_finished_volumes_of_a_real_send() -> None:
    stdout = (FIXTURES / "cmd" / "020_send_full.stdout").read_text()
    session, finished = text.sent_volumes(stdout)
    assert session == "20261126-151007"
    assert finished == {
        "wyng-qubes-metadata", "appvms/personal/private.img", "appvms/work/private.img",
        "vm-templates/fedora/private.img", "vm-templates/fedora/root.img", "appvms/extra/private.img",
    }


def test_sent_volumes_counts_no_change_and_not_an_unfinished_volume() -> None:
    stdout = (
        "Sending backup session 20261126-151147:\n"
        "Volume 'a/private.img'\n  no change\n"
        "Volume 'b/private.img'\n  [||||||||||\n"
    )
    assert text.sent_volumes(stdout) == ("20261126-151147", {"a/private.img"})
    assert text.sent_volumes(
        "Sending backup session 20261126-151147:\nSending backup session 20261126-151148:\n")[0] is None


@given(st.text(max_size=200))
def test_no_line_makes_the_readers_raise(line: str) -> None:
    for read in (text.volume_header, text.sending_volume, text.receiving_volume, text.verifying_volume,
                 text.sending_session):
        found = read(line)
        assert found is None or (found and "'" not in found)
    found_percent = text.percent(line)
    assert found_percent is None or found_percent >= 0
    text.sent_volumes(line)


def test_a_session_id_is_the_local_time_by_the_second() -> None:
    now = time.mktime((2026, 11, 26, 15, 10, 7, 0, 0, -1))
    assert session_id_now(now) == "20261126-151007"
    assert session_time("20261126-151007") == now
    assert has_session_form(session_id_now())


@pytest.mark.parametrize("bad", ["2026112-151007", "20261126151007", "20261126-1510070", "latest", "",
                                 "20261126-151007\n", "20261399-999999"])
def test_a_string_of_another_form_names_no_time(bad: str) -> None:
    assert session_time(bad) is None
    assert has_session_form(bad) is (bad == "20261399-999999")  # the form only; wyngq.names checks ranges
