"""`version`: this tool's version (Wyng's is in `list`)."""

from __future__ import annotations

import argparse

from wyngq import __version__, render
from wyngq.cli.common import Presenter, finish
from wyngq.contract.results import VersionResult
from wyngq.errors import ExitCode

NEEDS_ARCHIVE = False


def add_parser(actions: argparse._SubParsersAction) -> argparse.ArgumentParser:  # type: ignore[type-arg]
    parser: argparse.ArgumentParser = actions.add_parser("version", help="print the version")
    return parser


def run(args: argparse.Namespace, presenter: Presenter) -> int:
    done = VersionResult(__version__)
    return finish(presenter, "version", ExitCode.OK, done, lambda out: render.version(out, done))
