"""Human-readable summaries of each action's result: the one place that turns
results into text for people, for the dom0 CLI and for the management-qube
client. The result types are imported for annotations only, so that an action
imports none of the other actions' code."""

from __future__ import annotations

from typing import TYPE_CHECKING

from wyngq.contract.results import ResultLine, VersionResult
from wyngq.errors import WyngqError
from wyngq.output import Human, format_time, shown

if TYPE_CHECKING:
    from wyngq.backup import BackupResult
    from wyngq.contract.jobs import JobInfo, ProfileJobs, StatusResult
    from wyngq.contract.restore import RestoreReport
    from wyngq.create import CreateResult
    from wyngq.dom0.restore import Dom0RestoreResult
    from wyngq.listing import ListResult
    from wyngq.machine import MachineRestoreResult
    from wyngq.maintenance import DeleteResult, PruneResult, VerifyResult
    from wyngq.monitor import MonitorResult
    from wyngq.restore.apply import QubeOutcome
    from wyngq.restore.model import RestorePlan
    from wyngq.restore.run import RestoreResult


def backup(out: Human, result: BackupResult) -> None:
    if result.schedule:
        _schedule(out, result)
        if not result.qubes:
            out.say("Nothing is due.")
            return
    if result.dry_run:
        out.say("Dry run: nothing was stored and nothing changed, in the archive, the pools or the qubes.")
        _dry_run_volumes(out, result)
    else:
        out.say(f"Session {result.session}:")
    for qube in result.qubes:
        status = "ok" if qube.ok else f"FAILED: {qube.error}"
        note = f" ({qube.note})" if qube.note else ""
        out.say(f"  {qube.name:<32} {status}{note}")
    for item in result.dom0:
        status = f"ok ({item.members} entries, {item.data_bytes} bytes)" if item.ok else f"FAILED: {item.error}"
        out.say(f"  {'dom0 ' + item.item:<32} {status}")
        for note in item.notes:
            out.say(f"      {note}")
    if result.shut_down:
        out.say(f"Shut down for the backup: {', '.join(result.shut_down)}; started again: "
                f"{', '.join(result.restarted) or 'none'}")
    for warning in result.warnings:
        out.say(f"warning: {warning}")
    if result.check is not None:
        out.say(f"Archive check of the new session: {result.check}")
    failed = [q.name for q in result.qubes if not q.ok]
    if failed and not result.dry_run:
        out.say(f"Not backed up: {', '.join(failed)}. Their backup_timestamp was left unchanged.")


def _schedule(out: Human, result: BackupResult) -> None:
    out.say("Last session in this archive:")
    for entry in result.schedule:
        when = f"{entry.last_session} ({_age(entry.age)} ago)" if entry.age is not None else "none"
        out.say(f"  {entry.name:<32} {when}{'  due' if entry.due else ''}")


def _dry_run_volumes(out: Human, result: BackupResult) -> None:
    total = sum(v.size for v in result.volumes)
    out.say(f"Would send {len(result.volumes)} volume(s), {_size(total)} to read:")
    for vol in result.volumes:
        how = "changes since the last session" if vol.incremental else "all of it (new in this archive)"
        out.say(f"  {vol.qube}: {vol.local_name}  {_size(vol.size)}, {how}")


def _size(count: int) -> str:
    value, unit = float(count), "B"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            break
        value /= 1024
    return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"


def _age(seconds: int) -> str:
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def listing(out: Human, result: ListResult) -> None:
    info = result.archive
    out.say(f"Archive: {info.url}")
    out.say(f"Last updated: {format_time(info.updated_at)}")
    if info.encrypted is not None:
        state = "on" if info.encrypted else "OFF"
        auth = ", authenticated" if info.authenticated else ", NOT authenticated"
        out.say(f"Encryption: {state}{auth}")
    if result.session is not None:
        out.say(f"\nQubes in session {result.session}:")
        for qube in result.session_qubes:
            kind = f" ({qube.klass})" if qube.klass else ""
            disposable = " [settings only]" if not qube.volumes else ""
            out.say(f"  {qube.name}{kind}{disposable}")
        for item in result.dom0:
            out.say(f"  dom0 {item.item} ({item.size} bytes)")
        if result.session_tags:
            out.say("Tags:")
            for tag, desc in result.session_tags.items():
                out.say(f"  {shown(tag):<12} {shown(desc)}")
        return
    if not result.qubes:
        out.say("\nNo Qubes backups in this archive yet.")
        return
    out.say("")
    width = max(len(q) for q in result.qubes)
    for name, sessions in result.qubes.items():
        out.say(f"  {name:<{width}}  {' '.join(sessions)}")


def restore(out: Human, result: RestoreResult) -> None:
    plan = result.plan
    if len(plan.sessions) == 1:
        out.say(f"Session {result.session} (settings from {plan.settings_source}):")
    else:
        out.say(f"Sessions {', '.join(plan.sessions)}, each qube from its own (settings from {plan.settings_source}):")
    for qube in plan.qubes:
        action = f"rename -> {qube.target}" if qube.target != qube.source else qube.action.value
        if qube.action.value == "skip" and any(problem.blocking for problem in qube.problems):
            action = "REFUSED"  # a refused conflict is not a skip: nothing is carried out while one is
        out.say(f"  {qube.source:<24} {qube.klass.value:<13} {qube.session or result.session}  {action}")
        for problem in qube.problems:
            mark = "!" if problem.blocking else "-"
            out.say(f"      {mark} {problem.message}: {problem.resolution}")
    show_prefs(out, result)
    if result.refused:
        out.say("\nRefused: nothing was changed. Resolve the problems marked '!' and run the restore again.")
        return
    if result.dry_run:
        show_changes(out, plan)
        out.say("\nDry run: nothing was changed.")
        return
    out.say("")
    for outcome in result.qubes:
        if outcome.action.value == "skip":
            continue
        if outcome.ok:
            out.say(f"  {outcome.target:<24} restored{_kept(outcome)}")
        else:
            out.say(f"  {outcome.target:<24} FAILED at {outcome.failed_step}: {outcome.error}")
            out.say(f"      {outcome.hint}")
    for warning in result.warnings:
        out.say(f"warning: {warning}")
    for note in result.menus:
        out.say(f"note: {note}")


def show_prefs(out: Human, result: RestoreResult) -> None:
    """dom0's global preferences the restore sets (or would set), and those left."""
    plan = result.plan
    if not (plan.prefs or plan.prefs_problems):
        return
    out.say("  global preferences:")
    for op in plan.prefs:
        failed = " (NOT set)" if op.key in result.prefs_failed else ""
        out.say(f"      set {op.key}: {op.old!r} -> {op.value!r}{failed}")
    for problem in plan.prefs_problems:
        out.say(f"      {'!' if problem.blocking else '-'} {problem.message}: {problem.resolution}")


def _kept(outcome: QubeOutcome) -> str:
    """Only a qube restored over has previous data (a new one's revisions hold its empty volumes)."""
    if outcome.action.value != "replace":
        return " (new qube)" if outcome.action.value in ("create", "rename") else ""
    if not outcome.revisions:
        return ""
    return f" (previous data kept: qvm-volume revert {', '.join(outcome.revisions)})"


def show_changes(out: Human, plan: RestorePlan) -> None:
    """The per-qube diff: what each step would change, old -> new."""
    for qube in plan.qubes:
        if not qube.changes:
            continue
        out.say(f"\n{qube.target}:")
        for pair in qube.volumes:
            keep = "replaces the current data (kept as a revision)" if pair.replaces else "new"
            out.say(f"    data {pair.kind}: {pair.archive_name} ({pair.size} bytes, {keep})")
        for step in plan.steps_of(qube.target):
            if step.kind.value == "shutdown":
                out.say(f"    shut down: {', '.join(op.key for op in step.ops)}")
            for op in step.ops:
                if step.kind.value in ("shutdown", "import"):
                    continue
                old = "-" if op.old is None else repr(op.old)
                new = "-" if op.value is None else repr(op.value)
                out.say(f"    {step.kind.value} {op.verb} {shown(op.key)}: {old} -> {new}")


def dom0_restore(out: Human, result: Dom0RestoreResult) -> None:
    if result.dry_run:
        for item, directory in result.into.items():
            out.say(f"dom0 {item} of session {result.session}: would be restored into {directory}")
        out.say("Dry run: nothing was written.")
    for restored in result.restored:
        out.say(f"dom0 {restored.item} of session {result.session}: {restored.files} file(s), "
                f"{restored.data_bytes} bytes, in {restored.directory} (owner: {restored.owner})")
        for state in restored.config_files:
            out.say(f"  {state.state:<10} {state.path}")
            if state.diff:
                for line in state.diff.splitlines():
                    out.say(f"      {line}")
            if state.state != "equal":
                out.say(f"      to put it in place: {state.put_in_place}")
    if result.authenticated is False:
        out.say("warning: the archive is not encrypted: anyone who could write it could have chosen these files; "
                "review them before using any")


def machine(out: Human, result: MachineRestoreResult) -> None:
    """A restore of qubes, then of dom0 items (wyngq.machine)."""
    restore(out, result.qubes)
    if result.dom0 is not None:
        out.say("")
        dom0_restore(out, result.dom0)
    elif result.dom0_error is not None:
        out.say(f"\ndom0 items FAILED: {result.dom0_error.message}")
        if result.dom0_error.hint:
            out.say(f"      {result.dom0_error.hint}")
    elif result.qubes.refused:
        out.say("The dom0 items were not restored either.")


def verify(out: Human, result: VerifyResult) -> None:
    out.say(f"Session {result.session}:")
    for qube in result.qubes:
        out.say(f"  {qube.name:<32} {'ok' if qube.ok else 'DAMAGED: ' + (qube.error or '')}")
    out.say(f"  {'(settings bundle)':<32} {result.settings}")
    for item in result.dom0:
        out.say(f"  {'(dom0 ' + item.item + ')':<32} {'ok' if item.ok else 'DAMAGED: ' + (item.error or '')}")
    if result.archive_check is not None:
        out.say(f"Whole archive (Wyng arch-check): {result.archive_check}")


def prune(out: Human, result: PruneResult) -> None:
    verb = "Would remove" if result.dry_run else "Removed"
    if not result.removed and not result.dom0:
        out.say("Nothing to prune." if result.dry_run else "No session was removed.")
    for qube, sessions in result.removed.items():
        out.say(f"  {qube:<32} {verb.lower()} {' '.join(sessions)}")
    for item, sessions in result.dom0.items():
        out.say(f"  {'dom0 ' + item:<32} {verb.lower()} {' '.join(sessions)}")
    if result.kept_latest:
        out.say(f"The newest session ({result.kept_latest[0]}) is always kept.")


def autoprune_off(out: Human, profile: str) -> None:
    out.say(f"Profile {profile}: autoprune is off; nothing pruned.")


def monitor(out: Human, result: MonitorResult) -> None:
    if not result.volumes:
        out.say("No selected volume is in an lvm_thin pool: nothing to monitor.")
    for volume in result.volumes:
        out.say(f"  monitored {volume}")


def status(out: Human, result: StatusResult) -> None:
    if not any(result.jobs.values()):
        out.say("No jobs recorded.")
    for name, records in result.jobs.items():
        if not records:
            continue
        out.say(f"Profile {name}:")
        for job in records:
            out.say(_job_line(job))


def delete(out: Human, result: DeleteResult) -> None:
    out.say(f"Deleted {len(result.volumes)} volume(s) of {result.qube}: {', '.join(result.volumes)}")


def create(out: Human, result: CreateResult) -> None:
    out.say(f"Created archive {result.dest}")


def version(out: Human, result: VersionResult) -> None:
    out.say(result.version)


def profile_jobs(out: Human, result: ProfileJobs) -> None:
    from wyngq.contract.jobs import StatusResult

    status(out, StatusResult({result.profile: result.jobs}))


def _job_line(job: JobInfo) -> str:
    outcome = job.code or job.state
    gone = " (caller left)" if job.caller_gone else ""
    return (f"  {job.id}  {format_time(job.started)}  {job.action:<8} {job.state:<9} {outcome:<14} "
            f"{job.caller}  {','.join(job.qubes) or '-'}{gone}")


def restore_report(out: Human, report: RestoreReport) -> None:
    """A restore as the qrexec service reports it (the client has no plan)."""
    out.say(f"Sessions {', '.join(report.sessions)}:" if len(report.sessions) > 1 else f"Session {report.session}:")
    for qube in report.qubes:
        state = "" if qube.ok is None else ("  ok" if qube.ok else f"  FAILED at {qube.failed_step}: {qube.error}")
        target = f" -> {qube.target}" if qube.target != qube.name else ""
        out.say(f"  {qube.name:<24} {qube.action}{target}{state}")
        for problem in qube.problems:
            out.say(f"      {'!' if problem.blocking else '-'} {problem.message}: {problem.resolution}")
    for warning in report.warnings:
        out.say(f"warning: {warning}")
    out.say(report.summary)


def result(out: Human, data: object) -> None:
    """Any action's result data, for the client that has only the data."""
    from wyngq.backup import BackupResult
    from wyngq.contract.jobs import ProfileJobs
    from wyngq.contract.restore import RestoreReport
    from wyngq.listing import ListResult
    from wyngq.maintenance import PruneResult, VerifyResult

    if isinstance(data, BackupResult):
        backup(out, data)
    elif isinstance(data, ListResult):
        listing(out, data)
    elif isinstance(data, RestoreReport):
        restore_report(out, data)
    elif isinstance(data, VerifyResult):
        verify(out, data)
    elif isinstance(data, PruneResult):
        prune(out, data)
    elif isinstance(data, ProfileJobs):
        profile_jobs(out, data)
    elif isinstance(data, VersionResult):
        version(out, data)


def remote_result(out: Human, line: ResultLine) -> None:
    """The result dom0 sent the management-qube client."""
    if line.message is not None:
        out.error(WyngqError(line.message, hint=line.hint))
    if line.data is not None:
        result(out, line.data)
    if not line.ok and line.message is None:
        out.say(line.comment)
    if line.job and line.action != "status":
        out.say(f"(dom0 job {line.job}: `wyng-util-qubes --profile=NAME status --job={line.job}`)")
