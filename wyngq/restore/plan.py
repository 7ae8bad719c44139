"""Restore planning: (session data, live system, request) -> RestorePlan. Pure.

One entry per chosen qube (`create | replace | rename -> NEW | skip`) with its
problems and how each is resolved, its volume pairs, and the ordered steps
(docs/restore-semantics.md):

1. the guard tag on every qube to be replaced, then graceful shutdowns
   (running dependants first), when the request allows them;
2. missing qubes created: templates, standalones, disposable templates,
   netvms, other qubes (each tagged right after creation); capabilities
   (`provides_network`, `template_for_dispvms`) switched on; then disposables;
3. one Wyng receive per session restored from, of its data volumes into the
   volumes of scratch qubes, then their clones into place through the Admin
   API (restore.data says why);
4. plain properties, then references in dependency order, then capabilities
   switched off (after nobody points at them any more);
5. features, tags, firewall, notes, devices; `preload-dispvm-max` once every
   qube's features are in place (wyngq.qubes.reserved); the guard tag removed last;
6. dom0's global preferences, when asked (restore.prefs).

Settings that give power are reviewed against the archive's trust
(restore.trust): from an archive Wyng does not authenticate they are blocking
problems unless the user trusts its settings explicitly.

Any blocking problem refuses the whole restore before anything changes.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import replace

from wyngq import volnames
from wyngq.model import PoolDriver, QubeClass, QubeSettings
from wyngq.restore import ops as opsmod
from wyngq.restore import prefs as prefsmod
from wyngq.restore import trust
from wyngq.restore.model import (
    Action,
    LiveSystem,
    Op,
    Problem,
    QubePlan,
    RestorePlan,
    RestoreRequest,
    SessionData,
    Step,
    StepKind,
    VolumePair,
)
from wyngq.restore.resolve import Decision, World, decide_targets, dependency_order, rank, running_dependants
from wyngq.wyng import snapshots

SCRATCH_PREFIX = "wyngq-tmp-"  # the hidden StandaloneVMs Wyng receives into (restore.data)
SCRATCH_TAG = "wyngq-restore-scratch"
_PER_QUBE_TAIL = (StepKind.FEATURES, StepKind.TAGS, StepKind.FIREWALL, StepKind.NOTES, StepKind.DEVICES)


def plan_restore(
    data: SessionData, live: LiveSystem, request: RestoreRequest, chosen: tuple[str, ...]
) -> RestorePlan:
    """Plan restoring `chosen` (names as in the backup) from `data` onto `live`."""
    decisions = decide_targets(chosen, data.settings, live, request)
    world = World(decisions, data.settings, live)
    plans: dict[str, QubePlan] = {}
    qube_ops: dict[str, dict[StepKind, tuple[Op, ...]]] = {}
    for source in chosen:
        plan, ops = _plan_qube(decisions[source], data, live, world, request)
        plans[source] = plan
        qube_ops[plan.target] = ops
    plans = _share_scratch(plans, data, live)
    if not request.use_snapshot:  # nothing lent: Wyng reads the archive (its own snapshot is still cleaned up)
        plans = {s: replace(p, volumes=tuple(replace(v, snapshot="") for v in p.volumes)) for s, p in plans.items()}
    ordered = _order([p for p in plans.values() if p.changes], data.settings)
    steps = _steps(ordered, qube_ops)
    prefs_ops, prefs_problems = _prefs(data, live, world, request)
    if prefs_ops:
        steps += (Step(StepKind.PREFS, None, prefs_ops),)
    skipped = [p for p in plans.values() if not p.changes]
    return RestorePlan(
        session=data.session,
        settings_source=data.source,
        qubes=tuple(ordered) + tuple(sorted(skipped, key=lambda p: p.source)),
        steps=steps,
        force=request.force,
        keep_previous=request.keep_previous,
        prefs_problems=prefs_problems,
    )


def _prefs(data: SessionData, live: LiveSystem, world: World, request: RestoreRequest
           ) -> tuple[tuple[Op, ...], tuple[Problem, ...]]:
    """dom0's global preferences, when asked: after every qube (restore.prefs)."""
    if not request.prefs:
        return (), ()
    if not data.prefs:
        return (), (Problem("no_prefs", "the backup records no global preferences (made by an older wyngq?)",
                            "global preferences left as they are"),)
    names = {v.value for v in data.prefs.values() if v.type == "vm" and v.value}
    after = frozenset(live.qubes) | {"dom0"} | {d.target for d in world.decisions.values()
                                               if d.action is not Action.SKIP}
    ops, left = prefsmod.plan_prefs(data.prefs, live.prefs, {n: world.resolve(n) for n in names}, after)
    return ops, left + prefsmod.review(ops, authenticated=data.authenticated, trusted=request.trust_archive_settings)


def _plan_qube(
    decision: Decision, data: SessionData, live: LiveSystem, world: World, request: RestoreRequest
) -> tuple[QubePlan, dict[StepKind, tuple[Op, ...]]]:
    settings = data.settings[decision.source]
    problems = list(decision.problems)
    if decision.action is Action.SKIP:
        return QubePlan(decision.source, decision.target, settings.klass, decision.action, tuple(problems),
                        session=data.session_of(decision.source)), {}
    created = decision.action is not Action.REPLACE
    now = None if created else live.settings[decision.target]
    desired, found = opsmod.desired_settings(settings, world, live, request.skip_properties, now,
                                             request.keep_previous)
    problems += found
    volumes, pool, pools = _volumes(decision, settings, data, live, request, problems)
    shutdown = () if created else _shutdown(decision.target, live, request, problems)
    current = now or opsmod.fresh(settings.klass, decision.target, desired.label, desired.template)
    if live.archive_qube and live.archive_qube in (decision.target, *shutdown):
        problems.append(Problem(
            "archive_qube", f"the archive is reached through qube {live.archive_qube!r}, which this restore would stop",
            "refused: restore it from another copy of the archive, or leave it out", blocking=True))
    ops = opsmod.operations(desired, current, created)
    problems += trust.review(ops, world.restored, authenticated=data.authenticated,
                             trusted=request.trust_archive_settings)
    plan = QubePlan(
        source=decision.source, target=decision.target, klass=settings.klass, action=decision.action,
        problems=tuple(problems), volumes=volumes, label=desired.label, template=desired.template,
        pool=pool, pools=pools, shutdown=shutdown, depends_on=_depends_on(desired),
        session=data.session_of(decision.source),
    )
    return plan, ops


def _depends_on(desired: opsmod.Desired) -> tuple[str, ...]:
    names = {desired.template} if desired.template else set()
    names |= {v.value for k, v in desired.properties.items() if opsmod.is_reference(k, v) and v.value}
    names |= {d.backend for d in desired.devices}
    return tuple(sorted(names - {"dom0"}))


def _shutdown(target: str, live: LiveSystem, request: RestoreRequest, problems: list[Problem]) -> tuple[str, ...]:
    dependants = running_dependants(target, live)
    running = live.qubes[target].running
    stop = dependants + ((target,) if running else ())
    if not stop:
        return ()
    allowed = request.shutdown or request.force
    how = "shut down gracefully first" + (", killed if it does not stop" if request.force else "")
    if running:
        problems.append(Problem(
            "running", f"qube {target!r} is running",
            how if allowed else f"refused: shut down {target!r} first, or pass --shutdown", blocking=not allowed))
    if dependants:
        names = ", ".join(dependants)
        problems.append(Problem(
            "running_dependants", f"running qubes depend on {target!r}: {names}",
            f"{names} {how}" if allowed else f"refused: shut down {names} first, or pass --shutdown",
            blocking=not allowed))
    return stop if allowed else ()


def _volumes(
    decision: Decision, settings: QubeSettings, data: SessionData, live: LiveSystem, request: RestoreRequest,
    problems: list[Problem],
) -> tuple[tuple[VolumePair, ...], str | None, tuple[tuple[str, str], ...]]:
    """The volume pairs, and for a new qube the pool(s) to create it in."""
    archived = data.volumes.get(decision.source, {})
    kinds = settings.klass.backed_up_volumes
    missing = [k for k in kinds if k not in archived]
    if missing:
        problems.append(Problem(
            "incomplete", f"session {data.session_of(decision.source)} lacks its {', '.join(missing)} volume(s)",
            "refused: choose a session that holds all its volumes (--session)", blocking=True))
        return (), None, ()
    if decision.action is Action.REPLACE:
        pairs = []
        for kind in kinds:
            volume = next((v for v in live.volumes.get(decision.target, ()) if v.kind == kind), None)
            if volume is not None and volume.revisions_to_keep in (0, -1):
                problems.append(_no_revisions(decision.target, kind, volume.revisions_to_keep, request.keep_previous))
            pairs.append(_pair(decision.target, kind, archived[kind], data, live, volume.pool if volume else None,
                               True, problems))
        return tuple(p for p in pairs if p is not None), None, ()
    backup_pools = {v.kind: v.pool for v in settings.volumes}
    pools: dict[str, str] = {}
    pairs = []
    for kind in kinds:
        wanted = request.pool or backup_pools.get(kind)
        if wanted is not None and wanted in live.pools:
            pools[kind] = wanted
            chosen = wanted
        else:
            chosen = live.default_pool or ""
            if request.pool is None and wanted is not None:
                problems.append(Problem("missing_pool", f"pool {wanted!r} of its {kind} volume does not exist here",
                                        f"created in the default pool {chosen!r} (or choose one with --pool)"))
        pairs.append(_pair(decision.target, kind, archived[kind], data, live, chosen, False, problems))
    if "volatile" in backup_pools and backup_pools["volatile"] in live.pools:
        pools["volatile"] = backup_pools["volatile"]
    if request.pool is not None and request.pool not in live.pools:
        problems.append(Problem("missing_pool", f"pool {request.pool!r} does not exist here",
                                "refused: choose an existing pool with --pool (qvm-pool lists them)", blocking=True))
    return tuple(p for p in pairs if p is not None), request.pool, \
        tuple(sorted(pools.items())) if request.pool is None else ()


def _no_revisions(target: str, kind: str, keep: int | None, keep_previous: bool) -> Problem:
    """A replaced volume that keeps no revision of its current data: 0, or -1
    (snapshots disabled, Qubes 4.3: written live, no revision at all). Replacing
    it needs --no-keep-previous, and the plan says the data is then gone."""
    what = (f"its {kind} volume has snapshots disabled (revisions_to_keep -1)" if keep == -1
            else f"its {kind} volume keeps no revisions")
    message = f"{what}, so its current data could not be brought back"
    if not keep_previous:
        return Problem("no_revisions", message, "replaced anyway (--no-keep-previous): its current data is lost")
    return Problem("no_revisions", message,
                   f"refused: run `qvm-volume config {target}:{kind} revisions_to_keep 1`, "
                   "or pass --no-keep-previous to replace it without a copy", blocking=True)


def _pair(
    target: str, kind: str, archive_name: str, data: SessionData, live: LiveSystem, pool_name: str | None,
    replaces: bool, problems: list[Problem],
) -> VolumePair | None:
    """Where Wyng writes the volume's data: the same volume of a scratch qube in
    the volume's own pool, cloned into place afterwards through the Admin API
    (restore.data)."""
    pool = live.pools.get(pool_name or "")
    if pool is None or not pool.supported or pool.wyng_path is None:
        problems.append(Problem("unsupported_pool", f"its {kind} volume's pool {pool_name!r} cannot be written by Wyng",
                                "refused: use a file-reflink or lvm_thin pool (--pool for new qubes)", blocking=True))
        return None
    pair = VolumePair(target, kind, archive_name, data.sizes.get(archive_name, 0), pool.name, pool.wyng_path, "", "",
                      replaces=replaces)
    return _placed(pair, scratch_name(target), kind, PoolDriver(pool.driver), data)


def _placed(pair: VolumePair, scratch_qube: str, slot: str, driver: PoolDriver, data: SessionData) -> VolumePair:
    """`pair` received into the `slot` volume of `scratch_qube`: where Wyng writes
    it, and for a file-reflink pool where Wyng's snapshot of it is lent."""
    local = volnames.archive_name(scratch_qube, slot, driver, f"appvms/{scratch_qube}/{slot}")
    placed = replace(pair, local_name=local, scratch_qube=scratch_qube, scratch_kind="" if slot == pair.kind else slot)
    if driver is PoolDriver.LVM_THIN:
        return replace(placed, scratch=f"/dev/{pair.store.split('/')[0]}/{local}", snapshot="", scratch_snapshot="")
    snapshot, scratch_snapshot = _snapshots(pair.store, pair.archive_name, local, data)
    return replace(placed, scratch=os.path.join(pair.store, local), snapshot=snapshot,
                   scratch_snapshot=scratch_snapshot)


def _share_scratch(plans: Mapping[str, QubePlan], data: SessionData, live: LiveSystem) -> dict[str, QubePlan]:
    """Qubes with one data volume (AppVMs: `private`) go two to a scratch qube
    (a StandaloneVM has two data volumes, `private` and `root`, and qubesd clones
    any volume into any other), when they are received in the same session into
    the same pool: each scratch qube costs its creation, tags, a property and
    its removal."""
    shared = dict(plans)
    groups: dict[tuple[str, str], list[QubePlan]] = {}
    for plan in plans.values():
        if plan.changes and len(plan.volumes) == 1:
            groups.setdefault((plan.session or data.session, plan.volumes[0].pool), []).append(plan)
    for singles in groups.values():
        for first, second in zip(singles[0::2], singles[1::2], strict=False):
            name = scratch_name(f"{first.target}\n{second.target}")
            one, other = first.volumes[0], second.volumes[0]
            slot = "root" if one.kind == "private" else "private"
            for plan, pair, where in ((first, one, one.kind), (second, other, slot)):
                driver = PoolDriver(live.pools[pair.pool].driver)
                shared[plan.source] = replace(plan, volumes=(_placed(pair, name, where, driver, data),))
    return shared


def _snapshots(store: str, archive_name: str, local: str, data: SessionData) -> tuple[str, str]:
    """Where Wyng keeps its snapshot of a file-reflink volume as last sent to this
    archive (beside the volume: wyngq.wyng.snapshots), and where it looks for one
    beside the scratch volume; ("", "") when unknown."""
    name = snapshots.snapshot_file(data.archive_uuid, data.vids.get(archive_name, ""))
    if name is None or "/" not in archive_name:
        return "", ""
    return (os.path.join(store, os.path.dirname(archive_name), name),
            os.path.join(store, os.path.dirname(local), name))


def scratch_name(target: str) -> str:
    """The scratch qube of a restored qube: short (qubesd allows 31 characters),
    fixed for a target (a crashed run's is found again), and unlike a user's."""
    return SCRATCH_PREFIX + hashlib.sha256(target.encode()).hexdigest()[:12]


def _order(plans: list[QubePlan], settings: Mapping[str, QubeSettings]) -> list[QubePlan]:
    """Qubes after what they reference (template, netvm, ..., device backends)."""
    by_target = {p.target: p for p in plans}
    ranks = {p.target: rank(settings[p.source]) for p in plans}
    edges = {p.target: {n for n in p.depends_on if n in by_target} for p in plans}
    return [by_target[name] for name in dependency_order(ranks, edges)]


def _steps(ordered: list[QubePlan], qube_ops: Mapping[str, Mapping[StepKind, tuple[Op, ...]]]) -> tuple[Step, ...]:
    steps: list[Step] = []
    replaced = [p for p in ordered if p.action is Action.REPLACE]
    created = [p for p in ordered if p.action is not Action.REPLACE]
    steps += [Step(StepKind.GUARD, p.target) for p in replaced]
    # Each running qube is stopped once: by its own step if it is replaced too, else by the
    # first qube (dependants first: reverse order) that needs it stopped.
    owner: dict[str, str] = {}
    for plan in reversed(replaced):
        for name in plan.shutdown:
            owner.setdefault(name, name if name in {p.target for p in replaced} else plan.target)
    for plan in reversed(replaced):
        names = [n for n in plan.shutdown if owner[n] == plan.target]
        if names:
            steps.append(Step(StepKind.SHUTDOWN, plan.target, tuple(Op("shutdown", n) for n in names)))
    steps += [Step(StepKind.CREATE, p.target) for p in created if p.klass is not QubeClass.DISP]
    steps += _per_qube(ordered, qube_ops, StepKind.CAPABILITIES)
    steps += [Step(StepKind.CREATE, p.target) for p in created if p.klass is QubeClass.DISP]
    for session in sorted({p.session for p in ordered if p.volumes}):  # one Wyng receive per session
        steps.append(Step(StepKind.RECEIVE, None, (Op("receive", session),)))
    for plan in ordered:
        imports = tuple(Op("import", v.kind, v.scratch_qube, None) for v in plan.volumes)
        if imports:
            steps.append(Step(StepKind.IMPORT, plan.target, imports))
    steps += _per_qube(ordered, qube_ops, StepKind.VOLUMES)
    for kind in (StepKind.PROPERTIES, StepKind.REFERENCES, StepKind.CAPABILITIES_OFF):
        steps += _per_qube(ordered, qube_ops, kind)
    for plan in ordered:
        steps += [Step(k, plan.target, qube_ops[plan.target][k]) for k in _PER_QUBE_TAIL if k in qube_ops[plan.target]]
    steps += _per_qube(ordered, qube_ops, StepKind.PRELOAD)  # once every qube's features are in place
    steps += [Step(StepKind.FINISH, p.target) for p in ordered]
    return tuple(steps)


def _per_qube(ordered: list[QubePlan], qube_ops: Mapping[str, Mapping[StepKind, tuple[Op, ...]]], kind: StepKind
              ) -> list[Step]:
    return [Step(kind, p.target, qube_ops[p.target][kind]) for p in ordered if kind in qube_ops[p.target]]
