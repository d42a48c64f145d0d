"""The cisco-mpp driver's Remote SDK server: the phone (the simulator on a fake device) connects out to it,
requests go one at a time, GetParams read-back, operations missing from GetMetadata are NotApplicable."""

from __future__ import annotations

import json
import threading

import pytest

from harness.drivers.vendors import DeviceUnreachable, Endpoint, VendorApiError, cisco
from harness.protocols import CallState, NotApplicable
from harness.simulators import FakeBackend
from harness.simulators.cisco_mpp import CiscoMppSimulator
from tests.harness.drivers.recorded import reply
from tests.harness.simulators.conftest import fake_identity, wait_until


@pytest.fixture
def phone():
    session = cisco.connect(Endpoint("ws://127.0.0.1", options={"listen_host": "127.0.0.1"}))
    backend = FakeBackend(fake_identity("Cisco", "8841", "11.3.5MPP", "Cisco-CP-8841-3PCC/11.3.5MPP"))
    sim = CiscoMppSimulator(backend, control_server_url="")
    sim.start()
    yield session, sim, backend
    sim.stop()
    session.close()


def test_not_connected_until_control_server_url_is_set(phone):
    session, sim, _ = phone
    assert cisco.probe(session).problem == "not_connected"
    with pytest.raises(DeviceUnreachable, match="not connected"):
        cisco.params(session, "Product_Name")  # Remote SDK only
    sim.provision(cisco.bootstrap_params(session.url))
    session.wait_connected(5.0)
    ident = cisco.identity(session)
    assert (ident.model, ident.firmware, ident.source) == ("8841", "11.3.5MPP", "remote-sdk")


def test_one_request_at_a_time_from_many_threads(phone):
    session, sim, _ = phone
    sim.provision(cisco.bootstrap_params(session.url))
    session.wait_connected(5.0)
    results, errors = [], []

    def ask():
        try:
            results.append(cisco.params(session, "User_ID_1_"))
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert errors == [] and len(results) == 6  # the phone never saw a second pending request ("Busy")
    assert not any('"Busy"' in o.payload for o in sim.outbound)


def test_dial_events_and_missing_methods(phone):
    session, sim, backend = phone
    sim.provision(cisco.bootstrap_params(session.url))
    session.wait_connected(5.0)
    handle = cisco.dial(session, "+14255550111")
    assert handle == "1:0"
    backend.far_answer(backend.calls()[0].id)
    wait_until(lambda: session.calls.get("1:0") and session.calls["1:0"].state is CallState.CONFIRMED, 5.0,
               "the CallStateChanged event")
    cisco.set_mute(session, handle, True)  # Call/v1/Mute is in this load's GetMetadata
    assert backend.muted
    session.methods = (session.methods or set()) - {"/api/Call/v1/Mute"}  # a load without it
    with pytest.raises(NotApplicable, match=r"no mute \(/api/Call/v1/Mute is not in GetMetadata\)"):
        cisco.set_mute(session, handle, False)
    cisco.hangup(session, handle)
    wait_until(lambda: cisco.calls(session) == [], 5.0, "the call to end")


def test_recorded_get_params_shape():
    doc = json.loads(reply("cisco", "get_params.json"))
    values = doc["result"]["paramvalues"]
    assert values["Product_Name"].removeprefix("CP-").removesuffix("-3PCC") == "8865"


def test_xml_push_and_status_xml_fallbacks_while_the_sdk_is_not_connected():
    backend = FakeBackend(fake_identity("Cisco", "8841", "11.3.5MPP", "Cisco-CP-8841-3PCC/11.3.5MPP"))
    with CiscoMppSimulator(backend, control_server_url="", admin_password="adm") as sim:
        session = cisco.connect(Endpoint(sim.url, "admin", "adm", True, 2.0))
        try:
            assert not session.connected
            ident = cisco.identity(session)  # GET /admin/status.xml with HTTP digest
            assert (ident.model, ident.firmware, ident.source) == ("8841", "11.3.5MPP", "status.xml")
            assert cisco.lines(session)[0].registered
            assert cisco.dial(session, "+14255550111") is None  # CGI/Execute Dial:
            (call,) = cisco.calls(session)
            assert (call.direction, call.remote, call.state) == ("out", "+14255550111", CallState.CALLING)
            backend.far_answer(backend.calls()[0].id)
            assert cisco.calls(session)[0].state is CallState.CONFIRMED
            cisco.hangup(session, call.handle)  # Key:EndCall
            assert cisco.calls(session) == []
            bad = cisco.connect(Endpoint(sim.url, "admin", "wrong", True, 2.0))
            with pytest.raises(VendorApiError, match="HTTP 401"):
                cisco.identity(bad)
            bad.close()
        finally:
            session.close()


def test_a_call_that_ends_before_a_poll_is_reported_once_and_the_lamp_is_read_back(phone):
    """A call placed and ended between two polls (a feature code's final response) is reported by ended_calls
    once; a call a poll listed live is not; the lamp is Message_Waiting_1_ and nothing of the counts."""
    session, sim, backend = phone
    sim.provision(cisco.bootstrap_params(session.url))
    session.wait_connected(5.0)
    cisco.dial(session, "*30*")
    call = backend.calls()[0]
    backend.far_hangup(call.id)  # the gateway's 603, before any poll
    ended = wait_until(lambda: cisco.ended_calls(session), 5.0, "the ended call")
    assert [(c.state, c.direction, c.remote) for c in ended] == [(CallState.DISCONNECTED, "out", "*30*")]
    assert cisco.ended_calls(session) == [] and cisco.calls(session) == []

    cisco.dial(session, "+12065550100")
    live = wait_until(lambda: cisco.calls(session), 5.0, "the live call")
    backend.far_hangup(backend.calls()[0].id)
    wait_until(lambda: not cisco.calls(session), 5.0, "the call gone from GetCalls")
    assert live[0].remote == "+12065550100" and cisco.ended_calls(session) == []  # seen live: not "fresh"

    assert not cisco.mwi(session, 1).waiting
    backend.set_mwi("Messages-Waiting: yes\r\nVoice-Message: 1/0\r\n")
    lamp = cisco.mwi(session, 1)
    assert lamp.waiting and (lamp.new, lamp.old) == (0, 0) and lamp.raw == "Message_Waiting_1_=Yes"


def test_reject_other_than_a_decline_is_not_applicable(phone):
    session, _, _ = phone
    with pytest.raises(NotApplicable, match="declines"):
        cisco.reject(session, "1:0", 486)


def test_own_forwarding_set_read_back_and_applied_to_the_device(phone):
    """Cfwd_* through SetParams: the device forwards (the backend's divert), GetParams reads the rule back; a bad
    delay is refused with the parameter named and nothing stored."""
    from harness.protocols import ForwardingKind, ForwardingRule
    from harness.simulators.backend import Divert

    session, sim, backend = phone
    sim.provision(cisco.bootstrap_params(session.url))
    session.wait_connected(5.0)
    cisco.set_forwarding(session, 1, ForwardingRule(ForwardingKind.TIMEOUT, "+14255550102", timeout_s=2))
    assert backend.diverts[1] == Divert(None, "+14255550102", 2.0)
    assert cisco.forwarding(session, 1) == [ForwardingRule(ForwardingKind.TIMEOUT, "+14255550102", True, 2, 0)]
    with pytest.raises(VendorApiError, match="Cfwd_No_Ans_Delay"):
        cisco.set_params(session, {"Cfwd_No_Ans_Delay": "soon"})
    assert sim.params["Cfwd_No_Ans_Delay"] == "2" and backend.diverts[1].no_answer_s == 2.0
    cisco.clear_forwarding(session, 1)
    assert backend.diverts[1] == Divert(None, None, 2.0) and cisco.forwarding(session, 1) == []
    with pytest.raises(NotApplicable, match="line 1 only"):
        cisco.forwarding(session, 2)
