"""wyngq.profile: dom0 profiles, checked strictly; one test per realistic mistake,
each one edit away from the good profile."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from wyngq.errors import ConfigError, UsageError
from wyngq.profile import (
    BackupDefaults,
    PassphraseSource,
    Profile,
    Selection,
    load_profile,
    parse_profile,
)

GOOD = """\
dest = "file:/mnt/backup/laptop.wyng"
wyng = "/usr/local/bin/wyng"
meta_dir = "/var/lib/wyng"

[passphrase]
file = "/etc/wyng-util-qubes/laptop.pass"

[qubes]
include = ["work", "personal", "@include_in_backups", "@tag:backup"]
exclude = ["untrusted", "@tag:no-backup"]

[backup]
dedup = true
autoprune = "on"
check_after_send = false

[rpc]
allow_unauthenticated_restore = false

[[rpc.allow]]
callers = ["mgmt", "@tag:wyng-admin"]
actions = ["list", "backup"]
"""


PASS_FILE = 'file = "/etc/wyng-util-qubes/laptop.pass"'
INCLUDE = 'include = ["work", "personal", "@include_in_backups", "@tag:backup"]'


def _write(tmp_path: Path, text: str, name: str = "laptop") -> str:
    (tmp_path / f"{name}.toml").write_text(text, encoding="utf-8")
    return str(tmp_path)


def _edit(old: str, new: str) -> str:
    assert GOOD.count(old) == 1, old
    return GOOD.replace(old, new)


def test_good_profile() -> None:
    profile = parse_profile("laptop", tomllib.loads(GOOD))
    assert profile.name == "laptop"
    assert profile.dest == "file:/mnt/backup/laptop.wyng"
    assert profile.wyng == "/usr/local/bin/wyng"
    assert profile.meta_dir == "/var/lib/wyng"
    assert profile.passphrase == PassphraseSource(file="/etc/wyng-util-qubes/laptop.pass")
    assert profile.passphrase.configured
    assert profile.qubes == Selection(
        include=("work", "personal", "@include_in_backups", "@tag:backup"),
        exclude=("untrusted", "@tag:no-backup"),
    )
    assert profile.backup == BackupDefaults(dedup=True, autoprune="on", check_after_send=False)
    assert profile.rpc.allow_unauthenticated_restore is False
    (rule,) = profile.rpc.rules
    assert rule.callers == ("mgmt", "@tag:wyng-admin")
    assert rule.actions == ("list", "backup")


def test_load_profile_reads_the_same_profile(tmp_path: Path) -> None:
    assert load_profile("laptop", _write(tmp_path, GOOD)) == parse_profile("laptop", tomllib.loads(GOOD))


def test_smallest_profile_takes_the_defaults() -> None:
    profile = parse_profile("min", {"dest": "ssh://backup@nas:2222/srv/wyng"})
    assert profile == Profile(name="min", dest="ssh://backup@nas:2222/srv/wyng")
    assert profile.wyng == "wyng"
    assert profile.meta_dir is None
    assert not profile.passphrase.configured
    assert profile.qubes == Selection()
    assert profile.backup == BackupDefaults()


@pytest.mark.parametrize(
    "dest", ["file:/mnt/backup/a.wyng", "ssh://u@h/p", "qubes://backupvm/mnt/b", "qubes-ssh://vm:u@h:22/p"]
)
def test_every_wyng_url_scheme(dest: str) -> None:
    assert parse_profile("p", {"dest": dest}).dest == dest


def test_passphrase_command_as_a_string_or_a_list() -> None:
    text = _edit(PASS_FILE, 'command = "/usr/local/bin/laptop-pass"')
    expected = PassphraseSource(command=("/usr/local/bin/laptop-pass",))
    assert parse_profile("p", tomllib.loads(text)).passphrase == expected
    text = _edit(PASS_FILE, 'command = ["/usr/bin/pass", "show", "wyng laptop"]')
    assert parse_profile("p", tomllib.loads(text)).passphrase == PassphraseSource(
        command=("/usr/bin/pass", "show", "wyng laptop")
    )


def test_autoprune_off_and_full() -> None:
    for mode in ("off", "full"):
        text = _edit('autoprune = "on"', f'autoprune = "{mode}"')
        assert parse_profile("p", tomllib.loads(text)).backup.autoprune == mode


MISTAKES = {
    # unknown keys, at the top and in every table
    "unknown top key": _edit('meta_dir = "/var/lib/wyng"', 'metadir = "/var/lib/wyng"'),
    "unknown [passphrase] key": _edit('file = "/etc', 'path = "/etc'),
    "unknown [qubes] key": _edit("exclude = [", "excludes = ["),
    "unknown [backup] key": _edit("dedup = true", "dedupe = true"),
    "unknown [rpc] key": _edit("allow_unauthenticated_restore = false", "allow_unauthenticated = false"),
    "unknown [[rpc.allow]] key": _edit('callers = ["mgmt"', 'caller = ["mgmt"'),
    "unknown table": GOOD + '\n[restore]\npool = "vm-pool"\n',
    # dest
    "missing dest": _edit('dest = "file:/mnt/backup/laptop.wyng"\n', ""),
    "dest not a string": _edit('dest = "file:/mnt/backup/laptop.wyng"', "dest = 1"),
    "dest a bare path": _edit('dest = "file:/mnt/backup/laptop.wyng"', 'dest = "/mnt/backup/laptop.wyng"'),
    "dest bad scheme": _edit('dest = "file:/mnt/backup/laptop.wyng"', 'dest = "ftp://nas/laptop.wyng"'),
    "dest scheme typo": _edit('dest = "file:/mnt/backup/laptop.wyng"', 'dest = "qubes:/backupvm/laptop.wyng"'),
    # wyng and meta_dir
    "wyng not a string": _edit('wyng = "/usr/local/bin/wyng"', 'wyng = ["/usr/local/bin/wyng"]'),
    "meta_dir not a string": _edit('meta_dir = "/var/lib/wyng"', "meta_dir = true"),
    # passphrase
    "relative passphrase file": _edit('"/etc/wyng-util-qubes/laptop.pass"', '"laptop.pass"'),
    "passphrase file not a string": _edit(PASS_FILE, "file = 1"),
    "two passphrase sources": _edit(
        'file = "/etc/wyng-util-qubes/laptop.pass"',
        'file = "/etc/wyng-util-qubes/laptop.pass"\ncommand = "/usr/local/bin/laptop-pass"',
    ),
    "relative passphrase command": _edit(PASS_FILE, 'command = "laptop-pass"'),
    "shell passphrase command": _edit(PASS_FILE, 'command = "echo $WYNGPASS"'),
    "empty passphrase command": _edit(PASS_FILE, "command = []"),
    "empty passphrase command word": _edit(PASS_FILE, 'command = ["/bin/pass", ""]'),
    "passphrase command word not a string": _edit(PASS_FILE, 'command = ["/bin/x", 1]'),
    "passphrase not a table": _edit(
        '[passphrase]\nfile = "/etc/wyng-util-qubes/laptop.pass"\n', ""
    ).replace('dest = "file', 'passphrase = "correct horse battery"\ndest = "file'),
    # qubes
    "include not a list": _edit(INCLUDE, 'include = "work"'),
    "include a bad qube name": _edit('"personal",', '"-personal",'),
    "include a path": _edit('"personal",', '"../personal",'),
    "include dom0": _edit('"personal",', '"dom0",'),
    "include selector typo": _edit('"@include_in_backups"', '"@include-in-backups"'),
    "include unknown selector": _edit('"@include_in_backups"', '"@all"'),
    "include empty tag": _edit('"@tag:backup"', '"@tag:"'),
    "include tag with space": _edit('"@tag:backup"', '"@tag:back up"'),
    "include a number": _edit('"personal",', "3,"),
    "exclude include_in_backups": _edit('exclude = ["untrusted",', 'exclude = ["@include_in_backups",'),
    "exclude a bad name": _edit('exclude = ["untrusted",', 'exclude = ["untrusted/",'),
    # backup
    "autoprune unknown": _edit('autoprune = "on"', 'autoprune = "yes"'),
    "autoprune a bool": _edit('autoprune = "on"', "autoprune = true"),
    "dedup a string": _edit("dedup = true", 'dedup = "yes"'),
    "check_after_send a number": _edit("check_after_send = false", "check_after_send = 1"),
    "backup not a table": _edit("[backup]\ndedup = true\nautoprune = \"on\"\ncheck_after_send = false\n", "").replace(
        'meta_dir = "/var/lib/wyng"', 'meta_dir = "/var/lib/wyng"\nbackup = "daily"'
    ),
    # rpc
    "rpc unknown action": _edit('actions = ["list", "backup"]', 'actions = ["list", "delete"]'),
    "rpc no actions": _edit('actions = ["list", "backup"]', "actions = []"),
    "rpc no callers": _edit('callers = ["mgmt", "@tag:wyng-admin"]', "callers = []"),
    "rpc bad caller": _edit('callers = ["mgmt",', 'callers = ["-mgmt",'),
    "rpc unknown conflict policy": _edit('actions = ["list", "backup"]', 'actions = ["list"]\non_conflict = ["x"]'),
    "rpc allow not an array": _edit("[[rpc.allow]]", "[rpc.allow]"),
    "rpc flag a string": _edit("allow_unauthenticated_restore = false", 'allow_unauthenticated_restore = "no"'),
    # the file itself
    "TOML syntax": _edit("dedup = true", "dedup = yes"),
    "TOML duplicate key": _edit("dedup = true", "dedup = true\ndedup = false"),
}


@pytest.mark.parametrize("text", MISTAKES.values(), ids=MISTAKES.keys())
def test_each_mistake_is_a_config_error_naming_the_file(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_profile("laptop", _write(tmp_path, text))
    assert "laptop.toml" in caught.value.message


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (MISTAKES["unknown top key"], "metadir"),
        (MISTAKES["unknown [backup] key"], "dedupe"),
        (MISTAKES["dest bad scheme"], "ftp://nas/laptop.wyng"),
        (MISTAKES["two passphrase sources"], "one of"),
        (MISTAKES["relative passphrase file"], "absolute"),
        (MISTAKES["include selector typo"], "@include-in-backups"),
        (MISTAKES["autoprune unknown"], "off, on, full"),
    ],
)
def test_the_message_says_what_is_wrong(tmp_path: Path, text: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_profile("laptop", _write(tmp_path, text))
    assert words in caught.value.message


@pytest.mark.parametrize("text", MISTAKES.values(), ids=MISTAKES.keys())
def test_parse_profile_raises_only_what_load_profile_turns_into_config_error(text: str) -> None:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return
    with pytest.raises((KeyError, TypeError, ValueError)):
        parse_profile("laptop", data)


@pytest.mark.parametrize(
    "name", ["", "Laptop", "-laptop", ".laptop", "../laptop", "a/b", "laptop.toml/x", "lap top", "l" * 65, "läptop"]
)
def test_load_profile_refuses_bad_names_before_touching_the_disk(tmp_path: Path, name: str) -> None:
    with pytest.raises(UsageError):
        load_profile(name, str(tmp_path / "no-such-dir"))


@pytest.mark.parametrize("name", ["laptop", "daily.offsite", "nas_2", "0", "l" * 64])
def test_good_profile_names(tmp_path: Path, name: str) -> None:
    assert load_profile(name, _write(tmp_path, GOOD, name)).name == name


def test_missing_profile_is_a_config_error_with_the_path_to_create(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_profile("laptop", str(tmp_path))
    assert "'laptop'" in caught.value.message
    assert str(tmp_path / "laptop.toml") in (caught.value.hint or "")


def test_profile_that_is_a_directory_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "laptop.toml").mkdir()
    with pytest.raises(ConfigError):
        load_profile("laptop", str(tmp_path))


def test_profile_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "laptop.toml").write_bytes(GOOD.encode() + b'\n# caf\xe9\n')
    with pytest.raises(ConfigError):
        load_profile("laptop", str(tmp_path))


# -- [dom0] ----------------------------------------------------------------------------
DOM0 = GOOD + """
[dom0]
home = true
home_dir = "/home/user"
exclude = [".mozilla/firefox/*/cache2", "*.iso"]
config = true
"""


def test_dom0_table() -> None:
    from wyngq.profile import Dom0Settings

    profile = parse_profile("laptop", tomllib.loads(DOM0))

    assert profile.dom0 == Dom0Settings(home=True, home_dir="/home/user",
                                        exclude=(".mozilla/firefox/*/cache2", "*.iso"), config=True)
    assert parse_profile("laptop", tomllib.loads(GOOD)).dom0 == Dom0Settings()


@pytest.mark.parametrize(("edit", "message"), [
    ('home = "yes"', "home must be true or false"),
    ('home_dir = "home/user"', "home_dir must be an absolute path"),
    ('exclude = ".cache"', "exclude must be a list of strings"),
    ('exclude = ["/"]', "exclude patterns must not be empty"),
    ('passphrase = true', "unknown key(s) in [dom0]: passphrase"),
])
def test_dom0_mistakes(edit: str, message: str) -> None:
    key = edit.split(" ")[0]
    lines = [line for line in DOM0.splitlines() if not line.startswith(key + " ")]
    text = "\n".join(lines) + "\n" + edit + "\n"
    with pytest.raises((ValueError, TypeError), match=re.escape(message)):
        parse_profile("laptop", tomllib.loads(text))


# -- hostile profiles: each a clean ConfigError, never an internal error ----------------------
HOSTILE = {
    "a 5000-digit integer": 'dest = "file:/x"\nstall_timeout = ' + "9" * 5000 + "\n",
    "arrays nested 5000 deep": 'dest = "file:/x"\n[qubes]\ninclude = ' + "[" * 5000 + "]" * 5000 + "\n",
    "a NUL byte": 'dest = "file:/x"\0\n',
    "a NUL escape in a path": 'dest = "file:/x"\nwyng = "/usr/bin/wy\\u0000ng"\n',
    "an escape sequence in a key": 'dest = "file:/x"\n"\\u001b[2J" = 1\n',
    "a line break in a command": 'dest = "file:/x"\n[passphrase]\ncommand = ["/bin/pass", "a\\nb"]\n',
    "stall_timeout negative": 'dest = "file:/x"\nstall_timeout = -1\n',
    "stall_timeout a string": 'dest = "file:/x"\nstall_timeout = "1h"\n',
    "stall_timeout a bool": 'dest = "file:/x"\nstall_timeout = true\n',
    "stall_timeout over a week": 'dest = "file:/x"\nstall_timeout = 604801\n',
    "stall_timeout infinite": 'dest = "file:/x"\nstall_timeout = inf\n',
    "larger than 1 MiB": 'dest = "file:/x"\n' + "#" * (1024 * 1024) + "\n",
}


@pytest.mark.parametrize("text", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_hostile_profile_is_a_config_error(tmp_path: Path, text: str) -> None:
    (tmp_path / "laptop.toml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_profile("laptop", str(tmp_path))
    assert "laptop.toml" in caught.value.message and len(caught.value.message) < 400


def test_stall_timeout_defaults_to_an_hour_and_zero_means_never(tmp_path: Path) -> None:
    assert parse_profile("a", {"dest": "file:/x"}).stall_timeout == 3600.0
    assert parse_profile("a", {"dest": "file:/x", "stall_timeout": 600}).stall_timeout == 600.0
    assert parse_profile("a", {"dest": "file:/x", "stall_timeout": 0}).stall_timeout is None


# -- archive care keys ---------------------------------------------------------------
CARE = _edit("check_after_send = false", 'check_after_send = false\napdays = "0:30:1:2"\ntags = ["weekly", "laptop"]\n'
             'vouch = ["reflink_fs_xfs"]\nkeep = ["20250101-000000"]')


def test_archive_care_keys_become_typed_values() -> None:
    from wyngq.profile import archive_care
    from wyngq.wyng.commands import ArchiveCare

    profile = parse_profile("p", tomllib.loads(CARE))
    assert profile.backup.tags == ("weekly", "laptop")
    assert archive_care(profile) == ArchiveCare(apdays="0:30:1:2", vouch=("reflink_fs_xfs",), keep=("20250101-000000",))
    assert archive_care(parse_profile("p", tomllib.loads(GOOD))) is None


CARE_MISTAKES = {
    "apdays with three parts": ('apdays = "0:30:1:2"', 'apdays = "0:30:1"'),
    "apdays below 0:0:1:1": ('apdays = "0:30:1:2"', 'apdays = "0:30:0:2"'),
    "apdays an option": ('apdays = "0:30:1:2"', 'apdays = "0:30:1:2 --force"'),
    "a tag with a space": ('tags = ["weekly", "laptop"]', 'tags = ["week ly"]'),
    "a tag with upper case (Wyng lower-cases it)": ('tags = ["weekly", "laptop"]', 'tags = ["Weekly"]'),
    "a tag with a comma": ('tags = ["weekly", "laptop"]', 'tags = ["weekly,desc"]'),
    "five tags (Wyng keeps five with qubes)": ('tags = ["weekly", "laptop"]', 'tags = ["a", "b", "c", "d", "e"]'),
    "a tag twice": ('tags = ["weekly", "laptop"]', 'tags = ["a", "a"]'),
    "vouch for anything": ('vouch = ["reflink_fs_xfs"]', 'vouch = ["--force"]'),
    "keep by tag (crashes Wyng)": ('keep = ["20250101-000000"]', 'keep = ["^weekly"]'),
    "keep not a session": ('keep = ["20250101-000000"]', 'keep = ["yesterday"]'),
    "tags not a list": ('tags = ["weekly", "laptop"]', 'tags = "weekly"'),
}


@pytest.mark.parametrize("change", CARE_MISTAKES.values(), ids=CARE_MISTAKES.keys())
def test_each_archive_care_mistake_is_refused(change: tuple[str, str]) -> None:
    old, new = change
    assert CARE.count(old) == 1
    with pytest.raises((ValueError, TypeError)):
        parse_profile("p", tomllib.loads(CARE.replace(old, new)))


def test_the_example_profile_loads_with_each_passphrase_source(tmp_path: Path) -> None:
    from tests.conftest import ROOT
    from wyngq.profile import load_profile

    text = (ROOT / "wyngq" / "data" / "wyng-util-qubes.example.toml").read_text(encoding="utf-8")
    (tmp_path / "example.toml").write_text(text)
    assert load_profile("example", str(tmp_path)).passphrase.file == "/etc/wyng-util-qubes/laptop.pass"
    for line, check in (('# qube = "vault"', lambda s: s.qube == "vault"),
                        ('# command = ["/usr/local/bin/get-wyng-passphrase", "laptop"]',
                         lambda s: s.command == ("/usr/local/bin/get-wyng-passphrase", "laptop"))):
        variant = text.replace('file = "/etc/wyng-util-qubes/laptop.pass"\n', "").replace(line, line[2:])
        (tmp_path / "variant.toml").write_text(variant)
        assert check(load_profile("variant", str(tmp_path)).passphrase)
