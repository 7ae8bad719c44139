"""The top-level `version` file and the package agree."""

from __future__ import annotations

import re

from tests.conftest import ROOT
from wyngq import __version__


def test_version_file_equals_package_version() -> None:
    assert (ROOT / "version").read_text(encoding="utf-8").strip() == __version__


def test_version_is_dotted_numbers() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+", __version__)
