"""Moving data: one Wyng receive for every volume, then Admin API clones.

Nothing lost (docs/restore-semantics.md). Wyng's `receive` rewrites a volume
file in place, behind qubesd: qubesd keeps no revision of what it overwrote,
and on a corrupt chunk Wyng truncates its output to 0 bytes. So Wyng never
writes a qube's volume. wyngq creates hidden StandaloneVMs (`wyngq-tmp-…`,
tagged `wyngq-restore-scratch`, never started) whose volumes are in the pools
of the restored qubes' volumes: one for each qube with two data volumes
(templates, standalones), and one for every two qubes with one (AppVMs, in the
same pool and session: one in the scratch qube's `private`, the other in its
`root`; qubesd clones any volume into any other). Wyng receives into those
volumes (their files or LVs: Wyng sizes them to the archived size), and each
complete one is cloned into the qube's volume with `admin.vm.volume.CloneFrom`
/ `CloneTo`. qubesd commits a clone like an import or a shutdown: the previous
content becomes a revision that `qvm-volume revert QUBE:VOLUME` brings back,
and a failed or corrupt receive leaves the qube's volume as it was. In a
file-reflink pool the clone is a reflink and in an lvm_thin pool a thin
snapshot, so no data is copied (`ImportWithSize`, used before, piped every
byte through `dd`: ~3.3 ms per MiB). A scratch qube is removed as soon as
its volumes are cloned, and in any case at the end; any left by a crashed run
are removed by the next restore (restores take the operation lock, so none is
another run's).

`--no-keep-previous` only lifts the refusal to replace volumes that keep no
revisions (revisions_to_keep=0); the data path stays the same.

Space: the received data, once, in the volume's own pool (shared with the
qube's volume after a reflink clone or snapshot) until the scratch qube goes.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
from collections.abc import Callable, Iterable, Sequence

from wyngq import process
from wyngq.errors import AuthError, BusyError, QubesError, WyngError
from wyngq.model import QubeClass
from wyngq.qubes.port import QubesPort
from wyngq.restore.model import GUARD_TAG, VolumePair
from wyngq.restore.plan import SCRATCH_PREFIX, SCRATCH_TAG
from wyngq.wyng import snapshots
from wyngq.wyng import text as text_lines
from wyngq.wyng.runner import HEADER, Wyng

SCRATCH_LABEL = "gray"
FICLONE = 0x40049409  # linux/fs.h: _IOW(0x94, 9, int)

log = logging.getLogger(__name__)



def local_from(pairs: Iterable[VolumePair]) -> dict[str, list[list[str | None]]]:
    """Wyng's `--local-from` document: store -> [archive name, local name or None]."""
    doc: dict[str, list[list[str | None]]] = {}
    for pair in pairs:
        alias = pair.local_name if pair.local_name != pair.archive_name else None
        doc.setdefault(pair.store, []).append([pair.archive_name, alias])
    return doc


class ReceiveTracker:
    """Follows Wyng's receive output: which volumes it reported complete."""

    def __init__(self, forward: Callable[[str], None] | None = None) -> None:
        self.done: set[str] = set()
        self.current: str | None = None
        self.forward = forward

    def __call__(self, line: str) -> None:
        if self.forward is not None:
            self.forward(line)
        text = line.strip()
        if HEADER.match(text):  # Wyng's own output starts here; what came before may quote the archive
            self.done.clear()
            self.current = None
            return
        name = text_lines.receiving_volume(text)
        if name is not None:
            self.current = name
        elif self.current is not None and text_lines.received(text):
            self.done.add(self.current)
            self.current = None


def receive(
    wyng: Wyng, pairs: Sequence[VolumePair], session: str, workdir: str, forward: Callable[[str], None] | None = None,
    *, use_snapshot: bool = False,
) -> dict[str, str]:
    """Receive every pair's archive volume in one Wyng call; return the archive
    volumes that did not arrive, with the reason. The scratch qubes are ready."""
    path = os.path.join(workdir, "restore-volumes.json")
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(local_from(pairs), handle)
    tracker = ReceiveTracker(forward)
    previous = wyng.on_output
    wyng.on_output = tracker
    try:
        run = wyng.receive(local_from=path, session=session, use_snapshot=use_snapshot)
    except (WyngError, BusyError, AuthError) as err:  # an interruption stops the whole restore instead
        return {p.archive_name: err.message for p in pairs if p.archive_name not in tracker.done}
    finally:
        wyng.on_output = previous
    failed = {name: "Wyng could not receive it" for name in run.failed_volumes}
    for pair in pairs:  # rc 0 is no proof (docs/facts.md): every volume must have said OK
        if pair.archive_name not in tracker.done and pair.archive_name not in failed:
            failed[pair.archive_name] = "Wyng did not report it received"
    return failed


def prepare_scratch(qubes: QubesPort, pairs: Sequence[VolumePair], made: list[str]) -> dict[str, str]:
    """Create the scratch qubes of `pairs`, their volumes in the pools of the
    qubes' volumes (scratch qubes a crashed run left are removed first), and add
    each to `made` as soon as it exists (so it is removed whatever happens next).
    A scratch qube holds a copy of qubes' data: it carries the guard tag (qubesd
    will not start it) and is left out of backups. Return the restored qubes
    whose scratch qube could not be made, with the reason."""
    failed: dict[str, str] = {}
    groups = _by_scratch_qube(pairs)
    existing = set(qubes.list_qubes()) if groups else set()
    for name in sorted(existing - set(groups) - set(made)):  # a crashed run's, whatever it restored
        if name.startswith(SCRATCH_PREFIX):
            _remove_if_scratch(qubes, name)
    for name, group in groups.items():
        targets = list(dict.fromkeys(p.qube for p in group))
        try:
            if name in existing:
                _remove_leftover(qubes, name)
            pools = {p.slot: p.pool for p in group}
            single = next(iter(pools.values())) if len(set(pools.values())) == 1 else None
            qubes.create_qube(name, QubeClass.STANDALONE, label=SCRATCH_LABEL, template=None, pool=single,
                              pools={} if single else pools)
            made.append(name)
            qubes.add_tag(name, SCRATCH_TAG)
            qubes.add_tag(name, GUARD_TAG)
            qubes.set_property(name, "include_in_backups", "False")
            for pair in group:
                volume = qubes.volume(name, pair.slot)
                if volume.pool != pair.pool or not _is_at(pair, volume.vid):
                    raise QubesError(f"its {pair.slot} volume is not where Wyng is to write it ({pair.local_name})")
                lend_snapshot(pair)
        except QubesError as err:
            failed |= {target: f"cannot prepare the scratch qube {name}: {err.message}" for target in targets}
    return failed


def not_halted(qubes: QubesPort, names: Iterable[str]) -> dict[str, str]:
    """After the receive, one `admin.vm.List` for the power state of every qube
    whose data is to be cloned in; return those not halted, with the reason.
    The guard tag stops any start from then on, but a start qubesd had already
    let through when the tag went on may show "Halted" for a moment and run by
    now; qubesd would clone into a running qube's volume, and its shutdown would
    put the running copy back over the clone. The port's clone relies on this
    reading (wyngq.qubes.known)."""
    names = sorted(names)
    if not names:
        return {}
    try:
        listed = qubes.list_qubes()
    except QubesError as err:
        return {name: f"cannot tell whether it is running: {err.message}" for name in names}
    return {name: "it is gone" if name not in listed else
            "it was started as its restore began, before the guard tag stopped that; its data was not put "
            "in place (shut it down and restore it again)"
            for name in names if name not in listed or listed[name][1]}


def lend_snapshot(pair: VolumePair) -> bool:
    """Give the scratch volume Wyng's snapshot of the volume as last sent to this
    archive, if there is one: a reflink copy with the same mtime (how Wyng pairs a
    snapshot with its own record). With `--use-snapshot` Wyng then starts from it
    and writes only what differs from the session, nothing at all for the newest
    session ("Snapshot retrieved."), instead of every byte. Wyng checks the pairing
    itself; without one it receives in full. The copy is removed with the scratch
    qube (`return_snapshot`)."""
    if not pair.snapshot or not pair.scratch_snapshot:
        return False
    try:
        with open(pair.snapshot, "rb") as source:
            stat = os.fstat(source.fileno())
            with open(pair.scratch_snapshot, "wb") as copy:
                fcntl.ioctl(copy.fileno(), FICLONE, source.fileno())
        os.chmod(pair.scratch_snapshot, stat.st_mode & 0o7777)
        os.utime(pair.scratch_snapshot, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    except OSError as err:  # none, or no reflink here: Wyng receives in full
        if not isinstance(err, FileNotFoundError):
            log.info("not using Wyng's snapshot %s: %s", pair.snapshot, err)
        return_snapshot(pair)
        return False
    return True


def return_snapshot(pair: VolumePair) -> None:
    """Remove the snapshots beside the scratch volume: the lent copy, and the one a
    full receive makes Wyng leave there (wyngq.wyng.snapshots; in an lvm_thin pool
    LVs, which qubesd does not remove with the scratch qube)."""
    if pair.scratch.startswith("/dev/"):
        for lv in snapshots.lvm_snapshots(pair.store.split("/")[0], pair.local_name):
            process.run(["lvremove", "-f", lv])  # absent: lvremove says so and exits non-zero, which is fine
        return
    if pair.scratch_snapshot:
        for path in snapshots.left_by_receive(pair.scratch_snapshot):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)


def clone_volume(qubes: QubesPort, pair: VolumePair) -> None:
    """Clone a received scratch volume into the qube's volume (qubesd keeps the old one)."""
    qubes.clone_volume(pair.qube, pair.kind, pair.scratch_qube, pair.slot)


def discard_scratch(qubes: QubesPort, names: Iterable[str]) -> list[str]:
    """Remove the scratch qubes `names`; return those that could not be removed."""
    leftovers = []
    for name in names:
        try:
            qubes.remove_qube(name)
        except QubesError:
            leftovers.append(name)
    return leftovers


def _remove_leftover(qubes: QubesPort, name: str) -> None:
    """Remove the scratch qube `name` a crashed run left; refuse a qube of that
    name that is not wyngq's."""
    if SCRATCH_TAG not in qubes.qube(name).tags:
        raise QubesError(f"a qube named {name!r} exists and is not a wyngq scratch qube",
                         hint=f"rename or remove {name!r}")
    qubes.remove_qube(name)


def _remove_if_scratch(qubes: QubesPort, name: str) -> None:
    """Remove the qube `name` if it is a scratch qube (a crashed run's); leave
    any other qube alone, and one that cannot be removed for the next run."""
    try:
        if SCRATCH_TAG in qubes.qube(name).tags:
            qubes.remove_qube(name)
    except QubesError as err:
        log.warning("could not remove the scratch qube %s a crashed restore left: %s", name, err.message)


def _by_scratch_qube(pairs: Iterable[VolumePair]) -> dict[str, list[VolumePair]]:
    groups: dict[str, list[VolumePair]] = {}
    for pair in pairs:
        groups.setdefault(pair.scratch_qube, []).append(pair)
    return groups


def _is_at(pair: VolumePair, vid: str) -> bool:
    """Whether the scratch volume `vid` is the file or LV Wyng writes (`local_name`)."""
    return pair.local_name in (f"{vid}.img", vid.split("/")[-1])
