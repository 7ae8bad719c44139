"""The `wyng-util-qubes` command: parse arguments, build the adapters, present results.

Option names follow upstream wyng-util-qubes so its users can switch. Options
may come before or after the action. Nothing here decides anything: the
engine modules do, and this module turns their results and errors into text
or JSON Lines and an exit status (README: exit codes).
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from wyngq import __version__, names, passphrase, render
from wyngq.backup import BackupRequest, run_backup
from wyngq.create import create_archive
from wyngq.errors import AuthError, ExitCode, UsageError, WyngqError
from wyngq.listing import ListRequest, list_archive
from wyngq.output import Human, JsonLines, exit_status
from wyngq.profile import AUTOPRUNE_MODES, PassphraseSource, Profile, load_profile
from wyngq.secret import Secret
from wyngq.wyng.commands import InitOptions, WyngTarget
from wyngq.wyng.runner import Wyng

log = logging.getLogger("wyngq")

ACTIONS = ("create", "backup", "list", "version")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse calls sys.exit(2); we raise instead
        raise UsageError(message, hint=f"see {self.prog} --help")


def _global_options(parser: argparse.ArgumentParser, suppress: bool) -> None:
    default = argparse.SUPPRESS if suppress else None
    group = parser.add_argument_group("archive and output")
    group.add_argument("--dest", default=default, help="archive URL (file:, ssh://, qubes://, qubes-ssh://)")
    group.add_argument("--profile", default=default, help="use the dom0 profile NAME")
    group.add_argument("--wyng", default=default, help="path to the wyng program")
    group.add_argument("--meta-dir", default=default, help="Wyng's metadata directory")
    group.add_argument("--passphrase-file", default=default, help="read the passphrase from a root-only file")
    group.add_argument("--json", action="store_true", default=argparse.SUPPRESS if suppress else False,
                       help="print JSON Lines (always on when stdout is not a terminal)")
    group.add_argument("-u", "--unattended", action="store_true", default=argparse.SUPPRESS if suppress else False,
                       help="never prompt")
    group.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS if suppress else 0,
                       help="show more (repeat for debug logs)")
    group.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS if suppress else False,
                       help="show only the result")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="wyng-util-qubes", description="Back up and restore Qubes OS qubes with Wyng.")
    _global_options(parser, suppress=False)
    actions = parser.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)
    actions.required = True

    create = actions.add_parser("create", help="create a new archive at --dest")
    create.add_argument("--encrypt", choices=("on", "off"), default="on", help="encrypt the archive (default on)")
    create.add_argument("--compression", help="Wyng compression, e.g. zstd:3")
    create.add_argument("--hashtype", help="Wyng hash type")
    create.add_argument("--chunk-factor", type=int, help="Wyng chunk factor")

    backup = actions.add_parser("backup", help="back up qubes (data and settings)")
    backup.add_argument("qubes", nargs="*", metavar="QUBE")
    backup.add_argument("-i", "--includes", action="store_true", help="add qubes marked include_in_backups")
    backup.add_argument("--exclude", action="append", default=[], metavar="QUBE", help="leave this qube out")
    backup.add_argument("-d", "--dedup", action="store_true", default=None, help="deduplicate data")
    backup.add_argument("--autoprune", choices=AUTOPRUNE_MODES, help="let Wyng prune old sessions")
    backup.add_argument("--check-after-send", action="store_true", default=None, help="check the new session")
    backup.add_argument("--dry-run", action="store_true", help="show what would be sent; store nothing")

    listing = actions.add_parser("list", help="show the qubes and sessions in the archive")
    listing.add_argument("qubes", nargs="*", metavar="QUBE")
    listing.add_argument("--session", help="show the qubes of one session (YYYYMMDD-HHMMSS)")
    listing.add_argument("--all", action="store_true", help="show every session of every qube")

    actions.add_parser("version", help="print the version")
    for sub in actions.choices.values():
        _global_options(sub, suppress=True)
    return parser


@dataclass(frozen=True)
class Context:
    """What every archive action needs, resolved once from the options."""

    target: WyngTarget
    profile: Profile | None
    passphrase_source: PassphraseSource
    can_prompt: bool


def resolve_context(args: argparse.Namespace) -> Context:
    profile = load_profile(args.profile) if args.profile else None
    if args.dest and profile is not None:
        raise UsageError("give --dest or --profile, not both")
    dest = args.dest or (profile.dest if profile else None)
    if not dest:
        raise UsageError("no archive given", hint="pass --dest=URL or --profile=NAME")
    executable = args.wyng or (profile.wyng if profile else "wyng")
    meta_dir = args.meta_dir or (profile.meta_dir if profile else None)
    source = PassphraseSource(file=args.passphrase_file) if args.passphrase_file else (
        profile.passphrase if profile else PassphraseSource()
    )
    return Context(
        target=WyngTarget(executable=executable, dest=dest, meta_dir=meta_dir),
        profile=profile,
        passphrase_source=source,
        can_prompt=not args.unattended and sys.stdin.isatty(),
    )


def _with_passphrase(context: Context, work: Callable[[Wyng], Any], *, confirm: bool = False) -> Any:
    """Run `work` with a Wyng port carrying the passphrase. With no configured
    source, try without one first (unencrypted archives need none) and ask on the
    terminal only if the archive wants one."""
    secret = passphrase.from_source(context.passphrase_source)
    if secret is None and confirm and context.can_prompt:
        secret = _prompt_new()
    wyng = Wyng(context.target, passphrase=secret)
    try:
        return work(wyng)
    except AuthError:
        if secret is not None or not context.can_prompt:
            raise
    wyng = Wyng(context.target, passphrase=passphrase.prompt())
    return work(wyng)


def _prompt_new() -> Secret:
    first = passphrase.prompt("New archive passphrase: ")
    if passphrase.prompt("Repeat passphrase: ") != first:
        raise UsageError("the passphrases do not match")
    return first


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    json_mode = "--json" in args_list or not sys.stdout.isatty()
    presenter: JsonLines | Human = JsonLines() if json_mode else Human()
    action = next((a for a in args_list if a in ACTIONS), "unknown")
    try:
        args = build_parser().parse_args(args_list)
        action = args.action
        if not json_mode:
            presenter = Human(verbose=args.verbose, quiet=args.quiet)
        _configure_logging(args.verbose)
        return _dispatch(args, presenter)
    except WyngqError as err:
        status = exit_status(err)
        if isinstance(presenter, JsonLines):
            presenter.result(action, status, error=err)
        else:
            presenter.error(err)
        return status
    except KeyboardInterrupt:
        return 128 + 2


def _dispatch(args: argparse.Namespace, presenter: JsonLines | Human) -> int:
    if args.action == "version":
        return _finish(presenter, "version", ExitCode.OK, {"version": __version__}, lambda: presenter.say(__version__))  # type: ignore[union-attr]
    for name in getattr(args, "qubes", []):
        names.qube_name(name)
    context = resolve_context(args)
    with tempfile.TemporaryDirectory(prefix="wyngq-") as workdir:
        if args.action == "create":
            options = InitOptions(
                encrypt=args.encrypt == "on",
                compression=args.compression,
                hashtype=args.hashtype,
                chunk_factor=args.chunk_factor,
            )
            created = _with_passphrase(context, lambda w: create_archive(w, options), confirm=options.encrypt)
            return _finish(presenter, "create", ExitCode.OK, created,
                           lambda: presenter.say(f"Created archive {created.dest}"))  # type: ignore[union-attr]
        if args.action == "list":
            request = ListRequest(
                qubes=tuple(args.qubes),
                session=names.session_id(args.session) if args.session else None,
                all=args.all,
            )
            listed = _with_passphrase(context, lambda w: list_archive(w, request, workdir))
            return _finish(presenter, "list", ExitCode.OK, listed, lambda: render.listing(presenter, listed))  # type: ignore[arg-type]
        if args.action == "backup":
            request_b = _backup_request(args, context.profile)
            from wyngq.qubes import connect

            qubes = connect()
            done = _with_passphrase(context, lambda w: run_backup(qubes, w, request_b, presenter, workdir))
            return _finish(presenter, "backup", done.exit_code, done, lambda: render.backup(presenter, done))  # type: ignore[arg-type]
    raise UsageError(f"unknown action {args.action}")


def _backup_request(args: argparse.Namespace, profile: Profile | None) -> BackupRequest:
    for name in args.exclude:
        names.qube_name(name)
    defaults = profile.backup if profile else None
    include = profile.qubes.include if profile else ()
    exclude = profile.qubes.exclude if profile else ()
    qubes = tuple(args.qubes) or tuple(q for q in include if not q.startswith("@"))
    return BackupRequest(
        qubes=qubes,
        include_flagged=args.includes or (not args.qubes and "@include_in_backups" in include),
        include_tags=() if args.qubes else tuple(q[5:] for q in include if q.startswith("@tag:")),
        exclude=tuple(args.exclude) + tuple(q for q in exclude if not q.startswith("@")),
        exclude_tags=tuple(q[5:] for q in exclude if q.startswith("@tag:")),
        dedup=args.dedup if args.dedup is not None else bool(defaults and defaults.dedup),
        autoprune=args.autoprune or (defaults.autoprune if defaults else None),
        check_after_send=args.check_after_send if args.check_after_send is not None
        else bool(defaults and defaults.check_after_send),
        dry_run=args.dry_run,
    )


def _finish(presenter: JsonLines | Human, action: str, code: int, data: Any, human: Callable[[], None]) -> int:
    if isinstance(presenter, JsonLines):
        presenter.result(action, int(code), data)
    else:
        human()
    return int(code)


def _configure_logging(verbose: int) -> None:
    level = logging.DEBUG if verbose >= 2 else logging.WARNING
    logging.basicConfig(level=level, stream=sys.stderr, format="wyng-util-qubes: %(levelname)s: %(message)s")
