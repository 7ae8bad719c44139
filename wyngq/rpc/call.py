"""One qrexec call in dom0, from the caller's request to the action's outcome:
the action table, the bounded read of stdin, the profile and the caller's
authorisation, then `status` from the job records or the action itself under
the operation lock, with a job record for the long ones (wyngq.rpc.jobs)."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO, TypeVar

from wyngq import lock, names, passphrase, paths, process
from wyngq.contract.events import JobAccepted
from wyngq.contract.jobs import ProfileJobs
from wyngq.errors import ConfigError, ExitCode, QubesError, UsageError, WyngStalledError
from wyngq.model import Qube
from wyngq.output import JsonLines
from wyngq.profile import PROFILE_DIR, RPC_ACTIONS, Profile, RpcRule, archive_care, load_profile, profile_dir
from wyngq.qubes.port import QubesPort
from wyngq.rpc import actions, audit, jobs
from wyngq.rpc.authorize import authorize, not_permitted
from wyngq.rpc.request import (
    MAX_REQUEST_BYTES,
    READ_TIMEOUT,
    Request,
    RequestError,
    StatusCall,
    parse_request,
    read_capped,
)
from wyngq.wyng import commands, runner
from wyngq.wyng.commands import WyngTarget
from wyngq.wyng.known import KnownArchives
from wyngq.wyng.runner import Wyng

log = logging.getLogger(__name__)
T = TypeVar("T")

JOB_ACTIONS = ("backup", "restore", "verify", "prune")  # long ones: recorded for `status`
RESULT_TIMEOUT = 60.0  # how long the finished call waits for a caller to read its result


@dataclass(frozen=True)
class Config:
    """Where the service finds and keeps things; tests point these at tmp_path."""

    profile_dir: str = PROFILE_DIR
    log_dir: str = audit.LOG_DIR
    state_dir: str = paths.STATE_DIR
    lock_path: str = lock.LOCK_PATH
    max_request_bytes: int = MAX_REQUEST_BYTES
    read_timeout: float = READ_TIMEOUT
    result_timeout: float = RESULT_TIMEOUT

    @classmethod
    def from_environment(cls) -> Config:
        """The defaults, with the same WYNGQ_* overrides the dom0 CLI honours, so
        that both always share one operation lock, one set of profiles and one
        job store. (sudo resets the environment: in dom0 these are the defaults.
        The caller has no way to set them.)"""
        return cls(profile_dir=profile_dir(), state_dir=paths.state_dir(), lock_path=lock.lock_path())


class Call:
    """The state of one call as it goes, so that its end is recorded whatever happens."""

    def __init__(
        self,
        config: Config,
        caller: str,
        action: str,
        presenter: JsonLines,
        qubes_factory: Callable[[], QubesPort],
    ) -> None:
        self.config = config
        self.caller = caller
        self.action = action
        self.presenter = presenter
        self.qubes_factory = qubes_factory
        self.jobs = jobs.JobStore(config.state_dir)
        self.job: jobs.JobRecord | None = None
        known = action in RPC_ACTIONS
        self.entry = audit.AuditEntry(
            caller=caller if names.is_qube_name(caller) else ascii(caller)[:40],
            action=action if known else "unknown",
        )
        self._port: QubesPort | None = None
        self._seen: dict[str, Qube | None] = {}

    def run(self, stdin: BinaryIO) -> actions.Outcome:
        if self.action not in RPC_ACTIONS:
            raise RequestError(
                f"unknown action {ascii(self.action)[:40]}",
                hint=f"call qubes.WyngBackup+ACTION with ACTION one of {', '.join(RPC_ACTIONS)}",
            )
        if not names.is_qube_name(self.caller):
            raise UsageError("the service was not started by qrexec with a valid caller (QREXEC_REMOTE_DOMAIN)")
        untrusted_data = read_capped(stdin, self.config.max_request_bytes, self.config.read_timeout)
        request = parse_request(self.action, untrusted_data)
        del untrusted_data
        self.entry.profile = request.profile
        self.entry.qubes = getattr(request, "qubes", ())
        profile = self._profile(request.profile)
        rule = authorize(profile, self.caller, request, self._lookup)
        if isinstance(request, StatusCall):
            return self._status(profile, request)
        return self._run_job(profile, request, rule)

    def _run_job(self, profile: Profile, request: Request, rule: RpcRule | None = None) -> actions.Outcome:
        with (
            lock.operation_lock(f"qrexec {request.action} from {self.caller}", path=self.config.lock_path),
            tempfile.TemporaryDirectory(prefix="wyngq-rpc-") as workdir,
        ):
            if request.action in JOB_ACTIONS:
                self.job = self.jobs.start(profile.name, request.action, self.caller, getattr(request, "qubes", ()))
                self.entry.job = self.job.id
                self.presenter.event(JobAccepted(self.job.id, profile.name, request.action))
            env = actions.Env(
                profile=profile,
                reporter=self.presenter,
                workdir=workdir,
                qubes=self._qubes,
                with_wyng=lambda work: self._with_wyng(profile, work),
                known_archives=KnownArchives(self.config.state_dir),
                rule=rule,
                lookup=self._lookup,
            )
            return actions.handle(env, request)

    def _status(self, profile: Profile, request: StatusCall) -> actions.Outcome:
        if request.job is not None:
            records = [self.jobs.job(profile.name, request.job)]
        else:
            records = self.jobs.jobs(profile.name)
        return actions.Outcome(ExitCode.OK, ProfileJobs(profile.name, jobs.job_infos(records)))

    def _profile(self, name: str) -> Profile:
        try:
            return load_profile(name, self.config.profile_dir)
        except ConfigError as err:
            # Missing or invalid, the caller hears the same as for a forbidden profile,
            # so it cannot learn which profiles exist; dom0's log has the details.
            log.warning("%s from %s: profile %s: %s", self.action, self.caller, name, err)
            raise not_permitted(self.caller, self.action, name) from None

    @staticmethod
    def _with_wyng(profile: Profile, work: Callable[[Wyng], T]) -> T:
        """Run `work` with Wyng as the profile says, with its passphrase (if any);
        nobody is ever asked for one here."""
        target = WyngTarget(executable=profile.wyng, dest=profile.dest, meta_dir=profile.meta_dir,
                            stall_timeout=profile.stall_timeout, care=archive_care(profile))
        secret = passphrase.from_source(profile.passphrase, profile.name)
        drop_key_agent(target)
        return work(Wyng(target, passphrase=secret))

    def _qubes(self) -> QubesPort:
        if self._port is None:
            self._port = self.qubes_factory()
        return self._port

    def _lookup(self, name: str) -> Qube | None:
        """The live qube `name` (cached for the call), or None if there is none."""
        if name not in self._seen:
            try:
                self._seen[name] = self._qubes().qube(name)
            except QubesError:
                self._seen[name] = None
        return self._seen[name]


def drop_key_agent(target: WyngTarget) -> None:
    """End any Wyng key agent for this archive before a qrexec-triggered job.

    While an agent lives Wyng accepts any passphrase, and `--authmin=0` (which
    every wyngq call passes) still uses an agent someone else left (docs/facts.md).
    `--authmin=-1` makes Wyng use the agent and kill it: here for a throw-away
    listing with no passphrase at all, whose outcome is ignored. The job's own
    calls then authenticate with the profile's passphrase or fail (docs/security-model.md)."""
    done = process.run(commands.end_key_agent_command(target), idle_timeout=target.stall_timeout)
    if done.stopped is not None:
        raise WyngStalledError(f"Wyng printed nothing for {target.stall_timeout:.0f} s and was stopped",
                               wyng_rc=done.returncode, hint="check that the destination answers")
    log.debug("key agent check for %s: wyng exited %d", target.dest, done.returncode)
    if done.returncode not in (0, 3):  # 0: no passphrase needed or an agent answered (and ended); 3: none
        # Anything else (another Wyng holding the lock, an unreachable archive) may have left an
        # agent alive, which would accept any passphrase: never go on then (docs/security-model.md).
        raise runner.error_for(done.returncode, done.stderr, done.stdout)
