"""Reading one qube through qubesd, for the Admin API adapter (wyngq.qubes.admin).

Each function makes the fewest calls qubesd allows and parses the replies with
wyngq.qubes.replies; qubesadmin's exceptions become QubesError naming the qube
(`qubes_errors`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import qubesadmin
import qubesadmin.exc

from wyngq.errors import QubesError
from wyngq.model import Pool, PoolDriver, PropertyValue, Volume
from wyngq.qubes.replies import BadReply, is_running, parse_get_all, parse_volume_info, split_property, volume_from_info


class qubes_errors:
    """Turn qubesadmin's exceptions into QubesError naming the qube."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, _tb: object) -> None:
        # qubesd's protocol errors (e.g. an unknown label, an empty payload) come as
        # qubesadmin.exc.ProtocolError, an AssertionError rather than a QubesException,
        # and a refused argument (e.g. a volume the qube lacks) as PermissionDenied, neither
        if exc is not None and isinstance(
            exc, qubesadmin.exc.QubesException | qubesadmin.exc.ProtocolError | qubesadmin.exc.PermissionDenied
            | BadReply
        ):
            raise QubesError(f"qube {self.name!r}: {exc}") from exc


def pools(app: qubesadmin.app.QubesBase) -> dict[str, Pool]:
    """Every pool, with the path Wyng takes for it (None for a driver Wyng cannot read)."""
    result = {}
    for pool in app.pools.values():
        config = dict(pool.config)
        driver = pool.driver
        path: str | None = None
        if driver == PoolDriver.FILE_REFLINK:
            path = config.get("dir_path")
        elif driver == PoolDriver.LVM_THIN:
            vg, thin = config.get("volume_group"), config.get("thin_pool")
            path = f"{vg}/{thin}" if vg and thin else None
        result[pool.name] = Pool(pool.name, driver, path)
    return result


def qubes_version() -> str:
    """dom0's Qubes release from /etc/qubes-release, e.g. "4.3"; "" if unknown."""
    try:
        with open("/etc/qubes-release", encoding="utf-8") as handle:
            text = handle.read()
    except OSError:
        return ""
    words = [w for w in text.split() if w[:1].isdigit()]
    return words[0] if words else ""


def running(vm: qubesadmin.vm.QubesVM) -> bool:
    try:
        return is_running(vm.get_power_state())
    except qubesadmin.exc.QubesException:
        return False


def power_state(app: qubesadmin.app.QubesBase, name: str) -> str:
    """The qube's power state from one `admin.vm.CurrentState` (as qubesadmin's
    `get_power_state`, without looking the qube up first)."""
    raw = app.qubesd_call(name, "admin.vm.CurrentState")
    fields = dict(part.split("=", 1) for part in raw.decode("ascii").split() if "=" in part)
    if "power_state" not in fields:
        raise BadReply(f"qubesd's current state of {name!r} has no power_state")
    return fields["power_state"]


def all_properties(app: qubesadmin.app.QubesBase, name: str) -> dict[str, tuple[bool, PropertyValue]]:
    """Every property: (is it at its default, its value in qubesd's type and
    string form). One GetAll call where qubesd offers it, else one Get each."""
    try:
        raw = app.qubesd_call(name, "admin.vm.property.GetAll")
    except qubesadmin.exc.QubesException:
        return {
            prop: split_property(app.qubesd_call(name, "admin.vm.property.Get", prop))
            for prop in app.domains[name].property_list()
        }
    return parse_get_all(raw)


def volume_info(app: qubesadmin.app.QubesBase, name: str, kind: str) -> Volume:
    """One volume, from one `admin.vm.volume.Info` (qubesadmin's Volume makes one per attribute read)."""
    return volume_from_info(kind, parse_volume_info(app.qubesd_call(name, "admin.vm.volume.Info", kind)))


def volumes(vm: qubesadmin.vm.QubesVM, kinds: Iterable[str], known: dict[str, Volume]) -> tuple[Volume, ...]:
    """Each of `kinds` the qube has, read with one `volume.Info` call per volume
    unless `known` has it; what is read is added to `known`. Every class qubesd
    has gives every qube `root`, `private` and `volatile`, so they are asked for
    directly; only if qubesd refuses one is the qube's list of volumes read (one
    `volume.List`), and then only those it lists are read."""
    kinds = tuple(kinds)
    try:
        for kind in kinds:
            if kind not in known:
                known[kind] = volume_info(vm.app, vm.name, kind)
    except (qubesadmin.exc.QubesException, qubesadmin.exc.PermissionDenied):  # e.g. a volume it lacks
        has = set(vm.volumes)
        for kind in kinds:
            if kind in has and kind not in known:
                known[kind] = volume_info(vm.app, vm.name, kind)
    return tuple(known[kind] for kind in sorted(known) if kind in kinds)


def firewall(vm: qubesadmin.vm.QubesVM) -> tuple[str, ...]:
    """The qube's firewall rules. A failure to read them fails the qube's settings
    (QubesError): a backup without them would restore qubesd's accept-all default."""
    try:
        raw = vm.qubesd_call(vm.name, "admin.vm.firewall.Get")
        return tuple(line for line in raw.decode("ascii").splitlines() if line)
    except (qubesadmin.exc.QubesException, UnicodeDecodeError) as err:
        raise QubesError(f"qube {vm.name!r}: cannot read its firewall rules: {err}",
                         hint="fix the qube's firewall (qvm-firewall), or leave it out of the backup") from err


def notes(vm: qubesadmin.vm.QubesVM) -> str | None:
    """The qube's notes (every class has them since Qubes 4.3); None where this
    qubesadmin has none. A failure to read them fails the qube's settings."""
    get_notes = getattr(vm, "get_notes", None)
    if get_notes is None:
        return None
    try:
        return str(get_notes())
    except qubesadmin.exc.QubesException as err:
        raise QubesError(f"qube {vm.name!r}: cannot read its notes: {err}",
                         hint="check the qube's notes (qvm-notes), or leave it out of the backup") from err


def read_into(files: dict[str, bytes], base: str, relpath: str) -> None:
    try:
        with open(os.path.join(base, relpath), "rb") as handle:
            files[relpath] = handle.read()
    except FileNotFoundError:
        return
