"""wyngq.phases: phase times at debug level, nothing when off."""

from __future__ import annotations

import logging

import pytest

from wyngq import phases


@pytest.fixture(autouse=True)
def _level() -> object:
    before = phases.log.level
    yield
    phases.log.setLevel(before)


def test_off_a_phase_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    phases.log.setLevel(logging.WARNING)
    with caplog.at_level(logging.WARNING), phases.phase("settings"):
        pass
    phases.startup()
    assert caplog.records == []


def test_the_environment_switch_logs_each_phase_with_its_time(caplog: pytest.LogCaptureFixture,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(phases.ENV, "1")
    phases.enable_from_environment()
    with caplog.at_level(logging.DEBUG, logger="wyngq.phases"):
        with phases.phase("settings"):
            pass
        with pytest.raises(ValueError), phases.phase("failing"):
            raise ValueError("a phase that raises is still timed")
        phases.startup()
    lines = [r.getMessage() for r in caplog.records]
    assert [line.split(":")[0] for line in lines] == ["phase settings", "phase failing", "phase start-up"]
    assert all(line.endswith(" ms") and float(line.split()[-2]) >= 0 for line in lines)


def test_the_switch_is_off_unless_it_is_1(monkeypatch: pytest.MonkeyPatch) -> None:
    phases.log.setLevel(logging.NOTSET)
    monkeypatch.setenv(phases.ENV, "0")
    phases.enable_from_environment()
    assert phases.log.level == logging.NOTSET
