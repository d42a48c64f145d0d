"""Start-up of the embedded gateway on ephemeral ports: UDP and TCP share one port even when the first
port the kernel picks for UDP is taken for TCP."""

from __future__ import annotations

import errno
import socket

from gateway.config import GatewayConfig
from gateway.server import EmbeddedGateway
from gateway.transport.manager import TransportManager


def test_udp_tcp_port_pair_retried_when_tcp_is_taken(tmp_path, monkeypatch):
    real = TransportManager.listen_stream
    calls = []

    async def flaky(self, host, port, ssl_context=None):
        calls.append(port)
        if len(calls) == 1:
            raise OSError(errno.EADDRINUSE, "address already in use")
        return await real(self, host, port, ssl_context)

    monkeypatch.setattr(TransportManager, "listen_stream", flaky)
    gw = EmbeddedGateway(tmp_path, GatewayConfig(sip="127.0.0.1:0", http="127.0.0.1:0"), control_api=False)
    eps = gw.start_in_thread()
    try:
        assert eps.udp[1] == eps.tcp[1]
        # TCP failed (at least) once, then TCP on the new UDP port, then TLS on an ephemeral port.
        assert len(calls) >= 3 and calls[-2:] == [eps.tcp[1], 0]
        udp_listeners = [lst for lst in gw.core.transports.listeners if lst.transport == "UDP"]
        assert len(udp_listeners) == 1 and udp_listeners[0].port == eps.udp[1]
        # The UDP listener actually answers on the port it reports.
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(5)
        s.sendto(b"OPTIONS sip:gw@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKp1;rport\r\n"
                 b"From: <sip:a@x>;tag=1\r\nTo: <sip:gw@x>\r\nCall-ID: p1\r\nCSeq: 1 OPTIONS\r\n"
                 b"Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n", eps.udp)
        try:
            reply = s.recv(65535)
        except TimeoutError:
            sent = [(e.source, e.first_line) for e in gw.trace.entries() if e.direction == "out"]
            raise AssertionError(f"no answer on {eps.udp}; the gateway sent {sent}") from None
        assert reply.startswith(b"SIP/2.0 200")
        s.close()
    finally:
        gw.stop_thread()
