"""wyngq.cli.common.with_wyng: the passphrase first, then the operation lock."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from wyngq import passphrase
from wyngq.cli import common
from wyngq.errors import AuthError, UsageError
from wyngq.profile import PassphraseSource
from wyngq.secret import Secret
from wyngq.wyng.commands import WyngTarget
from wyngq.wyng.runner import Wyng


class Lock:
    def __init__(self) -> None:
        self.held = False
        self.taken = 0

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        self.held, self.taken = True, self.taken + 1
        try:
            yield
        finally:
            self.held = False


def context(tmp_path: Path, lock: Lock, *, can_prompt: bool = True,
            source: PassphraseSource | None = None) -> common.Context:
    return common.Context(WyngTarget("wyng", "file:/a"), None, source or PassphraseSource(), can_prompt,
                          str(tmp_path), lambda: None, lock)  # type: ignore[arg-type,return-value]


def test_a_prompt_after_a_refused_try_happens_with_the_lock_released(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    lock, asked = Lock(), []
    monkeypatch.setattr(passphrase, "prompt", lambda *a: asked.append(lock.held) or Secret("correct horse battery"))

    def work(wyng: Wyng) -> str:
        assert lock.held
        if wyng.passphrase is None:
            raise AuthError("no passphrase")
        return "done"

    assert common.with_wyng(context(tmp_path, lock), work) == "done"
    assert asked == [False] and lock.taken == 2


def test_a_new_archive_is_asked_for_before_the_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lock, asked = Lock(), []
    monkeypatch.setattr(passphrase, "prompt", lambda *a: asked.append(lock.held) or Secret("correct horse battery"))
    assert common.with_wyng(context(tmp_path, lock), lambda wyng: wyng.passphrase, new_archive=True)
    assert asked == [False, False] and lock.taken == 1


def test_a_passphrase_source_is_read_before_the_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lock, read = Lock(), []
    monkeypatch.setattr(passphrase, "from_source", lambda *a: read.append(lock.held) or Secret("x" * 12))
    common.with_wyng(context(tmp_path, lock), lambda wyng: None)
    assert read == [False] and lock.taken == 1


def test_a_new_encrypted_archive_without_terminal_or_source_says_so(tmp_path: Path) -> None:
    lock = Lock()
    with pytest.raises(UsageError) as raised:
        common.with_wyng(context(tmp_path, lock, can_prompt=False), lambda wyng: None, new_archive=True)
    assert "neither a terminal" in raised.value.message and "--passphrase-file" in (raised.value.hint or "")
    assert lock.taken == 0
