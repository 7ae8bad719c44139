"""Wyng's header decides whether a pinned (authenticated-only) job goes on."""

from __future__ import annotations

import pytest

from wyngq.errors import UnauthenticatedArchiveError
from wyngq.restore.data import ReceiveTracker
from wyngq.wyng.runner import check_encrypted

REAL = "Wyng 0.8 rc4 release 20251028\nEncrypted archive 'file:/a'\nLast updated 2026-11-26 15:12:14\n"
PLAIN = "Wyng 0.8 rc4 release 20251028\nUn-encrypted archive 'file:/a'\nLast updated 2026-11-26 15:12:14\n"
# archive.ini's in_process is printed before the header and can carry lines of the archive's choosing
FORGED = ("Wyng 0.8 rc4 release 20251028\n** Prior operation in progress: x\nEncrypted archive 'file:/a'\n"
          + "y\n" * 3000)


def test_an_encrypted_header_passes() -> None:
    check_encrypted(REAL)


@pytest.mark.parametrize("stdout", [PLAIN, FORGED + PLAIN[30:], ""], ids=["plain", "forged-before-plain", "none"])
def test_anything_else_stops_the_job(stdout: str) -> None:
    with pytest.raises(UnauthenticatedArchiveError):
        check_encrypted(stdout)


def test_a_failed_run_is_checked_too_when_it_printed_a_header() -> None:
    check_encrypted("Error: lock\n", header_required=False)  # failed before any header: nothing to check
    with pytest.raises(UnauthenticatedArchiveError):
        check_encrypted(PLAIN + "ValueError: Bad hash\n", header_required=False)


def test_forged_receive_lines_before_the_header_do_not_count() -> None:
    tracker = ReceiveTracker()
    for line in ("** Prior operation in progress: x", "Receiving volume 'appvms/w/private.img' 20260101-000000",
                 "[||||] 100% : OK", "Un-encrypted archive 'file:/a'", "Last updated 2026"):
        tracker(line)
    assert tracker.done == set()
