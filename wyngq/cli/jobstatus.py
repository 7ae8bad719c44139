"""`status`: running and recent qrexec jobs (qubes.WyngBackup) per profile, in dom0."""

from __future__ import annotations

import argparse
import os

from wyngq.cli.common import Presenter, finish
from wyngq.errors import ExitCode
from wyngq.output import Human, format_time
from wyngq.paths import state_dir
from wyngq.profile import is_profile_name, profile_dir
from wyngq.rpc.jobs import JobRecord, JobStore, records_as_data

NEEDS_ARCHIVE = False


def add_parser(actions: argparse._SubParsersAction) -> argparse.ArgumentParser:  # type: ignore[type-arg]
    parser: argparse.ArgumentParser = actions.add_parser(
        "status", help="running and recent jobs started by management qubes (all profiles, or --profile)"
    )
    return parser


def run(args: argparse.Namespace, presenter: Presenter) -> int:
    store = JobStore(state_dir())
    profiles = [args.profile] if args.profile else _known_profiles(store)
    found = {name: store.jobs(name) for name in profiles if is_profile_name(name)}
    data = {"jobs": {name: records_as_data(records) for name, records in found.items()}}
    return finish(presenter, "status", ExitCode.OK, data, lambda out: _human(out, found))


def _known_profiles(store: JobStore) -> list[str]:
    names = set()
    for directory in (store.root, profile_dir()):
        try:
            names |= {n.removesuffix(".toml") for n in os.listdir(directory)}
        except OSError:
            continue
    return sorted(names)


def _human(out: Human, found: dict[str, list[JobRecord]]) -> None:
    if not any(found.values()):
        out.say("No jobs recorded.")
    for name, records in found.items():
        if not records:
            continue
        out.say(f"Profile {name}:")
        for job in records:
            outcome = job.code or job.state
            gone = " (caller left)" if job.caller_gone else ""
            out.say(f"  {job.id}  {format_time(job.started)}  {job.action:<8} {job.state:<9} {outcome:<14} "
                    f"{job.caller}  {','.join(job.qubes) or '-'}{gone}")
