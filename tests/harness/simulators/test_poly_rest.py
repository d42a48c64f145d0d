from __future__ import annotations

import json

import httpx
import pytest

from harness.simulators.backend import BackendError, CallPhase
from harness.simulators.poly_rest import FACTORY_PASSWORD, PolyRestSimulator, id_to_handle
from tests.harness.simulators.conftest import wait_until

AUTH = ("Polycom", "s3cret")


@pytest.fixture
def sim(fake):
    backend = fake(lines=2)
    backend.set_registered(False, line=2)
    s = PolyRestSimulator(backend, factory_state=False, admin_password="s3cret", reboot_s=0.2)
    s.start()
    yield s
    s.stop()


@pytest.fixture
def http(sim):
    with httpx.Client(base_url=sim.url, auth=AUTH, timeout=5) as c:
        yield c


def status(resp: httpx.Response) -> str:
    return resp.json()["Status"]


def test_bootstrap_from_factory_state(fake):
    sim = PolyRestSimulator(fake(), factory_state=True, reboot_s=0.2)
    with sim, httpx.Client(base_url=sim.url, timeout=5) as c:
        # REST API off after a factory reset: nothing under /api/ answers
        r = c.get("/api/v2/mgmt/device/info", auth=("Polycom", FACTORY_PASSWORD))
        assert r.status_code == 404
        assert "apps.restapi.enabled" in r.headers[sim.DETAIL_HEADER]
        # provisioning turns the API on, but the factory password is refused with 4010
        assert c.post("/_sim/provision", json={"apps.restapi.enabled": "1"}).status_code == 200
        r = c.get("/api/v2/mgmt/device/info", auth=("Polycom", FACTORY_PASSWORD))
        assert r.status_code == 403 and status(r) == "4010"
        r = c.get("/api/v2/mgmt/device/info", auth=("Polycom", "guess"))
        assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Basic")
        sim.provision({"device.auth.localAdminPassword": "n3w"})
        r = c.get("/api/v2/mgmt/device/info", auth=("Polycom", "n3w"))
        assert r.status_code == 200 and status(r) == "2000"
        assert r.json()["data"]["ModelNumber"] == "VVX 450"
        assert r.json()["data"]["MACAddress"] == "0004f28e5a79"
        # factory reset: back to the REST API being off and the factory password
        assert status(c.post("/api/v1/mgmt/factoryReset", auth=("Polycom", "n3w"))) == "2000"
        wait_until(lambda: c.get("/api/v2/mgmt/device/info", auth=("Polycom", "n3w")).status_code == 404,
                   what="the API to be off after factoryReset")
        assert sim.admin_password == FACTORY_PASSWORD
    assert [r.status for r in sim.requests][:3] == [404, 200, 403]


def test_missing_credentials_is_401(sim):
    r = httpx.get(sim.url + "/api/v2/mgmt/lineInfo", timeout=5)
    assert r.status_code == 401


def test_dial_then_poll_call_status_for_the_handle(sim, http):
    assert status(http.post("/api/v1/callctrl/dial", json={"data": {"Dest": "+14255550199", "Line": "1",
                                                                    "Type": "TEL"}})) == "2000"
    calls = http.get("/api/v2/webCallControl/callStatus").json()["data"]
    assert len(calls) == 1
    call = calls[0]
    assert call["Type"] == "Outgoing" and call["RemotePartyNumber"] == "+14255550199" and call["LineID"] == "1"
    sim.backend.far_answer(1)
    call = http.get("/api/v2/webCallControl/callStatus").json()["data"][0]
    assert call["CallState"] == "Connected" and call["Media Direction"] == "sendrecv"
    ref = call["CallHandle"]
    assert status(http.post("/api/v1/callctrl/holdCall", json={"data": {"Ref": ref}})) == "2000"
    call = http.get("/api/v2/webCallControl/callStatus").json()["data"][0]
    assert call["CallState"] == "CallHold" and call["Media Direction"] == "sendonly"
    assert status(http.post("/api/v1/callctrl/resumeCall", json={"data": {"Ref": ref}})) == "2000"
    assert status(http.post("/api/v1/callctrl/mute", json={"data": {"state": "1"}})) == "2000"
    assert http.get("/api/v2/webCallControl/callStatus").json()["data"][0]["Muted"] == "1"
    assert status(http.post("/api/v1/callctrl/sendDTMF", json={"data": {"digits": "12#"}})) == "2000"
    assert sim.backend.dtmf_sent == [(1, "12#")]
    assert status(http.post("/api/v1/callctrl/transferCall",
                            json={"data": {"Ref": ref, "TransferDest": "+14255550142"}})) == "2000"
    assert sim.backend.transfers == [(1, "+14255550142")]
    assert http.get("/api/v2/webCallControl/callStatus").json()["data"] == []


def test_incoming_answer_ignore_reject_end(sim, http):
    c1 = sim.backend.inject_incoming("+14255550177")
    call = http.get("/api/v2/webCallControl/callStatus").json()["data"][0]
    assert call["CallState"] == "Offering" and call["Ringing"] == "1" and call["Type"] == "Incoming"
    assert status(http.post("/api/v1/callctrl/ignoreCall", json={"data": {"Ref": call["CallHandle"]}})) == "2000"
    call = http.get("/api/v2/webCallControl/callStatus").json()["data"][0]
    assert call["Ringing"] == "0" and call["CallState"] == "Offering"
    assert status(http.post("/api/v1/callctrl/answerCall", json={"data": {"Ref": call["CallHandle"]}})) == "2000"
    assert sim.backend.call(c1.id).phase is CallPhase.CONNECTED
    assert status(http.post("/api/v1/callctrl/endCall", json={"data": {"Ref": call["CallHandle"]}})) == "2000"
    c2 = sim.backend.inject_incoming("+14255550178")
    assert status(http.post("/api/v1/callctrl/rejectCall", json={"data": {"Ref": id_to_handle(c2.id)}})) == "2000"
    assert sim.backend.call(c2.id).end_code == 486


@pytest.mark.parametrize(("path", "body", "code", "where"), [
    ("/api/v1/callctrl/dial", {"data": {"Line": "1"}}, "4000", "body.data.Dest"),
    ("/api/v1/callctrl/dial", {"data": {"Dest": "100", "Line": "x"}}, "4000", "body.data.Line"),
    ("/api/v1/callctrl/dial", {"data": {"Dest": "100", "Line": "7"}}, "4005", "line 7"),
    ("/api/v1/callctrl/dial", {"data": {"Dest": "100", "Line": "2"}}, "4002", "line 2"),
    ("/api/v1/callctrl/dial", {"nodata": 1}, "4000", "body"),
    ("/api/v1/callctrl/endCall", {"data": {"Ref": "0x4b1d0ff"}}, "4007", "call"),
    ("/api/v1/callctrl/endCall", {"data": {}}, "4000", "body.data.Ref"),
    ("/api/v1/callctrl/mute", {"data": {"state": "on"}}, "4000", "body.data.state"),
    ("/api/v1/callctrl/sendDTMF", {"data": {"digits": "1"}}, "4007", "no connected call"),
    ("/api/v1/mgmt/config/set", {"data": {"a.b": 1}}, "4000", "body.data.a.b"),
])
def test_errors_carry_the_vendor_status(http, sim, path, body, code, where):
    r = http.post(path, json=body)
    assert status(r) == code, r.text
    assert where in r.headers[sim.DETAIL_HEADER]
    assert r.status_code >= 400


def test_busy_when_the_call_limit_is_reached(http):
    for n in range(4):
        assert status(http.post("/api/v1/callctrl/dial", json={"data": {"Dest": f"10{n}"}})) == "2000"
    assert status(http.post("/api/v1/callctrl/dial", json={"data": {"Dest": "105"}})) == "4001"


def test_not_json_is_4000(http, sim):
    r = http.post("/api/v1/callctrl/dial", content=b"{nope", headers={"Content-Type": "application/json"})
    assert status(r) == "4000" and "not JSON" in r.headers[sim.DETAIL_HEADER]


def test_read_back_line_sip_status_and_config(http):
    lines = http.get("/api/v2/mgmt/lineInfo").json()["data"]
    assert [(x["LineNumber"], x["RegistrationStatus"]) for x in lines] == [("1", "registered"), ("2", "unregistered")]
    assert lines[0]["SIPAddress"] == "user1@sipgw.lab"
    users = http.get("/api/v1/webCallControl/sipStatus").json()["data"]["User"]
    assert users[0]["Events"][0]["RegistrationState"] == "Registered"
    assert status(http.post("/api/v1/mgmt/config/set", json={"data": {"device.prov.serverName": "http://p"}})) \
        == "2000"
    got = http.post("/api/v1/mgmt/config/get",
                    json={"data": ["device.prov.serverName", "device.auth.localAdminPassword"]}).json()["data"]
    assert got["device.prov.serverName"] == {"Value": "http://p", "Source": "web"}
    assert set(got["device.auth.localAdminPassword"]["Value"]) == {"*"}


def test_safe_reboot_waits_for_calls_to_end(sim, http):
    call = sim.backend.inject_incoming("+1")
    sim.backend.answer(call.id)
    assert status(http.post("/api/v1/mgmt/safeReboot")) == "2000"
    assert http.get("/api/v2/mgmt/lineInfo").status_code == 200  # still up while the call lasts
    assert sim.boots == 1
    sim.backend.far_hangup(call.id)
    wait_until(lambda: sim.boots == 2, what="the reboot after the call ended")
    wait_until(lambda: sim.backend.restarts == 1, what="the device to register again after the reboot")
    wait_until(lambda: http.get("/api/v2/mgmt/lineInfo").status_code == 200, what="the device to come back")


def test_not_allowed_not_supported_and_failed(sim, http, monkeypatch):
    call = sim.backend.inject_incoming("+14255550180")
    ref = id_to_handle(call.id)
    r = http.post("/api/v1/callctrl/holdCall", json={"data": {"Ref": ref}})  # ringing, not connected
    assert status(r) == "4003" and "not connected" in r.headers[sim.DETAIL_HEADER]
    r = http.post("/api/v1/mgmt/simulateKeyEvent", json={"data": {"Key": "DoNotDisturb"}})
    assert status(r) == "4004" and r.status_code == 501

    def broken(call_id):
        raise BackendError("the SIP worker died")

    monkeypatch.setattr(sim.backend, "answer", broken)
    r = http.post("/api/v1/callctrl/answerCall", json={"data": {"Ref": ref}})
    assert status(r) == "5000" and "worker died" in r.headers[sim.DETAIL_HEADER]


def test_bad_provisioning_applies_nothing(sim):
    before = dict(sim.config)
    with pytest.raises(ValueError, match="must be strings"):
        sim.provision({"device.prov.serverName": "http://ok", "apps.restapi.enabled": None})
    assert sim.config == before


def test_request_log_is_evidence(sim, http, tmp_path):
    http.post("/api/v1/callctrl/dial", json={"data": {"Dest": "+14255550199"}})
    http.get("/api/v2/mgmt/lineInfo", auth=("Polycom", "wrong"))
    path = tmp_path / "poly.jsonl"
    sim.dump_log(str(path))
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["method"], r["path"], r["status"]) for r in rows] == [
        ("POST", "/api/v1/callctrl/dial", 200), ("GET", "/api/v2/mgmt/lineInfo", 401)]
    assert json.loads(rows[0]["request_body"]) == {"data": {"Dest": "+14255550199"}}
    assert json.loads(rows[0]["response_body"]) == {"Status": "2000"}
    assert "wrong user or password" in rows[1]["detail"]


def test_call_logs_and_message_waiting_in_line_info(sim, http):
    """Ended calls enter callLogs (placed / received / missed); lineInfo shows the line's lamp and counts."""
    backend = sim.backend
    assert status(http.post("/api/v1/callctrl/dial", json={"data": {"Dest": "*30*", "Line": "1"}})) == "2000"
    backend.far_hangup(backend.calls()[0].id)  # the gateway's final response
    missed = backend.inject_incoming("+12065550100")
    backend.far_hangup(missed.id)
    placed = wait_until(lambda: http.get("/api/v1/mgmt/callLogs/placed").json()["data"], 5.0, "the placed log")
    assert [(e["RemotePartyNumber"], e["LineNumber"], e["Duration"]) for e in placed] == [("*30*", "1", "")]
    logs = wait_until(lambda: (d := http.get("/api/v1/mgmt/callLogs").json()["data"])["Missed"] and d, 5.0,
                      "the missed log")
    assert [e["RemotePartyNumber"] for e in logs["Missed"]] == ["+12065550100"] and logs["Received"] == []
    r = http.get("/api/v1/mgmt/callLogs/other")
    assert status(r) == "4000" and "placed, received or missed" in r.headers[sim.DETAIL_HEADER]

    line1 = http.get("/api/v2/mgmt/lineInfo").json()["data"][0]
    assert (line1["MessageWaiting"], line1["NewVoiceMessages"]) == ("false", "0")
    backend.set_mwi("Messages-Waiting: yes\r\nVoice-Message: 2/1\r\n")
    line1 = http.get("/api/v2/mgmt/lineInfo").json()["data"][0]
    assert (line1["MessageWaiting"], line1["NewVoiceMessages"], line1["OldVoiceMessages"]) == ("true", "2", "1")


def test_forwarding_config_is_applied_to_the_device_and_refused_as_a_whole(sim, http):
    from harness.simulators.backend import Divert

    body = {"divert.noanswer.1.enabled": "1", "divert.noanswer.1.contact": "+12065550100",
            "divert.noanswer.1.timeout": "2"}
    assert status(http.post("/api/v1/mgmt/config/set", json={"data": body})) == "2000"
    assert sim.backend.diverts[1] == Divert(None, "+12065550100", 2.0)
    r = http.post("/api/v1/mgmt/config/set", json={"data": {"divert.fwd.1.enabled": "1",
                                                            "divert.noanswer.1.timeout": "never"}})
    assert status(r) == "4000" and "divert.noanswer.1.timeout" in r.headers[sim.DETAIL_HEADER]
    assert sim.config["divert.noanswer.1.timeout"][0] == "2" and "divert.fwd.1.enabled" not in sim.config
