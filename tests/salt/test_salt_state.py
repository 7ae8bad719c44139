"""The Salt state `wyngq.backed_up` (salt/_states/wyngq.py) over injected module functions."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest

from tests.conftest import ROOT

SESSION = "20250102-030405"


class FakeModule:
    """The execution module's `due` and `backup`, answering canned results and
    recording every call."""

    def __init__(self, due: dict[str, Any], backup: dict[str, Any] | None = None,
                 dry_run: dict[str, Any] | None = None) -> None:
        self.due_result = due
        self.backup_result = backup
        self.dry_run_result = dry_run
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def due(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("due", args, kwargs))
        return self.due_result

    def backup(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("backup", args, kwargs))
        result = self.dry_run_result if kwargs.get("test") else self.backup_result
        assert result is not None, f"unexpected backup call {args} {kwargs}"
        return result

    def install(self, state: ModuleType) -> FakeModule:
        state.__salt__.update({"wyngq.due": self.due, "wyngq.backup": self.backup})
        return self

    def backups(self) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
        return [(args, kwargs) for name, args, kwargs in self.calls if name == "backup"]


def due_result(ages: dict[str, int | None], max_age: int = 86400,
               failing: dict[str, str] | None = None) -> dict[str, Any]:
    """What the module's `due` returns: `backup --dry-run --max-age` with `due` added."""
    schedule = [
        {"name": n, "last_session": None if a is None else "20250101-000000",
         "last_backup": None if a is None else f"last-{n}", "age": a, "due": a is None or a >= max_age}
        for n, a in sorted(ages.items())
    ]
    due = [e["name"] for e in schedule if e["due"]]
    failing = failing or {}
    qubes = [{"name": n, "ok": n not in failing, "volumes": [f"appvms/{n}/private.img"], "error": failing.get(n)}
             for n in due]
    return {"type": "result", "action": "backup", "ok": not failing, "exit_code": 8 if failing else 0,
            "code": "partial" if failing else "ok", "dry_run": True, "max_age": max_age,
            "due": due, "schedule": schedule, "qubes": qubes}


def backup_result(ok: dict[str, bool], *, session: str | None = SESSION, dry_run: bool = False,
                  exit_code: int = 0, code: str = "ok", **extra: Any) -> dict[str, Any]:
    return {
        "type": "result", "action": "backup", "ok": exit_code == 0, "exit_code": exit_code, "code": code,
        "session": session, "dry_run": dry_run, "warnings": [], **extra,
        "qubes": [{"name": n, "ok": good, "volumes": [f"appvms/{n}/private.img"],
                   "error": None if good else "Wyng could not send its volumes"} for n, good in ok.items()],
    }


def test_nothing_due_is_success_without_changes(state: ModuleType) -> None:
    fake = FakeModule(due_result({"work": 3600, "vault": 60})).install(state)

    ret = state.backed_up("nightly", profile="laptop", max_age="1d")

    assert ret["result"] is True and ret["changes"] == {} and ret["name"] == "nightly"
    assert "All 2 qube(s) of profile 'laptop' have a session in its archive within 1d" in ret["comment"]
    assert fake.calls == [("due", ("laptop",), {"max_age": "1d", "qubes": None, "exclude": None})]


def test_due_qubes_are_backed_up_and_reported_as_changes(state: ModuleType) -> None:
    fake = FakeModule(due_result({"work": 2 * 86400, "vault": None, "fedora": 60}),
                      backup=backup_result({"vault": True, "work": True})).install(state)

    ret = state.backed_up("laptop", max_age=86400)

    assert fake.backups() == [(("laptop",), {"qubes": ["vault", "work"]})]
    assert ret["result"] is True
    assert ret["changes"] == {
        "session": SESSION,
        "qubes": {"vault": {"old": None, "new": SESSION}, "work": {"old": "last-work", "new": SESSION}},
    }
    assert SESSION in ret["comment"]


def test_test_mode_returns_the_dry_run_plan_and_stores_nothing(state: ModuleType) -> None:
    state.__opts__["test"] = True
    fake = FakeModule(due_result({"work": 2 * 86400, "fedora": 60})).install(state)

    ret = state.backed_up("laptop", max_age="1d")

    assert fake.backups() == []  # the due question was the dry run
    assert ret["result"] is None
    assert ret["changes"] == {"would_back_up": {"work": {"last_backup": "last-work",
                                                          "volumes": ["appvms/work/private.img"]}}}
    assert ret["comment"] == "Would back up 1 qube(s) of profile 'laptop': work"


def test_test_mode_with_nothing_due_is_true(state: ModuleType) -> None:
    state.__opts__["test"] = True
    fake = FakeModule(due_result({"work": 60})).install(state)

    ret = state.backed_up("laptop")

    assert ret["result"] is True and ret["changes"] == {}
    assert fake.backups() == []


def test_a_dry_run_that_fails_fails_the_test_run(state: ModuleType) -> None:
    state.__opts__["test"] = True
    failed = {"type": "result", "action": "backup", "ok": False, "exit_code": 7, "code": "auth",
              "message": "the archive needs a passphrase", "hint": "set [passphrase] in the profile"}
    FakeModule(failed).install(state)

    ret = state.backed_up("laptop")

    assert ret["result"] is False and ret["changes"] == {}
    assert ret["comment"] == ("cannot tell which qubes are due: [auth, exit 7] the archive needs a passphrase "
                              "(set [passphrase] in the profile)")


def test_a_qube_the_dry_run_finds_failing_fails_the_test_run(state: ModuleType) -> None:
    state.__opts__["test"] = True
    FakeModule(due_result({"work": None, "vault": None}, failing={"vault": "its volume file is missing"}))\
        .install(state)

    ret = state.backed_up("laptop")

    assert ret["result"] is False and ret["changes"] == {}
    assert ret["comment"] == "the dry run found qubes that would fail: vault (its volume file is missing)"


def test_a_partial_failure_is_false_and_keeps_what_was_done(state: ModuleType) -> None:
    FakeModule(due_result({"work": None, "vault": None}),
               backup=backup_result({"vault": False, "work": True}, exit_code=8, code="partial")).install(state)

    ret = state.backed_up("laptop")

    assert ret["result"] is False
    assert ret["changes"] == {"session": SESSION, "qubes": {"work": {"old": None, "new": SESSION}}}
    assert ret["comment"] == ("backup failed: [partial, exit 8] some qubes failed; "
                              "not backed up: vault (Wyng could not send its volumes)")


def test_an_error_before_any_work_is_false_with_its_code_and_message(state: ModuleType) -> None:
    failed = {"type": "result", "action": "backup", "ok": False, "exit_code": 5, "code": "busy",
              "message": "another wyng-util-qubes operation is running"}
    FakeModule(due_result({"work": None}), backup=failed).install(state)

    ret = state.backed_up("laptop")

    assert ret["result"] is False and ret["changes"] == {}
    assert ret["comment"] == "backup failed: [busy, exit 5] another wyng-util-qubes operation is running"


def test_when_due_cannot_be_told_nothing_runs(state: ModuleType) -> None:
    failed = {"type": "result", "action": "backup", "ok": False, "exit_code": 3, "code": "config",
              "message": "no profile 'laptop'", "hint": "create /etc/wyng-util-qubes/profiles/laptop.toml"}
    fake = FakeModule(failed).install(state)

    ret = state.backed_up("laptop")

    assert ret["result"] is False and ret["changes"] == {}
    assert "[config, exit 3] no profile 'laptop'" in ret["comment"]
    assert fake.backups() == []


def test_excluded_qubes_are_neither_counted_nor_backed_up(state: ModuleType) -> None:
    fake = FakeModule(due_result({"work": None}), backup=backup_result({"work": True})).install(state)

    ret = state.backed_up("laptop", exclude="vault", qubes=["work", "vault"])

    assert fake.calls[0] == ("due", ("laptop",), {"max_age": "1d", "qubes": ["work", "vault"], "exclude": "vault"})
    assert fake.backups() == [(("laptop",), {"qubes": ["work"]})]
    assert list(ret["changes"]["qubes"]) == ["work"]


# -- restored ----------------------------------------------------------------------------
def restore_plan(actions: dict[str, str], *, ok: bool = True, dry_run: bool = True,
                 outcomes: dict[str, bool] | None = None, **extra: Any) -> dict[str, Any]:
    qubes = []
    for name, action in actions.items():
        entry: dict[str, Any] = {"name": name, "target": name, "class": "AppVM", "action": action, "problems": [],
                                 "session": SESSION,
                                 "volumes": [{"volume": "private", "archive": f"appvms/{name}/private.img"}]}
        if outcomes is not None and name in outcomes:
            entry.update(ok=outcomes[name], failed_step=None if outcomes[name] else "receive",
                         error=None if outcomes[name] else "Wyng failed", hint="run restore again",
                         revisions=[f"{name}-private@1"] if action == "replace" else [])
        qubes.append(entry)
    steps = [{"step": "properties", "qube": n, "changes": [{"op": "set", "key": "memory", "old": "400", "new": "800"}]}
             for n, a in actions.items() if a != "skip"]
    return {"type": "result", "action": "restore", "ok": ok, "exit_code": 0 if ok else 8,
            "code": "ok" if ok else "partial", "session": SESSION, "sessions": [SESSION], "dry_run": dry_run,
            "qubes": qubes,
            "steps": steps, **extra}


class FakeRestore:
    def __init__(self, plan: dict[str, Any], done: dict[str, Any] | None = None) -> None:
        self.plan, self.done = plan, done
        self.calls: list[dict[str, Any]] = []

    def __call__(self, profile: str, **kwargs: Any) -> dict[str, Any]:
        self.calls.append({"profile": profile, **kwargs})
        if kwargs.get("test"):
            return self.plan
        assert self.done is not None, "restore ran for real"
        return self.done


def test_restored_with_every_qube_present_has_nothing_to_do(state: ModuleType) -> None:
    fake = state.__salt__["wyngq.restore"] = FakeRestore(restore_plan({"work": "skip", "vault": "skip"}))

    ret = state.restored("laptop", qubes=["work", "vault"])

    assert ret["result"] is True and ret["changes"] == {}
    assert ret["comment"] == f"Nothing to restore from session {SESSION}: present already: work, vault"
    assert fake.calls == [{"profile": "laptop", "test": True, "qubes": ["work", "vault"], "session": None,
                           "on_conflict": "skip", "exclude": None, "rename": None, "pool": None,
                           "shutdown": False}]


def test_restored_with_every_named_qube_present_answers_from_the_catalogue(state: ModuleType) -> None:
    restore = state.__salt__["wyngq.restore"] = FakeRestore(restore_plan({"work": "skip"}))
    calls: list[tuple[str, object]] = []
    state.__salt__["wyngq.present"] = lambda names: calls.append(("present", names)) or {
        "ok": True, "present": names, "missing": []}
    state.__salt__["wyngq.list"] = lambda profile, qubes: calls.append(("list", qubes)) or {
        "ok": True, "qubes": {"work": ["20250101-000000", SESSION], "vault": [SESSION]}}

    ret = state.restored("laptop", qubes=["work", "vault"])

    assert ret["result"] is True and ret["changes"] == {} and restore.calls == []
    assert calls == [("present", ["work", "vault"]), ("list", ["work", "vault"])]
    assert ret["comment"] == (f"Nothing to restore: present already: work (newest session {SESSION}), "
                              f"vault (newest session {SESSION})")


@pytest.mark.parametrize(("missing", "listed"), [(["vault"], {"work": [SESSION], "vault": [SESSION]}),
                                                 ([], {"work": [SESSION]})])
def test_restored_plans_when_a_qube_is_missing_or_not_in_the_archive(
    state: ModuleType, missing: list[str], listed: dict[str, list[str]]
) -> None:
    restore = state.__salt__["wyngq.restore"] = FakeRestore(restore_plan({"work": "skip", "vault": "skip"}))
    state.__salt__["wyngq.present"] = lambda names: {"ok": True, "missing": missing}
    state.__salt__["wyngq.list"] = lambda profile, qubes: {"ok": True, "qubes": listed}
    state.restored("laptop", qubes=["work", "vault"])
    assert [c["test"] for c in restore.calls] == [True]


def test_restored_in_test_mode_returns_the_plan(state: ModuleType) -> None:
    state.__opts__["test"] = True
    state.__salt__["wyngq.restore"] = FakeRestore(restore_plan({"work": "create", "vault": "skip"}))

    ret = state.restored("laptop", qubes=["work", "vault"])

    assert ret["result"] is None
    assert ret["changes"] == {"session": SESSION, "sessions": [SESSION], "would_restore": {"work": {
        "from": "work", "session": SESSION, "action": "create", "volumes": ["appvms/work/private.img"],
        "changes": [{"op": "set", "key": "memory", "old": "400", "new": "800"}]}}}
    assert ret["comment"] == f"Would restore 1 qube(s) from session {SESSION}: work (create)"


def test_restored_applies_the_planned_session(state: ModuleType) -> None:
    fake = state.__salt__["wyngq.restore"] = FakeRestore(
        restore_plan({"work": "replace"}),
        restore_plan({"work": "replace"}, dry_run=False, outcomes={"work": True}),
    )

    ret = state.restored("laptop", qubes="work", on_conflict="replace", session="latest")

    assert fake.calls[1]["session"] == SESSION and "test" not in fake.calls[1]
    assert ret["result"] is True
    assert ret["changes"] == {"session": SESSION, "qubes": {"work": {"action": "replace", "session": SESSION,
                                                                     "revisions": ["work-private@1"]}}}


def test_restored_partial_failure_names_the_step_and_the_way_out(state: ModuleType) -> None:
    state.__salt__["wyngq.restore"] = FakeRestore(
        restore_plan({"work": "create", "vault": "create"}),
        restore_plan({"work": "create", "vault": "create"}, ok=False, dry_run=False,
                     outcomes={"work": True, "vault": False}),
    )

    ret = state.restored("laptop", qubes=["work", "vault"])

    assert ret["result"] is False
    assert list(ret["changes"]["qubes"]) == ["work"]
    assert ret["comment"] == ("restore failed: [partial, exit 8] some qubes failed; "
                              "not restored: vault at receive (Wyng failed; run restore again)")


def test_restored_refused_plan_lists_the_blocking_problems(state: ModuleType) -> None:
    refused = restore_plan({"work": "replace"}, ok=False, refused=True)
    refused.update(exit_code=6, code="qubes")
    refused["qubes"][0]["problems"] = [{"code": "running", "message": "qube 'work' is running",
                                        "resolution": "shut it down or pass --shutdown", "blocking": True}]
    state.__salt__["wyngq.restore"] = FakeRestore(refused)

    ret = state.restored("laptop", qubes="work", on_conflict="replace")

    assert ret["result"] is False and ret["changes"] == {}
    assert ret["comment"] == ("the restore plan failed: [qubes, exit 6] the plan has blocking problems; nothing was "
                              "changed; blocking: work: qube 'work' is running (shut it down or pass --shutdown)")


def test_the_state_needs_the_execution_module(state: ModuleType) -> None:
    assert state.__virtual__()[0] is False
    FakeModule(due_result({})).install(state)
    assert state.__virtual__() == "wyngq"


def test_the_module_and_state_files_are_what_the_packages_install() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "salt/_modules/wyngq.py $(DESTDIR)$(SALT_DIR)/_modules/wyngq.py" in makefile
    assert "salt/_states/wyngq.py $(DESTDIR)$(SALT_DIR)/_states/wyngq.py" in makefile


@pytest.mark.parametrize("name", ["_modules", "_states"])
def test_salt_files_import_nothing_from_salt_or_wyngq_at_load_time(name: str) -> None:
    """Salt loads them into its own Python, which may lack wyngq (onedir builds):
    the only wyngq import is inside `due`."""
    source = (ROOT / "salt" / name / "wyngq.py").read_text()
    top_level_imports = [line for line in source.splitlines() if line.startswith(("import ", "from "))]
    assert all("wyngq" not in line and "salt" not in line for line in top_level_imports), top_level_imports


def test_restored_all_with_prefs_plans_then_applies_as_of_the_planned_session(state: ModuleType) -> None:
    prefs = {"changes": [{"key": "clockvm", "old": "", "new": "sys-net", "ok": True}], "problems": []}
    fake = state.__salt__["wyngq.restore"] = FakeRestore(
        restore_plan({"work": "skip"}, prefs=prefs),
        restore_plan({"work": "skip"}, dry_run=False, outcomes={"work": True}, prefs=prefs),
    )

    ret = state.restored("laptop", all=True, prefs=True)

    assert fake.calls[0]["all"] is True and fake.calls[0]["prefs"] is True and fake.calls[0]["test"] is True
    assert fake.calls[1]["as_of"] == SESSION and "session" in fake.calls[1] and fake.calls[1]["session"] is None
    assert ret["result"] is True
    assert ret["changes"]["prefs"] == {"clockvm": {"old": "", "new": "sys-net"}}


def test_restored_all_in_test_mode_returns_the_plan_with_the_prefs(state: ModuleType) -> None:
    state.__opts__["test"] = True
    prefs = {"changes": [{"key": "clockvm", "old": "", "new": "sys-net", "ok": True}], "problems": []}
    state.__salt__["wyngq.restore"] = FakeRestore(restore_plan({"work": "create"}, prefs=prefs))

    ret = state.restored("laptop", all=True, prefs=True)

    assert ret["result"] is None
    assert ret["changes"]["would_set_prefs"] == {"clockvm": {"old": "", "new": "sys-net"}}
    assert ret["changes"]["would_restore"]["work"]["session"] == SESSION
