"""`verify`: check a session's data and settings in the archive."""

from __future__ import annotations

import argparse

from wyngq import names, render
from wyngq.cli.common import Context, Presenter, finish, with_wyng
from wyngq.maintenance import VerifyResult, verify

NEEDS_ARCHIVE = True


def add_parser(actions: argparse._SubParsersAction) -> argparse.ArgumentParser:  # type: ignore[type-arg]
    parser: argparse.ArgumentParser = actions.add_parser("verify", help="check the data and settings of a session")
    parser.add_argument("qubes", nargs="*", metavar="QUBE")
    parser.add_argument("--session", help="YYYYMMDD-HHMMSS or latest (default: newest holding every QUBE)")
    parser.add_argument("--full", action="store_true",
                        help="also run Wyng's arch-check over the whole archive (every session, slow)")
    return parser


def run(args: argparse.Namespace, context: Context, presenter: Presenter) -> int:
    qubes = tuple(names.qube_name(q) for q in args.qubes)
    session = names.session_selector(args.session) if args.session else None
    done: VerifyResult = with_wyng(
        context, lambda wyng: verify(wyng, qubes, session, presenter, context.workdir, full=args.full)
    )
    return finish(presenter, "verify", done.exit_code, done, lambda out: render.verify(out, done))


