"""Feature codes *30*/*31* through the embedded gateway (raw SIP over loopback UDP), and DND in routing."""

from __future__ import annotations

import contextlib

import pytest

from gateway.config import GatewayConfig
from gateway.control_api.client import ControlClient
from gateway.server import EmbeddedGateway
from gateway.services.directory import Directory
from gateway.services.feature_codes import FEATURE_CODES, FeatureCode, FeatureResult, parse_feature_code
from gateway.services.model import Flow, Presence, User
from gateway.services.registrar import DeviceRegistry, Registrar
from gateway.services.routing import Router
from gateway.sip.auth import DigestServer
from gateway.store.sqlite import Store
from tests.gateway.control_api.sipphone import UdpPhone

ALICE = ("fc-alice", "pw-alice", "+14255558001")
BOB = ("fc-bob", "pw-bob", "+14255558002")


@pytest.mark.parametrize(("uri_user", "expected"), [
    ("*30*", ("30", "")), ("%2A31%2A", ("31", "")), ("*30*#", ("30", "")), ("*33*+14255550100", ("33", "+14255550100")),
    ("*30*;user=phone", ("30", "")), ("+14255550100", None), ("*3*", None), ("30", None), ("", None), (None, None),
])
def test_parse_feature_code(uri_user, expected):
    assert parse_feature_code(uri_user) == expected


def test_codes_table_has_dnd_and_room_for_more():
    assert set(FEATURE_CODES) >= {"30", "31"}
    assert all(f.code == k for k, f in FEATURE_CODES.items())


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    gw = EmbeddedGateway(tmp_path_factory.mktemp("gw"), GatewayConfig(sip="127.0.0.1:0", http="127.0.0.1:0"))
    gw.start_in_thread()
    yield gw
    gw.stop_thread()


@pytest.fixture
def api(gateway):
    with ControlClient(gateway.endpoints.control_url, timeout=10.0) as client:
        for username, password, number in (ALICE, BOB):
            client.create_user(username, username.title(), password=password, number=number)
        yield client
        gateway.router.voicemail = None
        client.reset()
        for device in client.devices():
            client.delete_device(device["key"])
        for user in client.users():
            client.delete_user(user["username"])


@pytest.fixture
def phone(gateway, api):
    made: list[UdpPhone] = []

    def make(account, **kw) -> UdpPhone:
        p = UdpPhone(gateway.endpoints.udp, account[0], account[1], **kw)
        made.append(p)
        return p

    yield make
    for p in made:
        with contextlib.suppress(TimeoutError, OSError, AssertionError):
            p.register(expires=0)
        p.close()


def dial(p: UdpPhone, target: str):
    """INVITE ``target`` (answering the digest challenge) and return the final response, ACKed."""
    call_id, invite = p.invite(target)
    resp = p.response_to(call_id, invite.cseq.seq)
    if resp.status >= 300:
        p.ack_failure(invite, resp)
    return resp


def warning_code(resp) -> str:
    return (resp.headers.get("Warning") or "").split('"', 1)[-1].split(":", 1)[0]


def test_star30_sets_dnd_and_star31_clears_it(api, phone):
    alice, bob = phone(ALICE), phone(BOB)
    assert alice.register().status == 200
    assert bob.register().status == 200

    on = dial(alice, "*30*")
    assert (on.status, on.reason) == (603, "DND On")
    assert warning_code(on) == "SGW-FEATURE-DND-ON"
    assert "Do not disturb is on" in (on.headers.get("Reason") or "")
    assert api.user(ALICE[0])["presence"] == "dnd"

    # While DND: the call does not ring Alice's device; she has voicemail but there is no voicemail service.
    busy = dial(bob, ALICE[2])
    assert busy.status == 486, busy
    assert warning_code(busy) == "SGW-ROUTE-DND"
    assert "no voicemail service" in busy.headers.get("Warning")

    off = dial(alice, "%2A31%2A")
    assert (off.status, warning_code(off)) == (603, "SGW-FEATURE-DND-OFF")
    assert api.user(ALICE[0])["presence"] == "available"


def test_star31_clears_user_configured_presence(api, phone):
    api.update_user(ALICE[0], presence="away")
    alice = phone(ALICE)
    assert alice.register().status == 200
    resp = dial(alice, "*31*")
    assert resp.status == 603
    assert "(was away)" in resp.headers.get("Warning")
    assert api.user(ALICE[0])["presence"] == "available"


def test_unknown_code_and_argument_refused_without_change(api, phone):
    alice = phone(ALICE)
    assert alice.register().status == 200
    unknown = dial(alice, "*36*")
    assert (unknown.status, warning_code(unknown)) == (404, "SGW-FEATURE-UNKNOWN")
    assert "*30*" in unknown.headers.get("Warning")
    extra = dial(alice, "*30*123")
    assert (extra.status, warning_code(extra)) == (484, "SGW-FEATURE-ARGUMENT")
    assert api.user(ALICE[0])["presence"] == "available"


@pytest.mark.parametrize("user_agent", ["PolycomVVX-VVX_450-UA/5.9.5.0614_0004f28e5a79", "Yealink SIP-T46S 66.86.0.15"])
def test_signed_out_device_is_refused(api, phone, user_agent):
    alice = phone(ALICE, user_agent=user_agent)
    assert alice.register().status == 200
    (device,) = [d for d in api.devices() if d.get("username") == ALICE[0]]
    api.update_device(device["key"], pair_state="unpaired")
    resp = dial(alice, "*30*")
    assert (resp.status, warning_code(resp)) == (403, "SGW-FEATURE-SIGNED-OUT")
    assert device["key"] in resp.headers.get("Warning")
    assert api.user(ALICE[0])["presence"] == "available"


def test_wrong_password_gets_no_feature(api, phone):
    mallory = phone((ALICE[0], "wrong", ALICE[2]))
    resp = dial(mallory, "*30*")
    assert resp.status == 403
    assert api.user(ALICE[0])["presence"] == "available"


def test_other_invites_pass_through(api, phone):
    alice = phone(ALICE)
    assert alice.register().status == 200
    resp = dial(alice, "+19995550000")  # neither a tenant number nor PSTN: the ordinary routing answers
    assert (resp.status, warning_code(resp)) == (404, "SGW-ROUTE-NOT-FOUND")


def test_registered_code_is_dispatched(gateway, api, phone):
    seen = []

    def handler(fc, user, arg):
        seen.append((user.username, arg))
        return FeatureResult(603, "Noted", "SGW-FEATURE-DND-OFF", f"noted {arg}")

    gateway.feature_codes.register(FeatureCode("33", "test code", handler, takes_argument=True))
    try:
        alice = phone(ALICE)
        assert alice.register().status == 200
        resp = dial(alice, "*33*+14255550100")
        assert (resp.status, resp.reason) == (603, "Noted")
        assert seen == [(ALICE[0], "+14255550100")]
    finally:
        gateway.feature_codes.codes.pop("33", None)


# --- DND in the router alone ------------------------------------------------------------------------------


@pytest.fixture
def router(tmp_path):
    store = Store(tmp_path / "gw.db")
    directory = Directory(store, "sipgw.lab")
    registrar = Registrar(directory, DigestServer("sipgw.lab", b"k" * 32), DeviceRegistry(store))
    yield Router(directory, registrar, media=None, domain="sipgw.lab"), directory
    store.close()


def test_dnd_goes_to_voicemail_when_there_is_one(router):
    r, directory = router
    directory.put_user(User("carol", "Carol", "+14255558003", presence=Presence.DND))
    directory.put_user(User("dave", "Dave", "+14255558004", presence=Presence.DND, voicemail=False))
    vm = Flow("UDP", "127.0.0.1", 5999)
    r.voicemail = lambda user: vm
    d = r.route("+14255558003", 0.0)
    assert [t.kind for t in d.targets] == ["voicemail"] and d.targets[0].flow == vm
    no_vm = r.route("+14255558004", 0.0)
    assert (no_vm.reject_status, no_vm.reject_code) == (486, "SGW-ROUTE-DND")
    assert "has no voicemail" in no_vm.reject_text


def test_available_user_is_routed_normally(router):
    r, directory = router
    directory.put_user(User("erin", "Erin", "+14255558005"))
    d = r.route("+14255558005", 0.0)
    assert (d.reject_status, d.reject_code) == (480, "SGW-ROUTE-UNREACHABLE")


def test_onboarding_device_is_refused(gateway, api, phone):
    signin = gateway.provisioning.signin
    mac = "805ec0aabb01"
    signin.onboard(mac, vendor="Yealink", model="T46S")
    creds = signin.credentials(mac)
    onboarding = phone((creds.username, creds.password, None), user_agent=f"Yealink SIP-T46S 66.86.0.15 {mac}")
    resp = dial(onboarding, "*30*")
    assert (resp.status, warning_code(resp)) == (403, "SGW-FEATURE-SIGNED-OUT")
    assert "onboarding" in resp.headers.get("Warning")
