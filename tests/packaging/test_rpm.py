"""Build the dom0 and management-qube RPMs from the working tree and check what they hold.

This is what qubes-builder v2 does, minus its cages: fill in `@VERSION@` and
`@CHANGELOG@`, make `wyng-util-qubes-VERSION.tar.gz` of the tree, `rpmbuild -ba`.
Needs `rpmbuild` and `rpm` (Debian: `apt-get install rpm`); no network.
`--nodeps` because BuildRequires name Fedora packages that Debian's rpm
database cannot know about.
"""

from __future__ import annotations

import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VERSION = (ROOT / "version").read_text().strip()

pytestmark = pytest.mark.skipif(
    shutil.which("rpmbuild") is None or shutil.which("rpm") is None,
    reason="rpmbuild/rpm not installed (Debian: apt-get install rpm)",
)

# Files the dom0 package installs from the tree; the last three are written
# with the qrexec service and must exist before the RPM can be built.
SERVICE = "qubes-rpc/qubes.WyngBackup"
POLICIES = ("policy/90-default-wyng-util-qubes.policy", "policy/30-user-wyng-util-qubes.policy")

CHANGELOG = f"* Thu Jan 01 2026 wyngq tests <tests@localhost> - {VERSION}-1\n- Built by tests/packaging/test_rpm.py"


@dataclass(frozen=True)
class FileEntry:
    mode: int
    user: str
    group: str
    flags: str  # rpm's fflags: c = %config, n = noreplace, d = %doc, ...


@dataclass(frozen=True)
class BuiltRpm:
    path: Path

    def query(self, fmt: str) -> str:
        return _run(["rpm", "-qp", "--queryformat", fmt, str(self.path)])

    def files(self) -> dict[str, FileEntry]:
        fields = ("%{FILENAMES}", "%{FILEMODES:octal}", "%{FILEUSERNAME}", "%{FILEGROUPNAME}", "%{FILEFLAGS:fflags}")
        out = self.query("[" + "\\t".join(fields) + "\\n]")
        entries = {}
        for line in out.splitlines():
            name, mode, user, group, flags = line.split("\t")
            entries[name] = FileEntry(int(mode, 8), user, group, flags)
        return entries

    def requires(self) -> list[str]:
        return _run(["rpm", "-qp", "--requires", str(self.path)]).splitlines()

    def config_files(self) -> list[str]:
        return _run(["rpm", "-qp", "-c", str(self.path)]).split()

    def scripts(self) -> str:
        return _run(["rpm", "-qp", "--scripts", str(self.path)])


def _run(argv: list[str], cwd: Path | None = None) -> str:
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout


def tree_files() -> list[str]:
    """The working tree as git would archive it once committed: tracked and
    untracked files, without ignored ones (caches, build output)."""
    if (ROOT / ".git").exists() and shutil.which("git"):
        out = _run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT)
        return sorted(p for p in out.split("\0") if p and (ROOT / p).is_file())
    skip = {".git", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".hypothesis", ".benchmarks"}
    return sorted(
        str(p.relative_to(ROOT)) for p in ROOT.rglob("*") if p.is_file() and not skip & set(p.relative_to(ROOT).parts)
    )


def source_tarball(dest: Path) -> Path:
    prefix = f"wyng-util-qubes-{VERSION}"
    tarball = dest / f"{prefix}.tar.gz"
    with tarfile.open(tarball, "w:gz") as archive:
        for name in tree_files():
            archive.add(ROOT / name, arcname=f"{prefix}/{name}", recursive=False)
    return tarball


def render_spec(template: Path, dest: Path) -> Path:
    text = template.read_text().replace("@VERSION@", VERSION).replace("@CHANGELOG@", CHANGELOG)
    spec = dest / template.name.removesuffix(".in")
    spec.write_text(text)
    return spec


@pytest.fixture(scope="module")
def rpms(tmp_path_factory: pytest.TempPathFactory) -> dict[str, BuiltRpm]:
    missing = [p for p in (SERVICE, *POLICIES) if not (ROOT / p).is_file()]
    if missing:
        pytest.fail(
            "cannot build the dom0 RPM: the tree lacks " + ", ".join(missing)
            + " (the qrexec service and its policy files, which the package installs)",
            pytrace=False,
        )
    top = tmp_path_factory.mktemp("rpmbuild")
    for sub in ("SOURCES", "SPECS", "BUILD", "RPMS", "SRPMS"):
        (top / sub).mkdir()
    source_tarball(top / "SOURCES")
    built = {}
    for name in ("wyng-util-qubes", "wyng-util-qubes-vm"):
        spec = render_spec(ROOT / "rpm_spec" / f"{name}.spec.in", top / "SPECS")
        _run(["rpmbuild", "-ba", "--nodeps", "--define", f"_topdir {top}", str(spec)])
        built[name] = BuiltRpm(top / "RPMS" / "noarch" / f"{name}-{VERSION}-1.noarch.rpm")
    return built


def package_sources() -> set[str]:
    return {
        str(p.relative_to(ROOT))
        for p in (ROOT / "wyngq").rglob("*")
        if p.is_file() and p.suffix in (".py", ".toml", ".json") and "__pycache__" not in p.parts
    }


def documents() -> set[str]:
    """What %doc ships: the README and every document under docs/."""
    return {"README.md", *(f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md"))}


def split_shared(files: dict[str, FileEntry]) -> tuple[dict[str, FileEntry], dict[str, FileEntry]]:
    """(the documentation, man page, completion and license both packages carry; the rest).

    Where they land depends on the rpm macros (Fedora: /usr/share/doc/NAME, compressed
    man pages; older rpm: /usr/share/doc/NAME-VERSION), so they are found by name."""
    shared = {p: e for p, e in files.items()
              if p.startswith(("/usr/share/doc/", "/usr/share/licenses/", "/usr/share/man/man1/wyng-util-qubes.1"))
              or p == "/usr/share/bash-completion/completions/wyng-util-qubes"}
    return shared, {p: e for p, e in files.items() if p not in shared}


def check_shared(files: dict[str, FileEntry], name: str) -> None:
    shared, _ = split_shared(files)
    docs = {p: e for p, e in shared.items() if p.startswith("/usr/share/doc/") and e.mode & 0o100000}
    doc_dir = next(p.removesuffix("/README.md") for p in docs if p.endswith("/README.md"))
    assert doc_dir in (f"/usr/share/doc/{name}", f"/usr/share/doc/{name}-{VERSION}")
    assert {p.removeprefix(doc_dir + "/") for p in docs} == documents()
    assert all(e == FileEntry(0o100644, "root", "root", "d") for e in docs.values())
    licenses = {p: e for p, e in shared.items() if p.startswith("/usr/share/licenses/")}
    assert {p.rsplit("/", 1)[-1]: e for p, e in licenses.items() if e.mode & 0o100000} == {
        "LICENSE": FileEntry(0o100644, "root", "root", "l")}
    man = [p for p in shared if p.startswith("/usr/share/man/man1/")]
    assert man in (["/usr/share/man/man1/wyng-util-qubes.1"], ["/usr/share/man/man1/wyng-util-qubes.1.gz"])
    assert shared[man[0]] == FileEntry(0o100644, "root", "root", "d")  # rpm marks man pages as documentation
    assert shared["/usr/share/bash-completion/completions/wyng-util-qubes"].mode == 0o100644


def sitelib_of(files: dict[str, FileEntry]) -> str:
    init = next(name for name in files if name.endswith("/wyngq/__init__.py"))
    return init.removesuffix("/wyngq/__init__.py")


def test_dom0_rpm_identity(rpms: dict[str, BuiltRpm]) -> None:
    rpm = rpms["wyng-util-qubes"]
    assert rpm.query("%{NAME} %{VERSION} %{RELEASE} %{ARCH}") == f"wyng-util-qubes {VERSION} 1 noarch"
    requires = rpm.requires()
    assert "python3-qubesadmin" in requires
    assert "python3 >= 3.11" in requires
    assert "sudo" in requires  # the qrexec service gets root for Wyng with sudo -n
    assert "Built by tests/packaging/test_rpm.py" in rpm.query("%{CHANGELOGTEXT}")


def test_dom0_rpm_files_modes_and_config_flags(rpms: dict[str, BuiltRpm]) -> None:
    files = rpms["wyng-util-qubes"].files()
    sitelib = sitelib_of(files)
    assert sitelib.startswith("/usr/lib/python3") and sitelib.endswith("-packages")

    def entry(path: str, mode: int, user: str = "root", group: str = "root", flags: str = "") -> None:
        assert path in files, f"{path} is not in the package"
        assert files[path] == FileEntry(mode, user, group, flags), path

    entry("/usr/bin/wyng-util-qubes", 0o100755)
    entry("/etc/qubes-rpc/qubes.WyngBackup", 0o100755)
    entry("/etc/qubes/policy.d/90-default-wyng-util-qubes.policy", 0o100664, group="qubes", flags="c")
    entry("/etc/qubes/policy.d/30-user-wyng-util-qubes.policy", 0o100664, group="qubes", flags="cn")
    entry("/etc/wyng-util-qubes/profiles/example.toml.sample", 0o100644, flags="c")
    entry("/srv/salt/_modules", 0o40750)
    entry("/srv/salt/_states", 0o40750)
    entry("/srv/salt/_modules/wyngq.py", 0o100644)
    entry("/srv/salt/_states/wyngq.py", 0o100644)
    entry("/usr/lib/systemd/system/wyng-util-qubes-backup@.service", 0o100644)
    entry("/usr/lib/systemd/system/wyng-util-qubes-backup@.timer", 0o100644)
    entry("/etc/logrotate.d/wyng-util-qubes", 0o100644, flags="cn")
    for source in package_sources():
        entry(f"{sitelib}/{source}", 0o100644)
    check_shared(files, "wyng-util-qubes")
    # Only what the spec means to ship: the package (with its bytecode, where
    # rpm compiles it), the command, the service, policy, profile and Salt,
    # besides the documentation, man page, completion and license.
    shipped = {p for p in split_shared(files)[1] if not p.startswith(f"{sitelib}/wyngq")}
    assert shipped == {
        "/usr/bin/wyng-util-qubes",
        "/etc/qubes-rpc/qubes.WyngBackup",
        "/etc/qubes/policy.d/90-default-wyng-util-qubes.policy",
        "/etc/qubes/policy.d/30-user-wyng-util-qubes.policy",
        "/etc/wyng-util-qubes",
        "/etc/wyng-util-qubes/profiles",
        "/etc/wyng-util-qubes/profiles/example.toml.sample",
        "/srv/salt/_modules",
        "/srv/salt/_modules/wyngq.py",
        "/srv/salt/_states",
        "/srv/salt/_states/wyngq.py",
        "/usr/lib/systemd/system/wyng-util-qubes-backup@.service",
        "/usr/lib/systemd/system/wyng-util-qubes-backup@.timer",
        "/etc/logrotate.d/wyng-util-qubes",
    }


def test_dom0_rpm_config_list_and_salt_sync(rpms: dict[str, BuiltRpm]) -> None:
    rpm = rpms["wyng-util-qubes"]
    assert sorted(rpm.config_files()) == [
        "/etc/logrotate.d/wyng-util-qubes",
        "/etc/qubes/policy.d/30-user-wyng-util-qubes.policy",
        "/etc/qubes/policy.d/90-default-wyng-util-qubes.policy",
        "/etc/wyng-util-qubes/profiles/example.toml.sample",
    ]
    scripts = rpm.scripts()
    assert "qubesctl saltutil.sync_all refresh=true" in scripts
    assert "[ -x /usr/bin/qubesctl ]" in scripts  # no Salt, no failure


def test_dom0_rpm_systemd_scriptlets_for_the_timer_template(rpms: dict[str, BuiltRpm]) -> None:
    rpm = rpms["wyng-util-qubes"]
    post, preun, postun = (rpm.query(f"%{{{tag}}}") for tag in ("POSTIN", "PREUN", "POSTUN"))
    units = "wyng-util-qubes-backup@.timer wyng-util-qubes-backup@.service"
    # Installed: presets apply (a template enables nothing by itself), only on first install.
    assert units in post and "preset" in post.replace("install-system-units", "preset")
    # Removed: the template disabled, its running instances stopped, only when nothing is left.
    assert units in preun and "disable" in preun.replace("remove-system-units", "disable")
    assert "stop 'wyng-util-qubes-backup@*.timer' 'wyng-util-qubes-backup@*.service'" in preun
    assert "[ $1 -eq 0 ]" in preun
    # Upgraded: systemd reloads the units; nothing restarts (that would start a backup).
    assert units in postun or "daemon-reload" in postun
    assert "restart" not in "".join(line for line in postun.splitlines() if not line.lstrip().startswith("#"))


def test_dom0_rpm_payload_holds_the_launcher_and_the_package(rpms: dict[str, BuiltRpm], tmp_path: Path) -> None:
    """Unpack the payload (rpm2archive, from Debian's rpm2cpio package) and read the command."""
    rpm = rpms["wyng-util-qubes"]
    copy = tmp_path / rpm.path.name
    shutil.copy(rpm.path, copy)
    _run(["rpm2archive", str(copy)])
    with tarfile.open(f"{copy}.tgz") as payload:
        members = {m.name.removeprefix("."): m for m in payload.getmembers()}
        launcher_file = payload.extractfile(members["/usr/bin/wyng-util-qubes"])
        assert launcher_file is not None
        launcher = launcher_file.read().decode()
    assert launcher.splitlines()[0] == "#!/bin/sh"
    assert 'exec /usr/bin/python3 -P -m wyngq "$@"' in launcher
    sitelib = sitelib_of(rpm.files())
    assert f"{sitelib}/wyngq/__main__.py" in members
    policy = members["/etc/qubes/policy.d/90-default-wyng-util-qubes.policy"]
    assert (policy.mode, policy.uname, policy.gname) == (0o664, "root", "qubes")


def test_vm_rpm_has_the_command_only(rpms: dict[str, BuiltRpm]) -> None:
    rpm = rpms["wyng-util-qubes-vm"]
    assert rpm.query("%{NAME} %{VERSION} %{ARCH}") == f"wyng-util-qubes-vm {VERSION} noarch"
    requires = rpm.requires()
    assert "python3-qubesadmin" not in requires
    assert "qubes-core-qrexec-vm" in requires
    files = rpm.files()
    sitelib = sitelib_of(files)
    assert files["/usr/bin/wyng-util-qubes"].mode == 0o100755
    check_shared(files, "wyng-util-qubes-vm")
    assert {p for p in split_shared(files)[1] if not p.startswith(f"{sitelib}/wyngq")} == {"/usr/bin/wyng-util-qubes"}
    assert rpm.config_files() == []
    assert rpm.scripts() == ""


def test_source_rpm_carries_the_rendered_spec(rpms: dict[str, BuiltRpm]) -> None:
    srpm = rpms["wyng-util-qubes"].path.parents[2] / "SRPMS" / f"wyng-util-qubes-{VERSION}-1.src.rpm"
    listed = _run(["rpm", "-qpl", str(srpm)]).split()
    assert sorted(listed) == sorted(["wyng-util-qubes.spec", f"wyng-util-qubes-{VERSION}.tar.gz"])
