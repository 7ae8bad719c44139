"""In the processes the tests start (the CLI, the qrexec service, the client):
check every JSON line against the schema, as tests/conftest.py does in the
test process itself. Active only when the test session sets FAILURES_ENV; the
check is installed once wyngq.output is imported, so other programs (the fake
Wyng) pay nothing."""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import json
import os
import sys
from types import ModuleType

FAILURES = os.environ.get("WYNGQ_TEST_CONTRACT_FAILURES")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _record(problems: list[str], document: object) -> None:
    assert FAILURES is not None
    with open(FAILURES, "a", encoding="utf-8") as handle:
        handle.write(json.dumps({"argv": sys.argv, "problems": problems, "line": document}, default=str) + "\n")


class _AfterOutput(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: object, target: object = None) -> importlib.machinery.ModuleSpec | None:
        if name != "wyngq.output":
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)  # type: ignore[arg-type]
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        run = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            run(module)
            if ROOT not in sys.path:
                sys.path.append(ROOT)
            try:
                from tests import contract
            except ImportError:
                return
            if contract.available():
                contract.install(_record)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


if FAILURES:
    sys.meta_path.insert(0, _AfterOutput())
