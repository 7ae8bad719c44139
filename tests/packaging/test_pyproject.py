"""pyproject.toml says what the packages install: the same name, version, license,
Python, command and files as the RPMs, the Debian package and `make install`."""

from __future__ import annotations

import fnmatch
import json
import re
import subprocess
import sys
import tomllib
import warnings
from pathlib import Path

import pytest

import wyngq
from tests.packaging.test_rpm import package_sources

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SPEC = (ROOT / "rpm_spec/wyng-util-qubes.spec.in").read_text()
VM_SPEC = (ROOT / "rpm_spec/wyng-util-qubes-vm.spec.in").read_text()
CONTROL = (ROOT / "debian/control").read_text()


def spec_field(spec: str, name: str) -> str:
    match = re.search(rf"^{name}:\s*(.+)$", spec, re.MULTILINE)
    assert match, name
    return match.group(1).strip()


def test_name_summary_and_license_match_the_packages() -> None:
    meta = PROJECT["project"]
    assert meta["name"] == spec_field(SPEC, "Name") == "wyng-util-qubes"
    assert meta["description"] == spec_field(SPEC, "Summary")
    assert meta["license"] == {"text": "GPL-3.0-or-later"}
    assert spec_field(SPEC, "License") == spec_field(VM_SPEC, "License") == "GPL-3.0-or-later"
    assert "License :: OSI Approved :: GNU General Public License v3 or later (GPLv3+)" in meta["classifiers"]
    assert PROJECT["tool"]["setuptools"]["license-files"] == ["LICENSE"]
    license_text = (ROOT / "LICENSE").read_text()
    assert license_text.lstrip().startswith("GNU GENERAL PUBLIC LICENSE") and "Version 3, 29 June 2007" in license_text
    assert "License: GPL-3+" in (ROOT / "debian/copyright").read_text()
    for spec in (SPEC, VM_SPEC):
        assert "%license LICENSE" in spec and "%doc README.md docs" in spec


def test_python_version_matches_the_packages() -> None:
    assert PROJECT["project"]["requires-python"] == ">=3.11"
    assert "Requires:       python3 >= 3.11" in SPEC and "Requires:       python3 >= 3.11" in VM_SPEC
    assert "python3 (>= 3.11)" in CONTROL
    assert PROJECT["project"]["dependencies"] == []  # qubesadmin comes from the dom0 package


def test_version_is_the_version_file() -> None:
    assert PROJECT["project"]["dynamic"] == ["version"]
    assert PROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "wyngq.__version__"}
    assert wyngq.__version__ == (ROOT / "version").read_text().strip()


def test_the_command_is_the_one_the_launcher_runs() -> None:
    assert PROJECT["project"]["scripts"] == {"wyng-util-qubes": "wyngq.cli:command"}
    # The packages' launcher runs `python3 -P -m wyngq`, whose __main__ calls the same function.
    main = (ROOT / "wyngq/__main__.py").read_text()
    assert "from wyngq.cli import command" in main and "command()" in main
    assert "-P -m wyngq" in (ROOT / "Makefile").read_text()


@pytest.mark.parametrize(("args", "status", "code"), [(["version"], 0, "ok"), (["--no-such-option"], 2, "usage")])
def test_the_command_exits_with_mains_status_and_prints_its_result_line(args: list[str], status: int,
                                                                        code: str) -> None:
    done = subprocess.run([sys.executable, "-m", "wyngq", "--json", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == status, done.stderr
    assert json.loads(done.stdout.splitlines()[-1])["code"] == code


def test_package_files_are_the_ones_the_packages_install() -> None:
    patterns = [f"wyngq/{p}" for p in PROJECT["tool"]["setuptools"]["package-data"]["wyngq"]]
    data = {str(p.relative_to(ROOT)) for p in (ROOT / "wyngq").rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and not p.name.endswith(".py")}
    by_pyproject = {p for p in data if any(fnmatch.fnmatch(p, pattern) for pattern in patterns)}
    code = {str(p.relative_to(ROOT)) for p in (ROOT / "wyngq").rglob("*.py") if "__pycache__" not in p.parts}
    assert code | by_pyproject == package_sources()
    # What stays out of site-packages is installed elsewhere by the dom0 package.
    assert data - by_pyproject == {"wyngq/data/systemd/wyng-util-qubes-backup@.service",
                                   "wyngq/data/systemd/wyng-util-qubes-backup@.timer",
                                   "wyngq/data/logrotate/wyng-util-qubes"}


def test_setuptools_reads_the_configuration() -> None:
    """setuptools validates pyproject.toml against its schema and resolves the version."""
    pyprojecttoml = pytest.importorskip("setuptools.config.pyprojecttoml")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # [tool.setuptools] is "beta" in older setuptools
        config = pyprojecttoml.read_configuration(str(ROOT / "pyproject.toml"))
    assert config["project"]["version"] == wyngq.__version__
    assert config["project"]["scripts"] == {"wyng-util-qubes": "wyngq.cli:command"}
