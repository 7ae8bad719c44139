"""wyngq.qubes.known: what the Admin API adapter may take as known, and until when.

The one answer that outlives a write: a qube this adapter guarded and saw
halted since stays halted (qubesd starts no qube with the guard tag), so a
restore's clone into it needs no power-state call. It must not hold a moment
longer than that."""

from __future__ import annotations

from wyngq.model import QubeClass
from wyngq.qubes.known import Known, Read


def halted_and_guarded() -> Known:
    known = Known()
    known.guard("work", True)
    known.listed_as("work", QubeClass.APP, "Halted")
    return known


def test_a_guarded_qube_seen_halted_is_known_halted_across_writes() -> None:
    known = halted_and_guarded()
    known.read["work"] = Read({})
    known.forget()  # any write
    assert "work" in known.halted and known.read == {} and known.listed == {}
    assert known.classes == {"work": QubeClass.APP}  # qubesd changes no qube's class


def test_halted_before_the_guard_is_not_enough() -> None:
    known = Known()
    known.listed_as("work", QubeClass.APP, "Halted")  # could be started before the tag goes on
    known.guard("work", True)
    assert "work" not in known.halted
    known.seen("work", "Halted")
    assert "work" in known.halted


def test_what_ends_it() -> None:
    for end in (lambda k: k.guard("work", False), lambda k: k.started("work"), lambda k: k.drop("work"),
                lambda k: k.seen("work", "Running"), lambda k: k.seen("work", "Transient")):
        known = halted_and_guarded()
        end(known)
        assert "work" not in known.halted


def test_no_power_state_in_the_list_changes_nothing() -> None:
    known = halted_and_guarded()
    known.listed_as("work", QubeClass.APP, None)  # qubesd before 4.1 lists none
    assert "work" in known.halted
    known.listed_as("other", QubeClass.APP, None)
    assert "other" not in known.halted


def test_a_qube_created_or_removed_under_the_name_is_a_new_qube() -> None:
    known = halted_and_guarded()
    known.keeps[("work", "private")] = True
    known.keeps[("vault", "private")] = True
    known.drop("work")
    assert known.keeps == {("vault", "private"): True}
    assert "work" not in known.classes and "work" not in known.guarded


def test_a_qube_this_adapter_made_is_known_by_its_class_and_nothing_else() -> None:
    known = halted_and_guarded()
    known.keeps[("work", "private")] = False
    known.made("work", QubeClass.STANDALONE)
    assert known.classes["work"] is QubeClass.STANDALONE
    assert ("work", "private") not in known.keeps and "work" not in known.guarded | known.halted


def test_the_latest_reading_counts() -> None:
    known = halted_and_guarded()  # seen halted right after the tag went on ...
    known.listed_as("work", QubeClass.APP, "Running")  # ... but a start already under way ran (the list after receive)
    assert "work" not in known.halted
