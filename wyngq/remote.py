"""Whether a run of `wyng-util-qubes` forwards to dom0 (wyngq.client) or is the
dom0 command (wyngq.cli).

`--remote`, or WYNGQ_REMOTE=1 in the environment; or, when neither is given,
when this is a qube: one of the markers qubes' qubes-sysinit writes
(/run/qubes/this-is-appvm, -templatevm, -netvm, -proxyvm) exists.
WYNGQ_REMOTE=0 forces the dom0 command. dom0 has no marker. Kept apart from
the client so that dom0's command does not load the client to ask.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

REMOTE_ENV = "WYNGQ_REMOTE"
QUBE_MARKERS = tuple(f"/run/qubes/this-is-{kind}" for kind in ("appvm", "templatevm", "netvm", "proxyvm"))


def wants_remote(
    words: Sequence[str], environ: Mapping[str, str] = os.environ, markers: Sequence[str] = QUBE_MARKERS
) -> bool:
    """Whether this run forwards to dom0."""
    if "--remote" in words:
        return True
    switch = environ.get(REMOTE_ENV, "").strip().lower()
    if switch in ("1", "yes", "true", "on"):
        return True
    if switch in ("0", "no", "false", "off"):
        return False
    return any(os.path.exists(marker) for marker in markers)
