"""The driver contract against the emulated driver: pjsua2 worker processes through the embedded gateway."""

from __future__ import annotations

import os
import signal

import pytest

from harness.inventory import load_inventory
from harness.lab import Lab
from tests.harness.drivers.contract import CONTRACT_INVENTORY, AudioContract, DriverContract


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    inv = load_inventory("contract-emulated.yaml",
                         text=CONTRACT_INVENTORY.format(driver="emulated", transport="tls"))
    the_lab = Lab(inv, gateway="embedded", data_dir=tmp_path_factory.mktemp("emulated-lab"), media=None,
                  control_api=False)
    the_lab.start()
    pids = []
    try:
        for dev_id in ("caller", "callee", "pager"):
            pids.append(the_lab.device(dev_id).driver.pid)
        yield the_lab
    finally:
        the_lab.stop()
    for pid in pids:  # no orphans: every worker process is gone after stop()
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


class TestEmulatedDriver(AudioContract, DriverContract):
    def kill(self, device) -> None:
        os.kill(device.driver.pid, signal.SIGKILL)

    def test_user_agent_seen_by_the_gateway(self, lab):
        """The gateway's registrar recorded the vendor User-Agent the worker sent (observed, not configured)."""
        seen = {d.user_agent for d in lab.gateway.devices.all()}
        assert lab.device("caller").identity.user_agent in seen
        assert any(ua and ua.startswith("Yealink SIP-T46S 66.86.0.15") for ua in seen)
