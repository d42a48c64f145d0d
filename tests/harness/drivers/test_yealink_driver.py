"""The yealink-action-uri driver: read-back parsing, the Action URL listener turning callbacks into calls,
the allow-list and on-phone confirmation reported for bootstrap, credentials kept out of the log."""

from __future__ import annotations

import httpx
import pytest

from harness.drivers.vendors import Endpoint, VendorApiError, yealink
from harness.protocols import CallState, NotApplicable
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


def test_a_call_that_ended_before_it_was_listed_is_reported_once(session):
    """*30* answered at once: outgoing_call then call_terminated before any poll listed it live."""
    s, _ = session
    base = s.listen_url
    for path in ("outgoing_call?id=3&remote=%2A30%2A", "call_terminated?id=3"):
        assert httpx.get(f"{base}/{path}").status_code == 200
    assert yealink.calls(s) == []
    [ended] = yealink.ended_calls(s)
    assert (ended.handle, ended.state, ended.direction, ended.remote) == ("3", CallState.DISCONNECTED, "out", "*30*")
    assert yealink.ended_calls(s) == []  # once
    # A call listed live, then ended, is not reported again (the driver saw it leave the list).
    for path in ("outgoing_call?id=3&remote=%2B12065550100", "call_established?id=3"):  # $call_id reused
        assert httpx.get(f"{base}/{path}").status_code == 200
    (live,) = yealink.calls(s)
    assert (live.state, live.remote) == (CallState.CONFIRMED, "+12065550100")
    assert httpx.get(f"{base}/call_terminated?id=3").status_code == 200
    assert yealink.calls(s) == [] and yealink.ended_calls(s) == []


def test_remote_hold_from_held_and_unheld(session):
    s, _ = session
    base = s.listen_url
    for path in ("incoming_call?id=5&remote=100", "call_established?id=5", "held?id=5"):
        assert httpx.get(f"{base}/{path}").status_code == 200
    assert yealink.calls(s)[0].remote_hold and not yealink.calls(s)[0].local_hold
    assert httpx.get(f"{base}/unheld?id=5").status_code == 200
    assert not yealink.calls(s)[0].remote_hold


def test_transfer_target_is_keyed_on_the_keypad_without_plus():
    assert yealink.keypad("+14255550111") == list("14255550111")
    assert yealink.keypad("*34*12#") == ["STAR", "3", "4", "STAR", "1", "2", "POUND"]
    with pytest.raises(NotApplicable, match="only 0-9"):
        yealink.keypad("alice")


def test_message_waiting_read_back_from_phonecfg():
    backend = FakeBackend(fake_identity("Yealink", "T46S", "66.86.0.15", "Yealink SIP-T46S 66.86.0.15"))
    with YealinkActionUriSimulator(backend, allowed_ips=("127.0.0.1",), confirm_prompt=False,
                                   admin_password="pw") as sim:
        s = yealink.connect(Endpoint(sim.url, "admin", "pw", True, 2.0))
        try:
            assert not yealink.mwi(s, 1).waiting
            backend.set_mwi("Messages-Waiting: yes\r\nVoice-Message: 2/1\r\n")
            state = yealink.mwi(s, 1)
            assert (state.waiting, state.new, state.old, state.line) == (True, 2, 1, 0)
            with pytest.raises(VendorApiError, match="no account 2"):
                yealink.mwi(s, 2)
        finally:
            s.close()


def test_own_forwarding_through_phonecfg_set_and_read_back():
    from harness.protocols import ForwardingKind, ForwardingRule
    from harness.simulators.backend import Divert

    backend = FakeBackend(fake_identity("Yealink", "T46S", "66.86.0.15", "Yealink SIP-T46S 66.86.0.15"))
    with YealinkActionUriSimulator(backend, allowed_ips=("127.0.0.1",), confirm_prompt=False,
                                   admin_password="pw") as sim:
        s = yealink.connect(Endpoint(sim.url, "admin", "pw", True, 2.0))
        try:
            yealink.set_forwarding(s, 1, ForwardingRule(ForwardingKind.ALWAYS, "+12065550100"))
            assert backend.diverts[1] == Divert("+12065550100", None, 20.0)
            assert yealink.forwarding(s, 1) == [ForwardingRule(ForwardingKind.ALWAYS, "+12065550100", True, None, 0)]
            with pytest.raises(VendorApiError, match=r"timeout_fwd\.timeout"):
                yealink.config_set(s, {"account.1.timeout_fwd.timeout": "0"})
            assert "account.1.timeout_fwd.timeout" not in sim.config  # refused as a whole
            with pytest.raises(NotApplicable, match="not busy"):
                yealink.set_forwarding(s, 1, ForwardingRule(ForwardingKind.BUSY, "+12065550100"))
            yealink.clear_forwarding(s, 1)
            assert backend.diverts[1] == Divert(None, None, 20.0) and yealink.forwarding(s, 1) == []
        finally:
            s.close()
