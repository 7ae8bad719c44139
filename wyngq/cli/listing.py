"""`list`: the qubes and sessions in the archive."""

from __future__ import annotations

import argparse

from wyngq import names
from wyngq.cli.common import Context, Presenter, finish, with_wyng
from wyngq.errors import ExitCode

NEEDS_ARCHIVE = True


def add_parser(actions: argparse._SubParsersAction) -> argparse.ArgumentParser:  # type: ignore[type-arg]
    parser: argparse.ArgumentParser = actions.add_parser("list", help="show the qubes and sessions in the archive")
    parser.add_argument("qubes", nargs="*", metavar="QUBE")
    parser.add_argument("--session", help="show the qubes of one session (YYYYMMDD-HHMMSS)")
    parser.add_argument("--all", action="store_true", help="show every session of every qube")
    return parser


def run(args: argparse.Namespace, context: Context, presenter: Presenter) -> int:
    from wyngq import render
    from wyngq.listing import ListRequest, list_archive

    request = ListRequest(
        qubes=tuple(names.qube_name(q) for q in args.qubes),
        session=names.session_id(args.session) if args.session else None,
        all=args.all,
    )
    listed = with_wyng(context, lambda wyng: list_archive(wyng, request, context.workdir))
    return finish(presenter, "list", ExitCode.OK, listed, lambda out: render.listing(out, listed))
