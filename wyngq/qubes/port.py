"""What wyngq needs from Qubes, in its own words.

The engine sees Qubes only through this protocol. `AdminQubes` implements it
over the Admin API (qubesadmin); the test suite's `FakeQubes` in memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from wyngq.model import DeviceAssignment, LiveQube, Pool, PropertyValue, Qube, QubeClass, QubeSettings, Volume


class QubesPort(Protocol):
    def pools(self) -> Mapping[str, Pool]:
        """Every storage pool, by name."""
        ...

    def list_qubes(self) -> Mapping[str, tuple[QubeClass, bool]]:
        """Every qube but dom0: name -> (class, running)."""
        ...

    def qube(self, name: str) -> Qube:
        """One qube with its volumes; raise QubesError if there is none."""
        ...

    def volumes(self, name: str) -> tuple[Volume, ...]:
        """`qube(name).volumes` alone, read with fewer calls."""
        ...

    def volume(self, name: str, kind: str) -> Volume:
        """The qube's `kind` volume alone (one call); QubesError if it has none."""
        ...

    def settings(self, name: str) -> QubeSettings:
        """Everything a restore needs to put back about `name`, read live: with the
        volumes a restore configures (QubeClass.restored_volumes; not an AppVM's
        `root`, which is its template's)."""
        ...

    def state_files(self, names: Iterable[str]) -> dict[str, bytes]:
        """The files upstream wyng-util-qubes keeps in its settings bundle:
        `qubes.xml` and, for each named qube that has them, `<dir>/NAME/firewall.xml`
        and `notes.txt`, keyed by their path relative to the Qubes directory."""
        ...

    def set_backup_timestamp(self, name: str, when: int) -> None: ...

    def qubes_version(self) -> str:
        """The Qubes release of dom0, e.g. "4.3", or "" if unknown."""
        ...

    def global_prefs(self) -> Mapping[str, tuple[bool, PropertyValue]]:
        """dom0's global properties (`qubes-prefs`): name -> (at its default, value)."""
        ...

    def set_global_pref(self, prop: str, value: str) -> None:
        """Set a global property from qubesd's string form ('' is None for a qube reference)."""
        ...

    # -- what restore needs (every failure raises QubesError naming the qube) ------
    def overview(self) -> Mapping[str, LiveQube]:
        """Every qube but dom0 with its power state, references and capabilities."""
        ...

    def labels(self) -> frozenset[str]: ...

    def default_pool(self) -> str | None:
        """The pool new volumes go to unless told otherwise."""
        ...

    def kernels(self) -> frozenset[str] | None:
        """The kernels installed in dom0, or None if that cannot be told."""
        ...

    def create_qube(
        self, name: str, klass: QubeClass, *, label: str, template: str | None, pool: str | None,
        pools: Mapping[str, str],
    ) -> None:
        """Create a qube; `pool` puts every volume there, else `pools` (volume kind ->
        pool) places the listed ones and the rest go to the default pool."""
        ...

    def set_property(self, name: str, prop: str, value: str) -> None:
        """Set a property from qubesd's string form ('' is None for a qube reference)."""
        ...

    def reset_property(self, name: str, prop: str) -> None: ...

    def set_feature(self, name: str, feature: str, value: str) -> None: ...

    def remove_feature(self, name: str, feature: str) -> None: ...

    def add_tag(self, name: str, tag: str) -> None: ...

    def remove_tag(self, name: str, tag: str) -> None: ...

    def set_firewall(self, name: str, rules: Sequence[str]) -> None:
        """Replace the firewall rules through the Admin API (qubesd's rule lines)."""
        ...

    def set_notes(self, name: str, notes: str) -> None: ...

    def assign_device(self, name: str, device: DeviceAssignment) -> None:
        """Assign persistently: 4.3 keeps mode and device identity, 4.2 a persistent attach."""
        ...

    def unassign_device(self, name: str, device: DeviceAssignment) -> None: ...

    def shutdown(self, name: str) -> None:
        """Shut down gracefully and wait until halted (up to the qube's shutdown_timeout);
        raise QubesError when qubesd refuses (e.g. running clients) or it does not stop."""
        ...

    def kill(self, name: str) -> None: ...

    def start(self, name: str) -> None:
        """Start a halted qube (and what it needs, as qubesd does); QubesError if it will not."""
        ...

    def clone_volume(self, name: str, kind: str, source: str, source_kind: str | None = None) -> None:
        """Replace a halted qube's `kind` volume with the `source_kind` (default:
        the same) volume of qube `source` (admin.vm.volume.CloneFrom/CloneTo: a
        reflink or thin snapshot in the same pool), so qubesd keeps the old
        content as a revision."""
        ...

    def remove_qube(self, name: str) -> None:
        """Remove a halted qube and its volumes (admin.vm.Remove)."""
        ...

    def set_revisions_to_keep(self, name: str, kind: str, count: int) -> None: ...

    def resize_volume(self, name: str, kind: str, size: int) -> None:
        """Set a volume's size, shrinking too (used for `volatile`, which holds no data)."""
        ...

    def revisions(self, name: str, kind: str) -> tuple[str, ...]:
        """The volume's revisions, oldest first (what `qvm-volume revert` offers)."""
        ...
