"""Which sessions' bundles a whole-archive restore need not receive (restore.carried),
and the carried entries a backup writes (wyngq.carry), as pure functions."""

from __future__ import annotations

import json
from pathlib import Path

from tests.unit.restore.restore_builders import D, qube
from wyngq import bundle, carry
from wyngq.model import QubeSettings
from wyngq.restore.carried import covered_sessions
from wyngq.restore.model import RestoreRequest
from wyngq.wyng.commands import WyngTarget
from wyngq.wyng.known import KnownArchive, KnownArchives

S1, S2, S3, S4 = "20250101-000000", "20250102-000000", "20250103-000000", "20250104-000000"
ALL = RestoreRequest(all=True)


def manifest(own: list[QubeSettings], carried: dict[str, tuple[str, QubeSettings]]) -> bundle.Manifest:
    """A manifest as written (encoded with its carried entries) and read back."""
    raw = bundle.encode_manifest(own, wyngq_version="1", qubes_version="4.2")
    entries = {name: (session, json.loads(bundle.encode_manifest([s], wyngq_version="1", qubes_version="4.2"))
                      ["qubes"][name]) for name, (session, s) in carried.items()}
    parsed = bundle.parse_manifest(carry.encode_with_carried(raw, entries))
    assert {n: s for n, (s, _) in parsed.carried.items()} == {n: s for n, (s, _) in carried.items()}
    return parsed


WORK, VAULT, NET, DISP = qube("work"), qube("vault", label="black"), qube("sys-net"), qube("disp1", D)


def test_each_session_whose_qubes_are_all_carried_with_its_mark_is_covered() -> None:
    newest = manifest([NET], {"work": (S1, WORK), "vault": (S2, VAULT)})
    placed = {"work": S1, "vault": S2, "sys-net": S3}

    covered = covered_sessions(S3, newest, placed, ALL)

    assert sorted(covered) == [S1, S2]
    assert covered[S1].qubes == {"work": WORK} and covered[S1].source == "manifest"
    assert covered[S2].qubes == {"vault": VAULT}


def test_a_qube_placed_elsewhere_than_its_entry_says_makes_its_session_read() -> None:
    # vault's entry is of S1, but the catalogue's newest is S2 (another writer, a prune merge, an older entry)
    newest = manifest([NET], {"work": (S1, WORK), "vault": (S1, VAULT)})

    assert sorted(covered_sessions(S3, newest, {"work": S1, "vault": S2, "sys-net": S3}, ALL)) == [S1]


def test_a_session_with_one_qube_not_carried_is_read() -> None:
    newest = manifest([NET], {"work": (S1, WORK)})

    assert covered_sessions(S3, newest, {"work": S1, "vault": S1, "sys-net": S3}, ALL) == {}


def test_a_pruned_session_merged_into_a_later_one_is_read() -> None:
    # S1 pruned: work's data merged into S2, whose bundle does not hold work
    newest = manifest([NET], {"work": (S1, WORK), "vault": (S2, VAULT)})

    assert sorted(covered_sessions(S3, newest, {"work": S2, "vault": S2, "sys-net": S3}, ALL)) == []


def test_without_a_manifest_or_for_named_qubes_nothing_is_covered() -> None:
    newest = manifest([NET], {"work": (S1, WORK)})
    placed = {"work": S1, "sys-net": S3}

    assert covered_sessions(S3, None, placed, ALL) == {}  # upstream's bundle: qubes.xml only
    assert covered_sessions(S3, newest, placed, RestoreRequest(qubes=("work", "sys-net"))) == {}


def test_a_disposable_of_a_session_not_read_makes_the_older_sessions_read() -> None:
    # disp1's newest entry is of S3, which holds no qube's newest data: an older
    # session the restore reads might hold disp1 too, and would place it
    newest = manifest([NET], {"work": (S1, WORK), "vault": (S2, VAULT), "disp1": (S3, DISP)})

    assert sorted(covered_sessions(S4, newest, {"work": S1, "vault": S2, "sys-net": S4}, ALL)) == []
    newer = manifest([NET], {"work": (S1, WORK), "disp1": (S2, DISP), "vault": (S3, VAULT)})
    assert sorted(covered_sessions(S4, newer, {"work": S1, "vault": S3, "sys-net": S4}, ALL)) == [S3]


def test_a_disposable_of_a_session_read_comes_with_it() -> None:
    newest = manifest([NET], {"work": (S1, WORK), "disp1": (S1, DISP)})

    covered = covered_sessions(S3, newest, {"work": S1, "sys-net": S3}, ALL)

    assert covered[S1].qubes == {"work": WORK, "disp1": DISP}


def test_the_newest_bundles_own_disposable_not_read_makes_every_session_read() -> None:
    newest = manifest([DISP], {"work": (S1, WORK), "vault": (S2, VAULT)})

    assert covered_sessions(S3, newest, {"work": S1, "vault": S2}, ALL) == {}


def test_a_backup_carries_every_entry_of_the_last_manifest_it_does_not_back_up() -> None:
    sent = carry.encode_with_carried(bundle.encode_manifest([VAULT, NET], wyngq_version="1", qubes_version="4.2"),
                                     {"work": (S1, {"class": "AppVM", "label": "red"})})
    last = carry.LastManifest(S2, json.loads(sent))

    carried = carry.carried_for(last, ["sys-net"])

    assert {name: session for name, (session, _) in carried.items()} == {"work": S1, "vault": S2}
    assert carry.carried_for(None, ["sys-net"]) == {}


def test_a_bad_entry_is_never_carried_into_a_backup() -> None:
    raw = bundle.encode_manifest([NET], wyngq_version="1", qubes_version="4.2")

    assert carry.encode_with_carried(raw, {"work": (S1, {"class": 3})}) == raw
    assert carry.encode_with_carried(raw, {"work": ("yesterday", {"class": "AppVM"})}) == raw
    assert carry.encode_with_carried(raw, {}) == raw


def test_the_copy_counts_only_while_its_session_is_known(tmp_path: Path) -> None:
    known = KnownArchives(str(tmp_path))
    copies, target = carry.LastManifests(known), WyngTarget("wyng", "file:/a")
    raw = bundle.encode_manifest([NET], wyngq_version="1", qubes_version="4.2")
    copies.put(target, S2, raw)

    found = copies.get(target, KnownArchive(frozenset(), frozenset({S1, S2})))

    assert found is not None and found.session == S2 and found.document == json.loads(raw)
    assert copies.get(target, KnownArchive(frozenset(), frozenset({S1}))) is None  # a new archive, another writer
    assert copies.get(WyngTarget("wyng", "file:/b"), KnownArchive(frozenset(), frozenset({S2}))) is None
    assert carry.LastManifests(None).get(target, KnownArchive(frozenset(), frozenset({S2}))) is None
    (Path(known.path_of(target) or "").with_suffix(".manifest.json")).write_text("{nonsense")
    assert copies.get(target, KnownArchive(frozenset(), frozenset({S2}))) is None
