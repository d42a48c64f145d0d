"""Offboarding of stale devices.

Seed: "Paired (signed-in) devices will be offboarded if not connected for 30 days, and unpaired (signed-out)
devices after 14 days. An offboarded device can be re-onboarded after a factory reset."

The device is disconnected (its registrations withdrawn, as when it is unplugged), the gateway's clock is moved
to one hour before the limit and to the limit, and the offboarding sweep is run each time. Verdicts are observed:
the pair state the gateway reports, the device's configuration fetch and REGISTER refused with the reason, and the
device onboarding again after a factory reset.
"""

from __future__ import annotations

import contextlib

import pytest

from harness.protocols import CallControl, OperationFailed, SignInState, StateError
from test_suites.signin_support import (  # noqa: F401  (fixtures)
    DAY,
    HOUR,
    provisioned,
    records_http,
    representative,
)


def disconnect(p) -> None:
    """Unplug: the device withdraws every registration (its lab lines and its provisioned account)."""
    calls = p.device[CallControl]
    for line in range(len(p.device.lines)):
        with contextlib.suppress(OperationFailed, StateError):  # a line that holds no registration
            calls.unregister(line)
    p.prov.withdraw()  # the provisioned account's un-REGISTER
    assert not p.lab.control.device(p.key)["registered"], "the gateway still holds a registration of the device"


def offboarded_then_back(p, sipgw_settings) -> None:
    """Refused with the reason until a factory reset; onboarded (signed out) again after it."""
    info = p.prov.resync()
    assert info.status == "failed" and "403" in (info.detail or "") and "factory-reset" in (info.detail or ""), info
    assert not p.lab.control.device(p.key)["registered"]
    if p.device.identity is not None and p.device.identity.mac:  # the gateway knows the device by its SIP UA too
        reg = p.device[CallControl].register(0, timeout=sipgw_settings.deadline(10))
        assert reg.status_code == 403, f"an offboarded device's REGISTER was answered {reg.status_code} {reg.reason}"
    p.prov.factory_reset()
    back = p.prov.provision(p.url)
    assert back.status == "applied" and back.config_version == "signed_out", back
    assert p.state() == "unpaired"


@pytest.mark.feature("offboard_stale_devices")
@records_http
def test_paired_device_offboarded_after_30_days(representative, provisioned, sipgw_settings):  # noqa: F811
    """Signed in, then not connected: 29 d 23 h later it stays; at 30 d it is offboarded.

    Gateway-side (the sweep's boundaries on the gateway's clock): run once, on the run's representative device.
    Every device's own factory reset and onboarding from its provisioning format is checked by the provisioning
    suite."""
    p = provisioned
    user, _, _ = p.user(common_area=True)
    p.api.remote_sign_in(p.key, user)
    assert p.signin.wait_signed_in(timeout=sipgw_settings.deadline(10)).state is SignInState.SIGNED_IN
    disconnect(p)
    p.lab.control.advance_clock(29 * DAY + 23 * HOUR)
    p.api.sweep()
    assert p.state() == "paired", "offboarded before 30 days"
    p.lab.control.advance_clock(HOUR)
    p.api.sweep()  # the sweeper also runs every second; either one offboards it
    assert p.state() == "offboarded", "still onboarded after 30 days without a connection"
    p.lab.control.advance_clock(-30 * DAY)
    offboarded_then_back(p, sipgw_settings)


@pytest.mark.feature("offboard_stale_devices")
@records_http
def test_unpaired_device_offboarded_after_14_days(representative, provisioned, sipgw_settings):  # noqa: F811
    """Signed out, then not connected: 13 d 23 h later it stays; at 14 d it is offboarded.

    Gateway-side: run once, on the run's representative device (as the 30-day test)."""
    p = provisioned
    disconnect(p)
    p.lab.control.advance_clock(13 * DAY + 23 * HOUR)
    p.api.sweep()
    assert p.state() == "unpaired", "offboarded before 14 days"
    p.lab.control.advance_clock(HOUR)
    p.api.sweep()
    assert p.state() == "offboarded", "still onboarded after 14 days without a connection"
    p.lab.control.advance_clock(-14 * DAY)
    offboarded_then_back(p, sipgw_settings)


@pytest.mark.feature("offboard_stale_devices")
@records_http
def test_offboarded_device_refused_until_factory_reset(provisioned, sipgw_settings):  # noqa: F811
    """Every device: once offboarded (signed out, not connected for 14 days), its configuration fetch and its
    REGISTER are refused with the reason, and after its own factory reset it onboards again, signed out.

    The sweep's day boundaries are gateway-side and checked on the representative device by the two tests above;
    what depends on the device (how it shows the refusal, its factory reset, its provisioning format) is checked
    here on each one."""
    p = provisioned
    disconnect(p)
    p.lab.control.advance_clock(14 * DAY)
    p.api.sweep()
    assert p.state() == "offboarded", "still onboarded 14 days after the signed-out device was last connected"
    p.lab.control.advance_clock(-14 * DAY)
    offboarded_then_back(p, sipgw_settings)
