"""wyngq.schedule: which qubes are due for one archive."""

from __future__ import annotations

import time

import pytest

from wyngq.errors import UsageError
from wyngq.schedule import due_qubes, parse_age, session_time


@pytest.mark.parametrize(("text", "seconds"), [("90", 90), ("90m", 5400), ("12h", 43200), ("1d", 86400),
                                               ("1w2d", 9 * 86400), ("1.5h", 5400), (" 20H ", 72000)])
def test_ages(text: str, seconds: int) -> None:
    assert parse_age(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "1x", "-1d", "1d 2h", "list"])
def test_bad_ages(text: str) -> None:
    with pytest.raises(UsageError):
        parse_age(text)


def test_a_qube_is_due_without_a_session_or_with_an_old_one() -> None:
    now = time.mktime(time.strptime("20260102-120000", "%Y%m%d-%H%M%S"))
    last = {"work": "20260102-110000", "vault": "20260101-110000"}
    entries = {e.name: e for e in due_qubes(["work", "vault", "new"], (), last, 86400, now)}
    assert not entries["work"].due and entries["work"].age == 3600
    assert entries["vault"].due and entries["vault"].age == 25 * 3600
    assert entries["new"].due and entries["new"].last_session is None and entries["new"].age is None


def test_a_disposable_follows_the_qubes_with_data() -> None:
    now = session_time("20260102-120000")
    assert now is not None
    fresh = {"work": "20260102-110000"}
    assert not any(e.due for e in due_qubes(["disp", "work"], {"disp"}, fresh, 86400, now))
    assert all(e.due for e in due_qubes(["disp", "work"], {"disp"}, {}, 86400, now))


def test_a_session_from_the_future_is_age_zero() -> None:
    now = session_time("20260102-120000")
    assert now is not None
    (entry,) = due_qubes(["work"], (), {"work": "20260103-000000"}, 60, now)
    assert entry.age == 0 and not entry.due
