"""wyngq.events: Wyng's progress lines, as recorded, turned into volume events."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from tests.conftest import FIXTURES
from wyngq.contract.serialize import to_json
from wyngq.events import NullReporter, nothing_known, wyng_progress

if TYPE_CHECKING:
    from wyngq.contract.events import Event

CMD = FIXTURES / "cmd"


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def event(self, event: Event, /) -> None:
        fields = to_json(event)
        assert isinstance(fields, dict)
        self.events.append((str(fields.pop("type")), fields))

    def volumes(self) -> list[tuple[str, str]]:
        return [(f["volume"], f["state"]) for t, f in self.events if t == "volume"]


def _feed(fixture: str, describe: Any = nothing_known) -> Recorder:
    """Feed the recorded stdout the way wyngq.process does: `\\r` and `\\n` end a line."""
    recorder = Recorder()
    on_line = wyng_progress(recorder, describe)
    text = (CMD / f"{fixture}.stdout").read_text(encoding="utf-8")
    for line in re.split(r"[\r\n]", text):
        if line.strip():
            on_line(line)
    return recorder


def _started_then_done(names: list[str]) -> list[tuple[str, str]]:
    return [pair for name in names for pair in ((name, "started"), (name, "done"))]


def test_full_send_of_two_pools() -> None:
    recorder = _feed("020_send_full")
    assert recorder.volumes() == _started_then_done(
        [
            "wyng-qubes-metadata",
            "appvms/personal/private.img",
            "appvms/work/private.img",
            "vm-templates/fedora/private.img",
            "vm-templates/fedora/root.img",
            "appvms/extra/private.img",
        ]
    )


def test_every_line_is_also_passed_on_raw() -> None:
    recorder = _feed("020_send_full")
    raw = [f["line"] for t, f in recorder.events if t == "wyng_output"]
    assert raw[0] == "Wyng 0.8 rc4 release 20251028"
    assert "5 volumes, 960——>43 MB in 0.9 seconds." in raw


def test_describe_adds_the_qube() -> None:
    owners = {"appvms/work/private.img": "work", "vm-templates/fedora/root.img": "fedora"}
    recorder = _feed("020_send_full", lambda v: (owners.get(v), None))
    events = [f for t, f in recorder.events if t == "volume"]
    assert {"volume": "appvms/work/private.img", "state": "started", "qube": "work"} in events
    assert {"volume": "appvms/work/private.img", "state": "done", "qube": "work"} in events
    assert {"volume": "wyng-qubes-metadata", "state": "started"} in events


def test_incremental_send_with_unchanged_volumes() -> None:
    # "no change" volumes start but never reach 100 %: a started event only.
    recorder = _feed("032_send_incr1")
    starts = [v for v, s in recorder.volumes() if s == "started"]
    dones = [v for v, s in recorder.volumes() if s == "done"]
    assert starts
    assert set(dones) <= set(starts)
    text = (CMD / "032_send_incr1.stdout").read_text(encoding="utf-8")
    assert len(starts) == text.count("Volume '")
    assert len(dones) == text.count("100%")


def test_receive_into_pools() -> None:
    recorder = _feed("056_recv_pool_S2")
    assert recorder.volumes() == _started_then_done(
        [
            "appvms/work/private.img",
            "appvms/personal/private.img",
            "vm-templates/fedora/root.img",
            "vm-templates/fedora/private.img",
            "appvms/extra/private.img",
        ]
    )


def test_receive_with_verbose_carriage_return_progress() -> None:
    recorder = _feed("050v_recv_saveto_verbose")
    steps = [v for v in recorder.volumes() if v[1] != "progress"]
    assert steps == _started_then_done(["appvms/work/private.img"])
    percents = [f["percent"] for kind, f in recorder.events if kind == "volume" and f["state"] == "progress"]
    assert percents == list(range(0, 100, 5))


def test_unattended_bar_growing_one_cell_at_a_time_reports_progress() -> None:
    recorder = Recorder()
    handler = wyng_progress(recorder, lambda _v: ("big", None))
    handler("Volume 'appvms/big/private.img'")
    for cells in range(1, 21):
        handler.partial("  [" + "|" * cells)
    handler("  [||||||||||||||||||||]  100%  1024.1MB ")
    events = [(f["state"], f.get("percent")) for kind, f in recorder.events if kind == "volume"]
    assert events[0] == ("started", None) and events[-1] == ("done", None)
    assert [p for state, p in events if state == "progress"] == list(range(5, 100, 5))


def test_receive_with_missing_volumes() -> None:
    recorder = _feed("056c_recv_pool_S4_strict")
    assert recorder.volumes() == _started_then_done(["appvms/work/private.img"])


def test_interrupted_send_starts_but_never_finishes() -> None:
    recorder = _feed("0e0_sigint")
    assert [v for v in recorder.volumes() if v[1] != "progress"] == [("appvms/big/private.img", "started")]


def test_scan_and_summary_lines_are_not_volumes() -> None:
    recorder = Recorder()
    on_line = wyng_progress(recorder, lambda _v: {})
    for line in (
        "  Queuing full scan of 'appvms/work/private.img'",
        "Preparing snapshots in '/var/lib/qubes-pool/qubes/'...",
        "5 volumes, 960——>43 MB in 0.9 seconds.",
        "  [||||||||||||||||||||]  100%  12.1MB ",
    ):
        on_line(line)
    assert recorder.volumes() == []


def test_null_reporter_takes_anything() -> None:
    on_line = wyng_progress(NullReporter())
    on_line("Volume 'appvms/work/private.img'")
    on_line("  [||||||||||||||||||||]  100%  12.1MB ")
