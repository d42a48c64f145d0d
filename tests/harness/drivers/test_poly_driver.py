"""The poly-rest driver on recorded Poly UC Software REST replies: identity read-back compared with the
inventory, call-status parsing, status codes turned into clear errors, the bootstrap probe."""

from __future__ import annotations

import pytest

from harness.drivers.physical.api_driver import CredentialError, endpoint_from
from harness.drivers.physical.poly_rest import PolyRestDriver
from harness.drivers.registry import driver_class
from harness.drivers.vendors import (
    DefaultPasswordRefused,
    DeviceBusy,
    Endpoint,
    InvalidParameters,
    LineNotRegistered,
    NoSuchCall,
    NoSuchLine,
    NotAllowed,
    VendorApiError,
    poly,
)
from harness.protocols import CallState, NotApplicable
from harness.resources import Connection, Credentials
from tests.harness.drivers.recorded import Replay, context, reply

BASE = "https://192.0.2.10"


def session(routes) -> tuple[poly.Session, Replay]:
    rp = Replay(routes)
    return poly.connect(Endpoint(BASE, "Polycom", "lab-pass", True, 2.0, {"transport": rp.transport})), rp


def test_registered_under_its_name():
    assert driver_class("poly-rest") is PolyRestDriver


def test_identity_from_device_info_and_basic_auth():
    s, rp = session({("GET", "/api/v2/mgmt/device/info"): (200, reply("poly", "device_info.json"))})
    ident = poly.identity(s)
    assert (ident.vendor, ident.model, ident.firmware, ident.mac) == ("Poly", "Trio 8800", "7.2.2.1094",
                                                                       "64167f0a1b2c")
    assert rp.requests[0].headers["Authorization"].startswith("Basic ")
    assert "lab-pass" not in str(s.log)  # the exchange log never holds a credential


def test_identity_mismatch_is_reported_and_the_verdict_uses_the_device(monkeypatch):
    rp = Replay({("GET", "/api/v2/mgmt/device/info"): (200, reply("poly", "device_info.json"))})
    monkeypatch.setenv("POLY_PASS", "lab-pass")
    ctx = context("Poly", "Trio 8800", "7.2.2.1000", connection=Connection(protocol="https", host="192.0.2.10",
                                                                            verify_tls=True),
                  credentials=Credentials.model_validate({"password": {"env": "POLY_PASS"}}),
                  api_options={"transport": rp.transport})
    drv = PolyRestDriver(ctx)
    drv.activate()
    try:
        ident = drv.identity()
        assert drv.identity_check == ["inventory says firmware 7.2.2.1000, the device reports 7.2.2.1094"]
        from device_profiles.verdict import check_firmware

        assert drv.read_back_verdict() == check_firmware("Trio 8800", "7.2.2.1094", vendor="Poly")
        assert ident.firmware == "7.2.2.1094"
    finally:
        drv.deactivate()


def test_call_status_states_hold_and_mute():
    s, _ = session({("GET", "/api/v2/webCallControl/callStatus"): (200, reply("poly", "call_status.json"))})
    out, held = poly.calls(s)
    assert (out.handle, out.state, out.direction, out.remote, out.local_hold) == (
        "0x16f4a2c0", CallState.CONFIRMED, "out", "+14255550121", False)
    assert held.remote_hold and not held.local_hold and held.muted and held.line == 2 and held.direction == "in"


def test_sip_status_lines():
    s, _ = session({("GET", "/api/v1/webCallControl/sipStatus"): (200, reply("poly", "sip_status.json"))})
    l1, l2 = poly.lines(s)
    assert l1.registered and l1.status_code == 200 and l1.expires == 3600
    assert not l2.registered and l2.status_code == 403


@pytest.mark.parametrize(("file", "error", "text"), [
    ("status_4010.json", DefaultPasswordRefused,
     "4010 (default password not allowed: change the factory admin password first)"),
    ("status_4007.json", NoSuchCall, "4007 (the call does not exist)"),
])
def test_status_codes_become_clear_typed_errors(file, error, text):
    s, _ = session({("POST", "/api/v1/callctrl/endCall"): (403, reply("poly", file))})
    with pytest.raises(error) as exc:
        poly.hangup(s, "0x1")
    assert text in str(exc.value) and exc.value.where == "/api/v1/callctrl/endCall" and exc.value.code == file[7:11]


@pytest.mark.parametrize(("status", "error"), [("4000", InvalidParameters), ("4001", DeviceBusy),
                                               ("4002", LineNotRegistered), ("4003", NotAllowed),
                                               ("4005", NoSuchLine), ("5000", VendorApiError)])
def test_every_status_code_has_its_error(status, error):
    s, _ = session({("POST", "/api/v1/callctrl/dial"): (409, {"Status": status})})
    with pytest.raises(error, match=f"Status {status}"):
        poly.dial(s, "+14255550121")


def test_4004_is_not_applicable():
    s, _ = session({("POST", "/api/v1/callctrl/holdCall"): (501, {"Status": "4004"})})
    with pytest.raises(NotApplicable, match="not supported"):
        poly.hold(s, "0x1")


def test_probe_names_what_bootstrap_must_fix():
    s, _ = session({})
    assert poly.probe(s).problem == "api_disabled"  # plain 404: apps.restapi.enabled=0
    s, _ = session({("GET", "/api/v2/mgmt/device/info"): (403, reply("poly", "status_4010.json"))})
    assert poly.probe(s).problem == "default_password"
    s, _ = session({("GET", "/api/v2/mgmt/device/info"): (401, "401 Unauthorized")})
    assert poly.probe(s).problem == "auth"


def test_dial_body_and_blind_transfer_body():
    s, rp = session({("POST", "/api/v1/callctrl/dial"): (200, {"Status": "2000"}),
                     ("POST", "/api/v1/callctrl/transferCall"): (200, {"Status": "2000"})})
    assert poly.dial(s, "+14255550121", 2) is None  # only an acknowledgement
    poly.transfer(s, "0x1", "+14255550199")
    import json

    posts = [r for r in rp.requests if r.method == "POST"]  # (dial reads the placed-call log first: 404 here)
    assert json.loads(posts[0].content) == {"data": {"Dest": "+14255550121", "Line": "2", "Type": "TEL"}}
    assert json.loads(posts[1].content) == {"data": {"Ref": "0x1", "TransferDest": "+14255550199"}}
    assert s.pending is None  # no call log on this firmware: the call is looked for live only


def test_a_dialled_call_that_ended_at_once_is_found_in_the_placed_log():
    """*30* answered at once with 603: never in callStatus, but in callLogs/placed (once, after the dial)."""
    old = {"LineNumber": "1", "Duration": "", "StartTime": "2026-01-01T09:00:00", "RemotePartyName": "*30*",
           "RemotePartyNumber": "*30*"}
    s, _ = session({("GET", "/api/v1/mgmt/callLogs/placed"): (200, {"Status": "2000", "data": [old]}),
                    ("POST", "/api/v1/callctrl/dial"): (200, {"Status": "2000"})})
    poly.dial(s, "*30*")
    assert poly.ended_calls(s) == []  # the earlier *30* in the log is not this call
    s2, _ = session({("GET", "/api/v1/mgmt/callLogs/placed"): (200, {"Status": "2000", "data": [old, old]})})
    s2.pending = s.pending
    [ended] = poly.ended_calls(s2)
    assert (ended.state, ended.direction, ended.remote, ended.status_code) == (CallState.DISCONNECTED, "out", "*30*",
                                                                              None)
    assert poly.ended_calls(s2) == [] and s2.pending is None  # reported once


def test_missing_credential_names_the_variable(monkeypatch):
    monkeypatch.delenv("POLY_PASS_MISSING", raising=False)
    ctx = context("Poly", "Trio 8800", "7.2.2.1094")
    with pytest.raises(CredentialError, match=r"POLY_PASS_MISSING.*not set"):
        endpoint_from(ctx, Connection(protocol="https", host="192.0.2.10"),
                      Credentials.model_validate({"password": {"env": "POLY_PASS_MISSING"}}))


def test_wrong_vendor_is_not_applicable():
    with pytest.raises(NotApplicable, match="drives Poly devices"):
        PolyRestDriver(context("Yealink", "T46S", "66.86.0.15"))


def test_operations_before_activate_are_refused():
    from harness.protocols import StateError

    drv = PolyRestDriver(context("Poly", "Trio 8800", "7.2.2.1094"))
    with pytest.raises(StateError, match="activate"):
        drv.dial("+14255550121")


def test_a_device_reporting_firmware_below_the_table_is_refused_whatever_the_inventory_says(monkeypatch):
    import json

    info = json.loads(reply("poly", "device_info.json"))
    info["data"]["ModelNumber"] = "VVX 450"
    info["data"]["Firmware"]["Application"] = "5.4.0.1000"  # the inventory says 6.4.3.5018
    rp = Replay({("GET", "/api/v2/mgmt/device/info"): (200, info)})
    ctx = context("Poly", "VVX 450", "6.4.3.5018", connection=Connection(protocol="https", host="192.0.2.10"),
                  api_options={"transport": rp.transport})
    drv = PolyRestDriver(ctx)
    drv.activate()
    try:
        assert drv.read_back_refusal() is None  # nothing read back yet
        drv.identity()
        refusal = drv.read_back_refusal()
        assert refusal is not None and refusal.startswith("firmware verdict below_minimum for what the device "
                                                          "reports (inventory says 6.4.3.5018, the device reports "
                                                          "5.4.0.1000)")
    finally:
        drv.deactivate()


def test_config_round_trip_and_safe_reboot_on_the_simulator():
    from harness.simulators import FakeBackend
    from harness.simulators.poly_rest import PolyRestSimulator
    from tests.harness.simulators.conftest import fake_identity, wait_until

    backend = FakeBackend(fake_identity("Poly", "VVX 450", "6.4.3.5018", "PolycomVVX-VVX_450-UA/6.4.3.5018"))
    with PolyRestSimulator(backend, factory_state=False, admin_password="lab-pass", reboot_s=0.3) as sim:
        s = poly.connect(Endpoint(sim.url, "Polycom", "lab-pass", True, 2.0))
        poly.config_set(s, {"up.oneTouchDirectory": "0"})
        got = poly.config_get(s, "up.oneTouchDirectory", "device.auth.localAdminPassword")
        assert got == {"up.oneTouchDirectory": "0", "device.auth.localAdminPassword": "********"}
        poly.reboot(s)  # safeReboot: no call up, so at once
        assert poly.probe(s).problem == "restarting"
        wait_until(lambda: poly.probe(s).ok, 5.0, "the phone back from its reboot")
        assert sim.boots == 2 and backend.restarts == 1
        s.close()
