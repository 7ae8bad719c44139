"""Lab tier: qubes.WyngBackup as qrexec runs it, against real qubesd, the real
qrexec policy parser and linter, and real Wyng.

- The shipped policy files pass qrexec's own linter; the commented example,
  uncommented, does too.
- `lab-qrexec-call` (the real policy parser over qubesd's real system info)
  with the shipped default-deny file plus a test file: allowed, denied and ask
  cases for each action, and the shipped example for a management qube.
- A management qube backs up and restores a qube through the service, run the
  way qrexec runs it (QREXEC_* environment, the action as $1, the request on
  stdin), and the result is checked in the lab's qubesd and on disk.

The service is started through a copy of the shipped wrapper in which only
`sudo=/usr/bin/sudo` is replaced (the lab has no sudo and no installed
package): the stand-in answers the wrapper's `sudo -n -l` check and runs a
small harness calling the service's `main()` with the caller and action the
wrapper passes, and paths under tmp_path instead of /etc, /var/log and /var/lib.
Run under `flock /tmp/wyngq-wyng.lock` (one Wyng per machine).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.lab.conftest import SMALL, Lab
from wyngq.profile import RPC_ACTIONS

pytestmark = pytest.mark.lab

POLICY = ROOT / "policy"
DEFAULT = POLICY / "90-default-wyng-util-qubes.policy"
EXAMPLE = POLICY / "30-user-wyng-util-qubes.policy"
WRAPPER = ROOT / "qubes-rpc" / "qubes.WyngBackup"
SUDO_LINE = "sudo=/usr/bin/sudo"
SERVICE_COMMAND = ["/usr/bin/python3", "-I", "-m", "wyngq.rpc.service"]
DENIED = 126

STUB_SERVICE = """#!/bin/sh
# Stands in for the service when only the policy decision is under test.
echo "ran action=$1 caller=$QREXEC_REMOTE_DOMAIN"
"""

HARNESS = """\
import sys
# called as `sudo -n [-l] /usr/bin/python3 -I -m wyngq.rpc.service CALLER ACTION`
assert sys.argv[1] == "-n", sys.argv
if sys.argv[2] == "-l":
    sys.exit(0)
assert sys.argv[2:-2] == {command!r}, sys.argv
sys.path.insert(0, {root!r})
import json, resource
from wyngq.rpc.service import Config, main
status = main(sys.argv[-2:], Config(profile_dir={profiles!r}, log_dir={log!r}, state_dir={state!r},
                                   lock_path={lock!r}))
# what the service itself used (not Wyng, its child), for the tests of bounded reading: the peak
# RSS of this process image (VmHWM), not ru_maxrss, which Linux carries over from before exec and
# so reports the test process's own size once the suite has grown
usage = resource.getrusage(resource.RUSAGE_SELF)
with open("/proc/self/status", encoding="ascii") as handle:
    peak = next(int(line.split()[1]) for line in handle if line.startswith("VmHWM:"))
with open({usage!r}, "w") as handle:
    json.dump({{"max_rss_kib": peak, "cpu_seconds": usage.ru_utime + usage.ru_stime}}, handle)
sys.exit(status)
"""


def qrexec_source() -> str:
    return os.path.join(os.environ["WYNGQ_LAB_HOME"], "src", "qubes-core-qrexec")


def lint(path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": qrexec_source()}
    return subprocess.run([sys.executable, "-m", "qrexec.tools.qubes_policy_lint", "-s", str(path)],
                          capture_output=True, text=True, env=env, timeout=60)


def uncommented_example(caller: str) -> str:
    """The shipped example with its rules switched on, for `caller`."""
    lines = []
    for line in EXAMPLE.read_text().splitlines():
        if line.startswith("#qubes.WyngBackup"):
            lines.append(line[1:].replace("backup-mgmt", caller))
    return "\n".join(lines) + "\n"


def wide_ps_env() -> dict[str, str]:
    """The environment with `ps` output never cut at 80 columns. Wyng finds its key
    agent by its command line in `ps` output: with TERM set and no terminal (as
    under pytest) procps cuts lines at 80 columns and Wyng never sees an agent,
    so neither uses nor ends one. Wide, the agent tests below mean something."""
    env = {k: v for k, v in os.environ.items() if k != "TERM"}
    env["COLUMNS"] = "4096"
    return env


def qrexec_call(source: str, action: str, policy_dir: Path, services_dir: Path, *, assume_yes: bool = False,
                stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    argv = ["lab-qrexec-call", "--policy-dir", str(policy_dir), "--services-dir", str(services_dir)]
    argv += ["--assume-yes"] if assume_yes else []
    argv += [source, "@adminvm", f"qubes.WyngBackup+{action}"]
    return subprocess.run(argv, input=stdin, capture_output=True, timeout=600, env=wide_ps_env())


def policy_dir(tmp_path: Path, name: str, user_rules: str | None) -> Path:
    """A policy.d with the shipped default-deny file and, if given, a user file."""
    directory = tmp_path / name
    directory.mkdir()
    (directory / DEFAULT.name).write_text(DEFAULT.read_text())
    if user_rules is not None:
        (directory / "30-user-wyng-util-qubes.policy").write_text(user_rules)
    return directory


def stub_services(tmp_path: Path) -> Path:
    directory = tmp_path / "stub-rpc"
    directory.mkdir(exist_ok=True)
    (directory / "qubes.WyngBackup").write_text(STUB_SERVICE)
    (directory / "qubes.WyngBackup").chmod(0o755)
    return directory


# -- the linter --------------------------------------------------------------------------
@pytest.mark.parametrize("path", [DEFAULT, EXAMPLE], ids=lambda p: p.name)
def test_shipped_policy_files_pass_the_qrexec_linter(path: Path) -> None:
    done = lint(path)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_example_switched_on_passes_the_linter(tmp_path: Path) -> None:
    path = tmp_path / "30-user-wyng-util-qubes.policy"
    path.write_text(uncommented_example("backup-mgmt"))
    done = lint(path)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_linter_does_reject_a_bad_rule(tmp_path: Path) -> None:
    """Guard: the linter run above is a real one."""
    path = tmp_path / "30-bad.policy"
    path.write_text("qubes.WyngBackup +re$tore mgmt @adminvm allow\n")
    assert lint(path).returncode != 0


# -- policy decisions by the real parser ----------------------------------------------------
@pytest.fixture
def qubes_for_policy(lab: Lab) -> tuple[str, str]:
    tpl = lab.create("tpl", "TemplateVM", label="black")
    mgmt = lab.create("mgmt", "AppVM", template=tpl, label="purple")
    other = lab.create("other", "AppVM", template=tpl, label="red")
    return mgmt.name, other.name


@pytest.mark.parametrize("action", RPC_ACTIONS)
def test_allowed_denied_and_ask_for_each_action(tmp_path: Path, qubes_for_policy: tuple[str, str],
                                                action: str) -> None:
    mgmt, other = qubes_for_policy
    services = stub_services(tmp_path)
    allow = policy_dir(tmp_path, "allow", f"qubes.WyngBackup  +{action}  {mgmt}  @adminvm  allow target=dom0\n")
    ask = policy_dir(tmp_path, "ask", f"qubes.WyngBackup  +{action}  {mgmt}  @adminvm  ask default_target=dom0\n")
    default = policy_dir(tmp_path, "default", None)

    allowed = qrexec_call(mgmt, action, allow, services)
    assert allowed.returncode == 0, allowed.stderr
    assert allowed.stdout.decode() == f"ran action={action} caller={mgmt}\n"

    assert qrexec_call(other, action, allow, services).returncode == DENIED  # another qube
    for other_action in set(RPC_ACTIONS) - {action}:  # the rule allows one action only
        assert qrexec_call(mgmt, other_action, allow, services).returncode == DENIED
    assert qrexec_call(mgmt, action, default, services).returncode == DENIED  # the shipped default alone

    assert qrexec_call(mgmt, action, ask, services).returncode == DENIED  # ask, not confirmed
    confirmed = qrexec_call(mgmt, action, ask, services, assume_yes=True)
    assert confirmed.returncode == 0 and confirmed.stdout.decode().startswith(f"ran action={action} ")


def test_the_shipped_example_for_a_management_qube(tmp_path: Path, qubes_for_policy: tuple[str, str]) -> None:
    mgmt, other = qubes_for_policy
    services = stub_services(tmp_path)
    policies = policy_dir(tmp_path, "example", uncommented_example(mgmt))
    expected = {"list": 0, "status": 0, "backup": 0, "verify": 0, "restore": DENIED, "prune": DENIED}
    got = {action: qrexec_call(mgmt, action, policies, services).returncode for action in RPC_ACTIONS}
    assert got == expected
    assert qrexec_call(mgmt, "restore", policies, services, assume_yes=True).returncode == 0  # ask
    assert {qrexec_call(other, a, policies, services).returncode for a in RPC_ACTIONS} == {DENIED}
    assert qrexec_call(mgmt, "delete", policies, services).returncode == DENIED


# -- a management qube's backup and restore through the service --------------------------------
class Dom0:
    """The service installed in the lab, with a profile, and a management qube's calls to it."""

    def __init__(self, lab: Lab, tmp_path: Path, mgmt: str, app: str, tpl: str) -> None:
        self.lab = lab
        self.mgmt = mgmt
        self.dest = f"file:{lab.archive_dir}/rpc.wyng"
        self.paths = {name: tmp_path / name for name in ("profiles", "log", "state")}
        for path in self.paths.values():
            path.mkdir()
        profile = (
            f'dest = "{self.dest}"\nwyng = "{lab.wyng}"\nmeta_dir = "{lab.meta_dir}"\n'
            f'[qubes]\ninclude = ["{app}", "{tpl}"]\n'
            '[rpc]\nallow_unauthenticated_restore = true\n'
            f'[[rpc.allow]]\ncallers = ["{mgmt}"]\nactions = ["list", "backup", "restore", "status", "verify"]\n'
            'on_conflict = ["fail", "replace"]\n'
        )
        (self.paths["profiles"] / "lab.toml").write_text(profile)
        strict = profile.replace("allow_unauthenticated_restore = true", "allow_unauthenticated_restore = false")
        (self.paths["profiles"] / "lab-strict.toml").write_text(strict)
        sudo = tmp_path / "sudo"
        sudo.write_text(f"#!{sys.executable}\n" + HARNESS.format(
            root=str(ROOT), command=SERVICE_COMMAND, profiles=str(self.paths["profiles"]),
            log=str(self.paths["log"]), state=str(self.paths["state"]), lock=str(tmp_path / "wyngq.lock"),
            usage=str(tmp_path / "service-usage.json")))
        self.usage_file = tmp_path / "service-usage.json"
        sudo.chmod(0o755)
        wrapper = WRAPPER.read_text()
        assert wrapper.count(SUDO_LINE) == 1
        self.services = tmp_path / "qubes-rpc"
        self.services.mkdir()
        service = self.services / "qubes.WyngBackup"
        service.write_text(wrapper.replace(SUDO_LINE, f"sudo={sudo}"))
        service.chmod(0o755)
        self.policies = policy_dir(tmp_path, "policy", uncommented_example(mgmt))

    def call(self, action: str, request: dict[str, Any], assume_yes: bool = False) -> tuple[int, list[dict[str, Any]]]:
        done = qrexec_call(self.mgmt, action, self.policies, self.services, assume_yes=assume_yes,
                           stdin=json.dumps(request).encode())
        lines = [json.loads(line) for line in done.stdout.decode().splitlines()]
        assert lines and lines[-1]["type"] == "result", done.stdout + done.stderr
        return done.returncode, lines

    def usage(self) -> dict[str, float]:
        """The service's peak RSS (KiB) and CPU time in its last call."""
        data: dict[str, float] = json.loads(self.usage_file.read_text())
        return data

    def audit(self) -> list[dict[str, Any]]:
        return [json.loads(x) for x in (self.paths["log"] / "audit.log").read_text().splitlines()]


def create_encrypted_archive(lab: Lab, name: str, passphrase_file: Path) -> str:
    """An encrypted archive made by the dom0 command; its URL."""
    dest = f"file:{lab.archive_dir}/{name}.wyng"
    created = subprocess.run([sys.executable, "-m", "wyngq", f"--dest={dest}", f"--wyng={lab.wyng}",
                              f"--meta-dir={lab.meta_dir}", f"--passphrase-file={passphrase_file}", "--json",
                              "create"],
                             capture_output=True, text=True, cwd=ROOT, timeout=300, stdin=subprocess.DEVNULL)
    assert created.returncode == 0, created.stdout + created.stderr
    return dest


def volume_sha(lab: Lab, name: str, kind: str) -> str:
    vol = lab.app.domains[name].volumes[kind]
    path = os.path.join(dict(lab.app.pools[vol.pool].config)["dir_path"], vol.vid + ".img")
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def test_a_management_qube_backs_up_and_restores_through_the_service(lab: Lab, tmp_path: Path) -> None:
    tpl = lab.create("tpl", "TemplateVM", label="black")
    lab.fill(tpl, "root", os.urandom(SMALL // 4))
    lab.fill(tpl, "private", os.urandom(SMALL // 8))
    app = lab.create("app", "AppVM", template=tpl, label="blue")
    lab.fill(app, "private", os.urandom(SMALL))
    app.memory = 555
    # only settings that give no power: the archive is unencrypted (restore.trust, tests/lab/test_trust_lab.py)
    app.features["menu-items"] = "a.desktop"
    mgmt = lab.create("mgmt", "AppVM", template=tpl, label="purple")
    dom0 = Dom0(lab, tmp_path, mgmt.name, app.name, tpl.name)
    subprocess.run([sys.executable, "-m", "wyngq", f"--dest={dom0.dest}", f"--wyng={lab.wyng}",
                    f"--meta-dir={lab.meta_dir}", "--json", "create", "--encrypt=off"],
                   check=True, capture_output=True, cwd=ROOT, timeout=300, stdin=subprocess.DEVNULL)
    before = volume_sha(lab, app.name, "private")

    code, lines = dom0.call("backup", {"profile": "lab", "qubes": [app.name, tpl.name]})

    result = lines[-1]
    assert code == 0, lines
    assert lines[0]["type"] == "job" and result["ok"] is True
    session = result["session"]
    assert sorted(q["name"] for q in result["qubes"]) == sorted([app.name, tpl.name])
    lab.app.domains.refresh_cache(force=True)
    assert lab.app.domains[app.name].backup_timestamp > 0  # set by the service, seen in qubesd

    code, lines = dom0.call("list", {"profile": "lab"})
    assert code == 0 and lines[-1]["qubes"][app.name] == [session]

    # A qube not covered by the profile, and a restore not confirmed at the `ask` prompt.
    code, lines = dom0.call("backup", {"profile": "lab", "qubes": [mgmt.name]})
    assert code == 4 and lines[-1]["code"] == "not_permitted"
    denied = qrexec_call(mgmt.name, "restore", dom0.policies, dom0.services, stdin=b'{"profile": "lab"}')
    assert denied.returncode == DENIED and denied.stdout == b""

    domains: Any = lab.app.domains  # qubesadmin's VMCollection: `del` removes the qube
    del domains[app.name]
    time.sleep(1.05)
    # A profile that does not allow unauthenticated restores refuses this (unencrypted) archive.
    code, lines = dom0.call("restore", {"profile": "lab-strict", "qubes": [app.name]}, assume_yes=True)
    assert (code, lines[-1]["code"]) == (4, "unauthenticated_archive"), lines[-1]
    lab.app.domains.refresh_cache(force=True)
    assert app.name not in lab.app.domains
    code, lines = dom0.call("restore", {"profile": "lab", "qubes": [app.name]}, assume_yes=True)

    assert code == 0, lines[-1]
    assert lines[-1]["qubes"][0]["action"] == "create" and lines[-1]["qubes"][0]["ok"] is True
    lab.app.domains.refresh_cache(force=True)
    restored = lab.app.domains[app.name]
    assert restored.memory == 555 and restored.features["menu-items"] == "a.desktop"
    assert "backup-restore-in-progress" not in restored.tags
    assert volume_sha(lab, app.name, "private") == before

    code, lines = dom0.call("status", {"profile": "lab"})
    jobs = lines[-1]["jobs"]
    assert code == 0 and [(j["action"], j["code"], j["caller"]) for j in jobs] == [
        ("restore", "ok", mgmt.name), ("backup", "ok", mgmt.name)]
    assert [(a["action"], a["outcome"]) for a in dom0.audit()] == [
        ("backup", "ok"), ("list", "ok"), ("backup", "not_permitted"), ("restore", "unauthenticated_archive"),
        ("restore", "ok"), ("status", "ok")]


def test_a_restore_over_qrexec_from_an_encrypted_archive(lab: Lab, tmp_path: Path) -> None:
    """The default profile (no unauthenticated restores) with real Wyng: every Wyng call
    of the restore must show `Encrypted archive` in its header, and real Wyng's do."""
    tpl = lab.create("tpl", "TemplateVM", label="black")
    app = lab.create("app", "AppVM", template=tpl, label="blue")
    lab.fill(app, "private", os.urandom(SMALL // 4))
    mgmt = lab.create("mgmt", "AppVM", template=tpl, label="purple")
    dom0 = Dom0(lab, tmp_path, mgmt.name, app.name, tpl.name)
    secret = tmp_path / "enc.pass"
    secret.write_text("correct horse battery staple\n")
    secret.chmod(0o600)
    dest = create_encrypted_archive(lab, "enc-restore", secret)
    (dom0.paths["profiles"] / "enc.toml").write_text(
        f'dest = "{dest}"\nwyng = "{lab.wyng}"\nmeta_dir = "{lab.meta_dir}"\n'
        f'[passphrase]\nfile = "{secret}"\n[qubes]\ninclude = ["{app.name}"]\n'
        f'[[rpc.allow]]\ncallers = ["{mgmt.name}"]\nactions = ["backup", "restore"]\non_conflict = ["replace"]\n')
    before = volume_sha(lab, app.name, "private")
    app.tags.add("wyngq-enc-test")  # a tag gives power (docs/security.md): from this archive it comes back
    code, lines = dom0.call("backup", {"profile": "enc", "qubes": [app.name]})
    assert code == 0, lines[-1]
    app.memory = 999
    app.tags.remove("wyngq-enc-test")
    lab.fill(app, "private", os.urandom(SMALL // 4))
    time.sleep(1.05)

    code, lines = dom0.call("restore", {"profile": "enc", "qubes": [app.name], "on_conflict": "replace"},
                            assume_yes=True)

    assert code == 0, lines[-1]
    lab.app.domains.refresh_cache(force=True)
    assert lab.app.domains[app.name].memory != 999
    assert "wyngq-enc-test" in lab.app.domains[app.name].tags
    assert not [p for q in lines[-1]["qubes"] for p in q["problems"] if p["code"] == "untrusted_setting"]
    assert volume_sha(lab, app.name, "private") == before


def agents() -> set[str]:
    """Wyng key agents running on the machine (other labs' included: compare sets)."""
    ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True, check=True).stdout
    return {line.split()[-1] for line in ps.splitlines() if "wyng_agent.py store" in line}


def test_a_key_agent_left_in_dom0_does_not_authenticate_a_qrexec_call(lab: Lab, tmp_path: Path) -> None:
    """Wyng's key agent accepts any passphrase while it lives (docs/facts.md). One left
    by a dom0 user's own Wyng run must not let a call over qrexec in with a wrong
    passphrase: the service ends it first, and the call fails authentication."""
    tpl = lab.create("tpl", "TemplateVM", label="black")
    mgmt = lab.create("mgmt", "AppVM", template=tpl, label="purple")
    dom0 = Dom0(lab, tmp_path, mgmt.name, tpl.name, tpl.name)
    good, wrong = tmp_path / "good.pass", tmp_path / "wrong.pass"
    good.write_text("correct horse battery staple\n")
    wrong.write_text("not the passphrase at all\n")
    for path in (good, wrong):
        path.chmod(0o600)
    dest = create_encrypted_archive(lab, "enc", good)
    for name, secret in (("enc-wrong", wrong), ("enc-good", good)):
        (dom0.paths["profiles"] / f"{name}.toml").write_text(
            f'dest = "{dest}"\nwyng = "{lab.wyng}"\nmeta_dir = "{lab.meta_dir}"\n'
            f'[passphrase]\nfile = "{secret}"\n'
            f'[[rpc.allow]]\ncallers = ["{mgmt.name}"]\nactions = ["list"]\n')
    wyng = [lab.wyng, f"--dest={dest}", f"--meta-dir={lab.meta_dir}", "-u"]
    others = agents()
    try:
        # A dom0 user's own run leaves an agent (Wyng's default --authmin=5) ...
        subprocess.run([*wyng, "--authmin=5", "list"], input=good.read_bytes(), check=True, capture_output=True,
                       timeout=300, env=wide_ps_env())
        mine = agents() - others
        assert len(mine) == 1
        time.sleep(1)
        # ... which lets a wrong passphrase in, as docs/facts.md says (the danger is real here).
        rides = subprocess.run([*wyng, "--authmin=0", "list"], input=wrong.read_bytes(), capture_output=True,
                               timeout=300, env=wide_ps_env())
        assert rides.returncode == 0, rides.stderr
        assert agents() & mine == mine

        code, lines = dom0.call("list", {"profile": "enc-wrong"})

        assert (code, lines[-1]["code"]) == (7, "auth"), lines
        assert agents() & mine == set()
        code, lines = dom0.call("list", {"profile": "enc-good"})
        assert code == 0 and lines[-1]["archive"]["encrypted"] is True
        assert agents() - others == set()  # and the service left none behind
    finally:
        subprocess.run([*wyng, "--authmin=-1", "list"], stdin=subprocess.DEVNULL, capture_output=True, timeout=300,
                       env=wide_ps_env())
