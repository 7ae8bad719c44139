#!/usr/bin/env python3
"""A strict fake of the Wyng 0.8 rc4 command line, for tests that cannot run Wyng.

It parses the same options as real Wyng (argparse, options anywhere, unknown
options are a usage error with exit 2; as in real Wyng the volume names must
directly follow the action: ``send --local=P VOL`` is a usage error while
``--local=P send VOL`` is fine), keeps real state in a ``file:`` archive
directory and returns the exact bytes that were sent.  Behaviour, messages and
exit codes follow the measurements in docs/facts.md; where the fake
differs on purpose it says so below.

Environment (all optional):
  FAKE_WYNG_LOCK     path of the machine-wide lock (default <tempdir>/fake-wyng.lock)
  FAKE_WYNG_LOG      append one JSON line per call: argv, passphrase, stdin_isatty, rc
  FAKE_WYNG_FAIL     comma list of: auth, lock, interrupt, crash, full, vol=NAME, corrupt=NAME
                     (full: the destination's disk fills up mid-send: a BrokenPipeError
                     traceback, rc 1, nothing recorded; the cause goes to FAKE_WYNG_DEBUG_LOG)
  FAKE_WYNG_DEBUG_LOG  where "full" writes tar's "No space left on device" line, as real
                     Wyng does in /tmp/wyng-debug/err.log
  FAKE_WYNG_DELAY    seconds to sleep mid-transfer (send/receive/verify, first volume)
  FAKE_WYNG_VERSION  version reported in the banner and JSON (default "0.8 rc4")
  FAKE_WYNG_DATE     release date reported likewise (default "20251028")
  FAKE_WYNG_NOW      "now" for session ids: epoch seconds or YYYYMMDD-HHMMSS (local time)

Archive layout (inside the directory named by --dest=file:/DIR):
  DIR/archive.ini            marker, written at arch-init (real archives have one too)
  DIR/fake-wyng-index.json   the whole catalogue; replaced atomically (temp + rename)
  DIR/data/<sha256>          one file per distinct volume content (full bytes)
Each session of a volume points at the blob holding that volume's full bytes, so
unchanged sessions share a blob.  Reads re-hash the blob, so flipping a byte in a
blob file behaves like real corruption.

Deliberate differences from real Wyng:
  * option abbreviations (``--sess``) are refused; spell options in full;
  * no root check, no /etc/wyng/wyng.ini, no key agent (every call
    authenticates; --authmin is accepted and ignored), no rollback detection;
  * receive refuses to overwrite an existing file unless -u/--quiet or --force
    is given explicitly (real Wyng treats a non-TTY stdin as -u);
  * only file: destinations; ssh://, qubes://, qubes-ssh:// exit 9;
  * --autoprune is accepted and validated but prunes nothing;
  * no local snapshots (sn*.wyng1) from a real send; --use-snapshot/--sparse do a
    normal receive;
    except that a pool directory holding a file `.fake-wyng-lvm` stands for a thin
    LVM pool: each volume's Wyng snapshot LV is then a file `<volume>.tick.tags`
    with the LV's tags (a JSON list), written after a send and after a receive of
    the newest session, and a send refuses a volume whose snapshot is tagged `wyng`
    but not `arch-<this archive's uuid>` ("Skipping …; snapshot is from a different
    archive. Use --remap to clear it.", the volume in the error list, rc 2) unless
    --remap is given, which deletes it: what real Wyng does with LVM snapshots
    (prepare_snapshots_lvm); in reflink pools real Wyng names snapshots by archive
    and never refuses;
  * a dry run writes what real Wyng's `send --dry-run` writes (docs/facts.md): it
    adds the volumes the archive lacks (no session), rewrites the archive (its
    updated_at moves) and leaves `sn<uuid>_<vid>.wyng1` beside each volume it read;
  * a send is committed at its very end, so an interrupt or crash records
    nothing at all (real Wyng may keep the volumes it finished);
  * `monitor` only names the volumes (no snapshots to rotate); `diff` exits 1 ("not implemented
    by the fake"); `add` adds the
    volume and then crashes (rc 1) like real 0.8 rc4; `arch-deduplicate` is a no-op.
"""

from __future__ import annotations

import argparse
import datetime
import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import sys
import time
from contextlib import contextmanager, suppress
from urllib.parse import urlparse

# base64, configparser, getpass, subprocess, tempfile, traceback and uuid are imported
# where needed: every test of a wrapper starts this program many times.

PROG = "wyng"
MB = 1024**2
IO_CHUNK = 64 * 1024
PROGRESS_CHUNK = 256 * 1024
INDEX_NAME = "fake-wyng-index.json"
MARKER_NAME = "archive.ini"
DATA_DIR = "data"
MAX_TAGS = 5
TAG_LEN = 25
COMMENT_LEN = 100
MDVOL = re.compile(r"^wyng-.*metadata$")
SESSION_FMT = "%Y%m%d-%H%M%S"

ACTIONS = ("monitor", "version", "list", "receive", "verify", "diff", "arch-check", "add",
           "send", "prune", "delete", "rename", "arch-deduplicate", "arch-init")
WRITE_ACTIONS = ("add", "send", "prune", "delete", "rename", "arch-deduplicate", "arch-init")
NOT_IMPLEMENTED = ("diff",)
# config keys real Wyng refuses to take from an .ini file
CONF_BLOCKED = {"config", "debug", "force", "save-to", "session", "unattended", "volume-desc",
                "tag", "all", "all-before", "vols-from", "import-other-from", "upgrade-format",
                "help", "skip-corrupt-chunks", "force-retry"}
# --encrypt values real Wyng accepts at arch-init -> metadata cipher shown in parentheses
CIPHERS = {"off": "off", "xchacha20-ct": "xchacha20-poly1305-ct",
           "xchacha20-msr": "xchacha20-poly1305-msr", "xchacha20-dgr": "xchacha20-poly1305-msr"}
COMPRESSORS = {"zlib": 4, "bz2": 9, "zstd": 3}

_TRUE = {"action": "store_true"}
_APPEND = {"action": "append", "default": []}
# Every option real Wyng 0.8 rc4 defines (src/wyng), in its order; nothing else.
OPTION_TABLE: list[tuple[tuple[str, ...], dict]] = [
    (("--dest",), {"default": ""}),
    (("--local",), {"default": ""}),
    (("--unattended", "-u"), _TRUE),
    (("--authmin",), {"default": "5"}),
    (("--all-before",), {"dest": "allbefore", "action": "store_true"}),
    (("--all", "-a"), _TRUE),
    (("--session",), {}),
    (("--session-strict",), {"choices": ["on", "off"], "default": "on"}),
    (("--dedup", "-d"), _TRUE),
    (("--volume-desc",), {"dest": "voldesc", "default": ""}),
    (("--tag",), _APPEND),
    (("--keep",), _APPEND),
    (("--volex",), _APPEND),
    (("--autoprune",), {"default": "off"}),
    (("--apdays",), {}),
    (("--save-to",), {}),
    (("--sparse",), _TRUE),
    (("--sparse-write",), _TRUE),
    (("--skip-corrupt-chunks",), _TRUE),
    (("--use-snapshot",), _TRUE),
    (("--use-snapshot-diff",), _TRUE),
    (("--req-snapshot",), _TRUE),
    (("--import-other-from",), _APPEND),
    (("--remap",), _TRUE),
    (("--send-unchanged",), _TRUE),
    (("--vols-from", "--local-from"), {"dest": "vols_from"}),
    (("--encrypt",), {}),
    (("--compression",), {"default": ""}),
    (("--hashtype",), {"default": ""}),
    (("--chunk-factor",), {"dest": "chfactor"}),
    (("--vid",), {}),
    (("--passcmd",), {}),
    (("--config",), {}),
    (("--meta-dir",), {"dest": "metadir", "default": ""}),
    (("--meta-reduce",), {"default": "on:3000"}),
    (("--json",), _TRUE),
    (("--quick",), _TRUE),
    (("--force",), _TRUE),
    (("--force-retry",), _TRUE),
    (("--force-allow-rollback",), _TRUE),
    (("--vouch",), _APPEND),
    (("--clean",), _TRUE),
    (("--purge",), {"choices": ["other", "full"], "default": None}),
    (("--maxsync",), _TRUE),
    (("--upgrade-format",), _TRUE),
    (("--tar-bypass",), _TRUE),
    (("--opt-ssh",), _APPEND),
    (("--opt-qubes",), _APPEND),
    (("--change-uuid",), _TRUE),
    (("--dry-run",), _TRUE),
    (("--purge-tmp",), _TRUE),
    (("--debug",), _TRUE),
    (("--quiet",), _TRUE),
    (("--verbose",), {"action": "count", "default": 0}),
]


# --- errors -------------------------------------------------------------------------------

class WyngError(Exception):
    """An error real Wyng reports as '<Class>: text' and a fixed exit code."""

    rc = 9

    def __init__(self, msg: str, rc: int | None = None):
        super().__init__(msg)
        self.msg = msg
        if rc is not None:
            self.rc = rc


class InputError(WyngError):
    pass


class OptionError(WyngError):
    pass


class SelectionError(WyngError):
    pass


class AuthenticationError(WyngError):
    rc = 3


class StorageError(WyngError):
    pass


class Exit(Exception):
    """Leave with a code and an optional stderr line (Wyng's x_it)."""

    def __init__(self, rc: int, text: str | None = None):
        super().__init__(text)
        self.rc, self.text = rc, text


class Interrupted(BaseException):
    """SIGINT (or the injected 'interrupt' fault)."""


# --- small helpers ------------------------------------------------------------------------

def say(*parts: object, end: str = "\n") -> None:
    print(*parts, end=end, flush=True)


def err(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def stdin_isatty() -> bool:
    try:
        return os.isatty(0)
    except OSError:
        return False


def env_faults() -> tuple[set[str], set[str], set[str]]:
    flags, vols, corrupt = set(), set(), set()
    for item in filter(None, (x.strip() for x in os.environ.get("FAKE_WYNG_FAIL", "").split(","))):
        key, sep, value = item.partition("=")
        if sep and key == "vol":
            vols.add(value)
        elif sep and key == "corrupt":
            corrupt.add(value)
        else:
            flags.add(item)
    return flags, vols, corrupt


def fake_now() -> float:
    """FAKE_WYNG_NOW as epoch seconds or YYYYMMDD-HHMMSS (local time), else the clock."""
    now = os.environ.get("FAKE_WYNG_NOW", "").strip()
    if not now:
        return time.time()
    if re.fullmatch(r"[0-9]{8}-[0-9]{6}", now):
        return time.mktime(time.strptime(now, SESSION_FMT))
    return float(now)


def new_uuid() -> str:
    h = bytearray(secrets.token_bytes(16))
    h[6] = (h[6] & 0x0F) | 0x40  # version 4
    h[8] = (h[8] & 0x3F) | 0x80  # RFC 4122 variant
    x = h.hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


def is_num(text: str) -> bool:
    return bool(re.fullmatch(r"-?[0-9]+", text.strip())) if text else False


def local_time_iso(epoch: float) -> str:
    raw = datetime.datetime.fromtimestamp(epoch, datetime.UTC)
    return raw.astimezone().isoformat(sep=" ")


def file_size(path: str) -> int:
    with open(path, "rb") as f:
        return f.seek(0, os.SEEK_END)


LVM_MARK = ".fake-wyng-lvm"


def is_lvm_pool(pool: Pool) -> bool:
    return bool(pool.online and pool.path and os.path.exists(os.path.join(pool.path, LVM_MARK)))


def lvm_snapshot_path(pool: Pool, dv: str) -> str:
    assert pool.path is not None
    return os.path.join(pool.path, dv + ".tick.tags")


def lvm_snapshot_tags(pool: Pool, dv: str) -> list[str] | None:
    try:
        with open(lvm_snapshot_path(pool, dv), encoding="utf-8") as f:
            tags = json.load(f)
    except FileNotFoundError:
        return None
    return [str(t) for t in tags]


def atomic_write(path: str, data: bytes) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def bad_hash_error(blob: str) -> ValueError:
    import base64

    fake = base64.urlsafe_b64encode(hashlib.sha256(blob.encode()).digest())
    return ValueError(f"Bad hash at x0000000000000000 :: {fake!r}")


def build_parser(defaults: dict | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, allow_abbrev=False,
                                     formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("action", choices=ACTIONS, help="Wyng Commands")
    parser.add_argument("volumes", nargs="*")
    for flags, kwargs in OPTION_TABLE:
        kw = dict(kwargs)
        if isinstance(kw.get("default"), list):
            kw["default"] = list(kw["default"])
        parser.add_argument(*flags, **kw)
    if defaults:
        parser.set_defaults(**defaults)
    return parser


def config_defaults(path: str) -> dict:
    """Defaults from a --config .ini file ([var-global-default]), like real Wyng."""
    import configparser

    confp = configparser.ConfigParser()
    confp.optionxform = lambda option: option  # type: ignore[assignment, method-assign]
    confp["var-global-default"] = {}
    with open(path) as f:
        confp.read_file(f)
    table = {flags[0]: kw for flags, kw in OPTION_TABLE}
    out: dict = {}
    for key, value in confp["var-global-default"].items():
        if key in CONF_BLOCKED:
            err(f"Ignoring config item: {key}")
            continue
        kw = table.get("--" + key)
        if kw is None:
            raise OptionError(f"Unknown item in config: {key}")
        dest = kw.get("dest", key.replace("-", "_"))
        action = kw.get("action")
        if action == "append":
            out[dest] = list(filter(None, value.splitlines()))
        elif action == "count":
            out[dest] = int(value)
        elif action == "store_true":
            out[dest] = bool(int(value))
        else:
            out[dest] = value
    return out


# --- the archive --------------------------------------------------------------------------

class Archive:
    """The fake archive: a JSON index plus content-addressed blobs."""

    def __init__(self, path: str, spec: str):
        self.path, self.spec = path, spec
        self.index_path = os.path.join(path, INDEX_NAME)
        self.data_path = os.path.join(path, DATA_DIR)
        self.idx: dict = {}

    def exists(self) -> bool:
        return os.path.exists(self.index_path) or os.path.exists(os.path.join(self.path, MARKER_NAME))

    def load(self) -> None:
        if not os.path.exists(self.index_path):
            raise StorageError(f"Archive not found at '{self.spec}'", rc=6)
        with open(self.index_path, encoding="utf-8") as f:
            self.idx = json.load(f)

    @property
    def vols(self) -> dict:
        return self.idx["volumes"]

    @property
    def encrypted(self) -> bool:
        return bool(self.idx.get("encrypted"))

    def create(self, encrypted: bool, cipher: str, passphrase: bytes | None, hashtype: str,
               compression: str, chunksize: int) -> None:
        salt = secrets.token_bytes(16)
        self.idx = {
            "fake_wyng_format": 1, "uuid": new_uuid(), "fver": 3,
            "encrypted": encrypted, "cipher": cipher, "hashtype": hashtype,
            "compression": compression, "chunksize": chunksize,
            "salt": salt.hex(),
            "passhash": self.pass_hash(passphrase, salt) if encrypted and passphrase is not None else None,
            "updated_at": "0", "volumes": {},
        }
        os.makedirs(self.data_path, exist_ok=True)
        with open(os.path.join(self.path, MARKER_NAME), "w") as f:
            f.write(f"[fake-wyng]\nindex = {INDEX_NAME}\nuuid = {self.idx['uuid']}\n")
        self.save()

    @staticmethod
    def pass_hash(passphrase: bytes, salt: bytes) -> str:
        return hashlib.pbkdf2_hmac("sha256", passphrase, salt, 1000).hex()  # a fake: cheap on purpose

    def check_passphrase(self, passphrase: bytes) -> bool:
        expect = self.idx.get("passhash") or ""
        got = self.pass_hash(passphrase, bytes.fromhex(self.idx["salt"]))
        return secrets.compare_digest(expect, got)

    def save(self) -> None:
        """Write the index atomically, with SIGINT/SIGTERM held back meanwhile."""
        self.idx["updated_at"] = str(time.time())
        for vol in self.vols.values():
            vol["sessions"] = dict(sorted(vol["sessions"].items()))
        data = json.dumps(self.idx, indent=1).encode("utf-8")
        with signals_deferred():
            atomic_write(self.index_path, data)
        self.gc()

    def gc(self) -> None:
        """Remove blobs no session refers to (left by prune, delete, interrupted sends)."""
        used = {s["blob"] for v in self.vols.values() for s in v["sessions"].values()}
        try:
            names = os.listdir(self.data_path)
        except FileNotFoundError:
            return
        for name in names:
            if name not in used:
                with suppress(OSError):
                    os.unlink(os.path.join(self.data_path, name))

    def blob_path(self, digest: str) -> str:
        return os.path.join(self.data_path, digest)

    def store(self, src: str, dry_run: bool) -> tuple[str, int]:
        """Read src fully; return (sha256, bytes newly stored)."""
        h = hashlib.sha256()
        size = 0
        if dry_run:
            with open(src, "rb") as f:
                while chunk := f.read(IO_CHUNK):
                    h.update(chunk)
                    size += len(chunk)
            digest = h.hexdigest()
            return digest, 0 if os.path.exists(self.blob_path(digest)) else size
        os.makedirs(self.data_path, exist_ok=True)
        tmp = os.path.join(self.data_path, f".tmp-{os.getpid()}-{secrets.token_hex(4)}")
        try:
            with open(src, "rb") as f, open(tmp, "wb") as out:
                while chunk := f.read(IO_CHUNK):
                    h.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            digest = h.hexdigest()
            final = self.blob_path(digest)
            if os.path.exists(final):
                os.unlink(tmp)
                return digest, 0
            os.replace(tmp, final)
            return digest, size
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def new_vid(self) -> str:
        used = {v["vid"] for v in self.vols.values()}
        while (vid := "Vol_" + secrets.token_hex(3)) in used:
            pass
        return vid

    def add_volume(self, name: str, desc: str = "") -> dict:
        vol = {"vid": self.new_vid(), "desc": desc, "next_seq": 0, "sessions": {}}
        self.vols[name] = vol
        return vol

    def rename_volume(self, old: str, new: str) -> None:
        # keep the index order, with the new name in the old one's place
        self.idx["volumes"] = {(new if k == old else k): v for k, v in self.vols.items()}

    @staticmethod
    def session_changed(vol: dict, name: str) -> bool:
        names = sorted(vol["sessions"])
        i = names.index(name)
        if i == 0:
            return True
        cur, prev = vol["sessions"][name], vol["sessions"][names[i - 1]]
        return cur["blob"] != prev["blob"] or cur["volsize"] != prev["volsize"]

    def as_json(self, url: str, wversion: str, wdate: str) -> dict:
        vols = {}
        for name, vol in self.vols.items():
            names = sorted(vol["sessions"])
            vols[name] = {
                "vid": vol["vid"], "desc": vol.get("desc", ""),
                "last": names[-1] if names else "None",
                "ts": vol["sessions"][names[-1]]["ts"] if names else None,
                "sessions": {
                    s: {"volsize": vol["sessions"][s]["volsize"],
                        "sequence": vol["sessions"][s]["sequence"],
                        "ts": vol["sessions"][s]["ts"],
                        "chg": self.session_changed(vol, s),
                        "tags": dict(vol["sessions"][s]["tags"])}
                    for s in names},
            }
        return {"wversion": wversion, "fver": self.idx.get("fver", 3), "wdate": wdate,
                "uuid": self.idx["uuid"], "updated_at": self.idx["updated_at"],
                "encrypted": self.encrypted, "is_auth": self.encrypted, "url": url,
                "volumes": vols}


class Pool:
    """Local storage named by --local or a --local-from key (any directory will do)."""

    def __init__(self, url: str | None):
        self.url = url
        self.online = bool(url) and os.path.isdir(url)  # type: ignore[arg-type]
        self.path = (url.rstrip("/") + "/") if url else None


# --- signals --------------------------------------------------------------------------------

_LOG_HOOK: list = []


def _on_sigint(signum, frame):
    raise Interrupted()


def _on_sigterm(signum, frame):
    # die of the signal like real Wyng (subprocess sees -15, a shell 143), logging first
    for hook in _LOG_HOOK:
        hook(143)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


@contextmanager
def signals_deferred():
    sigs = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, sigs)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, sigs)


# --- the program ----------------------------------------------------------------------------

class FakeWyng:
    def __init__(self, argv: list[str]):
        self.argv = argv
        self.start = fake_now()
        self.wversion = os.environ.get("FAKE_WYNG_VERSION", "0.8 rc4")
        self.wdate = os.environ.get("FAKE_WYNG_DATE", "20251028")
        self.faults, self.fail_vols, self.corrupt_vols = env_faults()
        self.delay = float(os.environ.get("FAKE_WYNG_DELAY") or 0)
        self.passphrase: bytes | None = None
        self.error_cache: list[str] = []
        self.args: argparse.Namespace | None = None
        self.hooked = False
        self.logged = False
        self.lockf = None
        self.arch: Archive | None = None
        self.aliases: dict[str, str] = {}
        self.vols_from_data: dict | None = None

    # -- entry ---------------------------------------------------------------------------
    def run(self) -> int:
        _LOG_HOOK.append(self.write_log)
        signal.signal(signal.SIGINT, _on_sigint)
        signal.signal(signal.SIGTERM, _on_sigterm)
        try:
            self.main()
            rc = 0
        except Exit as e:
            if e.text:
                err(e.text)
            rc = e.rc
        except WyngError as e:
            err(f"\n{type(e).__name__}: {e.msg}\n")
            rc = e.rc
        except Interrupted:
            err("\n*** Interrupt.")
            rc = 8
        except SystemExit as e:  # argparse usage errors and -h
            rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except Exception as e:
            import traceback

            say()
            if type(e).__name__ in ("CalledProcessError", "BrokenPipeError"):
                e.add_note("\n* See Wyng log for details *\n")
            traceback.print_exc()
            rc = 1
        rc = self.finish(rc)
        self.write_log(rc)
        return rc

    def finish(self, rc: int) -> int:
        if not self.error_cache:
            return rc
        failed = sorted(set(self.error_cache))
        err("\nError on volumes: " + ", ".join(failed))
        if self.args is not None and self.args.vols_from and self.arch is not None:
            try:
                with open(self.args.vols_from + ".error", "w") as f:
                    json.dump({"rc": 2, "volumes": failed}, f)
            except OSError as e:
                err(f"Cleanup error: {e!r}")
        return 2

    def write_log(self, rc: int) -> None:
        path = os.environ.get("FAKE_WYNG_LOG")
        if not path or self.logged:
            return
        self.logged = True
        pw = self.passphrase
        entry = {"argv": self.argv,
                 "passphrase": pw.decode("utf-8", "surrogateescape") if pw is not None else None,
                 "passphrase_hex": pw.hex() if pw is not None else None,
                 "stdin_isatty": stdin_isatty(), "rc": rc, "pid": os.getpid()}
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")

    # -- start-up ------------------------------------------------------------------------
    def parse(self) -> argparse.Namespace:
        args = build_parser().parse_args(self.argv)
        if args.config:
            args = build_parser(config_defaults(args.config)).parse_args(self.argv)
        args.action = args.action.lower()
        a = args
        if a.vols_from and a.action not in ("send", "monitor", "receive", "verify", "diff"):
            raise OptionError("vols-from cannot be used with " + a.action)
        if a.save_to and a.action != "receive":
            raise OptionError("Receive required for save-to option.")
        if not (a.volumes or a.all or a.import_other_from or a.vols_from) and a.action not in (
                "arch-init", "arch-check", "arch-deduplicate", "list", "delete", "version"):
            raise OptionError(f"Volume name(s) or --all required for {a.action}.")
        mr = a.meta_reduce.split(":")
        if mr[0] not in ("off", "on", "extra") or len(mr) != 2 or not is_num(mr[1]):
            raise OptionError("Malformed --meta-reduce argument.")
        return args

    def main(self) -> None:
        self.args = a = self.parse()
        self.explicit_u = a.unattended or a.quiet
        self.unattended = a.unattended or not stdin_isatty()
        if a.quiet and a.action not in ("list", "version"):
            self.unattended = True
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        self.early_vols_from()
        say(f"{PROG.capitalize()} {self.wversion} release {self.wdate}")
        if a.action == "version":
            return
        self.take_lock()
        path = self.parse_dest(a.dest)
        self.arch = Archive(path, a.dest)
        self.check_dest()
        if a.force_allow_rollback:
            err("Caution: Allowing rollback.")
        if a.action == "arch-init":
            self.arch_init()
            return
        if a.metadir:
            os.makedirs(a.metadir, exist_ok=True)
        self.arch.load()
        self.authenticate()
        need_local = not a.save_to and a.action in ("monitor", "send", "receive", "diff")
        self.storage, self.storagesets = self.storage_sets(need_local)
        self.print_header()
        vols = self.arch.vols
        datavols = sorted(set(vols) - set(a.volex)) if a.all else []
        self.selected = sorted(set(a.volumes + datavols))
        for v in self.selected[:]:
            if v not in vols and a.action not in ("add", "delete", "rename", "send", "arch-check"):
                say(f"Volume '{v}' not found; Skipping.")
                self.selected.remove(v)
        if "crash" in self.faults:
            raise RuntimeError("fake wyng: injected crash (FAKE_WYNG_FAIL=crash)")
        if a.action in NOT_IMPLEMENTED:
            raise Exit(1, f"fake wyng: action '{a.action}' is not implemented by the fake.")
        getattr(self, "do_" + a.action.replace("-", "_"))()

    def early_vols_from(self) -> None:
        vf = self.args.vols_from
        if vf and os.path.exists(vf):
            with open(vf) as f:
                try:
                    data = json.load(f)
                except json.JSONDecodeError:
                    raise SelectionError("Empty/malformed json file") from None
            for _url, _vols in data.items():  # a non-object crashes, as in real Wyng
                pass
            self.vols_from_data = data

    def take_lock(self) -> None:
        path = os.environ.get("FAKE_WYNG_LOCK")
        if not path:
            import tempfile

            path = os.path.join(tempfile.gettempdir(), "fake-wyng.lock")
        if "lock" in self.faults:
            raise Exit(1, "I/O ERROR obtaining lock on " + path)
        try:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            self.lockf = open(path, "a")  # noqa: SIM115
            fcntl.lockf(self.lockf, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except PermissionError:
            raise Exit(1, "ERROR: No writing permission on " + path) from None
        except OSError:
            raise Exit(1, "I/O ERROR obtaining lock on " + path) from None

    @staticmethod
    def parse_dest(spec: str) -> str:
        if not spec:
            raise OptionError("Missing dest specification.")
        if not spec.isprintable():
            raise InputError("[^control] char not allowed in dest.")
        parts = urlparse(spec)
        dtype = parts.scheme
        if dtype not in ("ssh", "file", "qubes-ssh", "qubes"):
            raise OptionError(f"'{dtype}' not an accepted dest type.")
        if (dtype == "file" and (parts.netloc or not parts.path)) \
                or (dtype in ("ssh", "qubes", "qubes-ssh") and not parts.netloc) \
                or (dtype == "qubes-ssh" and not all(parts.netloc.partition(":"))):
            raise OptionError("Malformed --dest specification.")
        if dtype != "file":
            raise OptionError(f"fake wyng supports only file: destinations, not '{dtype}://'.")
        return os.path.normpath(parts.path)

    def check_dest(self) -> None:
        action, arch = self.args.action, self.arch
        if not os.path.isdir(arch.path):
            if action == "arch-init":
                os.makedirs(arch.path, exist_ok=True)
            elif action in WRITE_ACTIONS:
                # real Wyng creates the directory, then finds it is not its own
                raise StorageError("File ownership mis-match on destination.", rc=5)
            else:
                raise StorageError(f"Path '{arch.path}' not found.", rc=6)
        if action in WRITE_ACTIONS and not os.access(arch.path, os.W_OK):
            raise StorageError("Destination not writable.", rc=5)
        if action == "arch-init":
            if arch.exists():
                raise StorageError("Archive already exists: " + arch.spec, rc=5)
        elif not os.path.exists(arch.index_path):
            raise StorageError(f"Archive not found at '{arch.spec}'", rc=6)

    # -- passphrase ------------------------------------------------------------------------
    def get_passphrase(self, prompt: str = "Enter passphrase: ", init: bool = False) -> bytes:
        import subprocess

        cmd = self.args.passcmd
        if cmd:
            env = shutil.which("env") or "/usr/bin/env"
            try:
                out = subprocess.check_output(env + " -u LC_ALL " + cmd, shell=True)
            except subprocess.CalledProcessError as e:
                err(f"\nError code {e.returncode} running passcmd: " + cmd)
                raise
            self.passphrase = out.rstrip(b"\n")
            if len(self.passphrase) < 10:
                raise InputError("Passphrase must be 10 or more characters.")
            return self.passphrase
        if stdin_isatty():
            import getpass

            text = getpass.getpass(prompt)
            self.passphrase = text.encode("utf-8")
            if init:
                if len(self.passphrase) < 10:
                    raise InputError("Passphrase must be 10 or more characters.")
                if getpass.getpass("Re-enter passphrase: ").encode("utf-8") != self.passphrase:
                    raise InputError("Entries do not match.")
            return self.passphrase
        err(prompt)
        line = sys.stdin.buffer.readline() if sys.stdin is not None else b""
        self.passphrase = line.rstrip(b"\n")
        if init and len(self.passphrase) < 10:
            err("Passphrase must be 10 or more characters.")
            raise InputError("Passphrase required.")
        return self.passphrase

    def authenticate(self) -> None:
        if self.arch.encrypted:
            pw = self.get_passphrase()
            if not pw or pw == bytes(len(pw)):
                raise AuthenticationError("No authentication input.")
            if not self.arch.check_passphrase(pw):
                raise AuthenticationError("Could not decrypt/authenticate archive.")
        if "auth" in self.faults:
            raise AuthenticationError("Could not decrypt/authenticate archive.")

    # -- shared pieces -----------------------------------------------------------------------
    def print_header(self) -> None:
        t = local_time_iso(float(self.arch.idx["updated_at"]))
        kind = "Encrypted" if self.arch.encrypted else "Un-encrypted"
        say(f"{kind} archive '{self.arch.spec}'\nLast updated {t[:-6]} ({t[-6:]})")

    def local_storage(self, url: str | None, require: bool) -> Pool:
        pool = Pool(url)
        if require and not pool.online:
            err("Local storage is offline: " + repr(url))
        return pool

    def storage_sets(self, require: bool) -> tuple[Pool | None, list[tuple[Pool, list[str]]]]:
        a, vols = self.args, self.arch.vols
        sets: list[tuple[Pool, list[str]]] = []
        if self.vols_from_data is not None:
            seen: set[str] = set()
            for url, pairs in self.vols_from_data.items():
                if not pairs:
                    err("Empty vol list for " + url)
                    continue
                for name, alias in pairs:  # a one-element pair crashes, as in real Wyng
                    if alias and name in vols:
                        self.aliases[name] = alias
                    if name in seen:
                        raise SelectionError(f"Duplicate volume name: {name}")
                    seen.add(name)
                sets.append((self.local_storage(url, require), [p[0] for p in pairs]))
            if not sets and a.import_other_from:
                sets.append((self.local_storage(None, False), []))
            return None, sets
        storage = self.local_storage(a.local or None, require)
        return storage, [(storage, [])]

    def transfer_hook(self) -> None:
        """Once per call, mid-transfer: FAKE_WYNG_DELAY, then the 'interrupt' fault."""
        if self.hooked:
            return
        self.hooked = True
        if self.delay > 0:
            time.sleep(self.delay)
        if "interrupt" in self.faults:
            raise Interrupted()

    def hr(self, width: int) -> str:
        cols = shutil.get_terminal_size().columns
        return "\u2014" * (min(max(width, 30), cols) + 20)

    def ask(self, text: str) -> str:
        sys.stderr.write(text)
        sys.stderr.flush()
        try:
            return input()
        except EOFError:
            return ""

    # -- arch-init -------------------------------------------------------------------------
    def arch_init(self) -> None:
        a = self.args
        say(f"\nCreate new archive: '{a.dest}'\n")
        cipher = a.encrypt or "xchacha20-dgr"
        if cipher not in CIPHERS:
            raise OptionError("Invalid cipher option.")
        pw = None
        if cipher != "off":
            pw = self.get_passphrase(prompt="Enter new encryption passphrase: ", init=True)
        say()
        say(f"Encryption    : {cipher}", "" if cipher == "off" else f"({CIPHERS[cipher]})")
        if a.hashtype and (a.hashtype not in ("hmac-sha256", "blake2b")):
            raise OptionError("Hash function '" + a.hashtype + "' is not available on this system.")
        hashtype = "hmac-sha256" if cipher != "off" else "blake2b"
        say("Data Hashing  :", hashtype)
        compression, level = "zstd", "3"
        if a.compression:
            if ":" in a.compression:
                compression, level = (x.strip() for x in a.compression.strip().split(":"))
            else:
                compression = a.compression.strip()
                level = str(COMPRESSORS[compression])  # unknown name: KeyError crash, as real
            if compression not in COMPRESSORS or not is_num(level):
                raise OptionError("Invalid compression spec.")
        say(f"Compression   : {compression}:{level}")
        chfactor = 3
        if a.chfactor:
            chfactor = int(a.chfactor)
            if not 0 < chfactor < 7:
                raise OptionError("Requested chunk size not supported.")
        chunksize = 32768 * 2**chfactor
        if chunksize != 256 * 1024:
            say("Chunk size set:", chunksize)
        self.arch.create(cipher != "off", cipher, pw, hashtype, f"{compression}:{level}", chunksize)
        self.print_header()
        if a.metadir and not os.path.isdir(a.metadir):
            # real Wyng writes the archive, then fails on the missing metadata dir
            raise FileNotFoundError(2, "No such file or directory", os.path.join(a.metadir, "cached"))

    # -- send ------------------------------------------------------------------------------
    def do_send(self) -> None:
        # -d/--dedup needs nothing here (blobs are content-addressed); --autoprune is accepted
        # but prunes nothing during a send (real Wyng would thin old sessions first).
        a = self.args
        self.sid = time.strftime(SESSION_FMT, time.localtime(self.start))
        self.sent: list[tuple[str, dict]] = []
        self.changed_archive = False
        self.ses_tags: dict[str, str] | None = None
        imports = {}
        for spec in a.import_other_from:
            name, path = spec.split(":|:", maxsplit=1)
            imports[name] = os.path.abspath(path)
        stvols = [v for _, names in self.storagesets for v in names]
        width = max(map(len, list(imports) + self.selected + stvols), default=30)
        if "full" in self.faults and not a.dry_run:
            self.disk_full()
        selected = self.selected
        for pool, names in self.storagesets:
            if not (names or selected):
                continue
            self.send_pool(pool, list(names or selected), imports, width)
            selected = []
            imports.clear()
        if imports:
            self.error_cache.extend(imports)
        if a.dry_run:
            self.arch.save()  # real Wyng rewrites archive.ini on a dry run too
            return
        for name, rec in self.sent:
            vol = self.arch.vols[name]
            vol["sessions"]["S_" + self.sid] = rec
            vol["next_seq"] = rec["sequence"] + 1
        if self.sent or self.changed_archive:
            self.arch.save()
        sent = {name for name, _ in self.sent}
        for pool, names in self.storagesets:
            for dv in names:
                if dv in sent:
                    self.pair_lvm_snapshot(pool, dv, "S_" + self.sid)

    def check_lvm_snapshots(self, pool: Pool, names: list[str]) -> None:
        """LVM pools only: a snapshot LV of another archive is refused, or with --remap deleted."""
        if not is_lvm_pool(pool):
            return
        mine = "arch-" + self.arch.idx["uuid"]
        for dv in names[:]:
            tags = lvm_snapshot_tags(pool, dv)
            if tags is None or "wyng" not in tags or mine in tags:
                continue
            if self.args.remap:
                os.unlink(lvm_snapshot_path(pool, dv))
                continue
            say(f"  Skipping {dv}; snapshot is from a different archive. Use --remap to clear it.")
            self.error_cache.append(dv)
            names.remove(dv)

    def pair_lvm_snapshot(self, pool: Pool, dv: str, session: str) -> None:
        if is_lvm_pool(pool):
            atomic_write(lvm_snapshot_path(pool, dv),
                         json.dumps(["wyng", "arch-" + self.arch.idx["uuid"], session]).encode())

    def disk_full(self) -> None:
        """What real Wyng 0.8 rc4 does when the archive's disk fills up during a send:
        its tar helper stops, the send dies of a broken pipe, no session is recorded."""
        log = os.environ.get("FAKE_WYNG_DEBUG_LOG")
        if log:
            with open(log, "a") as handle:
                handle.write(" --+--\ntar: ./Vol_1/S_tmp/x: Cannot write: No space left on device\n")
        err("Traceback (most recent call last):\n  File \"/usr/bin/wyng\", line 4012, in send_volume\n"
            "BrokenPipeError: [Errno 32] Broken pipe")
        raise Exit(1)

    def parse_tags(self) -> dict[str, str]:
        tags: dict[str, str] = {}
        for opt in self.args.tag:
            if opt in ("", "@"):
                continue  # real Wyng would ask for tags interactively
            parts = opt.strip().split(",", maxsplit=1)
            tag_id = parts[0].strip().lower()[:TAG_LEN]
            comment = parts[1].strip() if len(parts) > 1 else ""
            errs = []
            if re.match(r".*[,=\^]", tag_id) or any(map(str.isspace, tag_id)) or not tag_id.isprintable():
                errs.append("Error: [^control], [space], and ',^=' not allowed in tag ID.")
            if not comment.isprintable():
                errs.append("Error: [^control] not allowed in tag comment.")
            if len(comment) > COMMENT_LEN:
                errs.append("Error: Oversize tag comment.")
            if tag_id == "all":
                errs.append("Error: tag 'all' is reserved.")
            if errs:
                err("\n".join(errs))
                raise ValueError("Invalid tag " + opt)
            tags[tag_id] = comment
        return tags

    def send_pool(self, pool: Pool, names: list[str], imports: dict[str, str], width: int) -> None:
        a, arch = self.args, self.arch
        t0 = time.monotonic()
        if not pool.online:
            reason = "Local path not found" if not pool.url or not os.path.exists(pool.url) \
                else "Local not a subvolume or no snapshot feature"
            shown = ("(None) None" if reason == "Local path not found" else f"(file) {pool.path}")
            err(f"\nError, {reason}: {shown}")
            self.error_cache.extend(names)
            return
        for i, dv in enumerate(names):  # a differing alias renames the archive volume
            alias = self.aliases.get(dv)
            if dv in arch.vols and alias and alias != dv and alias not in arch.vols:
                arch.rename_volume(dv, alias)
                names[i] = alias
                self.changed_archive = True
        say(f"\nPreparing snapshots in '{pool.path}'...")
        sources: dict[str, str] = {}
        for dv in names[:] + list(imports):
            src = imports.get(dv) or os.path.join(pool.path, dv)
            if not os.path.exists(src):
                err(f"  Warning: Local '{src}' does not exist!")
                if dv in imports:
                    raise AttributeError("'dict' object has no attribute 'remove'")  # real crash
                names.remove(dv)
                continue
            sources[dv] = src
        self.check_lvm_snapshots(pool, names)
        full, incr = [], []
        for dv in names + list(imports):
            if dv not in arch.vols:  # on a dry run too, as real Wyng does
                arch.add_volume(dv, a.voldesc)
                self.changed_archive = True
            if dv in imports:
                if not MDVOL.match(dv):
                    say(f"  Queuing full scan of import '{dv}'")
                continue
            if dv not in arch.vols or not arch.vols[dv]["sessions"]:
                say(f"  Queuing full scan of '{dv}'")
                full.append(dv)
            else:
                incr.append(dv)
        if self.ses_tags is None:
            self.ses_tags = self.parse_tags()
        if incr:
            say("Acquiring deltas.")
        say(f"\nSending backup session {self.sid}:" if not a.dry_run else "\nDry run (not sending):")
        hl = self.hr(width)
        say(hl)
        total_size = total_sent = count = 0
        for dv in list(imports) + sorted(full + incr):
            say(f"Volume '{dv}'")
            self.transfer_hook()
            src = sources[dv]
            size = file_size(src)
            total_size += size
            if dv in self.fail_vols:
                err(f"  Error: fake wyng injected a failure for volume '{dv}'.")
                self.error_cache.append(dv)
                continue
            digest, new_bytes = arch.store(src, a.dry_run)
            if a.dry_run and dv not in imports:  # the snapshot real Wyng leaves beside the volume
                snapshot = f"sn{arch.idx['uuid']}_{arch.vols[dv]['vid']}.wyng1"
                shutil.copyfile(src, os.path.join(os.path.dirname(src), snapshot))
            vol = arch.vols.get(dv)
            last = vol["sessions"][max(vol["sessions"])] if vol and vol["sessions"] else None
            updated = dv in imports or last is None or last["blob"] != digest or last["volsize"] != size
            if not (updated or a.send_unchanged):
                say("  no change")
                continue
            say("  [", end="")
            if vol is not None and "S_" + self.sid in vol["sessions"]:
                raise ValueError("Duplicate session name")
            tags = list(self.ses_tags.items())
            for _ in tags[MAX_TAGS:]:
                err(f"{MAX_TAGS} maximum tags.")
            st = os.stat(src)
            if vol is not None:
                self.sent.append((dv, {
                    "volsize": size, "sequence": vol["next_seq"], "ts": st.st_mtime_ns,
                    "tags": dict(tags[:MAX_TAGS]), "blob": digest, "mode": st.st_mode & 0o7777}))
            say("|" * 20 + f"]  100%  {new_bytes / MB:.1f}MB " + ("" if updated else "  no change"))
            total_sent += new_bytes
            count += 1
        if count:
            secs = time.monotonic() - t0
            say(hl, f"\n{count} volumes, {total_size // MB}\u2014\u2014>{total_sent // MB} MB in {secs:.1f} seconds.")

    # -- receive / verify ----------------------------------------------------------------------
    def do_receive(self) -> None:
        a = self.args
        if len(self.selected) != 1 and a.save_to:
            raise Exit(1, "Specify one volume for receive --save-to.")
        if a.session and len(a.session.split(",")) > 1:
            raise Exit(1, "Specify only one session for receive.")
        targets = [a.save_to] if a.save_to else [
            os.path.join(pool.path, self.aliases.get(dv) or dv)
            for pool, names in self.storagesets if pool.online
            for dv in names or self.selected if dv in self.arch.vols]
        existing = [t for t in targets if os.path.exists(t)]
        if not (self.explicit_u or a.force) and (existing or (not self.unattended and targets)):
            if not self.unattended:
                say("\nWarning:  Receiving to existing volumes will overwrite them!")
                if self.ask("Are you sure? [y/N]: ").lower() not in ("y", "yes"):
                    raise Exit(1)
            else:
                raise Exit(1, "Error: fake wyng refuses to overwrite existing "
                              + ", ".join(f"'{t}'" for t in existing)
                              + " without --force or -u (real Wyng does so when stdin is not a TTY).")
        selected = self.selected
        for pool, names in self.storagesets:
            dvlist = names or selected
            selected = []
            if not pool.online and names:
                err("\n Offline volumes: " + ", ".join(names))
                self.error_cache.extend(names)
                continue
            for dv in dvlist:
                if dv not in self.arch.vols:
                    raise KeyError(dv)
                if not self.receive_volume(pool, dv, verify=False):
                    self.error_cache.append(dv)

    def do_monitor(self) -> None:
        """Real Wyng records each lvm_thin volume's deltas and rotates its snapshots;
        the fake keeps no local snapshots, so it only goes through the volumes."""
        for _pool, names in self.storagesets:
            for name in names:
                say(f"Volume '{name}': monitored")

    def do_verify(self) -> None:
        selected = self.selected
        for pool, names in self.storagesets:
            dvlist = names or selected
            selected = []
            for dv in dvlist:
                if dv not in self.arch.vols:
                    raise KeyError(dv)
                if not self.receive_volume(pool, dv, verify=True):
                    self.error_cache.append(dv)

    def pick_session(self, dv: str, select: str) -> str | None:
        vol = self.arch.vols[dv]
        sessions = sorted(vol["sessions"])
        if not select:
            return sessions[-1]
        if select[0] == "^":
            tagged = [s for s in sessions if select[1:] in vol["sessions"][s]["tags"]]
            if tagged:
                select = tagged[-1]
                say("Matched tag to", select)
        else:
            datetime.datetime.strptime(select, SESSION_FMT)  # ValueError crash, as real
            select = "S_" + select
        strict = self.args.session_strict == "on"
        if (strict and select not in sessions) or (not strict and select < sessions[0]):
            err(f"No volume '{dv}' in session {select}.")
            return None
        if not strict and select not in sessions:
            chosen = [s for s in sessions if s < select][-1]
            say(f"Selecting {select[2:]} as {chosen[2:]}.")
            select = chosen
        return select

    def receive_volume(self, pool: Pool, dv: str, verify: bool) -> bool:
        a, arch = self.args, self.arch
        if not (pool.online or verify or a.save_to):
            err("Please specify a valid --local storage.")
            return False
        vol = arch.vols[dv]
        if not vol["sessions"]:
            err("No sessions available.")
            return False
        select = a.session or ""
        if verify and select:
            select = select.split(",")[0]
        ses = self.pick_session(dv, select)
        if ses is None:
            return False
        rec = vol["sessions"][ses]
        target = None if verify else (a.save_to or os.path.join(pool.path, self.aliases.get(dv) or dv))
        say(("\nVerifying" if verify else "\nReceiving") + f" volume '{dv}'", ses[2:])
        if target:
            say(f"Saving to file '{target}'")
        if dv in self.fail_vols:
            err(f"Error: fake wyng injected a failure for volume '{dv}'.")
            return False
        blob = arch.blob_path(rec["blob"])
        bars = "|" * 20 if rec["volsize"] > PROGRESS_CHUNK else ""
        if verify:
            say("[", end="")
            self.transfer_hook()
            if dv in self.corrupt_vols or self.blob_digest(blob) != rec["blob"]:
                raise bad_hash_error(rec["blob"])
            say(bars + "] 100% : OK ")
            return True
        sparse = (a.sparse_write or a.sparse) and os.path.isfile(target)
        os.makedirs(os.path.dirname(os.path.abspath(target)), exist_ok=True)
        if dv in self.corrupt_vols:
            open(target, "wb").close()
            say("[", end="")
            raise bad_hash_error(rec["blob"])
        say("[", end="")
        diff = self.write_volume(blob, target, rec, sparse)
        if diff is None:
            if not a.skip_corrupt_chunks:
                with open(target, "r+b") as f:
                    f.truncate(0)
                raise bad_hash_error(rec["blob"])
            say("\nSkipping corrupt chunk at 0")
        os.chmod(target, rec.get("mode", 0o644))
        os.utime(target, ns=(rec["ts"], rec["ts"]))
        say(bars + "] 100% : OK " + (f" Diff bytes: {diff}" if diff else ""))
        if not a.save_to and ses == max(vol["sessions"]):
            self.pair_lvm_snapshot(pool, self.aliases.get(dv) or dv, ses)
        return True

    @staticmethod
    def blob_digest(path: str) -> str | None:
        h = hashlib.sha256()
        try:
            with open(path, "rb") as f:
                while chunk := f.read(IO_CHUNK):
                    h.update(chunk)
        except FileNotFoundError:
            return None
        return h.hexdigest()

    def write_volume(self, blob: str, target: str, rec: dict, sparse: bool) -> int | None:
        """Copy blob to target; return differing bytes (sparse) or 0, None if the hash is bad."""
        h = hashlib.sha256()
        diff = pos = 0
        try:
            src = open(blob, "rb")  # noqa: SIM115
        except FileNotFoundError:
            src = None
        with open(target, "r+b" if sparse else "wb") as out:
            if src is None:
                return None
            with src:
                while chunk := src.read(IO_CHUNK):
                    h.update(chunk)
                    if sparse:
                        out.seek(pos)
                        if out.read(len(chunk)) != chunk:
                            diff += len(chunk)
                            out.seek(pos)
                            out.write(chunk)
                    else:
                        out.write(chunk)
                    pos += len(chunk)
                    out.flush()
                    self.transfer_hook()
            out.truncate(rec["volsize"])
            self.transfer_hook()
        if h.hexdigest() != rec["blob"]:
            return None
        return diff

    # -- list ------------------------------------------------------------------------------
    def do_list(self) -> None:
        a, arch = self.args, self.arch
        if a.json:
            say()
            sys.stdout.write(json.dumps(arch.as_json(a.dest, self.wversion, self.wdate)))
            sys.stdout.flush()
            return
        vols = arch.vols
        if a.verbose:
            say("\nArchive Properties:")
            for key in ("updated_at", "uuid", "fver", "chunksize", "compression", "hashtype", "cipher"):
                say(f" {key:<15} = {arch.idx.get(key)}")
        if a.tag:
            say("\nTag Assignments")
            ltags: dict[str, list] = {}
            for dv in self.selected or sorted(vols):
                for sname, ses in sorted(vols[dv]["sessions"].items()):
                    for tag, desc in ses["tags"].items():
                        ltags.setdefault(tag, []).append((dv, sname[2:], desc))
            for tag in sorted(ltags):
                say("\n" + tag + ":")
                for entry in sorted(ltags[tag]):
                    say(" ", entry)
            return
        if not vols:
            say("\nNo volumes.")
        elif not self.selected and not a.volumes:
            say("\nVolumes:")
            for name in sorted(vols):
                if a.session and "S_" + a.session not in vols[name]["sessions"]:
                    continue
                say("", name)
        else:
            for dv in self.selected:
                say(f"\nSessions for volume '{dv}':\n")
                vol = vols[dv]
                if not vol["sessions"]:
                    say("None.")
                    continue
                for sname in [*sorted(vol["sessions"]), ""]:
                    chg = bool(sname) and arch.session_changed(vol, sname)
                    say(sname[2:], "", "Chg" if chg else "")

    # -- arch-check ----------------------------------------------------------------------------
    def do_arch_check(self) -> None:
        a, arch = self.args, self.arch
        vols = arch.vols
        say("".join(f"{v['vid']}: OK\r" for v in vols.values()))
        all_sessions = [s for v in vols.values() for s in v["sessions"]]
        newest = max(all_sessions) if all_sessions else None
        names = self.selected or list(vols)
        first = True
        for name in names:
            if name not in vols:
                err(f"Volume '{name}' not found.")
                self.error_cache.append(name)
                continue
            vol = vols[name]
            sessions = sorted(vol["sessions"], reverse=True)
            if a.session == "newest":
                sessions = [s for s in sessions if s == newest]
                if not sessions:
                    continue
            elif a.session:
                sessions = [s for s in sessions if s[2:] in a.session.split(",")]
            if not first:
                say()
            first = False
            say(f"Volume '{name}'\n  Checking indexes, data:")
            if not vol["sessions"]:
                err("KeyError('None')")
                self.error_cache.append(name)
                continue
            for s in sessions:
                rec = vol["sessions"][s]
                if name in self.corrupt_vols or self.blob_digest(arch.blob_path(rec["blob"])) != rec["blob"]:
                    say(f"  {s[2:]} :")
                    raise bad_hash_error(rec["blob"])
                say(f"  {s[2:]} :: OK")

    # -- prune -----------------------------------------------------------------------------
    def do_prune(self) -> None:
        a, vols = self.args, self.arch.vols
        ap = a.autoprune.lower()
        if ap == "off" and not a.session:
            raise Exit(1, "Specify --autoprune or --session for prune.")
        dvs = self.selected
        if not self.unattended and dvs:
            say("This operation will delete session(s) from the archive;")
            if self.ask("Are you sure? [y/N]: ").strip().lower() not in ("y", "yes"):
                raise Exit(0)
        say()
        allvols = a.all and set(dvs) == set(vols)
        md = [x for x in dvs if MDVOL.match(x)]
        removed_any = False
        for dv in [x for x in dvs if x not in md] + md:
            say(dv, end=" -")
            n, status = 0, ""
            if a.session:
                n, status = self.prune_volume(dv, a.session.split(",", maxsplit=1), allvols, ap)
            elif ap in ("on", "full"):
                n, status = self.autoprune(dv, set(), allvols, ap)
            removed_any = removed_any or n > 0
            say(n, status if a.verbose else "")
        if removed_any:
            self.arch.save()

    def prune_volume(self, dv: str, times: list[str], allvols: bool, ap: str) -> tuple[int, str]:
        vol = self.arch.vols[dv]
        names = sorted(vol["sessions"])
        t1 = t2 = ""
        chosen: list[str] = []
        if len(names) < 2:
            return 0, "No extra sessions to prune"
        if self.args.allbefore and len(times) != 1:
            raise OptionError("--all-before requires one session.")
        times = [names[-1] if t == "newest" else t for t in times]
        for pos, t in enumerate(times):
            if not t.startswith("^"):
                times[pos] = t if t.startswith("S_") else "S_" + t.strip()
                datetime.datetime.strptime(times[pos][2:], SESSION_FMT)
                continue
            tagged = [s for s in names if t[1:] in vol["sessions"][s]["tags"]]
            if not tagged:
                return 0, f"No match for {t}"
            if pos == 0:
                if len(times) == 1 and not self.args.allbefore:
                    chosen = tagged
                else:
                    t1 = tagged[0]
            else:
                t2 = tagged[-1]
        if self.args.allbefore:
            t1, t2 = names[0], times[0]
        t1 = t1 or times[0]
        if not t2 and len(times) > 1:
            t2 = times[1]
            if t2 <= t1:
                raise SelectionError("Second date-time must be later than first.")
        if chosen:
            pass
        elif not t2:
            chosen = [t1] if t1 in names else []
        elif self.args.allbefore:
            chosen = [s for s in names if t1 <= s < t2]
        else:
            chosen = [s for s in names if t1 <= s <= t2]
        if chosen and chosen[-1] == names[-1]:
            if self.args.verbose:
                say(" Preserving latest session -", end="")
            chosen = chosen[:-1]
        if not chosen:
            return 0, "No selections in this date-time range"
        return self.autoprune(dv, set(chosen), allvols, ap)

    def autoprune(self, dv: str, include: set[str], allvols: bool, ap: str) -> tuple[int, str]:
        """Remove `include` (never the latest).  The date-based autoprune itself is a no-op."""
        vol = self.arch.vols[dv]
        names = sorted(vol["sessions"])
        if len(names) < 2:
            return 0, ""
        apdays = self.args.apdays or "0:62:1:2"
        parts = apdays.split(":")
        if all(map(is_num, parts)):
            ap1, ap2, ndays, nses = map(int, parts)
            if ap1 < 0 or ap2 < 0 or ndays < 1 or nses < 1:
                raise SelectionError("apdays must be at least '0:0:1:1'")
        if ap not in ("on", "full") and not include:
            return 0, ""
        for sx in self.args.keep:
            if sx.startswith("^"):  # real Wyng 0.8 rc4 crashes here
                raise AttributeError("'str' object has no attribute 'tags'")
            datetime.datetime.strptime(sx, SESSION_FMT)
            include.discard("S_" + sx)
        if MDVOL.match(dv) and not allvols:
            return 0, ""
        include.discard(names[-1])
        for s in include:
            del vol["sessions"][s]
        return len(include), ""

    # -- delete / rename / add / arch-deduplicate ------------------------------------------------
    def do_delete(self) -> None:
        a, vols = self.args, self.arch.vols
        storage = self.storage
        if a.clean or a.purge:
            if a.volumes:
                raise Exit(1, "Cannot delete volumes with clean/purge.")
            if not storage or not storage.online:
                raise Exit(1, "Local storage required for clean/purge.")
            say(f"Remove local Wyng snapshots from path '{storage.path}'.")
            if not self.unattended and not a.force:
                if self.ask("Are you sure? [y/N]: ").lower() not in ("y", "yes"):
                    raise Exit(0)
            elif not a.force:
                raise Exit(1, "Ignoring clean/purge without --force.")
            return  # the fake keeps no local snapshots
        if len(a.volumes) + bool(a.vid) != 1:
            raise Exit(1, "Specify one volume to delete.")
        online = bool(storage and storage.online)
        if not online:
            say("Note: A valid --local location was not specified; no volume snapshots will be removed.\n")
        if a.vid:
            names = [n for n, v in vols.items() if v["vid"] == a.vid]
            if not names:
                err(f"Vid '{a.vid}' not found.")
                raise Exit(1)
            dv = names[0]
        else:
            dv = a.volumes[0]
            if dv not in vols:
                raise Exit(1, f"Volume '{dv}' not found.")
            if MDVOL.match(dv) and not a.force:
                raise OptionError("Use --force to delete a metadata volume.")
        if not self.unattended and not a.force:
            say(f"\nWarning! Delete will remove ALL metadata AND archived data for volume '{dv}'")
            if self.ask("Are you sure? [y/N]: ").lower() not in ("y", "yes"):
                raise Exit(0)
        say(f"\nDeleting volume '{a.vid or dv}' from archive.")
        del vols[dv]
        self.arch.save()
        if not online:
            say("(Skipping snapshot removal.)")

    def do_rename(self) -> None:
        a, vols = self.args, self.arch.vols
        if len(a.volumes) != 2:
            raise Exit(1, "Rename requires two volume names.")
        old, new = a.volumes
        if old not in vols:
            raise KeyError(old)
        if new in vols or old == new:
            raise Exit(1, f"Error: Cannot rename '{old}' to '{new}'.")
        self.arch.rename_volume(old, new)
        if a.voldesc:
            vols = self.arch.vols
            vols[new]["desc"] = a.voldesc
        self.arch.save()
        if a.verbose:
            say("Archive volume renamed.")
        if not (self.storage and self.storage.online):
            say("Note: A valid --local location was not specified; no local snapshots"
                " will be renamed which may result in a slow rescan on the next 'send'.\n")

    def do_add(self) -> None:
        a = self.args
        added = False
        for dv in a.volumes:
            if dv not in self.arch.vols:
                self.arch.add_volume(dv, a.voldesc)
                added = True
        if added:
            self.arch.save()
            raise KeyError("None")  # real 0.8 rc4 crashes after adding (facts: add → rc 1)

    def do_arch_deduplicate(self) -> None:
        say("\nfake wyng: nothing to deduplicate (data is stored by content hash).")


def main(argv: list[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):
        with suppress(AttributeError, ValueError):
            stream.reconfigure(encoding="utf-8", errors="surrogateescape")  # type: ignore[union-attr]
    return FakeWyng(list(sys.argv[1:] if argv is None else argv)).run()


if __name__ == "__main__":
    sys.exit(main())
