"""Benchmark part (d) of tests/bench/bench.py: dom0's home in a backup.

A 200 MiB home (random, incompressible data in files from 1 KiB to 2 MiB, a
temporary directory standing in for the dom0 user's home) is backed up with
a small qube; then 1 % of its files change (half of them also change size)
and it is backed up again; then 1 % again, chosen in proportion to their size
and each changing size, and a third backup. Printed, with dedup on and off:

- the archive's growth from the second backup, against the home's size
  (target: at most 10 % with dedup on);
- the backup's extra time: each backup with the home against a backup of the
  qube alone, and the time to write the tar stream on its own.
"""

from __future__ import annotations

import io
import os
import random
import shutil
import time
from pathlib import Path
from typing import Any

MIB = 1024 * 1024


def make_home(root: Path, total: int, rng: random.Random) -> list[Path]:
    files: list[Path] = []
    written = 0
    while written < total:
        size = min(int(1024 * (2048 ** rng.random())), total - written)  # 1 KiB .. 2 MiB, log-uniform
        path = root / f"d{len(files) % 40:02d}" / f"s{len(files) % 7}" / f"f{len(files):05d}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(size))
        files.append(path)
        written += size
    return files


def change_files(files: list[Path], share: float, rng: random.Random, *, by_size: bool = False) -> tuple[int, int]:
    """Rewrite `share` of the files with new data. Chosen evenly, every second one
    also changes size by up to 10 %; `by_size`: chosen in proportion to their
    size (so larger ones), and every one grows or shrinks by up to 10 %.
    Return (files changed, bytes written)."""
    count = max(1, int(len(files) * share))
    if by_size:
        weights = [p.stat().st_size for p in files]
        chosen: list[Path] = []
        while len(chosen) < count:
            pick = rng.choices(files, weights)[0]
            if pick not in chosen:
                chosen.append(pick)
    else:
        chosen = rng.sample(files, count)
    written = 0
    for i, path in enumerate(chosen):
        size = path.stat().st_size
        if i % 2 or by_size:
            size = max(1, size + rng.randint(-size // 10, size // 10))
        path.write_bytes(rng.randbytes(size))
        written += size
    return len(chosen), written


def archive_bytes(path: Path) -> int:
    """Bytes the archive's files hold, each file once: Wyng's dedup stores a chunk
    it has already as a hard link to it."""
    seen: dict[tuple[int, int], int] = {}
    for f in path.rglob("*"):
        st = f.lstat()
        if f.is_file() and not f.is_symlink():
            seen[(st.st_dev, st.st_ino)] = st.st_size
    return sum(seen.values())


def stream_time(home: Path) -> float:
    from wyngq.dom0 import tarwrite, walk
    from wyngq.dom0.backup import Dom0Backup, home_excluder

    class Null(io.RawIOBase):
        def writable(self) -> bool:
            return True

        def write(self, data: Any) -> int:
            return len(data)

    start = time.monotonic()
    tree = walk.walk(str(home), home_excluder(Dom0Backup(home=True), str(home)))
    tarwrite.write(Null(), str(home), tree.entries)  # type: ignore[arg-type]
    return time.monotonic() - start


def dom0_figures(bench: Any, home_mib: int = 200) -> None:
    """Part (d). `bench` is tests.bench.bench.Bench (qubes, archives, wyngq runs).
    wyngq's state (its spool and archive records) goes to the bench's work
    directory, not to this machine's /var/lib/wyng-util-qubes."""
    os.environ.setdefault("WYNGQ_STATE_DIR", str(bench.work / "state"))
    tpl = bench._create("dtpl", "TemplateVM")
    app = bench._create("dapp", "AppVM", template=tpl)
    data = os.urandom(8 * MIB)
    app.volumes["private"].import_data_with_size(io.BytesIO(data), len(data))
    print(f"\n(d) dom0 home in a backup: {home_mib} MiB home (random data, files of 1 KiB to 2 MiB) with one "
          f"8 MiB qube; then 1 % of the files change (half of them in size too) and it is backed up again")
    for dedup in (True, False):
        rng = random.Random(15)
        home = bench.work / "dom0-home"
        files = make_home(home, home_mib * MIB, rng)
        archive = bench.archives / f"dom0-{'dedup' if dedup else 'plain'}.wyng"
        archive.mkdir()
        dest = f"file:{archive}"
        bench.wyngq(dest, "create", "--encrypt=off")
        opts = ["--dedup"] if dedup else []
        with_home = [app.name, *opts, "--dom0-home", f"--dom0-home-dir={home}"]
        full = _timed_backup(bench, dest, *with_home)
        after_full = archive_bytes(archive)
        time.sleep(1.1)
        alone = _timed_backup(bench, dest, app.name, *opts)
        changed, changed_bytes = change_files(files, 0.01, rng)
        before = archive_bytes(archive)
        time.sleep(1.1)
        incr = _timed_backup(bench, dest, *with_home)
        growth = archive_bytes(archive) - before
        changed2, changed_bytes2 = change_files(files, 0.01, rng, by_size=True)
        before = archive_bytes(archive)
        time.sleep(1.1)
        _timed_backup(bench, dest, *with_home)
        growth2 = archive_bytes(archive) - before
        tar = stream_time(home)
        label = "dedup on " if dedup else "dedup off"
        print(f"  {label}: {len(files)} files; first backup stored {after_full / MIB:6.1f} MiB; second backup "
              f"({changed} files, {changed_bytes / MIB:.1f} MiB rewritten) grew the archive by "
              f"{growth / MIB:6.1f} MiB = {100 * growth / (home_mib * MIB):5.1f} % of the home")
        print(f"  {'':9}  third backup (1 % of the files again, chosen by size, each changing size: {changed2} "
              f"files, {changed_bytes2 / MIB:.1f} MiB) grew it by {growth2 / MIB:6.1f} MiB = "
              f"{100 * growth2 / (home_mib * MIB):5.1f} %")
        print(f"  {'':9}  time: backup with the home {full:5.2f} s (first), {incr:5.2f} s (second); the qube "
              f"alone {alone:5.2f} s; extra for the home {full - alone:+5.2f} s / {incr - alone:+5.2f} s; "
              f"writing the tar stream alone {tar:5.2f} s")
        shutil.rmtree(archive, ignore_errors=True)
        shutil.rmtree(home, ignore_errors=True)


def _timed_backup(bench: Any, dest: str, *args: str) -> float:
    start = time.monotonic()
    bench.wyngq(dest, "backup", *args)
    return time.monotonic() - start
