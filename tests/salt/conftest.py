"""Load the Salt module and state as Salt's loader would, without Salt: execute
the file, then inject `__salt__`, `__opts__` and `__context__`."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests import contract
from tests.conftest import ROOT

SALT_DIR = ROOT / "salt"


def load(kind: str) -> ModuleType:
    """A fresh copy of salt/<kind>/wyngq.py (kind: _modules or _states)."""
    path = SALT_DIR / kind / "wyngq.py"
    spec = importlib.util.spec_from_file_location(f"salt_ext{kind}_wyngq", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def result_line(**fields: Any) -> str:
    ok = fields.get("exit_code", 0) == 0
    return json.dumps({"type": "result", "ok": ok, "exit_code": 0, "code": "ok" if ok else "error", **fields})


@dataclass
class FakeCmd:
    """Salt's `cmd.run_all`: records each call and answers with `handler(argv)`:
    (retcode, stdout, stderr)."""

    handler: Callable[[list[str]], tuple[int, str, str]]
    calls: list[tuple[list[str], dict[str, Any]]] = field(default_factory=list)

    def __call__(self, argv: Sequence[str], **kwargs: Any) -> dict[str, Any]:
        assert kwargs.get("python_shell") is False, "the module must never use a shell"
        self.calls.append((list(argv), kwargs))
        retcode, stdout, stderr = self.handler(list(argv))
        return {"retcode": retcode, "stdout": stdout, "stderr": stderr, "pid": 1}

    @property
    def argvs(self) -> list[list[str]]:
        return [argv for argv, _ in self.calls]


def run_for_real(cwd: Path, scratch: Path) -> Callable[..., dict[str, Any]]:
    """A `cmd.run_all` that really runs the command, like Salt's: `env` is
    added to the minion's environment. The command's operation lock lives in
    `scratch`, so no other run on this machine makes it busy."""

    def run_all(argv: Sequence[str], *, env: dict[str, str] | None = None, **kwargs: Any) -> dict[str, Any]:
        assert kwargs.get("python_shell") is False
        full_env = {**os.environ, "PYTHONPATH": str(ROOT), "WYNGQ_LOCK_PATH": str(scratch / "wyngq.lock"),
                    **(env or {})}
        done = subprocess.run(list(argv), capture_output=True, text=True, env=full_env, cwd=cwd,
                              stdin=subprocess.DEVNULL, timeout=120, check=False)
        if contract.available():  # what the module parses is the contract (docs/json.md)
            problems = [p for line in done.stdout.splitlines() if line.startswith("{")
                        for p in contract.check(json.loads(line))]
            assert problems == [], problems
        return {"retcode": done.returncode, "stdout": done.stdout, "stderr": done.stderr, "pid": 1}

    return run_all


@pytest.fixture
def module() -> ModuleType:
    mod = load("_modules")
    mod.__opts__ = {}
    mod.__context__ = {}
    mod.__salt__ = {}
    return mod


@pytest.fixture
def state() -> ModuleType:
    mod = load("_states")
    mod.__opts__ = {"test": False}
    mod.__salt__ = {}
    return mod
