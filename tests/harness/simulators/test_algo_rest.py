from __future__ import annotations

import ssl

import httpx
import pytest

from gateway.transport.certs import ensure_lab_pki
from harness.simulators.algo_rest import AlgoRestSimulator
from tests.harness.simulators.algo_client import signed
from tests.harness.simulators.conftest import wait_until


@pytest.fixture
def backend(fake):
    return fake("Algo", "8301", "5.3.4", "Algo-8301/5.3.4")


@pytest.fixture
def sim(backend):
    s = AlgoRestSimulator(backend)
    s.start()
    yield s
    s.stop()


@pytest.fixture
def http(sim):
    with httpx.Client(base_url=sim.url, timeout=5) as c:
        yield c


def test_hmac_auth_accepts_a_signed_request_and_reports_what_is_wrong_otherwise(sim, http):
    r = signed(http, "GET", "/api/info/about")
    assert r.status_code == 200 and r.json()["Firmware Version"] == "5.3.4" and r.json()["Product Name"] == "8301"
    r = http.get("/api/info/about")
    assert r.status_code == 401 and "hmac admin" in r.headers[sim.DETAIL_HEADER]
    r = signed(http, "GET", "/api/info/about", password="wrong")
    assert r.status_code == 401 and "does not match" in r.headers[sim.DETAIL_HEADER]
    r = signed(http, "GET", "/api/info/about", skew_s=32)  # Date has whole seconds: 31 s can read as 30.x
    assert r.status_code == 401 and "NTP" in r.headers[sim.DETAIL_HEADER]
    assert signed(http, "GET", "/api/info/about", skew_s=25).status_code == 200  # within ±30 s
    assert signed(http, "GET", "/api/info/about", nonce="n1").status_code == 200
    r = signed(http, "GET", "/api/info/about", nonce="n1")
    assert r.status_code == 401 and "replay" in r.headers[sim.DETAIL_HEADER]


def test_body_is_covered_by_content_md5(sim, http):
    r = signed(http, "POST", "/api/controls/call/start", {"extension": "100", "tone": "chime.wav"})
    assert r.status_code == 200
    good = signed(http, "POST", "/api/controls/call/stop", {})
    assert good.status_code == 200
    req = http.build_request("POST", "/api/controls/call/stop", content=b'{"x":1}',
                             headers={"Content-MD5": "0" * 32, "Date": "x", "Authorization": "hmac admin:a:b"})
    assert http.send(req).status_code == 401


def test_calls_status_and_auto_answer(sim, http):
    status = signed(http, "GET", "/api/info/status").json()
    assert status["SIP Registration"] == "User 1, Successful;" and status["Call Status"] == "Idle"
    assert signed(http, "POST", "/api/controls/call/start", {"extension": "+14255550123", "tone": "go"}).status_code \
        == 200
    assert signed(http, "GET", "/api/info/status").json()["Call Status"] == "Calling"
    sim.backend.far_answer(sim.backend.calls()[0].id)
    assert signed(http, "GET", "/api/info/status").json()["Call Status"] == "Connected"
    assert signed(http, "POST", "/api/controls/call/stop", {}).status_code == 200
    assert not sim.backend.calls()
    call = sim.backend.inject_incoming("+14255550124")  # a page to the speaker: answered by itself
    wait_until(lambda: sim.backend.call(call.id).phase.value == "connected", what="the auto-answer")
    r = signed(http, "POST", "/api/controls/call/page", {})
    assert r.status_code == 400 and "body.extension" in r.headers[sim.DETAIL_HEADER]


def test_factory_restore_turns_the_api_off(backend):
    sim = AlgoRestSimulator(backend, password="s3cret")
    with sim, httpx.Client(base_url=sim.url, timeout=5) as http:
        assert signed(http, "GET", "/api/info/about", password="algo").status_code == 401
        assert signed(http, "POST", "/api/settings/action/restore", {}, password="s3cret").status_code == 200
        r = signed(http, "GET", "/api/info/about", password="algo")
        assert r.status_code == 404 and "admin.web.api" in r.headers[sim.DETAIL_HEADER]
        sim.provision({"admin.web.api": "1"})  # re-bootstrap: provisioning turns it on again
        assert signed(http, "GET", "/api/info/about", password="algo").status_code == 200


def test_basic_auth_over_https_only_and_no_auth(backend, tmp_path):
    pki = ensure_lab_pki(tmp_path, ["127.0.0.1"])
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(pki.server_cert, pki.server_key)
    with AlgoRestSimulator(backend, auth="basic", ssl_context=ctx) as sim:
        assert sim.url.startswith("https://")
        verify = ssl.create_default_context(cafile=str(pki.ca_cert))
        assert httpx.get(sim.url + "/api/info/about", auth=("admin", "algo"), verify=verify, timeout=5).status_code \
            == 200
        assert httpx.get(sim.url + "/api/info/about", auth=("admin", "x"), verify=verify, timeout=5).status_code == 401
    with AlgoRestSimulator(backend, auth="basic") as sim:
        r = httpx.get(sim.url + "/api/info/about", auth=("admin", "algo"), timeout=5)
        assert r.status_code == 401 and "HTTPS" in r.headers[sim.DETAIL_HEADER]
    with AlgoRestSimulator(backend, auth="none") as sim:
        assert httpx.get(sim.url + "/api/info/about", timeout=5).status_code == 200
