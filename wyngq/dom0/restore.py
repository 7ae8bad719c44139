"""Restore dom0's home or configuration, beside the live system, never over it.

- home: into `~/home-restore-<session>/` of the dom0 user (or a new directory
  the caller names), owned by the dom0 user, as qvm-backup-restore does;
- config: into `<state dir>/restored/<session>/` (or a new directory), with
  the owners and modes the files had, and for each file whether it is new,
  equal or different from the live one, a diff on request, and the command
  that would put it in place. Nothing is ever installed over a live file.

The stream is fetched into a spool file and extracted by wyngq.dom0.extract,
which treats it as hostile. Only from dom0: the qrexec service refuses these
items whatever its rules say (wyngq.rpc.request).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from wyngq import paths
from wyngq.contract.restore import Dom0RestorePlanned
from wyngq.dom0 import backup as dom0_backup
from wyngq.dom0 import compare, extract, inarchive
from wyngq.dom0.compare import FileState
from wyngq.dom0.user import dom0_user, find_dom0_user
from wyngq.errors import ExitCode, UsageError
from wyngq.events import Reporter
from wyngq.listing import Dom0Item
from wyngq.wyng.catalog import Archive
from wyngq.wyng.runner import Wyng

MAX_CONFIG_FILE = 64 * 1024 * 1024


@dataclass(frozen=True)
class Dom0RestoreRequest:
    home: bool = False
    config: bool = False
    session: str | None = None  # an id, "latest" or None (the newest holding the items)
    into: str | None = None
    diff: bool = False
    as_of: str | None = None  # with no session: the newest holding the items at or before this one
    dry_run: bool = False

    @property
    def items(self) -> tuple[str, ...]:
        return tuple(item for item, wanted in (("home", self.home), ("config", self.config)) if wanted)


@dataclass(frozen=True)
class Dom0Restored:
    item: str
    directory: str
    owner: str  # who owns the restored files: the dom0 user, or "as in the backup"
    files: int
    data_bytes: int
    config_files: tuple[FileState, ...] = ()


@dataclass(frozen=True)
class Dom0RestorePlan:
    """What a dom0 restore will do: which session, and each item's stream and
    the new directory it goes into."""

    session: str
    items: tuple[Dom0Item, ...]
    into: Mapping[str, str]  # item -> directory


@dataclass(frozen=True)
class Dom0RestoreResult:
    session: str
    restored: tuple[Dom0Restored, ...]
    authenticated: bool | None
    dry_run: bool = False
    into: Mapping[str, str] = field(default_factory=dict)  # item -> directory, planned or restored into

    @property
    def changed(self) -> bool:
        """Whether files were written (in a dry run: whether they would be)."""
        return bool(self.into) if self.dry_run else bool(self.restored)

    @property
    def summary(self) -> str:
        if self.dry_run:
            return "; ".join(f"dom0 {item} of session {self.session} would be restored into {directory}"
                             for item, directory in self.into.items())
        return "; ".join(f"dom0 {r.item} of session {self.session} restored into {r.directory}" for r in self.restored)

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.OK


def target_directory(item: str, session: str, into: str | None) -> str:
    """Where `item` of `session` goes; raise UsageError if it exists already or
    its parent does not."""
    if into is not None:
        target = os.path.abspath(into)
    elif item == "home":
        target = os.path.join(dom0_user().home, f"home-restore-{session}")
    else:
        target = os.path.join(paths.restored_config_dir(), session)
    if os.path.lexists(target):
        raise UsageError(f"{target} exists already; nothing was restored",
                         hint="move it away, or name a new directory with --into")
    if into is not None and not os.path.isdir(os.path.dirname(target)):
        raise UsageError(f"--into: {os.path.dirname(target)} is not a directory")
    return target


def plan_restore(archive: Archive, request: Dom0RestoreRequest) -> Dom0RestorePlan:
    """Which session and directories; raise UsageError (nothing changed) when the
    archive holds no such items or a directory exists already."""
    if not request.items:
        raise UsageError("nothing to restore", hint="pass --dom0-home and/or --dom0-config")
    if request.into is not None and len(request.items) > 1:
        raise UsageError("--into names one directory: restore dom0 home and config separately")
    session = inarchive.pick_session(archive, request.items, request.session, as_of=request.as_of)
    held = {i.item: i for i in inarchive.session_items(archive, session)}
    return Dom0RestorePlan(session, tuple(held[item] for item in request.items),
                           {item: target_directory(item, session, request.into) for item in request.items})


def run_restore(wyng: Wyng, request: Dom0RestoreRequest, reporter: Reporter,
                archive: Archive | None = None) -> Dom0RestoreResult:
    """Restore the requested dom0 items of one session beside the live system
    (`archive`: the catalogue, when the caller has just read it)."""
    archive = archive if archive is not None else wyng.catalog()
    plan = plan_restore(archive, request)
    reporter.event(Dom0RestorePlanned(plan.session, tuple(request.items), dict(plan.into), request.dry_run))
    if request.dry_run:
        return Dom0RestoreResult(plan.session, (), archive.authenticated, dry_run=True, into=plan.into)
    return Dom0RestoreResult(plan.session, carry_out(wyng, plan, request.diff), archive.authenticated,
                             into=plan.into)


def carry_out(wyng: Wyng, plan: Dom0RestorePlan, diff: bool = False) -> tuple[Dom0Restored, ...]:
    """Fetch each item's stream into the spool and extract it into its directory."""
    done = []
    with dom0_backup.spool(paths.spool_dir()) as spool:
        for item in plan.items:
            stream = os.path.join(spool, f"dom0-{item.item}.tar")
            wyng.receive_to_file(item.volume, plan.session, stream)
            try:
                done.append(_restore_item(item.item, stream, plan.into[item.item], item.size, diff))
            finally:
                os.unlink(stream)
    return tuple(done)


def _restore_item(item: str, stream: str, target: str, size: int, diff: bool) -> Dom0Restored:
    size = max(size, os.path.getsize(stream))
    if item == "home":
        user = find_dom0_user()
        owner = extract.fixed_owner(user.uid, user.gid) if user is not None else extract.from_stream
        limits = extract.Limits(max_member=size, max_total=size, max_members=size // 512)
        extracted = extract.extract(stream, target, limits, owner, keep=False)
        return Dom0Restored(item, target, user.name if user else "as in the backup",
                            extracted.files, extracted.data_bytes)
    os.makedirs(os.path.dirname(target), mode=0o700, exist_ok=True)
    extracted = extract.extract(stream, target, extract.Limits(max_member=MAX_CONFIG_FILE, max_total=size))
    states = compare.compare(extracted.members, target, paths.dom0_root(), diff=diff)
    return Dom0Restored(item, target, "as in the backup", extracted.files, extracted.data_bytes, tuple(states))
