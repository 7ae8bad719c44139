"""Pure builders of Wyng command lines.

Each function returns the full argv. Every value that came from a user passes
as `--option=value` (never as a separate word Wyng could read as an option),
and volume names are built by wyngq itself from validated qube names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from wyngq.volnames import METADATA_VOLUME

# Wyng prints at least a progress mark per 5 % of a volume: an hour with nothing
# at all is a destination that stopped answering, not a slow one.
DEFAULT_STALL_TIMEOUT = 3600.0


@dataclass(frozen=True)
class ArchiveCare:
    """Wyng's archive-care options a profile sets (wyngq.profile validates them)."""

    apdays: str | None = None
    vouch: tuple[str, ...] = ()
    keep: tuple[str, ...] = ()


def care_options(care: ArchiveCare | None, *, prune: bool) -> list[str]:
    """`--apdays`, `--vouch` (send and prune) and `--keep` (prune only)."""
    if care is None:
        return []
    argv = [f"--apdays={care.apdays}"] if care.apdays else []
    argv += [f"--vouch={v}" for v in care.vouch]
    if prune:
        argv += [f"--keep={k}" for k in care.keep]
    return argv


@dataclass(frozen=True)
class WyngTarget:
    """Which Wyng, which archive, and the options every call carries.

    `--config=/dev/null` keeps /etc/wyng/wyng.ini from silently adding
    defaults; `-u` never lets Wyng prompt; `--authmin=0` never leaves a key
    agent behind (one that lives accepts any passphrase). `stall_timeout`: a call
    that prints nothing for this many seconds is stopped (None: never); it is
    not part of which archive this is.
    """

    executable: str
    dest: str
    meta_dir: str | None = None
    stall_timeout: float | None = field(default=DEFAULT_STALL_TIMEOUT, compare=False)
    care: ArchiveCare | None = None  # the profile's archive care, for send and prune

    def base(self) -> list[str]:
        argv = [self.executable, f"--dest={self.dest}", "--config=/dev/null", "-u", "--authmin=0"]
        if self.meta_dir:
            argv.append(f"--meta-dir={self.meta_dir}")
        return argv


@dataclass(frozen=True)
class InitOptions:
    encrypt: bool = True
    compression: str | None = None
    hashtype: str | None = None
    chunk_factor: int | None = None


def version_command(executable: str) -> list[str]:
    return [executable, "version"]


def arch_init_command(target: WyngTarget, options: InitOptions) -> list[str]:
    argv = target.base()
    if not options.encrypt:
        argv.append("--encrypt=off")
    if options.compression:
        argv.append(f"--compression={options.compression}")
    if options.hashtype:
        argv.append(f"--hashtype={options.hashtype}")
    if options.chunk_factor is not None:
        argv.append(f"--chunk-factor={options.chunk_factor}")
    return [*argv, "arch-init"]


def list_command(target: WyngTarget) -> list[str]:
    return [*target.base(), "--json", "list"]


def end_key_agent_command(target: WyngTarget) -> list[str]:
    """A listing that makes Wyng use and then end any key agent for the archive
    (`--authmin=-1`); given no passphrase, it proves nothing else."""
    return ["--authmin=-1" if word == "--authmin=0" else word for word in list_command(target)]


def send_command(
    target: WyngTarget,
    *,
    local_from: str,
    metadata_file: str,
    tags: Sequence[str] = ("qubes",),
    dedup: bool = False,
    autoprune: str | None = None,
    dry_run: bool = False,
    other_imports: Sequence[tuple[str, str]] = (),
) -> list[str]:
    """One send of every selected volume, with the settings bundle in the same
    session, and each (volume name, file) of `other_imports` (dom0's streams).

    `--remap`: where Wyng's snapshot of a volume belongs to another archive (an
    LVM snapshot tagged for it, e.g. after the machine was restored from or
    backed up to another archive), Wyng clears it and rescans the volume instead
    of refusing it ("snapshot is from a different archive"), as Wyng's manual
    says; it changes nothing for volumes whose snapshot is this archive's. Not on
    a dry run: that would delete the other archive's snapshot."""
    argv = [*target.base(), f"--local-from={local_from}", "--send-unchanged"]
    if not dry_run:
        argv.append("--remap")
    argv += [f"--tag={tag}" for tag in tags]
    if dedup:
        argv.append("--dedup")
    if autoprune:
        argv.append(f"--autoprune={autoprune}")
    argv += care_options(target.care, prune=False)
    if dry_run:
        argv.append("--dry-run")
    argv.append(f"--import-other-from={METADATA_VOLUME}:|:{metadata_file}")
    argv += [f"--import-other-from={name}:|:{path}" for name, path in other_imports]
    return [*argv, "send"]


def monitor_command(target: WyngTarget, local_from: str) -> list[str]:
    """Record lvm_thin deltas of the volumes in `local_from` without sending (`monitor`)."""
    return [*target.base(), f"--local-from={local_from}", "monitor"]


def receive_to_file_command(target: WyngTarget, volume: str, session: str, path: str) -> list[str]:
    """Fetch one volume of one session into a plain file. Not `--quiet`: the
    header Wyng prints shows whether the archive is encrypted (Wyng.pin_encrypted)."""
    return [*target.base(), f"--save-to={path}", f"--session={session}", "receive", "--", volume]


def receive_command(
    target: WyngTarget, *, local_from: str, session: str, use_snapshot: bool = False
) -> list[str]:
    argv = [*target.base(), f"--local-from={local_from}", f"--session={session}", "--force", "--sparse-write"]
    if use_snapshot:
        argv.append("--use-snapshot")
    return [*argv, "receive"]


def verify_command(target: WyngTarget, session: str, volumes: Sequence[str]) -> list[str]:
    return [*target.base(), f"--session={session}", "verify", "--", *volumes]


def arch_check_command(target: WyngTarget, session: str | None = "newest") -> list[str]:
    argv = target.base()
    if session:
        argv.append(f"--session={session}")
    return [*argv, "arch-check"]


def prune_command(
    target: WyngTarget,
    *,
    volumes: Sequence[str] = (),
    session: str | None = None,
    all_before: bool = False,
    all_volumes: bool = False,
    autoprune: str | None = None,
) -> list[str]:
    """Prune sessions of the named volumes, or of every volume with all_volumes
    (Wyng's -a, which includes the settings bundle)."""
    argv = target.base()
    if session:
        argv.append(f"--session={session}")
    if all_before:
        argv.append("--all-before")
    if autoprune:
        argv.append(f"--autoprune={autoprune}")
    argv += care_options(target.care, prune=True)
    if all_volumes:
        return [*argv, "--all", "prune"]
    return [*argv, "prune", "--", *volumes]


def delete_command(target: WyngTarget, volume: str) -> list[str]:
    return [*target.base(), "--quiet", "delete", "--", volume]
