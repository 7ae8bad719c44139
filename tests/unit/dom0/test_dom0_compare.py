"""wyngq.dom0.compare: each restored configuration file against the live one."""

from __future__ import annotations

import os
from pathlib import Path

from tests.unit.dom0.trees import make_tree
from wyngq.dom0 import compare
from wyngq.dom0.walk import Entry as Member


def member(path: str, kind: str = "file") -> Member:
    return Member(path, kind, 0o644, 0, 0, 0)


def test_new_equal_and_different_files_with_a_diff_and_how_to_put_them_in_place(tmp_path: Path) -> None:
    restored = make_tree(tmp_path / "restored", {"etc/a": b"same\n", "etc/b": b"one\ntwo\n", "etc/new": b"n\n"})
    live = make_tree(tmp_path / "live", {"etc/a": b"same\n", "etc/b": b"one\nthree\n"})

    states = compare.compare([member("etc"), member("etc/a"), member("etc/b"), member("etc/new")][1:],
                             str(restored), str(live), diff=True)

    assert [(s.path, s.state) for s in states] == [("/etc/a", "equal"), ("/etc/b", "different"), ("/etc/new", "new")]
    assert states[1].diff is not None and "-three\n+two\n" in states[1].diff
    assert states[0].diff is None and states[2].diff is None
    assert states[2].put_in_place == (f"sudo mkdir -p {live}/etc && sudo cp -a {restored}/etc/new {live}/etc/new")


def test_a_mode_change_alone_makes_a_file_different(tmp_path: Path) -> None:
    restored = make_tree(tmp_path / "restored", {"f": b"x"})
    live = make_tree(tmp_path / "live", {"f": b"x"})
    os.chmod(live / "f", 0o600)

    (state,) = compare.compare([member("f")], str(restored), str(live), diff=True)

    assert state.state == "different" and state.diff == "(only owner or mode differ)"


def test_symlinks_compare_by_target_and_binary_files_are_not_diffed(tmp_path: Path) -> None:
    restored = make_tree(tmp_path / "restored", {"bin": b"\0\1"}, links={"l": "a"})
    live = make_tree(tmp_path / "live", {"bin": b"\0\2"}, links={"l": "a"})

    states = compare.compare([member("bin"), member("l", "symlink")], str(restored), str(live), diff=True)

    assert [(s.state, s.diff) for s in states] == [("different", "(binary files differ)"), ("equal", None)]
