"""asyncio transports for the gateway: UDP, TCP and TLS on IPv4 and IPv6.

Every message received is handed to one callback as ``(data, flow, now)``; every message the core wants
to send goes through :meth:`TransportManager.send` with the flow to send it on. Responses and requests to
a registered device reuse the flow its request arrived on (symmetric signalling, RFC 3581 ``rport`` and
connection reuse for TCP/TLS, as phones behind NAT and TLS phones need). A stream transport frames
messages by Content-Length (``gateway.sip.framing``) with a maximum message size, answers RFC 5626
keep-alives, and is closed on a framing error after the error response (when one can be built) was sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from gateway.services.model import Flow
from gateway.sip import SipParseError
from gateway.sip.framing import KEEPALIVE_PONG, StreamFramer, is_keepalive
from gateway.sip.validate import response_for_error
from gateway.trace import TraceRecorder

log = logging.getLogger("sipgw.transport")

Deliver = Callable[[bytes, Flow, float], None]


@dataclass
class TransportStats:
    received: int = 0
    sent: int = 0
    dropped_garbage: int = 0
    framing_errors: int = 0
    send_failures: int = 0
    connections: int = 0
    keepalives: int = 0


@dataclass
class Listener:
    transport: str
    host: str
    port: int
    server: object = field(repr=False, default=None)


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, manager: TransportManager, local: tuple[str, int]):
        self.manager = manager
        self.local = local
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport) -> None:  # type: ignore[override]
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * 1024 * 1024)

    def datagram_received(self, data: bytes, addr) -> None:
        m = self.manager
        m.stats.received += 1
        flow = m.udp_flow_of(addr)
        if m.trace.enabled:
            m.trace.record(time.time(), "in", "UDP", (addr[0], addr[1]), self.local, data)
        if len(data) <= 4 and not data.strip():
            m.stats.keepalives += 1  # CRLF keep-alive of a UDP phone
            return
        if m.divert is not None and m.divert(data, flow, self.local):
            return  # handed to a registrar worker (gateway.shards)
        m.deliver(data, flow, m.loop_time())

    def error_received(self, exc: Exception) -> None:
        log.debug("UDP error on %s: %s", self.local, exc)


class _Stream(asyncio.Protocol):
    def __init__(self, manager: TransportManager, name: str, local: tuple[str, int] | None = None):
        self.manager = manager
        self.name = name
        self.local = local
        self.framer = StreamFramer(manager.max_message_size)
        self.transport: asyncio.Transport | None = None
        self.flow: Flow | None = None
        self.conn_id = next(manager._conn_ids)
        self.ready = asyncio.get_event_loop().create_future()

    def connection_made(self, transport) -> None:  # type: ignore[override]
        self.transport = transport
        peer = transport.get_extra_info("peername")
        sock = transport.get_extra_info("sockname")
        self.local = (sock[0], sock[1]) if sock else self.local
        self.flow = Flow(self.name, peer[0], peer[1], self.conn_id)
        self.manager._connections[self.conn_id] = self
        self.manager._by_peer[(self.name, peer[0], peer[1])] = self
        self.manager.stats.connections += 1
        if not self.ready.done():
            self.ready.set_result(self)

    def data_received(self, data: bytes) -> None:
        m = self.manager
        for item in self.framer.feed(data):
            if isinstance(item, SipParseError):
                m.stats.framing_errors += 1
                log.info("%s: framing error from %s: %s", self.name, self.flow, item.reason)
                resp = response_for_error(item)
                if resp is not None and self.transport is not None:
                    self.write(resp.to_bytes())
                if self.transport is not None:
                    self.transport.close()
                return
            if is_keepalive(item):
                m.stats.keepalives += 1
                self.write(KEEPALIVE_PONG, trace=False)
                continue
            m.stats.received += 1
            if m.trace.enabled and self.flow is not None and self.local is not None:
                m.trace.record(time.time(), "in", self.name, (self.flow.host, self.flow.port), self.local, item)
            m.deliver(item, self.flow, m.loop_time())  # type: ignore[arg-type]

    def write(self, data: bytes, trace: bool = True) -> None:
        if self.transport is None or self.transport.is_closing():
            raise ConnectionError(f"{self.name} connection {self.flow} is closed")
        self.transport.write(data)
        if trace and self.manager.trace.enabled and self.flow is not None and self.local is not None:
            self.manager.trace.record(time.time(), "out", self.name, self.local, (self.flow.host, self.flow.port),
                                      data)

    def connection_lost(self, exc: Exception | None) -> None:
        m = self.manager
        m._connections.pop(self.conn_id, None)
        if self.flow is not None and m._by_peer.get((self.name, self.flow.host, self.flow.port)) is self:
            del m._by_peer[(self.name, self.flow.host, self.flow.port)]
        if not self.ready.done():
            self.ready.set_exception(exc or ConnectionError("connection closed"))


class TransportManager:
    def __init__(self, deliver: Deliver, *, trace: TraceRecorder | None = None, max_message_size: int = 65535,
                 tls_client_context: ssl.SSLContext | None = None):
        self.deliver = deliver
        self.trace = trace or TraceRecorder(enabled=False)
        self.max_message_size = max_message_size
        self.stats = TransportStats()
        self.listeners: list[Listener] = []
        self._udp: dict[tuple[str, int], _Udp] = {}  # keyed by (family, local) -> protocol
        self._udp_by_family: dict[int, _Udp] = {}
        self._connections: dict[int, _Stream] = {}
        self._by_peer: dict[tuple[str, str, int], _Stream] = {}
        self._conn_ids = itertools.count(1)
        self._tls_client = tls_client_context
        self._pending: dict[tuple[str, str, int], asyncio.Task] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        # UDP flows by peer address: a Flow is immutable, so one per peer is built, not one per datagram.
        self._udp_flows: dict[tuple, Flow] = {}
        self._udp_hosts: dict[str, int] = {}  # IP literals already checked -> address family
        #: ``divert(data, flow, local)`` sees every UDP datagram first and returns True for those another process
        #: handles (:mod:`gateway.shards`); None: everything is delivered here.
        self.divert: Callable[[bytes, Flow, tuple[str, int]], bool] | None = None

    #: Peers remembered in the flow cache before it is emptied (a bound on memory, not a limit on peers).
    FLOW_CACHE = 65536

    def udp_flow_of(self, addr: tuple) -> Flow:
        """The Flow of a UDP peer address (``(host, port, ...)`` as the socket gives it): one per peer, cached."""
        flow = self._udp_flows.get(addr)
        if flow is None:
            if len(self._udp_flows) >= self.FLOW_CACHE:
                self._udp_flows.clear()
            flow = self._udp_flows[addr] = Flow("UDP", addr[0], addr[1])
        return flow

    def loop_time(self) -> float:
        return self._loop.time() if self._loop else time.monotonic()

    # --- listening -----------------------------------------------------------------------------------------
    async def listen_udp(self, host: str, port: int) -> Listener:
        self._loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        transport, proto = await self._loop.create_datagram_endpoint(
            lambda: _Udp(self, (host, port)), local_addr=(host, port), family=family)
        sock = transport.get_extra_info("sockname")
        proto.local = (sock[0], sock[1])
        self._udp[(host, sock[1])] = proto
        self._udp_by_family.setdefault(family, proto)
        listener = Listener("UDP", host, sock[1], transport)
        self.listeners.append(listener)
        return listener

    async def listen_stream(self, host: str, port: int, ssl_context: ssl.SSLContext | None = None) -> Listener:
        self._loop = asyncio.get_running_loop()
        name = "TLS" if ssl_context else "TCP"
        server = await self._loop.create_server(lambda: _Stream(self, name), host, port, ssl=ssl_context,
                                                reuse_address=True)
        bound = server.sockets[0].getsockname()
        listener = Listener(name, host, bound[1], server)
        self.listeners.append(listener)
        return listener

    def close_listener(self, listener: Listener) -> None:
        """Stop one listener (used when a port pair could not be bound and start-up tries another)."""
        if listener in self.listeners:
            self.listeners.remove(listener)
        server = listener.server
        if listener.transport == "UDP":
            proto = self._udp.pop((listener.host, listener.port), None)
            for fam, p in list(self._udp_by_family.items()):
                if p is proto:
                    del self._udp_by_family[fam]
                    # Another listener of that family (if any) sends from now on.
                    other = next((q for (h, _), q in self._udp.items() if (":" in h) == (fam == socket.AF_INET6)),
                                 None)
                    if other is not None:
                        self._udp_by_family[fam] = other
        if server is not None:
            server.close()  # type: ignore[attr-defined]

    def listener(self, transport: str, ipv6: bool = False) -> Listener | None:
        for lst in self.listeners:
            if lst.transport == transport and (":" in lst.host) == ipv6:
                return lst
        return None

    # --- sending -------------------------------------------------------------------------------------------
    def is_live(self, flow: Flow) -> bool:
        """Can ``flow`` be used as it is: UDP always; TCP/TLS while its connection (or one to that peer) is open."""
        if flow.transport == "UDP":
            return True
        conn = self._connections.get(flow.conn_id) if flow.conn_id else None
        if conn is None:
            conn = self._by_peer.get((flow.transport, flow.host, flow.port))
        return conn is not None and conn.transport is not None and not conn.transport.is_closing()

    def send(self, data: bytes, flow: Flow, on_error: Callable[[], None] | None = None) -> bool:
        """Send on a flow; returns False when it cannot be sent now (the caller treats it as a transport error).

        For TCP/TLS without a live connection to that peer, a new connection is opened in the background
        and the message is sent once it is up; ``on_error`` is called (on the loop) if that fails, so the
        transaction fails at once (RFC 3261 §17.1.4) instead of waiting for timer B or F.
        """
        if flow.transport == "UDP":
            return self.send_udp(data, flow.host, flow.port)
        try:
            conn = self._connections.get(flow.conn_id) if flow.conn_id else None
            if conn is None:
                conn = self._by_peer.get((flow.transport, flow.host, flow.port))
            if conn is None:
                self._connect_and_send(data, flow, on_error)
                return True
            conn.write(data)
            self.stats.sent += 1
            return True
        except (OSError, ConnectionError, ValueError) as exc:
            # ValueError: an address that is not an IP literal of the socket's family (a peer's Via can name
            # anything); the transaction gets a transport error instead of the loop an exception.
            self.stats.send_failures += 1
            log.info("send to %s failed: %s", flow, exc)
            return False

    def send_udp(self, data: bytes, host: str, port: int) -> bool:
        """Send one datagram from the listener of the host's address family; False when it cannot be sent."""
        try:
            family = self._udp_hosts.get(host)
            if family is None:
                family = socket.AF_INET6 if ":" in host else socket.AF_INET
                # Only IP literals: a host name (from a peer's Via or Contact) would mean a blocking DNS
                # lookup on the event loop, stalling every other flow; the lab resolves nothing (RFC 3263 off).
                socket.inet_pton(family, host)
                if len(self._udp_hosts) >= self.FLOW_CACHE:
                    self._udp_hosts.clear()
                self._udp_hosts[host] = family
            proto = self._udp_by_family.get(family)
            if proto is None or proto.transport is None:
                raise ConnectionError("no UDP listener for that address family")
            proto.transport.sendto(data, (host, port))
            if self.trace.enabled:
                self.trace.record(time.time(), "out", "UDP", proto.local, (host, port), data)
            self.stats.sent += 1
            return True
        except (OSError, ConnectionError, ValueError) as exc:
            self.stats.send_failures += 1
            log.info("send to %s failed: %s", Flow("UDP", host, port), exc)
            return False

    def _connect_and_send(self, data: bytes, flow: Flow, on_error: Callable[[], None] | None = None) -> None:
        loop = self._loop or asyncio.get_running_loop()
        key = (flow.transport, flow.host, flow.port)

        async def run() -> None:
            ctx = self._tls_client if flow.transport == "TLS" else None
            family = socket.AF_INET6 if ":" in flow.host else socket.AF_INET
            if flow.transport == "TLS" and ctx is None:
                ctx = ssl.create_default_context()
            try:
                pending = self._pending.get(key)
                if pending is not None and pending is not asyncio.current_task():
                    # Another message is already connecting to this peer: share that connection.
                    with contextlib.suppress(Exception):
                        await asyncio.shield(pending)
                proto = self._by_peer.get(key)
                if proto is None or proto.transport is None or proto.transport.is_closing():
                    socket.inet_pton(family, flow.host)  # no DNS on the loop (see send)
                    _, proto = await asyncio.wait_for(loop.create_connection(
                        lambda: _Stream(self, flow.transport), flow.host, flow.port, ssl=ctx), timeout=5)
                proto.write(data)
                self.stats.sent += 1
            except (TimeoutError, OSError, ssl.SSLError, ConnectionError, ValueError) as exc:
                self.stats.send_failures += 1
                log.info("connect to %s failed: %s", flow, exc)
                if on_error is not None:
                    try:
                        on_error()
                    except Exception:
                        log.exception("transport error handler for %s failed", flow)
            finally:
                if self._pending.get(key) is asyncio.current_task():
                    del self._pending[key]

        task = loop.create_task(run())
        self._pending.setdefault(key, task)

    def close_connection(self, conn_id: int) -> None:
        conn = self._connections.get(conn_id)
        if conn is not None and conn.transport is not None:
            conn.transport.close()

    async def close(self) -> None:
        for conn in list(self._connections.values()):
            if conn.transport is not None:
                conn.transport.abort()
        for lst in self.listeners:
            server = lst.server
            if isinstance(server, asyncio.DatagramTransport):
                server.close()
            elif server is not None:
                server.close()  # type: ignore[attr-defined]
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(server.wait_closed(), 2)  # type: ignore[attr-defined]
        self.listeners.clear()


def server_tls_context(cert: str, key: str) -> ssl.SSLContext:
    """TLS 1.2 and 1.3 for the SIP listener (phones still on TLS 1.2 must connect)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    return ctx


def client_tls_context(ca_file: str | None, verify: bool = False) -> ssl.SSLContext:
    """For connections the gateway opens to devices: phones present self-signed certificates, so the
    peer certificate is verified only when asked to."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if verify:
        ctx.load_verify_locations(ca_file)
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx
