"""TransportManager on loopback: delivery with flows, RFC 5626 keep-alives, framing errors close only the
offending connection, sends to closed or unusable addresses fail cleanly (never raise)."""

from __future__ import annotations

import asyncio
import socket

import pytest

from gateway.services.model import Flow
from gateway.transport.manager import TransportManager

MSG = (b"OPTIONS sip:gw@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5999;branch=z9hG4bKx\r\n"
       b"From: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: c1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
       b"Content-Length: 0\r\n\r\n")


async def _manager():
    got: list[tuple[bytes, Flow]] = []
    arrived = asyncio.Event()

    def deliver(data: bytes, flow: Flow, now: float) -> None:
        got.append((data, flow))
        arrived.set()

    m = TransportManager(deliver, max_message_size=4096)
    udp = await m.listen_udp("127.0.0.1", 0)
    tcp = await m.listen_stream("127.0.0.1", 0)
    return m, udp, tcp, got, arrived


async def _read_until(reader: asyncio.StreamReader, needle: bytes, timeout: float = 3.0) -> bytes:
    data = b""
    async with asyncio.timeout(timeout):
        while needle not in data:
            chunk = await reader.read(4096)
            if not chunk:
                break
            data += chunk
    return data


def test_stream_delivery_keepalive_and_framing_error():
    async def main():
        m, _udp, tcp, got, arrived = await _manager()
        try:
            r1, w1 = await asyncio.open_connection("127.0.0.1", tcp.port)
            r2, w2 = await asyncio.open_connection("127.0.0.1", tcp.port)
            # RFC 5626 §4.4.1: a CRLFCRLF ping is answered with a CRLF pong and not delivered.
            w1.write(b"\r\n\r\n")
            assert await _read_until(r1, b"\r\n") == b"\r\n"
            assert not got
            # A message split over two writes is delivered once, with the connection's flow.
            w1.write(MSG[:40])
            await w1.drain()
            w1.write(MSG[40:])
            await asyncio.wait_for(arrived.wait(), 3)
            data, flow = got[0]
            assert data == MSG and flow.transport == "TCP" and flow.conn_id is not None
            assert m.is_live(flow)
            # A Content-Length above the maximum: 513 on that connection, which is closed ...
            w2.write(MSG.replace(b"Content-Length: 0", b"Content-Length: 99999"))
            reply = await _read_until(r2, b"\r\n\r\n")
            assert reply.startswith(b"SIP/2.0 513")
            assert await r2.read() == b""  # closed by the gateway
            # ... and the other connection still works.
            arrived.clear()
            w1.write(MSG)
            await asyncio.wait_for(arrived.wait(), 3)
            assert m.stats.framing_errors == 1 and len(got) == 2
            w1.close()
            async with asyncio.timeout(3):
                while m.is_live(flow):
                    await asyncio.sleep(0.01)
        finally:
            await m.close()

    asyncio.run(main())


def test_udp_keepalive_and_sends_that_cannot_work():
    async def main():
        m, udp, _tcp, got, _arrived = await _manager()
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.1", 0))
            s.sendto(b"\r\n\r\n", ("127.0.0.1", udp.port))
            async with asyncio.timeout(3):
                while m.stats.keepalives == 0:
                    await asyncio.sleep(0.01)
            assert not got
            # A host name or a malformed address in a peer's Via: a failed send, not an exception.
            assert m.send(b"x", Flow("UDP", "127.0.1", 5060)) is False
            assert m.send(b"x", Flow("UDP", "not-an-ip.invalid", 5060)) is False
            assert m.stats.send_failures == 2
            # TCP to a port where nothing listens: the background connect fails and reports it.
            closed = socket.socket()
            closed.bind(("127.0.0.1", 0))
            port = closed.getsockname()[1]
            closed.close()
            failed = asyncio.Event()
            assert m.send(b"x", Flow("TCP", "127.0.0.1", port), on_error=failed.set) is True
            await asyncio.wait_for(failed.wait(), 5)
            assert not m.is_live(Flow("TCP", "127.0.0.1", port))
            s.close()
        finally:
            await m.close()

    asyncio.run(main())


@pytest.mark.parametrize("count", [5])
def test_concurrent_sends_to_one_peer_share_a_connection(count):
    async def main():
        m, _udp, _tcp, _got, _arrived = await _manager()
        server_conns = []
        received = bytearray()
        done = asyncio.Event()

        async def handle(reader, writer):
            server_conns.append(writer)
            while chunk := await reader.read(4096):
                received.extend(chunk)
                if received.count(b"ping") == count:
                    done.set()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            for _ in range(count):
                assert m.send(b"ping", Flow("TCP", "127.0.0.1", port))
            await asyncio.wait_for(done.wait(), 5)
            assert len(server_conns) == 1  # one connection carried every message
        finally:
            server.close()
            await m.close()

    asyncio.run(main())
