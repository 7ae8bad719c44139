"""What the Admin API adapter (wyngq.qubes.admin) already knows, and until when.

An answer is reused only while it still holds:

- until the adapter's next write: the last `admin.vm.List` (classes and power
  states) and what was read of each qube (properties, tags, volumes);
- until a qube of that name is created or removed: its class (qubesd changes
  no qube's class) and whether each of its volumes keeps data (`save_on_stop`,
  which no Admin API call changes);
- until the adapter takes the guard tag off, starts the qube, creates or
  removes one of that name: that a qube this adapter gave the guard tag was
  seen halted since. qubesd refuses to start a qube with that tag
  (wyngq.qubes.reserved), so such a qube stays halted, whatever else is
  written meanwhile: a restore's clone needs no power-state call of its own.
  The reading that counts is the latest: a start qubesd had already let
  through when the tag went on can still show "Halted" for a moment (qubesd
  checks the tag before the qube exists for libvirt), so a restore lists the
  qubes again after its Wyng receive (wyngq.restore.data.not_halted), and a qube seen
  running then is no longer known halted.

Nothing here calls qubesd.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from wyngq.model import PropertyValue, QubeClass, Volume


@dataclass(frozen=True)
class Read:
    """What was read of one qube since the last write: its properties, its tags
    when read, and its volumes by kind."""

    properties: dict[str, tuple[bool, PropertyValue]]
    tags: tuple[str, ...] | None = None
    volumes: dict[str, Volume] = field(default_factory=dict)


class Known:
    def __init__(self) -> None:
        self.listed: dict[str, tuple[QubeClass, bool]] = {}  # the last admin.vm.List
        self.read: dict[str, Read] = {}  # what qube(), overview() or settings() read
        self.keeps: dict[tuple[str, str], bool] = {}  # (qube, volume kind) -> save_on_stop
        self.classes: dict[str, QubeClass] = {}  # every qube listed, by name
        self.guarded: set[str] = set()  # given the guard tag by this adapter, not taken off since
        self.halted: set[str] = set()  # of those, seen halted after it was given

    def forget(self) -> None:
        """Before a write: what earlier reads answered may no longer hold."""
        self.listed.clear()
        self.read.clear()

    def drop(self, name: str) -> None:
        """A qube of this name is created or removed: what was known of one is not."""
        self.keeps = {key: keep for key, keep in self.keeps.items() if key[0] != name}
        self.classes.pop(name, None)
        self.guarded.discard(name)
        self.halted.discard(name)

    def made(self, name: str, klass: QubeClass) -> None:
        """This adapter created a qube of this name and class."""
        self.drop(name)
        self.classes[name] = klass

    def listed_as(self, name: str, klass: QubeClass, state: str | None) -> None:
        """`admin.vm.List` said so (`state`: its power state, if it gave one)."""
        self.classes[name] = klass
        self.seen(name, state)

    def seen(self, name: str, state: str | None) -> None:
        """qubesd gave the qube's power state."""
        if state == "Halted" and name in self.guarded:
            self.halted.add(name)
        elif state is not None:
            self.halted.discard(name)

    def guard(self, name: str, on: bool) -> None:
        """This adapter gave (`on`) or took off the guard tag."""
        if on:
            self.guarded.add(name)
        else:
            self.guarded.discard(name)
            self.halted.discard(name)

    def started(self, name: str) -> None:
        self.halted.discard(name)
