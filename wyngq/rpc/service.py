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

Steps 1-4 are wyngq.rpc.call, the caller's stdout wyngq.rpc.stream; this module
turns the call's outcome into the result line, the job record and the audit line.
"""

from __future__ import annotations

import gc
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from typing import IO, BinaryIO, cast

from wyngq.contract.results import ResultLine, result_line
from wyngq.errors import ConfigError, ExitCode, Interrupted, UsageError, WyngqError
from wyngq.output import JsonLines, exit_status, log_to_stderr
from wyngq.qubes import connect
from wyngq.qubes.port import QubesPort
from wyngq.rpc import actions, audit
from wyngq.rpc.call import Call, Config
from wyngq.rpc.stream import CallerStream

__all__ = ["SIGNALS", "CallerStream", "Config", "SignalGate", "main", "serve"]

log = logging.getLogger(__name__)

INTERNAL_MESSAGE = "internal error in dom0; the details are in dom0's log"


class InternalError(WyngqError):
    """What the caller is told about a bug; the traceback stays in dom0."""


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
    call = Call(config, caller, action, JsonLines(cast(IO[str], out)), qubes_factory)
    outcome, error, status = _work(call, stdin, quiet_signals)
    line = result_line(call.entry.action, status, outcome.data, error, job=call.job.id if call.job else None)
    caller_gone = _answer(call, out, outcome, line)
    entry = call.entry
    entry.qubes = outcome.qubes or entry.qubes
    entry.outcome, entry.exit_code, entry.caller_gone = line.code, status, caller_gone
    audit.AuditLog(config.log_dir).write(entry)
    return status


def _work(call: Call, stdin: BinaryIO, quiet_signals: bool) -> tuple[actions.Outcome, WyngqError | None, int]:
    """Run the call; return its outcome, the error that ended it (None: none) and its exit status."""
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
    return outcome, error, status


def _answer(call: Call, out: CallerStream, outcome: actions.Outcome, line: ResultLine) -> bool:
    """Finish the job record, then send the result line and wait for the caller
    to read it; return whether the caller went away (or never read it)."""

    def record_job(caller_gone: bool) -> None:
        if call.job is not None:
            call.jobs.finish(call.job, exit_code=line.exit_code, code=line.code, message=line.message,
                             session=outcome.session, caller_gone=caller_gone, qubes=outcome.qubes or None)

    gone_before_result = out.gone
    record_job(gone_before_result)  # before the result: a caller that asks `status` next sees the outcome
    out.finish()
    call.presenter.line(line)
    if not out.drain(call.config.result_timeout):
        log.warning("the caller did not read the result of %s within %.0f s; it is recorded",
                    call.entry.action, call.config.result_timeout)
    caller_gone = out.gone or out.writing
    if caller_gone and not gone_before_result:
        record_job(caller_gone)
    return caller_gone


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
    status = main()
    gc.freeze()  # all is done and written: no last garbage collection on the way out (wyngq.cli.command)
    sys.exit(status)
