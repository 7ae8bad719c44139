"""What qubesd keeps for itself: features a restore never sets or removes.

qubesd's Admin API refuses to set or remove these features (PermissionDenied
from qubesd's admin extension, its `PROHIBITED_FEATURES`); qubesd sets them
itself, e.g. the list of preloaded disposables of a disposable template. A
backup may hold them; a restore leaves them as qubesd has them
(docs/qubes-settings.md).

`preload-dispvm-max` is the user's setting behind preloading: qubesd takes it
only on a qube whose own or whose template's features say it supports qrexec
and the services preloading waits for, so a restore sets it after every
qube's features are in place.

`backup-restore-in-progress` is the one tag qubesd acts on: its backup_restore
extension refuses to start a qube that carries it (`domain-pre-start`), whoever
asks and however (qvm-start, a qrexec call that would start it, a client that
needs it as its netvm). A restore's guard tag (docs/restore-semantics.md).
"""

from __future__ import annotations

GUARD_TAG = "backup-restore-in-progress"

RESERVED_FEATURES = frozenset({
    "deferred-netvm-original",
    "preload-dispvm",
    "preload-dispvm-completed",
    "preload-dispvm-in-progress",
})
PRELOAD_MAX = "preload-dispvm-max"
# the features qubesd checks (on the qube, else its template) before it takes PRELOAD_MAX
PRELOAD_NEEDS = ("qrexec", "supported-rpc.qubes.WaitForRunningSystem", "supported-rpc.qubes.WaitForSession")


def is_reserved_feature(name: str) -> bool:
    """Whether qubesd refuses every change of feature `name` through the Admin API."""
    return name in RESERVED_FEATURES
