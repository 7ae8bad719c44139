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
import gc
import importlib
import logging
import signal
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from types import ModuleType
from typing import NoReturn

from wyngq import phases, qubes, remote
from wyngq.cli import common
from wyngq.errors import Interrupted, UsageError, WyngqError
from wyngq.lock import operation_lock
from wyngq.output import Human, JsonLines, log_to_stderr, report_error
from wyngq.qubes.port import QubesPort

# Each action's module (wyngq/cli/<module>.py), in the order `--help` shows them.
# A run loads only its own action's module, and so only that action's engine.
ACTIONS: dict[str, str] = {
    "create": "create",
    "backup": "backup",
    "restore": "restore",
    "verify": "verify",
    "prune": "prune",
    "monitor": "monitor",
    "delete": "delete",
    "list": "listing",
    "status": "jobstatus",
    "version": "version",
}
# The global options that take a value as the next word (`--wait` is rewritten by
# common.wait_words to take it only as `--wait=SECONDS` or a number).
_VALUED = frozenset({"--dest", "--profile", "--wyng", "--meta-dir", "--passphrase-file", "--wait"})


def action_module(action: str) -> ModuleType:
    return importlib.import_module(f"wyngq.cli.{ACTIONS[action]}")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line's parser; with `only`, one with just that action's
    sub-parser (the same options and messages for that action, without loading
    every other action's engine)."""
    parser = common.Parser(prog="wyng-util-qubes", description="Back up and restore Qubes OS qubes with Wyng.")
    common.add_global_options(parser, suppress=False)
    actions = parser.add_subparsers(dest="action", metavar="ACTION", parser_class=common.Parser)
    actions.required = True
    for action in ACTIONS if only is None else (only,):
        common.add_global_options(action_module(action).add_parser(actions), suppress=True)
    return parser


def parse(words: Sequence[str]) -> argparse.Namespace:
    """Parse the command line with only the action's sub-parser when the action
    can be told from the words; on any doubt (none found, or that parse fails,
    e.g. for an abbreviated option), the whole parser gives the answer or the error."""
    found = action_word(words)
    if found is not None:
        try:
            return build_parser(only=found).parse_args(words)
        except UsageError:
            pass
    return build_parser().parse_args(words)


def action_word(words: Sequence[str]) -> str | None:
    """The action `words` name, as argparse finds it (the first word that is
    neither an option nor a global option's value), or None: no action, an unknown
    one, or help asked before it (the whole parser answers those)."""
    expect_value = False
    for word in words:
        if expect_value:
            expect_value = False
        elif word in ("-h", "--help", "--"):
            return None
        elif word in _VALUED:
            expect_value = True
        elif not word.startswith("-"):
            return word if word in ACTIONS else None
    return None


def command() -> NoReturn:
    """The `wyng-util-qubes` command: main(), then the exit status. Once main()
    returns, all is done, closed and printed (the result line included), so the
    interpreter's last garbage collection would only walk every object on the
    way out: frozen, they are left to the operating system (about 20 ms of a
    small backup's own time, docs/benchmarks.md). Objects still run their
    finalizers as their references go; only cycles are left uncollected."""
    status = main()
    gc.freeze()
    sys.exit(status)


def main(argv: Sequence[str] | None = None, *, connect: Callable[[], QubesPort] = qubes.connect) -> int:
    """Run the CLI; return the exit status (README: exit codes). `connect` makes
    the Qubes adapter (the real one, or a fake in tests)."""
    words = list(sys.argv[1:] if argv is None else argv)
    if remote.wants_remote(words):  # in a management qube: forward to dom0 over qrexec
        from wyngq import client

        return client.main(words)
    json_mode = "--json" in words or not sys.stdout.isatty()
    presenter: common.Presenter = JsonLines() if json_mode else Human()
    action = next((w for w in words if w in ACTIONS), "unknown")
    try:
        args = parse(common.wait_words(words))
        action = args.action
        presenter = JsonLines(quiet=args.quiet) if json_mode else Human(verbose=args.verbose, quiet=args.quiet)
        _configure_logging(args.verbose)
        module = action_module(action)
        phases.startup()
        if not module.NEEDS_ARCHIVE:
            return int(module.run(args, presenter))
        with _signals_as_exceptions(), tempfile.TemporaryDirectory(prefix="wyngq-") as workdir:
            # the lock is taken by common.with_wyng, after any passphrase is in hand
            lock = functools.partial(operation_lock, action, wait=args.wait)
            context = common.resolve_context(args, workdir, _timed(connect), lock)
            with phases.phase(action):
                return int(module.run(args, context, presenter))
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
    phases.enable_from_environment()


def _timed(connect: Callable[[], QubesPort]) -> Callable[[], QubesPort]:
    """`connect` as a phase of its own: in dom0 it is where qubesadmin is imported."""

    def timed() -> QubesPort:
        with phases.phase("connect"):
            return connect()

    return timed
