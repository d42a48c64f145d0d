"""CPU cost of the sans-IO SIP core alone, per message, without sockets or an event loop.

    .venv/bin/python -m bench.sip_core_micro [--rounds 5] [--n 3000]
    PYTHONPATH=OTHER_CHECKOUT .venv/bin/python bench/sip_core_micro.py     # the same on another checkout

What the gateway's SIP core does for the benchmark's traffic, message by message: a REGISTER received
(parsed, Via stamped, server transaction), its 401 built and sent, a retransmission of it absorbed, an
INVITE received and answered 100/200, an INVITE sent on a new leg (Via added, client transaction), its 200
received and the ACK sent; and the REGISTER's finished transaction forgotten when its Timer J fires, 64*T1
later (timers on a ``TimerHeap`` as in the gateway, the transactions made beforehand and not counted). Each
case runs ``--n`` times with fresh branches and Call-IDs; the figure is the
best of ``--rounds`` rounds in µs of CPU per case (``time.process_time``), so other work on the machine
moves it little. Used to compare ``gateway/sip`` changes; the load figures come from ``bench.sip_load``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

from gateway.sip.endpoint import Address, Deliver, Send, SipEndpoint
from gateway.sip.message import Request, Response
from gateway.sip.timer_heap import TimerHeap

PHONE = Address("UDP", "127.0.0.1", 40000)
CALLEE = Address("UDP", "127.0.0.1", 40002)

REGISTER = (
    "REGISTER sip:sipgw.lab SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bK-{n}-1-0;rport\r\n"
    "Max-Forwards: 70\r\n"
    "From: <sip:+14257000001@sipgw.lab>;tag={n}R1\r\n"
    "To: <sip:+14257000001@sipgw.lab>\r\n"
    "Call-ID: {n}-reg@127.0.0.1\r\n"
    "CSeq: 1 REGISTER\r\n"
    "Contact: <sip:+14257000001@127.0.0.1:40000>\r\n"
    "Expires: 3600\r\n"
    "User-Agent: Yealink SIP-T54W 96.86.0.100\r\n"
    "Content-Length: 0\r\n\r\n"
)
SDP = (
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 6000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
)
INVITE = (
    "INVITE sip:+14257999999@sipgw.lab SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bK-{n}-1-4;rport\r\n"
    "Max-Forwards: 70\r\n"
    "From: <sip:+14257000001@sipgw.lab>;tag={n}C1\r\n"
    "To: <sip:+14257999999@sipgw.lab>\r\n"
    "Call-ID: {n}-call@127.0.0.1\r\n"
    "CSeq: 2 INVITE\r\n"
    "Contact: <sip:+14257000001@127.0.0.1:40000>\r\n"
    'Proxy-Authorization: Digest username="bench0001",realm="sipgw.lab",nonce="AAABohe8a2JiFbJxr45rB44r",'
    'uri="sip:+14257999999@sipgw.lab",response="0123456789abcdef0123456789abcdef",algorithm=MD5,'
    'cnonce="6b8b4567",qop=auth,nc=00000001\r\n'
    "User-Agent: Yealink SIP-T54W 96.86.0.100\r\n"
    "Content-Type: application/sdp\r\n"
    f"Content-Length: {len(SDP)}\r\n\r\n{SDP}"
)


def _delivered(actions) -> object:
    return next(a.event for a in actions if isinstance(a, Deliver))


def case_register_401(ep: SipEndpoint, n: int) -> None:
    ev = _delivered(ep.receive(REGISTER.format(n=n).encode(), PHONE, 0.0))
    req = ev.request
    resp = Response.for_request(req, 401, to_tag=f"r{n}")
    resp.headers.add("WWW-Authenticate", 'Digest realm="sipgw.lab", nonce="abc", algorithm=MD5, qop="auth"')
    ep.send_response(ev.transaction, resp, 0.0)
    _ = req.headers.get("Authorization"), req.to.uri.user, req.contact, req.expires, req.call_id


def case_retransmission(ep: SipEndpoint, n: int) -> None:
    ep.receive(REGISTER.format(n=n % 50).encode(), PHONE, 0.1)


def case_invite_answered(ep: SipEndpoint, n: int) -> None:
    ev = _delivered(ep.receive(INVITE.format(n=n).encode(), PHONE, 0.0))
    req = ev.request
    _ = req.headers.get("Proxy-Authorization"), req.request_uri.user, req.from_.tag, req.to.tag, req.contact
    ep.send_response(ev.transaction, Response.for_request(req, 200, to_tag=f"a{n}", body=req.body,
                                                         headers=[("Contact", "<sip:gw@127.0.0.1:5060>")]), 0.0)


def case_invite_sent_200_acked(ep: SipEndpoint, n: int) -> None:
    out = Request.build("INVITE", "sip:+14257999999@127.0.0.1:40002", headers=[
        ("From", f"<sip:+14257000001@sipgw.lab>;tag=b{n}"), ("To", "<sip:+14257999999@sipgw.lab>"),
        ("Call-ID", f"b{n}@sipgw.lab"), ("CSeq", "1 INVITE"), ("Contact", "<sip:gw@127.0.0.1:5060>"),
        ("Via", "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKplaceholder"), ("Content-Type", "application/sdp"),
    ], body=SDP.encode())
    out.headers.remove_first("Via")
    _, actions = ep.send_request(out, CALLEE, 0.0)
    via = next(a.message for a in actions if isinstance(a, Send)).headers.get("Via")
    ok = (
        "SIP/2.0 200 OK\r\n"
        f"Via: {via}\r\n"
        f"From: <sip:+14257000001@sipgw.lab>;tag=b{n}\r\n"
        f"To: <sip:+14257999999@sipgw.lab>;tag=u{n}\r\n"
        f"Call-ID: b{n}@sipgw.lab\r\n"
        "CSeq: 1 INVITE\r\n"
        "Contact: <sip:127.0.0.1:40002>\r\n"
        "Content-Type: application/sdp\r\n"
        f"Content-Length: {len(SDP)}\r\n\r\n{SDP}"
    )
    resp = _delivered(ep.receive(ok.encode(), CALLEE, 0.01)).response
    ack = Request.build("ACK", "sip:127.0.0.1:40002", headers=[
        ("Via", "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKplaceholder"),
        ("From", f"<sip:+14257000001@sipgw.lab>;tag=b{n}"), ("To", resp.headers.get("To") or ""),
        ("Call-ID", f"b{n}@sipgw.lab"), ("CSeq", "1 ACK"),
    ])
    ack.headers.remove_first("Via")
    ep.send_ack(ack, CALLEE, 0.01)


CASES: dict[str, Callable[[SipEndpoint, int], None]] = {
    "REGISTER in, 401 out": case_register_401,
    "retransmitted REGISTER absorbed": case_retransmission,
    "INVITE in, 200 out": case_invite_answered,
    "INVITE out, 200 in, ACK out": case_invite_sent_200_acked,
}


def measure(n: int, rounds: int) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, case in CASES.items():
        best = float("inf")
        for r in range(rounds):
            ep = SipEndpoint(sent_by={"UDP": "127.0.0.1:5060"})
            if case is case_retransmission:
                for i in range(50):
                    case_register_401(ep, i)
            base = (r + 1) * 1_000_000
            t0 = time.process_time()
            for i in range(n):
                case(ep, base + i)
            best = min(best, (time.process_time() - t0) / n * 1e6)
        out[name] = best
    best = float("inf")
    for r in range(rounds):
        best = min(best, timer_j_expiry(n, (r + 1) * 1_000_000))
    out["finished REGISTER forgotten at Timer J"] = best
    return out


def timer_j_expiry(n: int, base: int) -> float:
    """µs of CPU per transaction to pop and fire the Timer J of ``n`` finished REGISTER transactions."""
    ep = SipEndpoint(sent_by={"UDP": "127.0.0.1:5060"})
    ep.timer_sink = heap = TimerHeap()
    for i in range(n):
        case_register_401(ep, base + i)
    due = 64 * ep.timers.t1 + 1.0
    t0 = time.process_time()
    while (timer_id := heap.pop_due(due)) is not None:
        ep.timer_fired(timer_id, due)
    spent = time.process_time() - t0
    if ep.transaction_count:
        raise RuntimeError(f"{ep.transaction_count} transactions left after their Timer J")
    return spent / n * 1e6


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.sip_core_micro", description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=3000, help="repetitions of each case per round (default 3000)")
    p.add_argument("--rounds", type=int, default=5, help="rounds; the best is reported (default 5)")
    args = p.parse_args(argv)
    if args.n < 1 or args.rounds < 1:
        p.error("--n and --rounds must be at least 1")
    for name, us in measure(args.n, args.rounds).items():
        print(f"{us:8.1f} µs  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
