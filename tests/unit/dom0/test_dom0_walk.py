"""wyngq.dom0.walk and the home's exclusions (wyngq.dom0.backup.home_excluder)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from tests.unit.dom0.trees import make_tree
from wyngq.dom0 import walk
from wyngq.dom0.backup import DEFAULT_EXCLUDE, Dom0Backup, home_excluder


def paths(root: Path, excluder: walk.Excluder | None = None) -> list[str]:
    return [e.path for e in walk.walk(str(root), excluder or walk.Excluder()).entries]


def test_default_exclusions_leave_out_what_qubes_regenerates(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "home", {
        ".cache/mozilla/x": b"1", "QubesIncoming/work/file": b"2", ".local/share/Trash/files/old": b"3",
        "home-restore-20250101-000000/.bashrc": b"4", ".bashrc": b"5", "Documents/.cache-note": b"6",
        "src/project/.cache/y": b"7", ".local/share/keep": b"8",
    })

    kept = paths(root, home_excluder(Dom0Backup(home=True), str(root)))

    assert set(DEFAULT_EXCLUDE) == {".cache", "QubesIncoming", ".local/share/Trash", "home-restore-*"}
    assert kept == [".bashrc", ".local", ".local/share", ".local/share/keep", "Documents", "Documents/.cache-note",
                    "src", "src/project"]


def test_profile_patterns_add_to_the_defaults_anchored_or_by_name(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "home", {"a/big.iso": b"1", "b/c/big.iso": b"2", "vms/x": b"3", "keep/vms/y": b"4"})

    kept = paths(root, home_excluder(Dom0Backup(home=True, exclude=("*.iso", "/vms")), str(root)))

    assert kept == ["a", "b", "b/c", "keep", "keep/vms", "keep/vms/y"]


def test_the_archive_and_wyngs_metadata_inside_the_home_are_left_out(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "home", {"backups/laptop.wyng/archive.ini": b"1", "notes": b"2"})

    excluder = home_excluder(Dom0Backup(home=True), str(root), [str(root / "backups" / "laptop.wyng"), "/var/lib/x"])

    assert paths(root, excluder) == ["backups", "notes"]


def test_symlinks_are_entries_never_followed_and_sockets_are_left_out(tmp_path: Path) -> None:
    outside = make_tree(tmp_path / "outside", {"secret": b"s"})
    root = make_tree(tmp_path / "home", {"f": b"1"}, links={"to-outside": str(outside), "to-f": "f"})
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(root / "agent.sock"))
    os.mkfifo(root / "fifo")

    tree = walk.walk(str(root))

    assert [(e.path, e.kind, e.link) for e in tree.entries] == [
        ("f", "file", None), ("to-f", "symlink", "f"), ("to-outside", "symlink", str(outside))]
    assert tree.skipped == ("agent.sock", "fifo")
    server.close()


def test_another_filesystem_mounted_inside_is_left_out_its_mount_point_kept(tmp_path: Path) -> None:
    import subprocess

    import pytest

    root = make_tree(tmp_path / "home", {"f": b"1"}, dirs=["usb"])
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "wyngq-test", str(root / "usb")],
                             capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        (root / "usb" / "photo.jpg").write_bytes(b"not from this filesystem")

        tree = walk.walk(str(root))

        assert [e.path for e in tree.entries] == ["f", "usb"]
        assert tree.skipped == ("usb/",)
    finally:
        subprocess.run(["umount", str(root / "usb")], check=True)
