"""The `wyng-util-qubes` command: parse arguments, build the adapters, present results.

Option names follow upstream wyng-util-qubes so its users can switch; options
may come before or after the action. Each action lives in its own module here
with `add_parser` and `run`; the engine modules decide, this package only
turns their results and errors into text or JSON Lines and an exit status.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from collections.abc import Sequence
from types import ModuleType

from wyngq.cli import backup, common, create, listing, version
from wyngq.errors import WyngqError
from wyngq.output import Human, JsonLines, exit_status

# Order is the order `--help` shows them in.
ACTIONS: dict[str, ModuleType] = {
    "create": create,
    "backup": backup,
    "list": listing,
    "version": version,
}


def build_parser() -> argparse.ArgumentParser:
    parser = common.Parser(prog="wyng-util-qubes", description="Back up and restore Qubes OS qubes with Wyng.")
    common.add_global_options(parser, suppress=False)
    actions = parser.add_subparsers(dest="action", metavar="ACTION", parser_class=common.Parser)
    actions.required = True
    for module in ACTIONS.values():
        common.add_global_options(module.add_parser(actions), suppress=True)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit status (README: exit codes)."""
    words = list(sys.argv[1:] if argv is None else argv)
    json_mode = "--json" in words or not sys.stdout.isatty()
    presenter: common.Presenter = JsonLines() if json_mode else Human()
    action = next((w for w in words if w in ACTIONS), "unknown")
    try:
        args = build_parser().parse_args(words)
        action = args.action
        if not json_mode:
            presenter = Human(verbose=args.verbose, quiet=args.quiet)
        _configure_logging(args.verbose)
        module = ACTIONS[action]
        if not module.NEEDS_ARCHIVE:
            return int(module.run(args, presenter))
        with tempfile.TemporaryDirectory(prefix="wyngq-") as workdir:
            return int(module.run(args, common.resolve_context(args, workdir), presenter))
    except WyngqError as err:
        status = exit_status(err)
        if isinstance(presenter, JsonLines):
            presenter.result(action, status, error=err)
        else:
            presenter.error(err)
        return status


def _configure_logging(verbose: int) -> None:
    level = logging.DEBUG if verbose >= 2 else logging.WARNING
    logging.basicConfig(level=level, stream=sys.stderr, format="wyng-util-qubes: %(levelname)s: %(message)s")
