"""Names, references and order: the graph side of restore planning (pure).

- Where each backed-up qube goes (its target name and action), under the
  conflict policy; renames are never silent: they are in the plan.
- What a reference in the backup (template, netvm, ...) points at after the
  restore: a qube that exists here keeps its name (never a renamed copy, the
  qvm-backup-restore topology bug); only a qube this restore creates under
  another name is followed to that name.
- The order qubes are worked on: what they reference first, and running
  dependants that must stop before a qube they depend on can change.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from wyngq.model import QubeClass, QubeSettings
from wyngq.names import is_qube_name
from wyngq.restore.model import Action, ConflictPolicy, LiveSystem, Problem, RestoreRequest

# Properties that hold a qube's name (others are found by their type "vm").
REFERENCES = ("netvm", "default_dispvm", "management_dispvm", "audiovm", "guivm")
RENAME_SUFFIX = "-restored"


@dataclass(frozen=True)
class Decision:
    source: str
    target: str
    action: Action
    problems: tuple[Problem, ...] = ()


def decide_targets(
    chosen: Sequence[str], settings: Mapping[str, QubeSettings], live: LiveSystem, request: RestoreRequest
) -> dict[str, Decision]:
    """Decide each chosen qube's target name and action under the conflict policy."""
    renames = dict(request.renames)
    taken = set(live.qubes) | {"dom0"}
    decisions: dict[str, Decision] = {}
    used: dict[str, str] = {}
    for source in chosen:
        klass = settings[source].klass
        explicit = renames.get(source)
        decision = _decide(source, klass, explicit, live, request.on_conflict, taken)
        if decision.action is not Action.SKIP:
            if decision.target in used:
                decision = Decision(source, decision.target, Action.SKIP, (Problem(
                    "duplicate_target",
                    f"{used[decision.target]!r} is also restored as {decision.target!r}",
                    "refused: give them different names with --rename", blocking=True),))
            else:
                used[decision.target] = source
                taken.add(decision.target)
        decisions[source] = decision
    return decisions


def _decide(
    source: str, klass: QubeClass, explicit: str | None, live: LiveSystem, policy: ConflictPolicy, taken: set[str]
) -> Decision:
    target = explicit or source
    existing = live.qubes.get(target)
    if existing is None:
        return Decision(source, target, Action.RENAME if target != source else Action.CREATE)
    exists = f"a qube named {target!r} already exists"
    if policy is ConflictPolicy.SKIP:
        return Decision(source, target, Action.SKIP, (Problem("exists", exists, "skipped (--on-conflict=skip)"),))
    if policy is ConflictPolicy.REPLACE:
        if existing.klass is not klass:
            return Decision(source, target, Action.SKIP, (Problem(
                "class_mismatch",
                f"{target!r} is a {existing.klass.value} here but a {klass.value} in the backup",
                f"refused: restore it under another name with --rename={source}:NEW, or remove {target!r} first",
                blocking=True),))
        return Decision(source, target, Action.REPLACE)
    if policy is ConflictPolicy.RENAME and explicit is None:
        new = free_name(source, taken)
        return Decision(source, new, Action.RENAME, (Problem(
            "exists", exists, f"restored beside it as {new!r} (--on-conflict=rename); {target!r} is left untouched"),))
    return Decision(source, target, Action.SKIP, (Problem(
        "exists", exists,
        "refused: pass --on-conflict=replace to restore over it, --on-conflict=rename (or --rename) to restore "
        "beside it, or --on-conflict=skip to leave it", blocking=True),))


def free_name(source: str, taken: Iterable[str]) -> str:
    """A new qube name for a copy of `source` that no qube has: `NAME-restored`,
    then `NAME-restored2`, ... (shortened to qubesd's 31 characters)."""
    used = set(taken)
    for number in range(1, 1000):
        suffix = RENAME_SUFFIX + (str(number) if number > 1 else "")
        name = source[: 31 - len(suffix)] + suffix
        if name not in used and is_qube_name(name):
            return name
    raise ValueError(f"no free name for a copy of {source}")


@dataclass(frozen=True)
class FinalQube:
    """What a qube will be after the restore, as far as references care."""

    klass: QubeClass
    provides_network: bool
    template_for_dispvms: bool


class World:
    """The system as it will be once the restore is done, for checking references."""

    def __init__(self, decisions: Mapping[str, Decision], settings: Mapping[str, QubeSettings], live: LiveSystem):
        self.decisions = decisions
        self.live = live
        self.restored = {d.target: settings[d.source] for d in decisions.values() if d.action is not Action.SKIP}

    def resolve(self, name: str) -> str | None:
        """The qube a backed-up reference to `name` means here, or None if there is none."""
        if name == "dom0" or name in self.live.qubes:
            return name
        decision = self.decisions.get(name)
        if decision is not None and decision.action in (Action.CREATE, Action.RENAME):
            return decision.target
        return None

    def final(self, name: str) -> FinalQube | None:
        if name == "dom0":
            return FinalQube(QubeClass.ADMIN, False, False)
        restored = self.restored.get(name)
        if restored is not None:
            props = restored.properties
            return FinalQube(restored.klass, _true(props, "provides_network"), _true(props, "template_for_dispvms"))
        live = self.live.qubes.get(name)
        if live is not None:
            return FinalQube(live.klass, live.provides_network, live.template_for_dispvms)
        return None


def _true(props: Mapping[str, object], name: str) -> bool:
    value = props.get(name)
    return getattr(value, "value", None) == "True"


def running_dependants(target: str, live: LiveSystem) -> tuple[str, ...]:
    """Running qubes that must stop before `target` can: its network clients,
    the qubes using it as audio or GUI qube, disposables of a disposable
    template, and theirs in turn. Deepest first, so each can stop in order."""
    order: list[str] = []

    def visit(name: str, path: tuple[str, ...]) -> None:
        for other in sorted(live.qubes.values(), key=lambda q: q.name):
            if not other.running or other.name in path or other.name == target:
                continue
            uses = name in (other.netvm, other.audiovm, other.guivm) or (
                other.klass is QubeClass.DISP and other.template == name)
            if uses:
                visit(other.name, (*path, other.name))
                if other.name not in order:
                    order.append(other.name)

    visit(target, (target,))
    return tuple(order)


_RANK = {QubeClass.TEMPLATE: 0, QubeClass.STANDALONE: 1, QubeClass.APP: 3, QubeClass.DISP: 5, QubeClass.ADMIN: 6}


def rank(settings: QubeSettings) -> int:
    """Templates, standalones, disposable templates, netvms, other app qubes, disposables."""
    base = _RANK[settings.klass]
    if settings.klass is QubeClass.APP:
        if _true(settings.properties, "template_for_dispvms"):
            return 2
        if _true(settings.properties, "provides_network"):
            return 3
        return 4
    return base


def dependency_order(nodes: Mapping[str, int], edges: Mapping[str, Iterable[str]]) -> tuple[str, ...]:
    """Order `nodes` (name -> rank) so each comes after the nodes it depends on
    (`edges[name]`); ties and cycles are broken by rank, then name."""
    deps = {n: {d for d in edges.get(n, ()) if d in nodes and d != n} for n in nodes}
    users: dict[str, set[str]] = {n: set() for n in nodes}
    for name, needs in deps.items():
        for need in needs:
            users[need].add(name)
    ready = [(nodes[n], n) for n, needs in deps.items() if not needs]
    heapq.heapify(ready)
    done: list[str] = []
    left = set(nodes)
    while left:
        if not ready:  # a cycle: take the first by rank and name
            pick = min(left, key=lambda n: (nodes[n], n))
            deps[pick] = set()
            heapq.heappush(ready, (nodes[pick], pick))
        _, name = heapq.heappop(ready)
        if name not in left:
            continue
        left.discard(name)
        done.append(name)
        for user in sorted(users[name]):
            deps[user].discard(name)
            if not deps[user] and user in left:
                heapq.heappush(ready, (nodes[user], user))
    return tuple(done)
