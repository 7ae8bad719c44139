"""The dom0 side of `qubes.WyngBackup`: `python3 -I -m wyngq.rpc.service CALLER ACTION`.

Run by the wrapper `/etc/qubes-rpc/qubes.WyngBackup` through `sudo -n` (Wyng
needs root; the service runs as the dom0 user). sudo resets the environment, so
the two values qrexec vouches for arrive as arguments: CALLER is
$QREXEC_REMOTE_DOMAIN, ACTION the service argument ($1). Nothing else of the
call is trusted: stdin is read through wyngq.rpc.request.

One call, in this order (shape of qrexec's policy.Admin service):
1. ACTION not in the action table -> refused before any other work;
2. stdin, at most 64 KiB, parsed into the action's request (exit 2 if invalid);
3. the dom0 profile it names, and the caller's authorisation in its [rpc];
4. `status` answers from the job records; the other actions take the
   operation lock (busy: exit 5) and run the same engine as the CLI; the long
   ones (backup, restore, verify, prune) get a job record first;
5. JSON Lines on stdout (a `job` event for a job, progress, and always a
   final `result`), the job record finished, one audit line in dom0.

Client errors get a clear message and their exit code; internal errors a
generic message, with the traceback on stderr (dom0's qrexec log, which the
caller never sees). A caller that goes away does not stop the job: EPIPE on
stdout is ignored, the outcome is recorded and shown by `+status`.
"""

from __future__ import annotations

import errno
import json
import logging
import queue
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import IO, BinaryIO, TypeVar, cast

from wyngq import lock, names, passphrase, paths, process
from wyngq.contract.events import JobAccepted
from wyngq.contract.results import ProfileJobs, result_line
from wyngq.errors import ConfigError, ExitCode, Interrupted, QubesError, UsageError, WyngqError, WyngStalledError
from wyngq.model import Qube
from wyngq.output import JsonLines, exit_status, log_to_stderr
from wyngq.profile import PROFILE_DIR, RPC_ACTIONS, Profile, RpcRule, archive_care, load_profile, profile_dir
from wyngq.qubes import connect
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

INTERNAL_MESSAGE = "internal error in dom0; the details are in dom0's log"
JOB_ACTIONS = ("backup", "restore", "verify", "prune")  # long ones: recorded for `status`
MAX_PENDING_BYTES = 1 << 20  # output waiting for a caller that is not reading, before events are dropped
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


class InternalError(WyngqError):
    """What the caller is told about a bug; the traceback stays in dom0."""


class CallerStream:
    """The caller's stdout, as text, that never holds up the job.

    Lines go through a queue to a writer thread, so a caller that stops reading
    (or a slow qrexec connection) blocks only that thread, never Wyng's output or
    the operation lock. While more than `max_pending` bytes wait, new lines are
    dropped (they are progress and per-qube events; the result repeats what
    matters) and a `dropped` event says how many when the caller catches up.
    After `finish()` nothing is dropped: the result line always gets queued.
    A write that fails with EPIPE means the caller went away: `gone` becomes
    True, everything else is discarded, and the work carries on."""

    def __init__(self, raw: BinaryIO, *, max_pending: int = MAX_PENDING_BYTES) -> None:
        self.raw = raw
        self.max_pending = max_pending
        self.gone = False
        self.dropped = 0
        self._final = False
        self._pending = 0
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._writer = threading.Thread(target=self._write_all, name="caller-stream", daemon=True)
        self._writer.start()

    def write(self, text: str) -> int:
        data = text.encode("utf-8", "backslashreplace")
        with self._lock:
            if self.gone:
                return len(text)
            if not self._final and self._pending + len(data) > self.max_pending:
                self.dropped += 1
                return len(text)
            if self.dropped:
                notice = json.dumps({"type": "dropped", "lines": self.dropped,
                                     "why": "the caller was not reading; the result line has the outcome"})
                self._put(notice.encode() + b"\n")
                self.dropped = 0
            self._put(data)
        return len(text)

    def flush(self) -> None:
        return None

    def finish(self) -> None:
        """From now on nothing is dropped (the result line comes next)."""
        with self._lock:
            self._final = True

    def drain(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for everything queued to reach the caller;
        return whether it did (or the caller is gone, so nothing is left to send)."""
        self._queue.put(None)
        self._writer.join(timeout)
        return not self.writing

    @property
    def writing(self) -> bool:
        """Whether output is still on its way (the caller has not read it all)."""
        return self._writer.is_alive()

    def _put(self, data: bytes) -> None:
        self._pending += len(data)
        self._queue.put(data)

    def _write_all(self) -> None:
        while (data := self._queue.get()) is not None:
            if not self.gone:
                self._send(data)
            with self._lock:
                self._pending -= len(data)

    def _send(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                written = self.raw.write(view)
                view = view[written if written is not None else len(view):]
            self.raw.flush()
        except (BrokenPipeError, ConnectionResetError, ValueError):
            self._lost()
        except OSError as err:
            if err.errno not in (errno.EPIPE, errno.ECONNRESET, errno.EBADF):
                log.exception("writing to the caller failed")
            self._lost()

    def _lost(self) -> None:
        if not self.gone:
            log.warning("the caller went away; the job goes on and its outcome is recorded")
        self.gone = True


def serve(
    config: Config,
    caller: str,
    action: str,
    stdin: BinaryIO,
    stdout: BinaryIO,
    *,
    qubes_factory: Callable[[], QubesPort] = connect,
    quiet_signals: bool = False,
) -> int:
    """Answer one qrexec call; return its exit status. With `quiet_signals` (the
    service's own process, whose handler is SIGNALS), SIGINT/SIGTERM are ignored
    once the work is over. `caller` and `action` are
    qrexec's (trusted) values; `stdin` is the caller's, `stdout` goes to it."""
    out = CallerStream(stdout)
    call = _Call(config, caller, action, JsonLines(cast(IO[str], out)), qubes_factory)
    error: WyngqError | None = None
    outcome = actions.Outcome(ExitCode.INTERNAL, None)
    try:
        try:
            outcome = call.run(stdin)
        finally:
            if quiet_signals:
                # The work is over: from here nothing may stop the record, the result
                # or the audit line. A signal that lands before this line raises
                # Interrupted here, inside the outer try, and is reported as such.
                SIGNALS.armed = False
        status = int(outcome.exit_code)
    except WyngqError as err:
        error, status = err, exit_status(err)
    except Exception:
        log.exception("internal error: %s from %s", call.entry.action, call.entry.caller)
        error, status = InternalError(INTERNAL_MESSAGE), int(ExitCode.INTERNAL)
    if isinstance(error, ConfigError):
        log.error("%s from %s: %s", call.entry.action, call.entry.caller, error)
    line = result_line(call.entry.action, status, outcome.data, error, job=call.job.id if call.job else None)
    code, message = line.code, line.message

    def record_job(caller_gone: bool) -> None:
        if call.job is not None:
            call.jobs.finish(call.job, exit_code=status, code=code, message=message, session=outcome.session,
                             caller_gone=caller_gone, qubes=outcome.qubes or None)

    gone_before_result = out.gone
    record_job(gone_before_result)  # before the result: a caller that asks `status` next sees the outcome
    out.finish()
    call.presenter.line(line)
    if not out.drain(config.result_timeout):
        log.warning("the caller did not read the result of %s within %.0f s; it is recorded",
                    call.entry.action, config.result_timeout)
    caller_gone = out.gone or out.writing
    if caller_gone and not gone_before_result:
        record_job(caller_gone)
    entry = call.entry
    entry.qubes = outcome.qubes or entry.qubes
    entry.outcome, entry.exit_code, entry.caller_gone = code, status, caller_gone
    audit.AuditLog(config.log_dir).write(entry)
    return status


class _Call:
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


def main(
    argv: Sequence[str] | None = None,
    config: Config | None = None,
    *,
    qubes_factory: Callable[[], QubesPort] = connect,
) -> int:
    """Entry point of `python3 -I -m wyngq.rpc.service CALLER ACTION` (see the module doc).
    `config` and `qubes_factory` are for tests; the command line always uses the defaults."""
    args = list(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, SIGNALS.handle)
    signal.signal(signal.SIGINT, SIGNALS.handle)  # as an Interrupted error: the job and the caller get a result
    log_to_stderr(logging.INFO, "wyng-util-qubes[rpc] %(levelname)s: %(message)s")
    stdout = cast(BinaryIO, open(sys.stdout.fileno(), "wb", buffering=0, closefd=False))  # noqa: SIM115
    config = config or Config.from_environment()
    if len(args) != 2:
        out = CallerStream(stdout)
        out.finish()
        JsonLines(cast(IO[str], out)).result(
            "unknown", int(ExitCode.USAGE), error=UsageError("usage: python3 -m wyngq.rpc.service CALLER ACTION")
        )
        out.drain(config.result_timeout)
        return int(ExitCode.USAGE)
    caller, action = args
    return serve(config, caller, action, sys.stdin.buffer, stdout, qubes_factory=qubes_factory, quiet_signals=True)


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


class SignalGate:
    """The service's SIGINT/SIGTERM handler: while `armed`, the first signal raises
    Interrupted (and disarms the gate, so a second one cannot break the handling of
    the first); once the work is over, `serve` disarms it and signals are only
    logged. One attribute store closes the window a handler swap would leave."""

    def __init__(self) -> None:
        self.armed = True

    def handle(self, signum: int, _frame: object) -> None:
        if not self.armed:
            log.warning("signal %d ignored: the call is finishing", signum)
            return
        self.armed = False
        raise Interrupted(signum)


SIGNALS = SignalGate()


if __name__ == "__main__":
    sys.exit(main())
