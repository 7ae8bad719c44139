"""CI tier: text an archive supplies reaches a terminal escaped, never raw.

The qube's features, tags and notes are backed up with escape sequences in them
(as whoever can write an unencrypted archive could put there); the human output
of `restore --dry-run` and the errors show them as `\\x1b`-style escapes."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from tests.conftest import FakeWyngFactory
from tests.integration.restore_world import RestoreWorld, make_restore_world
from wyngq.cli import main

RAW = ("\x1b", "\x07", "\x9b", "\u202e", "\r")  # ESC, BEL, CSI, right-to-left override, carriage return


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def world(tmp_path: Path, fake_wyng: FakeWyngFactory, monkeypatch: pytest.MonkeyPatch) -> RestoreWorld:
    monkeypatch.setenv("WYNGQ_LOCK_PATH", str(tmp_path / "wyngq.lock"))
    return make_restore_world(tmp_path, fake_wyng)


def test_restore_dry_run_shows_features_tags_and_notes_escaped(
        world: RestoreWorld, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    work = world.qubes.domains["work"]
    work.features["title\x1b]0;owned\x07"] = "\x1b[2J\x9b31m"
    work.tags.add("tag\x1b[8m")
    work.notes = "notes\r\x1b[1A\u202eevil"
    world.backup("work")
    work.features.clear()
    work.tags.discard("tag\x1b[8m")
    work.notes = "changed"
    # the archive is unencrypted: its tags are refused as problems, which name them;
    # trusted, the diff shows every change
    for trust, expected in (((), 6), (("--trust-archive-settings",), 0)):
        terminal = Terminal()
        monkeypatch.setattr(sys, "stdout", terminal)
        status = main(["restore", f"--dest={world.dest}", f"--wyng={world.executable}", "work",
                       "--on-conflict=replace", "--dry-run", *trust], connect=lambda: world.qubes)
        shown = terminal.getvalue()
        assert status == expected, capsys.readouterr().err + shown
        assert not [c for c in RAW if c in shown], shown
        assert "tag\\x1b[8m" in shown
    assert "title\\x1b]0;owned\\x07" in shown and "\\x1b[1A" in shown and "\\u202eevil" in shown
    assert "Dry run: nothing was changed." in shown  # the text wyngq writes itself stays as it is
