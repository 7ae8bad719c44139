"""wyngq.restore.resolve: free names, dependency order, running dependants."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tests.unit.restore.restore_builders import D, chain, live_from, qube
from wyngq.names import is_qube_name
from wyngq.restore.resolve import dependency_order, free_name, running_dependants


def test_free_name() -> None:
    assert free_name("work", {"work"}) == "work-restored"
    assert free_name("work", {"work", "work-restored"}) == "work-restored2"
    long = "a" * 31
    assert free_name(long, {long}) == "a" * 22 + "-restored"
    assert len(free_name(long, {long, "a" * 22 + "-restored"})) == 31


@given(st.from_regex(r"[a-z][a-z0-9-]{0,30}", fullmatch=True))
def test_free_name_is_always_a_qube_name(name: str) -> None:
    if is_qube_name(name):
        new = free_name(name, {name})
        assert is_qube_name(new) and new != name


def test_dependency_order_by_edges_then_rank() -> None:
    nodes = {"work": 4, "fedora": 0, "sys-fw": 3, "sys-net": 3, "dvm": 2}
    edges = {"work": {"sys-fw", "dvm", "fedora"}, "sys-fw": {"sys-net", "fedora"}, "sys-net": {"fedora"},
             "dvm": {"fedora"}}
    assert dependency_order(nodes, edges) == ("fedora", "dvm", "sys-net", "sys-fw", "work")


def test_dependency_order_breaks_cycles_and_self_references() -> None:
    nodes = {"a": 3, "b": 3, "c": 4}
    edges = {"a": {"b", "a"}, "b": {"a"}, "c": {"a"}}
    order = dependency_order(nodes, edges)
    assert sorted(order) == ["a", "b", "c"] and order[-1] == "c"


@given(st.dictionaries(st.sampled_from("abcdef"), st.sets(st.sampled_from("abcdefg")), min_size=1))
def test_dependency_order_is_a_permutation_respecting_acyclic_edges(edges: dict[str, set[str]]) -> None:
    nodes = dict.fromkeys(edges, 1)
    order = dependency_order(nodes, edges)
    assert sorted(order) == sorted(nodes)


def test_running_dependants() -> None:
    here = [*chain(), qube("app2", netvm="sys-fw"), qube("disp9", D, template="dvm"), qube("snd", audiovm="sys-net")]
    live = live_from(here, running=("sys-fw", "app2", "disp9", "snd", "work"))
    assert running_dependants("sys-net", live) == ("snd", "app2", "work", "sys-fw")
    assert running_dependants("dvm", live) == ("disp9",)
    assert running_dependants("work", live) == ()
