"""Benchmark part (q) of tests/bench/bench.py: what one Admin API call costs
qubesd as the machine grows.

StandaloneVMs with no data are added until there are 1, 20, 40 and 80 besides
dom0; at each size one qube's `admin.vm.property.GetAll` and `admin.vm.tag.List`
(reads a backup makes for every qube) and its `backup_timestamp` write (after
which qubesd saves the whole qubes.xml) are timed, best of 3. A backup of every
qube makes each of these once per qube, so its floor grows faster than the
number of qubes. Needs no Wyng and no archive; the qubes are removed at the end.
"""

from __future__ import annotations

import time
from typing import Any

SIZES = (1, 20, 40, 80)


def per_call(fn: Any, calls: int) -> float:
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - start) / calls)
    return best


def qubesd_figures(app: Any, prefix: str) -> None:
    print("\n(q) qubesd's own time per Admin API call against the number of qubes (best of 3, one after the other)")
    made: list[str] = []
    try:
        for size in SIZES:
            while len(made) < size:
                name = f"{prefix}-q{len(made):02d}"
                app.qubesd_call("dom0", "admin.vm.Create.StandaloneVM", None, f"name={name} label=red".encode())
                made.append(name)
            first = made[0]
            get_all = per_call(lambda q=first: app.qubesd_call(q, "admin.vm.property.GetAll"), 100)
            tags = per_call(lambda q=first: app.qubesd_call(q, "admin.vm.tag.List"), 100)
            write = per_call(lambda q=first: app.qubesd_call(q, "admin.vm.property.Set", "backup_timestamp",
                                                             str(int(time.time())).encode()), 10)
            print(f"  {size + 1:3d} qubes (dom0 too)   property.GetAll {get_all * 1000:5.2f} ms   tag.List "
                  f"{tags * 1000:5.2f} ms   property.Set backup_timestamp {write * 1000:6.2f} ms")
    finally:
        for name in reversed(made):
            app.qubesd_call(name, "admin.vm.Remove")
