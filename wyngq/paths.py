"""Where wyngq keeps its own state in dom0 (job records, archive records).

`WYNGQ_STATE_DIR` moves it (tests, the lab); in dom0 it is the default."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile

STATE_DIR = "/var/lib/wyng-util-qubes"
STATE_DIR_ENV = "WYNGQ_STATE_DIR"


def state_dir() -> str:
    return os.environ.get(STATE_DIR_ENV) or STATE_DIR


# dom0's own files (docs/dom0.md). Both moves are for tests and the lab only:
# sudo resets the environment, so over qrexec (and in dom0 as a rule) these are
# the defaults.
DOM0_ROOT_ENV = "WYNGQ_DOM0_ROOT"  # where dom0's configuration files are looked for, "/" in dom0
RPM_ENV = "WYNGQ_RPM"  # the rpm program asked which files packages own


def dom0_root() -> str:
    return os.environ.get(DOM0_ROOT_ENV) or "/"


def rpm_program() -> str:
    return os.environ.get(RPM_ENV) or "/usr/bin/rpm"


def restored_config_dir() -> str:
    """Where `restore --dom0-config` puts a session's files by default."""
    return os.path.join(state_dir(), "restored")


def spool_dir() -> str:
    """Where the dom0 streams are written for Wyng and read back: on disk, as a
    home can be larger than the memory /tmp lives in."""
    return os.path.join(state_dir(), "spool")


def write_json_atomically(path: str, data: object) -> None:
    """Write `data` as JSON to `path` so that a reader sees the old file or the
    new one, never a part: a temporary file beside it, then a rename. The
    directory is made (0700) if missing. Raises OSError."""
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=directory, prefix=".wyngq-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
