"""`prune`: remove old sessions from the archive."""

from __future__ import annotations

import argparse

from wyngq import names, render
from wyngq.cli.common import Context, Presenter, finish, with_wyng
from wyngq.errors import ExitCode
from wyngq.maintenance import PruneRequest, PruneResult, prune
from wyngq.profile import AUTOPRUNE_MODES

NEEDS_ARCHIVE = True


def add_parser(actions: argparse._SubParsersAction) -> argparse.ArgumentParser:  # type: ignore[type-arg]
    parser: argparse.ArgumentParser = actions.add_parser("prune", help="remove old sessions from the archive")
    parser.add_argument("qubes", nargs="*", metavar="QUBE", help="only these qubes' volumes (default: all)")
    parser.add_argument("--session", help="ID, or ID,ID for an inclusive range")
    parser.add_argument("--all-before", action="store_true", help="every session before --session")
    parser.add_argument("--autoprune", choices=AUTOPRUNE_MODES, help="let Wyng thin out old sessions")
    parser.add_argument("--dry-run", action="store_true", help="show what would be removed")
    return parser


def run(args: argparse.Namespace, context: Context, presenter: Presenter) -> int:
    sessions = tuple(names.session_id(s) for s in args.session.split(",")) if args.session else ()
    autoprune = args.autoprune
    if not sessions and autoprune is None and context.profile is not None:
        # `prune` alone with a profile applies the profile's policy (the scheduled job does this)
        autoprune = context.profile.backup.autoprune or "off"
        if autoprune == "off":
            nothing, profile = PruneResult(args.dry_run, {}, ()), context.profile.name
            return finish(presenter, "prune", ExitCode.OK, nothing, lambda out: render.autoprune_off(out, profile))
    request = PruneRequest(
        qubes=tuple(names.qube_name(q) for q in args.qubes),
        sessions=sessions,
        all_before=args.all_before,
        autoprune=autoprune if autoprune != "off" else None,
        dry_run=args.dry_run,
    )
    done: PruneResult = with_wyng(context, lambda wyng: prune(wyng, request, presenter))
    return finish(presenter, "prune", ExitCode.OK, done, lambda out: render.prune(out, done))


