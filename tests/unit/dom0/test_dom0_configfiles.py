"""wyngq.dom0.configfiles: the configuration files a user wrote, asked of rpm
(its fake at the program boundary, tests/fakes/fake_rpm.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.unit.dom0.trees import make_tree
from wyngq.dom0 import configfiles, rpm
from wyngq.errors import ConfigError

SYSTEM = {
    "etc/qubes/policy.d/30-user.policy": b"qubes.Filecopy * work vault deny\n",
    "etc/qubes/policy.d/90-default.policy": b"# packaged\n",
    "etc/qubes/policy.d/include/admin-local-rwx": b"mgmt @tag:x allow\n",
    "etc/qubes-rpc/my.Service": b"#!/bin/sh\n",
    "etc/qubes-rpc/qubes.Filecopy": b"packaged\n",
    "srv/user_salt/top.sls": b"base: {}\n",
    "srv/user_pillar/p.sls": b"x: 1\n",
    "srv/salt/custom.top": b"base: {}\n",
    "srv/salt/qvm/state.sls": b"not a top file\n",
    "etc/wyng-util-qubes/profiles/laptop.toml": b'dest = "file:/x"\n',
    "etc/wyng-util-qubes/profiles/laptop.pass": b"secret\n",
    "etc/wyng-util-qubes/laptop.pass": b"secret\n",
    "etc/qubes/backup/nightly.conf": b"destination_vm: backup\n",
    "etc/qubes/backup/withpass.conf": b"passphrase_text: hunter22\n",
    "etc/passwd": b"root:x:0:0\n",
}
OWNED = ["/etc/qubes/policy.d/90-default.policy", "/etc/qubes-rpc/qubes.Filecopy", "/usr/bin/qvm-ls"]


def fake_rpm(tmp_path: Path, owned: list[str], fail: bool = False) -> str:
    listing = tmp_path / "owned.txt"
    listing.write_text("".join(f"{p}\n" for p in owned))
    program = tmp_path / "rpm"
    program.write_text(f"#!/bin/sh\nexport FAKE_RPM_OWNED='{listing}' FAKE_RPM_FAIL='{int(fail)}'\n"
                       f'exec "{sys.executable}" "{Path(__file__).parents[2] / "fakes" / "fake_rpm.py"}" "$@"\n')
    program.chmod(0o755)
    return str(program)


def test_only_files_no_package_owns_travel_with_the_directories_leading_to_them(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "root", SYSTEM)
    program = fake_rpm(tmp_path, OWNED)

    chosen = configfiles.select(str(root), lambda dirs: rpm.owned_files(dirs, program),
                                secret_files=["/etc/wyng-util-qubes/laptop.pass"])

    assert [e.path for e in chosen.files] == [
        "etc/qubes/backup/nightly.conf",
        "etc/qubes/policy.d/30-user.policy",
        "etc/qubes/policy.d/include/admin-local-rwx",
        "etc/qubes-rpc/my.Service",
        "etc/wyng-util-qubes/profiles/laptop.toml",
        "srv/salt/custom.top",
        "srv/user_pillar/p.sls",
        "srv/user_salt/top.sls",
    ]
    directories = [e.path for e in chosen.entries if e.kind == "dir"]
    assert directories[:4] == ["etc", "etc/qubes", "etc/qubes/backup", "etc/qubes/policy.d"]
    assert chosen.left_out == (
        ("/etc/qubes/backup/withpass.conf", "a qvm-backup profile holding its passphrase (passphrase_text)"),)


def test_a_passphrase_file_named_by_a_profile_never_travels(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "root", {"srv/user_salt/wyng.pass": b"secret\n", "srv/user_salt/a.sls": b"a\n"})

    chosen = configfiles.select(str(root), lambda dirs: (), secret_files=["/srv/user_salt/wyng.pass"])

    assert [e.path for e in chosen.files] == ["srv/user_salt/a.sls"]
    assert chosen.left_out == (("/srv/user_salt/wyng.pass", "a passphrase file named by a profile"),)


def test_rpm_is_asked_once_for_every_owned_file_beneath_the_roots(tmp_path: Path) -> None:
    program = fake_rpm(tmp_path, OWNED)

    assert rpm.owned_files(["/etc/qubes-rpc", "/etc/qubes/policy.d/"], program) == {
        "/etc/qubes/policy.d/90-default.policy", "/etc/qubes-rpc/qubes.Filecopy"}


def test_a_failing_rpm_is_a_configuration_error_not_an_empty_answer(tmp_path: Path) -> None:
    program = fake_rpm(tmp_path, OWNED, fail=True)

    with pytest.raises(ConfigError, match="cannot ask rpm which files packages own: error: rpmdb"):
        rpm.owned_files(["/etc"], program)


def test_the_fake_rpm_refuses_a_query_wyngq_does_not_make(tmp_path: Path) -> None:
    import subprocess

    done = subprocess.run([fake_rpm(tmp_path, OWNED), "-qf", "/etc/passwd"], capture_output=True, text=True)

    assert done.returncode == 1 and "unexpected arguments" in done.stderr
