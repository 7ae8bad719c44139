"""`backup`: qubes' data and settings into one new session."""

from __future__ import annotations

import argparse

from wyngq import names, render
from wyngq.backup import BackupRequest, run_backup
from wyngq.cli.common import Context, Presenter, finish, with_wyng
from wyngq.profile import AUTOPRUNE_MODES, Profile
from wyngq.qubes import connect

NEEDS_ARCHIVE = True


def add_parser(actions: argparse._SubParsersAction) -> argparse.ArgumentParser:  # type: ignore[type-arg]
    parser: argparse.ArgumentParser = actions.add_parser("backup", help="back up qubes (data and settings)")
    parser.add_argument("qubes", nargs="*", metavar="QUBE")
    parser.add_argument("-i", "--includes", action="store_true", help="add qubes marked include_in_backups")
    parser.add_argument("--exclude", action="append", default=[], metavar="QUBE", help="leave this qube out")
    parser.add_argument("-d", "--dedup", action="store_true", default=None, help="deduplicate data")
    parser.add_argument("--autoprune", choices=AUTOPRUNE_MODES, help="let Wyng prune old sessions")
    parser.add_argument("--check-after-send", action="store_true", default=None, help="check the new session")
    parser.add_argument("--dry-run", action="store_true", help="show what would be sent; store nothing")
    return parser


def run(args: argparse.Namespace, context: Context, presenter: Presenter) -> int:
    request = backup_request(args, context.profile)
    qubes = connect()
    done = with_wyng(context, lambda wyng: run_backup(qubes, wyng, request, presenter, context.workdir))
    return finish(presenter, "backup", done.exit_code, done, lambda out: render.backup(out, done))


def backup_request(args: argparse.Namespace, profile: Profile | None) -> BackupRequest:
    """Command-line choices first, then the profile's; named qubes replace the
    profile's selection rather than adding to it."""
    chosen = tuple(names.qube_name(q) for q in args.qubes)
    excluded = tuple(names.qube_name(q) for q in args.exclude)
    include = profile.qubes.include if profile and not chosen else ()
    exclude = profile.qubes.exclude if profile else ()
    defaults = profile.backup if profile else None
    return BackupRequest(
        qubes=chosen or tuple(q for q in include if not q.startswith("@")),
        include_flagged=args.includes or "@include_in_backups" in include,
        include_tags=tuple(q.removeprefix("@tag:") for q in include if q.startswith("@tag:")),
        exclude=excluded + tuple(q for q in exclude if not q.startswith("@")),
        exclude_tags=tuple(q.removeprefix("@tag:") for q in exclude if q.startswith("@tag:")),
        dedup=args.dedup if args.dedup is not None else bool(defaults and defaults.dedup),
        autoprune=args.autoprune or (defaults.autoprune if defaults else None),
        check_after_send=(
            args.check_after_send if args.check_after_send is not None else bool(defaults and defaults.check_after_send)
        ),
        dry_run=args.dry_run,
    )
