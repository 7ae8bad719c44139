"""The management-qube client: `wyng-util-qubes` in a qube forwards to dom0.

In a qube the command has no archive, no Wyng and no passphrase: it turns its
arguments into a JSON request, validates it with the service's own parser
(so mistakes are caught before anything is sent, with the same messages),
sends it with `qrexec-client-vm @adminvm qubes.WyngBackup+ACTION`, streams the
progress dom0 reports, prints the result (text on a terminal, JSON Lines
otherwise) and exits with dom0's exit code. dom0's lines are read back into the
contract's dataclasses (wyngq.contract.decode) and written by the same
presenters as in dom0, so the client prints the contract dom0 printed.

When is it a client? wyngq.remote says (`--remote`, WYNGQ_REMOTE, or a qube's
marker file).

If dom0 sends no result, qrexec's own status says why: 126 (the policy
refused the call) exits 4, 127 (service not installed in dom0) exits 3.
Interrupting the client does not stop the job in dom0; `status` shows it.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
from collections.abc import Sequence
from typing import NoReturn

from wyngq import __version__, process, render
from wyngq.contract.decode import ContractError, decode_event, decode_result
from wyngq.contract.events import JobAccepted
from wyngq.contract.registry import result_types
from wyngq.contract.results import ResultLine, VersionResult, result_line
from wyngq.contract.serialize import JSON
from wyngq.errors import ConfigError, Interrupted, NotPermittedError, UsageError, WyngqError
from wyngq.output import Human, JsonLines, report_error
from wyngq.profile import CONFLICT_POLICIES

SERVICE = "qubes.WyngBackup"
QREXEC_CLIENT_VM = "qrexec-client-vm"
REFUSED, NO_SERVICE = 126, 127

log = logging.getLogger(__name__)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message, hint=f"see {self.prog} --remote --help")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="wyng-util-qubes",
        description="In a qube: ask dom0 to run wyng-util-qubes with a dom0 profile (qrexec qubes.WyngBackup). "
        "dom0's profile decides the archive, the passphrase and what this qube may do.",
    )
    parser.add_argument("--remote", action="store_true", help="forward to dom0 (the default in a qube)")
    parser.add_argument("--profile", help="the dom0 profile to use (required)")
    parser.add_argument("--json", action="store_true", help="print JSON Lines (the default off a terminal)")
    parser.add_argument("-q", "--quiet", action="store_true", help="show only the result")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="show more")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)
    actions.required = True
    sub = actions.add_parser("list", help="the qubes and sessions in the archive")
    sub.add_argument("qubes", nargs="*", metavar="QUBE")
    sub.add_argument("--session", help="the qubes of one session (YYYYMMDD-HHMMSS)")
    sub.add_argument("--all", action="store_true", help="every session of every qube")
    sub = actions.add_parser("backup", help="back up qubes (default: the profile's)")
    sub.add_argument("qubes", nargs="*", metavar="QUBE")
    sub.add_argument("--dry-run", action="store_true")
    sub = actions.add_parser("restore", help="restore qubes from the archive")
    sub.add_argument("qubes", nargs="+", metavar="QUBE")
    sub.add_argument("--session", help="YYYYMMDD-HHMMSS or latest (default)")
    sub.add_argument("--on-conflict", choices=CONFLICT_POLICIES, help="what to do with existing qubes")
    sub.add_argument("--rename", action="append", default=[], metavar="OLD:NEW", help="with --on-conflict=rename")
    sub.add_argument("--shutdown", action="store_true", help="shut down running qubes first (if dom0 allows)")
    sub.add_argument("--dry-run", action="store_true")
    sub = actions.add_parser("verify", help="check a session's data and settings")
    sub.add_argument("qubes", nargs="*", metavar="QUBE")
    sub.add_argument("--session", help="YYYYMMDD-HHMMSS or latest (default)")
    sub = actions.add_parser("prune", help="remove old sessions")
    sub.add_argument("qubes", nargs="*", metavar="QUBE")
    sub.add_argument("--session", required=True, help="ID, or ID,ID for an inclusive range")
    sub.add_argument("--all-before", action="store_true")
    sub.add_argument("--dry-run", action="store_true")
    sub = actions.add_parser("status", help="running and recent jobs of the profile in dom0")
    sub.add_argument("--job", help="one job, by the id dom0 gave it")
    actions.add_parser("version", help="print this client's version")
    return parser


def request_of(args: argparse.Namespace) -> dict[str, object]:
    """The JSON request for the parsed arguments (validated later by the service's parser)."""
    request: dict[str, object] = {"profile": args.profile}
    options = {key: value for key, value in vars(args).items() if key not in ("remote", "json", "quiet", "verbose")}
    for key in ("qubes", "session", "job"):
        if options.get(key):
            request[key] = options[key]
    for key in ("all", "dry_run", "shutdown", "all_before"):
        if options.get(key):
            request[key] = True
    if options.get("on_conflict"):
        request["on_conflict"] = options["on_conflict"]
    if options.get("rename"):
        pairs = [item.split(":", 1) for item in options["rename"]]
        if any(len(pair) != 2 for pair in pairs):
            raise UsageError("--rename takes OLD:NEW")
        request["rename"] = dict(pairs)
    return request


def main(words: Sequence[str], *, executable: str = QREXEC_CLIENT_VM) -> int:
    """Run the client; return the exit status."""
    json_mode = "--json" in words or not sys.stdout.isatty()
    presenter: JsonLines | Human = JsonLines() if json_mode else Human()
    action = "unknown"
    try:
        args = build_parser().parse_args(list(words))
        action = args.action
        if not json_mode:
            presenter = Human(verbose=args.verbose, quiet=args.quiet)
        if action == "version":
            _show_result(presenter, result_line("version", 0, VersionResult(__version__)))
            return 0
        if not args.profile:
            raise UsageError("name the dom0 profile", hint="pass --profile=NAME (dom0 keeps its profiles)")
        data = json.dumps(request_of(args)).encode()
        from wyngq.rpc.request import parse_request  # only here: a dom0 run never loads it

        parse_request(action, data)
        return forward(action, data, presenter, executable=executable)
    except WyngqError as err:
        return report_error(presenter, action, err)


def forward(action: str, data: bytes, presenter: JsonLines | Human, *, executable: str = QREXEC_CLIENT_VM) -> int:
    """Send one request to dom0, relay its progress, show its result; return dom0's exit status."""
    results: list[dict[str, JSON]] = []

    def on_line(line: str) -> None:
        try:
            document = json.loads(line)
        except ValueError:
            log.info("dom0: %s", line)
            return
        if not isinstance(document, dict):
            return
        if document.get("type") == "result":
            results.append(document)
            return
        try:
            event = decode_event(document)
        except ContractError as err:
            log.info("dom0 sent an event this client does not know: %s", err)
            return
        if isinstance(presenter, Human) and isinstance(event, JobAccepted):
            presenter.say(f"dom0 job {event.id} ({event.action}, profile {event.profile})")
        else:
            presenter.event(event)

    try:
        done = process.run([executable, "@adminvm", f"{SERVICE}+{action}"], stdin=data, on_stdout_line=on_line)
    except ConfigError as err:
        if shutil.which(executable) is not None:
            raise
        raise ConfigError(
            f"{executable} not found: this qube cannot call dom0 over qrexec",
            hint="it comes with the package qubes-core-qrexec-vm (Fedora) or qubes-core-qrexec (Debian): "
                 "install it in this qube's template, or run wyng-util-qubes in dom0",
        ) from err
    if done.returncode < 0:
        raise Interrupted(-done.returncode)
    if not results:
        raise _no_result(action, done.returncode)
    _show_result(presenter, _read_result(action, results[-1]))
    return done.returncode


def _read_result(action: str, document: dict[str, JSON]) -> ResultLine:
    try:
        return decode_result(document, result_types().get(action, ()))
    except ContractError as err:
        log.info("dom0's result: %s", err)
        raise WyngqError(
            "dom0 sent a result this client cannot read",
            hint="install the same version of wyng-util-qubes in dom0 and in this qube",
        ) from None


def _no_result(action: str, returncode: int) -> WyngqError:
    call = f"{SERVICE}+{action}"
    if returncode == REFUSED:
        return NotPermittedError(f"dom0 refused {call}", hint="dom0's qrexec policy must allow this qube to call it")
    if returncode == NO_SERVICE:
        return ConfigError(f"{call} is not installed in dom0", hint="install wyng-util-qubes in dom0")
    if returncode > 128:
        return Interrupted(returncode - 128)
    return WyngqError(f"no result from dom0 ({QREXEC_CLIENT_VM} exited {returncode})")


def _show_result(presenter: JsonLines | Human, result: ResultLine) -> None:
    if isinstance(presenter, JsonLines):
        presenter.line(result)
    else:
        render.remote_result(presenter, result)
