"""Forwarding: rule checks, routing with rules (always, loop, policy, simultaneous), device redirects, and the
*32*-*35* feature codes through the embedded gateway (raw SIP over loopback UDP)."""

from __future__ import annotations

import contextlib
from dataclasses import replace

import pytest

from gateway.config import GatewayConfig
from gateway.control_api.client import ControlApiError, ControlClient
from gateway.server import EmbeddedGateway
from gateway.services.directory import Directory
from gateway.services.forwarding import Forwarding, ForwardingError, Rule, check_rule
from gateway.services.model import CallingPolicy, Flow, PstnRange, User
from gateway.services.registrar import DeviceRegistry, Registrar
from gateway.services.routing import Router
from gateway.sip import Response
from gateway.sip.auth import DigestServer
from gateway.store.sqlite import Store
from tests.gateway.control_api.sipphone import UdpPhone
from tests.gateway.services.test_feature_codes import dial, warning_code


@pytest.mark.parametrize(("kind", "target", "seconds", "where"), [
    ("sometimes", "+14255550100", None, "body.kind"),
    ("always", "bob", None, "body.target"),
    ("always", "+1", None, "body.target"),
    ("no_answer", "+14255550100", None, "body.seconds"),
    ("no_answer", "+14255550100", 4, "body.seconds"),
    ("no_answer", "+14255550100", True, "body.seconds"),
    ("always", "+14255550100", 10, "body.seconds"),
])
def test_check_rule_names_the_field(kind, target, seconds, where):
    with pytest.raises(ForwardingError) as e:
        check_rule(kind, target, seconds)
    assert e.value.where == where


def test_check_rule_normalises_the_number():
    assert check_rule("no_answer", "+1 (425) 555-0100", 15) == Rule("no_answer", "+14255550100", 15)


class FakeMedia:
    def teams_client(self, user):
        return None

    def pstn_party(self, number):
        return Flow("UDP", "127.0.0.1", 6000)


@pytest.fixture
def world(tmp_path):
    store = Store(tmp_path / "gw.db")
    directory = Directory(store, "sipgw.lab")
    registrar = Registrar(directory, DigestServer("sipgw.lab", b"k" * 32), DeviceRegistry(store))
    router = Router(directory, registrar, FakeMedia(), "sipgw.lab")
    directory.set_pstn_ranges([PstnRange("+1206")])
    for name, number in (("a", "+14255556001"), ("b", "+14255556002"), ("c", "+14255556003")):
        directory.put_user(User(name, name.upper(), number, teams_client=False))
    fwd = Forwarding(store, directory)
    fwd._route = router.route
    yield fwd, directory
    store.close()


def test_always_chain_and_loop_protection(world):
    fwd, _ = world
    fwd.set_rule("a", Rule("always", "+14255556002"))
    fwd.set_rule("b", Rule("always", "+14255556001"))  # back to A: the loop stops at B
    d = fwd.route("+14255556001", 0.0)
    assert d.callee.username == "b"
    assert any("loop a -> b -> a" in text for _, text in fwd.log)
    fwd.set_rule("b", Rule("always", "+12065550100"))  # B forwards on to the PSTN
    d = fwd.route("+14255556001", 0.0)
    assert d.callee is None and [t.kind for t in d.targets] == ["pstn"]


def test_rules_ignored_when_call_redirect_is_disabled(world):
    fwd, directory = world
    fwd.set_rule("a", Rule("always", "+12065550100"))
    directory.set_policy("a", CallingPolicy(allow_call_redirect=False))
    d = fwd.route("+14255556001", 0.0)
    assert d.callee.username == "a" and not d.targets  # A's own (unregistered) devices, not the PSTN
    assert any("AllowCallRedirect disabled" in text for _, text in fwd.log)


def test_simultaneous_ring_adds_the_target(world):
    fwd, _ = world
    fwd.set_rule("a", Rule("simultaneous", "+12065550100"))
    d = fwd.route("+14255556001", 0.0)
    assert d.callee.username == "a" and [t.kind for t in d.targets] == ["pstn"]


def test_always_and_no_answer_exclude_each_other(world):
    fwd, _ = world
    fwd.set_rule("a", Rule("always", "+12065550100"))
    fwd.set_rule("a", Rule("simultaneous", "+12065550101"))
    fwd.set_rule("a", Rule("no_answer", "+12065550102", 10))
    assert sorted(r.kind for r in fwd.rules("a")) == ["no_answer", "simultaneous"]
    assert fwd.clear("a", "simultaneous") == [Rule("no_answer", "+12065550102", 10)]
    assert fwd.clear("a") == []


class _Leg:
    def __init__(self, username):
        self.target = type("T", (), {"binding": type("B", (), {"username": username})()})()
        self.label = f"device of {username}"


class _Call:
    def __init__(self, callee):
        self.callee_user = callee
        self.refusal = None
        self.forwarded_via = []


def _redirect(contact: str) -> Response:
    from gateway.sip import Request

    req = Request.build("INVITE", "sip:a@127.0.0.1", [
        ("Via", "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKr1"), ("From", "<sip:x@sipgw.lab>;tag=1"),
        ("To", "<sip:a@sipgw.lab>"), ("Call-ID", "r1@x"), ("CSeq", "1 INVITE")])
    return Response.for_request(req, 302, headers=[("Contact", contact)], to_tag="d1")


def test_device_redirect_follows_policy_and_loops(world):
    fwd, directory = world
    a = directory.user("a")
    call = _Call(a)
    assert [t.kind for t in fwd.on_redirect(call, _Leg("a"), _redirect("<sip:+12065550100@sipgw.lab>"))] == ["pstn"]
    looping = _Call(a)
    looping.forwarded_via = ["a", "b"]
    assert fwd.on_redirect(looping, _Leg("a"), _redirect("<sip:+14255556002@sipgw.lab>")) is None
    assert looping.refusal[0] == "SGW-LOOP"
    directory.set_policy("a", CallingPolicy(allow_call_redirect=False))
    refused = _Call(replace(a, policy=CallingPolicy(allow_call_redirect=False)))
    assert fwd.on_redirect(refused, _Leg("a"), _redirect("<sip:+12065550100@sipgw.lab>")) is None
    code, text = refused.refusal
    assert code == "SGW-POLICY-CALL-REDIRECT" and "AllowCallRedirect disabled" in text
    no_contact = _Call(directory.user("b"))
    assert fwd.on_redirect(no_contact, _Leg("b"), _redirect("<sip:127.0.0.1>")) is None
    assert no_contact.refusal[0] == "SGW-REDIRECT-REFUSED"


# --- feature codes through the gateway --------------------------------------------------------------------------
ZOE = ("fwd-zoe", "pw-zoe", "+14255556101")
YAN = ("fwd-yan", "pw-yan", "+14255556102")


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    gw = EmbeddedGateway(tmp_path_factory.mktemp("gw"), GatewayConfig(sip="127.0.0.1:0", http="127.0.0.1:0"))
    gw.start_in_thread()
    with ControlClient(gw.endpoints.control_url) as api:
        for username, password, number in (ZOE, YAN):
            api.create_user(username, username, password=password, number=number)
    yield gw
    gw.stop_thread()


@pytest.fixture
def zoe(gateway):
    phone = UdpPhone(gateway.endpoints.udp, ZOE[0], ZOE[1])
    with ControlClient(gateway.endpoints.control_url) as api:
        assert phone.register().status == 200
        try:
            yield phone, api
        finally:
            api.features.clear_forwarding(ZOE[0])
            api.update_user(ZOE[0], allow_call_redirect=True)
            with contextlib.suppress(Exception):
                phone.register(expires=0)
            phone.close()


def test_star_codes_set_read_back_and_reset(zoe):
    phone, api = zoe
    r = dial(phone, f"*33*{YAN[2]}")
    assert (r.status, r.reason, warning_code(r)) == (603, "Forwarding Set", "SGW-FWD-ON")
    r = dial(phone, f"*35*{YAN[2]}")
    assert warning_code(r) == "SGW-FWD-ON"
    r = dial(phone, f"*34*{YAN[2]}*15%23")  # a closing # (escaped, RFC 3261 §19.1.2)
    assert r.status == 603
    rules = api.features.forwarding(ZOE[0])["rules"]
    assert {"kind": "no_answer", "target": YAN[2], "seconds": 15} in rules
    assert not any(x["kind"] == "always" for x in rules)  # no_answer replaced always
    r = dial(phone, "*32*")
    assert (r.status, warning_code(r)) == (603, "SGW-FWD-OFF")
    assert api.features.forwarding(ZOE[0])["rules"] == []


@pytest.mark.parametrize(("code", "status", "diag"), [
    ("*33*", 484, "SGW-FWD-ARGUMENT"),
    (f"*34*{YAN[2]}", 484, "SGW-FWD-ARGUMENT"),
    (f"*34*{YAN[2]}*2", 484, "SGW-FWD-ARGUMENT"),
    ("*33*+4930123456", 404, "SGW-FWD-TARGET"),
    (f"*33*{ZOE[2]}", 484, "SGW-FWD-ARGUMENT"),
])
def test_bad_codes_are_refused_and_store_nothing(zoe, code, status, diag):
    phone, api = zoe
    r = dial(phone, code)
    assert (r.status, warning_code(r)) == (status, diag)
    assert api.features.forwarding(ZOE[0])["rules"] == []


def test_codes_refused_when_call_redirect_is_disabled(zoe):
    phone, api = zoe
    api.update_user(ZOE[0], allow_call_redirect=False)
    r = dial(phone, f"*33*{YAN[2]}")
    assert (r.status, warning_code(r)) == (403, "SGW-POLICY-CALL-REDIRECT")
    assert "AllowCallRedirect disabled" in r.headers.get("Warning")
    assert api.features.forwarding(ZOE[0])["rules"] == []


def test_api_rules_and_errors(zoe):
    _, api = zoe
    out = api.features.set_forwarding(ZOE[0], "no_answer", YAN[2], seconds=20)
    assert out["rules"] == [{"kind": "no_answer", "target": YAN[2], "seconds": 20}]
    for args, kw, where in ((("sometimes", YAN[2]), {}, "body.kind"), (("always", ZOE[2]), {}, "body.target"),
                            (("no_answer", YAN[2]), {"seconds": 500}, "body.seconds")):
        with pytest.raises(ControlApiError) as e:
            api.features.set_forwarding(ZOE[0], *args, **kw)
        assert (e.value.status, e.value.where) == (400, where)
    with pytest.raises(ControlApiError) as e:
        api.features.clear_forwarding(ZOE[0], "nope")
    assert e.value.where == "query.kind"
    assert api.features.forwarding(ZOE[0])["rules"] == [{"kind": "no_answer", "target": YAN[2], "seconds": 20}]
