"""``--slowness`` reaches the vendor drivers' read-back waits: the lab hands its factor to every driver it creates
(driver option ``slowness``), and the API drivers scale ``OP_TIMEOUT`` by it, before ``$SIPGW_SLOWNESS``."""

from __future__ import annotations

import pytest

import harness.lab as lab_module
from harness.drivers.physical.api_driver import OP_TIMEOUT
from harness.drivers.physical.audiocodes_mp import AudioCodesMpDriver
from harness.inventory import load_inventory
from harness.lab import Lab
from harness.protocols import NotApplicable
from tests.harness.drivers.recorded import context


def test_the_slowness_option_scales_the_read_back_wait_before_the_environment(monkeypatch):
    monkeypatch.setenv("SIPGW_SLOWNESS", "2")
    drv = AudioCodesMpDriver(context("AudioCodes", "MP114", "6.60A.367.001", slowness=3.5))
    assert drv.op_timeout == pytest.approx(OP_TIMEOUT * 3.5)
    assert AudioCodesMpDriver(context("AudioCodes", "MP114", "6.60A.367.001")).op_timeout == \
        pytest.approx(OP_TIMEOUT * 2)
    assert AudioCodesMpDriver(context("AudioCodes", "MP114", "6.60A.367.001", slowness=3.5,
                                      op_timeout_s=1.5)).op_timeout == 1.5


def test_the_lab_hands_its_slowness_to_the_drivers_it_creates(monkeypatch, tmp_path):
    seen = []

    def capture(name):
        def make(ctx):
            seen.append(ctx.options)
            raise NotApplicable("captured")  # the lab marks the device blocked and starts nothing
        return make

    monkeypatch.setattr(lab_module, "driver_class", capture)
    inv = load_inventory("examples/simulated-physical-lab.yaml")
    the_lab = Lab(inv, gateway="192.0.2.5:5060", data_dir=tmp_path, slowness=4.0,
                  driver_options={"poly-vvx450": {"slowness": 1.5}})
    the_lab._provision_users()  # the device handles only: no gateway, no control API, nothing started
    for device_id in ("audiocodes-mp114", "poly-vvx450"):
        the_lab._start_device(the_lab.devices[device_id])
        assert the_lab.devices[device_id].blocked_reason == "cannot be driven: captured"
    assert [o["slowness"] for o in seen] == [4.0, 1.5]  # a device's own driver option wins
