"""`make install-dom0` / `install-vm` into a DESTDIR: the tree the RPMs are made of,
and the installed command running the installed package."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

import wyngq

ROOT = Path(__file__).resolve().parents[2]
VERSION = (ROOT / "version").read_text().strip()
SITELIB = sysconfig.get_path("purelib", "posix_prefix", {"base": "/usr", "platbase": "/usr"})
DOM0_ONLY = ("qubes-rpc/qubes.WyngBackup", "policy/90-default-wyng-util-qubes.policy",
             "policy/30-user-wyng-util-qubes.policy")

# What both sides get besides the package and the command.
SHARED = {
    "/usr/share/man/man1/wyng-util-qubes.1": 0o644,
    "/usr/share/bash-completion/completions/wyng-util-qubes": 0o644,
}

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def make(target: str, destdir: Path) -> None:
    done = subprocess.run(
        ["make", "-C", str(ROOT), target, f"DESTDIR={destdir}", f"PYTHON={sys.executable}"],
        capture_output=True, text=True, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def tree(destdir: Path) -> dict[str, int]:
    """Every installed file, relative to DESTDIR, with its permission bits."""
    return {
        "/" + str(p.relative_to(destdir)): stat.S_IMODE(p.stat().st_mode)
        for p in destdir.rglob("*") if p.is_file()
    }


def package_sources() -> set[str]:
    return {
        str(p.relative_to(ROOT))
        for p in (ROOT / "wyngq").rglob("*")
        if p.is_file() and p.suffix in (".py", ".toml", ".json") and "__pycache__" not in p.parts
    }


def run_installed(destdir: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": f"{destdir}{SITELIB}"}
    return subprocess.run([str(destdir / "usr/bin/wyng-util-qubes"), *args], capture_output=True, text=True,
                          env=env, cwd=cwd, stdin=subprocess.DEVNULL, check=False)


def test_version_file_matches_the_package() -> None:
    assert wyngq.__version__ == VERSION


def test_install_vm_installs_the_package_and_the_command_only(tmp_path: Path) -> None:
    make("install-vm", tmp_path)

    installed = tree(tmp_path)
    expected = {f"{SITELIB}/{source}": 0o644 for source in package_sources()}
    expected["/usr/bin/wyng-util-qubes"] = 0o755
    expected |= SHARED
    assert installed == expected


def test_the_installed_command_runs_the_installed_package(tmp_path: Path) -> None:
    destdir = tmp_path / "root"
    make("install-vm", destdir)
    # A `wyngq` in the working directory must not be imported (python3 -P).
    decoy = tmp_path / "cwd" / "wyngq"
    decoy.mkdir(parents=True)
    (decoy / "__init__.py").write_text("raise SystemExit('imported the wrong wyngq')\n")

    done = run_installed(destdir, decoy.parent, "--json", "version")

    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert (result["type"], result["ok"], result["version"]) == ("result", True, VERSION)
    launcher = (destdir / "usr/bin/wyng-util-qubes").read_text()
    assert f'exec {sys.executable} -P -m wyngq "$@"' in launcher


def test_install_dom0_adds_the_service_policy_profile_and_salt(tmp_path: Path) -> None:
    missing = [p for p in DOM0_ONLY if not (ROOT / p).is_file()]
    if missing:
        pytest.fail("cannot install for dom0: the tree lacks " + ", ".join(missing), pytrace=False)
    make("install", tmp_path)

    installed = tree(tmp_path)
    assert {k: v for k, v in installed.items() if not k.startswith(f"{SITELIB}/")} == {
        "/usr/bin/wyng-util-qubes": 0o755,
        **SHARED,
        "/etc/qubes-rpc/qubes.WyngBackup": 0o755,
        "/etc/qubes/policy.d/90-default-wyng-util-qubes.policy": 0o664,
        "/etc/qubes/policy.d/30-user-wyng-util-qubes.policy": 0o664,
        "/etc/wyng-util-qubes/profiles/example.toml.sample": 0o644,
        "/srv/salt/_modules/wyngq.py": 0o644,
        "/srv/salt/_states/wyngq.py": 0o644,
        "/usr/lib/systemd/system/wyng-util-qubes-backup@.service": 0o644,
        "/usr/lib/systemd/system/wyng-util-qubes-backup@.timer": 0o644,
        "/etc/logrotate.d/wyng-util-qubes": 0o644,
    }
    for source in ("qubes-rpc/qubes.WyngBackup", "salt/_states/wyngq.py"):
        installed_path = {"qubes-rpc/qubes.WyngBackup": "etc/qubes-rpc/qubes.WyngBackup",
                          "salt/_states/wyngq.py": "srv/salt/_states/wyngq.py"}[source]
        assert (tmp_path / installed_path).read_bytes() == (ROOT / source).read_bytes()


def test_the_example_profile_is_a_valid_profile() -> None:
    import tomllib

    from wyngq.profile import parse_profile

    with open(ROOT / "wyngq/data/wyng-util-qubes.example.toml", "rb") as handle:
        profile = parse_profile("example", tomllib.load(handle))
    assert profile.dest.startswith("file:") and profile.passphrase.configured


def test_qubesbuilder_lists_the_dom0_and_vm_specs() -> None:
    yaml = pytest.importorskip("yaml")
    config = yaml.safe_load((ROOT / ".qubesbuilder").read_text())
    assert config == {
        "host": {"rpm": {"build": ["rpm_spec/wyng-util-qubes.spec"]}},
        "vm": {"rpm": {"build": ["rpm_spec/wyng-util-qubes-vm.spec"]}, "deb": {"build": ["debian"]}},
    }
    for spec in ("wyng-util-qubes", "wyng-util-qubes-vm"):
        assert (ROOT / "rpm_spec" / f"{spec}.spec.in").is_file()
    assert (ROOT / "debian" / "rules").is_file()
