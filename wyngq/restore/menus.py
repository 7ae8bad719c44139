"""App menus of restored qubes, without starting any qube.

In Qubes 4.2 and 4.3 dom0's menu entries are files in the dom0 user's home,
made by `qvm-appmenus` (qubes-desktop-linux-common) from data dom0 keeps per
template. qubesd's appmenus extension from the same package already runs it
when a qube is created or its label, `menu-items` or GUI qube changes, so a
restore through the Admin API mostly triggers it; a restore over a qube whose
settings were already equal triggers nothing. So after a restore wyngq runs
`qvm-appmenus --init --update --force` for the restored qubes whose GUI qube
is dom0, as the dom0 user (never root: the files are that user's), as
qvm-clone does. What it cannot do is named in the result:
- a template or standalone restored here has no application list in dom0
  until it runs once (`qvm-sync-appmenus NAME` starts it);
- a qube shown by another GUI qube gets its menu there when that qube runs;
- without qvm-appmenus (no desktop package) there is nothing to update.
"""

from __future__ import annotations

import grp
import os
import shutil
from collections.abc import Callable, Sequence

from wyngq import process
from wyngq.errors import WyngqError
from wyngq.model import QubeClass

Runner = Callable[[Sequence[str]], process.Completed]


def menu_command(names: Sequence[str], user: str | None) -> list[str]:
    """The qvm-appmenus call for `names`; through runuser when run as root."""
    argv = ["qvm-appmenus", "--init", "--update", "--force", "--quiet", "--", *names]
    return ["runuser", "-u", user, "--", *argv] if user else argv


def desktop_user() -> str | None:
    """The dom0 user menus belong to: the first member of group `qubes` (as qubesd's
    appmenus extension takes it), or None when not root (we are that user)."""
    if os.getuid() != 0:
        return None
    try:
        members = grp.getgrnam("qubes").gr_mem
    except KeyError:
        return ""
    return members[0] if members else ""


def refresh_menus(
    restored: Sequence[tuple[str, QubeClass, str | None]],
    *,
    run: Runner = process.run,
    which: Callable[[str], str | None] = shutil.which,
    user: Callable[[], str | None] = desktop_user,
) -> tuple[str, ...]:
    """Update the dom0 menu entries of the restored qubes, given (name, class,
    guivm: "" or "dom0" for dom0); return notes for the result saying what was
    done and what the user must do."""
    if not restored:
        return ()
    here = [name for name, _klass, guivm in restored if guivm in (None, "", "dom0")]
    notes = [f"app menus of {name} come from its GUI qube {guivm}; they appear there once it runs"
             for name, _klass, guivm in restored if guivm not in (None, "", "dom0")]
    if here and which("qvm-appmenus") is None:
        return (*notes, "app menus not updated: qvm-appmenus is not installed in dom0 (no desktop package)")
    owner = user()
    if here and owner == "":
        return (*notes, "app menus not updated: no user in group qubes owns the dom0 menu; run "
                        f"`qvm-appmenus --update --force {' '.join(here)}` as the desktop user")
    if here:
        try:
            done = run(menu_command(here, owner))
            if done.returncode != 0:
                notes.append(f"app menus not updated (qvm-appmenus exited {done.returncode}); run "
                             f"`qvm-appmenus --update --force {' '.join(here)}` in your desktop session")
            else:
                notes.append(f"app menus updated: {', '.join(here)}")
        except WyngqError as err:
            notes.append(f"app menus not updated: {err.message}")
    fresh = [name for name, klass, _ in restored if klass in (QubeClass.TEMPLATE, QubeClass.STANDALONE)]
    if fresh:
        notes.append(f"{', '.join(fresh)}: their application lists reach dom0 when they run; "
                     f"`qvm-sync-appmenus NAME` (which starts the qube) fills the menu now")
    return tuple(notes)
