"""The gateway's side of the registrar workers: starts them, hands them their REGISTERs, keeps their bindings.

``RegistrarShards(gw, processes).start()`` once the gateway listens and its services are installed (the
dispatcher asks the sign-in service which digest user names it must keep); ``stop()`` before the transports
close. See :mod:`gateway.shards` for the whole design.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from gateway.services.registrar import RegistrarStats
from gateway.shards import frames
from gateway.shards.channel import Channel
from gateway.shards.dispatch import RegisterDispatch

log = logging.getLogger("sipgw.shards")

#: A worker says something (its counters) every second; one silent for this long is stopped and its shard taken
#: back (a worker that is alive but no longer reads would otherwise keep its users from registering).
SILENCE_S = 10.0

#: Datagrams handed to a worker in one turn of the loop go as one frame, up to this size.
MAX_BATCH_BYTES = 256 * 1024

#: The directory that holds the ``gateway`` package: the workers import the same code.
_PROJECT_ROOT = str(Path(__file__).resolve().parents[2])


class ShardError(RuntimeError):
    """The registrar workers could not be started."""


@dataclass
class WorkerState:
    index: int
    process: subprocess.Popen
    channel: Channel
    ready: asyncio.Future
    alive: bool = True
    pid: int | None = None
    forwarded: int = 0
    dropped: int = 0
    stats: dict[str, Any] = field(default_factory=dict)
    #: Datagrams of this event-loop turn, sent as one frame when the turn's callbacks are done.
    pending: list[bytes] = field(default_factory=list)
    pending_bytes: int = 0
    last_heard: float = 0.0  # loop time of the worker's last frame


class RegistrarShards:
    def __init__(self, gw: Any, processes: int, *, start_timeout: float = 60.0):
        if processes < 2:
            raise ValueError(f"registrar workers need at least 2 registrar processes, not {processes}")
        self.gw = gw
        self.processes = processes
        self.start_timeout = start_timeout
        self.workers: list[WorkerState] = []
        self._sockets: set[tuple[str, int]] = set()  # local addresses of the UDP listeners the workers share
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        self._watch: asyncio.TimerHandle | None = None
        directory = gw.directory
        signin = getattr(getattr(gw, "provisioning", None), "signin", None)

        def resolve(user: str) -> str | None:
            found = directory.user(user) or directory.by_number(user)
            return found.username if found is not None else None

        def keep(username: str) -> bool:
            return directory.user(username) is None or (signin is not None and
                                                       signin.account_for(username) is not None)

        self.dispatch = RegisterDispatch(processes, resolve, keep)

    # --- lifecycle -------------------------------------------------------------------------------------------
    async def start(self) -> None:
        self._loop = loop = asyncio.get_running_loop()
        gw = self.gw
        udp = []
        for (host, port), proto in gw.core.transports._udp.items():
            sock = proto.transport.get_extra_info("socket") if proto.transport is not None else None
            if sock is None:
                raise ShardError(f"the UDP listener {host}:{port} has no socket to share")
            self._sockets.add(proto.local)
            udp.append([sock.fileno(), proto.local[0], proto.local[1]])
        if not udp:
            raise ShardError("registrar workers share the gateway's UDP listeners, and it has none")
        cfg = gw.config
        base = {
            "db": gw.store.path, "domain": cfg.domain, "digest_algorithms": list(cfg.digest_algorithms),
            "registrar": asdict(gw.registrar.config),
            "agent": gw.core.agent, "sip_t1": cfg.sip_t1, "max_message_size": cfg.max_message_size,
            "trace": gw.trace.enabled, "clock_offset": gw.clock.offset, "udp": udp,
            "log_level": logging.getLevelName(logging.getLogger().getEffectiveLevel()),
        }
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_PROJECT_ROOT, env.get("PYTHONPATH")) if p)
        # Changes made while the workers start (the control API already answers) reach them too: the store has
        # them, and so does the channel, read after the store (applying one twice changes nothing).
        self._install_listeners()
        try:
            for index in range(1, self.processes):
                ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
                spec = {**base, "index": index, "channel": theirs.fileno()}
                try:
                    process = subprocess.Popen(
                        [sys.executable, "-m", "gateway.shards.worker", "--spec", json.dumps(spec)],
                        pass_fds=[theirs.fileno(), *(u[0] for u in udp)], env=env, stdin=subprocess.DEVNULL,
                        cwd=_PROJECT_ROOT)
                finally:
                    theirs.close()
                state = WorkerState(index, process, None, loop.create_future())  # type: ignore[arg-type]
                state.channel = Channel(ours, loop, partial(self._on_frame, state), partial(self._on_closed, state))
                self.workers.append(state)
            pending = [w.ready for w in self.workers]
            _, not_done = await asyncio.wait(pending, timeout=self.start_timeout)
            if not_done:
                late = [w.index for w in self.workers if not w.ready.done()]
                raise ShardError(f"registrar workers {late} did not start within {self.start_timeout:g} s")
            failed = [w.index for w in self.workers if w.ready.exception() is not None]
            if failed:
                raise ShardError(f"registrar workers {failed} exited while starting (their log is above)")
        except BaseException:
            await self.stop()
            raise
        self.gw.core.transports.divert = self.divert
        self._watch = loop.call_later(1.0, self._watch_workers)
        log.info("event=registrar_workers_ready processes=%d pids=%s", self.processes,
                 ",".join(str(w.pid) for w in self.workers))

    def _install_listeners(self) -> None:
        gw = self.gw
        gw.registrar.mirror = self
        gw.devices.listeners.append(self._device_changed)
        gw.directory.listeners.append(self._directory_changed)
        gw.clock.listeners.append(self._clock_changed)

    def _uninstall(self) -> None:
        gw = self.gw
        if gw.core.transports.divert == self.divert:
            gw.core.transports.divert = None
        if gw.registrar.mirror is self:
            gw.registrar.mirror = None
        for hooks, hook in ((gw.devices.listeners, self._device_changed),
                            (gw.directory.listeners, self._directory_changed),
                            (gw.clock.listeners, self._clock_changed)):
            if hook in hooks:
                hooks.remove(hook)

    async def stop(self, timeout: float = 10.0) -> None:
        """Ask every worker to stop, wait for it (SIGKILL after ``timeout``); their shards come back here."""
        self._stopping = True
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        self._uninstall()
        for w in self.workers:
            w.channel.send(frames.messages_frame([{"k": "stop"}]))
        deadline = time.monotonic() + timeout
        for w in self.workers:
            while w.process.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            if w.process.poll() is None:
                log.warning("event=registrar_worker_killed index=%d pid=%d", w.index, w.process.pid)
                w.process.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    w.process.wait(5)
            w.channel.close()
            w.alive = False

    def _watch_workers(self) -> None:
        """Stop a worker that has said nothing for SILENCE_S: its channel closes and its shard comes back here."""
        now = self._loop.time()  # type: ignore[union-attr]
        for w in self.workers:
            if w.alive and now - w.last_heard > SILENCE_S:
                log.error("event=registrar_worker_silent index=%d pid=%s silent_s=%.1f action=kill", w.index, w.pid,
                          now - w.last_heard)
                with contextlib.suppress(OSError):
                    w.process.kill()
                w.channel.close()
        if not self._stopping:
            self._watch = self._loop.call_later(1.0, self._watch_workers)  # type: ignore[union-attr]

    # --- to the workers --------------------------------------------------------------------------------------
    def divert(self, data: bytes, flow: Any, local: tuple[str, int]) -> bool:
        """The transports' hook: True when a worker takes this datagram."""
        shard = self.dispatch.shard(data)
        if shard == 0:
            return False
        w = self.workers[shard - 1]
        if not w.alive or local not in self._sockets:
            return False  # its shard is this process's again (see _on_closed)
        if not w.pending:
            self._loop.call_soon(self._send_pending, w)  # type: ignore[union-attr]
        entry = frames.datagram_entry(flow.host, flow.port, data)
        w.pending.append(entry)
        w.pending_bytes += len(entry)
        if w.pending_bytes >= MAX_BATCH_BYTES:
            self._send_pending(w)
        return True

    def _send_pending(self, w: WorkerState) -> None:
        entries = w.pending
        if not entries:
            return
        w.pending, w.pending_bytes = [], 0
        if w.channel.send(frames.datagram_frame(entries), droppable=True):
            w.forwarded += len(entries)
        else:
            w.dropped += len(entries)

    def _broadcast(self, message: dict[str, Any], *, but: WorkerState | None = None) -> None:
        frame = frames.messages_frame([message])
        for w in self.workers:
            if w.alive and w is not but:
                w.channel.send(frame)

    def _device_changed(self, key: str) -> None:
        self._broadcast({"k": "device", "key": key})

    def _directory_changed(self) -> None:
        self._broadcast({"k": "directory"})

    def _clock_changed(self, offset: float) -> None:
        self._broadcast({"k": "clock", "offset": offset})

    # the registrar's mirror
    def dropped_device(self, key: str) -> None:
        self._broadcast({"k": "drop", "key": key})

    def removed_user(self, username: str) -> None:
        self._broadcast({"k": "remove_user", "u": username})

    def cleared(self) -> None:
        self._broadcast({"k": "clear"})

    def auth_failed(self, host: str, now: float) -> None:
        self._broadcast({"k": "fail", "h": host, "t": now})

    # --- from the workers ------------------------------------------------------------------------------------
    def _on_frame(self, w: WorkerState, frame: bytes) -> None:
        gw = self.gw
        w.last_heard = self._loop.time()  # type: ignore[union-attr]
        for m in frames.read_messages(frame):
            kind = m["k"]
            if kind == "bind":
                gw.registrar.adopt(str(m["u"]), [frames.binding_from_wire(b) for b in m["b"]], gw.core.now())
            elif kind == "touch":
                gw.devices.touched(str(m["key"]), float(m["t"]))
            elif kind == "device":
                gw.devices.adopt(frames.device_from_wire(m["d"]))
            elif kind == "fail":
                gw.registrar.note_failure(str(m["h"]), float(m["t"]))
                self._broadcast(m, but=w)
            elif kind == "trace":
                gw.trace.record(float(m["t"]), str(m["dir"]), str(m["tr"]), tuple(m["src"]), tuple(m["dst"]),
                                str(m["data"]).encode("latin-1"))
            elif kind == "log":
                text = str(m["msg"])
                line = (f"{text} worker={w.index}" if text.startswith("event=")
                        else f"event=worker_message worker={w.index} text={json.dumps(text)}")
                logging.getLogger(str(m["name"])).log(int(m["level"]), "%s", line)
            elif kind == "stats":
                w.stats = {"registrar": m.get("registrar", {}), "core": m.get("core", {})}
            elif kind == "ready":
                w.pid = int(m["pid"])
                if not w.ready.done():
                    w.ready.set_result(True)
            else:
                log.warning("event=registrar_worker_unknown_message index=%d kind=%s", w.index, kind)

    def _on_closed(self, w: WorkerState) -> None:
        w.alive = False
        if not w.ready.done():
            w.ready.set_exception(ShardError(f"registrar worker {w.index} closed its channel while starting"))
            w.ready.exception()  # retrieved: nobody else may wait for it
        if not self._stopping:
            log.error("event=registrar_worker_lost index=%d pid=%s exit=%s shard=taken_back", w.index, w.pid,
                      w.process.poll())

    # --- what the control API shows --------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        total = {name: 0 for name in asdict(RegistrarStats())}
        for w in self.workers:
            for name, value in w.stats.get("registrar", {}).items():
                if name in total:
                    total[name] += int(value)
        return {
            "processes": self.processes,
            "workers": [{"index": w.index, "pid": w.pid, "alive": w.alive, "forwarded": w.forwarded,
                         "dropped": w.dropped, "registrar": w.stats.get("registrar", {}),
                         "core": w.stats.get("core", {})} for w in self.workers],
            "registrar": total,
        }
