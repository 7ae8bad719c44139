"""Which session each qube comes from (restore.sessions), and the plan across
sessions (restore.plan), as pure functions."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.unit.restore.restore_builders import EMPTY, D, T, chain, qube, session
from wyngq.errors import UsageError
from wyngq.globalprefs import capture
from wyngq.model import PropertyValue
from wyngq.restore.model import Op, RestoreRequest, StepKind
from wyngq.restore.plan import plan_restore
from wyngq.restore.prefs import plan_prefs, prefs_from_qubes_xml, review
from wyngq.restore.sessions import (
    bundles_to_read,
    check_request,
    finish_placement,
    place_disposables,
    place_with_data,
)

S1, S2, S3 = "20250101-000000", "20250102-000000", "20250103-000000"
ALL_SESSIONS = [S1, S2, S3]


def vols(name: str, *sessions: str) -> dict[str, dict[str, str]]:
    return {s: {"private": f"appvms/{name}/private.img"} for s in sessions}


INDEX = {"fedora": vols("fedora", S1), "work": vols("work", S1, S2), "vault": vols("vault", S1, S3),
         "sys-net": vols("sys-net", S2)}


def req(*qubes: str, **options: object) -> RestoreRequest:
    return RestoreRequest(qubes=qubes, **options)  # type: ignore[arg-type]


def test_all_places_each_qube_at_its_newest_session() -> None:
    assert place_with_data(INDEX, ALL_SESSIONS, req(all=True)) == {
        "fedora": S1, "work": S2, "vault": S3, "sys-net": S2}


def test_as_of_takes_the_newest_at_or_before_and_drops_qubes_not_yet_backed_up() -> None:
    assert place_with_data(INDEX, ALL_SESSIONS, req(all=True, as_of=S1)) == {
        "fedora": S1, "work": S1, "vault": S1}
    assert place_with_data(INDEX, ALL_SESSIONS, req(all=True, as_of="20250102-120000"))["work"] == S2


def test_exclude_and_dom0_are_left_out() -> None:
    index = {**INDEX, "dom0": vols("dom0", S1)}
    assert set(place_with_data(index, ALL_SESSIONS, req(all=True, exclude=("work",)))) == {
        "fedora", "vault", "sys-net"}


def test_named_qubes_each_from_their_own_newest_session() -> None:
    assert place_with_data(INDEX, ALL_SESSIONS, req("work", "vault")) == {"work": S2, "vault": S3}


def test_a_named_qube_not_backed_up_by_as_of_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="no backup of sys-net at or before"):
        place_with_data(INDEX, ALL_SESSIONS, req("sys-net", as_of=S1))


def test_no_session_at_or_before_as_of() -> None:
    with pytest.raises(UsageError, match="no Qubes backup session at or before"):
        place_with_data(INDEX, ALL_SESSIONS, req(all=True, as_of="20240101-000000"))


def test_bundles_of_the_placed_sessions_first_then_older_ones_for_a_named_disposable() -> None:
    placed = {"work": S2}
    assert bundles_to_read(placed, ALL_SESSIONS, req("work", "disp1")) == [S2]
    assert bundles_to_read(placed, ALL_SESSIONS, req("work", "disp1"), read=[S2]) == [S3]
    assert bundles_to_read(placed, ALL_SESSIONS, req("work", "disp1"), read=[S2, S3]) == [S1]
    assert bundles_to_read(placed, ALL_SESSIONS, req("work", "disp1"), read=ALL_SESSIONS) == []
    # --all reads only the bundles of the sessions it restores from
    assert bundles_to_read({"work": S2, "vault": S3}, ALL_SESSIONS, req(all=True), read=[S2, S3]) == []


def test_disposables_come_from_the_newest_bundle_holding_them() -> None:
    bundles = {S1: {"disp1": qube("disp1", D), "work": qube("work")}, S2: {"disp1": qube("disp1", D, label="blue")}}
    placed = place_disposables({"work": S1}, bundles, req(all=True))
    assert placed == {"work": S1, "disp1": S2}
    assert place_disposables({"work": S1}, bundles, req(all=True, exclude=("disp1",))) == {"work": S1}
    assert place_disposables({"work": S1}, bundles, req("work")) == {"work": S1}


def test_finish_placement_checks_names_and_settings() -> None:
    bundles = {S1: {"work": qube("work"), "fedora": qube("fedora", T)}}
    with pytest.raises(UsageError, match="no backups of: nosuch"):
        finish_placement({"work": S1}, bundles, req("work", "nosuch"))
    with pytest.raises(UsageError, match="holds data of vault but not its settings"):
        finish_placement({"vault": S1}, bundles, req("vault"))
    placed = finish_placement({"work": S1, "vault": S1}, bundles, req(all=True))
    assert placed.sessions == {"work": S1} and placed.left_out == ("vault",)
    with pytest.raises(UsageError, match="--rename names qubes"):
        finish_placement({"work": S1}, bundles, req("work", renames=(("fedora", "f2"),)))


@pytest.mark.parametrize(("request_", "message"), [
    (req("work", all=True), "do not name qubes"),
    (req(all=True, session=S1), "cannot be combined with --session"),
    (req("work", session=S1, as_of=S1), "give one of them"),
    (req(), "name the qubes to restore, or give --all or --session"),
    (req("dom0"), "dom0 is never restored"),
])
def test_usage_errors(request_: RestoreRequest, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        check_request(request_)


def test_one_plan_across_sessions_orders_by_dependency_and_receives_once_per_session() -> None:
    data = session(chain())
    # the template and the app qube from S1, the netvms and the DVM template from S2
    data = replace(data, session=S2, sessions={"fedora": S1, "work": S1, "dvm": S2, "sys-net": S2,
                                               "sys-fw": S2, "disp1": S2})
    request = RestoreRequest(all=True)
    result = plan_restore(data, EMPTY, request, tuple(sorted(data.sessions)))

    assert [q.target for q in result.qubes][:1] == ["fedora"]
    order = [q.target for q in result.qubes]
    assert order.index("sys-net") < order.index("sys-fw") < order.index("work")
    assert order.index("dvm") < order.index("disp1")
    receives = [s for s in result.steps if s.kind is StepKind.RECEIVE]
    assert [s.ops[0].key for s in receives] == [S1, S2]
    assert {q.target: q.session for q in result.qubes} == data.sessions
    assert result.sessions == (S1, S2)


def test_prefs_are_captured_when_set_explicitly_and_only_known_ones() -> None:
    every = {"default_template": (False, PropertyValue("vm", "fedora")),
             "default_netvm": (True, PropertyValue("vm", "sys-firewall")),
             "maxmem": (False, PropertyValue("int", "16000")), "odd": (False, PropertyValue("str", "x"))}
    assert capture(every) == {"default_template": PropertyValue("vm", "fedora")}


def test_prefs_plan_skips_equal_values_and_missing_qubes_and_follows_renames() -> None:
    backup = {"default_template": PropertyValue("vm", "fedora"), "clockvm": PropertyValue("vm", "sys-net"),
              "updatevm": PropertyValue("vm", "gone"), "default_shutdown_timeout": PropertyValue("int", "90"),
              "default_netvm": PropertyValue("vm", "fw")}
    live = {"default_template": (False, PropertyValue("vm", "fedora")), "clockvm": (False, PropertyValue("vm", "")),
            "default_shutdown_timeout": (True, PropertyValue("int", "60"))}
    ops, problems = plan_prefs(backup, live, {"fw": "fw-restored", "gone": None},
                               frozenset({"dom0", "fedora", "sys-net", "fw-restored"}))
    assert {(o.key, o.value, o.old) for o in ops} == {
        ("clockvm", "sys-net", ""), ("default_shutdown_timeout", "90", "60"), ("default_netvm", "fw-restored", None)}
    assert [p.code for p in problems] == ["missing_pref_qube"] and "updatevm" in problems[0].message


def test_prefs_plan_refuses_values_that_are_not_what_qubesd_takes() -> None:
    backup = {"default_kernel": PropertyValue("str", "6.1; rm -rf"), "clockvm": PropertyValue("vm", "../x"),
              "stats_interval": PropertyValue("int", "-1"), "maxmem": PropertyValue("int", "1")}
    ops, problems = plan_prefs(backup, {}, {}, frozenset({"dom0"}))
    assert ops == () and problems == ()


def test_prefs_from_an_upstream_qubes_xml() -> None:
    xml = (b"<qubes><labels/><properties><property name='default_template'>fedora</property>"
           b"<property name='clockvm'>sys-net</property><property name='maxmem'>9</property></properties>"
           b"<domains/></qubes>")
    assert prefs_from_qubes_xml(xml) == {"default_template": PropertyValue("vm", "fedora"),
                                         "clockvm": PropertyValue("vm", "sys-net")}
    assert prefs_from_qubes_xml(b"<!DOCTYPE x><qubes/>") == {}
    assert prefs_from_qubes_xml(b"not xml") == {}


def test_prefs_that_give_power_need_an_authenticated_archive_or_the_override() -> None:
    ops = (Op("set", "updatevm", "sys-fw", ""), Op("set", "default_netvm", "", "sys-fw"),
           Op("set", "default_shutdown_timeout", "90", "60"))
    assert review(ops, authenticated=True, trusted=False) == ()
    (refused,) = review(ops, authenticated=False, trusted=False)
    assert refused.blocking and refused.setting == "pref:updatevm" and "dom0's updates" in refused.message
    (trusted,) = review(ops, authenticated=False, trusted=True)
    assert not trusted.blocking and trusted.code == "untrusted_setting"
