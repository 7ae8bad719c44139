"""Where wyngq's own time goes in a run: each phase's duration, at debug level.

`with phases.phase("settings"):` around a step logs `phase settings: 12.3 ms`
on the `wyngq.phases` logger when that logger is enabled for debug: with `-vv`,
or with WYNGQ_PHASE_TIMES=1 in the environment (which enables only these
lines; tests/bench/bench.py uses it for its phase profile). Off, a phase costs
one level check: nothing is timed or formatted.

`startup()` logs the time from the moment the `wyngq` package was imported
(interpreter start-up itself comes before that: docs/benchmarks.md measures it).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator

import wyngq

log = logging.getLogger("wyngq.phases")
ENV = "WYNGQ_PHASE_TIMES"


def enable_from_environment() -> None:
    """Turn the phase lines on when WYNGQ_PHASE_TIMES=1 (they then reach the
    stderr handler whatever the other loggers' level)."""
    if os.environ.get(ENV, "").strip() == "1":
        log.setLevel(logging.DEBUG)


@contextlib.contextmanager
def phase(name: str) -> Iterator[None]:
    if not log.isEnabledFor(logging.DEBUG):
        yield
        return
    started = time.perf_counter()
    try:
        yield
    finally:
        log.debug("phase %s: %.1f ms", name, (time.perf_counter() - started) * 1000)


def startup() -> None:
    """Log the time since the `wyngq` package was imported: imports and parsing."""
    if log.isEnabledFor(logging.DEBUG):
        log.debug("phase start-up: %.1f ms", (time.perf_counter() - wyngq.IMPORTED_AT) * 1000)
