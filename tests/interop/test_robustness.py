"""What the running gateway answers to bad and hostile input over UDP and TCP (RFC 3261 §8.2, §16.3, §18.1.1,
§21.4; RFC 4475 spirit): the right 4xx with a reason, garbage dropped and counted, nothing stalls."""

from __future__ import annotations

import os
import secrets
import time

import pytest

from gateway.sip.auth import DigestClient
from tests.interop.interop_helpers import GOOD_UA, RawClient, wait_until

pytestmark = pytest.mark.slow


def options(client: RawClient, **over) -> tuple[str, bytes]:
    call_id = f"o-{secrets.token_hex(6)}"
    req = client.request("OPTIONS", "sip:sipgw.lab", [("Accept", "application/sdp")], call_id=call_id, cseq=1)
    return call_id, req.to_bytes()


def raw_request(client: RawClient, first_line: str, headers: list[str], body: bytes = b"") -> tuple[str, bytes]:
    call_id = f"m-{secrets.token_hex(6)}"
    tp = client.transport
    base = [f"Via: SIP/2.0/{tp} {client.local[0]}:{client.local[1]};branch=z9hG4bK{secrets.token_hex(6)};rport",
            f"From: <sip:probe@sipgw.lab>;tag={client.tag}", "To: <sip:probe@sipgw.lab>", f"Call-ID: {call_id}"]
    lines = [first_line, *base, *headers, f"Content-Length: {len(body)}", "", ""]
    return call_id, "\r\n".join(lines).encode() + body


@pytest.fixture(params=["UDP", "TCP"])
def client(request, eps):
    c = RawClient(request.param, eps.udp if request.param == "UDP" else eps.tcp)
    yield c
    c.close()


def test_options_answered(client):
    call_id, data = options(client)
    client.send_raw(data)
    resp = client.recv_response(call_id)
    assert resp is not None and resp.status == 200
    assert "INVITE" in resp.headers.get("Allow") and resp.headers.get("Accept") == "application/sdp"


@pytest.mark.parametrize(("first_line", "headers", "status", "why"), [
    ("OPTIONS sip:sipgw.lab SIP/2.0", ["CSeq: 1 OPTIONS", "Max-Forwards: 70", "Require: foo-bar"], 420, None),
    ("OPTIONS sip:sipgw.lab SIP/3.0", ["CSeq: 1 OPTIONS", "Max-Forwards: 70"], 505, "3.0"),
    ("INVITE sip:+12065550100@sipgw.lab SIP/2.0", ["CSeq: 1 INVITE", "Max-Forwards: 0",
                                                   "Contact: <sip:probe@127.0.0.1>"], 483, None),
    ("OPTIONS sip:sipgw.lab SIP/2.0", ["CSeq: 1 INVITE", "Max-Forwards: 70"], 400, "CSeq"),
    ("OPTIONS sip:sipgw.lab SIP/2.0", ["CSeq: one OPTIONS", "Max-Forwards: 70"], 400, "CSeq"),
])
def test_malformed_requests_get_the_right_4xx(client, first_line, headers, status, why):
    call_id, data = raw_request(client, first_line, headers)
    client.send_raw(data)
    resp = client.recv_response(call_id)
    assert resp is not None, f"no answer to {first_line!r} over {client.transport}"
    assert resp.status == status, f"{resp.status} {resp.reason}"
    if why:
        assert why in resp.reason, resp.reason  # the reason phrase says what is wrong
    if status == 420:
        assert resp.headers.get("Unsupported") == "foo-bar"


def test_oversized_message_gets_513(gw, eps):
    # TCP: a Content-Length above the maximum message size; the framer answers 513 and closes (§21.5.14).
    with RawClient("TCP", eps.tcp) as c:
        body = b"x" * (gw.config.max_message_size + 10)
        _call_id, data = raw_request(c, "MESSAGE sip:sipgw.lab SIP/2.0",
                                    ["CSeq: 1 MESSAGE", "Max-Forwards: 70", "Content-Type: text/plain"], body)
        c.send_raw(data)
        resp = c.recv(3)
        assert resp is not None and resp.status == 513, resp


def test_garbage_dropped_and_counted_then_register_works(gw, eps, new_user):
    """A burst of garbage and malformed messages over UDP and TCP; then a valid REGISTER succeeds."""
    before = gw.core.stats.discarded + gw.core.transports.stats.framing_errors
    junk = [os.urandom(200), b"\x00" * 50, b"INVITE\r\n\r\n", b"SIP/2.0 200\r\n\r\n", b"hello world\r\n\r\n",
            b"REGISTER sip:x SIP/2.0\r\nVia: garbage\r\n\r\n", b"\xff\xfe" * 300,
            b"OPTIONS sip:sipgw.lab SIP/2.0\r\nContent-Length: -5\r\n\r\n"]
    udp = RawClient("UDP", eps.udp)
    try:
        t0 = time.monotonic()
        for i in range(300):  # bounded: 300 datagrams
            udp.send_raw(junk[i % len(junk)])
        for _ in range(20):  # bounded: 20 TCP connections each spoiled by garbage
            with RawClient("TCP", eps.tcp) as tcp:
                tcp.send_raw(os.urandom(64) + b"\r\n\r\n")
        wait_until(lambda: gw.core.stats.discarded + gw.core.transports.stats.framing_errors - before >= 150,
                   timeout=5, what="garbage counted")
        u = new_user()
        for transport, addr in (("UDP", eps.udp), ("TCP", eps.tcp)):
            with RawClient(transport, addr) as c:
                resp = c.register(u.username, u.password, ua=GOOD_UA.format(u.mac))
                assert resp.status == 200, f"{transport}: {resp.status} {resp.reason}"
        assert time.monotonic() - t0 < 10
        # Nothing but the REGISTER answers came back to the garbage sender.
        assert udp.recv(0.2) is None
    finally:
        udp.close()


def test_unauthenticated_invite_to_pstn_is_challenged_never_routed(gw, eps, new_user):
    u = new_user()
    before = len(gw.core.b2bua.history)
    with RawClient("UDP", eps.udp) as c:
        call_id = f"p-{secrets.token_hex(6)}"
        sdp = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
        hdrs = [("Contact", f"<sip:{u.username}@{c.local[0]}:{c.local[1]}>"), ("Content-Type", "application/sdp")]
        req = c.request("INVITE", "sip:+12065550100@sipgw.lab", hdrs, call_id=call_id, cseq=1,
                        from_user=u.username, to="<sip:+12065550100@sipgw.lab>", body=sdp)
        c.send_raw(req.to_bytes())
        resp = c.recv_response(call_id)
        assert resp is not None and resp.status == 407
        challenges = resp.headers.get_all("Proxy-Authenticate")
        assert challenges
        # Wrong password: 403, never routed.
        bad = DigestClient(u.username, "wrong").authorize(challenges, method="INVITE",
                                                          uri="sip:+12065550100@sipgw.lab")
        req2 = c.request("INVITE", "sip:+12065550100@sipgw.lab", [*hdrs, ("Proxy-Authorization", str(bad))],
                         call_id=call_id, cseq=2, from_user=u.username, to="<sip:+12065550100@sipgw.lab>", body=sdp)
        c.send_raw(req2.to_bytes())
        resp2 = c.recv_response(call_id)
        assert resp2 is not None and resp2.status == 403
        assert "SGW-AUTH-FAILED" in (resp2.headers.get("Warning") or "")
        # Right password but no registered device: 403, never routed.
        good = DigestClient(u.username, u.password).authorize(challenges, method="INVITE",
                                                              uri="sip:+12065550100@sipgw.lab")
        req3 = c.request("INVITE", "sip:+12065550100@sipgw.lab", [*hdrs, ("Proxy-Authorization", str(good))],
                         call_id=call_id, cseq=3, from_user=u.username, to="<sip:+12065550100@sipgw.lab>", body=sdp)
        c.send_raw(req3.to_bytes())
        resp3 = c.recv_response(call_id)
        assert resp3 is not None and resp3.status == 403
        assert "SGW-AUTH-NOT-REGISTERED" in (resp3.headers.get("Warning") or "")
    assert len(gw.core.b2bua.history) == before and not gw.core.b2bua.calls


_TEMPLATES = [
    "INVITE sip:+12065550100@sipgw.lab SIP/2.0\r\nVia: SIP/2.0/{tp} {host}:{port};branch=z9hG4bK{b};rport\r\n"
    "From: <sip:probe@sipgw.lab>;tag=a{b}\r\nTo: <sip:+12065550100@sipgw.lab>\r\nCall-ID: {b}\r\nCSeq: 1 INVITE\r\n"
    "Contact: <sip:probe@{host}:{port}>\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\n"
    "Content-Length: 10\r\n\r\nv=0\r\ns=-\r\n",
    "REGISTER sip:sipgw.lab SIP/2.0\r\nVia: SIP/2.0/{tp} {host}:{port};branch=z9hG4bK{b};rport\r\n"
    "From: <sip:probe@sipgw.lab>;tag=a{b}\r\nTo: <sip:probe@sipgw.lab>\r\nCall-ID: {b}\r\nCSeq: 1 REGISTER\r\n"
    "Contact: <sip:probe@{host}:{port}>;expires=60\r\nAuthorization: Digest username=\"probe\", "
    "realm=\"sipgw.lab\", nonce=\"x\", uri=\"sip:sipgw.lab\", response=\"00\"\r\nMax-Forwards: 70\r\n"
    "Expires: 60\r\nContent-Length: 0\r\n\r\n",
    "BYE sip:gw@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/{tp} {host}:{port};branch=z9hG4bK{b};rport\r\n"
    "From: <sip:probe@sipgw.lab>;tag=a{b}\r\nTo: <sip:x@sipgw.lab>;tag=zz\r\nCall-ID: {b}\r\nCSeq: 2 BYE\r\n"
    "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
    "CANCEL sip:+12065550100@sipgw.lab SIP/2.0\r\nVia: SIP/2.0/{tp} {host}:{port};branch=z9hG4bK{b};rport\r\n"
    "From: <sip:probe@sipgw.lab>;tag=a{b}\r\nTo: <sip:+12065550100@sipgw.lab>\r\nCall-ID: {b}\r\n"
    "CSeq: 1 CANCEL\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
    "SIP/2.0 200 OK\r\nVia: SIP/2.0/{tp} {host}:{port};branch=z9hG4bK{b}\r\nFrom: <sip:probe@sipgw.lab>;tag=a{b}"
    "\r\nTo: <sip:x@sipgw.lab>;tag=zz\r\nCall-ID: {b}\r\nCSeq: 2 INVITE\r\nContent-Length: 0\r\n\r\n",
]
_JUNK = ["", "<", ">", ";", '"', "@", ":", "%", "\x00", "999999999999", "-1", "sips:", "tel:+1", "[::1", " ", ",",
         "*", "=", "\xff", "z9hG4bK", "\r\n"]


def mutated(rnd, tp: str, host: str, port: int) -> bytes:
    """A SIP message with one to three random edits (insert junk, cut, duplicate or blank a line)."""
    lines = rnd.choice(_TEMPLATES).format(tp=tp, host=host, port=port, b=rnd.randrange(10**9)).split("\r\n")
    for _ in range(rnd.randint(1, 3)):
        k = rnd.randrange(len(lines))
        line = lines[k]
        p = rnd.randrange(len(line) + 1)
        op = rnd.random()
        if op < 0.45:
            line = line[:p] + rnd.choice(_JUNK) + line[p:]
        elif op < 0.75:
            line = line[:p] + line[p + rnd.randint(1, 5):]
        elif op < 0.9:
            lines.insert(k, line)
        else:
            line = ""
        lines[k] = line
    return "\r\n".join(lines).encode("latin-1")


@pytest.mark.parametrize("transport", ["UDP", "TCP"])
def test_mutated_messages_never_raise_in_the_gateway(gw, eps, new_user, caplog, transport):
    """400 messages with random edits (seeded, so a failure replays): none may raise inside the gateway,
    and a valid REGISTER from another address works afterwards on the same transport."""
    import random

    rnd = random.Random(20261126)
    caplog.set_level("ERROR", logger="sipgw")
    addr = eps.udp if transport == "UDP" else eps.tcp
    sent = 0
    # From a loopback address of its own: the bogus digests below trip the failure throttle for that address.
    for _batch in range(8):  # bounded: 8 connections (TCP) of 50 messages each
        with RawClient(transport, addr, host="127.0.0.9") as c:
            host, port = c.local
            for _ in range(50):
                try:
                    c.send_raw(mutated(rnd, transport, host, port))
                    sent += 1
                except OSError:
                    break  # the gateway closed a TCP connection after a framing error: expected
    assert sent >= 50
    u = new_user()
    with RawClient(transport, addr) as c:
        assert c.register(u.username, u.password, ua=GOOD_UA.format(u.mac)).status == 200
    crashes = [r for r in caplog.records if r.levelname == "ERROR" and r.name.startswith("sipgw")]
    assert not crashes, "\n".join(r.getMessage() + "\n" + (r.exc_text or "") for r in crashes[:3])
