"""The dom0 options of `backup` and `restore` (docs/dom0.md).

`backup --dom0-home [--dom0-home-dir=DIR] --dom0-config` add dom0's home and
configuration to the session (the profile's [dom0] table gives the defaults);
`restore --dom0-home|--dom0-config [--session=ID] [--into=DIR] [--diff]` bring
them back beside the live system.
"""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

from wyngq import names, render
from wyngq.cli.common import Context, Presenter, finish, with_wyng
from wyngq.errors import UsageError

if TYPE_CHECKING:  # imported where used: a backup needs none of it
    from wyngq.dom0.restore import Dom0RestoreRequest, Dom0RestoreResult


def add_backup_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("dom0 (default: the profile's [dom0] table)")
    group.add_argument("--dom0-home", action=argparse.BooleanOptionalAction, default=None,
                       help="also back up the dom0 user's home")
    group.add_argument("--dom0-home-dir", metavar="DIR",
                       help="the home directory to back up (default: the dom0 user's)")
    group.add_argument("--dom0-config", action=argparse.BooleanOptionalAction, default=None,
                       help="also back up dom0 configuration files no package owns")


def home_dir(args: argparse.Namespace) -> str | None:
    given: str | None = args.dom0_home_dir
    if given is None:
        return None
    if not os.path.isdir(given):
        raise UsageError(f"--dom0-home-dir: {given} is not a directory")
    return os.path.abspath(given)


def add_restore_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("dom0 (restored beside the live system, never over it)")
    group.add_argument("--dom0-home", action="store_true",
                       help="restore the dom0 home into ~/home-restore-SESSION (or --into)")
    group.add_argument("--dom0-config", action="store_true",
                       help="restore dom0 configuration into /var/lib/wyng-util-qubes/restored/SESSION "
                            "(or --into) and compare it with the live files")
    group.add_argument("--into", metavar="DIR", help="restore into DIR instead (it must not exist yet)")
    group.add_argument("--diff", action="store_true", help="with --dom0-config: show a unified diff per changed file")


def wants_restore(args: argparse.Namespace) -> bool:
    return bool(args.dom0_home or args.dom0_config)


def restore_request(args: argparse.Namespace) -> Dom0RestoreRequest:
    from wyngq.dom0.restore import Dom0RestoreRequest

    return Dom0RestoreRequest(
        home=args.dom0_home,
        config=args.dom0_config,
        session=names.session_selector(args.session) if args.session else None,
        into=args.into,
        diff=args.diff,
        dry_run=args.dry_run,
    )


def run_restore_command(args: argparse.Namespace, context: Context, presenter: Presenter) -> int:
    """`restore --dom0-home|--dom0-config` with no qubes: the dom0 items alone."""
    from wyngq.dom0.restore import run_restore

    request = restore_request(args)
    done: Dom0RestoreResult = with_wyng(context, lambda wyng: run_restore(wyng, request, presenter))
    return finish(presenter, "restore", done.exit_code, done, lambda out: render.dom0_restore(out, done))
