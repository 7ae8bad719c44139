"""wyngq.process.run: streaming, and signals that are never lost whenever they come.

The signal tests run real children and send real signals to this process; the
handler the caller had before (here: raising `Stop`) is what the CLI's is (raising
Interrupted)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from wyngq import process
from wyngq.errors import ConfigError

# A child that exits 143 on SIGTERM, 8 on SIGINT (as Wyng does), after `sleep` seconds otherwise.
CHILD = """\
import signal, sys, time
signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))
signal.signal(signal.SIGINT, lambda *a: sys.exit(8))
print("started", flush=True)
time.sleep(float(sys.argv[1]))
print("done", flush=True)
"""


class Stop(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _raise_stop(signum: int, _frame: object) -> None:
    raise Stop(signum)


@pytest.fixture
def caller_handlers() -> Iterator[None]:
    previous = {s: signal.signal(s, _raise_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    for signum, handler in previous.items():
        signal.signal(signum, handler)


def child(sleep: float) -> list[str]:
    return [sys.executable, "-c", CHILD, str(sleep)]


def test_lines_and_partial_lines_are_streamed() -> None:
    lines: list[str] = []
    partial: list[str] = []
    done = process.run([sys.executable, "-c", "import sys; sys.stdout.write('a\\rb\\nc'); sys.stdout.flush()"],
                       on_stdout_line=lines.append, on_partial_line=partial.append)
    assert (done.returncode, done.stdout, lines) == (0, "a\rb\nc", ["a", "b", "c"])
    assert partial == ["c"]


def test_stdin_is_fed_and_closed() -> None:
    done = process.run([sys.executable, "-c", "import sys; print(sys.stdin.read()[::-1])"], stdin=b"secret")
    assert done.stdout == "terces\n"


def test_a_missing_program_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="program not found"):
        process.run(["/nonexistent/wyng"])


@pytest.mark.usefixtures("caller_handlers")
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_the_child_runs_is_passed_on_once(signum: int) -> None:
    started = time.monotonic()

    def on_line(line: str) -> None:
        if line == "started":
            os.kill(os.getpid(), signum)
            os.kill(os.getpid(), signum)  # a second Ctrl-C is not passed on again

    done = process.run(child(30), on_stdout_line=on_line)

    assert done.returncode == (8 if signum == signal.SIGINT else 143)
    assert "done" not in done.stdout
    assert time.monotonic() - started < 20


@pytest.mark.usefixtures("caller_handlers")
def test_a_signal_right_after_the_child_started_reaches_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """The old window: between Popen returning and the handlers going in, a signal
    raised in the caller and left Wyng running (in its own session) on its own."""
    real_popen = subprocess.Popen
    children: list[subprocess.Popen[bytes]] = []

    def popen_then_signal(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        started = real_popen(*args, **kwargs)
        children.append(started)
        os.kill(os.getpid(), signal.SIGTERM)
        return started

    monkeypatch.setattr(subprocess, "Popen", popen_then_signal)

    done = process.run(child(30))

    assert done.returncode in (143, -signal.SIGTERM)  # by its handler, or before it had one
    assert children[0].poll() == done.returncode


@pytest.mark.usefixtures("caller_handlers")
def test_a_signal_before_the_child_exists_is_passed_on_when_it_does(monkeypatch: pytest.MonkeyPatch) -> None:
    real_popen = subprocess.Popen

    def signal_then_popen(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        os.kill(os.getpid(), signal.SIGINT)
        return real_popen(*args, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", signal_then_popen)

    done = process.run(child(30))

    assert done.returncode in (8, -signal.SIGINT)  # by its handler, or before it had one


# Children the signal does not stop: one ignores it and exits 0 (the signal came as it
# finished), one fails in another way (exit 1) as it comes.
NOT_STOPPED = {
    "ignored, exit 0": (signal.SIGINT, "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); "
                                       "print('started', flush=True); time.sleep(0.5)"),
    "other failure, exit 1": (signal.SIGTERM, "import signal, sys, time; "
                                              "signal.signal(signal.SIGTERM, lambda *a: None); "
                                              "print('started', flush=True); time.sleep(0.3); sys.exit(1)"),
}


@pytest.mark.usefixtures("caller_handlers")
@pytest.mark.parametrize(("signum", "script"), NOT_STOPPED.values(), ids=NOT_STOPPED.keys())
def test_a_signal_the_child_did_not_end_on_reaches_the_caller_afterwards(signum: int, script: str) -> None:
    """The child's own outcome is returned to nobody: the caller is interrupted."""

    def on_line(line: str) -> None:
        os.kill(os.getpid(), signum)

    with pytest.raises(Stop) as stopped:
        process.run([sys.executable, "-c", script], on_stdout_line=on_line)

    assert stopped.value.signum == signum


@pytest.mark.usefixtures("caller_handlers")
def test_a_signal_when_the_program_is_missing_reaches_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    def signal_then_fail(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        os.kill(os.getpid(), signal.SIGTERM)
        raise FileNotFoundError(2, "No such file")

    monkeypatch.setattr(subprocess, "Popen", signal_then_fail)

    with pytest.raises(Stop):
        process.run(["/nonexistent/wyng"])


def test_the_caller_handlers_are_back_afterwards(caller_handlers: None) -> None:
    process.run(child(0))
    assert signal.getsignal(signal.SIGINT) is _raise_stop
    assert signal.getsignal(signal.SIGTERM) is _raise_stop


@pytest.mark.usefixtures("caller_handlers")
def test_a_sigterm_after_a_sigint_still_reaches_a_child_that_ignored_the_first() -> None:
    stubborn = [sys.executable, "-c", "import signal, sys, time; signal.signal(signal.SIGINT, signal.SIG_IGN); "
                "signal.signal(signal.SIGTERM, lambda *a: sys.exit(143)); print('started', flush=True); "
                "time.sleep(30)"]
    started = time.monotonic()

    def on_line(line: str) -> None:
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGTERM)

    done = process.run(stubborn, on_stdout_line=on_line)

    assert done.returncode == 143 and time.monotonic() - started < 20
