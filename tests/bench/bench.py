#!/usr/bin/env python3
"""Benchmarks: wyngq against bare Wyng on the same data, in the lab.

Prints figures; asserts nothing. Run as root with the lab up:

    lab up && eval "$(lab env)"    # the lab: docs/development.md
    flock /tmp/wyngq-wyng.lock python3 -m tests.bench.bench [--runs 3] [--size-mib 1024] [--only a,b,c,u]
    flock /tmp/wyngq-wyng.lock python3 -m tests.bench.bench --runs 5 --scale-mib 128,512,1024

(a) backup / restore wall time of wyng-util-qubes vs bare `wyng send` /
    `wyng receive` of the same volumes, full and incremental: ratio and the
    constant cost (ours minus bare).
(o) wyngq's own time in a backup: the backup's wall time less the time spent in
    Wyng, which a wrapper around the Wyng executable logs; for the 4 qubes of
    (a) and for 40 small qubes (one Wyng call each time), with the Admin API
    calls of one backup counted at the qubesd socket, the phases of one backup
    (WYNGQ_PHASE_TIMES=1: wyngq.phases) and Python's own start-up beside them.
    With `--before REF`, the same for wyngq as it was at git REF, taking turns
    with this tree in the same run (also in (c)). Then the floor: qubesd's own
    time for that backup's calls, replayed one after the other and from 4
    threads, plus Python's start-up with qubesadmin: no wrapper goes below it.
(b) Admin API calls per restored qube, counted at the qubesd socket (a
    counting proxy in front of it): a restore over changed settings and one
    where nothing changed.
(c) `list` of a large archive: wyngq's own time (parsing and indexing
    Wyng's JSON) for hundreds of sessions and tens of qubes, and the real
    Wyng `--json list` time on the benchmark archive for comparison.
(s) with --scale-mib 128,512,1024: (a)'s full backup at several sizes, and the
    overhead fitted as a constant cost plus a share per GiB.
(d) dom0's home in a backup (tests/bench/dom0.py): the archive's growth from a
    second backup of a 200 MiB home with 1 % of its files changed, with Wyng's
    dedup on and off, and the backup's extra time (`--only d`).
(u) upstream wyng-util-qubes on the same qubes in the same run (tests/bench/
    upstream.py says how it runs in the lab): its backup and restore wall
    times beside ours, and its Admin API calls per restored qube.
(q) qubesd's own cost per Admin API call with 1, 20, 40 and 80 qubes
    (tests/bench/qubesd.py): a read and a `backup_timestamp` write. Not in the
    default --only; `--only q`.
(r) whole-machine recovery: `restore --all` of 40 qubes backed up over 10
    sessions, every qube removed and a fresh Wyng meta dir, against bare
    `wyng receive` of the same volumes (one call per session, fresh meta dir
    too): ratio, the cost per qube, and Admin API calls per qube. Not in the
    default --only; `--only r [--recovery-qubes 40 --recovery-sessions 10]`.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
MIB = 1024 * 1024
SETTLE_SECONDS = 2.0


def env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        sys.exit(f"bench: {name} is not set; load the lab environment: eval \"$(lab env)\" (docs/development.md)")
    return value


def timed(fn: Callable[[], Any]) -> float:
    """Wall time of `fn`, started with no dirty pages left by the previous run and a
    pause for the filesystem's own background work (either would otherwise slow
    whichever contender comes next; the contenders also take turns going first)."""
    os.sync()
    time.sleep(SETTLE_SECONDS)
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


class Bench:
    def __init__(self, size_mib: int, runs: int, before: str | None = None) -> None:
        import qubesadmin

        self.app = qubesadmin.Qubes()
        self.size = size_mib * MIB
        self.runs = runs
        self.prefix = "b" + uuid.uuid4().hex[:5]
        self.wyng = env("WYNGQ_LAB_WYNG")
        self.meta = env("WYNGQ_LAB_WYNG_META_DIR")
        # on the pools' Btrfs image: the lab's archive image (2 GiB) is too small for
        # two 1 GiB archives; Wyng reads the same either way
        self.archives = Path(env("WYNGQ_LAB_BTRFS_MNT")) / "bench-archives" / self.prefix
        self.archives.mkdir(parents=True)
        self.work = Path(tempfile.mkdtemp(prefix="wyngq-bench-"))
        self.made: list[str] = []
        self.ours: dict[str, float] = {}  # our medians, for the comparison with upstream
        # the wyngq trees compared: this checkout, and with --before a copy of git REF
        self.trees: dict[str, Path] = {"after": ROOT} if before is None else {
            "before": export_tree(before, self.work / "before"), "after": ROOT}

    # -- setup --------------------------------------------------------------
    def make_qubes(self) -> list[str]:
        """A template and three AppVMs holding `size` bytes of random data in all."""
        tpl = self._create("tpl", "TemplateVM")
        names = [tpl.name]
        shares = {("tpl", "root"): 0.4, ("tpl", "private"): 0.05}
        apps = []
        for i in range(3):
            vm = self._create(f"app{i}", "AppVM", template=tpl)
            apps.append(vm)
            names.append(vm.name)
            shares[(f"app{i}", "private")] = 0.55 / 3
        for (short, kind), share in shares.items():
            vm = self.app.domains[f"{self.prefix}-{short}"]
            data = os.urandom(int(self.size * share) // 4096 * 4096)
            vm.volumes[kind].import_data_with_size(io.BytesIO(data), len(data))
        return names

    def _create(self, short: str, klass: str, **kwargs: Any) -> Any:
        vm = self.app.add_new_vm(klass, name=f"{self.prefix}-{short}", label="red", **kwargs)
        self.made.append(vm.name)
        return vm

    def change_some_data(self, names: list[str], mib: int = 8) -> None:
        vm = self.app.domains[names[1]]
        path = Path(env("WYNGQ_LAB_POOL_DIR")) / f"{vm.volumes['private'].vid}.img"
        with open(path, "r+b") as handle:
            handle.seek(MIB)
            handle.write(os.urandom(mib * MIB))

    def cleanup(self) -> None:
        self.app.domains.refresh_cache(force=True)
        for name in reversed(self.made):
            if name in self.app.domains:
                del self.app.domains[name]
        shutil.rmtree(self.archives, ignore_errors=True)
        shutil.rmtree(self.work, ignore_errors=True)

    # -- the two contenders ---------------------------------------------------
    def wyngq(self, dest: str, *args: str, wyng: str | None = None, meta: str | None = None,
              tree: str = "after", extra_env: dict[str, str] | None = None,
              drop_env: tuple[str, ...] = ()) -> dict[str, Any]:
        argv = [sys.executable, "-m", "wyngq", f"--dest={dest}", f"--wyng={wyng or self.wyng}",
                f"--meta-dir={meta or self.meta}", "--json", *args]
        # byte-compiled once, as an installed package is (its .pyc files ship with it)
        environ = {**os.environ, "WYNGQ_LOCK_PATH": str(self.work / "lock"),
                   "PYTHONPYCACHEPREFIX": str(self.work / "pycache"), **(extra_env or {})}
        for name in ("PYTHONDONTWRITEBYTECODE", *drop_env):
            environ.pop(name, None)
        done = subprocess.run(argv, capture_output=True, text=True, cwd=self.trees[tree], stdin=subprocess.DEVNULL,
                              env=environ)
        result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
        if done.returncode != 0:
            raise RuntimeError(f"wyngq {args}: {result}")
        self.last_stderr = done.stderr
        return result

    def bare(self, dest: str, *args: str) -> None:
        argv = [self.wyng, f"--dest={dest}", f"--meta-dir={self.meta}", "-u", "--authmin=0", "--config=/dev/null",
                *args]
        subprocess.run(argv, check=True, capture_output=True, stdin=subprocess.DEVNULL)

    def local_from(self, names: list[str]) -> str:
        """The same volumes wyngq sends, as a --local-from file for bare Wyng."""
        pool = env("WYNGQ_LAB_POOL_DIR")
        vols = []
        for name in names:
            vm = self.app.domains[name]
            for kind in ("root", "private") if vm.klass == "TemplateVM" else ("private",):
                vols.append([f"{vm.volumes[kind].vid}.img", None])
        path = self.work / "bare-volumes.json"
        path.write_text(json.dumps({pool: vols}))
        return str(path)

    # -- (a) ---------------------------------------------------------------------
    def backup_times(self, names: list[str]) -> dict[str, dict[str, float]]:
        """wyngq's backup against bare `wyng send` of the same volumes, and against the
        same send with the settings volume and tag wyngq adds (`bare+settings`): what
        Wyng spends on the settings volume, and what is wyngq's own."""
        print(f"\n(a) backup: {len(names)} qubes, {self.size // MIB} MiB of random data, unencrypted archives,"
              f" median of {self.runs} runs")
        local_from = self.local_from(names)
        settings = self.work / "settings.tgz"
        settings.write_bytes(os.urandom(16 * 1024))  # about the size of the settings bundle of 4 qubes
        contenders = ("bare", "meta", "ours")
        rows: dict[str, dict[str, list[float]]] = {kind: {c: [] for c in contenders} for kind in ("full", "incr")}
        for run in range(self.runs):
            dests = {c: f"file:{self.archives}/{c}-{run}.wyng" for c in contenders}
            for contender in contenders:
                (self.archives / f"{contender}-{run}.wyng").mkdir()
            self.wyngq(dests["ours"], "create", "--encrypt=off")
            self.bare(dests["bare"], "--encrypt=off", "arch-init")
            self.bare(dests["meta"], "--encrypt=off", "arch-init")
            sends = self.sends(dests, local_from, settings, names)
            order = contenders[run % 3:] + contenders[:run % 3]  # each goes first once in 3 runs
            for contender in order:
                rows["full"][contender].append(timed(sends[contender]))
            self.change_some_data(names)
            time.sleep(1.1)  # session ids have one-second resolution
            for contender in order:
                rows["incr"][contender].append(timed(sends[contender]))
            for contender in contenders:
                shutil.rmtree(self.archives / f"{contender}-{run}.wyng")
        medians = {kind: {c: median(times) for c, times in row.items()} for kind, row in rows.items()}
        for kind, label in (("full", "full backup"), ("incr", "incremental, 8 MiB changed")):
            ours_t, meta_t, bare_t = (medians[kind][c] for c in ("ours", "meta", "bare"))
            self.ours[f"{kind}_backup_s"] = ours_t
            print(f"  {label:<28} wyngq {ours_t:6.2f} s   bare send {bare_t:6.2f} s   ratio {ours_t / bare_t:5.2f}"
                  f"   constant cost {ours_t - bare_t:+.2f} s")
            goal = "" if kind == "full" else f"; target <= 1.10: {'met' if ours_t / meta_t <= 1.10 else 'NOT met'}"
            print(f"  {'':<28} bare send with the settings volume {meta_t:6.2f} s: Wyng's part "
                  f"{meta_t - bare_t:+.2f} s, wyngq's own {ours_t - meta_t:+.2f} s (ratio {ours_t / meta_t:.2f}{goal})")
        return medians

    def sends(self, dests: dict[str, str], local_from: str, settings: Path, names: list[str]
              ) -> dict[str, Callable[[], None]]:
        def bare() -> None:
            self.bare(dests["bare"], f"--local-from={local_from}", "--send-unchanged", "send")

        def meta() -> None:
            self.bare(dests["meta"], f"--local-from={local_from}", "--send-unchanged", "--tag=qubes",
                      f"--import-other-from=wyng-qubes-metadata:|:{settings}", "send")

        def ours() -> None:
            self.wyngq(dests["ours"], "backup", *names)

        return {"bare": bare, "meta": meta, "ours": ours}

    # -- (o) ---------------------------------------------------------------------
    def make_small_qubes(self, count: int) -> list[str]:
        """A template and `count - 1` AppVMs of 4 MiB each: the 40-qube case of (o)."""
        tpl = self._create("many-tpl", "TemplateVM")
        names = [tpl.name]
        for i in range(count - 1):
            vm = self._create(f"many{i:02d}", "AppVM", template=tpl)
            names.append(vm.name)
            data = os.urandom(4 * MIB)
            vm.volumes["private"].import_data_with_size(io.BytesIO(data), len(data))
        return names

    def timing_wrapper(self) -> tuple[Path, Path]:
        """A wrapper around the real Wyng that logs when each call starts and ends."""
        log, wrapper = self.work / "wyng-spans", self.work / "timed-wyng"
        # bash's own clock: no `date` process on either side of the call, which would count as wyngq's time
        wrapper.write_text(
            "#!/bin/bash\n"
            f"start=$EPOCHREALTIME; {self.wyng} \"$@\"; rc=$?\n"
            f"echo \"$start $EPOCHREALTIME\" >> {log}; exit $rc\n"
        )
        wrapper.chmod(0o755)
        return log, wrapper

    def own_times(self, names: list[str], label: str, target: float, startup: dict[str, float]) -> None:
        """wyngq's own time in a backup, without Wyng's: a wrapper around the real Wyng
        logs when each Wyng call starts and ends, so what is left of the backup's wall
        time is wyngq's (before the first call, between, after the last). Free of the
        run-to-run noise of Wyng itself, which the differences in (a) carry. Each tree
        (this one, and --before's) backs up its own archive of the same qubes, taking
        turns, with the same data changed before each backup."""
        log, wrapper = self.timing_wrapper()
        dests = {}
        for tree in self.trees:
            archive = self.archives / f"own-{len(names)}-{tree}.wyng"
            archive.mkdir()
            dests[tree] = f"file:{archive}"
            # the archive record names this executable
            self.wyngq(dests[tree], "create", "--encrypt=off", wyng=str(wrapper), tree=tree)
        print(f"\n(o) wyngq's own time in a backup of {len(names)} qubes ({label}), Wyng's calls "
              f"timed by a wrapper; first the full backup, then {self.runs} incremental ones"
              + (f"; trees {' and '.join(self.trees)} taking turns" if len(self.trees) > 1 else ""))
        owns: dict[str, list[float]] = {tree: [] for tree in self.trees}
        ratios: dict[str, list[float]] = {tree: [] for tree in self.trees}
        order = list(self.trees)
        for run in range(self.runs + 1):
            for tree in order[run % len(order):] + order[:run % len(order)]:
                if run:
                    self.change_some_data(names, mib=1)
                    time.sleep(1.1)  # session ids have one-second resolution
                log.unlink(missing_ok=True)
                total = timed(lambda t=tree: self.wyngq(dests[t], "backup", *names, wyng=str(wrapper), tree=t))
                spans = [tuple(map(float, line.split())) for line in log.read_text().splitlines()]
                in_wyng = sum(end - start for start, end in spans)
                if run:
                    owns[tree].append(total - in_wyng)
                    ratios[tree].append(total / in_wyng)
                print(f"  {tree:<7} {'full' if not run else 'incremental':<12} total {total:6.2f} s   in Wyng "
                      f"({len(spans)} call{'s' if len(spans) != 1 else ''}) {in_wyng:6.2f} s   "
                      f"wyngq's own {total - in_wyng:5.2f} s")
        for tree, values in owns.items():
            print(f"  {tree:<7} wyngq's own time, median of the incremental backups: {median(values):.2f} s "
                  f"(range {min(values):.2f}-{max(values):.2f} s; target <= {target:.2f} s: "
                  f"{'met' if median(values) <= target else 'NOT met'}); "
                  f"{median(values) / len(names) * 1000:.1f} ms per qube, "
                  f"ratio to its Wyng call (the send with the settings volume) {median(ratios[tree]):.2f}")
        self.change_some_data(names, mib=1)
        time.sleep(1.1)
        self.wyngq(dests["after"], "backup", *names, wyng=str(wrapper), extra_env={"WYNGQ_PHASE_TIMES": "1"})
        print("  phases of one more incremental backup (this tree, WYNGQ_PHASE_TIMES=1): "
              + ", ".join(phase_lines(self.last_stderr)))
        for tree in self.trees:
            self.change_some_data(names, mib=1)
            time.sleep(1.1)
            with counting_proxy(os.environ["QUBESD_SOCKET"], self.work) as (proxy, calls):
                saved = os.environ["QUBESD_SOCKET"]
                os.environ["QUBESD_SOCKET"] = proxy
                try:
                    self.wyngq(dests[tree], "backup", *names, wyng=str(wrapper), tree=tree)
                finally:
                    os.environ["QUBESD_SOCKET"] = saved
            print_calls(f"one incremental backup ({tree})", list(calls), len(names))
            if tree == "after":
                qubesd_floor(self.app, list(calls), startup, target)

    # -- (c) ---------------------------------------------------------------------
    def list_times(self, sessions: int = 400, qubes: int = 40) -> None:
        from wyngq.listing import qube_sessions
        from wyngq.wyng.catalog import parse_list_output

        text = synthetic_listing(sessions, qubes)
        loops = 5
        own = median([timed(lambda: qube_sessions(parse_list_output(text))) for _ in range(loops)])
        print(f"\n(c) list: wyngq's own time on a catalogue of {sessions} sessions x {qubes} qubes "
              f"({len(text) // 1024} KiB of JSON): {own * 1000:.0f} ms (median of {loops})")
        archives = sorted(self.archives.glob("own-40-after.wyng"))
        if not archives:  # (o) did not run: its 40-qube archive, whose record names the timing wrapper, is missing
            return
        dest = f"file:{archives[-1]}"
        log, wrapper = self.timing_wrapper()
        runs = max(self.runs, 5)
        times: dict[str, list[float]] = {"bare": [], **{tree: [] for tree in self.trees}}
        owns: dict[str, list[float]] = {tree: [] for tree in self.trees}
        for run in range(runs):
            contenders = list(times)
            for who in contenders[run % len(contenders):] + contenders[:run % len(contenders)]:
                if who == "bare":
                    times["bare"].append(timed(lambda: self.bare(dest, "--json", "list")))
                    continue
                log.unlink(missing_ok=True)
                # `list` never talks to qubesd: without QUBESD_SOCKET the lab's start-up shim does not
                # import qubesadmin into it either, as nothing does in dom0
                times[who].append(timed(lambda t=who: self.wyngq(dest, "list", wyng=str(wrapper), tree=t,
                                                                 drop_env=("QUBESD_SOCKET",))))
                owns[who].append(times[who][-1] - sum(float(b) - float(a) for a, b in
                                                      (line.split() for line in log.read_text().splitlines())))
        bare = median(times["bare"])
        for tree in self.trees:
            ours, own_t = median(times[tree]), median(owns[tree])
            print(f"  real archive {archives[-1].name} ({tree}): wyngq list {ours:.3f} s, wyngq's own {own_t:.3f} s "
                  f"(target <= 0.100 s: {'met' if own_t <= 0.1 else 'NOT met'}), bare `wyng --json list` "
                  f"{bare:.3f} s, ratio {ours / bare:.2f} (target <= 1.20: "
                  f"{'met' if ours / bare <= 1.2 else 'NOT met'}; median of {runs})")
        self.wyngq(dest, "list", wyng=str(wrapper), drop_env=("QUBESD_SOCKET",), extra_env={"WYNGQ_PHASE_TIMES": "1"})
        print("  phases of one more list (this tree): " + ", ".join(phase_lines(self.last_stderr)))


def phase_lines(stderr: str) -> list[str]:
    """`phase NAME: T ms` lines of a run with WYNGQ_PHASE_TIMES=1, as `NAME T ms`."""
    return [line.split("phase ", 1)[1].replace(":", "") for line in stderr.splitlines() if ": phase " in line]


def startup_floor() -> dict[str, float]:
    """Python's own start-up on this machine, which every wyngq run pays before any of its code:
    the bare interpreter, and with qubesadmin imported (outside the lab's start-up shim, which
    imports qubesadmin into every Python process that has QUBESD_SOCKET set)."""
    environ = {k: v for k, v in os.environ.items() if k not in ("QUBESD_SOCKET", "PYTHONDONTWRITEBYTECODE")}
    environ["PYTHONPYCACHEPREFIX"] = tempfile.mkdtemp(prefix="wyngq-bench-pyc-")
    figures = []
    seconds: dict[str, float] = {}
    for label, code in (("python3 -c pass", "pass"), ("import qubesadmin", "import qubesadmin"),
                        ("import wyngq.cli", "import wyngq.cli")):
        def run(code: str = code) -> None:
            subprocess.run([sys.executable, "-c", code], check=True, env=environ, cwd=ROOT)

        run()  # byte-compile first
        times = []
        for _ in range(7):
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
        figures.append(f"{label} {median(times) * 1000:.0f} ms")
        seconds[label] = median(times)
    shutil.rmtree(environ["PYTHONPYCACHEPREFIX"], ignore_errors=True)
    print("\nPython start-up on this machine (median of 7, byte-compiled): " + ", ".join(figures))
    return seconds


def qubesd_floor(app: Any, seen: list[bytes], startup: dict[str, float], target: float) -> None:
    """What no wrapper can go below: qubesd's own time for the calls one backup made
    (`seen`, recorded by the counting proxy), replayed from this process one after
    the other and from 4 threads at once (qubesd answers on one event loop, and
    saves the whole qubes.xml after every property write), plus Python's start-up
    with qubesadmin imported. Reads are replayed as they were; each write was a
    `backup_timestamp` and is written again with the time now."""
    from concurrent.futures import ThreadPoolExecutor

    def replay(header: bytes) -> None:
        method_arg, _source, _name_keyword, dest = header.decode().split(" ")[:4]  # METHOD+ARG dom0 name DEST
        method, _, arg = method_arg.partition("+")
        if is_write(header):
            app.qubesd_call(dest, "admin.vm.property.Set", "backup_timestamp", str(int(time.time())).encode())
        else:
            app.qubesd_call(dest, method, arg or None)

    def run_all(calls: list[bytes], threads: int) -> float:
        start = time.perf_counter()
        if threads == 1:
            for header in calls:
                replay(header)
        else:
            with ThreadPoolExecutor(threads) as pool:
                list(pool.map(replay, calls))
        return time.perf_counter() - start

    reads = [h for h in seen if not is_write(h)]
    writes = [h for h in seen if is_write(h)]
    figures = {(kind, threads): min(run_all(calls, threads) for _ in range(3))
               for kind, calls in (("reads", reads), ("writes", writes)) for threads in (1, 4)}
    python = startup.get("import qubesadmin", 0.0)
    floor = python + min(figures["reads", 1], figures["reads", 4]) + min(figures["writes", 1], figures["writes", 4])
    print(f"  qubesd alone, this backup's calls replayed (best of 3): {len(reads)} reads "
          f"{figures['reads', 1] * 1000:.0f} ms (4 threads: {figures['reads', 4] * 1000:.0f} ms), "
          f"{len(writes)} backup_timestamp writes {figures['writes', 1] * 1000:.0f} ms "
          f"(4 threads: {figures['writes', 4] * 1000:.0f} ms); with Python's start-up and qubesadmin's "
          f"import ({python * 1000:.0f} ms) the floor of wyngq's own time is {floor:.2f} s "
          f"(target <= {target:.2f} s: {'below the floor' if floor > target else 'above the floor'})")


def export_tree(ref: str, into: Path) -> Path:
    """The wyngq package as it was at git `ref`, in a directory of its own (for --before)."""
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "wyngq"], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def synthetic_listing(sessions: int, qubes: int) -> str:
    """A `wyng --json list` output shaped like the real one (fixtures), large."""
    ids = [time.strftime("%Y%m%d-%H%M%S", time.gmtime(1_700_000_000 + i * 86400)) for i in range(sessions)]
    volumes: dict[str, Any] = {}
    names = [f"appvms/q{i:03d}/private.img" for i in range(qubes)] + ["wyng-qubes-metadata"]
    for n, name in enumerate(names):
        volumes[name] = {
            "vid": f"Vol_{n:06x}", "desc": "", "last": f"S_{ids[-1]}", "ts": 1,
            "sessions": {f"S_{s}": {"volsize": 1 << 30, "sequence": i, "ts": 1, "chg": True, "tags": {"qubes": ""}}
                         for i, s in enumerate(ids)},
        }
    document = {"wversion": "0.8 rc4", "fver": 3, "wdate": "20251028", "uuid": "x", "updated_at": "1.0",
                "encrypted": True, "is_auth": True, "url": "file:/x", "volumes": volumes}
    return "Wyng 0.8 rc4 release 20251028\nEncrypted archive 'file:/x'\n\n" + json.dumps(document)


@contextmanager
def counting_proxy(real_socket: str, directory: Path) -> Iterator[tuple[str, list[bytes]]]:
    """A UNIX socket in front of qubesd that records each Admin API call's
    header (every call is one connection: `METHOD+ARG dom0 name DEST\\0`)."""
    path = str(directory / "qubesd-proxy.sock")
    calls: list[bytes] = []
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(64)
    stop = threading.Event()

    def pipe(src: socket.socket, dst: socket.socket, record: bool) -> None:
        first = True
        try:
            while data := src.recv(65536):
                if record and first:
                    calls.append(data.split(b"\0", 1)[0])
                    first = False
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                client, _ = server.accept()
            except TimeoutError:
                continue
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(real_socket)
            threading.Thread(target=pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=pipe, args=(upstream, client, False), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield path, calls
    finally:
        stop.set()
        thread.join()
        server.close()
        os.unlink(path)  # the next proxy binds the same path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--only", default="a,o,b,c,u,d")
    parser.add_argument("--before", metavar="REF",
                        help="(o) and (c): also wyngq as it was at git REF (e.g. main), taking turns with this tree")
    parser.add_argument("--calls-detail", action="store_true",
                        help="with (b) and (u): also print the Admin API calls per qube by method")
    parser.add_argument("--recovery-qubes", type=int, default=40, help="(r): qubes, a template and AppVMs")
    parser.add_argument("--recovery-sessions", type=int, default=10, help="(r): sessions they are backed up over")
    parser.add_argument("--scale-mib", default="",
                        help="(s): run (a) at each of these sizes, e.g. 256,1024, on fresh qubes, and fit "
                             "the full backup's overhead as a constant plus a share of the data")
    args = parser.parse_args()
    global CALLS_DETAIL
    CALLS_DETAIL = args.calls_detail
    if args.scale_mib:
        scaling([int(size) for size in args.scale_mib.split(",")], args.runs)
        return
    parts = set(args.only.split(","))
    bench = Bench(args.size_mib, args.runs, before=args.before)
    try:
        names = bench.make_qubes() if parts & {"a", "b", "o", "u"} else []
        if "a" in parts:
            bench.backup_times(names)
        if "b" in parts:
            restore_figures(bench, names)
        if "o" in parts:
            startup = startup_floor()
            bench.own_times(names, f"{bench.size // MIB} MiB", target=0.15, startup=startup)
            bench.own_times(bench.make_small_qubes(40), "4 MiB each", target=0.5, startup=startup)
        if "c" in parts:
            bench.list_times()
        if "u" in parts:
            upstream_figures(bench, names)
        if "d" in parts:
            from tests.bench.dom0 import dom0_figures

            dom0_figures(bench)
        if "q" in parts:
            from tests.bench.qubesd import qubesd_figures

            qubesd_figures(bench.app, bench.prefix)
        if "r" in parts:
            recovery_figures(bench, args.recovery_qubes, args.recovery_sessions)
    finally:
        bench.cleanup()


def scaling(sizes: list[int], runs: int) -> None:
    """(s) How the full backup's overhead over bare `send` grows with the data:
    a least-squares line through (size, wyngq - bare) gives the constant cost and
    the share per GiB (the ≤ 5 % target is about the share)."""
    points: list[tuple[float, float, float]] = []  # (GiB, wyngq - bare, wyngq - bare with the settings volume)
    for size in sorted(sizes):
        bench = Bench(size, runs)
        try:
            medians = bench.backup_times(bench.make_qubes())["full"]
        finally:
            bench.cleanup()
        points.append((size / 1024, medians["ours"] - medians["bare"], medians["ours"] - medians["meta"]))
        bare_per_gib = medians["bare"] / (size / 1024)
    print(f"\n(s) full backup overhead against data size, median of {runs} runs per size")
    for gib, over, own in points:
        print(f"  {gib * 1024:6.0f} MiB   wyngq - bare send {over:+.2f} s   wyngq's own {own:+.2f} s")
    for label, index in (("wyngq - bare send", 1), ("wyngq's own", 2)):
        constant, per_gib = fit([(p[0], p[index]) for p in points])
        print(f"  {label:<18} = {constant:+.2f} s + {per_gib:+.2f} s per GiB"
              f" ({per_gib / bare_per_gib:+.1%} of bare send's {bare_per_gib:.2f} s per GiB)")


def fit(points: list[tuple[float, float]]) -> tuple[float, float]:
    """Least-squares line y = a + b·x through `points`: (a, b)."""
    n = len(points)
    mean_x, mean_y = sum(x for x, _ in points) / n, sum(y for _, y in points) / n
    sxx = sum((x - mean_x) ** 2 for x, _ in points)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / sxx if sxx else 0.0
    return mean_y - slope * mean_x, slope


CALLS_DETAIL = False
# The last word of every Admin API method qubesd marks `read=True` (qubes/api/admin.py);
# every other call changes something (qubesd marks them `write=True`, or they start, stop
# or attach), CloneFrom included.
READS = frozenset({"List", "Get", "GetAll", "GetDefault", "Help", "Info", "ListSnapshots", "ListDrivers",
                   "UsageDetails", "Index", "Available", "Assigned", "Attached", "CheckWithTemplate",
                   "CheckWithNetvm", "CheckWithAdminVM", "CheckWithTemplateAndAdminVM", "Stats", "CurrentState",
                   "Events"})


def is_write(header: bytes) -> bool:
    """Whether a call (`METHOD+ARG dom0 name DEST`) is not a read."""
    method = header.decode().split("+", 1)[0]
    return method.rsplit(".", 1)[-1] not in READS


def restore_figures(bench: Bench, names: list[str]) -> None:
    """Restore over the existing qubes, against bare `wyng receive` of the same
    volumes into the pool; and the Admin API calls it makes per qube."""
    print(f"\n(b) restore over {len(names)} existing qubes ({bench.size // MIB} MiB), median of {bench.runs} runs")
    archive = bench.archives / "restore.wyng"
    archive.mkdir()
    dest = f"file:{archive}"
    bench.wyngq(dest, "create", "--encrypt=off")
    session = bench.wyngq(dest, "backup", *names)["session"]
    local_from = bench.local_from(names)
    ours_t, bare_t = [], []
    def bare() -> None:
        bench.bare(dest, f"--local-from={local_from}", f"--session={session}", "--force", "--sparse-write",
                   "receive")

    def ours() -> None:
        bench.wyngq(dest, "restore", *RESTORE, f"--session={session}", *names)

    for run in range(bench.runs):
        turns: list[tuple[Callable[[], None], list[float]]] = [(bare, bare_t), (ours, ours_t)]
        for fn, times in turns[::1 if run % 2 else -1]:  # taking turns going first
            bench.change_some_data(names)
            times.append(timed(fn))
    ours, bare = median(ours_t), median(bare_t)
    bench.ours["restore_s"] = ours
    print(f"  restore (replace, 8 MiB changed)   wyngq {ours:6.2f} s   bare receive {bare:6.2f} s   "
          f"ratio {ours / bare:5.2f}   constant cost {ours - bare:+.2f} s")
    print("  (wyngq receives into a scratch qube's volumes and clones them into place through the Admin API,")
    print("   so the previous data stays as a revision; bare receive overwrites the pool files in place)")

    change_settings(bench, names)
    with counting_proxy(os.environ["QUBESD_SOCKET"], bench.work) as (proxy, calls):
        saved = os.environ["QUBESD_SOCKET"]
        os.environ["QUBESD_SOCKET"] = proxy
        try:
            bench.wyngq(dest, "restore", *RESTORE, f"--session={session}", *names)
            changed = list(calls)
            calls.clear()
            bench.wyngq(dest, "restore", *RESTORE, f"--session={session}", *names)
            unchanged = list(calls)
        finally:
            os.environ["QUBESD_SOCKET"] = saved
    for label, seen in (("3 qubes' settings changed", changed), ("nothing changed", unchanged)):
        print_calls(label, seen, len(names))


# the bench's archives are unencrypted: their settings are trusted explicitly (docs/security.md)
RESTORE = ("--on-conflict=replace", "--trust-archive-settings")


def change_settings(bench: Bench, names: list[str]) -> None:
    for name in names[1:]:
        vm = bench.app.domains[name]
        vm.memory = 555
        vm.features["bench"] = "1"
        vm.tags.add("bench-tag")


def print_calls(label: str, seen: list[bytes], qubes: int) -> None:
    writes = [m for m in seen if is_write(m)]
    print(f"  Admin API calls, {label:<26} {len(seen) / qubes:6.1f} per qube, "
          f"{len(writes) / qubes:5.1f} writes per qube")
    if CALLS_DETAIL:
        methods = Counter(m.split(b" ", 1)[0] for m in seen)  # METHOD+ARG, without the qube
        for method, count in sorted(methods.items(), key=lambda item: (-item[1], item[0])):
            print(f"      {count / qubes:5.1f}  {method.decode()}")


RECOVERY_MIB = 2  # per AppVM's private volume (the template's root: 4x): 40 qubes stay within the lab's images


def recovery_figures(bench: Bench, count: int, sessions: int) -> None:
    """(r) `restore --all` onto a fresh machine: `count` qubes (a template and
    AppVMs with RECOVERY_MIB of random data each) backed up over `sessions`
    sessions, each qube in one of them; every run removes them all and restores
    on an empty meta dir. Bare Wyng receives the same volumes, one `receive`
    per session, into files beside them on an empty meta dir."""
    tpl = bench._create("rtpl", "TemplateVM")
    apps = [bench._create(f"r{i:02d}", "AppVM", template=tpl) for i in range(count - 1)]
    for vm, kind, mib in [(tpl, "root", 4 * RECOVERY_MIB), *((vm, "private", RECOVERY_MIB) for vm in apps)]:
        data = os.urandom(mib * MIB)
        vm.volumes[kind].import_data_with_size(io.BytesIO(data), len(data))
    names = [tpl.name, *(vm.name for vm in apps)]
    groups = [names[i::sessions] for i in range(sessions)]  # the template in the first
    archive = bench.archives / "recovery.wyng"
    archive.mkdir()
    dest = f"file:{archive}"
    bench.wyngq(dest, "create", "--encrypt=off")
    volumes: list[list[str]] = []  # per session: its archive volumes
    for group in groups:
        time.sleep(1.1)  # session ids have one-second resolution
        bench.wyngq(dest, "backup", *group)
        volumes.append([f"{bench.app.domains[n].volumes[k].vid}.img" for n in group
                        for k in (("root", "private") if n == tpl.name else ("private",))])
    text = subprocess.run([bench.wyng, f"--dest={dest}", f"--meta-dir={bench.meta}", "-u", "--config=/dev/null",
                           "--json", "list"], capture_output=True, text=True, check=True,
                          stdin=subprocess.DEVNULL).stdout
    listing = json.loads(text[text.index("\n{") + 1:])  # the JSON follows Wyng's header lines
    session_of = {v: max(info["sessions"])[2:] for v, info in listing["volumes"].items()}
    print(f"\n(r) restore --all of {count} qubes backed up over {sessions} sessions ({RECOVERY_MIB} MiB each), "
          f"every qube removed, an empty meta dir; median of {bench.runs} runs")
    pool = env("WYNGQ_LAB_POOL_DIR")
    bare_dir = Path(pool) / f"{bench.prefix}-bare"

    def fresh_meta() -> str:
        return tempfile.mkdtemp(prefix="meta-", dir=bench.work)

    def bare() -> None:
        meta = fresh_meta()
        shutil.rmtree(bare_dir, ignore_errors=True)
        bare_dir.mkdir()
        for number, vols in enumerate(volumes):
            local_from = bench.work / f"bare-recovery-{number}.json"
            local_from.write_text(json.dumps({pool: [[v, f"{bare_dir.name}/{i}.img"] for i, v in
                                                     enumerate(vols)]}))
            subprocess.run([bench.wyng, f"--dest={dest}", f"--meta-dir={meta}", "-u", "--authmin=0",
                            "--config=/dev/null", f"--local-from={local_from}", f"--session={session_of[vols[0]]}",
                            "--force", "--sparse-write", "receive"], check=True, capture_output=True,
                           stdin=subprocess.DEVNULL)

    def remove_all() -> None:
        bench.app.domains.refresh_cache(force=True)
        for name in reversed(names):
            if name in bench.app.domains:
                del bench.app.domains[name]

    def ours() -> None:
        bench.wyngq(dest, "restore", "--all", "--trust-archive-settings", meta=fresh_meta())

    ours_t, bare_t = [], []
    for run in range(bench.runs):
        turns: list[tuple[Callable[[], None], list[float]]] = [(bare, bare_t), (ours, ours_t)]
        for fn, times in turns[::1 if run % 2 else -1]:
            if fn is ours:
                remove_all()
            times.append(timed(fn))
    shutil.rmtree(bare_dir, ignore_errors=True)
    ours_m, bare_m = median(ours_t), median(bare_t)
    print(f"  restore --all   wyngq {ours_m:6.2f} s   bare receive x{sessions} {bare_m:6.2f} s   "
          f"ratio {ours_m / bare_m:5.2f}   cost per qube {(ours_m - bare_m) / count:+.3f} s"
          f"   (target: ratio <= 1.15 plus <= 0.3 s per qube: {1.15 * bare_m + 0.3 * count:.2f} s)")
    remove_all()
    with counting_proxy(os.environ["QUBESD_SOCKET"], bench.work) as (proxy, calls):
        saved = os.environ["QUBESD_SOCKET"]
        os.environ["QUBESD_SOCKET"] = proxy
        try:
            bench.wyngq(dest, "restore", "--all", "--trust-archive-settings", meta=fresh_meta())
        finally:
            os.environ["QUBESD_SOCKET"] = saved
    print_calls("restore --all onto nothing", list(calls), count)
    remove_all()
    bench.made = [n for n in bench.made if n not in names]


def upstream_figures(bench: Bench, names: list[str]) -> None:
    """Upstream wyng-util-qubes on the same qubes: wall times beside ours, and the
    Admin API calls of its restore counted at the same socket proxy."""
    from tests.bench import upstream as up

    print(f"\n(u) upstream wyng-util-qubes on the same {len(names)} qubes, median of {bench.runs} runs")
    figures = up.measure_upstream(names, bench.archives, runs=bench.runs)
    if "error" in figures:
        print(f"  not measured: {figures['error']}")
        return
    print(f"  {figures['upstream']}; {figures['shims']}")
    for key, label in (("full_backup_s", "full backup"), ("incremental_backup_s", "incremental backup"),
                       ("restore_s", "restore over existing qubes")):
        theirs, ours = float(figures[key]), bench.ours.get(key.replace("incremental", "incr"))
        line = f"  {label:<28} upstream {theirs:6.2f} s"
        if ours is not None:
            line += f"   wyngq {ours:6.2f} s   wyngq/upstream {ours / theirs:5.2f}"
        print(line)
    print(f"  (upstream --no-snapshot-restore: {float(figures['restore_no_snapshot_s']):.2f} s)")
    try:
        changed, unchanged = upstream_calls(bench, names, up)
    except up.UpstreamError as err:
        print(f"  Admin API calls not counted: {err}")
        return
    print_calls("upstream, 3 qubes changed", changed, len(names))
    print_calls("upstream, nothing changed", unchanged, len(names))


def upstream_calls(bench: Bench, names: list[str], up: Any) -> tuple[list[bytes], list[bytes]]:
    lab = up.Lab.from_env()
    workdir = Path(tempfile.mkdtemp(prefix="wyngq-upstream-calls-"))
    archive = bench.archives / "upstream-calls.wyng"
    try:
        sandbox = up.prepare_sandbox(workdir, up.qubes_base_dir(bench.app))
        up.init_archive(lab, archive)
        up.upstream(sandbox, lab, archive, "backup", names)
        change_settings(bench, names)
        with counting_proxy(os.environ["QUBESD_SOCKET"], bench.work) as (proxy, calls):
            saved = os.environ["QUBESD_SOCKET"]
            os.environ["QUBESD_SOCKET"] = proxy
            try:
                up.upstream(sandbox, lab, archive, "restore", names)
                up.wait_halted(bench.app, names)
                changed = list(calls)
                calls.clear()
                up.upstream(sandbox, lab, archive, "restore", names)
                up.wait_halted(bench.app, names)
                unchanged = list(calls)
            finally:
                os.environ["QUBESD_SOCKET"] = saved
        return changed, unchanged
    finally:
        up.remove_archive(lab, archive)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
