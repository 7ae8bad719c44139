"""Resource bounds measured in the test process: memory by tracemalloc, CPU by getrusage.

Never wall-clock time: the machine is shared, and a bound on usage is what the
hostile-input targets (docs/hostile-input.md) are about.
"""

from __future__ import annotations

import resource
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MIB = 1024 * 1024
# docs/hostile-input.md: no reader may take dom0 past 150 MiB RSS or 10 s of CPU.
# The interpreter, wyngq and pytest take some 40 MiB before any reader starts, so
# a reader's own allocations stay under 100 MiB.
MAX_READER_BYTES = 100 * MIB
MAX_READER_CPU = 10.0


@dataclass(frozen=True)
class Usage:
    peak_bytes: int
    cpu_seconds: float
    error: BaseException | None
    value: Any = None

    def within_reader_bounds(self) -> bool:
        return self.peak_bytes < MAX_READER_BYTES and self.cpu_seconds < MAX_READER_CPU


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(work: Callable[[], Any]) -> Usage:
    """Run `work` once; return its peak Python allocation, its CPU time, and what it raised."""
    tracemalloc.start()
    start = _cpu()
    value: Any = None
    error: BaseException | None = None
    try:
        value = work()
    except Exception as err:  # the caller asserts on which error it was
        error = err
    finally:
        cpu = _cpu() - start
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return Usage(peak, cpu, error, value)
