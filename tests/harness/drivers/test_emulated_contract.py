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

    def test_tls_to_the_gateway_verifies_its_lab_certificate(self, lab):
        """The caller uses TLS (inventory default): the handshake verified the gateway against the lab CA."""
        events = lab.device("caller").driver.worker.events("transport_state")
        tls = [e.data["tls"] for e in events if e.data.get("tls")]
        assert tls and tls[0]["established"] and tls[0]["verify_status"] == 0


def test_hung_worker_is_detected_within_5s(tmp_path):
    """A worker that stops (SIGSTOP: alive but silent) is an infrastructure error within 5 s."""
    import time

    from harness.protocols import CallControl, InfrastructureError

    inv = load_inventory("hang.yaml", text=CONTRACT_INVENTORY.format(driver="emulated", transport="udp"))
    lab = Lab(inv, gateway="embedded", data_dir=tmp_path, media=None, control_api=False, devices=["pager"])
    with lab:
        pager = lab.device("pager")
        cc = pager[CallControl]
        pid = pager.driver.pid
        os.kill(pid, signal.SIGSTOP)
        try:
            t0 = time.monotonic()
            with pytest.raises(InfrastructureError, match="silent") as exc:
                cc.wait_for_incoming(timeout=30)
            assert time.monotonic() - t0 < 5.0
            assert exc.value.log_path and exc.value.log_tail
        finally:
            os.kill(pid, signal.SIGCONT)
