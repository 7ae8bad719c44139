"""`monitor`: Wyng's monitor for the selected qubes on lvm_thin pools (wyngq.monitor)."""

from __future__ import annotations

import argparse

from wyngq import names, render
from wyngq.backup import request_for_profile
from wyngq.cli.common import Context, Presenter, finish, with_wyng
from wyngq.errors import ExitCode
from wyngq.monitor import MonitorResult, run_monitor

NEEDS_ARCHIVE = True


def add_parser(actions: argparse._SubParsersAction) -> argparse.ArgumentParser:  # type: ignore[type-arg]
    parser: argparse.ArgumentParser = actions.add_parser(
        "monitor", help="let Wyng record lvm_thin changes between backups (the scheduled job runs it)")
    parser.add_argument("qubes", nargs="*", metavar="QUBE", help="default: the profile's qubes")
    parser.add_argument("-i", "--includes", action="store_true", help="add qubes marked include_in_backups")
    return parser


def run(args: argparse.Namespace, context: Context, presenter: Presenter) -> int:
    request = request_for_profile(context.profile, qubes=tuple(names.qube_name(q) for q in args.qubes),
                                  include_flagged=args.includes)
    qubes = context.connect()
    done: MonitorResult = with_wyng(context, lambda wyng: run_monitor(qubes, wyng, request, presenter,
                                                                      context.workdir))
    return finish(presenter, "monitor", ExitCode.OK, done, lambda out: render.monitor(out, done))


