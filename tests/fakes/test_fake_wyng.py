"""Tests of tests/fakes/fake_wyng.py, always run as a real subprocess.

The expected behaviour comes from docs/facts.md (measured on real Wyng 0.8 rc4).
Session ids are pinned with FAKE_WYNG_NOW so that several sends in one test never collide.
"""

from __future__ import annotations

import hashlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import FIXTURES

FAKE = Path(__file__).with_name("fake_wyng.py")
FIXTURE_LIST = FIXTURES / "json" / "list_01_after_full.json"
PASS = "correct horse battery staple"
META = "wyng-qubes-metadata"
WORK = "appvms/work/private.img"
PERSONAL = "appvms/personal/private.img"
PERSONAL_NEW = "appvms/personal-new/private.img"
EXTRA = "appvms/extra/private.img"
T1, T2, T3 = "20260105-100000", "20260105-110000", "20260105-120000"

# One volume and one session of a real `wyng --json list` (fixtures list_01_after_full.json).
REAL_LIST_SHAPE = {
    "wversion": "0.8 rc4", "fver": 3, "wdate": "20251028", "uuid": "73b047c5-0ffa-4228-99c7-8b3f39f9f661",
    "updated_at": "1795705810.860684", "encrypted": True, "is_auth": True, "url": "file:/mnt/backup/A.wyng",
    "volumes": {"appvms/work/private.img": {
        "vid": "Vol_006ce5", "desc": "", "last": "S_20261126-151007", "ts": 1795705806704117329,
        "sessions": {"S_20261126-151007": {
            "volsize": 268435456, "sequence": 0, "ts": 1795705806704117329, "chg": True,
            "tags": {"qubes": "", "full": "initial full backup"}}}}},
}


def shape(listing: dict) -> tuple:
    """Key names and value types at the three levels of a --json list."""
    top = {k: type(v).__name__ for k, v in listing.items()}
    vols = {k: type(v).__name__ for vol in listing["volumes"].values() for k, v in vol.items()}
    sess = {k: type(v).__name__ for vol in listing["volumes"].values()
            for ses in vol["sessions"].values() for k, v in ses.items()}
    return top, vols, sess


def parse_json_list(stdout: str) -> dict:
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("{"))
    return json.loads("\n".join(lines[start:]))


class World:
    """A scratch machine: pools, one archive, the fake's lock and call log."""

    def __init__(self, root: Path):
        self.root = root
        self.arch = root / "arch.wyng"
        self.dest = f"file:{self.arch}"
        self.lock = root / "wyng.lock"
        self.log = root / "calls.jsonl"
        self.pool1, self.pool2 = root / "pool1", root / "pool2"
        self.pool1.mkdir()
        self.pool2.mkdir()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("FAKE_WYNG_")}
        self.env.update(FAKE_WYNG_LOCK=str(self.lock), FAKE_WYNG_LOG=str(self.log), WYNGPASS=PASS)

    def base(self, unattended: bool = True) -> list[str]:
        return [f"--dest={self.dest}", "--config=/dev/null", *(["-u"] if unattended else []), "--authmin=0"]

    def argv(self, *args: str) -> list[str]:
        # -S: no site-packages, which also proves the fake needs only the standard library
        return [sys.executable, "-S", str(FAKE), *args]

    def run(self, *args: str, stdin: bytes | str | None = None, env: dict | None = None,
            base: bool = True, unattended: bool = True) -> subprocess.CompletedProcess:
        if stdin is None:
            stdin = PASS + "\n"
        if isinstance(stdin, str):
            stdin = stdin.encode()
        argv = self.argv(*(self.base(unattended) if base else []), *args)
        return subprocess.run(argv, input=stdin, capture_output=True, env={**self.env, **(env or {})},
                              cwd=self.root, timeout=30)

    def ok(self, *args: str, **kw) -> subprocess.CompletedProcess:
        p = self.run(*args, **kw)
        assert p.returncode == 0, (p.returncode, p.stdout.decode(), p.stderr.decode())
        return p

    def send(self, *args: str, vols: tuple[str, ...] = (), now: str | None = None, **kw) -> subprocess.CompletedProcess:
        env = {"FAKE_WYNG_NOW": now} if now else {}
        return self.run(*args, "send", *vols, env={**env, **kw.pop("env", {})}, **kw)

    def listing(self) -> dict:
        return parse_json_list(self.ok("--json", "list").stdout.decode())

    def sessions(self, vol: str) -> list[str]:
        return list(self.listing()["volumes"][vol]["sessions"])

    def write_vol(self, pool: Path, name: str, data: bytes) -> Path:
        path = pool / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path

    def local_from(self, name: str, mapping: dict) -> Path:
        path = self.root / name
        path.write_text(json.dumps({str(k): v for k, v in mapping.items()}))
        return path

    def calls(self) -> list[dict]:
        return [json.loads(line) for line in self.log.read_text().splitlines()]


def data(tag: str, size: int) -> bytes:
    """Deterministic, non-repeating bytes."""
    seed = tag.encode()
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(seed + counter.to_bytes(8, "big")).digest()
        counter += 1
    return bytes(out[:size])


def build_two_sessions(w: World) -> dict:
    """Session T1: work, personal (pool1), extra (pool2), metadata import; T2: work changed,
    personal renamed through an alias, everything recorded (--send-unchanged)."""
    v = {"work1": data("work1", 700_000), "pers": data("pers", 300_000), "extra": data("extra", 5000),
         "meta1": b"qubes.xml v1\n"}
    w.write_vol(w.pool1, WORK, v["work1"])
    w.write_vol(w.pool1, PERSONAL, v["pers"])
    w.write_vol(w.pool2, EXTRA, v["extra"])
    meta = w.root / "qubes-meta.tgz"
    meta.write_bytes(v["meta1"])
    lf = w.local_from("vols.json", {w.pool1: [[WORK, None], [PERSONAL, ""]], w.pool2: [[EXTRA, EXTRA]]})
    imp = f"--import-other-from={META}:|:{meta}"
    p = w.send(f"--local-from={lf}", imp, "--send-unchanged", "--tag=qubes", "--tag=full,initial full backup",
               now=T1)
    assert p.returncode == 0, p.stderr.decode()
    v["work2"] = data("work2", 720_000)
    w.write_vol(w.pool1, WORK, v["work2"])
    w.write_vol(w.pool1, PERSONAL_NEW, v["pers"])
    meta.write_bytes(b"qubes.xml v2\n")
    v["meta2"] = meta.read_bytes()
    lf2 = w.local_from("vols2.json", {w.pool1: [[WORK, None], [PERSONAL, PERSONAL_NEW]], w.pool2: [[EXTRA, None]]})
    p = w.send(f"--local-from={lf2}", imp, "--send-unchanged", "--tag=qubes", now=T2)
    assert p.returncode == 0, p.stderr.decode()
    return v


def vols2(w: World) -> Path:
    return w.local_from("vols2.json", {w.pool1: [[WORK, None], [PERSONAL, PERSONAL_NEW]], w.pool2: [[EXTRA, None]]})


# Archives are built once per module and copied into each test's own directory.
@pytest.fixture(scope="module")
def empty_template(tmp_path_factory: pytest.TempPathFactory) -> World:
    w = World(tmp_path_factory.mktemp("empty"))
    w.ok("--passcmd=echo \"$WYNGPASS\"", "arch-init", stdin=b"")
    return w


@pytest.fixture(scope="module")
def full_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[World, dict]:
    w = World(tmp_path_factory.mktemp("full"))
    w.ok("--passcmd=echo \"$WYNGPASS\"", "arch-init", stdin=b"")
    return w, build_two_sessions(w)


def clone(template: World, root: Path) -> World:
    w = World(root)
    for name in ("arch.wyng", "pool1", "pool2", "qubes-meta.tgz"):
        src = template.root / name
        if src.is_dir():
            shutil.copytree(src, root / name, dirs_exist_ok=True)
        elif src.exists():
            shutil.copy2(src, root / name)
    return w


@pytest.fixture
def world(tmp_path: Path, request: pytest.FixtureRequest) -> World:
    if "two_sessions" in request.fixturenames:
        return clone(request.getfixturevalue("full_template")[0], tmp_path)
    return clone(request.getfixturevalue("empty_template"), tmp_path)


@pytest.fixture
def two_sessions(world: World, full_template: tuple[World, dict]) -> dict:
    return {**full_template[1], "lf": vols2(world)}


# --- command line ---------------------------------------------------------------------------

def test_version_banner_and_override(tmp_path: Path) -> None:
    w = World(tmp_path)
    assert os.access(FAKE, os.X_OK)
    p = subprocess.run([str(FAKE), "version"], capture_output=True, env=w.env, timeout=30)  # via its #! line
    assert (p.returncode, p.stdout, p.stderr) == (0, b"Wyng 0.8 rc4 release 20251028\n", b"")
    p = w.ok("version", base=False, env={"FAKE_WYNG_VERSION": "0.9 beta", "FAKE_WYNG_DATE": "20300101"})
    assert p.stdout.decode() == "Wyng 0.9 beta release 20300101\n"


@pytest.mark.parametrize("args", [
    ["--bogus", "list"],
    ["--sess=20260101-000000", "list"],   # abbreviations are refused
    ["--session-strict=maybe", "list"],
    ["frobnicate"],
    ["--tag"],
])
def test_usage_errors_exit_2_with_nothing_on_stdout(tmp_path: Path, args: list[str]) -> None:
    p = World(tmp_path).run(*args)
    assert p.returncode == 2
    assert p.stdout == b""
    assert b"usage: wyng" in p.stderr


def test_json_list_has_the_real_structure(world: World, two_sessions: dict) -> None:
    listing = world.listing()
    assert shape(listing) == shape(REAL_LIST_SHAPE)
    assert shape(listing) == shape(json.loads(FIXTURE_LIST.read_text()))
    assert listing["url"] == world.dest
    gate = parse_json_list(world.ok("--json", "list", env={"FAKE_WYNG_VERSION": "0.7.9", "FAKE_WYNG_DATE": "20240101"})
                           .stdout.decode())
    assert (gate["wversion"], gate["wdate"]) == ("0.7.9", "20240101")
    assert listing["encrypted"] is True and listing["is_auth"] is True
    float(listing["updated_at"])
    vols = listing["volumes"]
    assert set(vols) == {WORK, PERSONAL_NEW, EXTRA, META}
    work = vols[WORK]
    assert list(work["sessions"]) == [f"S_{T1}", f"S_{T2}"]
    assert work["last"] == f"S_{T2}" and work["ts"] == work["sessions"][f"S_{T2}"]["ts"]
    assert [s["sequence"] for s in work["sessions"].values()] == [0, 1]
    assert work["sessions"][f"S_{T1}"]["tags"] == {"qubes": "", "full": "initial full backup"}
    assert work["sessions"][f"S_{T2}"]["tags"] == {"qubes": ""}
    assert work["sessions"][f"S_{T2}"]["volsize"] == 720_000
    extra = vols[EXTRA]["sessions"]
    assert extra[f"S_{T2}"]["chg"] is False and extra[f"S_{T1}"]["chg"] is True
    assert list(vols[META]["sessions"]) == [f"S_{T1}", f"S_{T2}"]


def test_json_list_ignores_volume_names_and_session(world: World, two_sessions: dict) -> None:
    full = world.ok("--json", "list").stdout
    assert full.decode().splitlines()[:2] == ["Wyng 0.8 rc4 release 20251028", f"Encrypted archive '{world.dest}'"]
    assert full.decode().splitlines()[3] == ""
    assert not full.endswith(b"\n")
    selected = world.ok("--json", f"--session={T1}", "list", WORK, "no/such.img").stdout.decode()
    assert "Volume 'no/such.img' not found; Skipping." in selected  # as real fixture 024
    assert parse_json_list(selected) == parse_json_list(full.decode())


def test_send_alias_renames_the_archive_volume(world: World, two_sessions: dict) -> None:
    vols = world.listing()["volumes"]
    assert PERSONAL not in vols
    assert list(vols[PERSONAL_NEW]["sessions"]) == [f"S_{T1}", f"S_{T2}"]
    out = world.root / "p1.img"
    world.ok(f"--save-to={out}", f"--session={T1}", "receive", PERSONAL_NEW)
    assert out.read_bytes() == two_sessions["pers"]


def test_plain_list(world: World, two_sessions: dict) -> None:
    out = world.ok("list").stdout.decode().splitlines()
    assert out[3:] == ["", "Volumes:", f" {EXTRA}", f" {PERSONAL_NEW}", f" {WORK}", f" {META}"]
    out = world.ok("list", EXTRA).stdout.decode().splitlines()
    assert out[4:] == [f"Sessions for volume '{EXTRA}':", "", f"{T1}  Chg", f"{T2}  ", "  "]


# --- receive ----------------------------------------------------------------------------------

def test_receive_save_to_returns_exact_bytes_of_old_and_new_sessions(world: World, two_sessions: dict) -> None:
    v = two_sessions
    out = world.root / "restore"
    world.ok(f"--save-to={out}/w1.img", f"--session={T1}", "receive", "--", WORK)
    world.ok(f"--save-to={out}/w2.img", "receive", "--", WORK)
    world.ok("--quiet", f"--save-to={out}/m1", f"--session={T1}", "receive", "--", META)
    world.ok(f"--save-to={out}/m2", "--session=^qubes", "receive", "--", META)
    assert (out / "w1.img").read_bytes() == v["work1"]
    assert (out / "w2.img").read_bytes() == v["work2"]
    assert (out / "m1").read_bytes() == v["meta1"]
    assert (out / "m2").read_bytes() == v["meta2"]


def test_receive_output_format(world: World, two_sessions: dict) -> None:
    out = world.root / "w.img"
    p = world.ok(f"--save-to={out}", f"--session={T1}", "receive", WORK)
    assert p.stdout.decode().splitlines()[3:] == [
        "", f"Receiving volume '{WORK}' {T1}", f"Saving to file '{out}'", "[||||||||||||||||||||] 100% : OK "]
    p = world.ok("--quiet", f"--save-to={out}", "receive", WORK)
    assert p.stdout == b""


def test_receive_local_from_with_alias_old_session(world: World, two_sessions: dict) -> None:
    v = two_sessions
    restore = world.root / "restore-pool"
    restore.mkdir()
    lf = world.local_from("recv.json", {restore: [[WORK, "appvms/clone/private.img"], [EXTRA, None]]})
    world.ok(f"--local-from={lf}", f"--session={T1}", "--force", "--sparse-write", "receive")
    assert (restore / "appvms/clone/private.img").read_bytes() == v["work1"]
    assert (restore / EXTRA).read_bytes() == v["extra"]
    assert not (restore / WORK).exists()
    # newest session over the existing files, with --sparse-write comparing what is there
    world.ok(f"--local-from={lf}", f"--session={T2}", "--force", "--sparse-write", "receive")
    assert (restore / "appvms/clone/private.img").read_bytes() == v["work2"]
    assert not Path(f"{lf}.error").exists()


def test_receive_missing_session_fails_that_volume_only(world: World, two_sessions: dict) -> None:
    w, v = world, two_sessions
    w.write_vol(w.pool1, WORK, data("work3", 1000))
    w.ok(f"--local={w.pool1}", "send", WORK, env={"FAKE_WYNG_NOW": T3})  # only work has T3
    restore = w.root / "r"
    restore.mkdir()
    lf = w.local_from("recv.json", {restore: [[WORK, None], [EXTRA, None]]})
    p = w.run(f"--local-from={lf}", f"--session={T3}", "receive")
    assert p.returncode == 2
    assert f"No volume '{EXTRA}' in session S_{T3}." in p.stderr.decode()
    assert json.loads(Path(f"{lf}.error").read_text()) == {"rc": 2, "volumes": [EXTRA]}
    assert (restore / WORK).read_bytes() == data("work3", 1000)
    # non-strict picks the newest session at or before
    Path(f"{lf}.error").unlink()
    p = w.ok(f"--local-from={lf}", f"--session={T3}", "--session-strict=off", "receive")
    assert f"Selecting {T3} as {T2}." in p.stdout.decode()
    assert (restore / EXTRA).read_bytes() == v["extra"]


def test_receive_refuses_to_overwrite_without_force_or_u(world: World, two_sessions: dict) -> None:
    target = world.root / "exists.img"
    target.write_bytes(b"precious")
    p = world.run(f"--save-to={target}", "receive", WORK, unattended=False)
    assert p.returncode == 1
    assert b"--force" in p.stderr
    assert target.read_bytes() == b"precious"
    world.ok(f"--save-to={target}", "--force", "receive", WORK, unattended=False)
    assert target.read_bytes() == two_sessions["work2"]


@pytest.mark.parametrize(("args", "rc", "text"), [
    (["--session=newest", "--save-to=x", "receive", WORK], 1, "does not match format"),
    ([f"--session={T1},{T2}", "--save-to=x", "receive", WORK], 1, "Specify only one session for receive."),
    (["--save-to=x", "receive", WORK, EXTRA], 1, "Specify one volume for receive --save-to."),
    (["--session=^nosuchtag", "--save-to=x", "receive", WORK], 2, "No volume"),
    (["--session=20000101-000000", "verify", WORK], 2, "No volume"),
    (["verify", "no/such/vol.img"], 0, ""),
    (["--local=pool1", "--force", "receive", "no/such/vol.img"], 0, ""),
])
def test_receive_and_verify_selection_errors(world: World, two_sessions: dict, args, rc, text) -> None:
    p = world.run(*args)
    assert p.returncode == rc, p.stderr.decode()
    assert text in p.stderr.decode()


def test_receive_unknown_name_in_local_from_crashes(world: World, two_sessions: dict) -> None:
    lf = world.local_from("bad.json", {world.root: [["no/such/vol.img", None]]})
    p = world.run(f"--local-from={lf}", "--force", "receive")
    assert p.returncode == 1
    assert b"Traceback" in p.stderr and b"KeyError" in p.stderr


def test_verify_all_and_arch_check(world: World, two_sessions: dict) -> None:
    p = world.ok("-a", "verify")
    assert p.stdout.decode().count(": OK") == 4
    p = world.ok("--session=newest", "arch-check")
    assert f"  {T2} :: OK" in p.stdout.decode() and f"  {T1} :: OK" not in p.stdout.decode()
    p = world.ok("arch-check")
    assert f"  {T1} :: OK" in p.stdout.decode()


# --- send traps -------------------------------------------------------------------------------

def test_send_traps_that_exit_0(world: World) -> None:
    w = world
    w.write_vol(w.pool1, WORK, b"w" * 1000)
    p = w.send(f"--local-from={w.root / 'nope.json'}", now=T1)
    assert p.returncode == 0 and w.listing()["volumes"] == {}
    lf = w.local_from("v.json", {w.pool1: [[WORK, None], ["appvms/ghost/private.img", None]]})
    p = w.send(f"--local-from={lf}", now=T1)
    assert p.returncode == 0
    assert b"Warning: Local" in p.stderr and b"ghost" in p.stderr
    assert list(w.listing()["volumes"]) == [WORK]
    p = w.send(f"--local-from={lf}", now=T2)  # unchanged, no --send-unchanged: nothing recorded
    assert p.returncode == 0 and b"no change" in p.stdout
    assert w.sessions(WORK) == [f"S_{T1}"]
    p = w.send(f"--local-from={lf}", "--dry-run", "--send-unchanged", now=T2)
    assert p.returncode == 0 and b"Dry run (not sending):" in p.stdout
    assert w.sessions(WORK) == [f"S_{T1}"]
    p = w.send(f"--local-from={lf}", "--send-unchanged", *[f"--tag=t{i}" for i in range(6)], now=T3)
    assert p.returncode == 0 and b"5 maximum tags." in p.stderr
    assert list(w.listing()["volumes"][WORK]["sessions"][f"S_{T3}"]["tags"]) == ["t0", "t1", "t2", "t3", "t4"]


def test_send_dry_run_writes_what_real_wyngs_does(world: World) -> None:
    # docs/facts.md: a dry run adds the volumes it has not seen (no session), moves the
    # archive's updated_at and leaves a snapshot file beside each volume it read
    w = world
    w.write_vol(w.pool1, WORK, b"w" * 1000)
    lf = w.local_from("v.json", {w.pool1: [[WORK, None]]})
    before = w.listing()
    p = w.send(f"--local-from={lf}", "--dry-run", now=T1)
    assert p.returncode == 0
    after = w.listing()
    assert after["volumes"][WORK]["sessions"] == {} and after["updated_at"] != before["updated_at"]
    snapshots = [n for n in os.listdir(os.path.dirname(w.pool1 / WORK)) if n.endswith(".wyng1")]
    assert snapshots == [f"sn{after['uuid']}_{after['volumes'][WORK]['vid']}.wyng1"]


@pytest.mark.parametrize(("content", "rc", "text"), [
    ("{not json", 9, "SelectionError: Empty/malformed json file"),
    ("ONE", 1, "not enough values to unpack"),
    ("DUP", 9, "SelectionError: Duplicate volume name"),
])
def test_send_bad_local_from(world: World, content: str, rc: int, text: str) -> None:
    w = world
    w.write_vol(w.pool1, WORK, b"w" * 1000)
    lf = w.root / "v.json"
    if content == "ONE":
        content = json.dumps({str(w.pool1): [[WORK]]})
    elif content == "DUP":
        content = json.dumps({str(w.pool1): [[WORK, None]], str(w.pool2): [[WORK, None]]})
    lf.write_text(content)
    p = w.send(f"--local-from={lf}", now=T1)
    assert p.returncode == rc
    assert text in p.stderr.decode()
    assert w.listing()["volumes"] == {}


def test_send_missing_pool_fails_its_volumes_and_keeps_old_error_files(world: World) -> None:
    w = world
    w.write_vol(w.pool1, WORK, b"w" * 1000)
    lf = w.local_from("v.json", {w.pool1: [[WORK, None]], w.root / "nopool": [[EXTRA, None]]})
    p = w.send(f"--local-from={lf}", now=T1)
    assert p.returncode == 2
    assert f"Error on volumes: {EXTRA}" in p.stderr.decode()
    err = Path(f"{lf}.error")
    assert json.loads(err.read_text()) == {"rc": 2, "volumes": [EXTRA]}
    assert w.sessions(WORK) == [f"S_{T1}"]
    lf.write_text(json.dumps({str(w.pool1): [[WORK, None]]}))
    w.ok(f"--local-from={lf}", "--send-unchanged", "send", env={"FAKE_WYNG_NOW": T2})
    assert json.loads(err.read_text()) == {"rc": 2, "volumes": [EXTRA]}  # stale, never removed


def test_send_import_rules(world: World) -> None:
    w = world
    meta = w.root / "meta.tgz"
    meta.write_bytes(b"meta")
    w.write_vol(w.pool1, WORK, b"w" * 1000)
    p = w.send(f"--import-other-from={META}:|:{meta}", now=T1)
    assert p.returncode == 2 and f"Error on volumes: {META}" in p.stderr.decode()
    p = w.send(f"--local={w.pool1}", f"--import-other-from={META}:|:{w.root / 'missing'}", vols=(WORK,), now=T1)
    assert p.returncode == 1 and b"Traceback" in p.stderr
    assert w.listing()["volumes"] == {}
    p = w.send(f"--local={w.pool1}", "--tag=bad tag", vols=(WORK,), now=T1)
    assert p.returncode == 1 and b"ValueError: Invalid tag bad tag" in p.stderr
    p = w.send(f"--local={w.pool1}", f"--import-other-from={META}:|:{meta}", vols=(WORK,), now=T1)
    assert p.returncode == 0
    assert set(w.listing()["volumes"]) == {WORK, META}


def test_duplicate_session_in_the_same_second_pinned(world: World) -> None:
    w = world
    w.write_vol(w.pool2, EXTRA, b"x" * 100)
    w.ok(f"--local={w.pool2}", "--send-unchanged", "send", EXTRA, env={"FAKE_WYNG_NOW": T1})
    p = w.send(f"--local={w.pool2}", "--send-unchanged", vols=(EXTRA,), now=T1)
    assert p.returncode == 1
    assert b"ValueError: Duplicate session name" in p.stderr
    assert w.sessions(EXTRA) == [f"S_{T1}"]


def test_duplicate_session_with_the_real_clock(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.ok("--encrypt=off", "arch-init")
    w.write_vol(w.pool2, EXTRA, b"x" * 100)
    time.sleep(1.02 - time.time() % 1)  # start just after a second boundary
    first = w.send(f"--local={w.pool2}", "--send-unchanged", vols=(EXTRA,))
    second = w.send(f"--local={w.pool2}", "--send-unchanged", vols=(EXTRA,))
    assert first.returncode == 0
    if second.returncode == 0:
        pytest.skip("the two sends did not start in the same second")
    assert second.returncode == 1
    assert b"Duplicate session name" in second.stderr
    assert len(w.sessions(EXTRA)) == 1


# --- archive and destination errors ---------------------------------------------------------------

def test_arch_init_rules(tmp_path: Path) -> None:
    w = World(tmp_path)
    p = w.run("--passcmd=echo short", "arch-init")
    assert p.returncode == 9 and b"Passphrase must be 10 or more characters." in p.stderr
    p = w.run("arch-init", stdin="short\n")
    assert p.returncode == 9
    p = w.ok("arch-init")  # one line from stdin (not a TTY)
    assert b"Encryption    : xchacha20-dgr (xchacha20-poly1305-msr)" in p.stdout
    assert p.stdout.decode().splitlines()[-2] == f"Encrypted archive '{w.dest}'"
    p = w.run("arch-init")
    assert p.returncode == 5 and b"StorageError: Archive already exists" in p.stderr
    (tmp_path / "u").mkdir()
    other = World(tmp_path / "u")
    p = other.ok("--encrypt=off", "arch-init", stdin=b"")
    assert f"Un-encrypted archive '{other.dest}'" in p.stdout.decode()
    assert other.listing()["encrypted"] is False
    assert other.calls()[-1]["passphrase"] is None


@pytest.mark.parametrize(("dest", "action", "rc", "text"), [
    (None, "list", 9, "OptionError: Missing dest specification."),
    ("ftp://x/y", "list", 9, "not an accepted dest type"),
    ("file://host/path", "list", 9, "Malformed --dest specification."),
    ("qubes://backupvm/mnt/a.wyng", "list", 9, "supports only file:"),
    ("ssh://u@h/a.wyng", "list", 9, "supports only file:"),
    ("MISSING", "list", 6, "not found"),
    ("EMPTY", "list", 6, "Archive not found"),
    ("MISSING", "send", 5, "StorageError"),
])
def test_destination_errors(tmp_path: Path, dest, action, rc, text) -> None:
    w = World(tmp_path)
    (tmp_path / "empty").mkdir()
    if dest == "MISSING":
        dest = f"file:{tmp_path / 'missing'}"
    elif dest == "EMPTY":
        dest = f"file:{tmp_path / 'empty'}"
    args = ([f"--dest={dest}"] if dest else []) + ["-u"]
    # volume names must follow the action directly: `send --local=P VOL` is a usage error
    args += [f"--local={w.pool1}", action, WORK] if action == "send" else [action]
    p = w.run(*args, base=False)
    assert p.returncode == rc, p.stderr.decode()
    assert text in p.stderr.decode()


# --- passphrases ------------------------------------------------------------------------------

def test_passphrase_via_passcmd_reaches_the_log_byte_exact(tmp_path: Path) -> None:
    w = World(tmp_path)
    tricky = "-n 'quoted' \"double\"  spaced ünïcødé \\ $HOME"
    env = {"TRICKY": tricky}
    w.ok("--passcmd=printf '%s\\n\\n' \"$TRICKY\"", "arch-init", stdin=b"", env=env)
    w.ok("--passcmd=printf '%s' \"$TRICKY\"", "list", stdin=b"", env=env)
    w.ok("list", stdin=tricky.encode() + b"\n", env=env)
    calls = w.calls()
    assert [c["passphrase"] for c in calls] == [tricky] * 3
    assert calls[0]["passphrase_hex"] == tricky.encode().hex()
    assert calls[2]["stdin_isatty"] is False
    assert calls[1]["argv"][-1] == "list" and calls[1]["rc"] == 0


@pytest.mark.parametrize(("args", "stdin", "rc", "text"), [
    (["list"], "wrong passphrase\n", 3, "AuthenticationError: Could not decrypt/authenticate archive."),
    (["--passcmd=echo wrong-passphrase", "list"], "", 3, "Could not decrypt"),
    (["list"], "", 3, "AuthenticationError: No authentication input."),
    (["--passcmd=false", "list"], "", 1, "Error code 1 running passcmd: false"),
    (["--passcmd=exit 3", "list"], "", 1, "running passcmd"),  # run through env: no builtins
])
def test_bad_passphrases(world: World, args, stdin, rc, text) -> None:
    p = world.run(*args, stdin=stdin)
    assert p.returncode == rc
    assert text in p.stderr.decode()
    assert p.stdout.decode() == "Wyng 0.8 rc4 release 20251028\n" + ("\n" if rc == 1 else "")


# --- faults, signals, lock ----------------------------------------------------------------------

def fault(name: str) -> dict:
    return {"FAKE_WYNG_FAIL": name}


def test_fault_auth_lock_crash(world: World) -> None:
    p = world.run("list", env=fault("auth"))
    assert p.returncode == 3 and b"AuthenticationError" in p.stderr
    p = world.run("list", env=fault("lock"))
    assert p.returncode == 1 and p.stderr.decode().strip() == f"I/O ERROR obtaining lock on {world.lock}"
    p = world.run("list", env=fault("crash"))
    assert p.returncode == 1 and b"Traceback (most recent call last)" in p.stderr
    assert world.ok("version", env=fault("auth,lock,crash"), base=False).returncode == 0


def test_fault_vol_in_send_and_receive(world: World, two_sessions: dict) -> None:
    w = world
    lf = two_sessions["lf"]
    p = w.send(f"--local-from={lf}", "--send-unchanged", now=T3, env=fault(f"vol={EXTRA}"))
    assert p.returncode == 2
    assert json.loads(Path(f"{lf}.error").read_text()) == {"rc": 2, "volumes": [EXTRA]}
    vols = w.listing()["volumes"]
    assert f"S_{T3}" in vols[WORK]["sessions"] and f"S_{T3}" not in vols[EXTRA]["sessions"]
    restore = w.root / "r"
    restore.mkdir()
    lf2 = w.local_from("r.json", {restore: [[WORK, None], [EXTRA, None]]})
    p = w.run(f"--local-from={lf2}", "--force", "receive", env=fault(f"vol={WORK}"))
    assert p.returncode == 2
    assert json.loads(Path(f"{lf2}.error").read_text()) == {"rc": 2, "volumes": [WORK]}
    assert (restore / EXTRA).read_bytes() == two_sessions["extra"]
    p = w.run("verify", WORK, EXTRA, env=fault(f"vol={WORK}"))
    assert p.returncode == 2


def test_fault_corrupt_truncates_and_real_corruption_is_detected(world: World, two_sessions: dict) -> None:
    w = world
    out = w.root / "out.img"
    p = w.run(f"--save-to={out}", "receive", WORK, env=fault(f"corrupt={WORK}"))
    assert p.returncode == 1 and b"ValueError: Bad hash" in p.stderr
    assert out.stat().st_size == 0
    assert w.run("verify", WORK, env=fault(f"corrupt={WORK}")).returncode == 1
    assert w.run("arch-check", env=fault(f"corrupt={WORK}")).returncode == 1
    assert w.run("verify", EXTRA, env=fault(f"corrupt={WORK}")).returncode == 0
    # flip one byte of the blob holding the newest work data
    index = json.loads((w.arch / "fake-wyng-index.json").read_text())
    blob = w.arch / "data" / index["volumes"][WORK]["sessions"][f"S_{T2}"]["blob"]
    raw = bytearray(blob.read_bytes())
    raw[100] ^= 0xFF
    blob.write_bytes(bytes(raw))
    assert w.run("verify", WORK).returncode == 1
    assert w.run("--session=newest", "arch-check").returncode == 1
    p = w.run("--force", f"--save-to={out}", "receive", WORK)
    assert p.returncode == 1 and out.stat().st_size == 0
    w.ok(f"--save-to={out}", f"--session={T1}", "receive", WORK)
    assert out.read_bytes() == two_sessions["work1"]


def test_fault_interrupt(world: World, two_sessions: dict) -> None:
    w = world
    p = w.send(f"--local-from={two_sessions['lf']}", "--send-unchanged", now=T3, env=fault("interrupt"))
    assert p.returncode == 8 and p.stderr.decode().endswith("*** Interrupt.\n")
    assert w.sessions(WORK) == [f"S_{T1}", f"S_{T2}"]
    p = w.run(f"--save-to={w.root / 'x.img'}", "receive", WORK, env=fault("interrupt"))
    assert p.returncode == 8


def wait_for(proc: subprocess.Popen, text: bytes, timeout: float = 10) -> bytes:
    buf = b""
    deadline = time.monotonic() + timeout
    while text not in buf:
        left = deadline - time.monotonic()
        assert left > 0, buf
        ready, _, _ = select.select([proc.stdout], [], [], left)
        if ready:
            chunk = os.read(proc.stdout.fileno(), 4096)
            assert chunk, buf
            buf += chunk
    return buf


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_during_delayed_send(world: World, two_sessions: dict, sig: signal.Signals) -> None:
    w = world
    argv = w.argv(*w.base(), f"--local-from={two_sessions['lf']}", "--send-unchanged", "send")
    env = {**w.env, "FAKE_WYNG_DELAY": "20", "FAKE_WYNG_NOW": T3}
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env, cwd=w.root)
    try:
        proc.stdin.write(PASS.encode() + b"\n")
        proc.stdin.close()
        wait_for(proc, b"Volume '")
        busy = w.run("list")  # the machine-wide lock is held meanwhile
        assert busy.returncode == 1
        assert f"I/O ERROR obtaining lock on {w.lock}" in busy.stderr.decode()
        proc.send_signal(sig)
        rc = proc.wait(timeout=10)
        err = proc.stderr.read()
    finally:
        proc.kill()
        proc.wait()
    if sig == signal.SIGINT:
        assert rc == 8 and b"*** Interrupt." in err
    else:
        assert rc in (-signal.SIGTERM, 128 + signal.SIGTERM)
    sends = [c for c in w.calls() if c["argv"][-1] == "send"]
    assert sends[-1]["rc"] == (8 if sig == signal.SIGINT else 143)
    assert w.sessions(WORK) == [f"S_{T1}", f"S_{T2}"]


# --- prune, delete, rename ----------------------------------------------------------------------

def test_prune_keeps_the_latest_session(world: World, two_sessions: dict) -> None:
    w = world
    lf = two_sessions["lf"]
    w.write_vol(w.pool1, WORK, data("work3", 2000))
    w.ok(f"--local-from={lf}", "--send-unchanged", "send", env={"FAKE_WYNG_NOW": T3})
    p = w.run("prune", WORK)
    assert p.returncode == 1 and b"Specify --autoprune or --session for prune." in p.stderr
    p = w.ok(f"--session={T3}", "prune", WORK)
    assert p.stdout.decode().splitlines()[-1] == f"{WORK} -0 "
    # metadata volumes are skipped unless -a selects every volume
    p = w.ok(f"--session={T1},{T3}", "prune", META, WORK)
    assert p.stdout.decode().splitlines()[-2:] == [f"{WORK} -2 ", f"{META} -0 "]
    assert w.sessions(META) == [f"S_{T1}", f"S_{T2}"]  # the T3 send had no import
    p = w.ok(f"--session={T1},{T3}", "-a", "prune")
    assert f"{META} -1 " in p.stdout.decode()
    vols = w.listing()["volumes"]
    assert list(vols[WORK]["sessions"]) == [f"S_{T3}"]
    assert list(vols[META]["sessions"]) == [f"S_{T2}"]
    assert vols[WORK]["sessions"][f"S_{T3}"]["sequence"] == 2  # not renumbered
    out = w.root / "w3.img"
    w.ok(f"--save-to={out}", "receive", WORK)
    assert out.read_bytes() == data("work3", 2000)
    out2 = w.root / "e3.img"
    w.ok(f"--save-to={out2}", "receive", EXTRA)
    assert out2.read_bytes() == two_sessions["extra"]


def test_delete_and_rename(world: World, two_sessions: dict) -> None:
    w = world
    p = w.run("delete", "no/such/vol.img")
    assert p.returncode == 1 and b"Volume 'no/such/vol.img' not found." in p.stderr
    p = w.run("delete", META)
    assert p.returncode == 9 and b"OptionError: Use --force to delete a metadata volume." in p.stderr
    w.ok("--force", "delete", META)
    w.ok("rename", EXTRA, "appvms/extra2/private.img")
    p = w.run("rename", "appvms/extra2/private.img", WORK)
    assert p.returncode == 1 and b"Cannot rename" in p.stderr
    vols = w.listing()["volumes"]
    assert set(vols) == {WORK, PERSONAL_NEW, "appvms/extra2/private.img"}
    assert len(vols["appvms/extra2/private.img"]["sessions"]) == 2


def test_call_log_records_every_call(world: World) -> None:
    world.run("list")
    world.run("--bogus", "list")
    world.run("version", base=False)
    world.run(f"--local={world.pool1}", "send", "--send-unchanged", WORK)  # option between action and volume
    calls = world.calls()
    assert [c["rc"] for c in calls] == [0, 2, 0, 2]
    assert calls[1]["argv"] == [*world.base(), "--bogus", "list"]
    assert calls[0]["passphrase"] == PASS and calls[2]["passphrase"] is None
    assert calls[0]["stdin_isatty"] is False


def test_lvm_snapshot_of_another_archive_is_refused_without_remap(world: World) -> None:
    """Real Wyng (prepare_snapshots_lvm): an LVM snapshot tagged `wyng` but for another
    archive makes send skip the volume (rc 2, error file) unless --remap clears it."""
    w = world
    (w.pool1 / ".fake-wyng-lvm").write_text("")
    w.write_vol(w.pool1, WORK, data("work", 1000))
    snapshot = w.pool1 / (WORK + ".tick.tags")
    snapshot.write_text(json.dumps(["wyng", "arch-someother", "S_20250101-000000"]))
    lf = w.local_from("lf.json", {w.pool1: [[WORK, None]]})

    p = w.send(f"--local-from={lf}", now=T1)

    assert p.returncode == 2
    assert f"Skipping {WORK}; snapshot is from a different archive. Use --remap to clear it." in p.stdout.decode()
    assert json.loads(Path(str(lf) + ".error").read_text())["volumes"] == [WORK]
    assert WORK not in w.listing()["volumes"] or not w.sessions(WORK)

    w.ok(f"--local-from={lf}", "--remap", "send", env={"FAKE_WYNG_NOW": T2})

    assert w.sessions(WORK) == ["S_" + T2]
    uuid = w.listing()["uuid"]
    assert json.loads(snapshot.read_text()) == ["wyng", "arch-" + uuid, "S_" + T2]
    assert w.send(f"--local-from={lf}", now=T3).returncode == 0  # its own snapshot: no refusal
