"""Wyng's `monitor` for qubes on lvm_thin pools, between backups.

On lvm_thin Wyng reads what changed from the thin pool's metadata; `monitor`
records those deltas and rotates its snapshots without sending anything, which
upstream recommends to keep thin-pool metadata small between backups. The
scheduled job runs it before pruning. Volumes in file-reflink pools need no
monitoring and are left out; with none on lvm_thin nothing runs.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from wyngq.backup import BackupRequest, plan_backup, select_qubes
from wyngq.contract.maintenance import MonitorPlanned
from wyngq.events import Reporter
from wyngq.model import PoolDriver
from wyngq.qubes.port import QubesPort
from wyngq.wyng.runner import Wyng


@dataclass(frozen=True)
class MonitorResult:
    volumes: tuple[str, ...]  # the lvm_thin volumes Wyng monitored
    skipped: tuple[str, ...] = ()  # selected volumes in other pools

    @property
    def changed(self) -> bool:
        return bool(self.volumes)


def run_monitor(qubes: QubesPort, wyng: Wyng, request: BackupRequest, reporter: Reporter, workdir: str
                ) -> MonitorResult:
    """Run Wyng's monitor over the selected qubes' volumes in lvm_thin pools."""
    names = select_qubes(request, qubes.list_qubes(), lambda n: qubes.qube(n).include_in_backups,
                         lambda n: qubes.qube(n).tags)
    pools = qubes.pools()
    plan = plan_backup([qubes.qube(n) for n in names], pools)
    thin_paths = {p.wyng_path for p in pools.values() if p.driver == PoolDriver.LVM_THIN}
    thin = tuple(v for v in plan.volumes if v.pool_path in thin_paths)
    skipped = tuple(v.local_name for v in plan.volumes if v.pool_path not in thin_paths)
    reporter.event(MonitorPlanned(tuple(v.local_name for v in thin)))
    if not thin:
        return MonitorResult((), skipped)
    document: dict[str, list[list[str | None]]] = {}
    for volume in thin:
        document.setdefault(volume.pool_path, []).append([volume.local_name, None])
    local_from = os.path.join(workdir, "monitor.json")
    with open(local_from, "w", encoding="utf-8") as handle:
        json.dump(document, handle)
    wyng.monitor(local_from=local_from)
    return MonitorResult(tuple(v.local_name for v in thin), skipped)
