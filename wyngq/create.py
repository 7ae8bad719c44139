"""Create a new Wyng archive."""

from __future__ import annotations

from dataclasses import dataclass

from wyngq.wyng.commands import InitOptions
from wyngq.wyng.known import KnownArchive, KnownArchives
from wyngq.wyng.runner import Wyng


@dataclass(frozen=True)
class CreateResult:
    dest: str
    encrypted: bool
    changed: bool = True


def create_archive(wyng: Wyng, options: InitOptions, known_archives: KnownArchives | None = None) -> CreateResult:
    """Initialise an archive at the target's destination; Wyng refuses an existing
    one. The new archive is recorded as empty, so its first backup needs no
    catalogue read (wyngq.wyng.known)."""
    wyng.arch_init(options)
    if known_archives is not None:
        known_archives.put(wyng.target, KnownArchive.empty(wyng.target.executable))
    return CreateResult(dest=wyng.target.dest, encrypted=options.encrypt)
