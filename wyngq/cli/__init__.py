"""The `wyng-util-qubes` command: parse arguments, build the adapters, present results.

Option names follow upstream wyng-util-qubes so its users can switch; options
may come before or after the action. Each action lives in its own module here
with `add_parser` and `run`; the engine modules decide, this package only
turns their results and errors into text or JSON Lines and an exit status.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import logging
import signal
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from types import ModuleType

from wyngq import client, qubes
from wyngq.cli import backup, common, create, delete, jobstatus, listing, monitor, prune, restore, verify, version
from wyngq.errors import Interrupted, WyngqError
from wyngq.lock import operation_lock
from wyngq.output import Human, JsonLines, log_to_stderr, report_error
from wyngq.qubes.port import QubesPort

# Order is the order `--help` shows them in.
ACTIONS: dict[str, ModuleType] = {
    "create": create,
    "backup": backup,
    "restore": restore,
    "verify": verify,
    "prune": prune,
    "monitor": monitor,
    "delete": delete,
    "list": listing,
    "status": jobstatus,
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


def main(argv: Sequence[str] | None = None, *, connect: Callable[[], QubesPort] = qubes.connect) -> int:
    """Run the CLI; return the exit status (README: exit codes). `connect` makes
    the Qubes adapter (the real one, or a fake in tests)."""
    words = list(sys.argv[1:] if argv is None else argv)
    if client.wants_remote(words):  # in a management qube: forward to dom0 over qrexec
        return client.main(words)
    json_mode = "--json" in words or not sys.stdout.isatty()
    presenter: common.Presenter = JsonLines() if json_mode else Human()
    action = next((w for w in words if w in ACTIONS), "unknown")
    try:
        args = build_parser().parse_args(common.wait_words(words))
        action = args.action
        presenter = JsonLines(quiet=args.quiet) if json_mode else Human(verbose=args.verbose, quiet=args.quiet)
        _configure_logging(args.verbose)
        module = ACTIONS[action]
        if not module.NEEDS_ARCHIVE:
            return int(module.run(args, presenter))
        with _signals_as_exceptions(), tempfile.TemporaryDirectory(prefix="wyngq-") as workdir:
            # the lock is taken by common.with_wyng, after any passphrase is in hand
            lock = functools.partial(operation_lock, action, wait=args.wait)
            return int(module.run(args, common.resolve_context(args, workdir, connect, lock), presenter))
    except WyngqError as err:
        return report_error(presenter, action, err)
    except Exception as err:  # a bug: the result line still comes, the traceback goes to stderr
        logging.getLogger("wyngq").exception("internal error in %s", action)
        bug = WyngqError(f"internal error: {err!r}", hint="this is a bug in wyng-util-qubes; please report it")
        return report_error(presenter, action, bug)


@contextlib.contextmanager
def _signals_as_exceptions() -> Iterator[None]:
    """Turn SIGINT/SIGTERM into Interrupted, so that every context manager on the
    way out (lock, temporary files, restore tags) runs; the exit status is 128+N.
    While Wyng runs, wyngq.process forwards the signal to it instead, and Wyng's
    own exit status becomes the same Interrupted."""

    def handler(signum: int, _frame: object) -> None:
        raise Interrupted(signum)

    previous = {signum: signal.signal(signum, handler) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def _configure_logging(verbose: int) -> None:
    level = logging.DEBUG if verbose >= 2 else logging.WARNING
    log_to_stderr(level, "wyng-util-qubes: %(levelname)s: %(message)s")
