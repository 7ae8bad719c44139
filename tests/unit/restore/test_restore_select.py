"""wyngq.restore.select: which session and which qubes."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.unit.restore.restore_builders import SESSION, chain, session
from wyngq.errors import UnsupportedQubeError, UsageError
from wyngq.model import QubeClass, QubeSettings
from wyngq.restore.model import RestoreRequest
from wyngq.restore.select import choose_session, select_qubes

BUNDLES = ["20250101-000000", "20250102-000000", "20250103-000000"]


@pytest.mark.parametrize(("session", "expected"), [
    ("latest", "20250103-000000"),
    ("20250101-000000", "20250101-000000"),
])
def test_choose_session(session: str, expected: str) -> None:
    assert choose_session(BUNDLES, RestoreRequest(qubes=("work",), session=session)) == expected


def test_choose_session_refuses_a_session_without_a_bundle() -> None:
    with pytest.raises(UsageError, match="no Qubes backup session 20240101-000000"):
        choose_session(BUNDLES, RestoreRequest(qubes=("work",), session="20240101-000000"))


def test_empty_archive() -> None:
    with pytest.raises(UsageError, match="no Qubes backup session"):
        choose_session([], RestoreRequest(session="latest"))


def test_select_whole_session_leaves_out_disposables_and_excluded() -> None:
    data = session(chain())
    assert select_qubes(data, RestoreRequest()) == ("dvm", "fedora", "sys-fw", "sys-net", "work")
    assert "disp1" in select_qubes(data, RestoreRequest(include_disposable=True))
    assert "work" not in select_qubes(data, RestoreRequest(exclude=("work",)))


def test_select_named() -> None:
    data = session(chain())
    assert select_qubes(data, RestoreRequest(qubes=("work", "disp1"))) == ("disp1", "work")
    with pytest.raises(UsageError, match=f"not in session {SESSION}: nope"):
        select_qubes(data, RestoreRequest(qubes=("work", "nope")))
    with pytest.raises(UsageError, match="dom0"):
        select_qubes(data, RestoreRequest(qubes=("dom0",)))


def test_select_named_qube_without_its_data() -> None:
    data = session(chain(), without=[("work", "private")])
    with pytest.raises(UsageError, match="not in session"):
        select_qubes(data, RestoreRequest(qubes=("work",)))


def test_select_nothing_left() -> None:
    with pytest.raises(UsageError, match="nothing to restore"):
        select_qubes(session(chain()[:1]), RestoreRequest(exclude=("fedora",)))


def test_rename_of_a_qube_not_restored_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="--rename names qubes this restore does not restore: vault"):
        select_qubes(session(chain()), RestoreRequest(qubes=("work",), renames=(("vault", "v2"),)))


def test_a_named_qube_of_a_class_wyngq_does_not_restore_is_refused_by_name() -> None:
    data = replace(session(chain()), unsupported={"far": "RemoteVM"})
    with pytest.raises(UnsupportedQubeError, match=r"far \(RemoteVM\)") as caught:
        select_qubes(data, RestoreRequest(qubes=("work", "far")))
    assert caught.value.code == "unsupported_class"
    assert select_qubes(data, RestoreRequest(qubes=("work",))) == ("work",)


def test_a_named_adminvm_is_refused_the_same_way() -> None:
    data = session([*chain(), QubeSettings("gui", QubeClass.ADMIN, "black")])
    with pytest.raises(UnsupportedQubeError, match=r"gui \(AdminVM\)"):
        select_qubes(data, RestoreRequest(qubes=("gui",)))
