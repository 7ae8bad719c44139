"""`status`: running and recent qrexec jobs (qubes.WyngBackup) per profile, in dom0."""

from __future__ import annotations

import argparse
import os

from wyngq import render
from wyngq.cli.common import Presenter, finish
from wyngq.contract.jobs import StatusResult
from wyngq.errors import ExitCode
from wyngq.paths import state_dir
from wyngq.profile import is_profile_name, profile_dir
from wyngq.rpc.jobs import JobStore, job_infos

NEEDS_ARCHIVE = False


def add_parser(actions: argparse._SubParsersAction) -> argparse.ArgumentParser:  # type: ignore[type-arg]
    parser: argparse.ArgumentParser = actions.add_parser(
        "status", help="running and recent jobs started by management qubes (all profiles, or --profile)"
    )
    return parser


def run(args: argparse.Namespace, presenter: Presenter) -> int:
    store = JobStore(state_dir())
    profiles = [args.profile] if args.profile else _known_profiles(store)
    done = StatusResult({name: job_infos(store.jobs(name)) for name in profiles if is_profile_name(name)})
    return finish(presenter, "status", ExitCode.OK, done, lambda out: render.status(out, done))


def _known_profiles(store: JobStore) -> list[str]:
    names = set()
    for directory in (store.root, profile_dir()):
        try:
            names |= {n.removesuffix(".toml") for n in os.listdir(directory)}
        except OSError:
            continue
    return sorted(names)


