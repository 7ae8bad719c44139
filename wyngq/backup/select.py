"""Which qubes a backup takes: the request from the caller's choices and the
profile, and the selection from the qubes Qubes lists."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from wyngq.backup.model import BackupRequest
from wyngq.dom0.backup import Dom0Backup
from wyngq.errors import UsageError
from wyngq.model import QubeClass
from wyngq.profile import Profile


def request_for_profile(
    profile: Profile | None,
    *,
    qubes: tuple[str, ...] = (),
    exclude: tuple[str, ...] = (),
    include_flagged: bool = False,
    dedup: bool | None = None,
    autoprune: str | None = None,
    check_after_send: bool | None = None,
    dry_run: bool = False,
    dom0_home: bool | None = None,
    dom0_home_dir: str | None = None,
    dom0_config: bool | None = None,
    shutdown: bool = False,
    shutdown_dependants: bool = False,
    max_age: int | None = None,
) -> BackupRequest:
    """The caller's choices first (None: not chosen), then the profile's; named
    qubes replace the profile's selection rather than adding to it. Names must
    already be validated."""
    include = profile.qubes.include if profile and not qubes else ()
    excluded = profile.qubes.exclude if profile else ()
    defaults = profile.backup if profile else None
    return BackupRequest(
        qubes=qubes or tuple(q for q in include if not q.startswith("@")),
        include_flagged=include_flagged or "@include_in_backups" in include,
        include_tags=tuple(q.removeprefix("@tag:") for q in include if q.startswith("@tag:")),
        exclude=exclude + tuple(q for q in excluded if not q.startswith("@")),
        exclude_tags=tuple(q.removeprefix("@tag:") for q in excluded if q.startswith("@tag:")),
        dedup=dedup if dedup is not None else bool(defaults and defaults.dedup),
        autoprune=autoprune or (defaults.autoprune if defaults else None),
        check_after_send=check_after_send if check_after_send is not None else bool(
            defaults and defaults.check_after_send
        ),
        dry_run=dry_run,
        max_age=max_age,
        dom0=dom0_request(profile, home=dom0_home, home_dir=dom0_home_dir, config=dom0_config),
        shutdown=shutdown or shutdown_dependants,
        shutdown_dependants=shutdown_dependants,
        tags=defaults.tags if defaults else (),
    )


def dom0_request(
    profile: Profile | None, *, home: bool | None = None, home_dir: str | None = None, config: bool | None = None
) -> Dom0Backup:
    """dom0's part: the caller's choices (None: not chosen), then the profile's [dom0]."""
    settings = profile.dom0 if profile else None
    return Dom0Backup(
        home=home if home is not None else bool(settings and settings.home),
        home_dir=home_dir or (settings.home_dir if settings else None),
        exclude=settings.exclude if settings else (),
        config=config if config is not None else bool(settings and settings.config),
    )

def select_qubes(
    request: BackupRequest,
    listed: Mapping[str, tuple[QubeClass, bool]],
    flagged: Callable[[str], bool],
    tags_of: Callable[[str], Iterable[str]],
) -> tuple[str, ...]:
    """Return the names to back up, sorted; raise UsageError for names that are not qubes.

    `flagged(name)` says whether a qube has include_in_backups; `tags_of(name)`
    gives its tags. Both are only called when the request needs them.
    """
    if "dom0" in request.qubes:
        raise UsageError("dom0 is never backed up by wyng-util-qubes", hint="leave dom0 out of the list")
    unknown = sorted(set(request.qubes) - set(listed))
    if unknown:
        raise UsageError(f"no such qube: {', '.join(unknown)}",
                         hint="check the names with qvm-ls (qubes of a class wyngq does not know are left out)")
    chosen = set(request.qubes)
    if request.include_flagged:
        chosen |= {name for name in listed if flagged(name)}
    for tag in request.include_tags:
        chosen |= {name for name in listed if tag in tags_of(name)}
    chosen -= set(request.exclude)
    for tag in request.exclude_tags:
        chosen -= {name for name in chosen if tag in tags_of(name)}
    if not chosen:
        raise UsageError(
            "no qubes selected for backup", hint="name qubes, or use -i for those marked include_in_backups"
        )
    return tuple(sorted(chosen))

