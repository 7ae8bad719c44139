"""`create`: a new archive at --dest."""

from __future__ import annotations

import argparse

from wyngq import render
from wyngq.cli.common import Context, Presenter, finish, with_wyng
from wyngq.create import create_archive
from wyngq.errors import ExitCode
from wyngq.paths import state_dir
from wyngq.wyng.commands import InitOptions
from wyngq.wyng.known import KnownArchives

NEEDS_ARCHIVE = True


def add_parser(actions: argparse._SubParsersAction) -> argparse.ArgumentParser:  # type: ignore[type-arg]
    parser: argparse.ArgumentParser = actions.add_parser("create", help="create a new archive at --dest")
    parser.add_argument("--encrypt", choices=("on", "off"), default="on", help="encrypt the archive (default on)")
    parser.add_argument("--compression", help="Wyng compression, e.g. zstd:3")
    parser.add_argument("--hashtype", help="Wyng hash type")
    parser.add_argument("--chunk-factor", type=int, help="Wyng chunk factor")
    return parser


def run(args: argparse.Namespace, context: Context, presenter: Presenter) -> int:
    options = InitOptions(
        encrypt=args.encrypt == "on",
        compression=args.compression,
        hashtype=args.hashtype,
        chunk_factor=args.chunk_factor,
    )
    known = KnownArchives(state_dir())
    created = with_wyng(context, lambda wyng: create_archive(wyng, options, known), new_archive=options.encrypt)
    return finish(presenter, "create", ExitCode.OK, created, lambda out: render.create(out, created))
