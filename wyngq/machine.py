"""A whole machine in one restore: the qubes, then dom0's items beside the live system.

`restore --all --prefs --dom0-home --dom0-config` (docs/recovery.md) is one
job under one lock and one catalogue read: the dom0 items are planned first
(their session, and new directories that must not exist yet), so that a
refusal there changes nothing; then the qubes are restored (wyngq.restore);
then, unless that restore was refused or interrupted, the dom0 items are
extracted beside the live system (wyngq.dom0.restore), never over it. A dom0
item that fails after the qubes were restored makes the exit status 8, as a
failed qube does, and the qubes stay restored.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

from wyngq.contract.restore import Dom0RestorePlanned, RestoreReport
from wyngq.contract.serialize import OMIT_NONE
from wyngq.dom0 import restore as dom0_restore
from wyngq.errors import ExitCode, WyngqError
from wyngq.events import Reporter
from wyngq.qubes.port import QubesPort
from wyngq.restore.model import RestoreRequest
from wyngq.restore.report import restore_report
from wyngq.restore.run import RestoreResult, run_restore
from wyngq.wyng.runner import Wyng


@dataclass(frozen=True)
class MachineRestoreResult:
    qubes: RestoreResult
    dom0: dom0_restore.Dom0RestoreResult | None  # None: not reached (the qubes' restore was refused or stopped)
    dom0_error: WyngqError | None = None  # the dom0 items failed after the qubes were restored

    @property
    def exit_code(self) -> int:
        if self.qubes.exit_code != ExitCode.OK:
            return self.qubes.exit_code
        return ExitCode.PARTIAL if self.dom0_error is not None else ExitCode.OK

    @property
    def changed(self) -> bool:
        return self.qubes.changed or (self.dom0 is not None and self.dom0.changed)

    @property
    def code(self) -> str | None:
        if self.qubes.code is not None:
            return self.qubes.code
        return "partial" if self.dom0_error is not None else None

    @property
    def summary(self) -> str:
        parts = [self.qubes.summary]
        if self.dom0 is not None:
            parts.append(self.dom0.summary)
        elif self.dom0_error is not None:
            parts.append(f"dom0 items FAILED: {self.dom0_error.message}")
        return "; ".join(parts)


@dataclass(frozen=True)
class Dom0Failure:
    """Why the dom0 items failed after the qubes were restored."""

    code: str
    message: str
    hint: str | None = field(default=None, metadata=OMIT_NONE)


@dataclass(frozen=True)
class MachineReport(RestoreReport):
    """The result of a restore of qubes and dom0 items: the qubes' restore
    report, with the dom0 result (null when it was not reached) and, when the
    dom0 items failed after the qubes were restored, why."""

    dom0: dom0_restore.Dom0RestoreResult | None = field(kw_only=True)
    dom0_error: Dom0Failure | None = field(default=None, metadata=OMIT_NONE, kw_only=True)


def machine_report(result: MachineRestoreResult) -> MachineReport:
    report = restore_report(result.qubes)
    error = result.dom0_error
    given = {f.name: getattr(report, f.name) for f in fields(report)}
    given.update(changed=result.changed, summary=result.summary, code=result.code)
    return MachineReport(**given, dom0=result.dom0,
                         dom0_error=Dom0Failure(error.code, error.message, error.hint) if error is not None else None)


def restore_machine(qubes: QubesPort, wyng: Wyng, request: RestoreRequest,
                    dom0_request: dom0_restore.Dom0RestoreRequest, reporter: Reporter, workdir: str,
                    archive_qube: str | None = None) -> MachineRestoreResult:
    """The qubes `request` asks for, then the dom0 items of `dom0_request`, whose
    session follows the qubes' choice: `--session` names it, `--as-of` bounds
    it, else the newest session holding the items."""
    archive = wyng.catalog()
    dom0_request = replace(dom0_request, session=request.session, as_of=request.as_of, dry_run=request.dry_run)
    plan = dom0_restore.plan_restore(archive, dom0_request)  # refused here: nothing has changed
    restored = run_restore(qubes, wyng, request, reporter, workdir, archive_qube, archive=archive)
    if restored.refused or restored.interrupted is not None:
        return MachineRestoreResult(restored, None)
    reporter.event(Dom0RestorePlanned(plan.session, tuple(dom0_request.items), dict(plan.into), request.dry_run))
    if request.dry_run:
        return MachineRestoreResult(restored, dom0_restore.Dom0RestoreResult(
            plan.session, (), archive.authenticated, dry_run=True, into=plan.into))
    try:
        items = dom0_restore.carry_out(wyng, plan, dom0_request.diff)
    except WyngqError as error:
        return MachineRestoreResult(restored, None, error)
    return MachineRestoreResult(restored, dom0_restore.Dom0RestoreResult(
        plan.session, items, archive.authenticated, into=plan.into))
