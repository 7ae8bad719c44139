"""Which files packages own, asked of rpm (never guessed).

One call, `rpm -qa --queryformat='[%{FILENAMES}\\n]'`, lists every file of
every installed package; a file not in that list is one no package owns. The
program path is a parameter so that tests replace rpm at this boundary with a
fake program (tests/fakes/fake_rpm.py).
"""

from __future__ import annotations

from collections.abc import Iterable

from wyngq import process
from wyngq.errors import ConfigError

RPM = "/usr/bin/rpm"
QUERY = ("-qa", "--queryformat=[%{FILENAMES}\\n]")


def owned_files(under: Iterable[str], rpm: str = RPM) -> frozenset[str]:
    """The files packages own beneath any of the directories `under` (absolute
    paths as rpm records them). Raise ConfigError if rpm fails."""
    prefixes = tuple(p.rstrip("/") + "/" for p in under)
    done = process.run([rpm, *QUERY])
    if done.returncode != 0:
        last = done.stderr.strip().splitlines()[-1:] or [f"exit status {done.returncode}"]
        raise ConfigError(f"cannot ask rpm which files packages own: {last[0]}",
                          hint="check that `rpm -qa` works in dom0")
    return frozenset(line for line in done.stdout.splitlines() if line.startswith(prefixes))
