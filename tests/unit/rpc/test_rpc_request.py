"""wyngq.rpc.request: the parser is the validator.

One fixture per rejected request, each one mutation away from a valid request
of its action, with the exact message the caller gets; then property-based
fuzzing (well over 10,000 generated inputs in all): the parser only ever
returns a valid request or raises RequestError.
"""

from __future__ import annotations

import io
import json
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wyngq.errors import ExitCode, UsageError
from wyngq.names import is_qube_name, is_session_id
from wyngq.profile import CONFLICT_POLICIES, PROFILE_NAME_RULE, RPC_ACTIONS, is_profile_name
from wyngq.rpc.request import (
    JOB_ID,
    MAX_REQUEST_BYTES,
    REQUEST_TYPES,
    BackupCall,
    ListCall,
    PruneCall,
    RequestError,
    RestoreCall,
    StatusCall,
    VerifyCall,
    parse_request,
    read_capped,
)

VALID: dict[str, dict[str, Any]] = {
    "list": {"profile": "laptop", "qubes": ["work"], "session": "20250102-030405", "all": False},
    "backup": {"profile": "laptop", "qubes": ["work", "vault"], "dry_run": True},
    "restore": {
        "profile": "laptop",
        "qubes": ["work", "vault"],
        "session": "latest",
        "on_conflict": "rename",
        "rename": {"work": "work-restored"},
        "shutdown": False,
        "dry_run": True,
    },
    "verify": {"profile": "laptop", "qubes": ["work"], "session": "20250102-030405"},
    "prune": {"profile": "laptop", "qubes": ["work"], "session": "20250101-000000,20250102-030405", "dry_run": True},
    "status": {"profile": "laptop", "job": "20250102-030405-0123abcd"},
}


def encode(document: object) -> bytes:
    return json.dumps(document).encode()


def edit(action: str, **changes: object) -> bytes:
    """The valid request of `action` with keys changed (a value of ... deletes the key)."""
    document = dict(VALID[action])
    for key, value in changes.items():
        if value is ...:
            del document[key]
        else:
            document[key] = value
    return encode(document)


# -- the valid requests -----------------------------------------------------------------
def test_every_action_has_a_valid_example() -> None:
    assert set(VALID) == set(RPC_ACTIONS) == set(REQUEST_TYPES)


def test_valid_requests_parse_into_frozen_dataclasses() -> None:
    assert parse_request("list", encode(VALID["list"])) == ListCall("laptop", ("work",), "20250102-030405", False)
    assert parse_request("backup", encode(VALID["backup"])) == BackupCall("laptop", ("work", "vault"), True)
    assert parse_request("restore", encode(VALID["restore"])) == RestoreCall(
        "laptop", ("work", "vault"), "latest", "rename", (("work", "work-restored"),), False, True
    )
    assert parse_request("verify", encode(VALID["verify"])) == VerifyCall("laptop", ("work",), "20250102-030405")
    assert parse_request("prune", encode(VALID["prune"])) == PruneCall(
        "laptop", ("20250101-000000", "20250102-030405"), ("work",), False, True
    )
    assert parse_request("status", encode(VALID["status"])) == StatusCall("laptop", "20250102-030405-0123abcd")
    with pytest.raises(AttributeError):
        parse_request("backup", encode(VALID["backup"])).profile = "other"  # type: ignore[misc]


def test_minimal_requests_take_the_defaults() -> None:
    only_profile = encode({"profile": "laptop"})
    assert parse_request("list", only_profile) == ListCall("laptop")
    assert parse_request("backup", only_profile) == BackupCall("laptop")
    assert parse_request("verify", only_profile) == VerifyCall("laptop", (), "latest")
    assert parse_request("status", only_profile) == StatusCall("laptop")
    restore = parse_request("restore", encode({"profile": "laptop", "qubes": ["work"]}))
    assert restore == RestoreCall("laptop", ("work",), None, "fail", (), False, False)  # each qube's newest
    prune = parse_request("prune", encode({"profile": "laptop", "session": "20250102-030405", "all_before": True}))
    assert prune == PruneCall("laptop", ("20250102-030405",), (), True, False)


def test_whitespace_around_the_object_is_fine() -> None:
    assert parse_request("backup", b'\n  {"profile": "laptop"}  \n') == BackupCall("laptop")


# -- one fixture per rejected request, one mutation away from a valid one ---------------------
RULE = f" (a profile name is {PROFILE_NAME_RULE})"
REJECTED: dict[str, tuple[str, bytes, str]] = {
    # framing
    "empty": ("backup", b"", "empty request"),
    "only whitespace": ("backup", b" \n\t", "empty request"),
    "invalid utf-8": ("backup", edit("backup", profile="laptop").replace(b"laptop", b"lap\xfftop"),
                      "request is not valid UTF-8 (byte 16)"),
    "truncated json": ("backup", edit("backup")[:-1],
                       "request is not valid JSON: Expecting ',' delimiter (line 1 column 66)"),
    "trailing garbage": ("backup", edit("backup") + b"{}",
                         "request is not valid JSON: Extra data (line 1 column 67)"),
    "two objects on two lines": ("list", edit("list") + b"\n" + edit("list"),
                                 "request is not valid JSON: Extra data (line 2 column 1)"),
    "utf-8 bom": ("backup", b"\xef\xbb\xbf" + edit("backup"),
                  "request is not valid JSON: Unexpected UTF-8 BOM (decode using utf-8-sig) (line 1 column 1)"),
    "NaN": ("backup", edit("backup").replace(b"true", b"NaN"), "request is not valid JSON: NaN is not allowed"),
    "Infinity": ("list", edit("list").replace(b"false", b"Infinity"),
                 "request is not valid JSON: Infinity is not allowed"),
    "huge integer": ("list", edit("list").replace(b"false", b"9" * 5000),
                     "request is not valid JSON: a number is too long"),
    "deep nesting": ("list", edit("list").replace(b"false", b"[" * 100_000 + b"]" * 100_000),
                     "request is nested too deeply"),
    "a list, not an object": ("backup", encode([VALID["backup"]]), "request must be a JSON object, not a list"),
    "a string, not an object": ("backup", encode("laptop"), "request must be a JSON object, not a string"),
    "null": ("backup", b"null", "request must be a JSON object, not null"),
    "duplicate key": ("backup", edit("backup")[:-1] + b', "profile": "other"}', "duplicate key 'profile'"),
    # keys
    "unknown key": ("backup", edit("backup", dest="file:/tmp/x"), "unknown key 'dest' for backup"),
    "key of another action": ("backup", edit("backup", session="20250102-030405"), "unknown key 'session' for backup"),
    "passphrase key": ("list", edit("list", passphrase="x"), "unknown key 'passphrase' for list"),
    "wyng options key": ("verify", edit("verify", wyng="/tmp/evil"), "unknown key 'wyng' for verify"),
    "unknown key with odd bytes": ("status", edit("status", **{"--dest\u202e\n": 1}),
                                   "unknown key '--dest\\u202e\\n' for status"),
    "missing profile": ("backup", edit("backup", profile=...), "missing key 'profile'"),
    # profile
    "profile null": ("backup", edit("backup", profile=None), "missing key 'profile'"),
    "profile a number": ("backup", edit("backup", profile=1), "'profile' must be a string, not a number"),
    "profile path": ("backup", edit("backup", profile="../../etc/passwd"),
                     "'profile' is not a profile name: '../../etc/passwd'" + RULE),
    "profile option": ("backup", edit("backup", profile="--dest=file:/x"),
                       "'profile' is not a profile name: '--dest=file:/x'" + RULE),
    "profile upper case": ("backup", edit("backup", profile="Laptop"),
                           "'profile' is not a profile name: 'Laptop'" + RULE),
    "profile empty": ("backup", edit("backup", profile=""), "'profile' is not a profile name: ''" + RULE),
    # qubes
    "qubes a string": ("backup", edit("backup", qubes="work"), "'qubes' must be a list of qube names, not a string"),
    "qubes an object": ("backup", edit("backup", qubes={"work": 1}),
                        "'qubes' must be a list of qube names, not an object"),
    "qube a number": ("backup", edit("backup", qubes=["work", 7]), "'qubes' item 1 must be a qube name, not a number"),
    "qube null": ("backup", edit("backup", qubes=[None]), "'qubes' item 0 must be a qube name, not null"),
    "qube option": ("backup", edit("backup", qubes=["-work"]), "'qubes' item 0 is not a valid qube name: '-work'"),
    "qube long option": ("backup", edit("backup", qubes=["--dest=file:/tmp/x"]),
                         "'qubes' item 0 is not a valid qube name: '--dest=file:/tmp/x'"),
    "qube path": ("backup", edit("backup", qubes=["work/../../x"]),
                  "'qubes' item 0 is not a valid qube name: 'work/../../x'"),
    "qube dot dot": ("backup", edit("backup", qubes=[".."]), "'qubes' item 0 is not a valid qube name: '..'"),
    "qube dom0": ("backup", edit("backup", qubes=["dom0"]), "'qubes' item 0 is not a valid qube name: 'dom0'"),
    "qube -dm": ("backup", edit("backup", qubes=["work-dm"]), "'qubes' item 0 is not a valid qube name: 'work-dm'"),
    "qube too long": ("backup", edit("backup", qubes=["w" * 32]),
                      "'qubes' item 0 is not a valid qube name: '" + "w" * 32 + "'"),
    "qube with space": ("backup", edit("backup", qubes=["work vault"]),
                        "'qubes' item 0 is not a valid qube name: 'work vault'"),
    "qube with newline": ("backup", edit("backup", qubes=["work\n"]),
                          "'qubes' item 0 is not a valid qube name: 'work\\n'"),
    "qube non-ascii": ("backup", edit("backup", qubes=["wörk"]), "'qubes' item 0 is not a valid qube name: 'w\\xf6rk'"),
    "qube lone surrogate": ("backup", edit("backup").replace(b'"vault"', b'"\\ud800"'),
                            "'qubes' item 1 is not a valid qube name: '\\ud800'"),
    "qube twice": ("backup", edit("backup", qubes=["work", "work"]), "'qubes' names a qube twice"),
    "too many qubes": ("backup", edit("backup", qubes=[f"q{i}" for i in range(257)]),
                       "'qubes' names more than 256 qubes"),
    # flags
    "dry_run a string": ("backup", edit("backup", dry_run="yes"), "'dry_run' must be true or false, not a string"),
    "dry_run a number": ("backup", edit("backup", dry_run=1), "'dry_run' must be true or false, not a number"),
    "dry_run null": ("backup", edit("backup", dry_run=None), "'dry_run' must be true or false, not null"),
    "all a list": ("list", edit("list", all=[]), "'all' must be true or false, not a list"),
    "shutdown a string": ("restore", edit("restore", shutdown="false"),
                          "'shutdown' must be true or false, not a string"),
    # sessions
    "session option": ("list", edit("list", session="--all"),
                       "'session' must be a session id YYYYMMDD-HHMMSS, not '--all'"),
    "session latest for list": ("list", edit("list", session="latest"),
                                "'session' must be a session id YYYYMMDD-HHMMSS, not 'latest'"),
    "session bad month": ("verify", edit("verify", session="20251301-000000"),
                          "'session' must be a session id YYYYMMDD-HHMMSS or 'latest', not '20251301-000000'"),
    "session a number": ("verify", edit("verify", session=20250102), "'session' must be a string, not a number"),
    "session with range for verify": ("verify", edit("verify", session="20250101-000000,20250102-030405"),
                                      "'session' must be a session id YYYYMMDD-HHMMSS or 'latest', "
                                      "not '20250101-000000,20250102-030405'"),
    "session with option suffix": ("restore", edit("restore", session="20250102-030405 --force"),
                                   "'session' must be a session id YYYYMMDD-HHMMSS or 'latest', "
                                   "not '20250102-030405 --force'"),
    # restore
    "restore without qubes": ("restore", edit("restore", qubes=[], rename={}),
                              "restore needs 'qubes' (name the qubes to restore) or 'all': true"),
    "restore all with qubes": ("restore", edit("restore", all=True, rename={}),
                               "'all' restores every qube the profile covers: do not name 'qubes' with it"),
    "restore all with a session": ("restore", edit("restore", qubes=[], rename={}, all=True),
                                   "'all' takes each qube from its own newest session: use 'as_of', not 'session'"),
    "restore as_of not a session": ("restore", edit("restore", as_of="latest"),
                                    "'as_of' must be a session id YYYYMMDD-HHMMSS, not 'latest'"),
    "restore unknown conflict policy": ("restore", edit("restore", on_conflict="overwrite"),
                                        "'on_conflict' must be one of fail, skip, replace, rename, not 'overwrite'"),
    "restore conflict policy a list": ("restore", edit("restore", on_conflict=["skip"]),
                                       "'on_conflict' must be a string, not a list"),
    "rename a list": ("restore", edit("restore", rename=["work", "x"]),
                      "'rename' must be an object {\"OLD\": \"NEW\"}, not a list"),
    "rename to an option": ("restore", edit("restore", rename={"work": "--force"}),
                            "'rename' value for work is not a valid qube name: '--force'"),
    "rename to a number": ("restore", edit("restore", rename={"work": 1}),
                           "'rename' value for work must be a qube name, not a number"),
    "rename from a path": ("restore", edit("restore", rename={"../work": "x"}),
                           "'rename' key is not a valid qube name: '../work'"),
    "rename a qube not restored": ("restore", edit("restore", rename={"personal": "p2"}),
                                   "'rename' names personal, which is not in 'qubes'"),
    "rename onto a restored qube": ("restore", edit("restore", rename={"work": "vault"}),
                                    "'rename' gives the name vault twice or to a qube being restored"),
    "rename without the rename policy": ("restore", edit("restore", on_conflict="replace"),
                                         "'rename' needs 'on_conflict': 'rename'"),
    # prune
    "prune without session": ("prune", edit("prune", session=...),
                              "missing key 'session': prune needs a session id or a range ID,ID"),
    "prune latest": ("prune", edit("prune", session="latest"),
                     "'session' must be a session id YYYYMMDD-HHMMSS or a range ID,ID, not 'latest'"),
    "prune three sessions": ("prune", edit("prune", session="20250101-000000,20250102-000000,20250103-000000"),
                             "'session' must be a session id YYYYMMDD-HHMMSS or a range ID,ID, "
                             "not '20250101-000000,20250102-000000,202501..."),
    "prune reversed range": ("prune", edit("prune", session="20250102-030405,20250101-000000"),
                             "'session' range must go from the older session to the newer"),
    "prune range with option": ("prune", edit("prune", session="20250101-000000,--all"),
                                "'session' must be a session id YYYYMMDD-HHMMSS or a range ID,ID, "
                                "not '20250101-000000,--all'"),
    "prune all_before with a range": ("prune", edit("prune", all_before=True),
                                      "'all_before' takes one session, not a range"),
    # status
    "status job path": ("status", edit("status", job="../../../etc/shadow"),
                        "'job' must be a job id as `status` shows it, not '../../../etc/shadow'"),
    "status job a number": ("status", edit("status", job=5), "'job' must be a string, not a number"),
}


@pytest.mark.parametrize("action, data, message", list(REJECTED.values()), ids=list(REJECTED))
def test_rejected_request(action: str, data: bytes, message: str) -> None:
    with pytest.raises(RequestError) as caught:
        parse_request(action, data)
    assert caught.value.message == message
    assert caught.value.code == "bad_request"
    assert caught.value.exit_code is ExitCode.USAGE
    assert isinstance(caught.value, UsageError)


def test_each_rejected_request_is_one_mutation_from_a_valid_one() -> None:
    """Guard for the table above: the unmutated requests are all accepted."""
    for action in VALID:
        parse_request(action, edit(action))


def test_an_unknown_key_hint_lists_the_keys_of_the_action() -> None:
    with pytest.raises(RequestError) as caught:
        parse_request("backup", edit("backup", exclude=["x"]))
    assert caught.value.hint == "backup takes: profile, qubes, dry_run"


# -- reading stdin -------------------------------------------------------------------
class CountingStream(io.BytesIO):
    """Counts how many bytes were asked of it, to prove the cap reads at most limit+1."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.taken = 0

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        self.taken += len(chunk)
        return chunk

    def fileno(self) -> int:
        raise io.UnsupportedOperation("no fd")


def test_read_capped_reads_everything_up_to_the_limit() -> None:
    data = b"x" * MAX_REQUEST_BYTES
    assert read_capped(CountingStream(data)) == data


def test_read_capped_reads_at_most_limit_plus_one_bytes() -> None:
    stream = CountingStream(b"x" * (10 * MAX_REQUEST_BYTES))
    with pytest.raises(RequestError) as caught:
        read_capped(stream)
    assert caught.value.message == "request is larger than 65536 bytes"
    assert stream.taken == MAX_REQUEST_BYTES + 1


def test_read_capped_on_a_pipe_with_short_reads() -> None:
    read_end, write_end = os.pipe()
    with os.fdopen(read_end, "rb", buffering=0) as reader:
        for _ in range(3):
            os.write(write_end, b'{"profile":')
        os.close(write_end)
        assert read_capped(reader) == b'{"profile":' * 3


def test_read_capped_gives_up_on_a_caller_that_never_closes_stdin() -> None:
    read_end, write_end = os.pipe()
    try:
        with os.fdopen(read_end, "rb", buffering=0) as reader:
            os.write(write_end, b'{"profile": "laptop"}')
            with pytest.raises(RequestError) as caught:
                read_capped(reader, timeout=0.2)
        assert caught.value.message == "no end of request after 0.2 s"
    finally:
        os.close(write_end)


# -- fuzzing: only a valid request or a clean RequestError ------------------------------------
# 3,000 + 4,000 + 3,000 = 10,000 generated inputs per run. Strategies stay flat
# (nesting is covered by the "deep nesting" fixture) so the run stays short.
def fuzz(examples: int) -> settings:
    return settings(max_examples=examples, deadline=None, suppress_health_check=[HealthCheck.too_slow])


KEYS = sorted({key for cls in REQUEST_TYPES.values() for key in cls.keys} | {"dest", "wyng", "passphrase", ""})
NAMES = st.sampled_from(["work", "vault", "-x", "--dest=file:/tmp/x", "../x", "dom0", "a" * 31, "a" * 32, "sys-net",
                         "work-dm", "latest", "20250102-030405", "20250101-000000,20250102-030405", "laptop",
                         "Laptop", "x/y", "", " ", "\x00", "\u00e9", "rename", "fail", "skip"])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), NAMES, st.text(max_size=12))
VALUES = st.one_of(SCALARS, st.lists(SCALARS, max_size=4), st.dictionaries(NAMES, SCALARS, max_size=3))
REQUESTS = st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=7)


def check_outcome(action: str, data: bytes) -> None:
    """The property: a request that parses is valid through and through."""
    try:
        request = parse_request(action, data)
    except RequestError as err:
        assert err.message and err.exit_code is ExitCode.USAGE
        json.dumps({"message": err.message, "hint": err.hint}, ensure_ascii=False).encode("utf-8")
        return
    assert request.action == action
    assert is_profile_name(request.profile)
    for name in getattr(request, "qubes", ()):
        assert is_qube_name(name)
    if isinstance(request, RestoreCall):
        assert bool(request.qubes) != request.all and request.on_conflict in CONFLICT_POLICIES
        assert request.session is None or request.session == "latest" or is_session_id(request.session)
        assert request.as_of is None or (is_session_id(request.as_of) and request.session is None)
        assert not (request.all and request.session is not None)
        assert all(is_qube_name(old) and is_qube_name(new) for old, new in request.rename)
    if isinstance(request, (ListCall,)) and request.session is not None:
        assert is_session_id(request.session)
    if isinstance(request, VerifyCall):
        assert request.session == "latest" or is_session_id(request.session)
    if isinstance(request, PruneCall):
        assert 1 <= len(request.sessions) <= 2 and all(is_session_id(s) for s in request.sessions)
    if isinstance(request, StatusCall) and request.job is not None:
        assert JOB_ID.fullmatch(request.job)


@fuzz(3000)
@given(action=st.sampled_from(RPC_ACTIONS), data=st.binary(max_size=300))
def test_fuzz_arbitrary_bytes(action: str, data: bytes) -> None:
    check_outcome(action, data)


@fuzz(4000)
@given(action=st.sampled_from(RPC_ACTIONS), document=REQUESTS)
def test_fuzz_json_objects(action: str, document: dict[str, Any]) -> None:
    check_outcome(action, json.dumps(document).encode())


@fuzz(3000)
@given(action=st.sampled_from(RPC_ACTIONS), data=st.data())
def test_fuzz_mutations_of_valid_requests(action: str, data: st.DataObject) -> None:
    document = dict(VALID[action])
    for _ in range(data.draw(st.integers(1, 3))):
        key = data.draw(st.sampled_from([*sorted(document), "extra"]))
        if data.draw(st.booleans()) and key in document:
            del document[key]
        else:
            document[key] = data.draw(VALUES)
    raw = json.dumps(document).encode()
    if data.draw(st.booleans()):  # and sometimes a byte-level mutation on top
        position = data.draw(st.integers(0, len(raw) - 1))
        raw = raw[:position] + bytes([data.draw(st.integers(0, 255))]) + raw[position + 1:]
    check_outcome(action, raw)


@pytest.mark.parametrize("key", ["dom0_home", "dom0_config", "into"])
def test_restoring_dom0_items_is_refused_over_qrexec_as_not_permitted(key: str) -> None:
    from wyngq.errors import NotPermittedError

    with pytest.raises(NotPermittedError, match="dom0 only, never over qrexec") as caught:
        parse_request("restore", edit("restore", **{key: True}))

    assert caught.value.exit_code == ExitCode.NOT_PERMITTED
    assert caught.value.code == "not_permitted"
