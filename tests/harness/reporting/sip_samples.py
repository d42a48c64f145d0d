"""Real SIP messages of one call through the gateway, recorded with ``gateway.trace.TraceRecorder``.

A Yealink phone (127.0.0.1:5071) calls a Teams user; the gateway (127.0.0.1:5060) is a B2BUA, so the Teams
client's leg (127.0.0.1:5080) has its own Call-ID. The phone hangs up with BYE.
"""

from __future__ import annotations

from gateway.trace import TraceRecorder

PHONE = ("127.0.0.1", 5071)
GW = ("127.0.0.1", 5060)
TEAMS = ("127.0.0.1", 5080)
A_CALL_ID = "3c26700b-a1@127.0.0.1"
B_CALL_ID = "gw-b2b-77f1c0@127.0.0.1"
T0 = 1_795_000_000.0

_SDP = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        "m=audio 40000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n")


def _msg(first: str, headers: list[str], body: str = "") -> bytes:
    hs = [*headers, f"Content-Length: {len(body.encode())}"]
    if body:
        hs.insert(-1, "Content-Type: application/sdp")
    return (first + "\r\n" + "\r\n".join(hs) + "\r\n\r\n" + body).encode()


def _a(method_or_status: str, cseq: str, *, branch: str = "z9hG4bK-a1", to_tag: str = "", body: str = "",
       request: bool = True) -> bytes:
    first = (f"{method_or_status} sip:+14255550123@127.0.0.1:5060;transport=udp SIP/2.0" if request
             else f"SIP/2.0 {method_or_status}")
    headers = [
        f"Via: SIP/2.0/UDP 127.0.0.1:5071;branch={branch};rport",
        "Max-Forwards: 70" if request else "Server: sipgw-lab-gateway/0.1",
        "From: \"Blake Rivera\" <sip:+14255550111@127.0.0.1>;tag=ph-1",
        f"To: <sip:+14255550123@127.0.0.1>{';tag=' + to_tag if to_tag else ''}",
        f"Call-ID: {A_CALL_ID}",
        f"CSeq: {cseq}",
    ]
    if request:
        headers.append("User-Agent: Yealink SIP-T46S 66.86.0.15")
        headers.append("Contact: <sip:+14255550111@127.0.0.1:5071>")
    return _msg(first, headers, body)


def _b(method_or_status: str, cseq: str, *, to_tag: str = "", body: str = "", request: bool = True) -> bytes:
    first = (f"{method_or_status} sip:blake.teams@127.0.0.1:5080 SIP/2.0" if request
             else f"SIP/2.0 {method_or_status}")
    headers = [
        "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-b1",
        "Max-Forwards: 69" if request else "User-Agent: sipgw-lab-teams-client",
        "From: <sip:+14255550111@127.0.0.1>;tag=gw-9",
        f"To: <sip:blake.teams@127.0.0.1>{';tag=' + to_tag if to_tag else ''}",
        f"Call-ID: {B_CALL_ID}",
        f"CSeq: {cseq}",
    ]
    return _msg(first, headers, body)


def recorded_call() -> TraceRecorder:
    rec = TraceRecorder()
    t = T0
    steps = [
        (0.000, "in", PHONE, GW, _a("INVITE", "1 INVITE", body=_SDP)),
        (0.002, "out", GW, PHONE, _a("100 Trying", "1 INVITE", request=False)),
        (0.004, "out", GW, TEAMS, _b("INVITE", "1 INVITE", body=_SDP)),
        (0.020, "in", TEAMS, GW, _b("180 Ringing", "1 INVITE", to_tag="tc-1", request=False)),
        (0.022, "out", GW, PHONE, _a("180 Ringing", "1 INVITE", to_tag="gw-a", request=False)),
        (1.510, "in", TEAMS, GW, _b("200 OK", "1 INVITE", to_tag="tc-1", body=_SDP, request=False)),
        (1.512, "out", GW, TEAMS, _b("ACK", "1 ACK", to_tag="tc-1")),
        (1.513, "out", GW, PHONE, _a("200 OK", "1 INVITE", to_tag="gw-a", body=_SDP, request=False)),
        (1.530, "in", PHONE, GW, _a("ACK", "1 ACK", branch="z9hG4bK-a2", to_tag="gw-a")),
        (6.100, "in", PHONE, GW, _a("BYE", "2 BYE", branch="z9hG4bK-a3", to_tag="gw-a")),
        (6.101, "out", GW, PHONE, _a("200 OK", "2 BYE", to_tag="gw-a", request=False)),
        (6.102, "out", GW, TEAMS, _b("BYE", "2 BYE", to_tag="tc-1")),
        (6.130, "in", TEAMS, GW, _b("200 OK", "2 BYE", to_tag="tc-1", request=False)),
    ]
    for dt, direction, src, dst, data in steps:
        rec.record(t + dt, direction, "UDP", src, dst, data)
    return rec


LABELS = {"127.0.0.1:5071": "yealink-t46s", "127.0.0.1:5080": "Teams client"}
