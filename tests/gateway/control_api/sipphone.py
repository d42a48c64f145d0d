"""A minimal SIP phone on a loopback UDP socket for control-API tests: REGISTER and INVITE with digest auth.

Built on the project's own ``gateway.sip`` message classes and ``DigestClient``; every wait has a deadline.
"""

from __future__ import annotations

import itertools
import secrets
import socket
import time

from gateway.sip import Request, Response, parse_message
from gateway.sip.auth import DigestClient

VVX_UA = "PolycomVVX-VVX_450-UA/5.9.5.0614_0004f28e5a79"
DOMAIN = "sipgw.lab"


class UdpPhone:
    def __init__(self, gateway: tuple[str, int], username: str, password: str, *, user_agent: str = VVX_UA,
                 answers_notify: bool = False):
        self.gateway = gateway
        #: answer a NOTIFY or OPTIONS that ``receive`` is not waiting for with 200, as a UA must (RFC 3261 §8.2);
        #: off by default because the MWI tests wait for the gateway's NOTIFY (or its retransmission) themselves
        self.answers_notify = answers_notify
        self.username = username
        self.digest = DigestClient(username, password)
        self.user_agent = user_agent
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.addr = self.sock.getsockname()
        self.reg_call_id = f"reg-{secrets.token_hex(6)}@127.0.0.1"
        self._cseq = itertools.count(1)
        self.tag = secrets.token_hex(4)

    def close(self) -> None:
        self.sock.close()

    # --- wire ------------------------------------------------------------------------------------------------
    def send(self, msg: Request | Response) -> None:
        self.sock.sendto(msg.to_bytes(), self.gateway)

    def receive(self, timeout: float = 5.0, want=lambda m: True):
        """The next message matching ``want``; TimeoutError when none arrives before the deadline."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{self.username}: no matching SIP message within {timeout} s")
            self.sock.settimeout(remaining)
            try:
                data, _ = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            msg = parse_message(data)
            if want(msg):
                return msg
            if self.answers_notify and isinstance(msg, Request) and msg.method in ("NOTIFY", "OPTIONS"):
                # An unanswered NOTIFY (the gateway's unsolicited message-summary on REGISTER) would be
                # retransmitted for 32 s (RFC 3261 §17.1.2.2), into the trace of whatever comes next.
                self.send(Response.for_request(msg, 200, to_tag=None if msg.to.tag else self.tag))

    def response_to(self, call_id: str, cseq: int, timeout: float = 5.0) -> Response:
        """The final response for (Call-ID, CSeq), skipping provisionals."""
        return self.receive(timeout, lambda m: isinstance(m, Response) and m.call_id == call_id
                            and m.cseq.seq == cseq and m.status >= 200)

    def _via(self) -> str:
        return f"SIP/2.0/UDP {self.addr[0]}:{self.addr[1]};branch=z9hG4bK{secrets.token_hex(8)};rport"

    # --- REGISTER --------------------------------------------------------------------------------------------
    def register(self, expires: int = 3600) -> Response:
        """REGISTER, answering one digest challenge; returns the final response."""
        authz = None
        for _ in range(2):
            cseq = next(self._cseq)
            headers = [
                ("Via", self._via()), ("Max-Forwards", "70"),
                ("From", f"<sip:{self.username}@{DOMAIN}>;tag={self.tag}"),
                ("To", f"<sip:{self.username}@{DOMAIN}>"),
                ("Call-ID", self.reg_call_id), ("CSeq", f"{cseq} REGISTER"),
                ("Contact", f"<sip:{self.username}@{self.addr[0]}:{self.addr[1]}>"),
                ("Expires", str(expires)), ("User-Agent", self.user_agent),
            ]
            if authz:
                headers.append(("Authorization", authz))
            self.send(Request.build("REGISTER", f"sip:{DOMAIN}", headers))
            resp = self.response_to(self.reg_call_id, cseq)
            if resp.status != 401:
                return resp
            authz = str(self.digest.authorize(resp.headers.get_all("WWW-Authenticate"), method="REGISTER",
                                              uri=f"sip:{DOMAIN}"))
        return resp

    # --- INVITE ----------------------------------------------------------------------------------------------
    def invite(self, number: str) -> tuple[str, Request]:
        """Send an INVITE (answering a 407 once); returns (Call-ID, the INVITE with credentials)."""
        call_id = f"call-{secrets.token_hex(6)}@127.0.0.1"
        uri = f"sip:{number}@{DOMAIN}"
        authz = None
        for _ in range(2):
            cseq = next(self._cseq)
            headers = [
                ("Via", self._via()), ("Max-Forwards", "70"),
                ("From", f"<sip:{self.username}@{DOMAIN}>;tag={self.tag}"), ("To", f"<{uri}>"),
                ("Call-ID", call_id), ("CSeq", f"{cseq} INVITE"),
                ("Contact", f"<sip:{self.username}@{self.addr[0]}:{self.addr[1]}>"),
                ("User-Agent", self.user_agent),
            ]
            if authz:
                headers.append(("Proxy-Authorization", authz))
            req = Request.build("INVITE", uri, headers)
            self.send(req)
            if authz:
                return call_id, req
            resp = self.receive(5.0, lambda m, c=cseq: isinstance(m, Response) and m.call_id == call_id
                                and m.cseq.seq == c and m.status >= 200)
            self.ack_failure(req, resp)
            assert resp.status == 407, f"expected 407 for the first INVITE, got {resp.status}"
            authz = str(self.digest.authorize(resp.headers.get_all("Proxy-Authenticate"), method="INVITE",
                                              uri=uri))
        raise AssertionError("unreachable")

    def ack_failure(self, invite: Request, resp: Response) -> None:
        """RFC 3261 §17.1.1.3: the ACK for a non-2xx final response, same branch as the INVITE."""
        headers = [
            ("Via", invite.headers.get("Via")), ("Max-Forwards", "70"),
            ("From", invite.headers.get("From")), ("To", resp.headers.get("To")),
            ("Call-ID", invite.call_id), ("CSeq", f"{invite.cseq.seq} ACK"),
        ]
        self.send(Request.build("ACK", str(invite.request_uri), headers))

    def answer(self, req: Request, status: int, to_tag: str | None = None) -> Response:
        resp = Response.for_request(req, status, to_tag=to_tag)
        self.send(resp)
        return resp
