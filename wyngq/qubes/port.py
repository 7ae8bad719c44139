"""What wyngq needs from Qubes, in its own words.

The engine sees Qubes only through this protocol. `AdminQubes` implements it
over the Admin API (qubesadmin); the test suite's `FakeQubes` in memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol

from wyngq.model import Pool, Qube, QubeClass, QubeSettings


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

    def settings(self, name: str) -> QubeSettings:
        """Everything a restore needs to put back about `name`, read live."""
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
