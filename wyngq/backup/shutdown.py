"""`backup --shutdown`: stop running qubes for a fresh backup, start them again.

A running qube is backed up as it was at its last start (file-reflink keeps
that state; lvm_thin its snapshot), and one whose volumes keep no snapshots
(`revisions_to_keep = -1`) cannot be backed up at all while it runs. With
`--shutdown` the named running qubes are shut down gracefully first; qubes
that depend on them (network clients, disposables of a disposable template,
qubes using them as audio or GUI qube) only when asked, else the backup is
refused before anything stops. Exactly the qubes it shut down are started
again afterwards, whatever happened in between: success, failure or an
interruption.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from wyngq.contract.events import QubeShutDown, QubeStarted
from wyngq.errors import QubesError, UsageError
from wyngq.events import Reporter
from wyngq.model import LiveQube
from wyngq.qubes.port import QubesPort


@dataclass
class Stopped:
    """What a shutdown for a backup did: the qubes it stopped (in order) and the
    ones it started again, plus what went wrong starting them."""

    stopped: list[str] = field(default_factory=list)
    started: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def shutdown_order(selected: Sequence[str], live: Mapping[str, LiveQube], dependants: bool) -> tuple[str, ...]:
    """The qubes to stop, each after every running qube that depends on it.
    Raise UsageError naming the running dependants when `dependants` is False."""
    # the restore package's model of the running system: loaded only when a backup shuts qubes down
    from wyngq.restore.model import LiveSystem
    from wyngq.restore.resolve import running_dependants

    order: list[str] = []
    blocked: dict[str, tuple[str, ...]] = {}
    system = LiveSystem(qubes=live)
    for name in selected:
        qube = live.get(name)
        if qube is None or not qube.running:
            continue
        users = running_dependants(name, system)
        if users and not dependants:
            blocked[name] = users
            continue
        order += [n for n in (*users, name) if n not in order]
    if blocked:
        text = "; ".join(f"{name}: {', '.join(users)}" for name, users in sorted(blocked.items()))
        raise UsageError(f"running qubes depend on qubes to shut down ({text})",
                         hint="pass --shutdown-dependants to shut them down too, or shut them down yourself")
    return tuple(order)


@contextlib.contextmanager
def stopped_for_backup(qubes: QubesPort, order: Sequence[str], reporter: Reporter) -> Iterator[Stopped]:
    """Shut down `order` gracefully, one by one; on leaving, whatever the reason,
    start again exactly the qubes that were stopped, the last stopped first (a
    netvm before its clients). A qube that will not stop refuses the backup
    (QubesError), after restarting the ones already stopped."""
    done = Stopped()
    try:
        for name in order:
            reporter.event(QubeShutDown(name))
            try:
                qubes.shutdown(name)
            except QubesError as err:
                raise QubesError(f"could not shut down {name!r} for the backup: {err.message}",
                                 hint="shut it down yourself, or back it up while it runs (without --shutdown)"
                                 ) from err
            done.stopped.append(name)
        yield done
    finally:
        _start_again(qubes, done, reporter)


def _start_again(qubes: QubesPort, done: Stopped, reporter: Reporter) -> None:
    for name in reversed(done.stopped):
        if name in done.started:
            continue
        reporter.event(QubeStarted(name))
        try:
            qubes.start(name)
        except QubesError as err:
            done.warnings.append(f"could not start {name} again: {err.message}; start it with `qvm-start {name}`")
            continue
        done.started.append(name)
