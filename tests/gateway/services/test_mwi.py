"""MWI (RFC 3842 message-summary over RFC 6665) through the embedded gateway, and subscription expiry alone."""

from __future__ import annotations

import contextlib
import itertools
import secrets

import pytest

from gateway.config import GatewayConfig
from gateway.control_api.client import ControlClient
from gateway.server import EmbeddedGateway
from gateway.services.model import Flow
from gateway.services.mwi import MwiService, message_summary
from gateway.sip import Request, Response
from tests.gateway.control_api.sipphone import DOMAIN, UdpPhone

AMY = ("mwi-amy", "pw-amy", "+14255557001")


def test_message_summary_body():
    body = message_summary(2, 1, "sip:amy@sipgw.lab").decode()
    assert body.startswith("Messages-Waiting: yes\r\n")
    assert "Message-Account: sip:amy@sipgw.lab\r\n" in body and "Voice-Message: 2/1 (0/0)\r\n" in body
    assert message_summary(0, 3, "sip:a@b").decode().startswith("Messages-Waiting: no\r\n")


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    gw = EmbeddedGateway(tmp_path_factory.mktemp("gw"), GatewayConfig(sip="127.0.0.1:0", http="127.0.0.1:0"))
    gw.start_in_thread()
    yield gw
    gw.stop_thread()


@pytest.fixture
def amy(gateway):
    with ControlClient(gateway.endpoints.control_url) as api:
        api.create_user(AMY[0], "Amy", password=AMY[1], number=AMY[2])
        phone = UdpPhone(gateway.endpoints.udp, AMY[0], AMY[1])
        try:
            yield phone, api
        finally:
            with contextlib.suppress(TimeoutError, OSError, AssertionError):
                phone.register(expires=0)
            phone.close()
            api.delete_user(AMY[0])
            gateway.voicemail.clear(AMY[0])


def is_notify(m) -> bool:
    return isinstance(m, Request) and m.method == "NOTIFY" and (m.headers.get("Event") or "") == "message-summary"


def ok(phone: UdpPhone, req: Request) -> None:
    phone.send(Response.for_request(req, 200, to_tag=req.to.tag or secrets.token_hex(4)))


def subscribe(phone: UdpPhone, expires: int, *, call_id: str | None = None, to_tag: str | None = None,
              cseq: int = 1) -> tuple[str, Response]:
    call_id = call_id or f"sub-{secrets.token_hex(5)}@127.0.0.1"
    to = f"<sip:{phone.username}@{DOMAIN}>" + (f";tag={to_tag}" if to_tag else "")
    req = Request.build("SUBSCRIBE", f"sip:{phone.username}@{DOMAIN}", [
        ("Via", phone._via()), ("Max-Forwards", "70"), ("From", f"<sip:{phone.username}@{DOMAIN}>;tag={phone.tag}"),
        ("To", to), ("Call-ID", call_id), ("CSeq", f"{cseq} SUBSCRIBE"),
        ("Contact", f"<sip:{phone.username}@{phone.addr[0]}:{phone.addr[1]}>"), ("Event", "message-summary"),
        ("Accept", "application/simple-message-summary"), ("Expires", str(expires))])
    phone.send(req)
    return call_id, phone.response_to(call_id, cseq)


def silence_wav(seconds: float = 0.1) -> bytes:
    import io
    import wave

    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x00\x00" * int(8000 * seconds))
    return buf.getvalue()


def deposit(gateway, username: str) -> None:
    gateway.voicemail.deposit(username, "+12065550100", silence_wav(), 1.0)


def test_subscribe_notify_refresh_and_unsubscribe(gateway, amy):
    phone, api = amy
    assert phone.register().status == 200
    # a registration gets an unsolicited NOTIFY with the current state
    first = phone.receive(5, is_notify)
    ok(phone, first)
    assert b"Messages-Waiting: no" in first.body

    call_id, resp = subscribe(phone, 600)
    assert resp.status == 200 and resp.headers.get("Expires") == "600"
    notify = phone.receive(5, lambda m: is_notify(m) and m.call_id == call_id)
    ok(phone, notify)
    assert notify.headers.get("Subscription-State", "").startswith("active;expires=")
    assert notify.headers.get("Content-Type") == "application/simple-message-summary"

    deposit(gateway, AMY[0])  # lamp on: the subscription gets a NOTIFY, Voice-Message 1/0
    on = phone.receive(5, lambda m: is_notify(m) and m.call_id == call_id)
    ok(phone, on)
    assert b"Messages-Waiting: yes" in on.body and b"Voice-Message: 1/0" in on.body
    state = api.features.mwi(AMY[0])
    assert state["waiting"] and state["new"] == 1 and len(state["subscriptions"]) == 1

    tag = resp.to.tag
    _, refreshed = subscribe(phone, 0, call_id=call_id, to_tag=tag, cseq=2)  # unsubscribe in the dialog
    assert refreshed.status == 200
    final = phone.receive(5, lambda m: is_notify(m) and m.call_id == call_id)
    ok(phone, final)
    assert final.headers.get("Subscription-State", "").startswith("terminated")
    assert api.features.mwi(AMY[0])["subscriptions"] == []


def test_the_unsolicited_notify_follows_the_answer_to_the_register(gateway, amy):
    """The device learns that it is registered from the 200 (RFC 3261 §10.2); the NOTIFY that tells it the box's
    state comes after that answer, not before it (a phone may drop a NOTIFY for an account it has not yet
    registered, and then only the NOTIFY's retransmission reaches it)."""
    phone, _ = amy
    arrived: list = []
    receive = phone.receive
    phone.receive = lambda timeout=5.0, want=lambda m: True: receive(
        timeout, lambda m: arrived.append(m) is None and want(m))
    assert phone.register().status == 200
    ok(phone, phone.receive(5, is_notify))
    kinds = [("NOTIFY" if is_notify(m) else m.status) for m in arrived]
    assert kinds[:3] == [401, 200, "NOTIFY"], kinds


def test_subscribe_refused_without_registration_and_below_min_expires(gateway, amy):
    phone, _ = amy
    _, refused = subscribe(phone, 600)
    assert refused.status == 403 and "SGW-MWI-NOT-REGISTERED" in (refused.headers.get("Warning") or "")
    assert phone.register().status == 200
    _, brief = subscribe(phone, 10)
    assert brief.status == 423 and brief.headers.get("Min-Expires") == "60"


def test_unsolicited_notify_follows_the_box_and_a_new_registration(gateway, amy):
    phone, api = amy
    assert phone.register().status == 200
    ok(phone, phone.receive(5, is_notify))
    deposit(gateway, AMY[0])
    on = phone.receive(5, lambda m: is_notify(m) and b"Messages-Waiting: yes" in m.body)
    ok(phone, on)
    assert on.headers.get("Subscription-State") == "active"
    assert phone.register().status == 200  # a plain refresh (same Call-ID, next CSeq): the lamp is already right
    with pytest.raises(TimeoutError):
        phone.receive(1, is_notify)
    # A reboot to the same address and port: a new Call-ID and CSeq from 1 (RFC 3261 §10.2.4), same socket.
    phone.reg_call_id = f"reg-{secrets.token_hex(6)}@127.0.0.1"
    phone._cseq = itertools.count(1)
    assert phone.register().status == 200
    told = phone.receive(5, is_notify)
    ok(phone, told)
    assert b"Messages-Waiting: yes" in told.body and b"Voice-Message: 1/0" in told.body
    assert phone.register().status == 200  # its refresh after the reboot: nothing
    with pytest.raises(TimeoutError):
        phone.receive(1, is_notify)
    rebooted = UdpPhone(gateway.endpoints.udp, AMY[0], AMY[1])  # as after a reboot: a new socket, a new flow
    try:
        assert rebooted.register().status == 200  # the state is sent again
        again = rebooted.receive(5, is_notify)
        ok(rebooted, again)
        assert b"Voice-Message: 1/0" in again.body
        assert rebooted.register(expires=0).status == 200
    finally:
        rebooted.close()
    msg = api.features.voicemail(AMY[0])["messages"][0]
    api.features.mark_heard(AMY[0], msg["id"])
    off = phone.receive(5, lambda m: is_notify(m) and b"Messages-Waiting: no" in m.body)
    ok(phone, off)
    assert b"Voice-Message: 0/1" in off.body


# --- expiry, with a fake stack and timer -------------------------------------------------------------------------
class FakeStack:
    def __init__(self):
        self.t = 100.0
        self.sent: list[Request] = []
        self.responses: list[Response] = []

    def now(self) -> float:
        return self.t

    def send_request(self, req, dest):
        self.sent.append(req)
        return len(self.sent)

    def send_response(self, tx, resp):
        self.responses.append(resp)

    def contact_uri(self, transport):
        return "sip:gw@127.0.0.1:5060"


def test_subscription_expires_with_a_final_notify(tmp_path):
    from gateway.services.directory import Directory
    from gateway.services.model import User
    from gateway.services.registrar import DeviceRegistry, Registrar
    from gateway.sip.auth import DigestServer
    from gateway.sip.endpoint import Address
    from gateway.store.sqlite import Store

    store = Store(tmp_path / "gw.db")
    directory = Directory(store, DOMAIN)
    directory.put_user(User("zed", "Zed", "+14255557009"))
    registrar = Registrar(directory, DigestServer(DOMAIN, b"k" * 32), DeviceRegistry(store))
    stack, timers = FakeStack(), []
    svc = MwiService(stack, directory, registrar, lambda u: (0, 0), domain=DOMAIN,
                     call_later=lambda d, fn: timers.append((d, fn)))
    user = directory.user("zed")
    assert user is not None
    registered = registrar.bind(Request.build("REGISTER", f"sip:{DOMAIN}", [
        ("Via", "SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bKr1"), ("From", f"<sip:zed@{DOMAIN}>;tag=r1"),
        ("To", f"<sip:zed@{DOMAIN}>"), ("Call-ID", "r1@x"), ("CSeq", "1 REGISTER"),
        ("Contact", "<sip:zed@127.0.0.1:5099>"), ("Expires", "3600")]),
        user, Flow("UDP", "127.0.0.1", 5099), stack.now(), 0.0, "zed/T54W", None)
    assert registered.status == 200  # the SUBSCRIBE comes from the registered device
    req = Request.build("SUBSCRIBE", f"sip:zed@{DOMAIN}", [
        ("Via", "SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bKx1"), ("From", f"<sip:zed@{DOMAIN}>;tag=a1"),
        ("To", f"<sip:zed@{DOMAIN}>"), ("Call-ID", "s1@x"), ("CSeq", "1 SUBSCRIBE"),
        ("Contact", "<sip:zed@127.0.0.1:5099>"), ("Event", "message-summary"), ("Expires", "60")])
    assert svc.on_subscribe(req, 1, Address("UDP", "127.0.0.1", 5099))
    assert stack.responses[-1].status == 200 and len(svc.subscriptions) == 1
    assert timers and timers[0][0] == pytest.approx(60.0)
    stack.t += 61
    timers[0][1]()
    assert svc.subscriptions == {}
    last = stack.sent[-1]
    assert last.method == "NOTIFY" and last.headers.get("Subscription-State") == "terminated;reason=timeout"
    store.close()
