"""A session's qube settings, read from its bundle as a restore reads them.

wyngq's manifest when the bundle has one, else upstream's qubes.xml. Qubes of
a class wyngq does not restore (RemoteVM, or any class it does not know) are
kept apart by name, so a request naming one is refused cleanly (restore.select)
and a whole-session restore leaves them out and says so. `verify` reads a
session the same way (`usable`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from wyngq import bundle
from wyngq.model import QubeSettings
from wyngq.restore.qubesxml import read_domains


@dataclass(frozen=True)
class SessionSettings:
    qubes: Mapping[str, QubeSettings]
    source: str  # "manifest" or "qubes.xml"
    unsupported: Mapping[str, str] = field(default_factory=dict)  # name -> class (bundle.class_word)


def read_settings(found: bundle.Bundle) -> SessionSettings:
    """The session's qube settings; raise BundleError when the bundle has none
    or they do not parse."""
    if found.manifest is not None:
        return SessionSettings(dict(found.manifest.qubes), "manifest", dict(found.manifest.unsupported))
    if found.qubes_xml is not None:
        qubes, unsupported = read_domains(found.qubes_xml, found.files)
        return SessionSettings(qubes, "qubes.xml", unsupported)
    raise bundle.BundleError("the session's settings bundle has neither wyngq.json nor qubes.xml",
                             hint="this session was not written by wyng-util-qubes")


def usable(found: bundle.Bundle, with_data: Iterable[str]) -> str:
    """"ok" when a restore could read the settings of every qube with data in the
    session (`with_data`), else what is wrong ("damaged: ..."; "unsupported: ...")."""
    try:
        settings = read_settings(found)
    except bundle.BundleError as err:
        return f"damaged: {err.message}"
    names = sorted(set(with_data) - {"dom0"})  # dom0 is never restored
    odd = [f"{n} ({settings.unsupported[n]})" for n in names if n in settings.unsupported]
    missing = [n for n in names if n not in settings.qubes and n not in settings.unsupported]
    if missing:
        return f"damaged: the settings ({settings.source}) lack qube(s) with data: {', '.join(missing)}"
    if odd:
        return f"unsupported: qube(s) of a class wyngq does not restore: {', '.join(odd)}"
    return "ok"


def left_out(settings: SessionSettings) -> tuple[str, ...]:
    """The warnings of a whole-session restore about the qubes it cannot restore."""
    return tuple(f"qube {name!r} is a {klass} in the backup: wyng-util-qubes does not restore that class; left out"
                 for name, klass in sorted(settings.unsupported.items()))
