"""SaltStack execution module for wyng-util-qubes in dom0: ``salt-call wyngq.<function>``.

Installed as ``/srv/salt/_modules/wyngq.py`` and synced with ``saltutil.sync_all``
(the RPM's %post does it). Every function returns the command's JSON result
object (README: the last line of ``--json`` output):
``{"type": "result", "action": ..., "ok": bool, "exit_code": N, "code": "...", ...}``
with ``message`` and ``hint`` on errors, and sets the job's return code to
``exit_code`` when it is not 0, so ``salt-call`` exits with it too.

Why it runs the ``wyng-util-qubes`` command (through Salt's ``cmd.run_all``)
rather than the engine in-process: the command's JSON result and exit codes
are the public contract users and the qrexec service rely on, so Salt gets
the same behaviour and the same tests; a long Wyng run, its lock, its signal
handling and its logging stay out of the minion process; and Salt's own Python
(a venv, or the onedir build of Salt 3006+) need not be able to import wyngq
or qubesadmin. `due`, the question the state asks on every run, is
``backup --dry-run --max-age``: it plans from wyngq's record of the archive and
calls no Wyng when the record is there. `present` is one ``qvm-ls``.

Configuration (minion config or pillar, read with ``config.get``):
``wyngq:command`` the command to run (default ``wyng-util-qubes``; a list or a
string, e.g. ``python3 -m wyngq``), ``wyngq:profile_dir`` where profiles are
(default the command's own, ``/etc/wyng-util-qubes/profiles``), ``wyngq:qvm_ls``
(default ``qvm-ls``).
"""

from __future__ import annotations

import json
import re
import shlex
from typing import Any

__virtualname__ = "wyngq"
__func_alias__ = {"list_": "list"}

# Filled in by Salt's loader (the tests inject them).
__salt__: dict[str, Any] = {}
__opts__: dict[str, Any] = {}
__context__: dict[str, Any] = {}

DEFAULT_COMMAND = ("wyng-util-qubes",)
# qubesd's rule for qube names (docs/security-model.md); anything else never reaches an argv.
_QUBE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,30}")
_AGE = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw]?)")
_AGE_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}

# Exit codes and codes of the public contract (README, wyngq.errors) this module uses itself.
EXIT_INTERNAL, EXIT_USAGE, EXIT_CONFIG, EXIT_QUBES = 1, 2, 3, 6


def __virtual__() -> str:
    return __virtualname__


# -- the command's verbs ----------------------------------------------------------------
def backup(
    profile: str,
    qubes: list[str] | str | None = None,
    test: bool = False,
    exclude: list[str] | str | None = None,
    events: bool = False,
) -> dict[str, Any]:
    """Back up the profile's qubes, or only ``qubes`` (which replace its selection).

    ``test=True`` (or Salt's test mode) runs ``backup --dry-run``: the plan (each
    qube's volumes, whether each goes in full or as changes), and nothing changes
    in the archive, the pools or the qubes. ``events=True`` adds the progress events.

    CLI Example: ``salt-call wyngq.backup laptop qubes=work,personal test=True``
    """
    try:
        names = _qube_names(qubes, "qubes")
        excluded = _qube_names(exclude, "exclude")
    except ValueError as err:
        return _failure("backup", EXIT_USAGE, "usage", str(err))
    args = ["backup"]
    if _test_mode(test):
        args.append("--dry-run")
    args += [f"--exclude={name}" for name in excluded]
    return _run_cli("backup", profile, [*args, "--", *names], events)


def restore(
    profile: str,
    qubes: list[str] | str | None = None,
    session: str | None = None,
    on_conflict: str = "fail",
    exclude: list[str] | str | None = None,
    rename: dict[str, str] | None = None,
    pool: str | None = None,
    shutdown: bool = False,
    test: bool = False,
    events: bool = False,
    all: bool = False,
    as_of: str | None = None,
    prefs: bool = False,
) -> dict[str, Any]:
    """Restore ``qubes`` (or ``all: True``: every qube of the archive), each from
    its own newest session (at or before ``as_of``), or all from ``session``;
    ``prefs``: also dom0's global preferences. ``on_conflict``: fail, skip, replace or rename;
    ``rename``: {backed-up name: new name}; ``shutdown``: stop running qubes that
    must stop, gracefully. ``test=True`` (or Salt's test mode) runs
    ``restore --dry-run``: the plan with each step's changes, nothing changed.

    CLI Example: ``salt-call wyngq.restore laptop qubes=work on_conflict=skip test=True``
    """
    try:
        names = _qube_names(qubes, "qubes")
        excluded = _qube_names(exclude, "exclude")
        renames = [":".join(_qube_names([old, new], "rename")) for old, new in (rename or {}).items()]
    except ValueError as err:
        return _failure("restore", EXIT_USAGE, "usage", str(err))
    args = ["restore", f"--on-conflict={on_conflict}"]
    if session:
        args.append(f"--session={session}")
    if as_of:
        args.append(f"--as-of={as_of}")
    if all:
        args.append("--all")
    if prefs:
        args.append("--prefs")
    if pool:
        args.append(f"--pool={pool}")
    if shutdown:
        args.append("--shutdown")
    if _test_mode(test):
        args.append("--dry-run")
    args += [f"--exclude={name}" for name in excluded] + [f"--rename={pair}" for pair in renames]
    return _run_cli("restore", profile, [*args, "--", *names], events)


def list_(
    profile: str,
    qubes: list[str] | str | None = None,
    session: str | None = None,
    all_sessions: bool = False,
) -> dict[str, Any]:
    """The archive's qubes and their newest session (every session with
    ``all_sessions=True``; the qubes of one session with ``session=ID``).

    CLI Example: ``salt-call wyngq.list laptop all_sessions=True``
    """
    try:
        names = _qube_names(qubes, "qubes")
    except ValueError as err:
        return _failure("list", EXIT_USAGE, "usage", str(err))
    args = ["list"]
    if session:
        args.append(f"--session={session}")
    if all_sessions:
        args.append("--all")
    return _run_cli("list", profile, [*args, "--", *names])


def status(profile: str | None = None) -> dict[str, Any]:
    """The command's ``status``: the last operations recorded in dom0.

    CLI Example: ``salt-call wyngq.status``
    """
    return _run_cli("status", profile, ["status"])


def version() -> dict[str, Any]:
    """The installed wyng-util-qubes version.

    CLI Example: ``salt-call wyngq.version``
    """
    return _run_cli("version", None, ["version"])


def run(action: str, profile: str | None = None, args: list[str] | str | None = None) -> dict[str, Any]:
    """Run any other verb of the command (``verify``, ``prune``, ...) with ``args``.

    CLI Example: ``salt-call wyngq.run verify laptop args='["--session=20250101-120000"]'``
    """
    if not re.fullmatch(r"[a-z]+", action or ""):
        return _failure(str(action), EXIT_USAGE, "usage", f"invalid action {action!r}")
    extra = shlex.split(args) if isinstance(args, str) else list(args or [])
    return _run_cli(action, profile, [action, *extra])


# -- the state's questions --------------------------------------------------------------
def due(
    profile: str,
    max_age: int | float | str = "1d",
    qubes: list[str] | str | None = None,
    exclude: list[str] | str | None = None,
) -> dict[str, Any]:
    """Which of the profile's qubes (or of ``qubes``) have no session in the
    profile's archive younger than ``max_age``, and what a backup of them would do.

    Runs ``backup --dry-run --max-age=SECONDS``: each qube's last session in
    that archive comes from wyngq's record of it (no Wyng call), rebuilt from
    the archive's catalogue when missing (one Wyng ``list``, which needs the
    profile's passphrase source). Nothing is stored or changed. ``max_age`` is
    seconds or a duration such as ``12h``, ``1d``, ``1w2d``. Returns the
    command's result with ``due`` (names) and ``schedule``: one entry per
    selected qube with ``last_session``, ``last_backup`` (local time), ``age``
    (seconds) and ``due``; ``qubes`` and ``volumes`` are the dry run's plan for
    the due ones.

    CLI Example: ``salt-call wyngq.due laptop max_age=1d``
    """
    try:
        seconds = parse_age(max_age)
        names = _qube_names(qubes, "qubes")
        excluded = _qube_names(exclude, "exclude")
    except ValueError as err:
        return _failure("due", EXIT_USAGE, "usage", str(err))
    args = ["backup", "--dry-run", f"--max-age={seconds}", *[f"--exclude={name}" for name in excluded]]
    result = _run_cli("backup", profile, [*args, "--", *names])
    if result.get("ok"):
        result["due"] = [e["name"] for e in result.get("schedule", []) if e.get("due")]
        result["max_age"] = seconds
    return result


def present(qubes: list[str] | str) -> dict[str, Any]:
    """Which of ``qubes`` exist in dom0 (one ``qvm-ls``; no Wyng).

    CLI Example: ``salt-call wyngq.present work,vault``
    """
    try:
        names = _qube_names(qubes, "qubes")
    except ValueError as err:
        return _failure("present", EXIT_USAGE, "usage", str(err))
    facts = _qube_facts()
    if "error" in facts:
        return _failure("present", EXIT_QUBES, "qubes", facts["error"], hint="check that qubesd is running")
    return {"type": "result", "action": "present", "ok": True, "exit_code": 0, "code": "ok",
            "present": [n for n in names if n in facts], "missing": [n for n in names if n not in facts]}


def parse_age(value: int | float | str) -> int:
    """Seconds in ``value``: a number of seconds or e.g. ``90m``, ``12h``, ``1d``, ``1w2d``.
    Raise ValueError for anything else."""
    if isinstance(value, bool):
        raise ValueError(f"invalid max_age {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        text = str(value).strip().lower()
        parts = _AGE.findall(text)
        if not text or _AGE.sub("", text).strip() or not parts:
            raise ValueError(f"invalid max_age {value!r}: use seconds or a duration such as 12h, 1d, 1w")
        seconds = sum(float(number) * _AGE_UNITS[unit] for number, unit in parts)
    if seconds < 0:
        raise ValueError(f"invalid max_age {value!r}: negative")
    return int(seconds)


# -- running the command ----------------------------------------------------------------
def _run_cli(action: str, profile: str | None, args: list[str], events: bool = False) -> dict[str, Any]:
    argv = [*_command(), "--json", "--unattended"]
    if profile:
        argv.append(f"--profile={profile}")
    argv += args
    env = {"WYNGQ_PROFILE_DIR": _config("profile_dir")} if _config("profile_dir") else None
    try:
        done = __salt__["cmd.run_all"](argv, python_shell=False, ignore_retcode=True, env=env, output_loglevel="debug")
    except Exception as err:  # Salt raises CommandExecutionError when it cannot start it
        return _failure(action, EXIT_CONFIG, "config", f"cannot run {argv[0]}: {err}",
                        hint="install wyng-util-qubes, or set wyngq:command in the minion config")
    result = parse_output(done.get("stdout") or "", int(done.get("retcode", EXIT_INTERNAL)), done.get("stderr") or "")
    result.setdefault("action", action)
    if not events:
        result.pop("events", None)
    return _returned(result)


def parse_output(stdout: str, retcode: int, stderr: str = "") -> dict[str, Any]:
    """The command's result object, the last ``{"type": "result"}`` line of its
    JSON Lines, with the other objects as ``events``. When there is none (the
    command could not start, or crashed), a result of our own with its exit
    status and the end of its stderr."""
    found: list[dict[str, Any]] = []
    for line in stdout.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            found.append(value)
    if found and found[-1].get("type") == "result":
        return {**found[-1], "events": found[:-1]}
    tail = " ".join(stderr.strip().splitlines()[-3:])
    code = retcode if retcode else EXIT_INTERNAL
    return {
        "type": "result", "ok": False, "exit_code": code, "code": "internal" if code != 127 else "not_found",
        "message": f"wyng-util-qubes gave no result (exit status {retcode})" + (f": {tail}" if tail else ""),
        "events": found,
    }


def _returned(result: dict[str, Any]) -> dict[str, Any]:
    if not result.get("ok"):
        __context__["retcode"] = int(result.get("exit_code") or EXIT_INTERNAL)
    return result


def _failure(action: str, exit_code: int, code: str, message: str, hint: str | None = None) -> dict[str, Any]:
    result = {"type": "result", "action": action, "ok": False, "exit_code": exit_code, "code": code, "message": message}
    if hint:
        result["hint"] = hint
    return _returned(result)


def _qube_facts() -> dict[str, Any]:
    """name -> class, from one qvm-ls; or {"error": message}."""
    fields = "NAME,CLASS"
    argv = [*_split(_config("qvm_ls") or "qvm-ls"), "--raw-data", f"--fields={fields}"]
    try:
        done = __salt__["cmd.run_all"](argv, python_shell=False, ignore_retcode=True, output_loglevel="debug")
    except Exception as err:  # Salt raises CommandExecutionError when it cannot start it
        return {"error": f"cannot run {argv[0]}: {err}"}
    if done.get("retcode") != 0:
        tail = " ".join((done.get("stderr") or "").strip().splitlines()[-3:])
        return {"error": f"qvm-ls failed (exit status {done.get('retcode')}): {tail}"}
    facts: dict[str, Any] = {}
    for line in (done.get("stdout") or "").splitlines():
        cells = line.split("|")
        if len(cells) == 2 and cells[0].strip():
            facts[cells[0].strip()] = {"class": cells[1].strip()}
    return facts


def _qube_names(value: list[str] | str | None, what: str) -> list[str]:
    """Qube names from a list or a comma-separated string; ValueError for a bad one."""
    if value is None or value == "":
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    names = [str(item).strip() for item in items]
    for name in names:
        if not _QUBE_NAME.fullmatch(name) or name in ("dom0", "none", "default") or name.endswith("-dm"):
            raise ValueError(f"{what}: {name!r} is not a qube name")
    return names


def _test_mode(test: bool) -> bool:
    return bool(test) or bool(__opts__.get("test"))


def _command() -> list[str]:
    return _split(_config("command")) or list(DEFAULT_COMMAND)


def _split(value: Any) -> list[str]:
    if not value:
        return []
    return shlex.split(value) if isinstance(value, str) else [str(v) for v in value]


def _config(key: str) -> Any:
    if "config.get" in __salt__:
        return __salt__["config.get"](f"wyngq:{key}", None)
    return (__opts__.get("wyngq") or {}).get(key)
