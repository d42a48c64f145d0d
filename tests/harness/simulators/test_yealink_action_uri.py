from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from harness.simulators.backend import CallPhase
from harness.simulators.yealink_action_uri import YealinkActionUriSimulator
from tests.harness.simulators.conftest import wait_until

AUTH = ("admin", "admin")


@pytest.fixture
def backend(fake):
    return fake("Yealink", "T54W", "96.86.0.100", "Yealink SIP-T54W 96.86.0.100")


@pytest.fixture
def sim(backend):
    s = YealinkActionUriSimulator(backend, allowed_ips=("127.0.0.1",), confirm_prompt=False)
    s.start()
    yield s
    s.stop()


@pytest.fixture
def http(sim):
    with httpx.Client(base_url=sim.url, auth=AUTH, timeout=5) as c:
        yield c


@pytest.fixture
def listener():
    """An Action URL receiver on loopback; yields (base url, list of request paths)."""
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
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


def test_allow_list_and_first_request_confirmation(backend):
    sim = YealinkActionUriSimulator(backend)  # factory: empty allow-list, prompt on
    with sim, httpx.Client(base_url=sim.url, auth=AUTH, timeout=5) as c:
        r = c.get("/servlet", params={"key": "OK"})
        assert r.status_code == 403 and "action_uri_limit_ip" in r.headers[sim.DETAIL_HEADER]
        sim.provision({"features.action_uri_limit_ip": "127.0.0.1"})
        assert c.get("/servlet", params={"key": "OK"}, auth=("admin", "nope")).status_code == 401
        r = c.get("/servlet", params={"key": "1"})
        assert r.status_code == 403 and "Allow Remote Control" in r.headers[sim.DETAIL_HEADER]
        assert sim.prompt_shown_for == "127.0.0.1"
        assert c.post("/_sim/confirm").json() == {"confirmed": "127.0.0.1"}
        assert c.get("/servlet", params={"key": "OK"}).status_code == 200
        # the login prefix instead of Basic auth
        r = httpx.get(sim.url + "/servlet", params={"p": "login", "q": "login", "username": "admin", "pwd": "admin",
                                                    "phonecfg": "get", "fw": "1"}, timeout=5)
        assert r.status_code == 200 and "fw=96.86.0.100" in r.text


def test_keys_drive_calls(sim, http):
    b = sim.backend
    for k in "1234":
        assert http.get("/servlet", params={"key": k}).status_code == 200
    assert http.get("/servlet", params={"key": "OK"}).status_code == 200
    (call,) = b.calls()
    assert call.remote == "1234" and call.direction == "out"
    b.far_answer(call.id)
    assert http.get("/servlet", params={"key": "F_HOLD"}).status_code == 200
    assert b.call(call.id).held
    assert http.get("/servlet", params={"key": f"UNHOLD:{call.id}"}).status_code == 200
    assert not b.call(call.id).held
    assert http.get("/servlet", params={"key": "5;#"}).status_code == 200
    assert b.dtmf_sent == [(call.id, "5"), (call.id, "#")]
    assert http.get("/servlet", params={"key": "MUTE"}).status_code == 200 and b.muted
    assert http.get("/servlet", params={"key": "F_TRANSFER"}).status_code == 200
    for k in "200":
        http.get("/servlet", params={"key": k})
    assert http.get("/servlet", params={"key": "F_TRANSFER"}).status_code == 200
    assert b.transfers == [(call.id, "200")]
    incoming = b.inject_incoming("+14255550190")
    assert http.get("/servlet", params={"key": f"ASW:{incoming.id}"}).status_code == 200
    assert b.call(incoming.id).phase is CallPhase.CONNECTED
    assert http.get("/servlet", params={"key": f"CANCEL:{incoming.id}"}).status_code == 200
    assert not b.calls()


def test_bad_keys_are_400_with_a_reason(sim, http):
    r = http.get("/servlet", params={"key": "WARP"})
    assert r.status_code == 400 and "WARP" in r.headers[sim.DETAIL_HEADER]
    r = http.get("/servlet", params={"key": "ASW:abc"})
    assert r.status_code == 400 and "call id" in r.headers[sim.DETAIL_HEADER]
    r = http.get("/servlet", params={"key": "ASW:9"})
    assert r.status_code == 409 and "call 9" in r.headers[sim.DETAIL_HEADER]
    assert http.get("/servlet").status_code == 400


def test_readback(sim, http):
    text = http.get("/servlet", params={"phonecfg": "get", "accounts": "1", "dnd": "1", "fw": "1"}).text
    fields = dict(line.split("=", 1) for line in text.splitlines())
    assert fields["fw"] == "96.86.0.100" and fields["account.1.status"] == "registered"
    assert fields["features.dnd.enable"] == "0"
    assert http.get("/servlet", params={"phonecfg": "set", "features.dnd.enable": "1"}).status_code == 200
    assert "features.dnd.enable=1" in http.get("/servlet", params={"phonecfg": "get", "dnd": "1"}).text


def test_action_url_callbacks(sim, http, listener):
    url, hits = listener
    sim.provision({f"action_url.{ev}": f"{url}/{ev}?id=$call_id&remote=$remote&mac=$mac"
                   for ev in ("incoming_call", "call_established", "hold", "call_terminated")})
    call = sim.backend.inject_incoming("+14255550190")
    wait_until(lambda: hits, what="the incoming_call callback")
    assert hits[0] == f"/incoming_call?id={call.id}&remote=%2B14255550190&mac=0004f28e5a79"
    http.get("/servlet", params={"key": "OK"})
    http.get("/servlet", params={"key": "HOLD"})
    sim.backend.far_hangup(call.id)
    wait_until(lambda: len(hits) == 4, what="four callbacks")
    assert [h.split("?")[0] for h in hits] == ["/incoming_call", "/call_established", "/hold", "/call_terminated"]
    assert all(o.status == 200 for o in sim.outbound)


def test_conference_key_bridges_two_calls(sim, http):
    b = sim.backend
    first = b.inject_incoming("+14255550191")
    http.get("/servlet", params={"key": "OK"})
    assert http.get("/servlet", params={"key": "F_CONFERENCE"}).status_code == 200
    assert b.call(first.id).held
    for k in "300":
        http.get("/servlet", params={"key": k})
    assert http.get("/servlet", params={"key": "F_CONFERENCE"}).status_code == 200
    second = next(c for c in b.calls() if c.id != first.id)
    assert second.remote == "300"
    r = http.get("/servlet", params={"key": "F_CONFERENCE"})
    assert r.status_code == 400 and "not answered yet" in r.headers[sim.DETAIL_HEADER]
    b.far_answer(second.id)
    assert http.get("/servlet", params={"key": "F_CONFERENCE"}).status_code == 200
    assert not b.call(first.id).held
    assert b.conferences() == [(first.id, second.id)]
