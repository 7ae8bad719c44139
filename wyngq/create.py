"""Create a new Wyng archive."""

from __future__ import annotations

from dataclasses import dataclass

from wyngq.wyng.commands import InitOptions
from wyngq.wyng.runner import Wyng


@dataclass(frozen=True)
class CreateResult:
    dest: str
    encrypted: bool
    changed: bool = True


def create_archive(wyng: Wyng, options: InitOptions) -> CreateResult:
    """Initialise an archive at the target's destination; Wyng refuses an existing one."""
    wyng.arch_init(options)
    return CreateResult(dest=wyng.target.dest, encrypted=options.encrypt)
