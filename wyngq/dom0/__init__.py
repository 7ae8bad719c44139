"""dom0 itself in a backup: the dom0 user's home and dom0's own configuration.

Both travel as pseudo-volumes in the same Wyng session as the qubes (Wyng's
`--import-other-from`, like the settings bundle), each a deterministic tar
stream (wyngq.dom0.tarwrite), and come back beside the live system, never over
it (wyngq.dom0.restore). docs/dom0.md is the user's guide.

One module per job: `fsat` (opening paths beneath a directory without ever
following a symlink), `walk` (what a tree holds, sorted, with exclusions),
`tarwrite` (the stream), `extract` (the hostile-archive-safe reader), `rpm`
(which files packages own), `configfiles` (which configuration files travel),
`user` (who the dom0 user is), `compare` (restored configuration against the
live files), `backup` and `restore` (the two flows).
"""

from __future__ import annotations

HOME_VOLUME = "wyng-qubes-dom0-home"
CONFIG_VOLUME = "wyng-qubes-dom0-config"
VOLUMES = {"home": HOME_VOLUME, "config": CONFIG_VOLUME}
