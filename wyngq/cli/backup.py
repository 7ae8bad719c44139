"""`backup`: qubes' data and settings into one new session."""

from __future__ import annotations

import argparse

from wyngq import names, render
from wyngq.backup import BackupRequest, request_for_profile, run_backup
from wyngq.cli import dom0
from wyngq.cli.common import Context, Presenter, finish, with_wyng
from wyngq.errors import UsageError
from wyngq.paths import state_dir
from wyngq.profile import AUTOPRUNE_MODES, Profile
from wyngq.schedule import parse_age
from wyngq.wyng.known import KnownArchives

NEEDS_ARCHIVE = True


def add_parser(actions: argparse._SubParsersAction) -> argparse.ArgumentParser:  # type: ignore[type-arg]
    parser: argparse.ArgumentParser = actions.add_parser("backup", help="back up qubes (data and settings)")
    parser.add_argument("qubes", nargs="*", metavar="QUBE")
    parser.add_argument("-i", "--includes", action="store_true", help="add qubes marked include_in_backups")
    parser.add_argument("--exclude", action="append", default=[], metavar="QUBE", help="leave this qube out")
    parser.add_argument("-d", "--dedup", action="store_true", default=None, help="deduplicate data")
    parser.add_argument("--autoprune", choices=AUTOPRUNE_MODES, help="let Wyng prune old sessions")
    parser.add_argument("--check-after-send", action="store_true", default=None, help="check the new session")
    parser.add_argument("--dry-run", action="store_true",
                        help="show what would be sent; change nothing (no Wyng send: docs/everyday.md)")
    parser.add_argument("--max-age", type=_age, metavar="AGE",
                        help="only qubes with no session in this archive younger than AGE (e.g. 20h, 1d)")
    dom0.add_backup_arguments(parser)
    parser.add_argument("--shutdown", action="store_true",
                        help="shut down the selected running qubes first and start them again afterwards")
    parser.add_argument("--shutdown-dependants", action="store_true",
                        help="with --shutdown: also the running qubes that depend on them")
    return parser


def _age(text: str) -> int:
    try:
        return parse_age(text)
    except UsageError as err:
        raise argparse.ArgumentTypeError(f"{err.message} ({err.hint})") from None


def run(args: argparse.Namespace, context: Context, presenter: Presenter) -> int:
    request = backup_request(args, context.profile)
    qubes = context.connect()
    known = KnownArchives(state_dir())
    done = with_wyng(context, lambda wyng: run_backup(qubes, wyng, request, presenter, context.workdir, known))
    return finish(presenter, "backup", done.exit_code, done, lambda out: render.backup(out, done))


def backup_request(args: argparse.Namespace, profile: Profile | None) -> BackupRequest:
    """Command-line choices first, then the profile's (wyngq.backup.request_for_profile)."""
    return request_for_profile(
        profile,
        qubes=tuple(names.qube_name(q) for q in args.qubes),
        exclude=tuple(names.qube_name(q) for q in args.exclude),
        include_flagged=args.includes,
        dedup=args.dedup,
        autoprune=args.autoprune,
        check_after_send=args.check_after_send,
        dry_run=args.dry_run,
        dom0_home=args.dom0_home,
        dom0_home_dir=dom0.home_dir(args),
        dom0_config=args.dom0_config,
        shutdown=args.shutdown,
        shutdown_dependants=args.shutdown_dependants,
        max_age=args.max_age,
    )
