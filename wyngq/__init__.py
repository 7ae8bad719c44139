"""wyngq: back up and restore Qubes OS qubes, data and settings, with Wyng.

The package is the dom0 engine behind the `wyng-util-qubes` command, the
`qubes.WyngBackup` qrexec service and the Salt module. See docs/architecture.md
for the layers: entry points -> engine -> ports -> adapters.
"""

import time

__all__ = ["__version__"]

# When this package was first imported: where wyngq.phases counts start-up from.
IMPORTED_AT = time.perf_counter()

# Kept equal to the top-level `version` file (a test checks it).
__version__ = "0.1.0"
