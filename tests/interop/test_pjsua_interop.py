"""pjsua2 user agents (sipua workers) through the running gateway over UDP, TCP and TLS 1.2: digest
REGISTER, calls both ways through the B2BUA with audio both ways, re-INVITE hold/resume, RFC 4733 and
SIP INFO DTMF, BYE from either side. TLS 1.3 is checked with Python's ssl client (pjsua2's OpenSSL
stops at 1.2)."""

from __future__ import annotations

import secrets
import ssl
import time
from collections.abc import Iterator

import pytest

from gateway.sip import Request, Response
from sipua import TlsSettings, TransportKind, TransportSpec, UAWorker, WorkerConfig
from tests.interop.interop_helpers import GOOD_UA, RawClient, wait_until
from tests.sipua.sipua_helpers import assert_tone, record_both

pytestmark = pytest.mark.slow

TONES = {"a": 700.0, "b": 1500.0}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    """pjsua2 answers SHA-256 challenges: the gateway keeps its default order (SHA-256 first)."""
    from tests.interop.conftest import make_gateway

    gw, eps = make_gateway(tmp_path_factory, unsolicited_mwi=True, digest_algorithms=["SHA-256", "MD5"])
    yield gw, eps
    gw.stop_thread()


def gateway_uri(eps, kind: str) -> str:
    host, port = {"udp": eps.udp, "tcp": eps.tcp, "tls": eps.tls}[kind]
    return f"sip:{host}:{port}" + ("" if kind == "udp" else f";transport={kind}")


@pytest.fixture
def pair(request, gw, eps, new_user, tmp_path) -> Iterator[tuple[str, list]]:
    """Two registered pjsua2 workers on one transport: [(worker, user), (worker, user)]."""
    kind = request.param
    tls = TlsSettings(ca_file=str(gw.pki.ca_cert), verify_server=True) if kind == "tls" else None
    workers: list[UAWorker] = []
    out = []
    try:
        for side in ("a", "b"):
            u = new_user()
            w = UAWorker.spawn(WorkerConfig(
                name=f"{kind}-{side}", log_path=str(tmp_path / f"{kind}-{side}.log"),
                user_agent=GOOD_UA.format(u.mac), transports=(TransportSpec(kind=TransportKind(kind), tls=tls),)))
            workers.append(w)
            mark = w.mark()
            w.add_account("acc", f"sip:{u.username}@sipgw.lab", registrar=gateway_uri(eps, kind),
                          username=u.username, password=u.password, transport=kind)
            ev = w.wait_event("reg_state", since=mark, account="acc", timeout=10)
            assert ev.data["code"] == 200 and ev.data["active"], ev.data
            w.auto_answer("immediate", 200)
            out.append((w, u))
        for _w, u in out:
            b = gw.registrar.bindings(u.username, gw.core.now())
            assert len(b) == 1 and b[0].flow.transport == kind.upper(), b
        yield kind, out
    finally:
        for w in workers:
            w.close()


def _sdp_directions(gw, call_ids: set[str]) -> list[str]:
    """a=sendonly/recvonly/inactive/sendrecv lines of the INVITEs and 200s the gateway relayed, in order."""
    out = []
    for e in gw.trace.entries(call_ids=call_ids):
        if e.direction != "out":
            continue
        for d in (b"a=sendonly", b"a=recvonly", b"a=inactive", b"a=sendrecv"):
            if d in e.data:
                out.append(f"{e.first_line.split(' ')[0]}:{d.decode()[2:]}")
    return out


@pytest.mark.parametrize("pair", ["udp", "tcp", "tls"], indirect=True)
def test_call_audio_hold_dtmf_bye(pair, gw, eps, tmp_path):
    kind, ((wa, ua), (wb, ub)) = pair
    target = f"sip:{ub.number}@{gateway_uri(eps, kind).removeprefix('sip:')}"
    mb = wb.mark()
    ca = wa.make_call("acc", target)
    incoming = wb.wait_event("incoming_call", since=mb, timeout=10).data
    cb = incoming["call"]
    assert ua.number in incoming["from"]  # the callee sees the caller's tenant number, not its SIP user name
    wa.wait_event("call_state", call=ca, state="CONFIRMED", timeout=10)
    wb.wait_event("call_state", call=cb, state="CONFIRMED", timeout=10)
    wa.wait_event("media_state", call=ca, status="active", timeout=5)
    wb.wait_event("media_state", call=cb, status="active", timeout=5)
    call = next(iter(gw.core.b2bua.calls.values()))
    ids = {call.a.invite.call_id, call.winner.invite.call_id}
    assert call.winner.dest.transport == kind.upper() and call.a.dest.transport == kind.upper()

    # Audio both ways: each side plays its own tone; each hears the other's.
    wa.play_tone(TONES["a"], call=ca)
    wb.play_tone(TONES["b"], call=cb)
    ra, rb = str(tmp_path / "a-heard.wav"), str(tmp_path / "b-heard.wav")
    record_both(wa, ca, wb, cb, ra, rb, duration_ms=1200)
    assert_tone(ra, TONES["b"])
    assert_tone(rb, TONES["a"])

    # DTMF: RFC 4733 in RTP (passes through, media is not anchored) and SIP INFO (relayed in the dialog).
    mb = wb.mark()
    wa.send_dtmf(ca, "12", method="rfc4733")
    for digit in "12":
        ev = wb.wait_event("dtmf", since=mb, call=cb, digit=digit, timeout=5)
        assert ev.data["method"] == "rfc4733"
    mb = wb.mark()
    wa.send_dtmf(ca, "5#", method="info")
    for digit in "5#":
        ev = wb.wait_event("dtmf", since=mb, call=cb, digit=digit, timeout=5)
        assert ev.data["method"] == "info"
    assert any(e.first_line.startswith("INFO ") and e.direction == "out" for e in gw.trace.entries(call_ids=ids))

    # Hold and resume by re-INVITE (RFC 3264 §8.4), relayed by the B2BUA.
    # Each step waits for both ends: pjsua refuses a re-INVITE while its previous one is unfinished.
    ma, mb = wa.mark(), wb.mark()
    wa.hold(ca)
    wb.wait_event("media_state", call=cb, status="remote_hold", since=mb, timeout=5)
    wa.wait_event("media_state", call=ca, status="local_hold", since=ma, timeout=5)
    ma, mb = wa.mark(), wb.mark()
    wa.unhold(ca)
    wb.wait_event("media_state", call=cb, status="active", since=mb, timeout=5)
    wa.wait_event("media_state", call=ca, status="active", since=ma, timeout=5)
    dirs = _sdp_directions(gw, ids)
    assert "INVITE:sendonly" in dirs or "INVITE:inactive" in dirs, dirs
    assert any(d.startswith("SIP/2.0:recvonly") or d == "SIP/2.0:inactive" for d in dirs), dirs

    # After resume the audio flows again: B hears A's tone.
    rb2 = str(tmp_path / "b-heard-after-resume.wav")
    mb = wb.mark()
    wb.record(cb, rb2, duration_ms=1000)
    assert wb.wait_event("record_complete", since=mb, call=cb, timeout=5).data["complete"]
    assert_tone(rb2, TONES["a"])

    # BYE: from the callee on TCP, from the caller otherwise.
    ender, ender_call, other, other_call = (wb, cb, wa, ca) if kind == "tcp" else (wa, ca, wb, cb)
    mo = other.mark()
    ender.hangup(ender_call)
    other.wait_event("call_state", call=other_call, state="DISCONNECTED", since=mo, timeout=5)
    wait_until(lambda: not gw.core.b2bua.calls, timeout=5, what="the gateway's call to end")
    rec = gw.core.b2bua.history[-1]
    assert rec.end_reason == ("BYE from callee" if kind == "tcp" else "BYE from caller")


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_tls_register_with_exported_lab_ca(gw, eps, new_user, version):
    """A client that trusts only the exported lab CA verifies the gateway's certificate (TLS 1.2 and 1.3)."""
    u = new_user()
    with RawClient("TLS", eps.tls, ca_file=str(gw.pki.ca_cert), tls_version=version) as c:
        assert c.sock.version() == {ssl.TLSVersion.TLSv1_2: "TLSv1.2", ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[version]
        resp = c.register(u.username, u.password, ua=GOOD_UA.format(u.mac))
        assert resp.status == 200, f"{resp.status} {resp.reason}"
    b = gw.registrar.bindings(u.username, gw.core.now())
    assert b and b[0].flow.transport == "TLS"


SDP = (b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
       b"m=audio 4002 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n")


def _next_request(c: RawClient, method: str, timeout: float = 8.0):
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        msg = c.recv(left)
        if isinstance(msg, Request) and msg.method == method:
            return msg
    raise AssertionError(f"no {method} reached the raw callee within {timeout} s")


def test_reinvite_glare_gets_491(gw, eps, new_user, tmp_path):
    """RFC 3261 §14.2 through the B2BUA: the callee sends a re-INVITE while the caller's (relayed) re-INVITE
    is unanswered on its leg; the gateway answers 491, the callee answers the relayed one 491 too, and the
    caller gets that 491. The call survives, then the callee hangs up."""
    ua, ub = new_user(), new_user()
    w = UAWorker.spawn(WorkerConfig(name="glare-a", log_path=str(tmp_path / "glare-a.log"),
                                    user_agent=GOOD_UA.format(ua.mac)))
    b = RawClient("UDP", eps.udp)
    try:
        mark = w.mark()
        w.add_account("acc", f"sip:{ua.username}@sipgw.lab", registrar=gateway_uri(eps, "udp"),
                      username=ua.username, password=ua.password)
        assert w.wait_event("reg_state", since=mark, account="acc", timeout=10).data["code"] == 200
        assert b.register(ub.username, ub.password, ua=GOOD_UA.format(ub.mac)).status == 200

        ca = w.make_call("acc", f"sip:{ub.number}@127.0.0.1:{eps.udp[1]}")
        invite = _next_request(b, "INVITE")
        tag = "rawb" + secrets.token_hex(3)
        contact = ("Contact", f"<sip:{ub.username}@{b.local[0]}:{b.local[1]}>")
        ok = Response.for_request(invite, 200, headers=[contact, ("Content-Type", "application/sdp")], body=SDP,
                                  to_tag=tag)
        b.send_raw(ok.to_bytes())
        _next_request(b, "ACK")
        w.wait_event("call_state", call=ca, state="CONFIRMED", timeout=5)

        # The caller holds: its re-INVITE reaches the raw callee, which does not answer yet ...
        w.hold(ca)
        relayed = _next_request(b, "INVITE")
        assert relayed.call_id == invite.call_id and b"a=sendonly" in relayed.body
        # ... and sends its own re-INVITE in the same dialog: glare on this leg.
        gw_target = invite.contact[0].uri
        mine = b.request("INVITE", str(gw_target), [contact, ("Content-Type", "application/sdp")],
                         call_id=invite.call_id, cseq=1, from_user=ub.username, body=SDP)
        mine.headers.set("From", f"{invite.headers.get('To')};tag={tag}")
        mine.headers.set("To", invite.headers.get("From"))
        b.send_raw(mine.to_bytes())
        resp = b.recv_response(invite.call_id)
        assert resp is not None and resp.status == 491 and resp.cseq.method == "INVITE"
        # The callee answers the gateway's re-INVITE with 491 as well; the caller receives it.
        b.send_raw(Response.for_request(relayed, 491).to_bytes())
        _next_request(b, "ACK")  # the gateway's transaction ACKs the 491 (§17.1.1.3)
        a_call_id = next(iter(gw.core.b2bua.calls.values())).a.invite.call_id
        wait_until(lambda: any(e.direction == "out" and e.first_line.startswith("SIP/2.0 491")
                               for e in gw.trace.entries(call_ids=[a_call_id])), timeout=5,
                   what="491 relayed to the caller")
        # The gateway itself answered the glare: the callee's re-INVITE never went on to the caller.
        assert not any(e.direction == "out" and e.first_line.startswith("INVITE ")
                       for e in gw.trace.entries(call_ids=[a_call_id]))

        # The call survives the glare: the callee hangs up and the caller sees the BYE.
        mark = w.mark()
        bye = b.request("BYE", str(gw_target), [], call_id=invite.call_id, cseq=2, from_user=ub.username)
        bye.headers.set("From", mine.headers.get("From"))
        bye.headers.set("To", invite.headers.get("From"))
        b.send_raw(bye.to_bytes())
        resp = b.recv_response(invite.call_id)
        assert resp is not None and resp.status == 200 and resp.cseq.method == "BYE"
        w.wait_event("call_state", call=ca, state="DISCONNECTED", since=mark, timeout=5)
    finally:
        b.close()
        w.close()
