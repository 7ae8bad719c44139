"""wyngq.restore.select: which session and which qubes."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.unit.restore.restore_builders import SESSION, chain, session
from wyngq.errors import UnsupportedQubeError, UsageError
from wyngq.model import QubeClass, QubeSettings
from wyngq.restore.model import RestoreRequest
from wyngq.restore.select import choose_session, select_qubes

INDEX = {
    "work": {"20250101-000000": {"private": "w1"}, "20250103-000000": {"private": "w3"}},
    "vault": {"20250101-000000": {"private": "v1"}, "20250102-000000": {"private": "v2"}},
}
BUNDLES = ["20250101-000000", "20250102-000000", "20250103-000000"]


@pytest.mark.parametrize(("qubes", "session", "expected"), [
    (("work",), None, "20250103-000000"),
    (("vault",), None, "20250102-000000"),
    (("work", "vault"), None, "20250101-000000"),
    (("work", "disp1"), None, "20250103-000000"),  # no data anywhere: maybe a disposable
    (("disp1",), None, "20250103-000000"),
    ((), "latest", "20250103-000000"),
    (("work",), "latest", "20250103-000000"),
    (("work",), "20250101-000000", "20250101-000000"),
])
def test_choose_session(qubes: tuple[str, ...], session: str | None, expected: str) -> None:
    assert choose_session(INDEX, BUNDLES, RestoreRequest(qubes=qubes, session=session)) == expected


@pytest.mark.parametrize(("request_", "message"), [
    (RestoreRequest(), "name the qubes"),
    (RestoreRequest(qubes=("work",), session="20240101-000000"), "no Qubes backup session"),
])
def test_choose_session_refuses(request_: RestoreRequest, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        choose_session(INDEX, BUNDLES, request_)


def test_no_common_session() -> None:
    index = {"a": {"20250101-000000": {}}, "b": {"20250102-000000": {}}}
    with pytest.raises(UsageError, match="no session holds all of a, b"):
        choose_session(index, ["20250101-000000", "20250102-000000"], RestoreRequest(qubes=("a", "b")))


def test_empty_archive() -> None:
    with pytest.raises(UsageError, match="no Qubes backup session"):
        choose_session({}, [], RestoreRequest(session="latest"))


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
