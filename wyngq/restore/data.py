"""Moving data: one Wyng receive for every volume, then Admin API imports.

Nothing lost (DESIGN §6, issue 3 item 5). Wyng's `receive` rewrites a volume
file in place, behind qubesd: qubesd keeps no revision of what it overwrote,
and on a corrupt chunk Wyng truncates its output to 0 bytes. So Wyng never
writes a qube's volume. It writes scratch copies (files in
`<pool dir>/.wyngq-restore/`, on the pool's own filesystem, or thin LVs
`wyngq-restore-*` in an lvm_thin pool), and each complete copy is imported
with `import_data_with_size` through the Admin API. qubesd commits an import
like a shutdown: the previous content becomes a volume revision that
`qvm-volume revert QUBE:VOLUME` brings back, and a failed or corrupt receive
leaves the qube's volume as it was. New qubes' volumes go the same way: an
in-place receive would leave qubesd's recorded volume size stale (seen in the
lab: qubes made later from a restored template got the template's old 10 GiB
root size), while an import keeps qubesd's volume config, precache and
revisions consistent on every pool driver.

`--no-keep-previous` only lifts the refusal to replace volumes that keep no
revisions (revisions_to_keep=0); the data path stays the same.

Cost, measured in the lab (real qubesd + Wyng 0.8 rc4, Btrfs pool, unencrypted
archive, shared 2-core machine): an import costs ~0.45-0.55 s per volume plus one
pass over the volume's logical size, ~3.3 ms per MiB of data and ~1.6 ms per MiB
of holes (which stay holes: `dd conv=sparse`); the revision is a reflink, free.
Replacing a qube with a 64 MiB private and a 1 MiB root took 4.4 s in all, of
which the receive 1.8 s and the two imports 0.6 s + 0.45 s
(tests/lab/test_restore_lab.py::test_nothing_lost_cost); a 1 GiB volume holding
16 MiB of data imports in 2.2 s. Space: a scratch copy of each volume's data in
its own pool until that volume is imported (then it is removed).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable, Iterable, Sequence

from wyngq import process
from wyngq.errors import AuthError, BusyError, WyngError
from wyngq.qubes.port import QubesPort
from wyngq.restore.model import VolumePair
from wyngq.restore.plan import SCRATCH_DIR
from wyngq.wyng.runner import Wyng

_RECEIVING = re.compile(r"^Receiving volume '(?P<name>[^']+)'")


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
        match = _RECEIVING.match(text)
        if match:
            self.current = match["name"]
        elif self.current is not None and ": OK" in text:
            self.done.add(self.current)
            self.current = None


def receive(
    wyng: Wyng, pairs: Sequence[VolumePair], session: str, workdir: str, forward: Callable[[str], None] | None = None
) -> dict[str, str]:
    """Receive every pair's archive volume in one Wyng call; return the archive
    volumes that did not arrive, with the reason."""
    prepare_scratch(pairs)
    path = os.path.join(workdir, "restore-volumes.json")
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(local_from(pairs), handle)
    tracker = ReceiveTracker(forward)
    previous = wyng.on_output
    wyng.on_output = tracker
    try:
        run = wyng.receive(local_from=path, session=session)
    except (WyngError, BusyError, AuthError) as err:  # an interruption stops the whole restore instead
        return {p.archive_name: err.message for p in pairs if p.archive_name not in tracker.done}
    finally:
        wyng.on_output = previous
    failed = {name: "Wyng could not receive it" for name in run.failed_volumes}
    for pair in pairs:  # rc 0 is no proof (facts/wyng.md): every volume must have said OK
        if pair.archive_name not in tracker.done and pair.archive_name not in failed:
            failed[pair.archive_name] = "Wyng did not report it received"
    return failed


def prepare_scratch(pairs: Iterable[VolumePair]) -> None:
    """Create the scratch directories (emptied of what a crashed run left)."""
    for directory in sorted({p.store for p in pairs if _is_scratch_dir(p.store)}):
        shutil.rmtree(directory, ignore_errors=True)
        os.makedirs(directory, mode=0o700)


def import_volume(qubes: QubesPort, pair: VolumePair) -> None:
    """Import a received scratch copy into the qube's volume (qubesd keeps the old one)."""
    qubes.import_volume(pair.qube, pair.kind, pair.scratch, pair.size)


def discard_copy(pair: VolumePair) -> bool:
    """Remove one scratch copy; return False if it is still there."""
    if pair.scratch.startswith("/dev/"):
        volume = pair.store.split("/")[0] + "/" + pair.local_name
        done = process.run(["lvremove", "-f", volume])
        return done.returncode == 0 or not os.path.exists(pair.scratch)
    try:
        os.unlink(pair.scratch)
    except FileNotFoundError:
        pass
    except OSError:
        return False
    return True


def discard_scratch(pairs: Iterable[VolumePair]) -> list[str]:
    """Remove scratch copies and directories; return what could not be removed."""
    pairs = list(pairs)
    leftovers = [p.scratch for p in pairs if not discard_copy(p)]
    for directory in sorted({p.store for p in pairs if _is_scratch_dir(p.store)}):
        try:
            os.rmdir(directory)
        except FileNotFoundError:
            pass
        except OSError:
            leftovers.append(directory)
    return leftovers


def _is_scratch_dir(store: str) -> bool:
    return os.path.basename(store) == SCRATCH_DIR
