#!/usr/bin/env python3
"""Upstream wyng-util-qubes (tasket/wyng-util-qubes), measured in the wyngq lab.

So that the benchmark can set our figures beside upstream's, taken on the
same machine in the same run. Run as root with the lab up, from the top of the repository:

    eval "$(lab env)"
    flock /tmp/wyngq-wyng.lock python3 -m tests.bench.upstream [--runs 1] [--size-mib 32]

`main()` makes a template and three AppVMs (prefix `up` + 4 hex digits) with
random data in their volumes, calls `measure_upstream()`, prints the figures
and removes the qubes and archives. `measure_upstream()` works on existing
qubes: per run it makes a fresh unencrypted archive with the lab's Wyng
(`arch-init --encrypt=off`), then times upstream's full backup, an
incremental one (after changing a few MiB of an AppVM's private volume), a
restore over the existing qubes (upstream's default, which passes Wyng
`--use-snapshot`) and one with `--no-snapshot-restore`, checking that the
restored volume is byte-exact. It does not take the Wyng lock itself: its
caller holds `/tmp/wyngq-wyng.lock`.

How upstream is run, unchanged:
- its script is extracted with `git show HEAD:src/wyng-util-qubes` from the
  mirror (`WYNGQ_UPSTREAM_REPO`) into a temporary directory, run by the lab
  venv's python (`WYNGQ_LAB_PYTHON`: `qubesadmin.backup.core3` needs lxml)
  with the lab environment (qubesadmin reaches the lab's qubesd);
- options: `--dest=file:<archive> --wyng=$WYNGQ_LAB_WYNG
  --meta-dir=$WYNGQ_LAB_WYNG_META_DIR --authmin=0 -w config=/dev/null`
  (stdin is not a terminal, so upstream adds `-u` itself). Options must come
  before the action: upstream's argparse rejects them after the qube names.

What the private mount namespace (`unshare --mount --propagation private`)
shims, since upstream hard-codes dom0 paths:
- `/var/lib/qubes`: upstream tars `*.xml` and `notes.txt` from there at backup
  and copies `firewall.xml`/`notes.txt` back into it at restore. The lab's
  `varlibqubes` pool directory (Admin API `dir_path`; it holds qubes.xml) is
  bind-mounted on it. This host has no /var/lib/qubes, so /var/lib is first
  covered by an overlay (lower: the real /var/lib, upper: a scratch dir) in
  which the mount point is made; writes under /var/lib (Wyng's
  /var/lib/wyng) go to the scratch dir and are dropped.
- `/etc/os-release`: upstream parses `VERSION_ID` as dotted integers to pick
  the Qubes 4.3 device API; Debian's `"12"` (quoted) would crash it, so a file
  saying `VERSION_ID=4.3` is bind-mounted over it (the lab's qubesd is 4.4).
- `sudo` (not installed here; upstream runs `sudo -u #1000 qvm-appmenus
  --update` after each restored qube, outside any try): a shim first on PATH
  drops sudo's options and runs the command (the lab's qvm-appmenus stub
  logs and succeeds; qvm-sync-appmenus does not exist and fails with 127,
  which upstream ignores).
Wyng sees the pools at their real lab paths (upstream takes them from the
Admin API), and its host-wide lock (/var/lock/wyng) is outside the overlay.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qubesadmin.app import QubesBase

MIB = 1024 * 1024
# A git dir or tree of tasket/wyng-util-qubes; by default where the lab finds its sources.
UPSTREAM_REPO = Path(os.environ.get("WYNGQ_UPSTREAM_REPO")
                     or os.path.join(os.environ.get("WYNGQ_LAB_SOURCES", "."), "tasket+wyng-util-qubes", "repo"))
UPSTREAM_SCRIPT = "src/wyng-util-qubes"
QUBES_POOL = "varlibqubes"
QUBES_VERSION_ID = "4.3"
CHANGE_MIB = 8
HALT_TIMEOUT = 30.0

# Run by `sh -euc` as root in the new mount namespace: $1 scratch dir, $2 pool dir, then the command.
NAMESPACE_SETUP = r"""
work=$1 pool=$2
shift 2
if [ ! -d /var/lib/qubes ]; then
    layer=$(mktemp -d "$work/varlib.XXXXXX")
    mkdir "$layer/upper" "$layer/work"
    mount -t overlay wyngq-upstream -o "lowerdir=/var/lib,upperdir=$layer/upper,workdir=$layer/work" /var/lib
    mkdir /var/lib/qubes
fi
mount --bind "$pool" /var/lib/qubes
mount --bind "$work/os-release" /etc/os-release
exec "$@"
"""

SUDO_SHIM = """#!/bin/sh
# wyngq bench stand-in for sudo (none in the lab): drop the options, run the command as root.
while [ $# -gt 0 ]; do
    case "$1" in
        -u|-g|-C|-D|-h|-p|-R|-T|-U) shift 2 ;;
        --) shift; break ;;
        -*) shift ;;
        *) break ;;
    esac
done
command -v "$1" >/dev/null 2>&1 || { echo "sudo (shim): $1: command not found" >&2; exit 127; }
exec "$@"
"""


class UpstreamError(RuntimeError):
    """Upstream cannot be measured here; the message says why."""


@dataclass(frozen=True)
class Lab:
    """What the lab's environment (`lab env`) says about Wyng and python."""

    wyng: str
    meta_dir: str
    python: str

    @classmethod
    def from_env(cls) -> Lab:
        names = ("WYNGQ_LAB_WYNG", "WYNGQ_LAB_WYNG_META_DIR", "WYNGQ_LAB_PYTHON", "QUBESD_SOCKET")
        missing = [name for name in names if not os.environ.get(name)]
        if missing:
            raise UpstreamError(f"lab environment not loaded ({', '.join(missing)} unset): eval \"$(lab env)\"")
        return cls(os.environ["WYNGQ_LAB_WYNG"], os.environ["WYNGQ_LAB_WYNG_META_DIR"], os.environ["WYNGQ_LAB_PYTHON"])

    def wyng_argv(self, archive: Path, *args: str) -> list[str]:
        return [self.wyng, f"--dest=file:{archive}", f"--meta-dir={self.meta_dir}", "-u", "--authmin=0",
                "--config=/dev/null", *args]


@dataclass(frozen=True)
class Sandbox:
    """Upstream's script and the shims, in a scratch directory."""

    workdir: Path
    script: Path
    pool_dir: str
    release: str

    def argv(self, command: Sequence[str]) -> list[str]:
        """`command` run in a private mount namespace with the shims mounted."""
        return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-euc", NAMESPACE_SETUP, "sh",
                str(self.workdir), self.pool_dir, *command]

    def env(self) -> dict[str, str]:
        return {**os.environ, "PATH": f"{self.workdir / 'bin'}:{os.environ.get('PATH', '')}"}


# -- the sandbox -----------------------------------------------------------------------------------


def extract_upstream(workdir: Path) -> tuple[Path, str]:
    """Upstream's script from the mirror's HEAD, and a description of its release and commit."""
    git = ["git", "-C", str(UPSTREAM_REPO)]
    try:
        text = subprocess.run([*git, "show", f"HEAD:{UPSTREAM_SCRIPT}"], capture_output=True, text=True,
                              check=True).stdout
        commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as err:
        raise UpstreamError(f"cannot read {UPSTREAM_SCRIPT} from {UPSTREAM_REPO}: {err}") from err
    script = workdir / "wyng-util-qubes"
    script.write_text(text)
    program = next((line.split("=", 1)[1].strip().strip('"') for line in text.splitlines()
                    if line.startswith("_program")), "wyng-util-qubes (release unknown)")
    return script, f"{program}, commit {commit}"


def qubes_base_dir(app: QubesBase) -> str:
    """The pool directory that stands for /var/lib/qubes (it holds qubes.xml)."""
    if QUBES_POOL not in app.pools:
        raise UpstreamError(f"no pool {QUBES_POOL!r} in the lab")
    pool_dir = app.pools[QUBES_POOL].config["dir_path"]
    if not Path(pool_dir, "qubes.xml").is_file():
        raise UpstreamError(f"pool {QUBES_POOL} dir {pool_dir} holds no qubes.xml")
    return pool_dir


def prepare_sandbox(workdir: Path, pool_dir: str) -> Sandbox:
    if os.geteuid() != 0:
        raise UpstreamError("must run as root (mount namespace, bind mounts)")
    if shutil.which("unshare") is None:
        raise UpstreamError("unshare (util-linux) not found")
    script, release = extract_upstream(workdir)
    (workdir / "os-release").write_text(f"NAME=Qubes\nID=qubes\nVERSION_ID={QUBES_VERSION_ID}\n")
    shims = workdir / "bin"
    shims.mkdir()
    (shims / "sudo").write_text(SUDO_SHIM)
    (shims / "sudo").chmod(0o755)
    sandbox = Sandbox(workdir, script, pool_dir, release)
    check_sandbox(sandbox)
    return sandbox


def check_sandbox(sandbox: Sandbox) -> None:
    probe = "test -f /var/lib/qubes/qubes.xml && grep -qx 'VERSION_ID=[0-9.]*' /etc/os-release"
    done = subprocess.run(sandbox.argv(["sh", "-c", probe]), capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise UpstreamError(f"mount namespace setup failed ({done.returncode}): {done.stderr.strip()}")


# -- running things --------------------------------------------------------------------------------


def tail(text: str, lines: int = 12) -> str:
    return " | ".join(line for line in text.strip().splitlines()[-lines:] if line.strip())


def run_timed(argv: Sequence[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> float:
    os.sync()  # as bench.timed: no writeback of an earlier run inside this one's time
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, env=env, cwd=cwd)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise UpstreamError(f"{Path(argv[0]).name} exited {done.returncode}: {tail(done.stdout + done.stderr)}")
    return elapsed


def upstream(sandbox: Sandbox, lab: Lab, archive: Path, action: str, qubes: Sequence[str],
             options: Sequence[str] = ()) -> float:
    """Wall time of one upstream command, namespace set-up included. Its options go before the
    action: argparse takes none after the action once the qube names (nargs="*") are matched."""
    command = [lab.python, str(sandbox.script), f"--dest=file:{archive}", f"--wyng={lab.wyng}",
               f"--meta-dir={lab.meta_dir}", "--authmin=0", "-w", "config=/dev/null", *options, action, *qubes]
    try:
        return run_timed(sandbox.argv(command), env=sandbox.env(), cwd=sandbox.workdir)
    except UpstreamError as err:
        raise UpstreamError(f"upstream {' '.join([*options, action])}: {err}") from err


def namespace_overhead(sandbox: Sandbox) -> float:
    return min(run_timed(sandbox.argv(["true"])) for _ in range(3))


def init_archive(lab: Lab, archive: Path) -> None:
    archive.mkdir(parents=True)
    run_timed(lab.wyng_argv(archive, "--encrypt=off", "arch-init"))


def remove_archive(lab: Lab, archive: Path) -> None:
    """The archive and Wyng's cache of it in the meta dir (`a_<blake2b(uid, uuid, url)>`, as Wyng's
    `ArchiveSet.get_combo_id` names it)."""
    if (archive / "archive.ini").exists():
        done = subprocess.run(lab.wyng_argv(archive, "--json", "list"), capture_output=True, text=True,
                              stdin=subprocess.DEVNULL)
        with contextlib.suppress(ValueError, KeyError):
            listing = json.loads(done.stdout[done.stdout.find("\n{"):])
            combo = f"{os.getuid()}{listing['uuid']}{listing['url']}".encode()
            cache = Path(lab.meta_dir, "a_" + hashlib.blake2b(combo, digest_size=20).hexdigest())
            shutil.rmtree(cache, ignore_errors=True)
    shutil.rmtree(archive, ignore_errors=True)


# -- the qubes' data -------------------------------------------------------------------------------


def private_image(app: QubesBase, name: str) -> Path:
    """`<dir_path>/<vid>.img`: a halted qube's private data in a file-reflink pool."""
    volume = app.domains[name].volumes["private"]
    return Path(app.pools[volume.pool].config["dir_path"], f"{volume.vid}.img")


def pick_changed(app: QubesBase, qubes: Sequence[str]) -> str:
    """The qube whose private volume gets changed: the first AppVM, else the first qube."""
    return next((name for name in qubes if app.domains[name].klass == "AppVM"), qubes[0])


def change_data(image: Path, mib: int = CHANGE_MIB) -> None:
    size = image.stat().st_size
    offset = min(MIB, size // 4) // 4096 * 4096
    length = min(mib * MIB, size - offset) // 4096 * 4096
    with open(image, "r+b") as handle:
        handle.seek(offset)
        handle.write(os.urandom(length))


def digest(path: Path) -> str:
    hasher = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(MIB):
            hasher.update(block)
    return hasher.hexdigest()


def wait_halted(app: QubesBase, qubes: Sequence[str], timeout: float = HALT_TIMEOUT) -> None:
    """Upstream starts restored templates (menu sync) and shuts them down without waiting."""
    deadline = time.monotonic() + timeout
    for name in qubes:
        while not app.domains[name].is_halted():
            if time.monotonic() > deadline:
                raise UpstreamError(f"{name} still running {timeout:.0f} s after upstream's restore")
            time.sleep(0.1)


# -- the measurement -------------------------------------------------------------------------------


def one_run(sandbox: Sandbox, lab: Lab, app: QubesBase, qubes: list[str], archive: Path) -> dict[str, float]:
    """Full and incremental backup, then two restores over the existing qubes, into a fresh archive."""
    image = private_image(app, pick_changed(app, qubes))
    init_archive(lab, archive)
    times = {"full_backup_s": upstream(sandbox, lab, archive, "backup", qubes)}
    change_data(image)
    time.sleep(1.1)  # Wyng session ids have one-second resolution
    times["incremental_backup_s"] = upstream(sandbox, lab, archive, "backup", qubes)
    backed_up = digest(image)
    restores: tuple[tuple[str, tuple[str, ...]], ...] = (("restore_s", ()),
                                                        ("restore_no_snapshot_s", ("--no-snapshot-restore",)))
    for key, extra in restores:
        change_data(image)
        times[key] = upstream(sandbox, lab, archive, "restore", qubes, extra)
        wait_halted(app, qubes)
        if digest(image) != backed_up:
            raise UpstreamError(f"upstream restore {' '.join(extra)} left {image.name} unlike the backup")
    return times


def summary(sandbox: Sandbox, qubes: Sequence[str], changed: str) -> dict[str, float | str]:
    return {
        "upstream": sandbox.release,
        "options": ("--dest=file:<archive> --wyng=$WYNGQ_LAB_WYNG --meta-dir=$WYNGQ_LAB_WYNG_META_DIR --authmin=0 "
                    "-w config=/dev/null; upstream adds -u, backup: --send-unchanged --tag=qubes; restore: "
                    "default (Wyng --use-snapshot, template started for menu sync) and --no-snapshot-restore"),
        "data_change": f"{CHANGE_MIB} MiB of {changed}'s private volume before the incremental and each restore",
        "shims": (f"mount namespace: {sandbox.pool_dir} on /var/lib/qubes (overlay on /var/lib if absent), "
                  f"/etc/os-release VERSION_ID={QUBES_VERSION_ID}, sudo shim on PATH"),
        "qubes": " ".join(qubes),
    }


def measure_upstream(qubes: list[str], archive_dir: Path, runs: int = 1) -> dict[str, float | str]:
    """Wall times (medians over `runs`, seconds) of upstream's full backup, incremental backup and
    restores over the existing `qubes` (halted, in file-reflink pools), each run in a fresh unencrypted
    archive `archive_dir/upstream-<run>.wyng` (removed afterwards, with Wyng's cache of it); with notes,
    or `error` giving the reason it could not be measured. The caller holds the Wyng lock."""
    import qubesadmin

    result: dict[str, float | str] = {}
    workdir = Path(tempfile.mkdtemp(prefix="wyngq-upstream-"))
    try:
        lab = Lab.from_env()
        app = qubesadmin.Qubes()
        sandbox = prepare_sandbox(workdir, qubes_base_dir(app))
        result.update(summary(sandbox, qubes, pick_changed(app, qubes)))
        result["namespace_overhead_s"] = namespace_overhead(sandbox)
        figures: dict[str, list[float]] = {}
        for run in range(runs):
            archive = archive_dir / f"upstream-{run}.wyng"
            try:
                for key, value in one_run(sandbox, lab, app, qubes, archive).items():
                    figures.setdefault(key, []).append(value)
            finally:
                remove_archive(lab, archive)
        result.update({key: statistics.median(values) for key, values in figures.items()})
        result["restore_data"] = "byte-exact after each restore"
    except UpstreamError as err:
        result["error"] = str(err)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return result


# -- main: own qubes -------------------------------------------------------------------------------


def make_qubes(app: QubesBase, prefix: str, size: int, made: list[str]) -> list[str]:
    """A template and three AppVMs holding `size` bytes of random data in all (as bench.py)."""
    shares = {("tpl", "root"): 0.4, ("tpl", "private"): 0.05}
    template = app.add_new_vm("TemplateVM", name=f"{prefix}-tpl", label="red")
    made.append(template.name)
    for i in range(3):
        vm = app.add_new_vm("AppVM", name=f"{prefix}-app{i}", label="red", template=template)
        made.append(vm.name)
        shares[(f"app{i}", "private")] = 0.55 / 3
    for (short, kind), share in shares.items():
        data = os.urandom(max(4096, int(size * share) // 4096 * 4096))
        app.domains[f"{prefix}-{short}"].volumes[kind].import_data_with_size(io.BytesIO(data), len(data))
    return list(made)


def remove_qubes(app: QubesBase, names: Sequence[str]) -> None:
    app.domains.refresh_cache(force=True)
    for name in reversed(names):
        if name not in app.domains:
            continue
        try:
            if not app.domains[name].is_halted():
                app.domains[name].kill()
            app.qubesd_call(name, "admin.vm.Remove")
        except Exception as err:  # report and go on with the others
            print(f"upstream bench: could not remove {name}: {err}", file=sys.stderr)


def print_figures(figures: dict[str, float | str]) -> None:
    for key, value in figures.items():
        print(f"  {key:<24} {value:7.2f}" if isinstance(value, float) else f"  {key:<24} {value}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--size-mib", type=int, default=32, help="random data in the four qubes, in all")
    args = parser.parse_args()
    if os.environ.get("WYNGQ_LAB") != "1":
        sys.exit('upstream bench: load the lab environment: eval "$(lab env)"')
    import qubesadmin

    app = qubesadmin.Qubes()
    prefix = "up" + secrets.token_hex(2)
    archive_dir = Path(os.environ["WYNGQ_LAB_BTRFS_MNT"]) / "bench-archives" / prefix
    made: list[str] = []
    try:
        qubes = make_qubes(app, prefix, args.size_mib * MIB, made)
        print(f"upstream wyng-util-qubes: {len(qubes)} qubes ({args.size_mib} MiB), unencrypted archive, "
              f"median of {args.runs} run(s)")
        figures = measure_upstream(qubes, archive_dir, args.runs)
        print_figures(figures)
    finally:
        remove_qubes(app, made)
        shutil.rmtree(archive_dir, ignore_errors=True)
    return 1 if "error" in figures else 0


if __name__ == "__main__":
    sys.exit(main())
