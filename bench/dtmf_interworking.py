"""CPU cost of the DTMF interworking hook (``B2BUA.on_route``) per routed call, the part the common path pays.

    .venv/bin/python -m bench.dtmf_interworking [--n 20000] [--rounds 5]

Every device-to-device INVITE the gateway routes passes the hook before it forks. Cases, each with a parsed INVITE
as a desk phone sends it (a pjsua2 SDP offer: PCMU, PCMA, G722, … and telephone-event) and a routed decision with
one registered device branch:

- ``agree``: the callee's catalogue default (by its REGISTER's User-Agent) is RFC 4733 too: not anchored, one note;
- ``media-party``: the call goes to a media-node party (Teams client): left alone before any SDP is read;
- ``anchor``: the callee is an INFO-only ATA: anchored (a fake relay hands out the slot; the real one is a lock and
  a pool look-up on top).

Prints the best of ``--rounds`` rounds, in µs of CPU per call (``time.process_time``). Compare with the whole
gateway's CPU per call from ``bench.gateway_micro`` (the hook is not in that figure: it runs without a media node).
"""

from __future__ import annotations

import argparse
import time

from gateway.services.dtmf_interworking import DtmfInterworking
from gateway.services.model import Flow, User
from gateway.services.registrar import Binding
from gateway.services.routing import RouteDecision, Target
from gateway.sip import NameAddr, parse_message

SDP = ("v=0\r\no=- 3920 3920 IN IP4 127.0.0.1\r\ns=pjmedia\r\nb=AS:84\r\nt=0 0\r\na=X-nat:0\r\n"
       "m=audio 4000 RTP/AVP 0 8 9 3 96 97 98 99 120 121 122\r\nc=IN IP4 127.0.0.1\r\nb=TIAS:64000\r\n"
       "a=rtcp:4001 IN IP4 127.0.0.1\r\na=sendrecv\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
       "a=rtpmap:9 G722/8000\r\na=rtpmap:3 GSM/8000\r\na=rtpmap:96 iLBC/8000\r\na=fmtp:96 mode=30\r\n"
       "a=rtpmap:97 speex/32000\r\na=rtpmap:98 speex/8000\r\na=rtpmap:99 speex/16000\r\n"
       "a=rtpmap:120 telephone-event/8000\r\na=fmtp:120 0-16\r\na=rtpmap:121 telephone-event/32000\r\n"
       "a=fmtp:121 0-16\r\na=rtpmap:122 telephone-event/16000\r\na=fmtp:122 0-16\r\n")
INVITE = ("INVITE sip:+14255550202@sipgw.lab SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKb1\r\n"
          "Max-Forwards: 70\r\nFrom: <sip:alice@sipgw.lab>;tag=a1\r\nTo: <sip:+14255550202@sipgw.lab>\r\n"
          "Call-ID: bench-1\r\nCSeq: 2 INVITE\r\nContact: <sip:alice@127.0.0.1:5070>\r\n"
          "Allow: PRACK, INVITE, ACK, BYE, CANCEL, UPDATE, INFO, SUBSCRIBE, NOTIFY, REFER, MESSAGE, OPTIONS\r\n"
          "User-Agent: Yealink SIP-T54W 96.86.0.100\r\nContent-Type: application/sdp\r\n"
          f"Content-Length: {len(SDP)}\r\n\r\n{SDP}")


class _Relay:
    def reserve(self, spec):
        return Flow("UDP", "127.0.0.1", 7000)


def _decision(kind: str) -> RouteDecision:
    user = User("bob", "Bob Baker", "+14255550202")
    if kind == "media-party":
        flow = Flow("UDP", "127.0.0.1", 6000)
        return RouteDecision(targets=(Target("teams", "sip:+14255550202@127.0.0.1:6000", flow, "Teams"),),
                             callee=user)
    ua = "Audiocodes-Sip-Gateway-MP-504/v.7.26A.356.075" if kind == "anchor" else "Yealink SIP-T46U 108.86.0.45"
    flow = Flow("UDP", "127.0.0.1", 5080)
    b = Binding("bob", NameAddr.parse("<sip:bob@127.0.0.1:5080>"), "sip:bob@127.0.0.1:5080", 1e9, "r", 1, flow, ua,
                "dev", 0.0)
    return RouteDecision(targets=(Target("device", b.uri, flow, "device bob", b),), callee=user)


def measure(kind: str, n: int, rounds: int) -> float:
    svc = DtmfInterworking(_Relay(), trusted=lambda src: False, note=lambda text, ids: None)
    invite = parse_message(INVITE.encode())
    decision = _decision(kind)
    source = ("127.0.0.1", 5070)
    svc.on_route(invite, source, decision)  # warm the catalogue's User-Agent cache, as a running gateway has it
    best = float("inf")
    for _ in range(rounds):
        anchors = svc.anchors
        t0 = time.process_time()
        for _ in range(n):
            svc.on_route(invite, source, decision)
            anchors.clear()  # the relay's INVITE would take its anchor: keep the table as small as in service
        best = min(best, (time.process_time() - t0) / n)
        svc.anchors.clear()
        svc.log.clear()
    return best * 1e6


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args(argv)
    if args.n < 1 or args.rounds < 1:
        ap.error("--n and --rounds must be at least 1")
    for kind in ("media-party", "agree", "anchor"):
        print(f"dtmf_interworking.on_route {kind:12s} {measure(kind, args.n, args.rounds):7.2f} µs CPU per call")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
