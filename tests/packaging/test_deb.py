"""Build the management-qube Debian package with dpkg-buildpackage and check what it holds.

Many management qubes run Debian or Whonix templates. The package carries the
command (which forwards to dom0 over qrexec), its man page, completion and
documents, and nothing dom0-only. Built in a copy of the tree, since
dpkg-buildpackage writes into the tree and its parent folder.
Needs dpkg-dev, debhelper and dh-python (Debian's packages).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.packaging.test_rpm import package_sources, tree_files

ROOT = Path(__file__).resolve().parents[2]
VERSION = (ROOT / "version").read_text().strip()
SITELIB = "/usr/lib/python3/dist-packages"

pytestmark = pytest.mark.skipif(
    any(shutil.which(tool) is None for tool in ("dpkg-buildpackage", "dh", "dh_python3", "dpkg-deb")),
    reason="dpkg-dev, debhelper or dh-python not installed (apt-get install dpkg-dev debhelper dh-python)",
)


@dataclass(frozen=True)
class Entry:
    mode: str  # as dpkg-deb -c prints it, e.g. -rwxr-xr-x
    owner: str


@dataclass(frozen=True)
class BuiltDeb:
    path: Path

    def field(self, name: str) -> str:
        return subprocess.run(["dpkg-deb", "-f", str(self.path), name], capture_output=True, text=True,
                              check=True).stdout.strip()

    def files(self) -> dict[str, Entry]:
        out = subprocess.run(["dpkg-deb", "-c", str(self.path)], capture_output=True, text=True, check=True).stdout
        entries = {}
        for line in out.splitlines():
            mode, owner, _size, _date, _time, name = line.split(None, 5)
            if not mode.startswith("d"):
                entries[name.removeprefix(".")] = Entry(mode, owner)
        return entries

    def control_member(self, name: str) -> str | None:
        done = subprocess.run(["dpkg-deb", "-I", str(self.path), name], capture_output=True, text=True, check=False)
        return done.stdout if done.returncode == 0 else None


@pytest.fixture(scope="module")
def deb(tmp_path_factory: pytest.TempPathFactory) -> BuiltDeb:
    top = tmp_path_factory.mktemp("deb")
    source = top / f"wyng-util-qubes-{VERSION}"
    for name in tree_files():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, source / name)  # keeps the modes (debian/rules is executable)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "DEB_", "DH_"))}
    done = subprocess.run(["dpkg-buildpackage", "-b", "-us", "-uc"], cwd=source, env=env,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return BuiltDeb(top / f"wyng-util-qubes-vm_{VERSION}-1_all.deb")


def test_the_changelog_version_is_the_version_file() -> None:
    first = (ROOT / "debian/changelog").read_text().splitlines()[0]
    assert re.match(rf"wyng-util-qubes \({re.escape(VERSION)}-\d+\) ", first), first


def test_deb_identity_and_dependencies(deb: BuiltDeb) -> None:
    assert (deb.field("Package"), deb.field("Version"), deb.field("Architecture")) == (
        "wyng-util-qubes-vm", f"{VERSION}-1", "all")
    depends = [d.strip() for d in deb.field("Depends").split(",")]
    assert "python3 (>= 3.11)" in depends and "qubes-core-qrexec" in depends
    assert not any("qubesadmin" in d for d in depends)


def test_deb_holds_the_command_its_docs_and_nothing_dom0_only(deb: BuiltDeb) -> None:
    files = deb.files()
    assert all(e.owner == "root/root" for e in files.values())
    assert files["/usr/bin/wyng-util-qubes"].mode == "-rwxr-xr-x"
    package = {p for p in files if p.startswith(f"{SITELIB}/wyngq/")}
    assert package == {f"{SITELIB}/{source}" for source in package_sources()}
    docs = {p for p in files if p.startswith("/usr/share/doc/wyng-util-qubes-vm/")}
    documents = {"README.md", *(f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md"))}
    assert {p.removeprefix("/usr/share/doc/wyng-util-qubes-vm/").removesuffix(".gz") for p in docs} == documents | {
        "changelog.Debian", "copyright"}
    rest = set(files) - package - docs
    assert rest == {"/usr/bin/wyng-util-qubes", "/usr/share/man/man1/wyng-util-qubes.1.gz",
                    "/usr/share/bash-completion/completions/wyng-util-qubes"}
    assert all(files[p].mode == "-rw-r--r--" for p in set(files) - {"/usr/bin/wyng-util-qubes"})
    assert deb.control_member("conffiles") is None  # no /etc at all: nothing of dom0's


def test_deb_byte_compiles_on_install_and_cleans_on_removal(deb: BuiltDeb) -> None:
    postinst, prerm = deb.control_member("postinst"), deb.control_member("prerm")
    assert postinst is not None and "py3compile -p wyng-util-qubes-vm" in postinst
    assert prerm is not None and "py3clean -p wyng-util-qubes-vm" in prerm


def test_the_installed_client_and_man_page_work(deb: BuiltDeb, tmp_path: Path) -> None:
    root = tmp_path / "root"
    subprocess.run(["dpkg-deb", "-x", str(deb.path), str(root)], check=True)
    launcher = (root / "usr/bin/wyng-util-qubes").read_text()
    assert 'exec /usr/bin/python3 -P -m wyngq "$@"' in launcher
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": f"{root}{SITELIB}", "WYNGQ_REMOTE": "1"}
    done = subprocess.run([sys.executable, "-P", "-m", "wyngq", "--json", "version"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1])["version"] == VERSION
    if shutil.which("man") is not None:
        page = subprocess.run(["man", "-l", str(root / "usr/share/man/man1/wyng-util-qubes.1.gz")],
                              capture_output=True, text=True, check=False, env={**os.environ, "MANWIDTH": "100"})
        assert page.returncode == 0 and page.stderr == "" and "MANAGEMENT QUBE" in re.sub(".\b", "", page.stdout)
