"""Where wyngq keeps its own state in dom0 (job records, archive records).

`WYNGQ_STATE_DIR` moves it (tests, the lab); in dom0 it is the default."""

from __future__ import annotations

import os

STATE_DIR = "/var/lib/wyng-util-qubes"
STATE_DIR_ENV = "WYNGQ_STATE_DIR"


def state_dir() -> str:
    return os.environ.get(STATE_DIR_ENV) or STATE_DIR
