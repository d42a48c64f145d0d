"""The algo-rest driver: HMAC request signing checked by the simulator's own verifier, the clock-skew
correction, and recorded ``/api/info`` replies."""

from __future__ import annotations

import pytest

from harness.drivers.vendors import Endpoint, VendorApiError, algo
from harness.protocols import CallState, NotApplicable
from harness.simulators import FakeBackend
from harness.simulators.algo_rest import AlgoRestSimulator
from tests.harness.drivers.recorded import Replay, reply
from tests.harness.simulators.conftest import fake_identity


@pytest.fixture
def sim():
    backend = FakeBackend(fake_identity("Algo", "8301", "5.3.4", "Algo-8301/5.3.4"))
    clock = {"skew": 0.0}
    import time

    s = AlgoRestSimulator(backend, password="lab-pass", clock=lambda: time.time() + clock["skew"])
    s.start()
    yield s, backend, clock
    s.stop()


def test_signed_requests_are_accepted_and_read_back(sim):
    s, backend, _ = sim
    session = algo.connect(Endpoint(s.url, None, "lab-pass", True, 2.0))
    ident = algo.identity(session)
    assert (ident.model, ident.firmware) == ("8301", "5.3.4")
    assert algo.lines(session)[0].registered
    algo.dial(session, "+14255550111")  # a signed POST with a body (Content-MD5 covered by the HMAC)
    assert backend.calls()[0].remote == "+14255550111"
    (call,) = algo.calls(session)
    assert call.direction == "out" and call.state is CallState.CALLING and call.remote == "+14255550111"
    algo.hangup(session, call.handle)
    assert algo.calls(session) == []


def test_device_clock_off_by_more_than_30s_is_named_and_corrected(sim):
    s, _, clock = sim
    clock["skew"] = 120.0  # the device's clock runs two minutes ahead
    session = algo.connect(Endpoint(s.url, None, "lab-pass", True, 2.0))
    with pytest.raises(VendorApiError, match="more than 30 s from the device clock"):
        algo.identity(session)
    fixed = algo.connect(Endpoint(s.url, None, "lab-pass", True, 2.0, {"clock_skew_s": 120.0}))
    assert algo.identity(fixed).model == "8301"


def test_wrong_password_and_api_off(sim):
    s, _, _ = sim
    bad = algo.connect(Endpoint(s.url, None, "wrong", True, 2.0))
    assert algo.probe(bad).problem == "auth"
    s.provision({"admin.web.api": "0"})
    assert algo.probe(algo.connect(Endpoint(s.url, None, "lab-pass", True, 2.0))).problem == "api_disabled"


def test_recorded_about_and_status():
    rp = Replay({("GET", "/api/info/about"): (200, reply("algo", "about.json")),
                 ("GET", "/api/info/status"): (200, reply("algo", "status.json"))})
    session = algo.connect(Endpoint("https://192.0.2.30", None, "", True, 2.0, {"transport": rp.transport,
                                                                               "auth": "none"}))
    ident = algo.identity(session)
    assert (ident.model, ident.firmware, ident.mac) == ("8301", "5.3.4", "0022ee0512ab")
    page, ring = algo.lines(session)
    assert page.registered and page.address == "Page" and not ring.registered
    (call,) = algo.calls(session)
    assert call.state is CallState.CONFIRMED and call.direction == "in"  # not dialled by us: the far end called
    assert "Authorization" not in rp.requests[0].headers  # auth none: nothing sent


def test_operations_the_api_lacks_are_not_applicable():
    session = algo.connect(Endpoint("https://192.0.2.30", None, "", True, 2.0, {"auth": "none"}))
    for fn in (algo.hold, algo.reject):
        with pytest.raises(NotApplicable, match="Algo RESTful API"):
            fn(session, "algo-1")
    with pytest.raises(ValueError, match="auth='digest'"):
        algo.connect(Endpoint("https://192.0.2.30", None, "", True, 2.0, {"auth": "digest"}))
