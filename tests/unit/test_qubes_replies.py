"""Parsing qubesd's replies (wyngq.qubes.replies), against replies recorded from
the lab's real qubesd (qubes-core-admin 1ad5f9b)."""

from __future__ import annotations

import pytest

from wyngq.model import PropertyValue, Volume
from wyngq.qubes.replies import (
    BadReply,
    Listed,
    is_running,
    parse_get_all,
    parse_vm_list,
    parse_volume_info,
    split_property,
    volume_from_info,
)

VM_LIST = (
    b"dom0 class=AdminVM state=Running uuid=00000000-0000-0000-0000-000000000000\n"
    b"xt-app class=AppVM state=Halted uuid=e1c129fe-2073-44fd-9e11-f319d75f97f7\n"
    b"xt-tpl class=TemplateVM state=Paused uuid=006da1b3-45eb-4230-b73b-177c0ed39b56\n"
)

VOLUME_INFO = (
    b"pool=varlibqubes\nvid=appvms/xt-app/private\nsize=2147483648\nusage=4194304\nrw=True\nsource=\n"
    b"path=/mnt/wyngq-lab-btrfs/var-lib-qubes/appvms/xt-app/private-dirty.img\nsave_on_stop=True\n"
    b"snap_on_start=False\nrevisions_to_keep=1\nephemeral=False\nis_outdated=False\n"
)

GET_ALL = (
    b"autostart default=True type=bool False\n"
    b"backup_timestamp default=False type=int 1795710420\n"
    b"dns default=True type=str \n"
    b"label default=False type=label red\n"
    b"kernelopts default=False type=str a\\nb \\\\ c\n"
)


def test_vm_list_gives_class_and_power_state() -> None:
    assert parse_vm_list(VM_LIST) == {
        "dom0": Listed("AdminVM", "Running"),
        "xt-app": Listed("AppVM", "Halted"),
        "xt-tpl": Listed("TemplateVM", "Paused"),
    }


def test_vm_list_without_state_leaves_it_unknown() -> None:
    # qubesd before 4.1, and qubesadmin's own cache, list no power state
    assert parse_vm_list(b"work class=AppVM\n\n") == {"work": Listed("AppVM", None)}


@pytest.mark.parametrize(("state", "running"), [("Halted", False), ("NA", False), ("Running", True),
                                                 ("Paused", True), ("Transient", True), ("Halting", True)])
def test_only_halted_or_absent_is_not_running(state: str, running: bool) -> None:
    assert is_running(state) is running


def test_volume_info_is_every_key() -> None:
    info = parse_volume_info(VOLUME_INFO)
    assert (info["pool"], info["vid"], info["size"], info["save_on_stop"], info["revisions_to_keep"]) == (
        "varlibqubes", "appvms/xt-app/private", "2147483648", "True", "1")
    assert info["source"] == ""
    assert len(info) == 12


def test_get_all_unescapes_values_and_keeps_defaults_apart() -> None:
    props = parse_get_all(GET_ALL)
    assert props["autostart"] == (True, PropertyValue("bool", "False"))
    assert props["backup_timestamp"] == (False, PropertyValue("int", "1795710420"))
    assert props["dns"] == (True, PropertyValue("str", ""))
    assert props["label"] == (False, PropertyValue("label", "red"))
    assert props["kernelopts"] == (False, PropertyValue("str", "a\nb \\ c"))


def test_property_get_reply() -> None:
    assert split_property(b"default=False type=vm sys-firewall") == (False, PropertyValue("vm", "sys-firewall"))


def test_volume_from_info() -> None:
    assert volume_from_info("private", parse_volume_info(VOLUME_INFO)) == Volume(
        "private", "varlibqubes", "appvms/xt-app/private", 2147483648, True, 1)


@pytest.mark.parametrize("drop", ["pool", "vid", "size", "save_on_stop", "revisions_to_keep"])
def test_volume_from_an_incomplete_info_is_a_bad_reply(drop: str) -> None:
    info = {k: v for k, v in parse_volume_info(VOLUME_INFO).items() if k != drop}
    with pytest.raises(BadReply, match="private volume"):
        volume_from_info("private", info)


def test_volume_from_a_garbled_size_is_a_bad_reply() -> None:
    with pytest.raises(BadReply):
        volume_from_info("root", {**parse_volume_info(VOLUME_INFO), "size": ""})
