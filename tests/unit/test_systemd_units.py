"""The scheduled-backup units: off by default, and they run commands the CLI accepts."""

from __future__ import annotations

import configparser
import shlex
from pathlib import Path

import pytest

from wyngq.cli import build_parser

UNITS = Path(__file__).resolve().parents[2] / "wyngq" / "data" / "systemd"


def unit(name: str) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(UNITS / name)
    return parser


def exec_lines(name: str) -> list[list[str]]:
    lines = [line.split("=", 1)[1] for line in (UNITS / name).read_text().splitlines() if line.startswith("ExecStart=")]
    return [shlex.split(line.replace("%i", "laptop")) for line in lines]


def test_service_runs_backup_monitor_then_prune_unattended_for_the_profile() -> None:
    commands = exec_lines("wyng-util-qubes-backup@.service")
    assert [c[0] for c in commands] == ["/usr/bin/wyng-util-qubes"] * 3
    for argv in commands:
        args = build_parser().parse_args(argv[1:])
        assert args.profile == "laptop" and args.unattended and args.json and args.wait == 7200
    assert [build_parser().parse_args(c[1:]).action for c in commands] == ["backup", "monitor", "prune"]
    assert build_parser().parse_args(commands[0][1:]).max_age == 20 * 3600  # due in this archive only
    assert unit("wyng-util-qubes-backup@.service")["Service"]["Type"] == "oneshot"


@pytest.mark.parametrize("name", ["wyng-util-qubes-backup@.service", "wyng-util-qubes-backup@.timer"])
def test_units_are_not_enabled_by_a_package(name: str) -> None:
    text = (UNITS / name).read_text()
    assert "enable --now" in text  # says how to turn it on
    assert "WantedBy=multi-user.target" not in text


def test_timer_is_daily_and_catches_up() -> None:
    timer = unit("wyng-util-qubes-backup@.timer")["Timer"]
    assert timer["OnCalendar"] == "daily" and timer["Persistent"] == "true"
