"""The gateway's 401/407 challenges are stateless (RFC 3261 §8.2.7): no transaction, no 100 (Trying).

Datagrams go into the SIP core as the UDP transport hands them over (``SipCore._on_data``) and what the gateway
sends is taken from ``TransportManager.send_udp``, so each check sees the gateway's own bytes.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from gateway.config import GatewayConfig
from gateway.server import EmbeddedGateway
from gateway.services.model import Flow, User
from gateway.sip.auth import authorization_for
from gateway.tenant import Tenant

DOMAIN = "sipgw.lab"
PHONE = Flow("UDP", "127.0.0.1", 40010)
UA = "Yealink SIP-T54W 96.86.0.100"


def _register(n: int, *, auth: str = "", max_forwards: int = 70) -> str:
    return (f"REGISTER sip:{DOMAIN} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{PHONE.port};branch=z9hG4bK-reg-{n};rport\r\n"
            f"Max-Forwards: {max_forwards}\r\n"
            f"From: <sip:+14255550101@{DOMAIN}>;tag=r{n}\r\nTo: <sip:+14255550101@{DOMAIN}>\r\n"
            f"Call-ID: reg@127.0.0.1\r\nCSeq: {n} REGISTER\r\n"
            f"Contact: <sip:+14255550101@127.0.0.1:{PHONE.port}>\r\nExpires: 3600\r\nUser-Agent: {UA}\r\n"
            f"{auth}Content-Length: 0\r\n\r\n")


def _invite(n: int, *, auth: str = "", method: str = "INVITE", to_tag: str = "") -> str:
    return (f"{method} sip:+14255550102@{DOMAIN} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{PHONE.port};branch=z9hG4bK-inv-{n};rport\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:+14255550101@{DOMAIN}>;tag=c1\r\n"
            f"To: <sip:+14255550102@{DOMAIN}>{to_tag}\r\nCall-ID: call@127.0.0.1\r\nCSeq: {n} {method}\r\n"
            f"Contact: <sip:+14255550101@127.0.0.1:{PHONE.port}>\r\nUser-Agent: {UA}\r\n"
            f"{auth}Content-Length: 0\r\n\r\n")


class _Wire:
    def __init__(self, gw: EmbeddedGateway):
        self.core = gw.core
        self.sent: list[str] = []
        self.core.transports.send_udp = self._capture  # type: ignore[method-assign]

    def _capture(self, data: bytes, host: str, port: int) -> bool:
        self.sent.append(data.decode())
        return True

    def feed(self, text: str, flow: Flow = PHONE) -> list[str]:
        self.sent = []
        self.core._on_data(text.encode(), flow, self.core.now())
        return self.sent


def _header(text: str, name: str) -> str:
    return next(line.split(":", 1)[1].strip() for line in text.split("\r\n") if line.startswith(name + ":"))


def _answer(challenge: str, header: str, method: str, uri: str = f"sip:{DOMAIN}") -> str:
    return str(authorization_for(_header(challenge, header), username="avery", password="pw-avery", method=method,
                                 uri=uri))


def _run(tmp_path: Path, check) -> None:
    async def main() -> None:
        tenant = Tenant(((User("avery", "Avery Chen", "+14255550101"), "pw-avery"),
                         (User("blake", "Blake Rivera", "+14255550102"), "pw-blake")), ())
        config = GatewayConfig(sip="127.0.0.1:0", http="127.0.0.1:0", digest_algorithms=["MD5"])
        gw = EmbeddedGateway(tmp_path, config, tenant=tenant, control_api=False)
        await gw.start()
        try:
            check(_Wire(gw))
        finally:
            await gw.stop()

    asyncio.run(main())


def test_a_register_without_credentials_is_challenged_without_a_transaction(tmp_path: Path) -> None:
    def check(wire: _Wire) -> None:
        out = wire.feed(_register(1))
        assert [m.split("\r\n")[0] for m in out] == ["SIP/2.0 401 Unauthorized"]
        assert wire.core.endpoint.transaction_count == 0
        # A retransmission gets the same answer again, nonce and all, from the endpoint's memory of its stateless
        # answers: the registrar is not asked twice and still no transaction is kept.
        again = wire.feed(_register(1))
        assert again == out
        assert wire.core.stats.stateless == 1 and wire.core.endpoint.stateless_repeats == 1
        assert wire.core.endpoint.transaction_count == 0
        # The answer to the challenge gets its transaction and is registered.
        creds = _answer(out[0], "WWW-Authenticate", "REGISTER")
        ok = wire.feed(_register(2, auth=f"Authorization: {creds}\r\n"))
        assert any(m.startswith("SIP/2.0 200 OK") for m in ok)
        # Its server transaction absorbs retransmissions for Timer J, Completed (the other one is the MWI NOTIFY's).
        assert len(wire.core.endpoint._completed) == 1 and not wire.core.endpoint._server
        assert wire.core.registrar.bindings("avery", wire.core.now())

    _run(tmp_path, check)


def test_a_malformed_register_without_credentials_is_answered_in_its_transaction(tmp_path: Path) -> None:
    def check(wire: _Wire) -> None:
        out = wire.feed(_register(1, max_forwards=0))
        assert [m.split("\r\n")[0] for m in out] == ["SIP/2.0 483 Too Many Hops"]
        assert wire.core.stats.stateless == 0 and wire.core.endpoint.transaction_count == 1

    _run(tmp_path, check)


def test_an_invite_without_credentials_gets_only_a_407_and_its_ack_changes_nothing(tmp_path: Path) -> None:
    def check(wire: _Wire) -> None:
        out = wire.feed(_invite(1))
        assert [m.split("\r\n")[0] for m in out] == ["SIP/2.0 407 Proxy Authentication Required"]
        assert wire.core.endpoint.transaction_count == 0
        tag = ";tag=" + _header(out[0], "To").split(";tag=")[1]
        assert wire.feed(_invite(1, method="ACK", to_tag=tag)) == []  # §8.2.7: a stateless UAS ignores the ACK
        assert wire.core.endpoint.transaction_count == 0 and not wire.core.b2bua.calls
        # The INVITE with credentials is taken statefully: its 100 (Trying) first, then the B2BUA's answer
        # (blake has no registered device: 480).
        challenge = wire.feed(_register(1))[0]
        reg = wire.feed(_register(2, auth=f"Authorization: {_answer(challenge, 'WWW-Authenticate', 'REGISTER')}\r\n"))
        assert any(m.startswith("SIP/2.0 200 ") for m in reg)
        creds = _answer(out[0], "Proxy-Authenticate", "INVITE", uri=f"sip:+14255550102@{DOMAIN}")
        answered = wire.feed(_invite(2, auth=f"Proxy-Authorization: {creds}\r\n"))
        assert [m.split("\r\n")[0] for m in answered][:2] == ["SIP/2.0 100 Trying",
                                                               "SIP/2.0 480 Temporarily Unavailable"]

    _run(tmp_path, check)


def test_an_invite_from_a_trusted_source_is_not_challenged(tmp_path: Path) -> None:
    def check(wire: _Wire) -> None:
        wire.core.trusted_hosts.add("127.0.0.9")
        out = wire.feed(_invite(1), Flow("UDP", "127.0.0.9", 40020))
        assert out and out[0].startswith("SIP/2.0 100 Trying")
        assert not any(" 407 " in m.split("\r\n")[0] for m in out)
        assert wire.core.stats.stateless == 0

    _run(tmp_path, check)
