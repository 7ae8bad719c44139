"""wyngq.rpc.authorize: the profile's [rpc] rules, checked purely against a fake lookup."""

from __future__ import annotations

import pytest

from wyngq.errors import NotPermittedError
from wyngq.model import Qube, QubeClass
from wyngq.profile import Profile, RpcAccess, RpcRule, Selection
from wyngq.rpc.authorize import authorize, covers, in_selection
from wyngq.rpc.request import BackupCall, ListCall, PruneCall, Request, RestoreCall, StatusCall, VerifyCall

LIVE = {
    "mgmt": Qube("mgmt", QubeClass.APP, tags=frozenset({"wyng-admin"})),
    "other-mgmt": Qube("other-mgmt", QubeClass.APP),
    "work": Qube("work", QubeClass.APP, include_in_backups=True),
    "flagged": Qube("flagged", QubeClass.APP, include_in_backups=True),
    "tagged": Qube("tagged", QubeClass.APP, tags=frozenset({"backup"})),
    "tagged-but-excluded": Qube("tagged-but-excluded", QubeClass.APP, tags=frozenset({"backup", "no-backup"})),
    "untrusted": Qube("untrusted", QubeClass.APP, include_in_backups=True),
    "loose": Qube("loose", QubeClass.APP),
}
SELECTION = Selection(include=("work", "gone", "@include_in_backups", "@tag:backup"),
                      exclude=("untrusted", "@tag:no-backup"))


def lookup(name: str) -> Qube | None:
    return LIVE.get(name)


def profile(*rules: RpcRule) -> Profile:
    return Profile("laptop", "file:/x", qubes=SELECTION, rpc=RpcAccess(rules=rules))


EVERYTHING = RpcRule(callers=("mgmt",), actions=("list", "backup", "restore", "verify", "prune", "status"),
                     on_conflict=("fail", "skip", "replace", "rename"), shutdown=True)


def refusal(prof: Profile, request: Request, caller: str = "mgmt") -> str:
    with pytest.raises(NotPermittedError) as caught:
        authorize(prof, caller, request, lookup)
    return caught.value.message


@pytest.mark.parametrize("name", ["work", "gone", "flagged", "tagged"])
def test_in_selection(name: str) -> None:
    assert in_selection(SELECTION, name, lookup)


@pytest.mark.parametrize("name", ["untrusted", "tagged-but-excluded", "loose", "mgmt", "never-existed"])
def test_not_in_selection(name: str) -> None:
    assert not in_selection(SELECTION, name, lookup)


def test_a_rule_allowing_everything() -> None:
    prof = profile(EVERYTHING)
    for request in (ListCall("laptop"), BackupCall("laptop"), BackupCall("laptop", ("work", "tagged")),
                    RestoreCall("laptop", ("gone",), on_conflict="replace", shutdown=True),
                    VerifyCall("laptop"), PruneCall("laptop", ("20250101-000000",)), StatusCall("laptop")):
        assert authorize(prof, "mgmt", request, lookup) is EVERYTHING


def test_no_rules_no_access() -> None:
    assert refusal(profile(), ListCall("laptop")) == "qube mgmt may not list with profile 'laptop'"


def test_callers_by_name_and_by_tag() -> None:
    by_tag = RpcRule(callers=("@tag:wyng-admin",), actions=("list",))
    assert authorize(profile(by_tag), "mgmt", ListCall("laptop"), lookup) is by_tag
    assert refusal(profile(by_tag), ListCall("laptop"), "other-mgmt") == (
        "qube other-mgmt may not list with profile 'laptop'")
    assert refusal(profile(by_tag), ListCall("laptop"), "no-such-qube") == (
        "qube no-such-qube may not list with profile 'laptop'")


def test_the_action_must_be_granted() -> None:
    prof = profile(RpcRule(callers=("mgmt",), actions=("list", "status")))
    assert refusal(prof, BackupCall("laptop", ("work",))) == "qube mgmt may not backup with profile 'laptop'"


def test_qubes_must_be_in_the_profile_and_the_rule() -> None:
    prof = profile(RpcRule(callers=("mgmt",), actions=("backup", "prune"), qubes=("work", "@tag:backup")))
    assert authorize(prof, "mgmt", BackupCall("laptop", ("work", "tagged")), lookup)
    assert refusal(prof, BackupCall("laptop", ("flagged",))) == (
        "backup of qube flagged with profile 'laptop' is not allowed")
    assert refusal(prof, BackupCall("laptop", ("loose",))) == "qube loose is not covered by profile 'laptop'"
    assert refusal(prof, BackupCall("laptop")) == (
        "backup of every qube of profile 'laptop' is not allowed; name the qubes")
    assert refusal(prof, PruneCall("laptop", ("20250101-000000",))) == (
        "prune of every qube of profile 'laptop' is not allowed; name the qubes")


def test_read_only_actions_are_not_limited_by_qubes() -> None:
    prof = profile(RpcRule(callers=("mgmt",), actions=("list", "verify"), qubes=("work",)))
    assert authorize(prof, "mgmt", ListCall("laptop", ("loose",)), lookup)
    assert authorize(prof, "mgmt", VerifyCall("laptop"), lookup)


def test_restore_conflict_policy_and_shutdown() -> None:
    prof = profile(RpcRule(callers=("mgmt",), actions=("restore",), on_conflict=("fail", "skip")))
    assert authorize(prof, "mgmt", RestoreCall("laptop", ("work",), on_conflict="skip"), lookup)
    assert refusal(prof, RestoreCall("laptop", ("work",), on_conflict="replace")) == (
        "restore with on_conflict=replace is not allowed (allowed: fail, skip)")
    assert refusal(prof, RestoreCall("laptop", ("work",), shutdown=True)) == (
        "restore may not shut down qubes (shutdown) for this caller")


def test_a_qube_that_no_longer_exists_matches_only_by_name() -> None:
    prof = profile(RpcRule(callers=("mgmt",), actions=("restore",), qubes=("@tag:backup",)))
    assert refusal(prof, RestoreCall("laptop", ("gone",))) == (
        "restore of qube gone with profile 'laptop' is not allowed")
    by_name = profile(RpcRule(callers=("mgmt",), actions=("restore",), qubes=("gone",)))
    assert authorize(by_name, "mgmt", RestoreCall("laptop", ("gone",)), lookup)


def test_one_rule_must_allow_all_of_the_call() -> None:
    narrow = RpcRule(callers=("mgmt",), actions=("restore",), qubes=("work",), on_conflict=("replace",))
    wide = RpcRule(callers=("mgmt",), actions=("restore",), qubes=("gone",))
    prof = profile(narrow, wide)
    assert authorize(prof, "mgmt", RestoreCall("laptop", ("work",), on_conflict="replace"), lookup) is narrow
    assert authorize(prof, "mgmt", RestoreCall("laptop", ("gone",)), lookup) is wide
    # work+gone with replace: each rule misses a part; the first rule's reason is given
    assert refusal(prof, RestoreCall("laptop", ("work", "gone"), on_conflict="replace")) == (
        "restore of qube gone with profile 'laptop' is not allowed")


@pytest.mark.parametrize("target", ["sys-usb", "work-copy", "untrusted", "flagged", "tagged"])
def test_a_new_name_must_be_named_in_the_selection(target: str) -> None:
    """A qube name can carry power in dom0's qrexec policy: a caller may not mint
    one; existing qubes matched by flag or tag do not count (the planner refuses
    them as targets anyway)."""
    request = RestoreCall("laptop", ("work",), on_conflict="rename", rename=(("work", target),))
    assert refusal(profile(EVERYTHING), request) == (
        f"restore of work as {target} is not allowed: a new name must be named in the [qubes] include of "
        "profile 'laptop' (and in the rule's qubes); leave out 'rename' to get work-restored")


def test_a_new_name_named_in_the_selection_and_the_rule_is_allowed() -> None:
    request = RestoreCall("laptop", ("work",), on_conflict="rename", rename=(("work", "gone"),))
    assert authorize(profile(EVERYTHING), "mgmt", request, lookup) is EVERYTHING
    limited = RpcRule(callers=("mgmt",), actions=("restore",), on_conflict=("rename",), qubes=("work",))
    assert "is not allowed" in refusal(profile(limited), request)
    both = RpcRule(callers=("mgmt",), actions=("restore",), on_conflict=("rename",), qubes=("work", "gone"))
    assert authorize(profile(both), "mgmt", request, lookup) is both


def test_prefs_only_when_the_rule_says_so() -> None:
    request = RestoreCall("laptop", ("work",), prefs=True)
    assert "global preferences (prefs)" in refusal(profile(EVERYTHING), request)
    with_prefs = RpcRule(callers=("mgmt",), actions=("restore",), prefs=True)
    assert authorize(profile(with_prefs), "mgmt", request, lookup) is with_prefs


def test_all_is_allowed_by_a_rule_with_qubes_and_covers_only_its_selection() -> None:
    narrow = RpcRule(callers=("mgmt",), actions=("restore",), qubes=("work", "gone", "@tag:backup"))
    prof = profile(narrow)
    assert authorize(prof, "mgmt", RestoreCall("laptop", (), all=True), lookup) is narrow
    covered = {n for n in [*LIVE, "gone", "never-existed"] if covers(prof, narrow, n, lookup)}
    assert covered == {"work", "gone", "tagged"}
    assert {n for n in [*LIVE, "gone"] if covers(prof, EVERYTHING, n, lookup)} == {"work", "gone", "flagged", "tagged"}
