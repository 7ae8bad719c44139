"""A restore's result as the JSON contract gives it (wyngq.contract.results.RestoreReport)."""

from __future__ import annotations

from dataclasses import replace

from wyngq.contract.restore import (
    OpChange,
    PrefChange,
    PrefsReport,
    ProblemReport,
    RestoredQube,
    RestoredVolume,
    RestoreReport,
    StepReport,
)
from wyngq.restore.model import Problem, QubePlan
from wyngq.restore.run import RestoreResult


def restore_report(result: RestoreResult) -> RestoreReport:
    """The session, each qube's plan and outcome, problems, and (for dry runs and
    refusals) the planned steps with what each would change."""
    plan = result.plan
    prefs = None
    if plan.prefs or plan.prefs_problems:
        prefs = PrefsReport(
            changes=tuple(PrefChange(o.key, o.old, o.value, o.key not in result.prefs_failed) for o in plan.prefs),
            problems=tuple(problem_report(p) for p in plan.prefs_problems),
        )
    steps = None
    if result.dry_run or result.refused:
        steps = tuple(StepReport(s.kind.value, s.qube, tuple(OpChange(o.verb, o.key, o.old, o.value) for o in s.ops))
                      for s in plan.steps)
    return RestoreReport(
        session=result.session, sessions=tuple(plan.sessions), dry_run=result.dry_run, refused=result.refused,
        changed=result.changed, summary=result.summary, settings_source=plan.settings_source,
        qubes=tuple(_qube(result, q) for q in plan.qubes), warnings=tuple(result.warnings),
        menus=tuple(result.menus), code=result.code, prefs=prefs, steps=steps,
    )


def _qube(result: RestoreResult, plan: QubePlan) -> RestoredQube:
    entry = RestoredQube(
        name=plan.source, target=plan.target, klass=plan.klass.value, action=plan.action.value,
        session=plan.session or result.session,
        problems=tuple(problem_report(p) for p in plan.problems),
        volumes=tuple(RestoredVolume(v.kind, v.archive_name, v.size, v.pool, v.replaces) for v in plan.volumes),
    )
    outcome = {q.target: q for q in result.qubes}.get(plan.target) if plan.changes else None
    if outcome is None:
        return entry
    return replace(entry, ok=outcome.ok, failed_step=outcome.failed_step, error=outcome.error, hint=outcome.hint,
                   changes=outcome.changes, revisions=tuple(outcome.revisions))


def problem_report(problem: Problem) -> ProblemReport:
    return ProblemReport(problem.code, problem.message, problem.resolution, problem.blocking,
                         setting=problem.setting, old=problem.old, new=problem.new)
