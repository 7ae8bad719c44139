"""The Salt execution module `wyngq` (salt/_modules/wyngq.py) with an injected `cmd.run_all`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import ROOT
from tests.salt.conftest import FakeCmd, result_line, run_for_real
from wyngq import __version__

BASE = ["wyng-util-qubes", "--json", "--unattended"]


def answering(stdout: str, retcode: int = 0, stderr: str = "") -> FakeCmd:
    return FakeCmd(lambda argv: (retcode, stdout, stderr))


# -- command lines ----------------------------------------------------------------------
def test_backup_runs_the_command_with_the_profile_and_the_named_qubes(module: ModuleType) -> None:
    cmd = module.__salt__["cmd.run_all"] = answering(result_line(action="backup", session="20250101-120000"))

    result = module.backup("laptop", qubes=["work", "vault"], exclude="untrusted")

    assert cmd.argvs == [[*BASE, "--profile=laptop", "backup", "--exclude=untrusted", "--", "work", "vault"]]
    assert cmd.calls[0][1]["ignore_retcode"] is True and cmd.calls[0][1]["env"] is None
    assert result["ok"] is True and result["session"] == "20250101-120000"
    assert "events" not in result
    assert "retcode" not in module.__context__


@pytest.mark.parametrize(("test_arg", "opts_test"), [(True, False), (False, True)])
def test_backup_in_test_mode_is_a_dry_run(module: ModuleType, test_arg: bool, opts_test: bool) -> None:
    module.__opts__["test"] = opts_test
    cmd = module.__salt__["cmd.run_all"] = answering(result_line(action="backup", dry_run=True))

    module.backup("laptop", qubes="work,vault", test=test_arg)

    assert cmd.argvs == [[*BASE, "--profile=laptop", "backup", "--dry-run", "--", "work", "vault"]]


@pytest.mark.parametrize("bad", ["-rf", "dom0", "a b", "x" * 32, "sys-net-dm", "1abc", "--dest=file:/x"])
def test_names_that_are_not_qube_names_never_reach_the_command(module: ModuleType, bad: str) -> None:
    cmd = module.__salt__["cmd.run_all"] = answering(result_line())

    result = module.backup("laptop", qubes=["work", bad])

    assert cmd.calls == []
    assert (result["ok"], result["exit_code"], result["code"]) == (False, 2, "usage")
    assert module.__context__["retcode"] == 2


def test_restore_passes_each_option_as_one_word(module: ModuleType) -> None:
    cmd = module.__salt__["cmd.run_all"] = answering(result_line(action="restore"))

    module.restore("laptop", qubes="work", session="latest", on_conflict="rename", exclude=["vault"],
                   rename={"work": "work-restored"}, pool="pool2", shutdown=True, test=True)

    assert cmd.argvs == [[*BASE, "--profile=laptop", "restore", "--on-conflict=rename", "--session=latest",
                          "--pool=pool2", "--shutdown", "--dry-run", "--exclude=vault",
                          "--rename=work:work-restored", "--", "work"]]


def test_restore_all_as_of_with_prefs(module: ModuleType) -> None:
    cmd = module.__salt__["cmd.run_all"] = answering(result_line(action="restore"))

    module.restore("laptop", all=True, as_of="20250101-120000", prefs=True, on_conflict="skip")

    assert cmd.argvs == [[*BASE, "--profile=laptop", "restore", "--on-conflict=skip", "--as-of=20250101-120000",
                          "--all", "--prefs", "--"]]


def test_restore_refuses_a_bad_new_name(module: ModuleType) -> None:
    cmd = module.__salt__["cmd.run_all"] = answering(result_line())

    result = module.restore("laptop", qubes="work", rename={"work": "-x"})

    assert cmd.calls == [] and (result["ok"], result["code"]) == (False, "usage")


def test_list_and_its_options(module: ModuleType) -> None:
    cmd = module.__salt__["cmd.run_all"] = answering(result_line(action="list", qubes={"work": ["20250101-120000"]}))

    result = module.list_("laptop", qubes=["work"], session="20250101-120000", all_sessions=True)

    assert cmd.argvs == [[*BASE, "--profile=laptop", "list", "--session=20250101-120000", "--all", "--", "work"]]
    assert result["qubes"] == {"work": ["20250101-120000"]}
    assert module.__func_alias__ == {"list_": "list"}


def test_version_status_and_other_verbs(module: ModuleType) -> None:
    cmd = module.__salt__["cmd.run_all"] = answering(result_line(action="x"))

    module.version()
    module.status()
    module.run("verify", "laptop", args=["--session=20250101-120000"])
    module.run("prune", "laptop", args="--all-before=20250101-120000 --dry-run")

    assert cmd.argvs == [
        [*BASE, "version"],
        [*BASE, "status"],
        [*BASE, "--profile=laptop", "verify", "--session=20250101-120000"],
        [*BASE, "--profile=laptop", "prune", "--all-before=20250101-120000", "--dry-run"],
    ]
    assert module.run("--dest=x", "laptop")["code"] == "usage"


def test_the_command_and_profile_dir_come_from_salt_config(module: ModuleType) -> None:
    settings = {"wyngq:command": "python3 -P -m wyngq", "wyngq:profile_dir": "/srv/profiles"}
    module.__salt__["config.get"] = lambda key, default=None: settings.get(key, default)
    cmd = module.__salt__["cmd.run_all"] = answering(result_line())

    module.version()

    assert cmd.argvs == [["python3", "-P", "-m", "wyngq", "--json", "--unattended", "version"]]
    assert cmd.calls[0][1]["env"] == {"WYNGQ_PROFILE_DIR": "/srv/profiles"}


def test_without_config_get_the_minion_opts_are_read(module: ModuleType) -> None:
    module.__opts__["wyngq"] = {"command": ["/opt/wyngq/bin/wyng-util-qubes"]}
    cmd = module.__salt__["cmd.run_all"] = answering(result_line())

    module.version()

    assert cmd.argvs[0][0] == "/opt/wyngq/bin/wyng-util-qubes"


# -- results ----------------------------------------------------------------------------
def test_the_result_is_the_last_line_and_events_are_kept_on_request(module: ModuleType) -> None:
    stdout = "\n".join([
        json.dumps({"type": "plan", "qubes": ["work"]}),
        json.dumps({"type": "volume", "volume": "appvms/work/private.img", "state": "started"}),
        result_line(action="backup", session="20250101-120000"),
    ]) + "\n"
    module.__salt__["cmd.run_all"] = answering(stdout)

    result = module.backup("laptop", events=True)

    assert result["session"] == "20250101-120000"
    assert [e["type"] for e in result["events"]] == ["plan", "volume"]


def test_a_failure_sets_the_jobs_return_code(module: ModuleType) -> None:
    module.__salt__["cmd.run_all"] = answering(
        result_line(action="backup", exit_code=7, code="auth", message="wrong passphrase", hint="check the file"),
        retcode=7,
    )

    result = module.backup("laptop")

    assert (result["ok"], result["code"], result["message"], result["hint"]) == (
        False, "auth", "wrong passphrase", "check the file"
    )
    assert module.__context__["retcode"] == 7


def test_a_command_that_printed_no_result_is_an_internal_error(module: ModuleType) -> None:
    module.__salt__["cmd.run_all"] = answering("", retcode=1, stderr="Traceback...\nKeyError: 'x'\n")

    result = module.backup("laptop")

    assert (result["ok"], result["exit_code"], result["code"], result["action"]) == (False, 1, "internal", "backup")
    assert "KeyError: 'x'" in result["message"]
    assert module.__context__["retcode"] == 1


def test_a_command_salt_cannot_start_is_a_configuration_error(module: ModuleType) -> None:
    def cannot_start(argv: list[str], **kwargs: object) -> dict[str, object]:
        raise OSError("Unable to run command ['wyng-util-qubes', ...]: No such file or directory")

    module.__salt__["cmd.run_all"] = cannot_start

    result = module.version()

    assert (result["ok"], result["exit_code"], result["code"]) == (False, 3, "config")
    assert "No such file" in result["message"] and "wyngq:command" in result["hint"]


# -- max_age ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("given", "seconds"),
    [(3600, 3600), (1.5, 1), ("90", 90), ("90s", 90), ("30m", 1800), ("12h", 43200), ("1d", 86400),
     ("1w2d", 9 * 86400), ("1d 12h", 129600), ("0", 0)],
)
def test_parse_age(module: ModuleType, given: object, seconds: int) -> None:
    assert module.parse_age(given) == seconds


@pytest.mark.parametrize("bad", ["", "soon", "1y", "-1d", "1d-", True, -5])
def test_parse_age_refuses(module: ModuleType, bad: object) -> None:
    with pytest.raises(ValueError):
        module.parse_age(bad)


# -- due: which qubes need a backup in the profile's archive ---------------------------------
def schedule_line(entries: dict[str, bool]) -> str:
    schedule = [{"name": n, "last_session": None, "last_backup": None, "age": None, "due": d}
                for n, d in entries.items()]
    return result_line(action="backup", dry_run=True, schedule=schedule,
                       qubes=[{"name": n, "ok": True, "volumes": [f"appvms/{n}/private.img"]}
                              for n, d in entries.items() if d])


def test_due_is_a_dry_run_with_a_maximum_age(module: ModuleType) -> None:
    cmd = module.__salt__["cmd.run_all"] = answering(schedule_line({"work": True, "vault": False}))

    result = module.due("laptop", max_age="1d", qubes="work,vault", exclude=["scratch"])

    assert cmd.argvs == [[*BASE, "--profile=laptop", "backup", "--dry-run", "--max-age=86400", "--exclude=scratch",
                          "--", "work", "vault"]]
    assert result["ok"] is True and result["max_age"] == 86400 and result["due"] == ["work"]
    assert [q["name"] for q in result["qubes"]] == ["work"]


@pytest.mark.parametrize(("qubes", "max_age"), [(["dom0"], "1d"), (None, "sometime"), (["-x"], "1d")])
def test_due_refuses_bad_input_before_running_anything(module: ModuleType, qubes: list[str] | None,
                                                       max_age: str) -> None:
    cmd = module.__salt__["cmd.run_all"] = answering("")
    result = module.due("laptop", max_age=max_age, qubes=qubes)
    assert (result["ok"], result["exit_code"], result["code"]) == (False, 2, "usage") and cmd.calls == []
    assert module.__context__["retcode"] == 2


def test_present_asks_qvm_ls_once(module: ModuleType) -> None:
    cmd = module.__salt__["cmd.run_all"] = answering("dom0|AdminVM\nwork|AppVM\nfedora|TemplateVM\n")
    result = module.present(["work", "vault"])
    assert cmd.argvs == [["qvm-ls", "--raw-data", "--fields=NAME,CLASS"]]
    assert (result["present"], result["missing"]) == (["work"], ["vault"])


def test_present_when_qubesd_does_not_answer(module: ModuleType) -> None:
    module.__salt__["cmd.run_all"] = answering("", retcode=1, stderr="qvm-ls: error: Failed to connect to qubesd\n")
    result = module.present("work")
    assert (result["ok"], result["exit_code"], result["code"]) == (False, 6, "qubes")
    assert "Failed to connect to qubesd" in result["message"]


# -- against the real command ---------------------------------------------------------------
def test_the_real_command_version(module: ModuleType, tmp_path: Path) -> None:
    module.__opts__["wyngq"] = {"command": [sys.executable, "-m", "wyngq"]}
    module.__salt__["cmd.run_all"] = run_for_real(tmp_path, tmp_path)

    result = module.version()

    assert (result["ok"], result["action"], result["version"]) == (True, "version", __version__)


def test_the_real_command_reports_a_missing_profile(module: ModuleType, tmp_path: Path) -> None:
    module.__opts__["wyngq"] = {"command": [sys.executable, "-m", "wyngq"], "profile_dir": str(tmp_path)}
    module.__salt__["cmd.run_all"] = run_for_real(ROOT, tmp_path)

    result = module.list_("nosuchprofile")

    assert (result["ok"], result["exit_code"], result["code"]) == (False, 3, "config")
    assert str(tmp_path / "nosuchprofile.toml") in result["hint"]
    assert module.__context__["retcode"] == 3
