"""The registrar: digest authentication, no user enumeration, firmware gating, RFC 3261 §10.3 bindings."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.services.model import Device, Flow, PairState
from gateway.services.registrar import _tag
from gateway.sip import Request
from gateway.sip.auth import DigestClient

REALM = "sipgw.lab"
VVX_UA = "PolycomVVX-VVX_450-UA/5.9.5.0614_0004f28e5a79"
OLD_UA = "PolycomVVX-VVX_450-UA/5.9.4.3247_0004f28e5a79"
ENTERPRISE_UA = "Cisco-CP8851/12.1.1"
FLOW = Flow("UDP", "127.0.0.1", 5070)


class Phone:
    """A minimal registering UA: builds REGISTERs and answers challenges with DigestClient."""

    def __init__(self, user, password, ua=VVX_UA, contact="sip:avery@127.0.0.1:5070", call_id="reg-1"):
        self.client = DigestClient(user, password)
        self.user, self.ua, self.contact, self.call_id = user, ua, contact, call_id
        self.cseq = 0
        self.authz = None

    def request(self, expires=3600, contact=None, extra=()):
        self.cseq += 1
        headers = [
            ("Via", f"SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-{self.call_id}-{self.cseq};rport"),
            ("From", f"<sip:{self.user}@{REALM}>;tag=f1"), ("To", f"<sip:{self.user}@{REALM}>"),
            ("Call-ID", self.call_id), ("CSeq", f"{self.cseq} REGISTER"),
            ("Contact", contact or f"<{self.contact}>"), ("Expires", str(expires)), ("User-Agent", self.ua),
            *extra,
        ]
        if self.authz:
            headers.append(("Authorization", self.authz))
        return Request.build("REGISTER", f"sip:{REALM}", headers)

    def register(self, reg, now=100.0, wall=1_700_000_000.0, **kw):
        resp = reg.handle(self.request(**kw), FLOW, now, wall)
        if resp.status == 401:
            self.challenges = resp.headers.get_all("WWW-Authenticate")
            self.reauth()
            resp = reg.handle(self.request(**kw), FLOW, now, wall)
        return resp

    def reauth(self):
        """Credentials with the next nonce count, as a phone sends on its next REGISTER."""
        self.authz = str(self.client.authorize(self.challenges, method="REGISTER", uri=f"sip:{REALM}"))


def warning(resp) -> str:
    return resp.headers.get("Warning") or ""


def test_challenge_then_register(env):
    reg, store = env
    phone = Phone("avery", "pw-avery")
    first = reg.handle(phone.request(), FLOW, 100.0, 1.7e9)
    assert first.status == 401
    algs = [h.split("algorithm=")[1].split(",")[0] for h in first.headers.get_all("WWW-Authenticate")]
    assert algs == ["SHA-256", "MD5"]
    resp = phone.register(reg)
    assert resp.status == 200
    assert resp.headers.get("Contact").startswith("<sip:avery@127.0.0.1:5070>;expires=3600")
    (b,) = reg.bindings("avery", 100.0)
    assert b.flow == FLOW and b.device_key == "0004f28e5a79"
    dev = store.device("0004f28e5a79")
    assert (dev.vendor, dev.model, dev.firmware, dev.verdict) == ("Poly", "VVX 450", "5.9.5.0614", "supported")
    assert dev.pair_state is PairState.PAIRED and dev.username == "avery"


def test_unknown_user_and_wrong_password_look_the_same(env):
    reg, _ = env
    unknown = Phone("mallory", "x").register(reg)
    wrong = Phone("avery", "wrong").register(reg)
    assert unknown.status == wrong.status == 403
    assert warning(unknown) == warning(wrong)
    assert "SGW-AUTH-FAILED" in warning(wrong)


def test_repeated_failures_are_throttled(env):
    reg, _ = env
    for _ in range(3):
        assert Phone("avery", "wrong").register(reg).status == 403
    resp = Phone("avery", "pw-avery").register(reg)
    assert resp.status == 503 and resp.headers.get("Retry-After") and "SGW-AUTH-THROTTLED" in warning(resp)
    # After the window the address may try again.
    assert Phone("avery", "pw-avery").register(reg, now=200.0).status == 200


def test_below_minimum_firmware_is_refused_with_the_reason(env):
    reg, store = env
    resp = Phone("avery", "pw-avery", ua=OLD_UA).register(reg)
    assert resp.status == 403
    w = warning(resp)
    assert w.startswith('399 sipgw-lab "SGW-FW-BELOW-MINIMUM:')
    assert "VVX 450" in w and "5.9.4.3247" in w and "5.9.5" in w
    assert reg.bindings("avery", 100.0) == []
    assert store.device("0004f28e5a79").verdict == "below_minimum"


def test_enterprise_firmware_is_wrong_family(env):
    reg, _ = env
    resp = Phone("avery", "pw-avery", ua=ENTERPRISE_UA).register(reg)
    assert resp.status == 403 and "SGW-FW-WRONG-FAMILY" in warning(resp) and "multiplatform" in warning(resp)


def test_warn_policy_accepts_with_a_warning(env):
    reg, _ = env
    reg.config.firmware_policy = "warn"
    resp = Phone("avery", "pw-avery", ua=OLD_UA).register(reg)
    assert resp.status == 200 and "SGW-FW-BELOW-MINIMUM" in warning(resp)


def test_expiry_refresh_unregister_and_wildcard(env):
    reg, _ = env
    phone = Phone("avery", "pw-avery")
    assert phone.register(reg, expires=120).status == 200
    assert len(reg.bindings("avery", 219.0)) == 1 and reg.bindings("avery", 221.0) == []
    assert phone.register(reg, expires=120, now=150.0).status == 200  # refresh
    assert len(reg.bindings("avery", 260.0)) == 1
    second = phone.register(reg, contact="<sip:avery@127.0.0.1:5072>", now=150.0)
    assert second.status == 200 and len(second.headers.get_all("Contact")) == 2
    assert phone.register(reg, expires=0, now=151.0).status == 200
    assert [b.uri for b in reg.bindings("avery", 152.0)] == ["sip:avery@127.0.0.1:5072"]
    bad = phone.register(reg, contact="*", expires=10, now=152.0)
    assert bad.status == 400 and "SGW-REG-BAD-CONTACT" in warning(bad)
    assert phone.register(reg, contact="*", expires=0, now=153.0).status == 200
    assert reg.bindings("avery", 154.0) == []


def test_interval_too_brief(env):
    reg, _ = env
    resp = Phone("avery", "pw-avery").register(reg, expires=30)
    assert resp.status == 423 and resp.headers.get("Min-Expires") == "60"


def test_out_of_order_cseq(env):
    reg, _ = env
    phone = Phone("avery", "pw-avery")
    assert phone.register(reg).status == 200
    phone.cseq -= 2  # an older REGISTER of the same Call-ID arrives late
    phone.reauth()
    resp = reg.handle(phone.request(), FLOW, 101.0, 1.7e9)
    assert resp.status == 500 and "SGW-REG-OUT-OF-ORDER" in warning(resp)


def test_cannot_register_another_users_aor(env):
    reg, _ = env
    phone = Phone("avery", "pw-avery")
    phone.register(reg)

    def foreign():
        phone.reauth()
        req = phone.request()
        return Request.build("REGISTER", req.uri, [
            (n, v.replace("sip:avery@", "sip:blake@") if n == "To" else v) for n, v in req.headers.items()])

    resp = reg.handle(foreign(), FLOW, 100.0, 1.7e9)
    assert resp.status == 403 and "SGW-REG-FOREIGN-AOR" in warning(resp)


def test_register_by_number_aor(env):
    reg, _ = env
    phone = Phone("avery", "pw-avery")
    phone.register(reg)
    phone.reauth()
    req = phone.request()
    numbered = Request.build("REGISTER", req.uri, [
        (n, v.replace("sip:avery@", "sip:+14255550101@") if n == "To" else v) for n, v in req.headers.items()])
    assert reg.handle(numbered, FLOW, 100.0, 1.7e9).status == 200


def test_offboarded_device_is_refused(env):
    reg, _store = env
    reg.devices.put(Device("0004f28e5a79", pair_state=PairState.OFFBOARDED))
    resp = Phone("avery", "pw-avery").register(reg)
    assert resp.status == 403 and "SGW-DEVICE-OFFBOARDED" in warning(resp)


def test_a_multi_port_device_is_refused_by_its_mac_only_once_every_port_is_offboarded(env):
    """Ports of an ATA have their own records (``<mac>:001`` …); a REGISTER that names the bare MAC (its User-Agent
    carries it) is refused while every port is offboarded, and accepted while one port is not."""
    reg, _store = env
    reg.devices.put(Device("0004f28e5a79:001", pair_state=PairState.OFFBOARDED))
    reg.devices.put(Device("0004f28e5a79:002", pair_state=PairState.UNPAIRED))
    assert Phone("avery", "pw-avery").register(reg).status == 200
    reg.devices.put(Device("0004f28e5a79:002", pair_state=PairState.OFFBOARDED))
    resp = Phone("avery", "pw-avery", call_id="reg-2").register(reg)
    assert resp.status == 403 and "SGW-DEVICE-OFFBOARDED" in warning(resp)


def test_listeners_hear_changes(env):
    reg, _ = env
    seen = []
    reg.listeners.append(lambda user, bindings: seen.append((user, len(bindings))))
    Phone("avery", "pw-avery").register(reg, expires=60)
    reg.expire(200.0)
    assert seen == [("avery", 1), ("avery", 0)]


def test_a_refresh_from_the_same_device_only_moves_its_last_connected_time(env):
    reg, store = env
    phone = Phone("avery", "pw-avery")
    assert phone.register(reg, wall=1_700_000_000.0).status == 200
    first = reg.devices.get("0004f28e5a79")
    phone.reauth()
    assert phone.register(reg, wall=1_700_000_050.0).status == 200
    again = reg.devices.get("0004f28e5a79")
    assert again.last_connected == 1_700_000_050.0 and again.created == first.created and again.id == first.id
    assert (again.vendor, again.model, again.firmware, again.user_agent) == (
        first.vendor, first.model, first.firmware, first.user_agent)
    store.flush()
    assert store.device("0004f28e5a79").last_connected == 1_700_000_050.0  # read back from the store


def test_public_hooks_for_services_that_authenticate_registrations_themselves(env):
    from gateway.services.registrar import RegisterError

    reg, _ = env
    seen = []
    reg.listeners.append(lambda user, bindings: seen.append((user, [b.device_key for b in bindings])))
    assert reg.verdict_for(VVX_UA).model == "VVX 450"
    user = reg.directory.user("avery")
    phone = Phone("avery", "pw-avery")
    resp = reg.bind(phone.request(), user, FLOW, 100.0, 1.7e9, "dev-key-1", VVX_UA)
    assert resp.status == 200 and [b.device_key for b in reg.bindings("avery", 100.0)] == ["dev-key-1"]
    with pytest.raises(RegisterError) as err:
        reg.bind(phone.request(expires=10), user, FLOW, 100.0, 1.7e9, "dev-key-1", VVX_UA)
    assert err.value.status == 423 and err.value.extra == [("Min-Expires", "60")]
    assert reg.drop_device("other-key", 101.0) == []
    assert reg.drop_device("dev-key-1", 101.0) == ["avery"]
    assert reg.bindings("avery", 101.0) == [] and seen[-1] == ("avery", [])


def test_the_stateless_challenge_is_what_handle_answers_and_only_without_credentials(env):
    reg, _ = env
    phone = Phone("avery", "pw-avery")
    request = phone.request()
    stateless = reg.stateless_challenge(request, FLOW, 100.0, 1.7e9)
    stateful = reg.handle(request, FLOW, 100.0, 1.7e9)
    assert stateless.status == stateful.status == 401
    assert stateless.to.tag == stateful.to.tag  # a retransmission gets the same To tag
    assert len(stateless.headers.get_all("WWW-Authenticate")) == 2
    assert phone.register(reg).status == 200
    assert reg.stateless_challenge(phone.request(), FLOW, 100.0, 1.7e9) is None  # credentials: handle() decides
    for _ in range(3):
        Phone("avery", "wrong").register(reg)
    # A throttled address gets handle()'s 503, not a challenge.
    assert reg.stateless_challenge(Phone("avery", "x").request(), FLOW, 100.0, 1.7e9) is None


@settings(max_examples=300, deadline=None)
@given(call_id=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789@.-", min_size=1, max_size=30),
       seq=st.integers(min_value=0, max_value=2**31 - 1))
def test_the_to_tag_of_a_register_is_r_and_ten_digits_fixed_per_transaction(call_id: str, seq: int) -> None:
    req = Request.build("REGISTER", "sip:sipgw.lab", [
        ("Via", "SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bKt1"), ("From", "<sip:zed@sipgw.lab>;tag=f"),
        ("To", "<sip:zed@sipgw.lab>"), ("Call-ID", call_id), ("CSeq", f"{seq} REGISTER")])
    tag = _tag(req)
    assert tag == f"r{abs(hash((call_id, seq))) % 10**10:010d}"  # leading zeros kept
    assert len(tag) == 11 and tag[0] == "r" and tag[1:].isdigit()
