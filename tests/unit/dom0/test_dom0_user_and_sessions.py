"""Who the dom0 user is (wyngq.dom0.user), and which sessions hold dom0 items
(wyngq.dom0.inarchive)."""

from __future__ import annotations

import grp
import pwd
from types import SimpleNamespace

import pytest

from wyngq.dom0 import CONFIG_VOLUME, HOME_VOLUME, inarchive, user
from wyngq.errors import ConfigError, UsageError
from wyngq.volnames import METADATA_VOLUME
from wyngq.wyng.catalog import Archive, ArchiveVolume, SessionEntry


def test_the_dom0_user_is_the_first_member_of_group_qubes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(grp, "getgrnam", lambda name: SimpleNamespace(gr_mem=["alice", "bob"]) if name == "qubes"
                        else pytest.fail(name))
    monkeypatch.setattr(pwd, "getpwnam", lambda name: SimpleNamespace(pw_uid=1000, pw_gid=1000,
                                                                       pw_dir=f"/home/{name}"))

    assert user.dom0_user() == user.Dom0User("alice", 1000, 1000, "/home/alice")


@pytest.mark.parametrize("members", [None, []])
def test_no_dom0_user_where_group_qubes_is_missing_or_empty(monkeypatch: pytest.MonkeyPatch,
                                                            members: list[str] | None) -> None:
    def getgrnam(name: str) -> SimpleNamespace:
        if members is None:
            raise KeyError(name)
        return SimpleNamespace(gr_mem=members)

    monkeypatch.setattr(grp, "getgrnam", getgrnam)

    assert user.find_dom0_user() is None
    with pytest.raises(ConfigError, match="no dom0 user"):
        user.dom0_user()


def volume(name: str, *sessions: str, size: int = 100) -> ArchiveVolume:
    return ArchiveVolume(name, "v", sessions[-1] if sessions else None,
                         {s: SessionEntry(s, size, i, True) for i, s in enumerate(sessions)})


S1, S2, S3 = "20250101-000000", "20250102-000000", "20250103-000000"
ARCHIVE = Archive("0.8", "20251028", "u", 0.0, False, False, "file:/a", {
    METADATA_VOLUME: volume(METADATA_VOLUME, S1, S2, S3),
    "appvms/work/private.img": volume("appvms/work/private.img", S1, S2, S3),
    HOME_VOLUME: volume(HOME_VOLUME, S1, S2, size=5000),
    CONFIG_VOLUME: volume(CONFIG_VOLUME, S1, size=70),
    "wyng-qubes-dom0-home-stray": volume("x", S3),
})


def test_a_session_lists_its_dom0_items_with_their_sizes() -> None:
    assert inarchive.session_items(ARCHIVE, S1) == (
        inarchive.Dom0Item("home", HOME_VOLUME, 5000), inarchive.Dom0Item("config", CONFIG_VOLUME, 70))
    assert inarchive.session_items(ARCHIVE, S3) == ()


def test_the_newest_session_holding_every_item_asked_for() -> None:
    assert inarchive.pick_session(ARCHIVE, ["home"], None) == S2
    assert inarchive.pick_session(ARCHIVE, ["home", "config"], "latest") == S1
    assert inarchive.pick_session(ARCHIVE, ["home"], S1) == S1
    with pytest.raises(UsageError, match=f"session {S3} holds no dom0 home"):
        inarchive.pick_session(ARCHIVE, ["home"], S3)
    empty = Archive("0.8", "20251028", "u", 0.0, False, False, "file:/a", {})
    with pytest.raises(UsageError, match="the archive holds no dom0 config"):
        inarchive.pick_session(empty, ["config"], None)
