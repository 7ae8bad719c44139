"""`version`: this tool's version (Wyng's is in `list`)."""

from __future__ import annotations

import argparse

from wyngq import __version__
from wyngq.cli.common import Presenter, finish
from wyngq.errors import ExitCode

NEEDS_ARCHIVE = False


def add_parser(actions: argparse._SubParsersAction) -> argparse.ArgumentParser:  # type: ignore[type-arg]
    parser: argparse.ArgumentParser = actions.add_parser("version", help="print the version")
    return parser


def run(args: argparse.Namespace, presenter: Presenter) -> int:
    return finish(presenter, "version", ExitCode.OK, {"version": __version__}, lambda out: out.say(__version__))
