"""`restore`: qubes' data and settings back from a session, planned first.

Exit status: 0 all restored (or a dry run that would proceed), 6 refused
(conflicts or other blocking problems: nothing was changed), 8 some qubes
failed (each keeps the guard tag; the result says how to finish or undo).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from wyngq import names, render
from wyngq.cli import dom0
from wyngq.cli.common import Context, Presenter, finish, with_wyng
from wyngq.errors import UsageError
from wyngq.qubes.port import QubesPort
from wyngq.restore.model import ConflictPolicy, RestoreRequest
from wyngq.restore.report import restore_report
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
    return finish(presenter, "restore", done.exit_code, restore_report(done), lambda out: render.restore(out, done))


def _machine(args: argparse.Namespace, context: Context, presenter: Presenter, request: RestoreRequest,
             qubes: QubesPort, archive_qube: str | None) -> int:
    """Qubes and dom0 items in one job (wyngq.machine)."""
    from wyngq.machine import machine_report, restore_machine

    dom0_request = dom0.restore_request(args)
    done: MachineRestoreResult = with_wyng(context, lambda wyng: restore_machine(
        qubes, wyng, request, dom0_request, presenter, context.workdir, archive_qube))
    return finish(presenter, "restore", done.exit_code, machine_report(done), lambda out: render.machine(out, done))


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


