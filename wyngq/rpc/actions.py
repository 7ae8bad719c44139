"""What each qrexec action runs: the same engine functions as the CLI.

A handler gets the call's environment (the dom0 profile, a reporter that
streams JSON Lines to the caller, a working directory, the Qubes port, and a
way to run Wyng with the profile's passphrase) and a parsed request, and
returns an Outcome. Everything the caller could choose has been validated and
authorised before a handler runs; the archive, Wyng and its options, and the
passphrase come from the profile only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol, TypeVar

from wyngq import backup, maintenance
from wyngq.errors import ExitCode, UsageError
from wyngq.events import Reporter
from wyngq.listing import ListRequest, list_archive
from wyngq.profile import Profile, RpcRule
from wyngq.qubes.port import QubesPort
from wyngq.restore.model import ConflictPolicy, RestoreRequest
from wyngq.restore.report import restore_report
from wyngq.restore.run import RestoreResult, archive_qube_of
from wyngq.restore.run import run_restore as run_restore_engine
from wyngq.rpc.authorize import Lookup, covers
from wyngq.rpc.request import BackupCall, ListCall, PruneCall, Request, RestoreCall, VerifyCall
from wyngq.wyng.known import KnownArchives
from wyngq.wyng.runner import Wyng

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T")


class WithWyng(Protocol):
    """Runs `work` with a Wyng port that carries the profile's passphrase."""

    def __call__(self, work: Callable[[Wyng], T], /) -> T: ...


@dataclass(frozen=True)
class Outcome:
    exit_code: int
    data: DataclassInstance | None
    qubes: tuple[str, ...] = ()
    session: str | None = None


@dataclass(frozen=True)
class Env:
    profile: Profile
    reporter: Reporter
    workdir: str
    qubes: Callable[[], QubesPort]
    with_wyng: WithWyng
    known_archives: KnownArchives | None = None
    rule: RpcRule | None = None  # the profile's rule that allowed the call
    lookup: Lookup | None = None  # the live qube of a name (authorize.Lookup)


def run_list(env: Env, call: ListCall) -> Outcome:
    request = ListRequest(qubes=call.qubes, session=call.session, all=call.all)
    listed = env.with_wyng(lambda wyng: list_archive(wyng, request, env.workdir))
    return Outcome(ExitCode.OK, listed, call.qubes)


def run_backup(env: Env, call: BackupCall) -> Outcome:
    request = backup.request_for_profile(env.profile, qubes=call.qubes, dry_run=call.dry_run)
    port = env.qubes()
    done: backup.BackupResult = env.with_wyng(
        lambda wyng: backup.run_backup(port, wyng, request, env.reporter, env.workdir, env.known_archives)
    )
    done = without_dom0_details(done)
    return Outcome(done.exit_code, done, tuple(q.name for q in done.qubes), done.session)


def without_dom0_details(done: backup.BackupResult) -> backup.BackupResult:
    """The caller learns that dom0's items were backed up and how large they are,
    not dom0's paths or file names (the home's directory, files left out)."""
    return replace(done, dom0=tuple(replace(item, source="", notes=()) for item in done.dom0))


def run_verify(env: Env, call: VerifyCall) -> Outcome:
    done: maintenance.VerifyResult = env.with_wyng(
        lambda wyng: maintenance.verify(wyng, call.qubes, call.session, env.reporter, env.workdir)
    )
    return Outcome(done.exit_code, done, tuple(q.name for q in done.qubes), done.session)


def run_prune(env: Env, call: PruneCall) -> Outcome:
    request = maintenance.PruneRequest(
        qubes=call.qubes, sessions=call.sessions, all_before=call.all_before, dry_run=call.dry_run,
        limit_to=profile_qubes(env),
    )
    done: maintenance.PruneResult = env.with_wyng(lambda wyng: maintenance.prune(wyng, request, env.reporter))
    return Outcome(ExitCode.OK, done, call.qubes or tuple(done.removed))


def profile_qubes(env: Env) -> tuple[str, ...]:
    """The live qubes the profile's [qubes] selection covers, resolved as a backup
    resolves it (names, @include_in_backups, @tag:)."""
    port = env.qubes()
    listed = port.list_qubes()
    request = backup.request_for_profile(env.profile)
    if not (request.qubes or request.include_flagged or request.include_tags):
        return ()
    known = tuple(q for q in request.qubes if q in listed)
    request = replace(request, qubes=known)
    try:
        return backup.select_qubes(request, listed, lambda n: port.qube(n).include_in_backups,
                                   lambda n: port.qube(n).tags)
    except UsageError:
        return ()


def run_restore(env: Env, call: RestoreCall) -> Outcome:
    """Restore as the CLI does, minus what a caller may never ask for: no kill
    (`force`), no pool, no properties left out, previous data always kept. A
    `rename` only ever creates qubes: the parser requires on_conflict=rename
    with it, and the planner refuses an explicit new name that exists."""
    request = RestoreRequest(
        qubes=call.qubes,
        session=call.session,
        all=call.all,
        as_of=call.as_of,
        prefs=call.prefs,
        within=_covered(env) if call.all else None,
        on_conflict=ConflictPolicy(call.on_conflict),
        renames=call.rename,
        shutdown=call.shutdown,
        dry_run=call.dry_run,
        # the one catalogue the restore plans from is checked, and every later Wyng call too
        require_authenticated=not env.profile.rpc.allow_unauthenticated_restore,
    )
    port = env.qubes()
    archive_qube = archive_qube_of(env.profile.dest)
    done: RestoreResult = env.with_wyng(
        lambda wyng: run_restore_engine(port, wyng, request, env.reporter, env.workdir, archive_qube)
    )
    return Outcome(done.exit_code, restore_report(done), tuple(q.target for q in done.plan.qubes), done.session)


def _covered(env: Env) -> Callable[[str], bool]:
    """`all` over qrexec: the qubes the profile's selection and the call's rule cover."""
    rule, lookup = env.rule, env.lookup
    if rule is None or lookup is None:
        return lambda _: False  # never reached: the service always passes both
    return lambda name: covers(env.profile, rule, name, lookup)


def handle(env: Env, request: Request) -> Outcome:
    if isinstance(request, ListCall):
        return run_list(env, request)
    if isinstance(request, BackupCall):
        return run_backup(env, request)
    if isinstance(request, RestoreCall):
        return run_restore(env, request)
    if isinstance(request, VerifyCall):
        return run_verify(env, request)
    if isinstance(request, PruneCall):
        return run_prune(env, request)
    raise UsageError(f"{request.action} is not run as a job")
