"""dom0 profiles: what dom0 decides about an archive and the qubes it covers.

A profile is a TOML file, `PROFILE_DIR/NAME.toml`, read with tomllib and checked
strictly: an unknown key is an error, so a typo never silently changes what a
backup does. Example (`wyng-util-qubes.example.toml` in the package):

    dest = "file:/mnt/backup/laptop.wyng"
    # wyng = "/usr/local/bin/wyng"
    # meta_dir = "/var/lib/wyng"
    # stall_timeout = 3600  # stop a Wyng call that prints nothing this long (0: never)

    [passphrase]            # one of: command, file, qube
    file = "/etc/wyng-util-qubes/laptop.pass"

    [qubes]
    include = ["work", "personal", "@include_in_backups", "@tag:backup"]
    exclude = ["untrusted"]

    [backup]
    dedup = true
    autoprune = "on"
    check_after_send = false

    [dom0]                  # dom0 itself, in the same session (docs/dom0.md)
    home = true             # the dom0 user's home
    # home_dir = "/home/user"
    # exclude = [".mozilla/firefox/*/cache2"]   # beside the defaults (.cache, QubesIncoming, ...)
    config = true           # dom0 configuration files no package owns

    [rpc]                   # who may use this profile over qrexec (qubes.WyngBackup)
    allow_unauthenticated_restore = false

    [[rpc.allow]]           # one rule; a call is allowed when one rule allows all of it
    callers = ["mgmt", "@tag:wyng-admin"]
    actions = ["list", "status", "backup", "restore"]
    # qubes = ["work"]      # default: every qube of [qubes]; always limited to them
    # on_conflict = ["fail", "skip"]   # restore conflict policies (default: fail)
    # shutdown = false      # may a restore shut down running qubes gracefully
    # prefs = false         # may a restore set dom0's global preferences (qubes-prefs)

The `[rpc]` table is read by the qrexec service only (wyngq.rpc): without a
rule naming it, a qube can do nothing with the profile, whatever dom0's qrexec
policy allows.

`model` holds the checked values, `schema` makes them from the TOML data key
by key, `load` finds, reads and parses the file. The public names are here.
"""

from wyngq.profile.load import (
    MAX_PROFILE_BYTES,
    PROFILE_DIR,
    PROFILE_DIR_ENV,
    PROFILE_NAME_RULE,
    is_profile_name,
    load_profile,
    profile_dir,
)
from wyngq.profile.model import (
    AUTOPRUNE_MODES,
    CONFLICT_POLICIES,
    RPC_ACTIONS,
    BackupDefaults,
    Dom0Settings,
    PassphraseSource,
    Profile,
    RpcAccess,
    RpcRule,
    Selection,
    archive_care,
)
from wyngq.profile.schema import parse_profile

__all__ = [
    "AUTOPRUNE_MODES",
    "CONFLICT_POLICIES",
    "MAX_PROFILE_BYTES",
    "PROFILE_DIR",
    "PROFILE_DIR_ENV",
    "PROFILE_NAME_RULE",
    "RPC_ACTIONS",
    "BackupDefaults",
    "Dom0Settings",
    "PassphraseSource",
    "Profile",
    "RpcAccess",
    "RpcRule",
    "Selection",
    "archive_care",
    "is_profile_name",
    "load_profile",
    "parse_profile",
    "profile_dir",
]
