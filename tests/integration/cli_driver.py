"""Run the real CLI in a subprocess against a fake Qubes described by a JSON file.

    python -m tests.integration.cli_driver WORLD.json [CLI ARGS...]

WORLD.json: {"pools": {"name": "/dir", ...}, "qubes": [{"name", "klass", "pool", "data": {kind: "hex"}, "tags"}, ...]}.
After the run the fake's state (backup timestamps, tags) is written to WORLD.json's
"after" key, so the test can look at what the CLI changed.
"""

from __future__ import annotations

import json
import sys

from tests.fakes.qubes import FakeQubes
from wyngq.cli import main
from wyngq.model import QubeClass


def build(spec: dict[str, object]) -> FakeQubes:
    world = FakeQubes(dict(spec["pools"]))  # type: ignore[call-overload]
    for qube in spec["qubes"]:  # type: ignore[attr-defined]
        data = {kind: bytes.fromhex(text) for kind, text in qube.get("data", {}).items()}
        extra: dict[str, object] = {key: qube[key] for key in ("template", "label") if key in qube}
        if "tags" in qube:
            extra["tags"] = set(qube["tags"])
        world.add(qube["name"], QubeClass(qube["klass"]), pool=qube.get("pool"), data=data or None, **extra)
    return world


if __name__ == "__main__":
    path = sys.argv[1]
    with open(path, encoding="utf-8") as handle:
        spec = json.load(handle)
    fake = build(spec)
    status = main(sys.argv[2:], connect=lambda: fake)
    spec["after"] = {
        name: {"backup_timestamp": q.backup_timestamp, "tags": sorted(q.tags)} for name, q in fake.domains.items()
    }
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(spec, handle)
    sys.exit(status)
