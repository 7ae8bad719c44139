"""Which caller may do what with a profile: the `[rpc]` rules, checked purely.

dom0's qrexec policy decides whether a qube may call `qubes.WyngBackup+ACTION`
at all; the profile then decides what it may do with that profile. A call is
allowed when ONE `[[rpc.allow]]` rule allows all of it:

- the caller is named in `callers`, or carries a tag named there (`@tag:T`);
- the action is in `actions`;
- for the actions that change qubes or the archive (backup, restore, prune):
  every named qube is in the profile's `[qubes]` selection and, if the rule
  has `qubes`, matched by it; naming no qubes means "the whole selection",
  which only a rule without `qubes` allows;
- for restore: the conflict policy is in `on_conflict`, `shutdown` only if
  the rule has `shutdown = true`, `prefs` (dom0's global preferences) only if
  it has `prefs = true`; `all` means every qube of the archive that the
  profile's selection and the rule cover (`covers`), whatever the rule's
  `qubes`; an explicit new name (`rename`) must itself be allowed like a
  restored qube, by name: a qube name can carry power in dom0's qrexec
  policy, so a caller may not mint arbitrary ones. (Without an explicit
  name, a rename creates `NAME-restored`, `NAME-restored2`, ...)

A qube that does not exist (a restore of a deleted qube) can match only by
name: its tags and `include_in_backups` are not known.
"""

from __future__ import annotations

from collections.abc import Callable

from wyngq.errors import NotPermittedError
from wyngq.model import Qube
from wyngq.profile import Profile, RpcRule, Selection
from wyngq.rpc.request import BackupCall, PruneCall, Request, RestoreCall

Lookup = Callable[[str], Qube | None]
"""The live qube called NAME, or None when there is none."""

QUBE_CHECKED = (BackupCall, RestoreCall, PruneCall)


def not_permitted(caller: str, action: str, profile: str) -> NotPermittedError:
    """The refusal for a profile the caller may not use: the same words whether the
    profile exists or not, so a caller cannot learn which profiles exist."""
    return NotPermittedError(
        f"qube {caller} may not {action} with profile {profile!r}",
        hint="dom0 decides: a [[rpc.allow]] rule of the profile must name this qube and action",
    )


def authorize(profile: Profile, caller: str, request: Request, lookup: Lookup) -> RpcRule:
    """Return the first rule that allows `caller` to make `request`; raise
    NotPermittedError saying what is refused otherwise."""
    rules = [r for r in profile.rpc.rules if request.action in r.actions and _caller_matches(r, caller, lookup)]
    if not rules:
        raise not_permitted(caller, request.action, profile.name)
    first_refusal = ""
    for rule in rules:
        refusal = _refusal(rule, profile, request, lookup)
        if refusal is None:
            return rule
        first_refusal = first_refusal or refusal
    raise NotPermittedError(first_refusal, hint="dom0 decides this in the profile's [[rpc.allow]] rules")


def in_selection(selection: Selection, name: str, lookup: Lookup) -> bool:
    """Whether the profile's `[qubes]` covers `name` (as a backup of the profile would)."""
    if name in selection.exclude:
        return False
    qube = lookup(name)
    tags = qube.tags if qube is not None else frozenset()
    if any(f"@tag:{tag}" in selection.exclude for tag in tags):
        return False
    if name in selection.include:
        return True
    if qube is None:
        return False
    if qube.include_in_backups and "@include_in_backups" in selection.include:
        return True
    return any(f"@tag:{tag}" in selection.include for tag in tags)


def covers(profile: Profile, rule: RpcRule, name: str, lookup: Lookup) -> bool:
    """Whether a restore allowed by `rule` may touch qube `name` (what `all` keeps)."""
    return in_selection(profile.qubes, name, lookup) and _rule_matches(rule, name, lookup)


def _caller_matches(rule: RpcRule, caller: str, lookup: Lookup) -> bool:
    if caller in rule.callers:
        return True
    if not any(c.startswith("@tag:") for c in rule.callers):
        return False
    qube = lookup(caller)
    return qube is not None and any(f"@tag:{tag}" in rule.callers for tag in qube.tags)


def _rule_matches(rule: RpcRule, name: str, lookup: Lookup) -> bool:
    if rule.qubes is None or name in rule.qubes:
        return True
    qube = lookup(name)
    return qube is not None and any(f"@tag:{tag}" in rule.qubes for tag in qube.tags)


def _refusal(rule: RpcRule, profile: Profile, request: Request, lookup: Lookup) -> str | None:
    """Why `rule` does not allow `request`, or None if it does."""
    action = request.action
    if isinstance(request, QUBE_CHECKED):
        if not request.qubes and rule.qubes is not None and not getattr(request, "all", False):
            return f"{action} of every qube of profile {profile.name!r} is not allowed; name the qubes"
        for name in request.qubes:
            if not in_selection(profile.qubes, name, lookup):
                return f"qube {name} is not covered by profile {profile.name!r}"
            if not _rule_matches(rule, name, lookup):
                return f"{action} of qube {name} with profile {profile.name!r} is not allowed"
    if isinstance(request, RestoreCall):
        if request.on_conflict not in rule.on_conflict:
            allowed = ", ".join(rule.on_conflict) or "none"
            return f"restore with on_conflict={request.on_conflict} is not allowed (allowed: {allowed})"
        if request.shutdown and not rule.shutdown:
            return "restore may not shut down qubes (shutdown) for this caller"
        if request.prefs and not rule.prefs:
            return "restore may not set dom0's global preferences (prefs) for this caller"
        for source, target in request.rename:
            unknown: Lookup = lambda _: None  # noqa: E731 - matched by name only, whether it exists or not
            if not in_selection(profile.qubes, target, unknown) or not _rule_matches(rule, target, unknown):
                return (f"restore of {source} as {target} is not allowed: a new name must be named in the "
                        f"[qubes] include of profile {profile.name!r} (and in the rule's qubes); "
                        f"leave out 'rename' to get {source}-restored")
    return None
