"""`restore`: qubes' data and settings back from a session, planned first.

Exit status: 0 all restored (or a dry run that would proceed), 6 refused
(conflicts or other blocking problems: nothing was changed), 8 some qubes
failed (each keeps the guard tag; the result says how to finish or undo).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from wyngq import names
from wyngq.cli import dom0
from wyngq.cli.common import Context, Presenter, finish, with_wyng
from wyngq.errors import UsageError
from wyngq.output import Human, shown, to_data
from wyngq.qubes.port import QubesPort
from wyngq.restore.apply import QubeOutcome
from wyngq.restore.model import Action, ConflictPolicy, Problem, RestorePlan, RestoreRequest
from wyngq.restore.run import RestoreResult, archive_qube_of, run_restore

if TYPE_CHECKING:
    from wyngq.machine import MachineRestoreResult

NEEDS_ARCHIVE = True


def add_parser(actions: argparse._SubParsersAction) -> argparse.ArgumentParser:  # type: ignore[type-arg]
    parser: argparse.ArgumentParser = actions.add_parser(
        "restore", help="restore qubes (data and settings) from a session")
    parser.add_argument("qubes", nargs="*", metavar="QUBE")
    parser.add_argument("--all", action="store_true",
                        help="every qube the archive holds (named disposables too, never dom0), each from its "
                             "own newest session")
    parser.add_argument("--session", help="YYYYMMDD-HHMMSS: every qube from that session; latest: the newest "
                                          "session (default: each qube from its own newest session)")
    parser.add_argument("--as-of", metavar="SESSION",
                        help="each qube from its newest session at or before SESSION (YYYYMMDD-HHMMSS)")
    parser.add_argument("--prefs", action="store_true",
                        help="also set dom0's global preferences (qubes-prefs) as backed up, after the qubes")
    parser.add_argument("--on-conflict", choices=[p.value for p in ConflictPolicy], default="fail",
                        help="when a qube of that name exists: fail (default), skip it, replace it in place, "
                        "or rename (restore beside it)")
    parser.add_argument("--rename", action="append", default=[], metavar="OLD:NEW",
                        help="restore the backed-up qube OLD under the name NEW")
    parser.add_argument("--exclude", action="append", default=[], metavar="QUBE", help="leave this qube out")
    parser.add_argument("-p", "--pool", help="storage pool for the qubes this restore creates")
    parser.add_argument("--shutdown", action="store_true",
                        help="shut down running qubes that must stop (and their running dependants) gracefully")
    parser.add_argument("--force", action="store_true", help="like --shutdown, and kill a qube that does not stop")
    parser.add_argument("--include-disposable", nargs="?", const="on", default="off", choices=("on", "off"),
                        help="also restore named disposables when restoring a whole session")
    parser.add_argument("--no-snapshot-restore", action="store_true",
                        help="read every volume from the archive, even where Wyng's local snapshot of the "
                             "backed-up state could be used")
    parser.add_argument("--no-keep-previous", action="store_true",
                        help="also replace volumes that keep no revisions (their current data is then lost)")
    parser.add_argument("--pref", action="append", default=[], metavar="NAME::x",
                        help="leave property NAME as it is (neither restored nor reset)")
    parser.add_argument("--trust-archive-settings", action="store_true",
                        help="restore settings that give power (devices, GUI/audio qube, kernel options, tags, "
                        "policy-relevant features, ...) even from an archive Wyng does not authenticate "
                        "(unencrypted); see docs/security.md")
    parser.add_argument("--dry-run", action="store_true", help="show the plan and what would change; change nothing")
    dom0.add_restore_arguments(parser)
    return parser


def run(args: argparse.Namespace, context: Context, presenter: Presenter) -> int:
    with_qubes = bool(args.qubes or args.all)
    if dom0.wants_restore(args) and not with_qubes:
        return dom0.run_restore_command(args, context, presenter)
    request = restore_request(args)
    qubes = context.connect()
    archive_qube = archive_qube_of(context.target.dest)
    if dom0.wants_restore(args):
        return _machine(args, context, presenter, request, qubes, archive_qube)
    done: RestoreResult = with_wyng(
        context, lambda wyng: run_restore(qubes, wyng, request, presenter, context.workdir, archive_qube))
    return finish(presenter, "restore", done.exit_code, result_data(done), lambda out: show(out, done))


def _machine(args: argparse.Namespace, context: Context, presenter: Presenter, request: RestoreRequest,
             qubes: QubesPort, archive_qube: str | None) -> int:
    """Qubes and dom0 items in one job (wyngq.machine)."""
    from wyngq.machine import restore_machine

    dom0_request = dom0.restore_request(args)
    done: MachineRestoreResult = with_wyng(context, lambda wyng: restore_machine(
        qubes, wyng, request, dom0_request, presenter, context.workdir, archive_qube))
    data = result_data(done.qubes)
    data.update(changed=done.changed, summary=done.summary,
                dom0=to_data(done.dom0) if done.dom0 is not None else None)
    if done.code is not None:
        data["code"] = done.code
    if done.dom0_error is not None:
        data["dom0_error"] = {"code": done.dom0_error.code, "message": done.dom0_error.message,
                              "hint": done.dom0_error.hint}
    return finish(presenter, "restore", done.exit_code, data, lambda out: _show_machine(out, done))


def _show_machine(out: Human, result: MachineRestoreResult) -> None:
    show(out, result.qubes)
    if result.dom0 is not None:
        out.say("")
        dom0.show_restore(out, result.dom0)
    elif result.dom0_error is not None:
        out.say(f"\ndom0 items FAILED: {result.dom0_error.message}")
        if result.dom0_error.hint:
            out.say(f"      {result.dom0_error.hint}")
    elif result.qubes.refused:
        out.say("The dom0 items were not restored either.")


def restore_request(args: argparse.Namespace) -> RestoreRequest:
    renames = []
    for text in args.rename:
        old, sep, new = text.partition(":")
        if not sep:
            raise UsageError(f"--rename={text}: expected OLD:NEW")
        renames.append((names.qube_name(old), names.qube_name(new)))
    skip = set()
    for text in args.pref:
        name, sep, how = text.partition("::")
        if not sep or how != "x" or not name.replace("_", "").isalnum():
            raise UsageError(f"--pref={text}: expected NAME::x (leave property NAME as it is)")
        skip.add(name)
    return RestoreRequest(
        qubes=tuple(names.qube_name(q) for q in args.qubes),
        session=names.session_selector(args.session) if args.session else None,
        all=args.all,
        as_of=_as_of(args.as_of),
        prefs=args.prefs,
        on_conflict=ConflictPolicy(args.on_conflict),
        renames=tuple(renames),
        exclude=tuple(names.qube_name(q) for q in args.exclude),
        pool=args.pool,
        shutdown=args.shutdown,
        force=args.force,
        include_disposable=args.include_disposable == "on",
        dry_run=args.dry_run,
        skip_properties=frozenset(skip),
        keep_previous=not args.no_keep_previous,
        use_snapshot=not args.no_snapshot_restore,
        trust_archive_settings=args.trust_archive_settings,
    )


def _as_of(text: str | None) -> str | None:
    if text is None:
        return None
    session = names.session_selector(text)
    if session == names.LATEST:
        raise UsageError("--as-of=latest is the default: leave --as-of out")
    return session


def result_data(result: RestoreResult) -> dict[str, object]:
    """The JSON result: the session, each qube's plan and outcome, problems, and
    (for dry runs and refusals) the planned steps with what each would change."""
    outcomes = {q.target: q for q in result.qubes}
    qubes = []
    for plan in result.plan.qubes:
        entry: dict[str, object] = {
            "name": plan.source, "target": plan.target, "class": plan.klass.value, "action": plan.action.value,
            "session": plan.session or result.session,
            "problems": [problem_data(p) for p in plan.problems],
            "volumes": [{"volume": v.kind, "archive": v.archive_name, "size": v.size, "pool": v.pool,
                         "replaces": v.replaces} for v in plan.volumes],
        }
        outcome = outcomes.get(plan.target) if plan.changes else None
        if outcome is not None:
            entry.update(ok=outcome.ok, failed_step=outcome.failed_step, error=outcome.error, hint=outcome.hint,
                         changes=outcome.changes, revisions=list(outcome.revisions))
        qubes.append(entry)
    data: dict[str, object] = {
        "session": result.session, "sessions": list(result.plan.sessions),
        "dry_run": result.dry_run, "refused": result.refused,
        "changed": result.changed, "summary": result.summary,
        "settings_source": result.plan.settings_source, "qubes": qubes, "warnings": list(result.warnings),
        "menus": list(result.menus),
    }
    if result.code is not None:
        data["code"] = result.code
    if result.plan.prefs or result.plan.prefs_problems:
        data["prefs"] = {
            "changes": [{"key": o.key, "old": o.old, "new": o.value, "ok": o.key not in result.prefs_failed}
                        for o in result.plan.prefs],
            "problems": [problem_data(p) for p in result.plan.prefs_problems],
        }
    if result.dry_run or result.refused:
        data["steps"] = [
            {"step": s.kind.value, "qube": s.qube,
             "changes": [{"op": o.verb, "key": o.key, "old": o.old, "new": o.value} for o in s.ops]}
            for s in result.plan.steps
        ]
    return data


def problem_data(problem: Problem) -> dict[str, object]:
    data: dict[str, object] = {"code": problem.code, "message": problem.message, "resolution": problem.resolution,
                               "blocking": problem.blocking}
    if problem.setting is not None:
        data.update(setting=problem.setting, old=problem.old, new=problem.new)
    return data


def show(out: Human, result: RestoreResult) -> None:
    plan = result.plan
    if len(plan.sessions) == 1:
        out.say(f"Session {result.session} (settings from {plan.settings_source}):")
    else:
        out.say(f"Sessions {', '.join(plan.sessions)}, each qube from its own (settings from {plan.settings_source}):")
    for qube in plan.qubes:
        action = f"rename -> {qube.target}" if qube.target != qube.source else qube.action.value
        if qube.action is Action.SKIP and any(problem.blocking for problem in qube.problems):
            action = "REFUSED"  # a refused conflict is not a skip: nothing is carried out while one is
        out.say(f"  {qube.source:<24} {qube.klass.value:<13} {qube.session or result.session}  {action}")
        for problem in qube.problems:
            mark = "!" if problem.blocking else "-"
            out.say(f"      {mark} {problem.message}: {problem.resolution}")
    show_prefs(out, result)
    if result.refused:
        out.say("\nRefused: nothing was changed. Resolve the problems marked '!' and run the restore again.")
        return
    if result.dry_run:
        show_changes(out, plan)
        out.say("\nDry run: nothing was changed.")
        return
    out.say("")
    for outcome in result.qubes:
        if outcome.action.value == "skip":
            continue
        if outcome.ok:
            out.say(f"  {outcome.target:<24} restored{_kept(outcome)}")
        else:
            out.say(f"  {outcome.target:<24} FAILED at {outcome.failed_step}: {outcome.error}")
            out.say(f"      {outcome.hint}")
    for warning in result.warnings:
        out.say(f"warning: {warning}")
    for note in result.menus:
        out.say(f"note: {note}")


def show_prefs(out: Human, result: RestoreResult) -> None:
    """dom0's global preferences the restore sets (or would set), and those left."""
    plan = result.plan
    if not (plan.prefs or plan.prefs_problems):
        return
    out.say("  global preferences:")
    for op in plan.prefs:
        failed = " (NOT set)" if op.key in result.prefs_failed else ""
        out.say(f"      set {op.key}: {op.old!r} -> {op.value!r}{failed}")
    for problem in plan.prefs_problems:
        out.say(f"      {'!' if problem.blocking else '-'} {problem.message}: {problem.resolution}")


def _kept(outcome: QubeOutcome) -> str:
    """Only a qube restored over has previous data (a new one's revisions hold its empty volumes)."""
    if outcome.action is not Action.REPLACE:
        return " (new qube)" if outcome.action in (Action.CREATE, Action.RENAME) else ""
    if not outcome.revisions:
        return ""
    return f" (previous data kept: qvm-volume revert {', '.join(outcome.revisions)})"


def show_changes(out: Human, plan: RestorePlan) -> None:
    """The per-qube diff: what each step would change, old -> new."""
    for qube in plan.qubes:
        if not qube.changes:
            continue
        out.say(f"\n{qube.target}:")
        for pair in qube.volumes:
            keep = "replaces the current data (kept as a revision)" if pair.replaces else "new"
            out.say(f"    data {pair.kind}: {pair.archive_name} ({pair.size} bytes, {keep})")
        for step in plan.steps_of(qube.target):
            if step.kind.value == "shutdown":
                out.say(f"    shut down: {', '.join(op.key for op in step.ops)}")
            for op in step.ops:
                if step.kind.value in ("shutdown", "import"):
                    continue
                old = "-" if op.old is None else repr(op.old)
                new = "-" if op.value is None else repr(op.value)
                out.say(f"    {step.kind.value} {op.verb} {shown(op.key)}: {old} -> {new}")
