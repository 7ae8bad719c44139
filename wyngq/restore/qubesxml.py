"""Read the qubes.xml (and per-qube firewall.xml and notes.txt) of a settings
bundle written by upstream wyng-util-qubes, which has no wyngq manifest.

The bundle comes from the archive: untrusted input. Only the standard library's
XML parser is used, documents with a DTD or entities are refused, sizes are
capped by the bundle reader, and every name that becomes a qube name, tag or
feature is checked here; anything malformed raises QubesXmlError.

Unlike qubesadmin's `Core3Qubes`, device assignments keep the Qubes 4.3 `mode`
and device `identity` (Core3Qubes turns every assignment into `required` with
any device on the port); Qubes 4.2's `required="yes|no"` maps to the modes
`required` / `auto-attach`.
"""

from __future__ import annotations

import re
import string
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from xml.parsers import expat

from wyngq.bundle import BundleError, class_word
from wyngq.model import DeviceAssignment, PropertyValue, QubeClass, QubeSettings, VolumeSettings
from wyngq.names import is_qube_name

REFERENCE_PROPERTIES = frozenset({"netvm", "default_dispvm", "management_dispvm", "audiovm", "guivm", "template"})
MODES = frozenset({"required", "auto-attach", "ask-to-attach", "manual"})
FIREWALL_ORDER = ("action", "proto", "dsthost", "specialtarget", "dstports", "icmptype", "expire")
_SAFE = re.compile(r"[A-Za-z0-9_.:+*,@=/-]{1,200}")
_NUMBER = re.compile(r"[0-9]{1,20}")
_SIGNED = re.compile(r"-?[0-9]{1,20}")
# A qube in qubes.xml takes some 100 elements: these allow a few thousand qubes,
# and keep the parsed tree within some 50 MiB.
MAX_ELEMENTS = 100_000
MAX_ATTRIBUTES = 150_000
_ATTRIBUTE = re.compile(rb"=\s*[\"']")
MAX_DEPTH = 32


class QubesXmlError(BundleError):
    pass


def read_qubes_xml(qubes_xml: bytes, files: Mapping[str, bytes]) -> dict[str, QubeSettings]:
    """Return every qube (but dom0) of `qubes_xml`, with its firewall and notes
    from `files` (the bundle's other members, keyed by path)."""
    return read_domains(qubes_xml, files)[0]


def read_domains(qubes_xml: bytes, files: Mapping[str, bytes]) -> tuple[dict[str, QubeSettings], dict[str, str]]:
    """As read_qubes_xml, and the qubes of a class wyngq does not restore (e.g.
    RemoteVM): name -> class (bundle.class_word)."""
    root = _parse(qubes_xml, "qubes.xml")
    labels = {node.get("id", ""): (node.text or "").strip() for node in root.findall("./labels/label")}
    result: dict[str, QubeSettings] = {}
    unsupported: dict[str, str] = {}
    for element in root.findall("./domains/domain"):
        klass_text = element.get("class", "")
        try:
            klass = QubeClass(klass_text)
        except ValueError:
            name = next((node.text or "" for node in element.findall("./properties/property")
                         if node.get("name") == "name"), "")
            if is_qube_name(name):
                unsupported[name] = class_word(klass_text)
            continue
        if klass is QubeClass.ADMIN:
            continue
        settings = _domain(element, klass, labels, files)
        result[settings.name] = settings
    return result, unsupported


def _parse(data: bytes, what: str) -> ET.Element:
    """Parse one XML document of the bundle, within XML_BUDGET; raise QubesXmlError."""
    refused = QubesXmlError(f"{what} in the settings bundle declares a DTD or entities; refused")
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise refused
    if b"\0" in data:  # UTF-16 and UTF-32 (qubesd writes UTF-8): the byte checks here would not see through them
        raise QubesXmlError(f"{what} in the settings bundle is not in UTF-8 or another ASCII-based encoding")
    # expat builds an element's attributes in one go, before any handler sees them:
    # their number is bounded here, from the bytes (an upper bound: `="` in text counts too).
    for count, _ in enumerate(_ATTRIBUTE.finditer(data), 1):
        if count > MAX_ATTRIBUTES:
            raise QubesXmlError(f"{what} in the settings bundle has more than {MAX_ATTRIBUTES} attributes")
    # Let expat itself say whether the document declares a DTD or entities (in any
    # encoding it reads), before anything expands them, and count elements and depth
    # before any tree is built.
    budget = _Budget(what, refused)
    scanner = expat.ParserCreate()
    scanner.StartDoctypeDeclHandler = budget.refuse
    scanner.EntityDeclHandler = budget.refuse
    scanner.StartElementHandler = budget.start
    scanner.EndElementHandler = budget.end
    try:
        scanner.Parse(data, True)
        return ET.fromstring(data)
    except (expat.ExpatError, ET.ParseError) as err:
        raise QubesXmlError(f"{what} in the settings bundle is not well-formed: {err}") from err


class _Budget:
    """What one document may hold: the tree ET then builds stays bounded in memory."""

    def __init__(self, what: str, refused: QubesXmlError) -> None:
        self.what = what
        self.refused = refused
        self.elements = self.attributes = self.depth = 0

    def refuse(self, *_args: object) -> None:
        raise self.refused

    def start(self, _name: str, attributes: dict[str, str]) -> None:
        self.elements += 1
        self.attributes += len(attributes)
        self.depth += 1
        if self.elements > MAX_ELEMENTS or self.attributes > MAX_ATTRIBUTES or self.depth > MAX_DEPTH:
            raise QubesXmlError(
                f"{self.what} in the settings bundle is larger than wyngq reads "
                f"(more than {MAX_ELEMENTS} elements, {MAX_ATTRIBUTES} attributes or {MAX_DEPTH} levels)"
            )

    def end(self, _name: str) -> None:
        self.depth -= 1


def _domain(element: ET.Element, klass: QubeClass, labels: Mapping[str, str], files: Mapping[str, bytes]
            ) -> QubeSettings:
    properties: dict[str, PropertyValue] = {}
    for node in element.findall("./properties/property"):
        name = _word(node.get("name"), "property name")
        value = node.text or ""
        properties[name] = PropertyValue("vm" if name in REFERENCE_PROPERTIES else "", value)
    name = properties.pop("name", PropertyValue("", "")).value
    if not is_qube_name(name):
        raise QubesXmlError(f"qubes.xml names a qube {name!r}, which is not a valid qube name")
    label_value = properties.pop("label", None)
    label = labels.get(label_value.value, label_value.value) if label_value else None
    template = properties.pop("template", None)
    for reference in REFERENCE_PROPERTIES & set(properties):
        value = properties[reference].value
        if value and not is_qube_name(value) and value != "dom0":
            raise QubesXmlError(f"qube {name!r}: {reference} names {value!r}, not a qube")
    features = {
        _word(node.get("name"), "feature"): node.text or ""
        for node in element.findall("./features/feature")
    }
    tags = tuple(sorted(_word(node.get("name"), "tag") for node in element.findall("./tags/tag")))
    top = "vm-templates" if klass is QubeClass.TEMPLATE else "appvms"
    firewall_file = files.get(f"{top}/{name}/firewall.xml")
    notes_file = files.get(f"{top}/{name}/notes.txt")
    return QubeSettings(
        name=name,
        klass=klass,
        label=label,
        template=template.value or None if template else None,
        properties=properties,
        features=features,
        tags=tags,
        firewall=read_firewall(firewall_file, name) if firewall_file is not None else None,
        notes=notes_file.decode("utf-8", errors="replace") if notes_file is not None else None,
        devices=tuple(_devices(element, name)),
        volumes=tuple(_volumes(element)),
    )


def _devices(element: ET.Element, qube: str) -> list[DeviceAssignment]:
    result = []
    for bus in element.findall("./devices"):
        devclass = _word(bus.get("class"), "device class")
        for node in bus.findall("./device"):
            backend = node.get("backend-domain", "")
            if not is_qube_name(backend) and backend != "dom0":
                raise QubesXmlError(f"qube {qube!r}: a device backend {backend!r} is not a qube name")
            mode = node.get("mode")
            if mode is None:
                required = node.get("required", "yes" if devclass == "pci" else "no")
                mode = "required" if required.lower() in ("yes", "true", "1") else "auto-attach"
            if mode not in MODES:
                raise QubesXmlError(f"qube {qube!r}: unknown device assignment mode {mode!r}")
            identity = node.get("identity")
            options = tuple(sorted(
                (_word(opt.get("name"), "device option"), opt.text or "") for opt in node.findall("./option")
            ))
            result.append(DeviceAssignment(
                devclass=devclass,
                backend=backend,
                port_id=_word(node.get("id"), "device port"),
                device_id=None if identity in (None, "*") else identity,
                mode=mode,
                options=options,
            ))
    return sorted(result, key=lambda d: (d.devclass, d.backend, d.port_id))


def _volumes(element: ET.Element) -> list[VolumeSettings]:
    result = []
    for node in element.findall("./volume-config/volume"):
        kind = node.get("name", "")
        if kind not in ("private", "root", "volatile"):
            continue
        size, keep = node.get("size", "0"), node.get("revisions_to_keep")
        if not _NUMBER.fullmatch(size) or (keep is not None and not _SIGNED.fullmatch(keep)):
            raise QubesXmlError(f"volume {kind!r} has a bad size or revisions_to_keep")
        result.append(VolumeSettings(kind, _word(node.get("pool"), "pool"), int(size),
                                     int(keep) if keep is not None else None))
    return result


def read_firewall(data: bytes, qube: str) -> tuple[str, ...] | None:
    """qubesd's firewall.xml (version 2) as Admin API rule lines; None for the
    pre-4.0 version 1 format, which is not restored."""
    root = _parse(data, f"firewall.xml of {qube}")
    if root.get("version", "1") != "2":
        return None
    rules = []
    for rule in root.findall("./rules/rule"):
        values = {
            _word(p.get("name"), "firewall option"): (p.text or "") for p in rule.findall("./properties/property")
        }
        comment = values.pop("comment", None)
        if comment is not None and not comment.isprintable():
            raise QubesXmlError(f"qube {qube!r}: a firewall comment has control characters")
        unknown = set(values) - set(FIREWALL_ORDER)
        if unknown or "action" not in values:
            raise QubesXmlError(f"qube {qube!r}: a firewall rule has unknown options or no action")
        words = [f"{key}={_word(values[key], 'firewall value')}" for key in FIREWALL_ORDER if key in values]
        if comment:
            words.append(f"comment={firewall_comment(comment)}")
        rules.append(" ".join(words))
    return tuple(rules)


# qubesd's own rule for comments (qubes/firewall.py, Comment): anything else is refused
_COMMENT_SAFE = frozenset(string.ascii_letters + string.digits + ":;,./-_[] ")


def firewall_comment(comment: str) -> str:
    """A firewall comment qubesd accepts: other characters become `_` (qubesd never
    writes them, so only a hand-edited qubes.xml has them; the rule itself stays)."""
    return "".join(c if c in _COMMENT_SAFE else "_" for c in comment)


def _word(value: str | None, what: str) -> str:
    """A name or value that must be one plain word."""
    if value is None or not _SAFE.fullmatch(value):
        raise QubesXmlError(f"qubes.xml has a bad {what}: {value!r}")
    return value
