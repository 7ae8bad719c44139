"""Who imports whom: the qrexec service and the client never import the CLI, and
the contract package is neutral (no cli, no rpc) and cheap to import."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PACKAGE = ROOT / "wyngq"


def imported(path: Path) -> set[str]:
    """Every module `path` imports, wherever in the file (functions included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def test_the_service_and_the_client_never_import_the_cli() -> None:
    files = [*sorted((PACKAGE / "rpc").rglob("*.py")), PACKAGE / "client.py"]
    assert len(files) > 5
    offending = {str(f.relative_to(ROOT)): sorted(m for m in imported(f) if m == "wyngq.cli" or
                                                  m.startswith("wyngq.cli."))
                 for f in files}
    assert {f: m for f, m in offending.items() if m} == {}


def test_the_walk_sees_an_import_of_the_cli(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from wyngq.cli.restore import x\n")
    assert "wyngq.cli.restore" in imported(sample)


def test_the_contract_imports_neither_cli_nor_rpc() -> None:
    for path in sorted((PACKAGE / "contract").rglob("*.py")):
        assert not [m for m in imported(path) if m.startswith(("wyngq.cli", "wyngq.rpc"))], path


def test_the_contract_is_cheap_to_import() -> None:
    """Importing the events, results and serializer loads nothing of wyngq but them and the errors."""
    code = ("import sys, json; import wyngq.contract.events, wyngq.contract.results, wyngq.contract.serialize; "
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith('wyngq'))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert json.loads(done.stdout) == ["wyngq", "wyngq.contract", "wyngq.contract.events", "wyngq.contract.results",
                                       "wyngq.contract.serialize", "wyngq.errors"]
