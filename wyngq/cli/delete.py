"""`delete QUBE`: remove all of one qube's backups from the archive."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from wyngq import names, render
from wyngq.cli.common import Context, Presenter, finish, with_wyng
from wyngq.errors import ExitCode, UsageError
from wyngq.paths import state_dir
from wyngq.wyng.known import KnownArchives

if TYPE_CHECKING:  # imported where used: other actions need none of it
    from wyngq.maintenance import DeleteResult

NEEDS_ARCHIVE = True


def add_parser(actions: argparse._SubParsersAction) -> argparse.ArgumentParser:  # type: ignore[type-arg]
    parser: argparse.ArgumentParser = actions.add_parser("delete", help="remove every backup of one qube")
    parser.add_argument("qube", metavar="QUBE")
    return parser


def run(args: argparse.Namespace, context: Context, presenter: Presenter) -> int:
    qube = names.qube_name(args.qube)
    if context.can_prompt:
        answer = input(f"Delete every backup of {qube} from {context.target.dest}? This cannot be undone. [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            raise UsageError("not confirmed; nothing was deleted")
    known = KnownArchives(state_dir())
    from wyngq.maintenance import delete

    done: DeleteResult = with_wyng(context, lambda wyng: delete(wyng, qube, presenter, known))
    return finish(
        presenter, "delete", ExitCode.OK, done,
        lambda out: render.delete(out, done),
    )
