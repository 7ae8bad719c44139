"""Lab-tier fixtures: real qubesd (through real qubesadmin) and real Wyng.

Every test here is marked `lab` and skipped unless `lab env` is loaded. Qubes
made by a test are named with a per-test prefix and removed afterwards.
"""

from __future__ import annotations

import io
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.lab

SMALL = 4 * 1024 * 1024  # lab volumes are shrunk: Wyng's first full scan of 10 GiB sparse files is slow


class Lab:
    """Helpers over the lab's qubesd and Wyng for one test."""

    def __init__(self, prefix: str, archive_dir: Path) -> None:
        import qubesadmin

        self.app = qubesadmin.Qubes()
        self.prefix = prefix
        self.archive_dir = archive_dir
        self.made: list[str] = []

    @property
    def wyng(self) -> str:
        return os.environ["WYNGQ_LAB_WYNG"]

    @property
    def meta_dir(self) -> str:
        return os.environ["WYNGQ_LAB_WYNG_META_DIR"]

    def name(self, short: str) -> str:
        return f"{self.prefix}-{short}"

    def create(self, short: str, klass: str, **kwargs: Any) -> Any:
        name = self.name(short)
        vm = self.app.add_new_vm(klass, name=name, label=kwargs.pop("label", "red"), **kwargs)
        self.made.append(name)
        return vm

    def fill(self, vm: Any, kind: str, data: bytes) -> None:
        """Replace a volume's content (and size) through the Admin API."""
        vm.volumes[kind].import_data_with_size(io.BytesIO(data), len(data))

    def cleanup(self) -> None:
        self.app.domains.refresh_cache(force=True)
        for name in reversed(self.made):
            if name in self.app.domains:
                vm = self.app.domains[name]
                if not vm.is_halted():
                    vm.kill()
                del self.app.domains[name]


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    prefix = "t" + uuid.uuid4().hex[:6]
    archive_dir = Path(os.environ["WYNGQ_LAB_ARCHIVE_DIR"]) / prefix
    archive_dir.mkdir(parents=True)
    helper = Lab(prefix, archive_dir)
    try:
        yield helper
    finally:
        helper.cleanup()
        shutil.rmtree(archive_dir, ignore_errors=True)  # the archive image is small (2 GiB)
