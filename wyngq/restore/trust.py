"""Which settings of a backup give power, and what a restore does about them (pure).

Whoever can write an archive that Wyng does not authenticate (an unencrypted
one) chooses the settings a restore puts into dom0's qubes. Most of them stay
inside the restored qube (its label, memory, firewall, notes). Some give
power beyond it: a device assignment hands it hardware or another qube's
device, a GUI or audio qube sees its screen or sound, kernel options and the
virtualisation mode decide how Xen builds it, and qrexec policy matches tags
and the properties qubesd gives the policy (docs/security.md).

The rule, for every restore path (CLI, qrexec, Salt):
- from an archive Wyng does not authenticate, every change that gives power
  is a blocking problem (`untrusted_setting`), unless the dom0 user trusts
  the archive's settings explicitly (`--trust-archive-settings`; never over
  qrexec or Salt); with that, each is still listed, as a warning;
- from any archive, a change that reaches beyond the restored qubes (a device
  of dom0 or of a qube not restored with it, a reference to a qube this
  restore does not restore) is a warning (`reaches_beyond`).

Only changes count (the plan's operations, with old and new values): a
setting the qube already has is no new power, and taking one away (a reset,
a removed tag or feature, an unassigned device) gives none.

All classification lives here, in `PROPERTIES`, `FEATURES`,
`FEATURE_PREFIXES`, and the rules for tags and devices below.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from wyngq.restore.model import Op, Problem, StepKind

UNTRUSTED = "untrusted_setting"
REACHES = "reaches_beyond"
REFUSED_CODE = "untrusted_settings"  # the result's code when a restore is refused for them

# Properties whose value gives power, and why (qubesd's qubes/vm/*.py; qrexec
# policy sees tags, type, template_for_dispvms, default_dispvm, guivm).
PROPERTIES: Mapping[str, str] = {
    "netvm": "its network traffic goes through that qube (e.g. around a VPN or firewall qube)",
    "guivm": "that qube shows and controls its windows and input",
    "audiovm": "that qube gets its sound and gives it a microphone",
    "management_dispvm": "disposables of that template manage this qube",
    "default_dispvm": "qrexec's @dispvm: where its calls to a disposable go",
    "kernel": "dom0 boots it with that kernel",
    "kernelopts": "dom0 boots it with those kernel options",
    "virt_mode": "decides how Xen isolates it (pv has no hardware isolation)",
    "bootmode": "chooses kernel options for it",
    "provides_network": "other qubes can then route their network through it",
    "template_for_dispvms": "qrexec can then start disposables of it (@dispvm:)",
    "devices_denied": "decides which devices may be attached to it",
}

# Features read by dom0 (qubesd's extensions, its libvirt template, the GUI
# daemon, qrexec's policy), and why; every other feature is data for the qube.
FEATURES: Mapping[str, str] = {
    "internal": "hidden from menus and qrexec's prompts",
    "gui": "whether dom0's GUI daemon serves it",
    "qrexec": "whether dom0 starts qrexec with it",
    "input-dom0-proxy": "dom0 proxies input devices for it",
    "tag-created-vm-with": "tags every qube it creates (qrexec policy reads tags)",
    "set-created-guivm": "sets the GUI qube of every qube it creates",
    "qemu-extra-args": "extra arguments to its device model",
    "linux-stubdom": "how dom0 builds its device model",
    "stubdom-qrexec": "qrexec in its device model",
    "audio-model": "an emulated audio device in its device model",
    "video-model": "an emulated video device in its device model",
    "uefi": "how dom0 boots it",
    "no-default-kernelopts": "dom0 boots it without the default kernel options",
    "apparmor": "its kernel options",
    "selinux": "its kernel options",
    "pci-e820-host": "its PCI memory map comes from the host",
    "rpc-clipboard": "clipboard over qrexec",
    "updates-proxy-setup": "serves as updates proxy for other qubes",
    "preload-dispvm-max": "dom0 keeps disposables of it running",
}
FEATURE_PREFIXES: Mapping[str, str] = {
    "service.": "services in it that dom0 and other qubes rely on (e.g. service.guivm)",
    "gui-": "how dom0's GUI daemon treats its windows",
    "guivm-": "how a GUI qube presents its windows",
    "boot-mode.": "kernel options of its boot modes",
}
TAG_REASON = "qrexec policy grants calls by tag (@tag:NAME)"

_SWITCHES = frozenset({"provides_network", "template_for_dispvms"})
_QUBES = frozenset({"netvm", "guivm", "audiovm", "management_dispvm", "default_dispvm"})
_PROPERTY_STEPS = (StepKind.PROPERTIES, StepKind.REFERENCES, StepKind.CAPABILITIES, StepKind.CAPABILITIES_OFF)


def power(kind: StepKind, op: Op) -> str | None:
    """Why this change gives power (None: it gives none)."""
    if kind in _PROPERTY_STEPS and op.verb == "set":
        if op.key in _SWITCHES and op.value != "True":
            return None  # switched off: no power
        if op.key in _QUBES and op.value in ("", "dom0"):
            return None  # none, or dom0 itself
        return PROPERTIES.get(op.key)
    if kind is StepKind.FEATURES and op.verb == "set":
        return feature_power(op.key)
    if kind is StepKind.TAGS and op.verb == "add":
        return TAG_REASON
    if kind is StepKind.DEVICES and op.verb == "assign" and op.device is not None:
        what = "real hardware, with DMA" if op.device.devclass == "pci" else "a device"
        return f"its backend {op.device.backend!r} gives it {what}"
    return None


def feature_power(name: str) -> str | None:
    if name in FEATURES:
        return FEATURES[name]
    return next((why for prefix, why in FEATURE_PREFIXES.items() if name.startswith(prefix)), None)


def reach(kind: StepKind, op: Op, restored: Collection[str]) -> str | None:
    """How this change reaches beyond the qubes `restored` (target names) here."""
    if kind is StepKind.DEVICES and op.verb == "assign" and op.device is not None:
        backend = op.device.backend
        if backend == "dom0":
            return "a device of dom0"
        if backend not in restored:
            return f"a device of {backend!r}, which this restore does not restore"
        return None
    reference = kind is StepKind.REFERENCES and op.verb == "set" and op.key != "template"
    if reference and op.value not in (None, "", "dom0") and op.value not in restored:
        return f"refers to {op.value!r}, which this restore does not restore"
    return None


def review(
    ops: Mapping[StepKind, tuple[Op, ...]], restored: Collection[str], *, authenticated: bool, trusted: bool
) -> tuple[Problem, ...]:
    """The trust problems of one qube's operations: `authenticated` says Wyng
    authenticates the archive, `trusted` that the user trusts its settings anyway
    (`--trust-archive-settings`)."""
    problems = []
    for kind, kind_ops in ops.items():
        for op in kind_ops:
            why = None if authenticated else power(kind, op)
            beyond = reach(kind, op, restored)
            if why is None and beyond is None:
                continue
            what = describe(kind, op)
            if why is None:
                problems.append(Problem(REACHES, f"{what}: {beyond}", "restored as in the backup",
                                        setting=_setting(kind, op), old=op.old, new=op.value))
                continue
            message = f"{what} from an archive Wyng does not authenticate: {why}" + (f"; {beyond}" if beyond else "")
            resolution = ("restored as in the backup (--trust-archive-settings)" if trusted else
                          "refused: restore from an encrypted archive, or, if you trust whoever can write this "
                          "archive, in dom0 with --trust-archive-settings")
            problems.append(Problem(UNTRUSTED, message, resolution, blocking=not trusted,
                                    setting=_setting(kind, op), old=op.old, new=op.value))
    return tuple(problems)


def describe(kind: StepKind, op: Op) -> str:
    """The change in words, with its old and new value."""
    if kind is StepKind.DEVICES and op.device is not None:
        return f"{op.device.devclass} device {op.value} assigned"
    if kind is StepKind.TAGS:
        return f"tag {op.key!r} added"
    noun = "feature" if kind is StepKind.FEATURES else "property"
    old = ("unset" if kind is StepKind.FEATURES else "default") if op.old is None else repr(op.old)
    return f"{noun} {op.key} {old} -> {op.value!r}"


def _setting(kind: StepKind, op: Op) -> str:
    prefix = {StepKind.FEATURES: "feature", StepKind.TAGS: "tag", StepKind.DEVICES: "device"}.get(kind, "property")
    return f"{prefix}:{op.key}"
