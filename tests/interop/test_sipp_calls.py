"""Calls through the gateway's B2BUA between SIPp user agents registered as tenant users (UDP):
answer and BYE, CANCEL before answer, busy relayed, forking to two devices (RFC 3261 §§9, 12, 15, 16.7;
RFC 3326 Reason)."""

from __future__ import annotations

import socket
import time

import pytest

from tests.interop.conftest import TenantUser, make_gateway
from tests.interop.interop_helpers import GOOD_UA, RawClient, SippRunner, wait_listening_udp, wait_until

pytestmark = pytest.mark.slow


def register(sipp, user, port):
    res = sipp.register(user.username, user.password, port, ua=GOOD_UA.format(user.mac))
    assert res.returncode == 0 and res.responses("REGISTER")[-1].status == 200, res.explain()


def call(sipp, scenario, caller, caller_port, number, timeout=20):
    return sipp.run(scenario, port=caller_port, keys={"ua": GOOD_UA.format(caller.mac)},
                    inf=[[caller.username, caller.password]], extra=("-s", number), timeout=timeout)


def callee(sipp, scenario, port, answer_ms=0):
    proc = sipp.uas(scenario, port=port, keys={"answer_ms": str(answer_ms)}, timeout_s=15)
    wait_listening_udp(port, proc=proc.proc)
    return proc


def test_call_answered_and_hung_up_by_the_caller(gw, sipp, ports, new_user):
    alice, bob = new_user(), new_user()
    a_port, b_port = ports.take(), ports.take()
    register(sipp, alice, a_port)
    register(sipp, bob, b_port)
    uas = callee(sipp, "uas_answer.xml", b_port)
    uac = call(sipp, "uac_call.xml", alice, a_port, bob.number)
    b = uas.wait(20)
    assert uac.returncode == 0, uac.explain()
    assert b.returncode == 0, b.explain()

    # A leg: 407 challenge, then 100/180/200; the 200's Contact is the gateway (a B2BUA is the remote target).
    a_statuses = [r.status for r in uac.responses("INVITE") if r.status > 100]
    assert a_statuses == [407, 180, 200], a_statuses
    # The challenge is stateless (RFC 3261 §8.2.7: no 100 before it); the authenticated INVITE gets one 100 from
    # its transaction (§17.2.1), not repeated by the B2BUA.
    assert [r.status for r in uac.responses("INVITE")] == [407, 100, 180, 200]
    ok = uac.responses("INVITE")[-1]
    assert ok.headers.get("Contact") and "gw@" in ok.headers.get("Contact")
    assert ok.body and b"m=audio" in ok.body  # the callee's SDP answer passed through
    assert [r.status for r in uac.responses("BYE")] == [200]

    # B leg: its own dialog (new Call-ID, CSeq from 1), caller identity from the tenant, SDP offer relayed.
    invite = b.requests("INVITE")[0]
    a_invite = [m for m in uac.sent() if getattr(m, "method", "") == "INVITE"][-1]
    assert invite.call_id != a_invite.call_id
    assert invite.cseq.seq == 1 and invite.cseq.method == "INVITE"
    assert alice.number in str(invite.from_.uri)
    assert invite.headers.get("Proxy-Authorization") is None  # credentials never leak to the callee
    assert invite.body and b"m=audio" in invite.body
    assert invite.headers.get("Record-Route") is None  # a B2BUA terminates the dialog; no route set
    bye = b.requests("BYE")[0]
    assert bye.call_id == invite.call_id and bye.cseq.seq == 2 and bye.cseq.method == "BYE"
    ack = b.requests("ACK")[0]
    assert ack.cseq.seq == 1 and ack.cseq.method == "ACK"
    record = next(c for c in reversed(gw.core.b2bua.history) if c.a_call_id == a_invite.call_id)
    assert record.state == "ended" and record.answered is not None and record.end_reason == "BYE from caller"


def test_cancel_before_answer(gw, sipp, ports, new_user):
    alice, bob = new_user(), new_user()
    a_port, b_port = ports.take(), ports.take()
    register(sipp, alice, a_port)
    register(sipp, bob, b_port)
    uas = callee(sipp, "uas_ring.xml", b_port)
    uac = call(sipp, "uac_cancel.xml", alice, a_port, bob.number)
    b = uas.wait(20)
    assert uac.returncode == 0, uac.explain()
    assert b.returncode == 0, b.explain()
    assert [r.status for r in uac.responses("CANCEL")] == [200]
    assert uac.responses("INVITE")[-1].status == 487
    cancel = b.requests("CANCEL")[0]
    assert cancel.call_id == b.requests("INVITE")[0].call_id
    assert cancel.cseq.seq == 1  # §9.1: the CANCEL has the CSeq number of the INVITE it cancels
    assert gw.core.b2bua.find_call(cancel.call_id) is None


def test_busy_callee_relayed_as_486(gw, sipp, ports, new_user):
    alice, bob = new_user(), new_user()
    a_port, b_port = ports.take(), ports.take()
    register(sipp, alice, a_port)
    register(sipp, bob, b_port)
    uas = callee(sipp, "uas_busy.xml", b_port)
    uac = call(sipp, "uac_call_486.xml", alice, a_port, bob.number)
    b = uas.wait(20)
    assert uac.returncode == 0, uac.explain()
    assert b.returncode == 0, b.explain()
    assert uac.responses("INVITE")[-1].status == 486


def test_forking_first_answer_wins_other_cancelled(gw, sipp, ports, new_user):
    alice, bob = new_user(), new_user()
    a_port, b1, b2 = ports.take(), ports.take(), ports.take()
    register(sipp, alice, a_port)
    register(sipp, bob, b1)
    # The second device of the same user: another MAC, so another device and binding.
    res = sipp.register(bob.username, bob.password, b2, ua=GOOD_UA.format((bob.mac + 0x8000) & 0xFFFF))
    assert res.responses("REGISTER")[-1].status == 200, res.explain()
    assert len(gw.registrar.bindings(bob.username, gw.core.now())) == 2
    winner = callee(sipp, "uas_answer.xml", b1, answer_ms=400)
    loser = callee(sipp, "uas_ring.xml", b2)
    uac = call(sipp, "uac_call.xml", alice, a_port, bob.number)
    w, lo = winner.wait(20), loser.wait(20)
    assert uac.returncode == 0, uac.explain()
    assert w.returncode == 0, w.explain()
    assert lo.returncode == 0, lo.explain()
    assert w.requests("INVITE") and lo.requests("INVITE")  # both rang
    cancel = lo.requests("CANCEL")[0]
    assert cancel.headers.get("Reason") == 'SIP;cause=200;text="Call completed elsewhere"'
    assert uac.responses("INVITE")[-1].status == 200


def test_forking_all_busy_gives_486(gw, sipp, ports, new_user):
    alice, bob = new_user(), new_user()
    a_port, b1, b2 = ports.take(), ports.take(), ports.take()
    register(sipp, alice, a_port)
    register(sipp, bob, b1)
    res = sipp.register(bob.username, bob.password, b2, ua=GOOD_UA.format((bob.mac + 0x8000) & 0xFFFF))
    assert res.responses("REGISTER")[-1].status == 200, res.explain()
    d1 = callee(sipp, "uas_busy.xml", b1)
    d2 = callee(sipp, "uas_busy.xml", b2)
    uac = call(sipp, "uac_call_486.xml", alice, a_port, bob.number)
    r1, r2 = d1.wait(20), d2.wait(20)
    assert uac.returncode == 0, uac.explain()
    assert r1.returncode == 0 and r2.returncode == 0, r1.explain() + r2.explain()
    assert uac.responses("INVITE")[-1].status == 486


def test_forking_none_reachable_gives_480(tmp_path_factory, tmp_path, ports):
    # A gateway with T1 = 50 ms (a closed lab network, RFC 3261 §17.1.1.1): timer B fires after 3.2 s.
    gw2, eps2 = make_gateway(tmp_path_factory, sip_t1=0.05)
    runner = SippRunner(tmp_path, eps2.udp)
    try:
        from gateway.services.model import User

        alice = TenantUser("nr-alice", "pw-a", "+14255559101", 0x0101)
        bob = TenantUser("nr-bob", "pw-b", "+14255559102", 0x0102)
        for u in (alice, bob):
            gw2.directory.put_user(User(u.username, u.username, u.number), password=u.password)
        a_port, b1, b2 = ports.take(), ports.take(), ports.take()
        register(runner, alice, a_port)
        # Two devices registered, then gone (nothing listens on their ports any more): timer B on both → 480.
        register(runner, bob, b1)
        res = runner.register(bob.username, bob.password, b2, ua=GOOD_UA.format(0x8102))
        assert res.responses("REGISTER")[-1].status == 200, res.explain()
        assert len(gw2.registrar.bindings(bob.username, gw2.core.now())) == 2
        uac = call(runner, "uac_call_480.xml", alice, a_port, bob.number, timeout=20)
        assert uac.returncode == 0, uac.explain()
        final = uac.responses("INVITE")[-1]
        assert final.status == 480 and "SGW-ROUTE-UNREACHABLE" in (final.headers.get("Warning") or "")
        assert len(gw2.core.b2bua.history[-1].b_call_ids) == 2  # both branches were tried
    finally:
        runner.stop_all()
        gw2.stop_thread()


def test_user_without_devices_gives_480_with_diagnostic(gw, sipp, ports, new_user):
    alice, bob = new_user(), new_user()
    a_port = ports.take()
    register(sipp, alice, a_port)
    uac = call(sipp, "uac_call_480.xml", alice, a_port, bob.number)
    assert uac.returncode == 0, uac.explain()
    final = uac.responses("INVITE")[-1]
    assert final.status == 480 and "SGW-ROUTE-UNREACHABLE" in (final.headers.get("Warning") or "")


def test_callee_registered_over_tcp_reached_at_its_contact(gw, eps, sipp, ports, new_user):
    """The callee registered over TCP and closed that connection (a new SIPp process listens now): the
    gateway opens a new connection to the Contact address (RFC 3261 §18.1.1) and the call completes."""
    alice, bob = new_user(), new_user()
    a_port, b_port = ports.take(), ports.take()
    register(sipp, alice, a_port)
    # Registered from an ephemeral port of a connection that is then closed; the Contact names b_port.
    with RawClient("TCP", eps.tcp) as c:
        resp = c.register(bob.username, bob.password, ua=GOOD_UA.format(bob.mac),
                          contact=f"<sip:{bob.username}@127.0.0.1:{b_port};transport=tcp>")
        assert resp.status == 200
        reg_port = c.local[1]
    flow = gw.registrar.bindings(bob.username, gw.core.now())[0].flow
    assert flow.transport == "TCP" and flow.port == reg_port != b_port
    uas = sipp.uas("uas_answer.xml", port=b_port, keys={"answer_ms": "0"}, timeout_s=15, transport="t1")
    wait_listening_udp(b_port, proc=uas.proc, kind=socket.SOCK_STREAM)
    uac = call(sipp, "uac_call.xml", alice, a_port, bob.number)
    b = uas.wait(20)
    assert uac.returncode == 0, uac.explain()
    assert b.returncode == 0, b.explain()
    assert b.requests("INVITE")[0].top_via.transport == "TCP"


def test_callee_unreachable_over_tcp_fails_fast(gw, sipp, ports, new_user):
    """Nothing listens at the TCP callee's Contact: the connection is refused, the branch fails at once
    (RFC 3261 §17.1.4 transport error) and the caller gets 480 well before timer B (32 s)."""
    alice, bob = new_user(), new_user()
    a_port, b_port = ports.take(), ports.take()
    register(sipp, alice, a_port)
    res = sipp.register(bob.username, bob.password, b_port, ua=GOOD_UA.format(bob.mac), transport="t1")
    assert res.returncode == 0 and res.responses("REGISTER")[-1].status == 200, res.explain()
    t0 = time.monotonic()
    uac = call(sipp, "uac_call_480.xml", alice, a_port, bob.number)
    assert uac.returncode == 0, uac.explain()
    assert uac.responses("INVITE")[-1].status == 480
    assert time.monotonic() - t0 < 10


def test_record_route_of_the_caller_and_bye_from_the_callee(gw, sipp, ports, new_user):
    """The caller's INVITE carries a Record-Route: the gateway's 2xx copies it (RFC 3261 §12.1.1) and the
    BYE the gateway sends on that leg, after the callee hung up, is routed by it (§12.2.1.1) with the
    caller's Contact as Request-URI and a CSeq of the gateway's own on that leg."""
    alice, bob = new_user(), new_user()
    a_port, b_port = ports.take(), ports.take()
    register(sipp, alice, a_port)
    register(sipp, bob, b_port)
    uas = callee(sipp, "uas_answer_hangup.xml", b_port)
    uac = call(sipp, "uac_call_rr.xml", alice, a_port, bob.number)
    b = uas.wait(20)
    assert uac.returncode == 0, uac.explain()
    assert b.returncode == 0, b.explain()
    rr = f"<sip:127.0.0.1:{a_port};lr>"
    ok = uac.responses("INVITE")[-1]
    assert ok.status == 200 and ok.headers.get("Record-Route") == rr
    bye = uac.requests("BYE")[0]
    assert bye.headers.get("Route") == rr
    assert str(bye.request_uri) == f"sip:{alice.username}@127.0.0.1:{a_port}"
    assert bye.cseq.method == "BYE" and bye.call_id == ok.call_id
    assert [r.status for r in b.responses("BYE")] == [200]
    wait_until(lambda: gw.core.b2bua.history and gw.core.b2bua.history[-1].a_call_id == ok.call_id,
               timeout=5, what="the call record")
    assert gw.core.b2bua.history[-1].end_reason == "BYE from callee"
