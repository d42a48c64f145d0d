"""``device[Power]`` and ``device[Console]``: the labgrid resources the inventory names (real labgrid targets and
drivers, not activated), else the driver's own, else NotApplicable saying what the inventory entry lacks."""

from __future__ import annotations

import pytest

from harness.inventory import load_inventory
from harness.lab import LabDevice
from harness.labgrid_support import LabgridConsole, LabgridPower, LabgridSession
from harness.protocols import CallControl, Console, NotApplicable, Power, PowerState

pytest.importorskip("labgrid", reason="the labgrid extra is part of the dev dependencies")

INVENTORY = """\
gateway:
  mode: embedded
{labgrid}devices:
  - id: desk-phone
    vendor: Poly
    model: VVX 450
    firmware: 5.9.5.0614
    driver: emulated
{extra}    lines:
      - {{number: "+14255550111", name: Blake Rivera}}
"""

ENV = """\
targets:
  desk:
    resources:
      RawSerialPort: {port: "/dev/null", speed: 115200}
    drivers:
      ManualPowerDriver: {}
      SerialDriver: {}
"""


class PlainDriver:
    """A driver with neither power nor a console of its own."""


class OwnPower(Power):
    def __init__(self) -> None:
        self.cycles = 0

    def power_on(self) -> PowerState:
        return PowerState.ON

    def power_off(self) -> PowerState:
        return PowerState.OFF

    def power_cycle(self) -> PowerState:
        self.cycles += 1
        return PowerState.ON

    def power_state(self) -> PowerState:
        return PowerState.ON


def device(tmp_path, driver, *, labgrid: bool) -> LabDevice:
    (tmp_path / "env.yaml").write_text(ENV)
    text = INVENTORY.format(
        labgrid="labgrid: {env: env.yaml}\n" if labgrid else "",
        extra="    power: {labgrid: {target: desk}}\n    console: {labgrid: {target: desk}}\n" if labgrid else "")
    inv = load_inventory(tmp_path / "lab.yaml", text=text)
    dev = LabDevice(inv.device("desk-phone"), (), None)
    dev.driver = driver
    dev.labgrid = LabgridSession.from_inventory(inv)
    return dev


def test_labgrid_resources_are_the_devices_power_and_console(tmp_path):
    dev = device(tmp_path, OwnPower(), labgrid=True)
    try:
        power, console = dev[Power], dev[Console]
        assert isinstance(power, LabgridPower) and type(power.driver).__name__ == "ManualPowerDriver"
        assert power.power_state() is PowerState.UNKNOWN  # a person switches it: nothing is read back
        assert isinstance(console, LabgridConsole) and type(console.driver).__name__ == "SerialDriver"
        assert dev[Console] is console  # one console (and its log) per device
        assert dev.driver.cycles == 0  # the outlet, not the driver, powers a device with a labgrid resource
    finally:
        dev.labgrid.close()


def test_without_labgrid_resources_the_drivers_own_power(tmp_path):
    own = OwnPower()
    dev = device(tmp_path, own, labgrid=False)
    assert dev[Power] is own and dev[Power].power_cycle() is PowerState.ON and own.cycles == 1


@pytest.mark.parametrize(("protocol", "key"), [(Power, "power"), (Console, "console")])
def test_without_either_not_applicable_says_what_to_add(tmp_path, protocol, key):
    dev = device(tmp_path, PlainDriver(), labgrid=False)
    with pytest.raises(NotApplicable) as err:
        dev[protocol]
    reason = err.value.reason
    assert f"names no {key}: resource" in reason and "labgrid: {env: FILE}" in reason
    assert "PlainDriver driver has no" in reason and err.value.device_id == "desk-phone"
    with pytest.raises(NotApplicable, match="has no CallControl capability"):
        dev[CallControl]  # other capabilities still come from the driver alone


def test_labgrid_resource_without_a_session_is_not_applicable(tmp_path):
    dev = device(tmp_path, OwnPower(), labgrid=True)
    dev.labgrid.close()
    dev.labgrid = None
    with pytest.raises(NotApplicable, match="labgrid target 'desk', but the lab has no labgrid session"):
        dev[Power]
