"""The terminal progress line, from Wyng's recorded output (bytes, rate, time left)."""

from __future__ import annotations

import io

from tests.conftest import FIXTURES
from wyngq.contract.events import BackupPlanned, Opening, VolumeProgress
from wyngq.events import wyng_progress
from wyngq.output import Human
from wyngq.progress import MiB, ProgressBoard

GiB = 1024 * MiB


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def replay(stdout: str, human: Human, clock: Clock, sizes: dict[str, int], step: float) -> None:
    """Feed Wyng's output as the runner does: the bar of an unattended send grows one
    `|` at a time (a partial line), each `step` seconds apart."""
    human.event(BackupPlanned(("big",), tuple(sizes), (), False, sizes))
    handler = wyng_progress(human, lambda v: ("big", sizes[v]) if v in sizes else (None, None))
    for line in stdout.splitlines():
        if line.strip().startswith("[|"):
            head = line[: line.index("[") + 1]
            for cells in range(1, line.count("|") + 1):
                clock.now += step
                handler.partial(head + "|" * cells)
        handler(line)


def shown(out: io.StringIO) -> list[str]:
    """What the terminal shows, line by line, after every redraw: the text after the last \\r."""
    return [line.rsplit("\r", 1)[-1].rstrip() for line in out.getvalue().split("\n")]


def test_a_recorded_send_shows_bytes_rate_and_time_left() -> None:
    stdout = (FIXTURES / "cmd" / "040_send_big_full.stdout").read_text(encoding="utf-8")
    out, clock = io.StringIO(), Clock()
    human = Human(out, clock=clock, live=True)
    replay(stdout, human, clock, {"appvms/big/private.img": GiB}, step=0.25)  # 5 % per 0.25 s: 1 GiB in 5 s

    frames = out.getvalue().split("\r")
    halfway = next(f for f in frames if " 50%" in f)
    assert "big: appvms/big/private.img" in halfway
    assert "512/1024 MiB" in halfway and "205 MiB/s" in halfway and "0:03 left" in halfway
    assert shown(out)[1] == "  big: appvms/big/private.img  1024.0 MiB in 5.0 s (205 MiB/s)"


def test_overall_progress_across_volumes() -> None:
    clock = Clock()
    board = ProgressBoard(clock, {"a": 100 * MiB, "b": 300 * MiB})
    board.start("a", "  a")
    clock.now += 1
    board.advance(100)
    board.finish()
    board.start("b", "  b")
    clock.now += 1
    line = board.advance(50)
    assert "150/300 MiB" in line and "150 MiB/s" in line and line.count("0:01 left") == 2
    assert "| all 62%, 0:01 left" in line


def test_a_volume_of_unknown_size_shows_percent_only() -> None:
    clock = Clock()
    board = ProgressBoard(clock)
    assert board.start("wyng-qubes-metadata", "  wyng-qubes-metadata").strip() == "wyng-qubes-metadata    0%"
    assert board.advance(40).endswith(" 40%")
    clock.now += 0.5
    assert board.finish() == "  wyng-qubes-metadata  done in 0.5 s"


def test_a_shorter_line_wipes_the_longer_one_it_replaces() -> None:
    out, clock = io.StringIO(), Clock()
    human = Human(out, clock=clock, live=True)
    human.event(VolumeProgress("v", "started", size=GiB))
    clock.now += 1
    human.event(VolumeProgress("v", "progress", percent=50, size=GiB))
    long = out.getvalue().split("\r")[-1]
    human.event(VolumeProgress("v", "done", size=GiB))
    last = out.getvalue().split("\r")[-1]
    assert len(last.rstrip("\n")) >= len(long)


def test_opening_the_archive_is_said() -> None:
    out = io.StringIO()
    Human(out).event(Opening("file:/a"))
    assert out.getvalue().startswith("Opening the archive")
