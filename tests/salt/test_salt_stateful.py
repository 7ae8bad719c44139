"""Salt's `cmd.run` with `stateful: True` reads the command's stdout: one JSON
object (or a last line of key=value pairs) whose `changed` and `comment` keys
become the state's changes and comment (salt.states.cmd._reinterpreted_state).

With `--json --quiet` the command prints only the result line, and every
result has `changed` (bool) and `comment` (one line), so a plain `cmd.run`
with `stateful: True` works (README, SaltStack).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, FakeWyngFactory


def salt_stateful(stdout: str) -> dict[str, object]:
    """What Salt's stateful protocol takes from the output: a JSON object with
    `changed` and `comment` (else Salt fails the state or shows no change)."""
    data = json.loads(stdout)
    assert isinstance(data, dict), "Salt needs one JSON object on stdout"
    assert isinstance(data.get("changed"), bool), "the result needs `changed`"
    assert isinstance(data.get("comment"), str), "the result needs `comment`"
    return data


def test_backup_output_follows_salts_stateful_protocol(tmp_path: Path, fake_wyng: FakeWyngFactory) -> None:
    pool = tmp_path / "pool"
    pool.mkdir()
    (tmp_path / "archive").mkdir()
    world = tmp_path / "world.json"
    world.write_text(json.dumps({"pools": {"varlibqubes": str(pool)},
                                 "qubes": [{"name": "work", "klass": "AppVM", "data": {"private": "ab" * 5000}}]}))
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), "WYNGQ_LOCK_PATH": str(tmp_path / "lock"),
           "WYNGQ_STATE_DIR": str(tmp_path / "state")}
    base = [sys.executable, "-m", "tests.integration.cli_driver", str(world), f"--dest=file:{tmp_path / 'archive'}",
            f"--wyng={fake_wyng()}", "--json", "--quiet", "--unattended"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*base, *args], capture_output=True, text=True, env=env, cwd=ROOT,
                              stdin=subprocess.DEVNULL, timeout=120, check=False)

    assert run("create", "--encrypt=off").returncode == 0
    done = run("backup", "work")
    assert done.returncode == 0, done.stderr
    result = salt_stateful(done.stdout)
    assert result["changed"] is True and result["session"]
    unchanged = salt_stateful(run("list").stdout)
    assert unchanged["changed"] is False
    # test mode (`test_name: ... backup --dry-run`): Salt shows `result: None` only when
    # the stateful output says `changed`, so a dry run says whether the real run would change
    would = salt_stateful(run("backup", "--dry-run", "work").stdout)
    assert would["changed"] is True and would["dry_run"] is True and would["comment"].startswith("dry run")
    not_due = salt_stateful(run("backup", "--max-age=1d", "work").stdout)
    assert not_due["changed"] is False and not_due["comment"].startswith("nothing due")
