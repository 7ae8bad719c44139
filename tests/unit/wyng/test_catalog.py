"""wyngq.wyng.catalog: `wyng --json list` parsed from Wyng's real recorded output."""

from __future__ import annotations

import contextlib
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import FIXTURES
from wyngq.errors import ConfigError, WyngError
from wyngq.wyng.catalog import Archive, check_header_version, check_version, parse_list_output

LIST_JSON = sorted((FIXTURES / "json").glob("list_*.json"))
LIST_STDOUT = sorted((FIXTURES / "cmd").glob("list_json_*.stdout"))
FIRST_SESSION = "20261126-151007"


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _fixture(name: str) -> Archive:
    return parse_list_output(_text(FIXTURES / "json" / name))


def _raw(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(_text(FIXTURES / "json" / name))
    return doc


def test_the_fixture_set_is_there() -> None:
    assert len(LIST_JSON) >= 20
    assert len(LIST_STDOUT) == len(LIST_JSON)


@pytest.mark.parametrize("path", LIST_JSON, ids=lambda p: p.stem)
def test_every_recorded_listing_parses_to_what_it_says(path: Path) -> None:
    raw = json.loads(_text(path))
    archive = parse_list_output(_text(path))

    assert archive.wversion == raw["wversion"] == "0.8 rc4"
    assert archive.wdate == raw["wdate"]
    assert archive.uuid == raw["uuid"]
    assert archive.url == raw["url"]
    assert isinstance(raw["updated_at"], str)  # Wyng writes a string ...
    assert archive.updated_at == float(raw["updated_at"])  # ... we keep a number
    assert isinstance(archive.updated_at, float)
    assert archive.encrypted is raw["encrypted"]
    assert archive.authenticated is raw["is_auth"]
    assert set(archive.volumes) == set(raw["volumes"])
    for name, raw_volume in raw["volumes"].items():
        volume = archive.volumes[name]
        assert volume.name == name
        assert volume.vid == raw_volume["vid"]
        expected_last = None if raw_volume["last"] == "None" else raw_volume["last"].removeprefix("S_")
        assert volume.last == expected_last
        assert set(volume.sessions) == {key.removeprefix("S_") for key in raw_volume["sessions"]}
        for key, raw_entry in raw_volume["sessions"].items():
            entry = volume.sessions[key.removeprefix("S_")]
            assert entry.session == key.removeprefix("S_")
            assert entry.volsize == raw_entry["volsize"]
            assert entry.sequence == raw_entry["sequence"]
            assert entry.changed is raw_entry["chg"]
            assert dict(entry.tags) == raw_entry["tags"]
    every = {key.removeprefix("S_") for v in raw["volumes"].values() for key in v["sessions"]}
    assert archive.sessions() == sorted(every)


@pytest.mark.parametrize("path", LIST_STDOUT, ids=lambda p: p.stem)
def test_whole_stdout_with_header_lines_parses_like_the_bare_json(path: Path) -> None:
    stdout = _text(path)
    assert stdout.startswith("Wyng 0.8 rc4 release 20251028\n")
    bare = FIXTURES / "json" / (path.stem.replace("list_json_", "list_") + ".json")
    assert parse_list_output(stdout) == parse_list_output(_text(bare))


@pytest.mark.parametrize("name", ["024_list_json_selected", "025_list_json_session"])
def test_json_list_ignores_selection_and_prints_the_whole_archive(name: str) -> None:
    # 024 has an extra "not found; Skipping." line in its header.
    archive = parse_list_output(_text(FIXTURES / "cmd" / f"{name}.stdout"))
    assert archive == parse_list_output(_text(FIXTURES / "cmd" / "list_json_01_after_full.stdout"))


def test_first_full_backup_session() -> None:
    archive = _fixture("list_01_after_full.json")
    assert archive.sessions() == [FIRST_SESSION]
    assert archive.session_volumes(FIRST_SESSION) == {
        "appvms/work/private.img",
        "appvms/personal/private.img",
        "vm-templates/fedora/root.img",
        "vm-templates/fedora/private.img",
        "appvms/extra/private.img",
        "wyng-qubes-metadata",
    }
    assert archive.session_tags(FIRST_SESSION) == {"qubes": "", "full": "initial full backup"}
    work = archive.volumes["appvms/work/private.img"]
    assert work.last == FIRST_SESSION
    assert work.sessions[FIRST_SESSION].volsize == 268435456
    assert work.sessions[FIRST_SESSION].sequence == 0
    assert work.sessions[FIRST_SESSION].changed is True
    assert archive.updated_at == 1795705810.860684


def test_unknown_session_has_no_volumes_and_no_tags() -> None:
    archive = _fixture("list_01_after_full.json")
    assert archive.session_volumes("20000101-000000") == set()
    assert archive.session_tags("20000101-000000") == {}


def test_sessions_are_sorted_oldest_first_across_volumes() -> None:
    archive = _fixture("list_10_before_prune.json")
    sessions = archive.sessions()
    assert sessions == sorted(sessions)
    assert len(sessions) == len(set(sessions)) > 3
    for session in sessions:
        assert archive.session_volumes(session)


def test_a_volume_without_sessions_has_last_none() -> None:
    raw = _raw("list_12_after_add.json")
    (empty,) = [name for name, v in raw["volumes"].items() if v["last"] == "None"]
    archive = parse_list_output(json.dumps(raw))
    assert archive.volumes[empty].last is None
    assert archive.volumes[empty].sessions == {}


def test_unencrypted_archive() -> None:
    archive = _fixture("list_20_P_before_autoprune.json")
    assert archive.encrypted is False
    assert archive.authenticated is False


def test_only_one_session_gets_the_tags_it_was_sent_with() -> None:
    archive = _fixture("list_15_after_six_tags.json")
    last = archive.sessions()[-1]
    tags = archive.session_tags(last)
    assert len(tags) == 5  # Wyng silently drops a sixth --tag (docs/facts.md)


def test_leading_blank_and_crlf_free_header_is_found() -> None:
    body = _text(FIXTURES / "json" / "list_01_after_full.json")
    assert parse_list_output("\n\n" + body) == parse_list_output(body)


# -- malformed output: always WyngError ----------------------------------------------
def _good() -> dict[str, Any]:
    return _raw("list_01_after_full.json")


def _with(path: tuple[str, ...], value: Any) -> str:
    doc = _good()
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return json.dumps(doc)


def _without(path: tuple[str, ...]) -> str:
    doc = _good()
    target = doc
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return json.dumps(doc)


WORK = ("volumes", "appvms/work/private.img")
WORK_SESSION = (*WORK, "sessions", f"S_{FIRST_SESSION}")

MALFORMED = {
    "empty": "",
    "header only": "Wyng 0.8 rc4 release 20251028\nEncrypted archive 'file:/mnt/backup/A.wyng'\n",
    "error text": "StorageError: Archive not found at 'file:/mnt/backup/empty.wyng'\n",
    "truncated json": _text(FIXTURES / "cmd" / "list_json_01_after_full.stdout")[:400],
    "json array": "Wyng 0.8 rc4 release 20251028\n[1, 2]",
    "json string": '"volumes"',
    "no volumes": _without(("volumes",)),
    "volumes is a list": _with(("volumes",), []),
    "no wversion": _without(("wversion",)),
    "wversion is a number": _with(("wversion",), 0.8),
    "wdate is a number": _with(("wdate",), 20251028),
    "updated_at not a number": _with(("updated_at",), "yesterday"),
    "updated_at a list": _with(("updated_at",), [1]),
    "volume is a string": _with(WORK, "appvms/work/private.img"),
    "sessions is a list": _with((*WORK, "sessions"), ["S_20261126-151007"]),
    "session key without S_": json.dumps(
        {**_good(), "volumes": {"v": {"vid": "x", "last": "None", "sessions": {FIRST_SESSION: {}}}}}
    ),
    "session entry is a list": _with(WORK_SESSION, []),
    "tags is a list": _with((*WORK_SESSION, "tags"), ["qubes"]),
    "volsize not a number": _with((*WORK_SESSION, "volsize"), "big"),
    "volsize a list": _with((*WORK_SESSION, "volsize"), [1]),
    "volsize NaN": _with((*WORK_SESSION, "volsize"), float("nan")),
    "volsize Infinity": _with((*WORK_SESSION, "volsize"), float("inf")),
    "sequence -Infinity": _with((*WORK_SESSION, "sequence"), float("-inf")),
    "vid is a number": _with((*WORK, "vid"), 6),
    "deeply nested": "Wyng 0.8 rc4 release 20251028\n" + '{"volumes": ' + "[" * 100_000 + "]" * 100_000 + "}",
}


@pytest.mark.parametrize("stdout", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_listing_is_a_wyng_error(stdout: str) -> None:
    with pytest.raises(WyngError):
        parse_list_output(stdout)


def test_each_malformed_case_is_one_mutation_from_a_good_listing() -> None:
    assert parse_list_output(json.dumps(_good())) == _fixture("list_01_after_full.json")


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=8,
)
FIELD_PATHS = [
    ("wversion",),
    ("wdate",),
    ("updated_at",),
    ("encrypted",),
    ("is_auth",),
    ("url",),
    ("volumes",),
    WORK,
    (*WORK, "vid"),
    (*WORK, "last"),
    (*WORK, "sessions"),
    WORK_SESSION,
    (*WORK_SESSION, "volsize"),
    (*WORK_SESSION, "sequence"),
    (*WORK_SESSION, "chg"),
    (*WORK_SESSION, "tags"),
]


@settings(max_examples=150, deadline=None)
@given(path=st.sampled_from(FIELD_PATHS), value=JSON_VALUES)
def test_any_field_replaced_by_any_json_parses_or_is_a_wyng_error(path: tuple[str, ...], value: Any) -> None:
    try:
        archive = parse_list_output(_with(path, value))
    except WyngError:
        return
    assert isinstance(archive.updated_at, float)
    for volume in archive.volumes.values():
        assert volume.last is None or isinstance(volume.last, str)
        for entry in volume.sessions.values():
            assert isinstance(entry.volsize, int) and isinstance(entry.sequence, int)
            assert all(isinstance(k, str) and isinstance(v, str) for k, v in entry.tags.items())


@settings(deadline=None)
@given(st.text())
def test_arbitrary_text_parses_or_is_a_wyng_error(text: str) -> None:
    with contextlib.suppress(WyngError):
        parse_list_output(text)


@settings(deadline=None)
@given(st.text(max_size=60))
def test_arbitrary_text_after_the_header_parses_or_is_a_wyng_error(text: str) -> None:
    with contextlib.suppress(WyngError):
        parse_list_output("Wyng 0.8 rc4 release 20251028\n{" + text)


# -- the version gate -----------------------------------------------------------------
def _versioned(wversion: str, wdate: str) -> Archive:
    return dataclasses.replace(_fixture("list_01_after_full.json"), wversion=wversion, wdate=wdate)


@pytest.mark.parametrize(
    ("wversion", "wdate"),
    [
        ("0.8 rc4", "20251028"),  # the recorded one
        ("0.8 beta", "20250820"),  # the oldest accepted release
        ("0.8", "20260101"),
        ("0.9 beta", "20260301"),
        ("1.0", "20270101"),
    ],
)
def test_version_gate_accepts_wyng_08_from_20250820(wversion: str, wdate: str) -> None:
    check_version(_versioned(wversion, wdate))


@pytest.mark.parametrize(
    ("wversion", "wdate"),
    [
        ("0.8 beta", "20250819"),  # one day too old
        ("0.8 beta", "20240528"),  # what upstream wyng-util-qubes accepts
        ("0.7 beta", "20251028"),
        ("0.7.5", "20251028"),
        ("0", "20251028"),
        ("", "20251028"),
        ("garbage", "20251028"),
        ("0.x", "20251028"),
        ("0.8 rc4", ""),
        ("0.8 rc4", "garbage"),
        ("0.8 rc4", "2025-10-28"),
        ("0.8 rc4", "yesterday"),
    ],
)
def test_version_gate_rejects_old_or_garbled_versions(wversion: str, wdate: str) -> None:
    with pytest.raises(ConfigError) as caught:
        check_version(_versioned(wversion, wdate))
    assert "20250820" in (caught.value.hint or "")


@pytest.mark.parametrize("name", ["010_version.stdout", "012_init_U_unencrypted.stdout", "020_send_full.stdout"])
def test_release_line_of_recorded_runs_passes(name: str) -> None:
    check_header_version(_text(FIXTURES / "cmd" / name))


@pytest.mark.parametrize(
    "stdout",
    [
        "Wyng 0.8 beta release 20250819\n\nCreate new archive: 'file:/x'\n",
        "Wyng 0.7.5 release 20251028\n",
        "Create new archive: 'file:/x'\nWyng 0.8 rc4 release 20251028\n",  # not the first line
        "",
    ],
)
def test_release_line_missing_or_too_old_fails(stdout: str) -> None:
    with pytest.raises(ConfigError):
        check_header_version(stdout)
