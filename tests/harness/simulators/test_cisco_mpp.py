from __future__ import annotations

import httpx
import pytest

from harness.simulators.backend import CallPhase
from harness.simulators.cisco_mpp import CiscoMppSimulator
from tests.harness.simulators.conftest import wait_until
from tests.harness.simulators.remote_sdk_server import RemoteSdkServer


@pytest.fixture
def control():
    server = RemoteSdkServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def backend(fake):
    return fake("Cisco", "8841", "11.3.5MPP", "Cisco-CP-8841-3PCC/11.3.5MPP (00562b043615)")


@pytest.fixture
def sim(backend, control):
    s = CiscoMppSimulator(backend, control_server_url=control.url)
    s.start()
    control.wait_connected()
    yield s
    s.stop()


def test_remote_sdk_params_and_calls(sim, control):
    r = control.request({"Request-URI": "/api/Config/v1/GetParams", "params": ["DND_Setting", "User_ID_1_"]})
    assert r["type"] == "response" and r["result"]["paramvalues"] == {"DND_Setting": "No",
                                                                       "User_ID_1_": "+14255550101"}
    r = control.request({"Request-URI": "/api/Config/v1/SetParams", "params": {"DND_Setting": "Yes"}})
    assert r["status"] == "Success" and sim.params["DND_Setting"] == "Yes"
    r = control.request({"Request-URI": "/api/Config/v1/GetParams", "params": ["Message_Waiting_1_"]})
    assert r["result"]["paramvalues"]["Message_Waiting_1_"] == "No"
    sim.backend.set_mwi("Messages-Waiting: yes\r\nVoice-Message: 1/0\r\n")  # the proxy's NOTIFY lit the lamp
    r = control.request({"Request-URI": "/api/Config/v1/GetParams", "params": ["Message_Waiting_1_"]})
    assert r["result"]["paramvalues"]["Message_Waiting_1_"] == "Yes"
    r = control.request({"Request-URI": "/api/Call/v1/Dial", "line": 1, "number": "+14255550102"})
    assert r["result"] == {"line": 1, "callId": 0}
    control.wait_event(lambda e: e["name"] == "CallStateChanged" and e["params"]["state"] == "Proceeding")
    incoming = sim.backend.inject_incoming("+14255550103")
    ev = control.wait_event(lambda e: e["params"].get("state") == "Ringing")
    assert ev["params"]["callId"] == 1 and ev["params"]["remoteNumber"] == "+14255550103"
    r = control.request({"Request-URI": "/api/Call/v1/Answer", "line": 1, "callId": 1})
    assert r["status"] == "Success" and sim.backend.call(incoming.id).phase is CallPhase.CONNECTED
    r = control.request({"Request-URI": "/api/Call/v1/Mute", "line": 1, "callId": 1, "mute": True})
    assert r["result"] == {"muted": True} and sim.backend.muted
    r = control.request({"Request-URI": "/api/Call/v1/Hold", "line": 1, "callId": 1})
    assert r["status"] == "Success" and sim.backend.call(incoming.id).held
    control.wait_event(lambda e: e["params"].get("state") == "Hold")
    r = control.request({"Request-URI": "/api/Call/v1/Hangup", "line": 1, "callId": 1})
    assert r["status"] == "Success" and not sim.backend.call(incoming.id).active
    meta = control.request({"Request-URI": "/api/GetMetadata"})["result"]["openapi"]
    assert meta["openapi"].startswith("3.0") and "/api/Call/v1/Dial" in meta["paths"]


def test_remote_sdk_errors(sim, control):
    r = control.request({"Request-URI": "/api/Config/v1/GetParams", "params": ["No_Such"]})
    assert r["status"] == "Failure" and "No_Such" in r["error"]["message"]
    r = control.request({"Request-URI": "/api/Call/v1/Answer", "line": 1, "callId": 5})
    assert r["error"]["code"] == "InvalidCallId"
    r = control.request({"Request-URI": "/api/Nope/v1/X"})
    assert r["error"]["code"] == "NotFound"
    before = len(control.responses)
    control.send_raw("{not json")
    assert control.wait_response(before)["error"]["code"] == "InvalidRequest"


def test_one_request_pending_at_a_time(sim, control, backend):
    import threading

    gate = threading.Event()
    original = backend.dial

    def slow_dial(number, line=1):
        gate.wait(5)
        return original(number, line)

    backend.dial = slow_dial
    before = len(control.responses)
    control.send_raw('{"Request-URI": "/api/Call/v1/Dial", "line": 1, "number": "100"}')
    wait_until(lambda: sim._pending is not None, what="the dial to be pending")
    control.send_raw('{"Request-URI": "/api/Config/v1/GetParams", "params": ["DND_Setting"]}')
    second = control.wait_response(before)
    assert second["error"]["code"] == "Busy" and "/api/Call/v1/Dial" in second["error"]["message"]
    gate.set()
    assert control.wait_response(before + 1)["result"]["callId"] == 0


def test_reconnects_after_the_link_drops_and_stops_on_empty_url(sim, control):
    http = httpx.Client(base_url=sim.url, auth=httpx.DigestAuth("admin", "admin"), timeout=5)
    assert http.get("/admin/reboot").status_code == 200
    control.wait_connected(count=2)
    sim.provision({"Control_Server_URL": ""})
    wait_until(lambda: not sim.connected, what="the phone to disconnect")
    http.close()


def test_cgi_execute_and_status_xml(backend):
    sim = CiscoMppSimulator(backend, xml_exe_auth="Local Credential")
    with sim:
        xml = '<CiscoIPPhoneExecute><ExecuteItem URL="Dial:+14255550109"/></CiscoIPPhoneExecute>'
        assert httpx.post(sim.url + "/CGI/Execute", data={"XML": xml}, timeout=5).status_code == 401
        r = httpx.post(sim.url + "/CGI/Execute", data={"XML": xml}, auth=httpx.DigestAuth("user", "user"), timeout=5)
        assert r.status_code == 200 and 'Status="0"' in r.text
        assert backend.calls()[0].remote == "+14255550109"
        r = httpx.post(sim.url + "/CGI/Execute", data={"XML": "<oops"}, auth=httpx.DigestAuth("user", "user"),
                       timeout=5)
        assert r.status_code == 400 and "not well-formed" in r.headers[sim.DETAIL_HEADER]
        assert httpx.get(sim.url + "/admin/status.xml", timeout=5).status_code == 401
        r = httpx.get(sim.url + "/admin/status.xml", auth=httpx.DigestAuth("admin", "admin"), timeout=5)
        assert "<Registration_State_1_>Registered</Registration_State_1_>" in r.text
        assert "<Call_1_State>Proceeding</Call_1_State>" in r.text
