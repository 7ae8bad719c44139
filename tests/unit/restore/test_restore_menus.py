"""wyngq.restore.menus: what a restore does about dom0's app menus (no qube started)."""

from __future__ import annotations

from collections.abc import Sequence

from wyngq import process
from wyngq.model import QubeClass
from wyngq.restore.menus import menu_command, refresh_menus

APP, TEMPLATE = QubeClass.APP, QubeClass.TEMPLATE


class Runs:
    def __init__(self, returncode: int = 0) -> None:
        self.argv: list[list[str]] = []
        self.returncode = returncode

    def __call__(self, argv: Sequence[str]) -> process.Completed:
        self.argv.append(list(argv))
        return process.Completed(tuple(argv), self.returncode, "", "")


def _installed(name: str) -> str | None:
    return f"/usr/bin/{name}"


def test_as_root_the_menus_are_made_as_the_desktop_user() -> None:
    assert menu_command(["work"], "user") == ["runuser", "-u", "user", "--", "qvm-appmenus", "--init", "--update",
                                              "--force", "--quiet", "--", "work"]
    assert menu_command(["a", "b"], None)[-3:] == ["--", "a", "b"]


def test_restored_qubes_shown_by_dom0_get_their_menus_in_one_call() -> None:
    runs = Runs()
    notes = refresh_menus([("work", APP, None), ("dvm", APP, "dom0")], run=runs, which=_installed,
                          user=lambda: "user")
    assert runs.argv == [menu_command(["work", "dvm"], "user")]
    assert notes == ("app menus updated: work, dvm",)


def test_a_restored_template_says_its_list_needs_it_to_run() -> None:
    notes = refresh_menus([("fedora", TEMPLATE, None)], run=Runs(), which=_installed, user=lambda: None)
    assert any("qvm-sync-appmenus" in n and "fedora" in n for n in notes)


def test_qubes_of_another_gui_qube_are_left_to_it() -> None:
    runs = Runs()
    notes = refresh_menus([("work", APP, "sys-gui")], run=runs, which=_installed, user=lambda: None)
    assert runs.argv == [] and "sys-gui" in notes[0]


def test_without_qvm_appmenus_the_result_says_so() -> None:
    runs = Runs()
    notes = refresh_menus([("work", APP, None)], run=runs, which=lambda _n: None, user=lambda: None)
    assert runs.argv == [] and "not installed" in notes[-1]


def test_a_failing_qvm_appmenus_is_a_note_with_the_command_to_run() -> None:
    notes = refresh_menus([("work", APP, None)], run=Runs(returncode=1), which=_installed, user=lambda: None)
    assert "qvm-appmenus --update --force work" in notes[0]


def test_no_desktop_user_is_a_note() -> None:
    runs = Runs()
    notes = refresh_menus([("work", APP, None)], run=runs, which=_installed, user=lambda: "")
    assert runs.argv == [] and "group qubes" in notes[0]


def test_nothing_restored_nothing_done() -> None:
    assert refresh_menus([], run=Runs(), which=_installed) == ()
