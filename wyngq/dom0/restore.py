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
from dataclasses import dataclass

from wyngq import paths
from wyngq.contract.events import Dom0RestorePlanned
from wyngq.dom0 import backup as dom0_backup
from wyngq.dom0 import compare, extract, inarchive
from wyngq.dom0.compare import FileState
from wyngq.dom0.user import dom0_user, find_dom0_user
from wyngq.errors import ExitCode, UsageError
from wyngq.events import Reporter
from wyngq.wyng.runner import Wyng

MAX_CONFIG_FILE = 64 * 1024 * 1024


@dataclass(frozen=True)
class Dom0RestoreRequest:
    home: bool = False
    config: bool = False
    session: str | None = None  # an id, "latest" or None (the newest holding the items)
    into: str | None = None
    diff: bool = False

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
class Dom0RestoreResult:
    session: str
    restored: tuple[Dom0Restored, ...]
    authenticated: bool | None

    changed = True

    @property
    def summary(self) -> str:
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


def run_restore(wyng: Wyng, request: Dom0RestoreRequest, reporter: Reporter) -> Dom0RestoreResult:
    """Restore the requested dom0 items of one session beside the live system."""
    if not request.items:
        raise UsageError("nothing to restore", hint="pass --dom0-home and/or --dom0-config")
    if request.into is not None and len(request.items) > 1:
        raise UsageError("--into names one directory: restore dom0 home and config separately")
    archive = wyng.catalog()
    session = inarchive.pick_session(archive, request.items, request.session)
    sizes = {i.item: i for i in inarchive.session_items(archive, session)}
    targets = {item: target_directory(item, session, request.into) for item in request.items}
    reporter.event(Dom0RestorePlanned(session, tuple(request.items), {item: targets[item] for item in request.items}))
    done = []
    with dom0_backup.spool(paths.spool_dir()) as spool:
        for item in request.items:
            stream = os.path.join(spool, f"dom0-{item}.tar")
            wyng.receive_to_file(sizes[item].volume, session, stream)
            try:
                done.append(_restore_item(item, stream, targets[item], sizes[item].size, request.diff))
            finally:
                os.unlink(stream)
    return Dom0RestoreResult(session, tuple(done), archive.authenticated)


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
