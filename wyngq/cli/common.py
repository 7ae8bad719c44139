"""What every CLI action shares: global options, the archive context, output."""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn, TypeVar

from wyngq import passphrase, qubes
from wyngq.errors import AuthError, UsageError
from wyngq.output import Human, JsonLines
from wyngq.profile import PassphraseSource, Profile, archive_care, load_profile
from wyngq.qubes.port import QubesPort
from wyngq.secret import Secret
from wyngq.wyng.commands import DEFAULT_STALL_TIMEOUT, WyngTarget
from wyngq.wyng.runner import Wyng

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

Presenter = JsonLines | Human
T = TypeVar("T")


class Parser(argparse.ArgumentParser):
    """argparse that raises UsageError (exit 2, reported like any error) instead of exiting."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message, hint=f"see {self.prog} --help")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if value < 0 or math.isnan(value):
        raise argparse.ArgumentTypeError("--wait takes a number of seconds >= 0")
    return value


def add_global_options(parser: argparse.ArgumentParser, suppress: bool) -> None:
    """The options every action takes, before or after the action name.

    On the sub-parsers the defaults are suppressed so that an option given
    before the action is not reset by the sub-parser's default.
    """

    def default(value: object) -> object:
        return argparse.SUPPRESS if suppress else value

    group = parser.add_argument_group("archive and output")
    group.add_argument("--dest", default=default(None), help="archive URL (file:, ssh://, qubes://, qubes-ssh://)")
    group.add_argument("--profile", default=default(None), help="use the dom0 profile NAME")
    group.add_argument("--wyng", default=default(None),
                       help="the wyng program (default: the profile's `wyng`, else `wyng` on PATH)")
    group.add_argument("--meta-dir", default=default(None), help="Wyng's metadata directory")
    group.add_argument("--passphrase-file", default=default(None), help="read the passphrase from a root-only file")
    group.add_argument("--json", action="store_true", default=default(False),
                       help="print JSON Lines (the default when stdout is not a terminal)")
    group.add_argument("-u", "--unattended", action="store_true", default=default(False), help="never prompt")
    group.add_argument("-v", "--verbose", action="count", default=default(0), help="show more (twice: debug logs)")
    group.add_argument("-q", "--quiet", action="store_true", default=default(False), help="show only the result")
    group.add_argument("--wait", nargs="?", type=_seconds, const=math.inf, default=default(None), metavar="SECONDS",
                       help="if another operation is running, wait for it (as --wait=SECONDS: for at most SECONDS)")
    group.add_argument("--remote", action="store_true", default=default(False),
                       help="forward to dom0 over qrexec (the default in a qube; see --remote --help)")


def wait_words(words: Sequence[str]) -> list[str]:
    """`--wait` takes its value only as `--wait=SECONDS` or as a number right
    after it, as other tools do, so that `--wait list` waits and lists rather
    than reading `list` as the number of seconds."""
    out = list(words)
    for index, word in enumerate(out):
        if word == "--":
            break
        if word == "--wait" and (index + 1 == len(out) or not _is_number(out[index + 1])):
            out[index] = "--wait=inf"
    return out


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Context:
    """What every archive action needs, resolved once from the options."""

    target: WyngTarget
    profile: Profile | None
    passphrase_source: PassphraseSource
    can_prompt: bool
    workdir: str
    connect: Callable[[], QubesPort]  # the Qubes adapter; tests pass a fake
    # the operation lock (wyngq.lock), taken by with_wyng once nobody is being asked anything
    lock: Callable[[], AbstractContextManager[object]] = contextlib.nullcontext


def resolve_context(
    args: argparse.Namespace,
    workdir: str,
    connect: Callable[[], QubesPort] = qubes.connect,
    lock: Callable[[], AbstractContextManager[object]] = contextlib.nullcontext,
) -> Context:
    profile = load_profile(args.profile) if args.profile else None
    if args.dest and profile is not None:
        raise UsageError("give --dest or --profile, not both")
    dest = args.dest or (profile.dest if profile else None)
    if not dest:
        raise UsageError("no archive given", hint="pass --dest=URL or --profile=NAME")
    source = PassphraseSource(file=args.passphrase_file) if args.passphrase_file else (
        profile.passphrase if profile else PassphraseSource()
    )
    return Context(
        target=WyngTarget(
            executable=args.wyng or (profile.wyng if profile else "wyng"),
            dest=dest,
            meta_dir=args.meta_dir or (profile.meta_dir if profile else None),
            stall_timeout=profile.stall_timeout if profile else DEFAULT_STALL_TIMEOUT,
            care=archive_care(profile),
        ),
        profile=profile,
        passphrase_source=source,
        can_prompt=not args.unattended and sys.stdin.isatty(),
        workdir=workdir,
        connect=connect,
        lock=lock,
    )


def with_wyng(context: Context, work: Callable[[Wyng], T], *, new_archive: bool = False) -> T:
    """Run `work` with a Wyng port that carries the passphrase.

    With no configured source, try without one first (unencrypted archives need
    none) and ask on the terminal only when the archive wants one. An
    authentication failure happens at the first Wyng call, before any change,
    so running `work` again is safe.

    The operation lock is held only while `work` runs, never while a person is
    asked (the passphrase source, which may be a vault qube asking its user,
    comes first; a prompt after a refused try happens with the lock released),
    so a waiting prompt never makes a scheduled backup fail as busy.
    """
    secret = passphrase.from_source(context.passphrase_source, context.profile.name if context.profile else "")
    if secret is None and new_archive:
        if not context.can_prompt:
            raise UsageError(
                "a new encrypted archive needs a passphrase, and there is neither a terminal to ask on "
                "nor a passphrase source",
                hint="give --passphrase-file=FILE or a profile [passphrase] source, run it on a terminal, "
                     "or pass --encrypt=off",
            )
        secret = _prompt_new()
    try:
        with context.lock():
            return work(Wyng(context.target, passphrase=secret))
    except AuthError:
        if secret is not None or not context.can_prompt:
            raise
    secret = passphrase.prompt()
    with context.lock():
        return work(Wyng(context.target, passphrase=secret))


def _prompt_new() -> Secret:
    first = passphrase.prompt("New archive passphrase: ")
    if passphrase.prompt("Repeat passphrase: ") != first:
        raise UsageError("the passphrases do not match")
    return first


def finish(presenter: Presenter, action: str, code: int, data: DataclassInstance,
           human: Callable[[Human], None]) -> int:
    """Present an action's result and return its exit status."""
    if isinstance(presenter, JsonLines):
        presenter.result(action, int(code), data)
    else:
        human(presenter)
    return int(code)
