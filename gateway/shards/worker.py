"""A registrar worker: ``python -m gateway.shards.worker --spec JSON`` (started by :mod:`gateway.shards.pool`).

It inherits the gateway's UDP sockets (to answer from the gateway's address) and one end of a ``SOCK_SEQPACKET``
pair, on which it receives the REGISTERs of its shard and the gateway's changes, and sends back every binding,
device record and failed authentication it makes. It opens the gateway's store and answers with the same registrar
code as the gateway's own process. It stops when the gateway says so or closes its end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
from dataclasses import asdict
from types import SimpleNamespace
from typing import Any

from gateway.clock import Clock
from gateway.gc_policy import GcPolicy
from gateway.server import NoMedia, hostport
from gateway.services.directory import Directory
from gateway.services.registrar import Binding, DeviceRegistry, Registrar, RegistrarConfig
from gateway.services.routing import Router
from gateway.shards import frames
from gateway.shards.channel import Channel
from gateway.sip.auth import DigestServer
from gateway.sip.timers import TimerConfig
from gateway.sipcore import SipCore
from gateway.store.sqlite import Store

log = logging.getLogger("sipgw.shards.worker")

#: Seconds a binding refresh or a device's last-connected time waits, so that the gateway's process hears of a
#: busy user's refreshes once per tick instead of once per REGISTER.
REFRESH_DELAY = 1.0


class _RawSender:
    """``transport.sendto`` of the inherited socket. The socket is the gateway's, non-blocking, and stays so (its
    blocking mode is shared with the gateway's process): a full buffer drops the datagram, as UDP may."""

    def __init__(self, sock: socket.socket):
        self.sock = sock

    def sendto(self, data: bytes, addr: tuple[str, int]) -> None:
        with contextlib.suppress(BlockingIOError):
            self.sock.sendto(data, addr)


class _TraceToGateway:
    """The worker's stand-in for the gateway's trace recorder: what it sends goes into the gateway's trace."""

    def __init__(self, worker: Worker, enabled: bool):
        self.worker = worker
        self.enabled = enabled

    def record(self, time: float, direction: str, transport: str, source, destination, data: bytes) -> None:
        if self.enabled:
            self.worker.tell({"k": "trace", "t": time, "dir": direction, "tr": transport, "src": list(source),
                              "dst": list(destination), "data": data.decode("latin-1")})


class _LogToGateway(logging.Handler):
    """The worker's log records go to the gateway's process, which writes them with its own handler and format
    (one log stream, ``worker=N`` on each line); stderr once the channel is closed."""

    def __init__(self, worker: Worker):
        super().__init__()
        self.worker = worker
        self.fallback = logging.StreamHandler(sys.stderr)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
            if record.exc_info:
                text += "\n" + logging.Formatter().formatException(record.exc_info)
        except Exception:
            self.handleError(record)
            return
        if self.worker.channel.closed:
            self.fallback.emit(record)
        else:
            self.worker.tell({"k": "log", "level": record.levelno, "name": record.name, "msg": text})


class _Mirror:
    """The worker's registrar tells the gateway of its failed authentications (the throttle is shared); the other
    changes a mirror hears of come from the gateway in the first place."""

    def __init__(self, worker: Worker):
        self.worker = worker

    def auth_failed(self, host: str, now: float) -> None:
        self.worker.tell({"k": "fail", "h": host, "t": now})

    def dropped_device(self, key: str) -> None:
        pass

    def removed_user(self, username: str) -> None:
        pass

    def cleared(self) -> None:
        pass


class Worker:
    def __init__(self, spec: dict[str, Any], loop: asyncio.AbstractEventLoop):
        self.spec = spec
        self.index = int(spec["index"])
        self.loop = loop
        self.clock = Clock()
        self.clock.set_offset(float(spec.get("clock_offset", 0.0)))
        self.store = Store(spec["db"])
        realm = spec["domain"]
        self.directory = Directory(self.store, realm)
        secret = self.store.setting("nonce_secret")
        if secret is None:
            raise SystemExit("the gateway's store has no nonce secret")
        self.auth = DigestServer(realm, bytes.fromhex(secret), algorithms=tuple(spec["digest_algorithms"]))
        self.devices = DeviceRegistry(self.store)
        self.registrar = Registrar(self.directory, self.auth, self.devices, RegistrarConfig(**spec["registrar"]))
        self.core = SipCore(directory=self.directory, registrar=self.registrar,
                            router=Router(self.directory, self.registrar, NoMedia(), spec["domain"]),
                            auth=self.auth, domain=spec["domain"], agent=spec["agent"], wall_clock=self.clock.now,
                            timers=TimerConfig(t1=spec["sip_t1"], t2=max(4.0, spec["sip_t1"])))
        transports = self.core.transports
        transports.trace = _TraceToGateway(self, bool(spec.get("trace")))  # type: ignore[assignment]
        transports.max_message_size = int(spec["max_message_size"])
        self.sockets: list[tuple[socket.socket, tuple[str, int]]] = []
        for fd, host, port in spec["udp"]:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_DGRAM, fileno=int(fd))
            self.sockets.append((sock, (host, int(port))))
            transports._udp_by_family.setdefault(family, SimpleNamespace(transport=_RawSender(sock),
                                                                         local=(host, int(port))))
        self.registrar.mirror = _Mirror(self)
        self.registrar.listeners.append(self._bindings_changed)
        self.devices.listeners.append(self._device_changed)
        self.devices.on_touch = self._device_touched
        self._outbox: list[dict[str, Any]] = []
        #: What the gateway was last told of each user's bindings, but the times and sequence numbers.
        self._shapes: dict[str, tuple] = {}
        #: Refreshes and last-connected times waiting for the next REFRESH_DELAY tick (latest per user or device).
        self._refreshes: dict[str, list[Binding]] = {}
        self._touches: dict[str, float] = {}
        self._refresh_timer: asyncio.TimerHandle | None = None
        self.stopped = asyncio.Event()
        self.channel = Channel(socket.socket(fileno=int(spec["channel"])), loop, self._on_frame, self.stopped.set)

    def start(self) -> None:
        self.core.bind({"UDP": hostport(*self.sockets[0][1])})  # it answers, sends no request: Via unused
        self.loop.call_later(1.0, self._housekeeping)
        self.tell({"k": "ready", "pid": os.getpid()})

    # --- to the gateway ------------------------------------------------------------------------------------------
    def tell(self, message: dict[str, Any]) -> None:
        if not self._outbox:
            self.loop.call_soon(self._flush)
        self._outbox.append(message)

    def _flush(self) -> None:
        messages, self._outbox = self._outbox, []
        if messages:
            self.channel.send(frames.messages_frame(messages))

    def _bindings_changed(self, username: str, bindings: list[Binding]) -> None:
        """A change the gateway must hear of at once (a contact added, removed or moved; the MWI and calls depend
        on it), or a refresh: the same contacts on the same flows with a later expiry, Call-ID or CSeq, which waits
        for the next tick with the user's other refreshes (only the latest is sent). The gateway's copy of a
        refreshed binding is then up to REFRESH_DELAY old, which moves nothing but its expiry."""
        shape = tuple((b.uri, b.flow, b.instance, b.device_key, b.user_agent, b.q, b.recv_info, b.allow)
                      for b in bindings)
        if bindings and self._shapes.get(username) == shape:
            self._refreshes[username] = bindings
            self._tick()
            return
        if shape:
            self._shapes[username] = shape
        else:
            self._shapes.pop(username, None)
        self._refreshes.pop(username, None)  # superseded by this state
        self.tell({"k": "bind", "u": username, "b": [frames.binding_to_wire(b) for b in bindings]})

    def _device_changed(self, key: str) -> None:
        device = self.devices.get(key)
        if device is not None:
            self.tell({"k": "device", "d": frames.device_to_wire(device)})

    def _device_touched(self, key: str, wall: float) -> None:
        self._touches[key] = wall
        self._tick()

    def _tick(self) -> None:
        if self._refresh_timer is None:
            self._refresh_timer = self.loop.call_later(REFRESH_DELAY, self._send_refreshes)

    def _send_refreshes(self) -> None:
        self._refresh_timer = None
        refreshes, self._refreshes = self._refreshes, {}
        touches, self._touches = self._touches, {}
        for username, bindings in refreshes.items():
            self.tell({"k": "bind", "u": username, "b": [frames.binding_to_wire(b) for b in bindings]})
        for key, wall in touches.items():
            self.tell({"k": "touch", "key": key, "t": wall})

    def _housekeeping(self) -> None:
        try:
            self.store.flush()
            self.registrar.expire(self.core.now())
            self.tell({"k": "stats", "registrar": asdict(self.registrar.stats), "core": asdict(self.core.stats)})
        except Exception:
            log.exception("event=worker_housekeeping_failed index=%d", self.index)
        if not self.stopped.is_set():
            self.loop.call_later(1.0, self._housekeeping)

    # --- from the gateway ----------------------------------------------------------------------------------------
    def _on_frame(self, frame: bytes) -> None:
        if frame[0] == frames.DATAGRAM:
            now = self.loop.time()
            flow_of = self.core.transports.udp_flow_of
            for host, port, data in frames.read_datagrams(frame):
                self.core._on_data(data, flow_of((host, port)), now)
            return
        for message in frames.read_messages(frame):
            self._apply(message)

    def _apply(self, m: dict[str, Any]) -> None:
        kind = m["k"]
        now = self.core.now()
        if kind == "directory":
            self.directory.reload()
        elif kind == "device":
            self.devices.refresh(str(m["key"]))
        elif kind == "drop":
            self.registrar.drop_device(str(m["key"]), now)
        elif kind == "remove_user":
            self.registrar.remove_user(str(m["u"]), now)
        elif kind == "clear":
            self.registrar.clear()
        elif kind == "clock":
            self.clock.set_offset(float(m["offset"]))
        elif kind == "fail":
            self.registrar.note_failure(str(m["h"]), float(m["t"]))
        elif kind == "stop":
            self.stopped.set()
        else:
            log.warning("event=worker_unknown_message kind=%s", kind)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            self.store.flush()
        if self._refresh_timer is not None:
            self._refresh_timer.cancel()
        self._send_refreshes()
        self._flush()
        self.channel.close()
        self.store.close()


async def run(spec: dict[str, Any]) -> int:
    loop = asyncio.get_running_loop()
    worker = Worker(spec, loop)
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(_LogToGateway(worker))
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, worker.stopped.set)
    from device_profiles.verdict import check_user_agent

    check_user_agent("sipgw-lab", source="sip")  # the catalogue loaded before the first REGISTER
    policy = GcPolicy()
    policy.install(loop)
    worker.start()
    log.info("event=worker_ready index=%d pid=%d", worker.index, os.getpid())
    await worker.stopped.wait()
    log.info("event=worker_stopping index=%d", worker.index)
    await worker.close()
    policy.remove()
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m gateway.shards.worker", description=__doc__.split("\n\n")[0])
    p.add_argument("--spec", required=True, help="the worker's settings as JSON (written by gateway.shards.pool)")
    args = p.parse_args(argv)
    try:
        spec = json.loads(args.spec)
    except ValueError as exc:
        p.error(f"--spec is not JSON: {exc}")
    logging.basicConfig(level=spec.get("log_level", "INFO"), stream=sys.stderr,
                        format=f"%(asctime)s registrar-worker-{spec.get('index', '?')} %(levelname)s %(name)s "
                               "%(message)s")
    try:
        import uvloop  # type: ignore[import-not-found]
    except ImportError:
        return asyncio.run(run(spec))
    return uvloop.run(run(spec))


if __name__ == "__main__":
    sys.exit(main())
