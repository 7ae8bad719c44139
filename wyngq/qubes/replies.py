"""qubesd's replies to the few Admin API calls wyngq reads with, parsed once.

Each function takes the raw reply bytes of one call. They are pure (no
qubesadmin here), so CI checks them against replies recorded from a real
qubesd. Reading with these calls instead of qubesadmin's attributes keeps a
restore's Admin API calls per qube small: qubesadmin asks qubesd again for
every volume attribute (one `volume.Info` each) and every power state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from wyngq.model import PropertyValue, Volume


class BadReply(ValueError):
    """A reply of qubesd that lacks what wyngq reads from it."""


@dataclass(frozen=True)
class Listed:
    """One qube of `admin.vm.List`: its class and, where qubesd says, its power state."""

    klass: str
    state: str | None


def parse_vm_list(raw: bytes) -> dict[str, Listed]:
    """`admin.vm.List` from dom0: `NAME class=C state=S uuid=U` per line
    (Qubes 4.1 and later add `state`; older fields are optional)."""
    result = {}
    for line in raw.decode("ascii").splitlines():
        if not line:
            continue
        name, *fields = line.split(" ")
        props = dict(field.split("=", 1) for field in fields if "=" in field)
        result[name] = Listed(props.get("class", ""), props.get("state"))
    return result


def is_running(state: str) -> bool:
    """Whether a power state means the qube is not (or not yet fully) halted."""
    return state not in ("Halted", "NA")


def parse_volume_info(raw: bytes) -> dict[str, str]:
    """`admin.vm.volume.Info`: one `key=value` per line (pool, vid, size,
    save_on_stop, revisions_to_keep, …)."""
    return dict(line.split("=", 1) for line in raw.decode("utf-8").splitlines() if "=" in line)


def volume_from_info(kind: str, info: Mapping[str, str]) -> Volume:
    """A `Volume` from a parsed `volume.Info`; BadReply naming what is missing or garbled."""
    try:
        return Volume(
            kind=kind,
            pool=info["pool"],
            vid=info["vid"],
            size=int(info["size"]),
            save_on_stop=info["save_on_stop"] == "True",
            revisions_to_keep=int(info["revisions_to_keep"]),
        )
    except (KeyError, ValueError) as err:
        raise BadReply(f"qubesd's description of the {kind} volume is incomplete or garbled ({err})") from err


def parse_get_all(raw: bytes) -> dict[str, tuple[bool, PropertyValue]]:
    """`admin.vm.property.GetAll`: one `NAME default=B type=T VALUE` line per
    property, with newlines and backslashes in values escaped."""
    result = {}
    for line in raw.split(b"\n"):
        if not line:
            continue
        name, _, rest = _unescape(line).partition(b" ")
        result[name.decode()] = split_property(rest)
    return result


def split_property(text: bytes) -> tuple[bool, PropertyValue]:
    """`admin.vm.property.Get`: `default=B type=T VALUE` -> (at its default, value)."""
    default, prop_type, value = text.split(b" ", 2)
    return (
        default == b"default=True",
        PropertyValue(prop_type.decode().removeprefix("type="), value.decode("utf-8")),
    )


def _unescape(line: bytes) -> bytes:
    out = bytearray()
    escaped = False
    for char in line:
        if escaped:
            out.append(0x0A if char == ord("n") else char)
            escaped = False
        elif char == ord("\\"):
            escaped = True
        else:
            out.append(char)
    return bytes(out)
