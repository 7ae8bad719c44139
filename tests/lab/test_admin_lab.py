"""Lab tier: AdminQubes reads volumes and power states with its own Admin API calls
(one `volume.Info` per volume, one `admin.vm.List` for every power state); what it
reads must be what qubesadmin's own objects say, for each class of qube."""

from __future__ import annotations

from typing import Any

import pytest

from tests.lab.conftest import Lab
from wyngq.model import QubeClass, Volume, VolumeSettings

pytestmark = pytest.mark.lab


def expected_volumes(vm: Any) -> tuple[Volume, ...]:
    kinds = QubeClass(vm.klass).backed_up_volumes
    return tuple(
        Volume(kind, v.pool, v.vid, v.size, v.save_on_stop, v.revisions_to_keep)
        for kind, v in sorted(vm.volumes.items()) if kind in kinds
    )


def test_volumes_and_power_states_are_what_qubesadmin_says(lab: Lab) -> None:
    from wyngq.qubes.admin import AdminQubes

    tpl = lab.create("tpl", "TemplateVM")
    app = lab.create("app", "AppVM", template=tpl)
    std = lab.create("std", "StandaloneVM")
    app.template_for_dispvms = True
    disp = lab.create("disp", "DispVM", template=app)
    lab.fill(std, "private", b"standalone" * 1000)
    app.volumes["private"].revisions_to_keep = 3
    std.start()
    port = AdminQubes()

    for vm in (tpl, app, std, disp):
        assert port.volumes(vm.name) == expected_volumes(vm)
        assert port.qube(vm.name).volumes == expected_volumes(vm)
        assert port.settings(vm.name).volumes == tuple(
            VolumeSettings(kind, v.pool, v.size, v.revisions_to_keep)
            for kind, v in sorted(vm.volumes.items()) if kind in QubeClass(vm.klass).restored_volumes
        )
    assert port.volumes(disp.name) == ()  # a disposable's data is not kept
    assert {v.kind for v in port.volumes(tpl.name)} == {"private", "root"}
    assert next(v for v in port.volumes(app.name) if v.kind == "private").revisions_to_keep == 3

    listed, overview = port.list_qubes(), port.overview()
    for vm in (tpl, app, std, disp):
        running = vm.get_power_state() not in ("Halted", "NA")
        assert listed[vm.name] == (QubeClass(vm.klass), running)
        assert overview[vm.name].running is running
        assert port.qube(vm.name).running is running
    assert listed[std.name][1] is True and listed[app.name][1] is False
