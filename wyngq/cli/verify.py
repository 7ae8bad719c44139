"""`verify`: check a session's data and settings in the archive."""

from __future__ import annotations

import argparse

from wyngq import names
from wyngq.cli.common import Context, Presenter, finish, with_wyng
from wyngq.maintenance import VerifyResult, verify
from wyngq.output import Human

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
    return finish(presenter, "verify", done.exit_code, done, lambda out: _human(out, done))


def _human(out: Human, result: VerifyResult) -> None:
    out.say(f"Session {result.session}:")
    for qube in result.qubes:
        out.say(f"  {qube.name:<32} {'ok' if qube.ok else 'DAMAGED: ' + (qube.error or '')}")
    out.say(f"  {'(settings bundle)':<32} {result.settings}")
    for item in result.dom0:
        out.say(f"  {'(dom0 ' + item.item + ')':<32} {'ok' if item.ok else 'DAMAGED: ' + (item.error or '')}")
    if result.archive_check is not None:
        out.say(f"Whole archive (Wyng arch-check): {result.archive_check}")
