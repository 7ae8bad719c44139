"""Human-readable summaries of each action's result."""

from __future__ import annotations

from typing import TYPE_CHECKING

from wyngq.output import Human, format_time, shown

if TYPE_CHECKING:  # for the annotations only: `list` never loads the backup engine
    from wyngq.backup import BackupResult
    from wyngq.listing import ListResult


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
