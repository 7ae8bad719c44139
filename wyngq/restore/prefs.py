"""dom0's global qube preferences (what `qubes-prefs` shows): kept with every
backup, put back only when asked (`restore --prefs`).

Backup records every global property set explicitly (not at its default) in
the manifest (`prefs`); a bundle written by upstream wyng-util-qubes has only
qubes.xml, whose top-level `<properties>` are read instead. Restore plans
them after every qube: a preference naming a qube that will not exist is left
as it is and reported, one equal to the live value is not written, one at its
default in the backup is left as it is here (a fresh dom0's installer-made
settings are not reset). Values come from the archive: names must be qube
names, and only the properties listed here are ever written.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping

from wyngq import bundle
from wyngq.globalprefs import GLOBAL_PREFS, MAX_VALUE
from wyngq.model import PropertyValue
from wyngq.names import is_qube_name
from wyngq.restore import trust
from wyngq.restore.model import Op, Problem


def session_prefs(found: bundle.Bundle) -> dict[str, PropertyValue]:
    """The preferences a session's bundle records: wyngq's manifest, else the
    global properties of upstream's qubes.xml; {} when neither has them."""
    if found.manifest is not None and found.manifest.prefs is not None:
        return {k: v for k, v in found.manifest.prefs.items() if _valid(k, v)}
    if found.qubes_xml is not None:
        return prefs_from_qubes_xml(found.qubes_xml)
    return {}


def prefs_from_qubes_xml(data: bytes) -> dict[str, PropertyValue]:
    """The global properties of a qubes.xml (`/qubes/properties/property`)."""
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        return {}  # read_qubes_xml refuses such a document on its own
    try:
        root = ET.fromstring(data)
    except ET.ParseError:
        return {}
    found = {}
    for node in root.findall("./properties/property"):
        name = node.get("name", "")
        if name in GLOBAL_PREFS:
            value = PropertyValue(GLOBAL_PREFS[name], (node.text or "").strip())
            if _valid(name, value):
                found[name] = value
    return found


def _valid(name: str, value: PropertyValue) -> bool:
    kind = GLOBAL_PREFS.get(name)
    if kind is None or len(value.value) > MAX_VALUE or not value.value.isprintable():
        return False
    if kind == "vm":
        return value.value == "" or value.value == "dom0" or is_qube_name(value.value)
    if kind == "int":
        return value.value.isdigit()
    if kind == "bool":
        return value.value in ("True", "False")
    return all(c.isalnum() or c in "._-+" for c in value.value)


# Preferences that give power: which qube gets dom0's updates, clock, GUI, audio or
# management (Salt) role, what new qubes use, and dom0's default kernel. From an
# archive Wyng does not authenticate they are refused unless the user trusts it.
POWER: Mapping[str, str] = {
    "updatevm": "it carries dom0's updates", "clockvm": "it sets dom0's clock",
    "default_guivm": "it shows new qubes' windows", "default_audiovm": "it gets new qubes' audio",
    "management_dispvm": "it runs Salt's management of qubes", "default_netvm": "new qubes' traffic goes through it",
    "default_dispvm": "new qubes' disposables come from it", "default_template": "new qubes run its software",
    "default_kernel": "new qubes boot it",
}


def review(ops: tuple[Op, ...], *, authenticated: bool, trusted: bool) -> tuple[Problem, ...]:
    """The trust problems of the preference writes (see POWER): blocking from an
    archive Wyng does not authenticate unless `trusted` (--trust-archive-settings)."""
    if authenticated:
        return ()
    problems = []
    for op in ops:
        why = POWER.get(op.key)
        if why is None or op.value in ("", "dom0"):
            continue
        resolution = ("set as in the backup (--trust-archive-settings)" if trusted else
                      "refused: restore from an encrypted archive, or, if you trust whoever can write this "
                      "archive, in dom0 with --trust-archive-settings")
        problems.append(Problem(trust.UNTRUSTED, f"global preference {op.key} {op.old!r} -> {op.value!r} from an "
                                f"archive Wyng does not authenticate: {why}", resolution, blocking=not trusted,
                                setting=f"pref:{op.key}", old=op.old, new=op.value))
    return tuple(problems)


def plan_prefs(
    backup: Mapping[str, PropertyValue], live: Mapping[str, tuple[bool, PropertyValue]],
    resolve: Mapping[str, str | None], exists_after: frozenset[str],
) -> tuple[tuple[Op, ...], tuple[Problem, ...]]:
    """The writes that make dom0's preferences those of the backup, and the
    preferences left as they are with the reason. `resolve` maps a backed-up
    qube name to the qube it means here (None: none); `exists_after` are the
    qubes there will be (dom0 included)."""
    ops: list[Op] = []
    problems: list[Problem] = []
    for name, value in sorted(backup.items()):
        if not _valid(name, value):
            continue
        wanted = value.value
        if GLOBAL_PREFS[name] == "vm" and wanted not in ("", "dom0"):
            target = resolve.get(wanted, wanted if wanted in exists_after else None)
            if target is None or target not in exists_after:
                problems.append(Problem("missing_pref_qube", f"global preference {name} names {wanted!r}, which "
                                        "does not exist here and is not restored", f"{name} left as it is"))
                continue
            wanted = target
        current = live.get(name)
        if current is not None and current[1].value == wanted:
            continue
        ops.append(Op("set", name, wanted, current[1].value if current is not None else None))
    return tuple(ops), tuple(problems)
