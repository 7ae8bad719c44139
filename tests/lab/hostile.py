"""What someone who can write an unencrypted archive does to it, with real Wyng:
fetch a session's settings bundle, edit its manifest, and send it back as a
new session holding the same volume data (no key is needed to write an
unencrypted archive)."""

from __future__ import annotations

import json
import os
import tarfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wyngq import bundle, volnames
from wyngq.wyng.commands import WyngTarget
from wyngq.wyng.runner import Wyng

Edit = Callable[[dict[str, Any]], None]  # changes the manifest's "qubes" object in place


def hostile_edit(app: str, gui: str) -> Edit:
    """A dom0 PCI device, a foreign GUI qube and a tag qrexec policy could match."""

    def edit(qubes: dict[str, Any]) -> None:
        qube = qubes[app]
        qube["devices"].append({"devclass": "pci", "backend": "dom0", "port_id": "00_14.0", "device_id": None,
                                "mode": "required", "options": {}})
        qube["properties"]["guivm"] = {"type": "vm", "value": gui}
        qube["tags"].append("policy-admin")

    return edit


def edit_newest_session(wyng: str, dest: str, meta_dir: str, pool_dir: str, volumes: list[str], edit: Edit,
                        workdir: Path) -> str:
    """Send a new session of `dest` holding `volumes` (archive names, files under
    `pool_dir`) and the newest session's bundle as `edit` changes it; its id."""
    runner = Wyng(WyngTarget(executable=wyng, dest=dest, meta_dir=meta_dir))
    sessions = sorted(runner.catalog().volumes[volnames.METADATA_VOLUME].sessions)
    fetched = workdir / "fetched.tgz"
    runner.receive_to_file(volnames.METADATA_VOLUME, sessions[-1], str(fetched))
    with tarfile.open(fetched, "r:gz") as tar:
        files = {m.name.removeprefix("./"): tar.extractfile(m).read()  # type: ignore[union-attr]
                 for m in tar if m.isfile()}
    document = json.loads(files.pop(bundle.MANIFEST_NAME))
    edit(document["qubes"])
    edited = workdir / "edited.tgz"
    bundle.write_bundle(str(edited), files, json.dumps(document).encode())
    local = workdir / "volumes.json"
    local.write_text(json.dumps({pool_dir: [[name, None] for name in volumes]}))
    time.sleep(1.05)  # a new session id
    runner.send(local_from=str(local), metadata_file=str(edited), tags=("qubes",))
    os.unlink(fetched)
    return sorted(runner.catalog().volumes[volnames.METADATA_VOLUME].sessions)[-1]
