"""The driver contract against the fake driver (in-memory, no gateway)."""

from __future__ import annotations

import pytest

from harness.drivers.fake import FakeNetwork
from harness.inventory import load_inventory
from harness.lab import Lab
from tests.harness.drivers.contract import CONTRACT_INVENTORY, AudioContract, DriverContract


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    inv = load_inventory("contract-fake.yaml", text=CONTRACT_INVENTORY.format(driver="fake", transport="udp"))
    net = FakeNetwork()
    opts = {d.id: {"network": net} for d in inv.devices}
    the_lab = Lab(inv, gateway="none", data_dir=tmp_path_factory.mktemp("fake-lab"), driver_options=opts)
    the_lab.start()
    yield the_lab
    the_lab.stop()


class TestFakeDriver(AudioContract, DriverContract):
    def kill(self, device) -> None:
        device.driver.kill()
