"""Run the qrexec service as a real process against a fake dom0 described by a JSON file.

    python -m tests.integration.rpc_driver WORLD.json CALLER ACTION

The process is what qrexec runs (stdin: the request, stdout: JSON Lines, exit
status), with the service's `main()`; only the Qubes adapter (a FakeQubes
rebuilt from WORLD.json over the same pool directories) and the paths (the
Config in WORLD.json) differ from dom0. WORLD.json:
{"config": {...Config fields...},
 "pools": {"name": "/dir"},
 "qubes": [{"name", "klass", "pool", "template", "label", "tags", "include_in_backups"}]}
"""

from __future__ import annotations

import json
import sys
from typing import Any

from tests.fakes.qubes import FakeQubes
from wyngq.model import QubeClass
from wyngq.rpc.service import Config, main


def build(spec: dict[str, Any]) -> FakeQubes:
    fake = FakeQubes(dict(spec["pools"]))
    for qube in spec["qubes"]:
        fake.add(qube["name"], QubeClass(qube["klass"]), pool=qube.get("pool"), template=qube.get("template"),
                 label=qube.get("label", "red"), tags=set(qube.get("tags", ())),
                 include_in_backups=qube.get("include_in_backups", True))
    return fake


def describe(fake: FakeQubes, config: Config) -> dict[str, Any]:
    """The WORLD.json of an in-process fake dom0 (its volumes stay where they are)."""
    pools = {name: pool.wyng_path for name, pool in fake.pools().items()}
    qubes = []
    for name, qube in fake.domains.items():
        pool = next(iter(qube.volumes.values())).pool if qube.volumes else None
        qubes.append({"name": name, "klass": qube.klass.value, "pool": pool, "template": qube.template,
                      "label": qube.label, "tags": sorted(qube.tags), "include_in_backups": qube.include_in_backups})
    return {"config": config.__dict__, "pools": pools, "qubes": qubes}


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as handle:
        world = json.load(handle)
    fake = build(world)
    sys.exit(main(sys.argv[2:], Config(**world["config"]), qubes_factory=lambda: fake))
