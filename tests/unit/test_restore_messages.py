"""What a person reads after a restore: the words match what happened."""

from __future__ import annotations

import io

from wyngq.model import QubeClass
from wyngq.output import Human
from wyngq.render import restore as show
from wyngq.restore.apply import QubeOutcome
from wyngq.restore.model import Action, Problem, QubePlan, RestorePlan
from wyngq.restore.run import RestoreResult

SESSION = "20260101-120000"


def shown(result: RestoreResult) -> list[str]:
    out = io.StringIO()
    show(Human(out, live=False), result)
    return out.getvalue().splitlines()


def test_a_new_qube_has_no_previous_data_and_a_replaced_one_does() -> None:
    plan = RestorePlan(SESSION, "wyngq.json", (QubePlan("work", "work", QubeClass.APP, Action.CREATE),
                                               QubePlan("vault", "vault", QubeClass.APP, Action.REPLACE)), ())
    outcomes = (QubeOutcome("work", "work", Action.CREATE, True, revisions=("work:private@1",)),
                QubeOutcome("vault", "vault", Action.REPLACE, True, revisions=("vault:private@1",)))
    lines = shown(RestoreResult(SESSION, False, plan, outcomes))
    assert "  work                     restored (new qube)" in lines
    assert "  vault                    restored (previous data kept: qvm-volume revert vault:private@1)" in lines


def test_a_refused_conflict_is_not_shown_as_a_skip() -> None:
    refused = Problem("exists", "a qube named 'work' already exists", "refused: pass --on-conflict=...",
                      blocking=True)
    skipped = Problem("exists", "a qube named 'vault' already exists", "skipped (--on-conflict=skip)")
    plan = RestorePlan(SESSION, "wyngq.json", (QubePlan("work", "work", QubeClass.APP, Action.SKIP, (refused,)),
                                               QubePlan("vault", "vault", QubeClass.APP, Action.SKIP, (skipped,))),
                       ())
    lines = shown(RestoreResult(SESSION, False, plan))
    assert lines[1].split() == ["work", "AppVM", SESSION, "REFUSED"]
    assert lines[3].split() == ["vault", "AppVM", SESSION, "skip"]
