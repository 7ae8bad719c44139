"""Apply a RestorePlan: execute its steps in order, through the Qubes port and
one Wyng receive, and report each qube's outcome. Decides nothing.

A qube whose step fails is not touched again: it keeps the guard tag
(`backup-restore-in-progress`, so qubesd will not start it) and its outcome
names the failed step, the error, and how to finish or undo. The other qubes
go on; that holds for any error in a step, an unexpected one included (it is
logged with its traceback). An interruption stops the restore: every qube not
finished gets the step it stopped at and its hint, and `Applied.interrupted`
says by which signal. Scratch copies are always removed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from wyngq.contract.events import QubeFailed, StepStarted
from wyngq.errors import Interrupted, QubesError, UnauthenticatedArchiveError, WyngError
from wyngq.events import Reporter, wyng_progress
from wyngq.model import DeviceAssignment
from wyngq.qubes.port import QubesPort
from wyngq.restore import data
from wyngq.restore.model import GUARD_TAG, Action, Op, QubePlan, RestorePlan, Step, StepKind
from wyngq.wyng.runner import Wyng

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QubeOutcome:
    source: str
    target: str
    action: Action
    ok: bool
    failed_step: str | None = None
    error: str | None = None
    hint: str | None = None
    changes: int = 0
    revisions: tuple[str, ...] = ()  # volumes whose previous data is kept as a revision


@dataclass(frozen=True)
class Applied:
    qubes: tuple[QubeOutcome, ...]
    warnings: tuple[str, ...] = ()
    interrupted: int | None = None  # the signal that stopped the restore
    prefs_failed: tuple[str, ...] = ()  # global preferences that could not be set


# The expected ways a qube's step fails; anything else but an interruption fails
# the qube too, as an unexpected error.
_STEP_ERRORS = (QubesError, WyngError)


class _Failed(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class _Run:
    plan: RestorePlan
    qubes: QubesPort
    wyng: Wyng
    workdir: str
    reporter: Reporter
    failed: dict[str, tuple[StepKind, str]] = field(default_factory=dict)
    changes: dict[str, int] = field(default_factory=dict)
    imported: dict[str, list[str]] = field(default_factory=dict)
    cloned: set[str] = field(default_factory=set)  # qubes whose volumes are all cloned into place
    stopped: set[str] = field(default_factory=set)
    finished: set[str] = field(default_factory=set)
    scratch: list[str] = field(default_factory=list)  # scratch qubes made and not removed yet
    warnings: list[str] = field(default_factory=list)
    prefs_failed: list[str] = field(default_factory=list)


def apply_plan(plan: RestorePlan, qubes: QubesPort, wyng: Wyng, workdir: str, reporter: Reporter) -> Applied:
    """Execute `plan`; return every qube's outcome (in plan order) and warnings."""
    run = _Run(plan, qubes, wyng, workdir, reporter)
    interrupted: int | None = None
    try:
        for index, step in enumerate(plan.steps):
            if step.qube is not None and step.qube in run.failed:
                continue
            try:
                _do(run, step)
            except Interrupted as err:
                _stop(run, plan.steps[index:], err)
                interrupted = err.signum
                break
    finally:
        _discard(run, run.scratch)
    return Applied(tuple(_outcome(run, q) for q in plan.qubes), tuple(run.warnings), interrupted,
                   tuple(run.prefs_failed))


def _do(run: _Run, step: Step) -> None:
    run.reporter.event(StepStarted(step.kind.value, qube=step.qube, operations=len(step.ops)))
    try:
        if step.kind is StepKind.RECEIVE:
            _receive(run, _session(run, step))
        elif step.kind is StepKind.PREFS:
            _prefs(run, step)
            return
        else:
            _HANDLERS[step.kind](run, step)
    except (Interrupted, UnauthenticatedArchiveError):  # the whole restore stops
        raise
    except _Failed as failure:
        message = failure.message
    except _STEP_ERRORS as err:
        message = err.message
    except Exception as err:  # e.g. an OSError, or a bug: this qube fails, the others go on
        log.exception("restore: step %s of %s", step.kind.value, step.qube or "every qube")
        message = f"unexpected error: {type(err).__name__}: {err}"
    else:
        if step.kind is StepKind.FINISH and step.qube is not None:
            run.finished.add(step.qube)
        return
    for target in _step_qubes(run, step):
        _fail(run, target, step.kind, message)


def _step_qubes(run: _Run, step: Step) -> list[str]:
    """The qubes a step works on: its own, or for a receive every qube with data
    from its session (none for the global preferences)."""
    if step.qube is not None:
        return [step.qube]
    if step.kind is not StepKind.RECEIVE:
        return []
    session = _session(run, step)
    return [q.target for q in run.plan.qubes
            if q.changes and q.volumes and q.target not in run.failed and (q.session or run.plan.session) == session]


def _session(run: _Run, step: Step) -> str:
    """The session a receive step moves data from."""
    return step.ops[0].key if step.ops else run.plan.session


def _stop(run: _Run, remaining: Sequence[Step], err: Interrupted) -> None:
    """Record, for every qube not finished, the step where it stopped."""
    for plan in run.plan.qubes:
        target = plan.target
        if not plan.changes or target in run.failed or target in run.finished:
            continue
        at = next((s for s in remaining if s.qube == target or (s.qube is None and target in _step_qubes(run, s))),
                  None)
        kind = at.kind if at is not None else StepKind.FINISH
        _fail(run, target, kind, f"the restore was interrupted (signal {err.signum}) before this step was done")


def _fail(run: _Run, target: str, kind: StepKind, message: str) -> None:
    run.failed[target] = (kind, message)
    run.reporter.event(QubeFailed(target, kind.value, message))


def _count(run: _Run, target: str) -> None:
    run.changes[target] = run.changes.get(target, 0) + 1


# -- the steps -------------------------------------------------------------------------
def _guard(run: _Run, step: Step) -> None:
    assert step.qube is not None
    run.qubes.add_tag(step.qube, GUARD_TAG)


def _shutdown(run: _Run, step: Step) -> None:
    for op in step.ops:
        if op.key in run.stopped:
            continue
        try:
            run.qubes.shutdown(op.key)
        except QubesError as err:
            if not run.plan.force:
                raise _Failed(f"could not shut down {op.key!r}: {err.message}") from err
            run.warnings.append(f"{op.key} did not shut down ({err.message}); it was killed (--force)")
            run.qubes.kill(op.key)
        run.stopped.add(op.key)


def _create(run: _Run, step: Step) -> None:
    assert step.qube is not None
    plan = run.plan.qube(step.qube)
    lost = [name for name in plan.depends_on if run.failed.get(name, (None,))[0] is StepKind.CREATE]
    if lost:
        raise _Failed(f"not created: {', '.join(lost)}, which it needs, could not be created")
    assert plan.label is not None
    run.qubes.create_qube(plan.target, plan.klass, label=plan.label, template=plan.template, pool=plan.pool,
                          pools=dict(plan.pools))
    _count(run, plan.target)
    run.qubes.add_tag(plan.target, GUARD_TAG)


def _writes(run: _Run, step: Step) -> None:
    """Apply a step's operations one by one; the first failure fails the qube."""
    assert step.qube is not None
    for op in step.ops:
        writer = _WRITERS[(_FAMILY.get(step.kind, step.kind), op.verb)]
        try:
            writer(run.qubes, step.qube, op)
        except QubesError as err:
            raise _Failed(f"{_describe(op)}: {err.message}") from err
        _count(run, step.qube)


_Writer = Callable[[QubesPort, str, Op], None]
_FAMILY = {kind: StepKind.PROPERTIES for kind in (
    StepKind.CAPABILITIES, StepKind.REFERENCES, StepKind.CAPABILITIES_OFF)}
_WRITERS: dict[tuple[StepKind, str], _Writer] = {
    (StepKind.PROPERTIES, "set"): lambda q, t, o: q.set_property(t, o.key, o.value or ""),
    (StepKind.PROPERTIES, "reset"): lambda q, t, o: q.reset_property(t, o.key),
    (StepKind.FEATURES, "set"): lambda q, t, o: q.set_feature(t, o.key, o.value or ""),
    (StepKind.FEATURES, "remove"): lambda q, t, o: q.remove_feature(t, o.key),
    (StepKind.TAGS, "add"): lambda q, t, o: q.add_tag(t, o.key),
    (StepKind.TAGS, "remove"): lambda q, t, o: q.remove_tag(t, o.key),
    (StepKind.FIREWALL, "set"): lambda q, t, o: q.set_firewall(t, (o.value or "").split("\n")),
    (StepKind.NOTES, "set"): lambda q, t, o: q.set_notes(t, o.value or ""),
    (StepKind.DEVICES, "assign"): lambda q, t, o: q.assign_device(t, _device(o)),
    (StepKind.DEVICES, "unassign"): lambda q, t, o: q.unassign_device(t, _device(o)),
    (StepKind.VOLUMES, "revisions_to_keep"): lambda q, t, o: q.set_revisions_to_keep(t, o.key, int(o.value or 0)),
    (StepKind.VOLUMES, "resize"): lambda q, t, o: q.resize_volume(t, o.key, int(o.value or 0)),
}


def _device(op: Op) -> DeviceAssignment:
    assert op.device is not None
    return op.device


def _import(run: _Run, step: Step) -> None:
    assert step.qube is not None
    plan = run.plan.qube(step.qube)
    for op in step.ops:
        pair = next(p for p in plan.volumes if p.kind == op.key)
        try:
            data.clone_volume(run.qubes, pair)
        except QubesError as err:
            raise _Failed(f"importing the {op.key} volume: {err.message}") from err
        run.imported.setdefault(step.qube, []).append(op.key)
        _count(run, step.qube)
    run.cloned.add(step.qube)
    _discard(run, [name for name in {p.scratch_qube for p in plan.volumes} if _used_up(run, name)])  # free the space


def _used_up(run: _Run, scratch_qube: str) -> bool:
    """Whether every qube received into `scratch_qube` is cloned or failed."""
    return all(q.target in run.cloned or q.target in run.failed
               for q in run.plan.qubes if any(p.scratch_qube == scratch_qube for p in q.volumes))


def _discard(run: _Run, names: list[str]) -> None:
    """Remove scratch qubes made by this run; a failure is a warning with the fix."""
    names = [n for n in dict.fromkeys(names) if n in run.scratch]
    for pair in (p for q in run.plan.qubes for p in q.volumes if p.scratch_qube in names):
        data.return_snapshot(pair)
    for name in data.discard_scratch(run.qubes, names):
        run.warnings.append(f"could not remove the scratch qube {name}; remove it with `qvm-remove {name}`")
    run.scratch = [n for n in run.scratch if n not in names]


def _prefs(run: _Run, step: Step) -> None:
    """Set dom0's global preferences; one naming a qube this restore failed is
    left as it is. Each failure is reported; the qubes' outcomes do not change."""
    failed = set(run.failed)
    for op in step.ops:
        if op.value in failed:
            run.prefs_failed.append(op.key)
            run.warnings.append(f"global preference {op.key} not set: {op.value} was not restored")
            continue
        try:
            run.qubes.set_global_pref(op.key, op.value or "")
        except QubesError as err:
            run.prefs_failed.append(op.key)
            run.warnings.append(f"global preference {op.key} not set: {err.message}")


def _preload(run: _Run, step: Step) -> None:
    """Set or remove `preload-dispvm-max`. qubesd refuses it where the qube cannot
    preload disposables: the qube is restored all the same, and a warning says
    how to set it later."""
    assert step.qube is not None
    for op in step.ops:
        try:
            if op.verb == "set":
                run.qubes.set_feature(step.qube, op.key, op.value or "")
            else:
                run.qubes.remove_feature(step.qube, op.key)
        except QubesError as err:
            run.warnings.append(
                f"{step.qube}: {op.key} not restored ({err.message}); once it can preload disposables, "
                f"`qvm-features {step.qube} {op.key} {op.value or ''}`".rstrip())
            continue
        _count(run, step.qube)


def _finish(run: _Run, step: Step) -> None:
    assert step.qube is not None
    run.qubes.remove_tag(step.qube, GUARD_TAG)


def _describe(op: Op) -> str:
    if op.verb in ("set", "add", "assign"):
        return f"{op.verb} {op.key}" + (f" = {op.value!r}" if op.value is not None and op.verb == "set" else "")
    return f"{op.verb} {op.key}"


def _receive(run: _Run, session: str) -> None:
    pairs = [p for q in run.plan.qubes if q.changes and q.target not in run.failed
             and (q.session or run.plan.session) == session for p in q.volumes]
    for target, message in data.prepare_scratch(run.qubes, pairs, run.scratch).items():
        _fail(run, target, StepKind.RECEIVE, message)
    pairs = [p for p in pairs if p.qube not in run.failed]
    if not pairs:
        return
    owner = {p.archive_name: (p.qube, p.size) for p in pairs}
    progress = wyng_progress(run.reporter, lambda v: owner.get(v, (None, None)))
    lent = any(p.scratch_snapshot and os.path.exists(p.scratch_snapshot) for p in pairs)
    failed = data.receive(run.wyng, pairs, session, run.workdir, progress, use_snapshot=lent)
    for pair in pairs:
        if pair.archive_name in failed and pair.qube not in run.failed:
            _fail(run, pair.qube, StepKind.RECEIVE, f"{pair.kind} volume: {failed[pair.archive_name]}")
    for target, message in data.not_halted(run.qubes, {p.qube for p in pairs if p.qube not in run.failed}).items():
        _fail(run, target, StepKind.RECEIVE, message)


_HANDLERS: dict[StepKind, Callable[[_Run, Step], None]] = {
    StepKind.GUARD: _guard,
    StepKind.SHUTDOWN: _shutdown,
    StepKind.CREATE: _create,
    StepKind.CAPABILITIES: _writes,
    StepKind.IMPORT: _import,
    StepKind.VOLUMES: _writes,
    StepKind.PROPERTIES: _writes,
    StepKind.REFERENCES: _writes,
    StepKind.CAPABILITIES_OFF: _writes,
    StepKind.FEATURES: _writes,
    StepKind.TAGS: _writes,
    StepKind.FIREWALL: _writes,
    StepKind.NOTES: _writes,
    StepKind.DEVICES: _writes,
    StepKind.PRELOAD: _preload,
    StepKind.FINISH: _finish,
}


# -- outcomes --------------------------------------------------------------------------
def _outcome(run: _Run, plan: QubePlan) -> QubeOutcome:
    target = plan.target
    revisions = tuple(f"{target}:{kind}" for kind in run.imported.get(target, ()))
    if not plan.changes:
        return QubeOutcome(plan.source, target, plan.action, True)
    if target not in run.failed:
        return QubeOutcome(plan.source, target, plan.action, True, changes=run.changes.get(target, 0),
                           revisions=revisions)
    kind, error = run.failed[target]
    return QubeOutcome(plan.source, target, plan.action, False, kind.value, error, _hint(run, plan, kind),
                       run.changes.get(target, 0), revisions)


def _hint(run: _Run, plan: QubePlan, kind: StepKind) -> str:
    target = plan.target
    untag = f"`qvm-tags {target} del {GUARD_TAG}`"
    if plan.action is Action.REPLACE and kind is StepKind.GUARD:
        return f"{target!r} was not changed; restore it again to replace it."
    if plan.action is Action.REPLACE:
        finish = f"{target!r} keeps the tag {GUARD_TAG} and will not start. To finish, fix the cause and " \
                 f"restore it again with --on-conflict=replace."
        imported = run.imported.get(target, [])
        if imported:
            reverts = " and ".join(f"`qvm-volume revert {target}:{k}`" for k in imported)
            return f"{finish} To undo its data, {reverts} (the previous data is kept as a revision), then {untag}."
        if kind in (StepKind.GUARD, StepKind.SHUTDOWN, StepKind.RECEIVE, StepKind.IMPORT):
            return f"{finish} Its data was not changed; to use it as it is, {untag}."
        return f"{finish} To use it as it is, {untag}."
    if kind is StepKind.CREATE and run.changes.get(target, 0) == 0:
        return f"{target!r} was not created; fix the cause and restore it again."
    return (f"{target!r} was created but is incomplete and keeps the tag {GUARD_TAG}. To finish, fix the cause and "
            f"restore it again with --on-conflict=replace; to undo, `qvm-remove {target}`.")
