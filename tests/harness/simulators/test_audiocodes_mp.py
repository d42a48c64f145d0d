from __future__ import annotations

import httpx
import pytest

from harness.simulators.audiocodes_mp import AudioCodesMpSimulator
from tests.harness.simulators.conftest import wait_until

AUTH = ("Admin", "Admin")


@pytest.fixture
def sim(fake):
    backend = fake("AudioCodes", "MP114-FXS", "6.60A.367.001", "Audiocodes-Sip-Gateway-MP-114 FXS/v.6.60A.367.001",
                   lines=3)
    s = AudioCodesMpSimulator(backend, restart_s=0.2)
    s.start()
    yield s
    s.stop()


@pytest.fixture
def http(sim):
    with httpx.Client(base_url=sim.url, auth=AUTH, timeout=5) as c:
        yield c


def test_status_and_auth(sim, http):
    assert httpx.get(sim.url + "/api/v1/status", timeout=5).status_code == 401
    st = http.get("/api/v1/status").json()
    assert st["productType"] == "MP114-FXS" and st["versionID"] == "6.60A.367.001"
    assert st["macAddress"] == "0004f28e5a79" and st["operationalState"] == "UNLOCKED"
    assert http.get("/api/").status_code == 200


def test_ports_follow_the_analog_side(sim, http):
    ports = http.get("/api/v1/status/ports").json()["ports"]
    assert [p["port"] for p in ports] == [1, 2, 3] and {p["callState"] for p in ports} == {"idle"}
    call = sim.backend.inject_incoming("+14255550150", line=2)
    assert http.get("/api/v1/status/ports/2").json()["callState"] == "ringing"
    assert http.post("/_sim/ports/2/offhook").json() == {"answered": call.id}
    p2 = http.get("/api/v1/status/ports/2").json()
    assert p2["callState"] == "connected" and p2["hookState"] == "offHook" and p2["remoteNumber"] == "+14255550150"
    http.post("/_sim/ports/2/onhook")
    assert http.get("/api/v1/status/ports/2").json()["callState"] == "idle"
    assert http.post("/_sim/ports/1/dial", json={"digits": "100"}).status_code == 409  # on-hook
    http.post("/_sim/ports/1/offhook")
    assert http.post("/_sim/ports/1/dial", json={"digits": "100"}).status_code == 200
    assert http.get("/api/v1/status/ports/1").json()["callState"] == "dialing"
    r = http.get("/api/v1/status/ports/4")
    assert r.status_code == 404 and "usable ports: [1, 2, 3]" in r.headers[sim.DETAIL_HEADER]


def test_reset(sim, http):
    r = http.post("/api/v1/actions/reset", json={"saveConfiguration": "yes"})
    assert r.status_code == 400 and "saveConfiguration" in r.headers[sim.DETAIL_HEADER]
    r = http.post("/api/v1/actions/reset", json={"saveConfiguration": True, "gracefulTimeout": 0})
    assert r.status_code == 200 and sim.backend.restarts == 1 and sim.saved_configurations == 1
    assert http.get("/api/v1/status").status_code == 503
    wait_until(lambda: http.get("/api/v1/status").status_code == 200, what="the device to be back")
