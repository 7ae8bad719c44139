"""CI tier: the qrexec service as a real process, the way qrexec runs it: the
wrapper's command line, argv and the QREXEC_* environment, stdin closed after
the request, JSON Lines on stdout, the exit status, and a caller that
disconnects while the backup runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, FakeWyngFactory
from tests.integration.rpc_driver import describe
from tests.integration.rpc_world import ALL_ACTIONS, PROFILE, RpcWorld, make_rpc_world

WRAPPER = ROOT / "qubes-rpc" / "qubes.WyngBackup"
SUDO_LINE = "sudo=/usr/bin/sudo"
COMMAND_LINES = [
    SUDO_LINE,
    'set -- /usr/bin/python3 -I -m wyngq.rpc.service "${QREXEC_REMOTE_DOMAIN-}" "${1-}"',
    'if "$sudo" -n -l "$@" >/dev/null 2>&1; then',
    '    exec "$sudo" -n "$@"',
]


def qrexec_env(caller: str, action: str) -> dict[str, str]:
    """What qrexec-daemon gives a dom0 service (docs/facts.md), on top of a minimal environment."""
    return {
        "PATH": os.environ["PATH"],
        "QREXEC_REMOTE_DOMAIN": caller,
        "QREXEC_SERVICE_FULL_NAME": f"qubes.WyngBackup+{action}",
        "QREXEC_SERVICE_ARGUMENT": action,
        "QREXEC_REQUESTED_TARGET_TYPE": "keyword",
        "QREXEC_REQUESTED_TARGET_KEYWORD": "adminvm",
    }


@pytest.fixture
def rpc(tmp_path: Path, fake_wyng: FakeWyngFactory) -> RpcWorld:
    return make_rpc_world(tmp_path, fake_wyng)


def service(rpc: RpcWorld, caller: str, action: str) -> list[str]:
    world = rpc.root / "world.json"
    world.write_text(json.dumps(describe(rpc.dom0.qubes, rpc.config)))
    return [sys.executable, "-m", "tests.integration.rpc_driver", str(world), caller, action]


def run(rpc: RpcWorld, action: str, request: bytes, caller: str = "mgmt",
        env: dict[str, str] | None = None) -> tuple[int, list[dict[str, Any]], str]:
    done = subprocess.run(service(rpc, caller, action), input=request, capture_output=True, cwd=ROOT,
                          env=env or qrexec_env(caller, action), timeout=120)
    lines = [json.loads(line) for line in done.stdout.decode().splitlines()]
    assert lines and lines[-1]["type"] == "result", (done.stdout, done.stderr)
    return done.returncode, lines, done.stderr.decode()


# -- the wrapper ------------------------------------------------------------------------
def test_the_wrapper_is_an_executable_shell_script_with_one_fixed_command_line() -> None:
    assert os.access(WRAPPER, os.X_OK)
    subprocess.run(["sh", "-n", str(WRAPPER)], check=True)
    commands = [line for line in WRAPPER.read_text().splitlines() if line and not line.startswith("#")]
    assert commands[:4] == COMMAND_LINES
    assert commands[-1] == "exit 3"


def wrapper_with_sudo(tmp_path: Path, sudo_body: str) -> Path:
    fake = tmp_path / "sudo"
    fake.write_text(f"#!{sys.executable}\nimport json, os, sys\n{sudo_body}")
    fake.chmod(0o755)
    copy = tmp_path / "qubes.WyngBackup"
    text = WRAPPER.read_text()
    assert text.count(SUDO_LINE) == 1
    copy.write_text(text.replace(SUDO_LINE, f"sudo={fake}"))
    copy.chmod(0o755)
    return copy


@pytest.mark.parametrize(
    ("caller", "argument", "expected"),
    [
        ("mgmt", ["backup"], ["mgmt", "backup"]),
        ("mgmt", [], ["mgmt", ""]),  # qrexec passes no $1 for an empty argument
        ("mgmt", ["-h"], ["mgmt", "-h"]),
        ("mgmt", ["a b;c$(id)"], ["mgmt", "a b;c$(id)"]),
        ("", ["list"], ["", "list"]),
    ],
)
def test_the_wrapper_hands_caller_and_action_to_sudo_as_two_plain_arguments(
    tmp_path: Path, caller: str, argument: list[str], expected: list[str]
) -> None:
    log = tmp_path / "sudo-calls"
    copy = wrapper_with_sudo(tmp_path, f"open({str(log)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
                                       "if sys.argv[2] != '-l':\n"
                                       "    print(json.dumps({'argv': sys.argv[1:], 'stdin': sys.stdin.read()}))\n")

    done = subprocess.run([str(copy), *argument], input=b'{"profile": "laptop"}', capture_output=True,
                          env=qrexec_env(caller, argument[0] if argument else ""), check=True)

    command = ["/usr/bin/python3", "-I", "-m", "wyngq.rpc.service", *expected]
    seen = json.loads(done.stdout)
    assert seen["argv"] == ["-n", *command]
    assert seen["stdin"] == '{"profile": "laptop"}'
    assert [json.loads(line) for line in log.read_text().splitlines()] == [["-n", "-l", *command], ["-n", *command]]


def test_when_sudo_refuses_the_caller_gets_a_result_line_not_silence(tmp_path: Path) -> None:
    copy = wrapper_with_sudo(tmp_path, "print('sudo: a password is required', file=sys.stderr)\nsys.exit(1)\n")

    done = subprocess.run([str(copy), "backup"], input=b'{"profile": "laptop"}', capture_output=True,
                          env=qrexec_env("mgmt", "backup"))

    (line,) = [json.loads(x) for x in done.stdout.decode().splitlines()]
    assert done.returncode == 3
    assert (line["type"], line["ok"], line["exit_code"], line["code"]) == ("result", False, 3, "config")
    assert "sudoers" in line["hint"] and "sudo -n refused" in done.stderr.decode()


# -- the service module's own command line ----------------------------------------------------
@pytest.mark.parametrize("args", [[], ["mgmt"], ["mgmt", "list", "extra"]])
def test_the_module_refuses_a_command_line_that_is_not_caller_and_action(args: list[str]) -> None:
    done = subprocess.run([sys.executable, "-m", "wyngq.rpc.service", *args], capture_output=True, cwd=ROOT,
                          stdin=subprocess.DEVNULL, timeout=60)
    (line,) = [json.loads(x) for x in done.stdout.decode().splitlines()]
    assert done.returncode == 2
    assert line["type"] == "result" and line["code"] == "usage"


# -- the service as a process --------------------------------------------------------------
def test_backup_through_the_process(rpc: RpcWorld) -> None:
    status, lines, _ = run(rpc, "backup", b'{"profile": "laptop", "qubes": ["work"]}')
    assert status == 0
    assert lines[0]["type"] == "job" and lines[-1]["ok"] is True
    assert lines[-1]["session"] in rpc.dom0.wyng().catalog().sessions()
    assert rpc.audit()[-1]["caller"] == "mgmt"


def test_the_environment_is_not_trusted_only_the_arguments(rpc: RpcWorld) -> None:
    env = qrexec_env("personal", "list") | {"PYTHONWARNINGS": "error"}
    status, lines, _ = run(rpc, "backup", b'{"profile": "laptop", "qubes": ["work"]}', env=env)
    assert status == 0 and lines[-1]["action"] == "backup"
    assert rpc.audit()[-1]["caller"] == "mgmt" and rpc.audit()[-1]["action"] == "backup"


@pytest.mark.parametrize(
    ("action", "request_", "status", "code"),
    [
        ("delete", b'{"profile": "laptop"}', 2, "bad_request"),
        ("backup", b'{"profile": "laptop", "qubes": ["-x"]}', 2, "bad_request"),
        ("backup", b"\xff\xfe", 2, "bad_request"),
        ("backup", b"x" * (1 << 20), 2, "bad_request"),
        ("backup", b'{"profile": "nosuch"}', 4, "not_permitted"),
        ("backup", b'{"profile": "laptop", "qubes": ["untrusted"]}', 4, "not_permitted"),
    ],
    ids=["unknown action", "bad qube name", "not utf-8", "1 MiB", "no such profile", "qube not in profile"],
)
def test_refusals_through_the_process(rpc: RpcWorld, action: str, request_: bytes, status: int, code: str) -> None:
    got, lines, _ = run(rpc, action, request_)
    assert (got, lines[-1]["code"]) == (status, code)
    assert len(lines) == 1
    assert rpc.wyng_calls() == []


def test_a_caller_that_disconnects_does_not_stop_the_backup(rpc: RpcWorld, fake_wyng: FakeWyngFactory) -> None:
    slow = fake_wyng("wyng-slow", FAKE_WYNG_DELAY="1.5")
    rpc.profile(PROFILE.format(dest=rpc.dom0.dest, wyng=slow, actions=ALL_ACTIONS))
    child = subprocess.Popen(service(rpc, "mgmt", "backup"), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, cwd=ROOT, env=qrexec_env("mgmt", "backup"))
    assert child.stdin is not None and child.stdout is not None and child.stderr is not None
    child.stdin.write(b'{"profile": "laptop", "qubes": ["work", "vault"]}')
    child.stdin.close()
    first = json.loads(child.stdout.readline())
    child.stdout.close()  # the management qube shut down: the read end of the pipe is gone

    status = child.wait(timeout=120)
    stderr = child.stderr.read().decode()
    child.stderr.close()

    assert first["type"] == "job"
    assert status == 0, stderr
    assert "the caller went away" in stderr
    (job,) = rpc.jobs()
    assert (job.id, job.state, job.code, job.caller_gone) == (first["id"], "finished", "ok", True)
    assert job.session in rpc.dom0.wyng().catalog().sessions()
    assert rpc.audit()[-1]["outcome"] == "ok" and rpc.audit()[-1]["caller_gone"] is True


# -- `status` in dom0's CLI reads the same records ------------------------------------------
def test_the_dom0_cli_shows_the_jobs_of_qrexec_calls(rpc: RpcWorld) -> None:
    session = rpc.call("backup", {"profile": "laptop", "qubes": ["work"]}).result["session"]
    env = {"PATH": os.environ["PATH"], "WYNGQ_STATE_DIR": rpc.config.state_dir,
           "WYNGQ_PROFILE_DIR": rpc.config.profile_dir}

    done = subprocess.run([sys.executable, "-m", "wyngq", "status", "--json"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    result = json.loads(done.stdout.splitlines()[-1])
    assert done.returncode == 0, done.stderr
    (job,) = result["jobs"]["laptop"]
    assert (job["action"], job["caller"], job["code"], job["session"]) == ("backup", "mgmt", "ok", session)

    one = subprocess.run([sys.executable, "-m", "wyngq", "--profile=laptop", "status", "--json"], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert list(json.loads(one.stdout.splitlines()[-1])["jobs"]) == ["laptop"]
