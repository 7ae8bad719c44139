"""wyngq.process.run with hostile output: linear reading, bounded memory, and children
stopped when they stall, run too long or print too much. CPU and memory are those
of this process (tests/bounds.py), the child's own cost is not counted."""

from __future__ import annotations

import sys

import pytest

from tests.bounds import MIB, measure
from wyngq import process

# Writes SIZE bytes of PATTERN to stdout in writes of CHUNK bytes.
WRITER = """\
import os, sys
size, chunk, pattern = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3].encode().decode("unicode_escape").encode()
block = (pattern * (chunk // len(pattern) + 1))[:chunk]
for _ in range(size // chunk):
    os.write(1, block)
"""


def _writer(size: int, chunk: int, pattern: str) -> list[str]:
    return [sys.executable, "-c", WRITER, str(size), str(chunk), pattern]


@pytest.mark.parametrize(("pattern", "lines"), [
    ("|", 0),  # a progress bar that never ends its line
    ("x" * 1023 + "\\r", 32 * 1024),  # lines ended by carriage returns only
], ids=["no line breaks", "only carriage returns"])
def test_output_without_line_breaks_costs_linear_time_and_bounded_memory(pattern: str, lines: int) -> None:
    seen: list[int] = []
    partial: list[int] = []
    usage = measure(lambda: process.run(_writer(32 * MIB, 4096, pattern), on_stdout_line=lambda s: seen.append(len(s)),
                                        on_partial_line=lambda s: partial.append(len(s))))
    assert usage.error is None, usage.error
    done = usage.value
    assert done.returncode == 0 and done.truncated
    assert len(done.stdout) < process.MAX_KEPT_BYTES + 2 * process.TAIL_BYTES
    assert max(partial, default=0) <= process.MAX_LINE_BYTES and max(seen) <= process.MAX_LINE_BYTES
    assert len(seen) == max(lines, 1)
    # the old reader re-split and re-decoded the whole unfinished line for every chunk:
    # 32 MiB in 4 KiB writes took minutes of CPU; linear reading takes well under a few seconds
    assert usage.cpu_seconds < 5.0, usage.cpu_seconds
    assert usage.within_reader_bounds(), usage.peak_bytes / MIB


def test_the_end_of_a_long_output_is_kept() -> None:
    script = "import sys; sys.stdout.write('x' * (20 * 1024 * 1024) + '\\nError: the last line\\n')"
    done = process.run([sys.executable, "-c", script])
    assert done.truncated and done.stdout.endswith("Error: the last line\n")
    assert "[... output dropped ...]" in done.stdout


def test_a_child_that_prints_nothing_for_the_idle_timeout_is_stopped() -> None:
    script = "import time; print('started', flush=True); time.sleep(60)"
    usage = measure(lambda: process.run([sys.executable, "-c", script], idle_timeout=1.0))
    done = usage.value
    assert done.stopped == "stalled" and done.returncode < 0 and done.stdout == "started\n"


def test_a_child_that_ignores_sigterm_is_killed_after_the_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(process, "STOP_GRACE", 1.0)
    script = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
    done = process.run([sys.executable, "-c", script], idle_timeout=0.5)
    assert done.stopped == "stalled" and done.returncode == -9


def test_a_helper_left_holding_the_pipe_is_not_waited_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(process, "STOP_GRACE", 1.0)
    # the child starts a grandchild in its own session (as Wyng's destination helper) that keeps stdout open
    script = ("import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(5)'],"
              " start_new_session=True); time.sleep(60)")
    done = process.run([sys.executable, "-c", script], idle_timeout=0.5)
    assert done.stopped == "stalled"


def test_output_keeps_a_child_alive_past_the_idle_timeout() -> None:
    script = "import time\nfor n in range(4):\n    print(n, flush=True); time.sleep(0.4)"
    done = process.run([sys.executable, "-c", script], idle_timeout=1.0)
    assert (done.stopped, done.returncode, done.stdout.split()) == (None, 0, ["0", "1", "2", "3"])


def test_a_child_that_runs_past_its_timeout_or_prints_too_much_is_stopped() -> None:
    trickle = "import time\nwhile True:\n    print('.', flush=True); time.sleep(0.1)"
    assert process.run([sys.executable, "-c", trickle], timeout=1.0, idle_timeout=5).stopped == "timeout"
    flood = "import sys\nwhile True:\n    sys.stdout.write('x' * 65536); sys.stdout.flush()"
    done = process.run([sys.executable, "-c", flood], max_stdout=4096)
    assert done.stopped == "overflow"
