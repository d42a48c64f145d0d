"""The yealink-action-uri driver: read-back parsing, the Action URL listener turning callbacks into calls,
the allow-list and on-phone confirmation reported for bootstrap, credentials kept out of the log."""

from __future__ import annotations

import httpx
import pytest

from harness.drivers.vendors import Endpoint, VendorApiError, yealink
from harness.protocols import CallState
from harness.simulators import FakeBackend
from harness.simulators.yealink_action_uri import YealinkActionUriSimulator
from tests.harness.drivers.recorded import Replay, reply
from tests.harness.simulators.conftest import fake_identity, wait_until


@pytest.fixture
def session():
    rp = Replay({("GET", "/servlet"): (200, reply("yealink", "phonecfg_get.txt").decode())})
    s = yealink.connect(Endpoint("https://192.0.2.20", "admin", "s3cret", True, 2.0, {"transport": rp.transport}))
    yield s, rp
    s.close()


def test_readback_identity_and_lines(session):
    s, rp = session
    ident = yealink.identity(s)
    assert (ident.model, ident.firmware, ident.mac) == ("T46S", "66.86.0.15", "805ec012dc69")
    l1, l2 = yealink.lines(s)
    assert l1.registered and l1.address == "casey" and not l2.registered
    assert rp.requests[0].url.params["phonecfg"] == "get"


def test_action_url_callbacks_become_calls_in_order(session):
    s, _ = session
    urls = yealink.action_urls(s)
    assert urls["action_url.incoming_call"].endswith("/incoming_call?id=$call_id&remote=$remote")
    base = s.listen_url
    for path in ("incoming_call?id=7&remote=%2B14255550111", "call_established?id=7", "hold?id=7", "mute"):
        assert httpx.get(f"{base}/{path}").status_code == 200
    (call,) = yealink.calls(s)
    assert (call.handle, call.state, call.direction, call.remote) == ("7", CallState.CONFIRMED, "in", "+14255550111")
    assert call.local_hold and call.muted
    assert httpx.get(f"{base}/call_terminated?id=7").status_code == 200
    assert yealink.calls(s) == [] and yealink.all_calls(s)[0].state is CallState.DISCONNECTED
    assert httpx.get(f"{base}/not_an_event").status_code == 404


def test_allow_list_then_confirmation_on_the_phone():
    backend = FakeBackend(fake_identity("Yealink", "T46S", "66.86.0.15", "Yealink SIP-T46S 66.86.0.15"))
    with YealinkActionUriSimulator(backend, allowed_ips=(), confirm_prompt=True, admin_password="pw") as sim:
        s = yealink.connect(Endpoint(sim.url, "admin", "pw", True, 2.0))
        try:
            assert yealink.probe(s).problem == "not_allowed"
            sim.provision({"features.action_uri_limit_ip": "127.0.0.1"})
            assert yealink.probe(s).problem == "confirm_on_device"
            with pytest.raises(VendorApiError, match="Allow Remote Control"):
                yealink.key(s, "OK")
            sim.confirm_remote_control()
            assert yealink.probe(s).ok
            yealink.config_set(s, yealink.action_urls(s))
            backend.inject_incoming("+14255550111")
            call = wait_until(lambda: yealink.calls(s), 5.0, "the incoming_call Action URL")[0]
            yealink.answer(s, call.handle)  # ASW:<id>
            wait_until(lambda: yealink.calls(s)[0].state is CallState.CONFIRMED, 5.0, "call_established")
        finally:
            s.close()


def test_login_prefix_password_is_redacted_in_the_log(session):
    s, _ = session
    s.request("GET", "/servlet?p=login&q=login&username=admin&pwd=s3cret&phonecfg=get")
    assert "s3cret" not in str(s.log) and "pwd=***" in s.log[-1]["path"]
