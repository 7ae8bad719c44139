"""Shared fixtures: the fake Qubes, the fake `wyng`, and the lab-tier switch."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import contract

ROOT = Path(__file__).resolve().parent.parent
# Real recorded Wyng outputs, kept in the repository (tests/fixtures/README.md).
FIXTURES = ROOT / "tests" / "fixtures" / "wyng"
FAKE_WYNG = ROOT / "tests" / "fakes" / "fake_wyng.py"

IN_LAB = os.environ.get("WYNGQ_LAB") == "1" and os.path.exists(os.environ.get("QUBESD_SOCKET", ""))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "lab: needs the wyngq lab (real qubesd and Wyng)")
    config.addinivalue_line("markers", "outside_contract: writes JSON lines that are not contract lines on purpose")


# -- every JSON line written in a test validates against the shipped schema (tests/contract.py) --
_CONTRACT_PROBLEMS: list[str] = []


def _contract_problem(problems: list[str], document: object) -> None:
    _CONTRACT_PROBLEMS.append(f"{problems} in {json.dumps(document, default=str)[:600]}")


@pytest.fixture(scope="session", autouse=True)
def _contract_checked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path | None]:
    """The test process's JsonLines, and (through tests/contract_site) the CLI and
    service processes the tests start, check each line they write."""
    if not contract.available():
        yield None
        return
    contract.install(_contract_problem)
    failures = tmp_path_factory.mktemp("contract") / "failures.jsonl"
    failures.touch()
    saved = {key: os.environ.get(key) for key in (contract.FAILURES_ENV, "PYTHONPATH")}
    os.environ[contract.FAILURES_ENV] = str(failures)
    # last: a sitecustomize already on the path (the lab's, which points qubesadmin at
    # the lab's qubesd) stays the one Python runs; then those processes go unchecked
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [saved["PYTHONPATH"],
                                                             str(ROOT / "tests" / "contract_site")]))
    yield failures
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(autouse=True)
def _every_line_in_the_contract(request: pytest.FixtureRequest, _contract_checked: Path | None) -> Iterator[None]:
    _CONTRACT_PROBLEMS.clear()
    seen = _contract_checked.stat().st_size if _contract_checked is not None else 0
    yield
    if request.node.get_closest_marker("outside_contract") is not None:
        return
    problems = list(_CONTRACT_PROBLEMS)
    if _contract_checked is not None:
        with open(_contract_checked, encoding="utf-8") as handle:
            handle.seek(seen)
            problems += handle.read().splitlines()
    assert not problems, "JSON lines outside the schema (docs/json.md):\n" + "\n".join(problems[:5])


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip = pytest.mark.skip(reason='needs the wyngq lab: lab up; eval "$(lab env)" (docs/development.md)')
    for item in items:
        if "lab" in item.keywords and not IN_LAB:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _private_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test writes dom0's state or takes dom0's lock: the job and archive records
    and the operation lock of every test (and of the CLI it starts) live in tmp_path."""
    monkeypatch.setenv("WYNGQ_STATE_DIR", str(tmp_path / "wyngq-state"))
    monkeypatch.setenv("WYNGQ_LOCK_PATH", str(tmp_path / "wyngq-default.lock"))


class FakeWyngFactory:
    """Writes executables that run the fake Wyng with a fixed environment
    (lock, call log, injected faults), so no test touches os.environ."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.lock = root / "fake-wyng.lock"
        self.log = root / "fake-wyng-calls.jsonl"

    def __call__(self, name: str = "wyng", **env: str) -> str:
        settings = {"FAKE_WYNG_LOCK": str(self.lock), "FAKE_WYNG_LOG": str(self.log), **env}
        exports = "".join(f"export {key}='{value}'\n" for key, value in settings.items())
        wrapper = self.root / "bin" / name
        wrapper.parent.mkdir(parents=True, exist_ok=True)
        wrapper.write_text(f'#!/bin/sh\n{exports}exec "{sys.executable}" "{FAKE_WYNG}" "$@"\n')
        wrapper.chmod(0o755)
        return str(wrapper)

    def interrupting_receive(self, otherwise: str) -> str:
        """A `wyng` whose data receive (`--local-from`) is interrupted (as by Ctrl-C);
        every other call goes to the executable `otherwise`."""
        interrupting = self("wyng-interrupting", FAKE_WYNG_FAIL="interrupt")
        wrapper = self.root / "bin" / "wyng-interrupt-data"
        wrapper.write_text(f'#!/bin/sh\ncase "$*" in *--local-from*) exec "{interrupting}" "$@";; esac\n'
                           f'exec "{otherwise}" "$@"\n')
        wrapper.chmod(0o755)
        return str(wrapper)

    def calls(self) -> list[dict[str, object]]:
        import json

        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines() if line]


@pytest.fixture
def fake_wyng(tmp_path: Path) -> FakeWyngFactory:
    """Factory of fake `wyng` executables living in tmp_path."""
    return FakeWyngFactory(tmp_path)
