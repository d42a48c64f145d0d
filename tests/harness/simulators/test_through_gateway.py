"""Calls really placed through the embedded gateway between sipua-backed simulated devices, each side
driven only over its simulator's vendor API (HTTP with httpx, or the Cisco Remote SDK WebSocket).

What is asserted was observed: call states read back over the vendor APIs (from the workers' SIP
events), the INVITE of the call in the gateway's SIP trace, DTMF digits the far worker detected.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from gateway.config import GatewayConfig
from gateway.server import EmbeddedGateway
from gateway.services.model import User
from harness.simulators.algo_rest import AlgoRestSimulator
from harness.simulators.audiocodes_mp import AudioCodesMpSimulator
from harness.simulators.cisco_mpp import CiscoMppSimulator
from harness.simulators.poly_rest import PolyRestSimulator
from harness.simulators.sipua_backend import SipLine, SipuaBackend
from harness.simulators.yealink_action_uri import YealinkActionUriSimulator
from tests.harness.simulators.algo_client import signed
from tests.harness.simulators.conftest import wait_until
from tests.harness.simulators.remote_sdk_server import RemoteSdkServer

pytestmark = pytest.mark.slow

DOMAIN = "sipgw.lab"
PEER_NUMBER = "+14255550100"
POLY_AUTH = ("Polycom", "lab-pass")
T = 10.0  # deadline for anything that crosses the gateway

DEVICES = {  # user, number, vendor, model, firmware, SIP User-Agent (each accepted by the gateway's verdicts)
    "poly": ("poly2", "+14255550102", "Poly", "VVX 450", "6.4.3.5018", "PolycomVVX-VVX_450-UA/6.4.3.5018"),
    "yealink": ("yealink", "+14255550103", "Yealink", "T54W", "96.86.0.100", "Yealink SIP-T54W 96.86.0.100"),
    "cisco": ("cisco", "+14255550104", "Cisco", "8841", "11.3.5MPP", "Cisco-CP-8841-3PCC/11.3.5MPP"),
    "algo": ("algo", "+14255550105", "Algo", "8301", "5.3.4", "Algo-8301/5.3.4"),
    "audiocodes": ("mp114", "+14255550106", "AudioCodes", "MP114-FXS", "6.60A.367.001",
                   "Audiocodes-Sip-Gateway-MP-114 FXS/v.6.60A.367.001"),
}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory) -> Iterator[EmbeddedGateway]:
    data = tmp_path_factory.mktemp("gw")
    gw = EmbeddedGateway(data, GatewayConfig(sip="127.0.0.1:0", http="127.0.0.1:0"), control_api=False)
    gw.start_in_thread()
    gw.directory.put_user(User(username="peer", name="Peer Poly", number=PEER_NUMBER), password="pw-peer")
    for user, number, *_ in DEVICES.values():
        gw.directory.put_user(User(username=user, name=user.title(), number=number), password=f"pw-{user}")
    yield gw
    gw.stop_thread()


def spawn_backend(gw: EmbeddedGateway, key: str, log_dir) -> SipuaBackend:
    user, number, vendor, model, firmware, ua = DEVICES[key]
    assert gw.endpoints is not None
    return SipuaBackend.spawn(name=key, vendor=vendor, model=model, firmware=firmware, mac="00:04:f2:00:00:0" +
                              str(list(DEVICES).index(key)), user_agent=ua,
                              lines=[SipLine(user, f"pw-{user}", number, user.title())], gateway=gw.endpoints.udp,
                              domain=DOMAIN, log_dir=log_dir)


@pytest.fixture(scope="module")
def peer(gateway, tmp_path_factory) -> Iterator[tuple[PolyRestSimulator, httpx.Client]]:
    """The far end: a Poly phone, driven over its REST API."""
    assert gateway.endpoints is not None
    backend = SipuaBackend.spawn(name="peer", vendor="Poly", model="VVX 450", firmware="6.4.3.5018",
                                 mac="00:04:f2:00:00:99", user_agent="PolycomVVX-VVX_450-UA/6.4.3.5018",
                                 lines=[SipLine("peer", "pw-peer", PEER_NUMBER, "Peer")],
                                 gateway=gateway.endpoints.udp, domain=DOMAIN,
                                 log_dir=tmp_path_factory.mktemp("peer"))
    sim = PolyRestSimulator(backend, factory_state=False, admin_password=POLY_AUTH[1])
    sim.start()
    client = httpx.Client(base_url=sim.url, auth=POLY_AUTH, timeout=T)
    yield sim, client
    client.close()
    sim.stop()
    backend.close()


def poly_calls(client: httpx.Client) -> list[dict]:
    r = client.get("/api/v2/webCallControl/callStatus")
    assert r.status_code == 200, r.text
    return r.json()["data"]


def poly_wait_state(client: httpx.Client, state: str, what: str) -> dict:
    return wait_until(lambda: next((c for c in poly_calls(client) if c["CallState"] == state), None), T, what)


def poly_answer(client: httpx.Client) -> dict:
    call = poly_wait_state(client, "Offering", "the call to ring at the Poly peer")
    assert client.post("/api/v1/callctrl/answerCall", json={"data": {"Ref": call["CallHandle"]}}).json() \
        == {"Status": "2000"}
    return call


def poly_no_calls(client: httpx.Client, who: str) -> None:
    wait_until(lambda: poly_calls(client) == [], T, f"no call left at {who}")


def assert_in_trace(gw: EmbeddedGateway, sip_call_id: str | None) -> None:
    assert sip_call_id, "the device did not report the call's Call-ID"
    lines = [e.first_line for e in gw.trace.entries(call_ids=[sip_call_id])]
    assert any(line.startswith("INVITE ") for line in lines), f"no INVITE for {sip_call_id} in the trace: {lines}"
    assert any(" 200 " in line for line in lines), f"no 200 for {sip_call_id} in the trace: {lines}"


@pytest.fixture
def spawn_device(gateway, tmp_path):
    backends: list[SipuaBackend] = []

    def make(key: str) -> SipuaBackend:
        b = spawn_backend(gateway, key, tmp_path)
        backends.append(b)
        return b

    yield make
    for b in backends:
        b.close()


def test_poly_dials_holds_sends_dtmf_and_hangs_up(gateway, peer, spawn_device):
    peer_sim, peer_http = peer
    backend = spawn_device("poly")
    with PolyRestSimulator(backend, factory_state=False, admin_password="pw2") as sim, \
            httpx.Client(base_url=sim.url, auth=("Polycom", "pw2"), timeout=T) as http:
        assert http.post("/api/v1/callctrl/dial", json={"data": {"Dest": PEER_NUMBER, "Line": "1"}}).json() \
            == {"Status": "2000"}
        poly_answer(peer_http)
        mine = poly_wait_state(http, "Connected", "the dialled call to connect")
        poly_wait_state(peer_http, "Connected", "the peer to show the call connected")
        assert mine["RemotePartyNumber"] == PEER_NUMBER
        assert_in_trace(gateway, backend.call(int(mine["CallSequence"])).sip_call_id)
        assert http.post("/api/v1/callctrl/holdCall", json={"data": {"Ref": mine["CallHandle"]}}).json()["Status"] \
            == "2000"
        poly_wait_state(http, "CallHold", "our side on hold")
        held = poly_wait_state(peer_http, "CallHeld", "the peer to see the re-INVITE's hold (RFC 3264 §8.4)")
        assert held["Media Direction"] == "recvonly"
        http.post("/api/v1/callctrl/resumeCall", json={"data": {"Ref": mine["CallHandle"]}})
        poly_wait_state(peer_http, "Connected", "the peer to see the call resumed")
        poly_wait_state(http, "Connected", "our side resumed")
        mark = len(peer_sim.backend.dtmf_received)
        assert http.post("/api/v1/callctrl/sendDTMF", json={"data": {"digits": "42"}}).json()["Status"] == "2000"
        wait_until(lambda: [d for _, d in peer_sim.backend.dtmf_received[mark:]] == ["4", "2"], T,
                   lambda: f"the peer to detect the digits 4 2 (got {peer_sim.backend.dtmf_received[mark:]})")
        http.post("/api/v1/callctrl/endCall", json={"data": {"Ref": mine["CallHandle"]}})
        poly_no_calls(peer_http, "the peer")
        poly_no_calls(http, "the Poly")


@pytest.fixture
def listener():
    hits: list[str] = []
    cond = threading.Condition()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            with cond:
                hits.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", hits
    server.shutdown()
    server.server_close()


def test_yealink_answers_on_the_action_url_call_id(gateway, peer, spawn_device, listener):
    _, peer_http = peer
    url, hits = listener
    backend = spawn_device("yealink")
    sim = YealinkActionUriSimulator(backend, allowed_ips=("127.0.0.1",), confirm_prompt=False)
    sim.provision({"action_url.incoming_call": f"{url}/in?id=$call_id&from=$remote",
                   "action_url.call_terminated": f"{url}/end?id=$call_id"})
    with sim, httpx.Client(base_url=sim.url, auth=("admin", "admin"), timeout=T) as http:
        assert peer_http.post("/api/v1/callctrl/dial", json={"data": {"Dest": DEVICES["yealink"][1]}}).json() \
            == {"Status": "2000"}
        first = wait_until(lambda: next((h for h in hits if h.startswith("/in?")), None), T, "the incoming_call URL")
        q = parse_qs(urlparse(first).query)
        assert q["from"] == [PEER_NUMBER]
        assert http.get("/servlet", params={"key": f"ASW:{q['id'][0]}"}).status_code == 200
        peer_call = poly_wait_state(peer_http, "Connected", "the peer's call to connect")
        assert_in_trace(gateway, backend.call(int(q["id"][0])).sip_call_id)
        peer_http.post("/api/v1/callctrl/endCall", json={"data": {"Ref": peer_call["CallHandle"]}})
        wait_until(lambda: f"/end?id={q['id'][0]}" in hits, T, "the call_terminated URL")
        status = http.get("/servlet", params={"phonecfg": "get", "accounts": "1"}).text
        assert "account.1.status=registered" in status


def test_cisco_dials_over_the_remote_sdk(gateway, peer, spawn_device):
    _, peer_http = peer
    control = RemoteSdkServer()
    control.start()
    backend = spawn_device("cisco")
    try:
        with CiscoMppSimulator(backend, control_server_url=control.url):
            control.wait_connected()
            number = control.request({"Request-URI": "/api/Config/v1/GetParams",
                                      "params": ["User_ID_1_"]})["result"]["paramvalues"]["User_ID_1_"]
            assert number == DEVICES["cisco"][1]
            r = control.request({"Request-URI": "/api/Call/v1/Dial", "line": 1, "number": PEER_NUMBER})
            assert r["status"] == "Success", r
            poly_answer(peer_http)
            ev = control.wait_event(lambda e: e["name"] == "CallStateChanged" and e["params"]["state"] == "Connected")
            assert ev["params"]["remoteNumber"] == PEER_NUMBER
            assert_in_trace(gateway, ev["params"]["sipCallId"])
            r = control.request({"Request-URI": "/api/Call/v1/Hangup", "line": 1, "callId": r["result"]["callId"]})
            assert r["status"] == "Success", r
            control.wait_event(lambda e: e["params"].get("state") == "Idle")
            poly_no_calls(peer_http, "the peer")
    finally:
        control.stop()


def test_algo_call_start_and_auto_answered_page(gateway, peer, spawn_device):
    _, peer_http = peer
    backend = spawn_device("algo")
    with AlgoRestSimulator(backend) as sim, httpx.Client(base_url=sim.url, timeout=T) as http:
        assert signed(http, "GET", "/api/info/status").json()["SIP Registration"] == "Algo, Successful;"
        assert signed(http, "POST", "/api/controls/call/start", {"extension": PEER_NUMBER, "tone": "ding"}) \
            .status_code == 200
        poly_answer(peer_http)
        wait_until(lambda: signed(http, "GET", "/api/info/status").json()["Call Status"] == "Connected", T,
                   "the Algo to report Connected")
        assert_in_trace(gateway, backend.calls()[0].sip_call_id)
        assert signed(http, "POST", "/api/controls/call/stop", {}).status_code == 200
        poly_no_calls(peer_http, "the peer")
        # the other way: a call to the speaker is answered by the speaker itself
        peer_http.post("/api/v1/callctrl/dial", json={"data": {"Dest": DEVICES["algo"][1]}})
        call = poly_wait_state(peer_http, "Connected", "the speaker to auto-answer")
        peer_http.post("/api/v1/callctrl/endCall", json={"data": {"Ref": call["CallHandle"]}})
        wait_until(lambda: signed(http, "GET", "/api/info/status").json()["Call Status"] == "Idle", T,
                   "the Algo to report Idle")


def test_audiocodes_port_rings_and_is_answered_off_hook(gateway, peer, spawn_device):
    _, peer_http = peer
    backend = spawn_device("audiocodes")
    with AudioCodesMpSimulator(backend) as sim, httpx.Client(base_url=sim.url, auth=("Admin", "Admin"),
                                                             timeout=T) as http:
        assert http.get("/api/v1/status/ports/1").json()["registration"] == "Registered"
        peer_http.post("/api/v1/callctrl/dial", json={"data": {"Dest": DEVICES["audiocodes"][1]}})
        wait_until(lambda: http.get("/api/v1/status/ports/1").json()["callState"] == "ringing", T,
                   "port 1 to ring")
        assert http.post("/_sim/ports/1/offhook").status_code == 200
        port = wait_until(lambda: (p := http.get("/api/v1/status/ports/1").json())["callState"] == "connected" and p,
                          T, "port 1 to be connected")
        assert port["remoteNumber"] == PEER_NUMBER
        assert_in_trace(gateway, port["sipCallId"])
        call = poly_wait_state(peer_http, "Connected", "the peer's call to connect")
        peer_http.post("/api/v1/callctrl/endCall", json={"data": {"Ref": call["CallHandle"]}})
        wait_until(lambda: http.get("/api/v1/status/ports/1").json()["callState"] == "idle", T, "port 1 idle")
