"""Parent side of a worker: ``UAWorker`` spawns the process and talks to it.

    with UAWorker.spawn(WorkerConfig(name="alice", user_agent="Yealink SIP-T54W 96.86.0.100",
                                     log_path="/tmp/alice.log")) as alice:
        alice.add_account("a", "sip:alice@127.0.0.1")
        call = alice.make_call("a", "sip:bob@127.0.0.1:5062")
        alice.wait_event("call_state", call=call, state="CONFIRMED", timeout=5)

The parent never imports pjsua2.  A reader thread receives responses, events and heartbeats; a worker
that exits is noticed through its process sentinel at once, one that stops sending heartbeats after
``hang_timeout`` seconds.  From then on every call on the ``UAWorker`` raises ``WorkerDied`` or
``WorkerHung``, carrying the tail of the worker's log.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection, wait
from typing import Any

from sipua import protocol as p
from sipua.errors import (
    CommandError,
    EventTimeout,
    InvalidArgument,
    ProtocolError,
    RequestTimeout,
    SipUaError,
    WorkerDied,
    WorkerHung,
    WorkerStartupError,
)
from sipua.ports import PortAllocator, PortLease, default_allocator
from sipua.protocol import AnswerMode, DtmfMethod, Event, TransportKind

DEFAULT_START_METHOD = os.environ.get("SIPUA_START_METHOD", "forkserver")
DEFAULT_HANG_TIMEOUT_S = 6.0  # a loaded 2-core CI machine can starve a worker for seconds; death is seen at once
DEFAULT_REQUEST_TIMEOUT_S = 10.0
LOG_TAIL_LINES = 40

_forkserver_configured = False
_forkserver_lock = threading.Lock()


def _context(method: str) -> multiprocessing.context.BaseContext:
    """A start method that never forks a process holding pjsua2 state: ``forkserver`` (default; the
    server preloads pjsua2 once so a worker starts in tens of milliseconds) or ``spawn``."""
    global _forkserver_configured
    if method not in ("forkserver", "spawn"):
        raise InvalidArgument(f"start_method {method!r}: use 'forkserver' or 'spawn' (a forked parent may hold "
                              "threads or pjsua2 state)")
    ctx = multiprocessing.get_context(method)
    if method == "forkserver":
        with _forkserver_lock:
            if not _forkserver_configured:
                # Importing the binding loads its shared library only; no pjlib state exists until
                # an Endpoint is created in the worker, so forking the preloaded server is safe.
                ctx.set_forkserver_preload(["sipua.worker"])
                _forkserver_configured = True
    return ctx


def read_log_tail(path: str, lines: int = LOG_TAIL_LINES) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            data = fh.read().decode("utf-8", errors="replace")
    except OSError as exc:
        return f"(cannot read log: {exc})"
    return "\n".join(data.splitlines()[-lines:])


class UAWorker:
    """Handle on one worker process (one pjsua2 Endpoint, at most 4 calls)."""

    def __init__(self, *, config: p.WorkerConfig, process: multiprocessing.process.BaseProcess,
                 conn: Connection, info: dict[str, Any], lease: PortLease | None,
                 hang_timeout: float, spawn_s: float) -> None:
        self.config = config
        self.info = info
        self.spawn_s = spawn_s
        self._process = process
        self._conn = conn
        self._lease = lease
        self._hang_timeout = hang_timeout
        self._cond = threading.Condition()
        self._send_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._responses: dict[int, dict[str, Any]] = {}
        self._events: list[Event] = []
        self._listeners: list[Callable[[Event], None]] = []
        self._failure: SipUaError | None = None
        self._last_rx = time.monotonic()
        self._live_calls = 0
        self._closing = False
        self._closed = False
        self._reader = threading.Thread(target=self._read_loop, name=f"sipua-reader-{config.name}", daemon=True)
        self._reader.start()

    # ------------------------------------------------------------------ spawning

    @classmethod
    def spawn(
        cls,
        config: p.WorkerConfig,
        *,
        ready_timeout: float = 15.0,
        hang_timeout: float = DEFAULT_HANG_TIMEOUT_S,
        start_method: str | None = None,
        ports: PortLease | None = None,
        allocator: PortAllocator | None = None,
    ) -> UAWorker:
        """Start a worker and return once its SIP stack is up.

        Without ``config.rtp_port`` the worker gets an RTP range from ``ports`` or from a fresh lease
        of ``allocator`` (the process-wide one by default); the lease is released on ``close``.
        """
        if not isinstance(config, p.WorkerConfig):
            raise InvalidArgument(f"UAWorker.spawn: expected a WorkerConfig, got {type(config).__name__}")
        if hang_timeout < 4 * config.heartbeat_interval_s:
            raise InvalidArgument(f"UAWorker.spawn: hang_timeout {hang_timeout} s is shorter than four "
                                  f"heartbeats ({config.heartbeat_interval_s} s each)")
        ctx = _context(start_method or DEFAULT_START_METHOD)
        config = dataclasses.replace(config, log_path=os.path.abspath(config.log_path))
        lease = None
        if config.rtp_port is None:
            lease = ports or (allocator or default_allocator()).lease()
            config = dataclasses.replace(config, rtp_port=lease.rtp_base, rtp_port_count=lease.rtp_count)
        t0 = time.monotonic()
        parent_conn, child_conn = ctx.Pipe(duplex=True)
        from sipua.worker import worker_main

        process = ctx.Process(target=worker_main, args=(child_conn, p.to_wire(config)),
                              name=f"sipua-{config.name}", daemon=True)
        try:
            process.start()
        except Exception:
            if lease is not None and ports is None:
                lease.release()
            raise
        finally:
            child_conn.close()
        try:
            info = cls._await_ready(config, process, parent_conn, t0 + ready_timeout)
        except BaseException:
            _stop_process(process, 1.0)
            parent_conn.close()
            if lease is not None and ports is None:
                lease.release()
            raise
        return cls(config=config, process=process, conn=parent_conn, info=info, lease=lease,
                   hang_timeout=hang_timeout, spawn_s=time.monotonic() - t0)

    @staticmethod
    def _await_ready(config: p.WorkerConfig, process: multiprocessing.process.BaseProcess,
                     conn: Connection, deadline: float) -> dict[str, Any]:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WorkerStartupError(config.name, "no 'ready' before the deadline", "", config.log_path,
                                         read_log_tail(config.log_path))
            ready = wait([conn, process.sentinel], timeout=remaining)
            if conn in ready:
                try:
                    frame = p.decode_frame(conn.recv_bytes())
                except EOFError:
                    process.join(1.0)
                    raise WorkerDied(config.name, process.exitcode, config.log_path,
                                     read_log_tail(config.log_path), during="start-up") from None
                if frame["kind"] == "ready":
                    return dict(frame["info"])
                if frame["kind"] == "fatal":
                    err = frame.get("error") or {}
                    process.join(2.0)
                    raise WorkerStartupError(config.name, str(err.get("message", "?")), str(err.get("pj_info", "")),
                                             config.log_path, read_log_tail(config.log_path))
                continue
            if process.sentinel in ready:
                process.join(1.0)
                raise WorkerDied(config.name, process.exitcode, config.log_path, read_log_tail(config.log_path),
                                 during="start-up")

    # ------------------------------------------------------------------ properties

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def pid(self) -> int | None:
        return self._process.pid

    @property
    def log_path(self) -> str:
        return self.config.log_path

    @property
    def alive(self) -> bool:
        return self._failure is None and not self._closed and self._process.is_alive()

    @property
    def live_calls(self) -> int:
        """Calls the worker reported in its last heartbeat (or response)."""
        return self._live_calls

    @property
    def transports(self) -> list[dict[str, Any]]:
        return list(self.info["transports"])

    def sip_port(self, kind: TransportKind | str = TransportKind.UDP) -> int:
        return self._transport(kind)["port"]

    def uri(self, user: str, kind: TransportKind | str = TransportKind.UDP) -> str:
        """A SIP URI reaching ``user`` on this worker directly (no registrar)."""
        t = self._transport(kind)
        host = f"[{t['host']}]" if ":" in t["host"] else t["host"]
        suffix = "" if t["kind"] == "udp" else f";transport={t['kind']}"
        return f"sip:{user}@{host}:{t['port']}{suffix}"

    def _transport(self, kind: TransportKind | str) -> dict[str, Any]:
        kind = TransportKind(kind)
        for t in self.info["transports"]:
            if t["kind"] == kind.value:
                return t
        raise InvalidArgument(f"{self.name}: no {kind.value} transport (open: "
                              f"{[t['kind'] for t in self.info['transports']]})")

    # ------------------------------------------------------------------ reader thread

    def _read_loop(self) -> None:
        sentinel = self._process.sentinel
        while True:
            try:
                ready = wait([self._conn, sentinel], timeout=0.1)
            except (OSError, ValueError):
                break
            if self._conn in ready:
                try:
                    raw = self._conn.recv_bytes()
                except (EOFError, OSError):
                    self._on_exit()
                    return
                self._handle_frame(raw)
                continue
            if sentinel in ready:
                self._drain()
                self._on_exit()
                return
            with self._cond:
                if self._closed:
                    return
                silent = time.monotonic() - self._last_rx
                if not self._closing and self._failure is None and silent > self._hang_timeout:
                    self._failure = WorkerHung(self.name, silent, self.log_path, read_log_tail(self.log_path))
                    self._cond.notify_all()

    def _drain(self) -> None:
        try:
            while self._conn.poll():
                self._handle_frame(self._conn.recv_bytes())
        except (EOFError, OSError):
            pass

    def _on_exit(self) -> None:
        self._process.join(2.0)
        with self._cond:
            if not self._closing and self._failure is None:
                self._failure = WorkerDied(self.name, self._process.exitcode, self.log_path,
                                           read_log_tail(self.log_path))
            self._cond.notify_all()

    def _handle_frame(self, raw: bytes) -> None:
        try:
            frame = p.decode_frame(raw)
        except ProtocolError as exc:
            with self._cond:
                self._failure = self._failure or exc
                self._cond.notify_all()
            return
        kind = frame["kind"]
        event: Event | None = None
        with self._cond:
            self._last_rx = time.monotonic()
            if kind == "response":
                self._responses[int(frame["id"])] = frame
                result = frame.get("result") or {}
                if isinstance(result, dict) and isinstance(result.get("calls"), int):
                    self._live_calls = result["calls"]
            elif kind == "event":
                event = p.event_from_wire(frame["event"], self.name)
                self._events.append(event)
            elif kind == "heartbeat":
                self._live_calls = int(frame.get("calls", 0))
            self._cond.notify_all()
            listeners = list(self._listeners) if event is not None else []
        for listener in listeners:
            with contextlib.suppress(Exception):
                listener(event)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ requests

    def _check(self) -> None:
        if self._failure is not None:
            raise self._failure
        if self._closed or self._closing:
            raise SipUaError(f"{self.name}: worker is closed")

    def request(self, command: p.Command, timeout: float = DEFAULT_REQUEST_TIMEOUT_S) -> dict[str, Any]:
        """Send a command and wait for its result; raises ``CommandError`` if the worker refused it."""
        self._require_command(command, "request()")
        self._check()
        return self._request(command, timeout)

    def request_all(self, commands: list[p.Command],
                    timeout: float = DEFAULT_REQUEST_TIMEOUT_S) -> list[dict[str, Any]]:
        """Send several commands back to back, then wait for each result in turn.

        The worker reads them in one turn of its loop and runs them in order without handling SIP in between:
        e.g. a resume that reaches pjsua while the hold's re-INVITE is still unanswered. The first refusal
        raises its ``CommandError`` (the later commands have still been sent)."""
        for command in commands:
            self._require_command(command, "request_all()")
        self._check()
        ids = self._send(commands)
        deadline = time.monotonic() + timeout
        return [self._await(request_id, command, deadline) for request_id, command in zip(ids, commands, strict=True)]

    def _require_command(self, command: object, caller: str) -> None:
        if not isinstance(command, p.Command) or not command.NAME:
            raise InvalidArgument(f"{self.name}: {caller} needs a sipua.protocol command, got {command!r}")

    def _send(self, commands: list[p.Command]) -> list[int]:
        try:
            with self._send_lock:
                ids = []
                for command in commands:
                    ids.append(next(self._ids))
                    self._conn.send_bytes(p.encode_request(ids[-1], command))
                return ids
        except (OSError, ValueError):
            self._wait_for_failure(2.0)
            raise

    def _request(self, command: p.Command, timeout: float) -> dict[str, Any]:
        (request_id,) = self._send([command])
        return self._await(request_id, command, time.monotonic() + timeout)

    def _await(self, request_id: int, command: p.Command, deadline: float) -> dict[str, Any]:
        timeout = max(0.0, deadline - time.monotonic())
        with self._cond:
            while request_id not in self._responses:
                if self._failure is not None:
                    raise self._failure
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise RequestTimeout(f"{self.name}: no answer to {command.NAME} within {timeout:.1f} s")
                self._cond.wait(remaining)
            frame = self._responses.pop(request_id)
        if frame.get("ok"):
            return dict(frame.get("result") or {})
        err = frame.get("error") or {}
        raise CommandError(self.name, command.NAME, str(err.get("code", "?")), str(err.get("message", "")),
                           str(err.get("pj_info", "") or ""), err.get("pj_status"))

    def _wait_for_failure(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._failure is None and time.monotonic() < deadline:
                self._cond.wait(deadline - time.monotonic())
            if self._failure is not None:
                raise self._failure

    # ------------------------------------------------------------------ events

    def mark(self) -> int:
        """Sequence number of the latest event; pass it as ``since`` to wait only for newer ones."""
        with self._cond:
            return self._events[-1].seq if self._events else 0

    def events(self, type: str | None = None, *, since: int = 0, **fields: Any) -> list[Event]:
        with self._cond:
            return [e for e in self._events if e.seq > since and (type is None or e.type == type)
                    and e.matches(**fields)]

    def add_listener(self, listener: Callable[[Event], None]) -> None:
        """Call ``listener(event)`` on the reader thread for every later event (it must not block)."""
        with self._cond:
            self._listeners.append(listener)

    def wait_event(
        self,
        predicate: Callable[[Event], bool] | str | None = None,
        timeout: float = 5.0,
        *,
        since: int = 0,
        **fields: Any,
    ) -> Event:
        """The first event newer than ``since`` that matches: ``predicate`` is an event type name or a
        function; ``fields`` must equal the event's data (``call=3, state="CONFIRMED"``)."""
        if isinstance(predicate, str):
            wanted_type = predicate

            def test(e: Event) -> bool:
                return e.type == wanted_type and e.matches(**fields)
        elif predicate is None:
            def test(e: Event) -> bool:
                return e.matches(**fields)
        else:
            func = predicate

            def test(e: Event) -> bool:
                return func(e) and e.matches(**fields)

        deadline = time.monotonic() + timeout
        pos = 0
        with self._cond:
            while True:
                events = self._events
                while pos < len(events):
                    e = events[pos]
                    pos += 1
                    if e.seq > since and test(e):
                        return e
                if self._failure is not None:
                    raise self._failure
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    recent = "\n".join(f"  {e}" for e in events[-12:]) or "  (none)"
                    what = predicate if isinstance(predicate, str) else getattr(predicate, "__name__", "event")
                    raise EventTimeout(f"{self.name}: no {what} {fields or ''} after #{since} within "
                                       f"{timeout} s; latest events:\n{recent}")
                self._cond.wait(remaining)

    def dump_events(self, path: str) -> None:
        """Write the event log as JSON lines (evidence for a test report)."""
        with self._cond:
            events = list(self._events)
        with open(path, "w", encoding="utf-8") as fh:
            for e in events:
                fh.write(json.dumps({"worker": e.worker, "seq": e.seq, "ts": e.ts, "type": e.type,
                                     "data": e.data}) + "\n")

    # ------------------------------------------------------------------ life cycle

    def ping(self, timeout: float = 2.0) -> dict[str, Any]:
        return self.request(p.Ping(), timeout)

    def close(self, timeout: float = 6.0) -> dict[str, Any] | None:
        """Shut the worker down cleanly (hang up, unregister, libDestroy); kill it past ``timeout``."""
        if self._closed:
            return None
        result = None
        with self._cond:
            failed = self._failure is not None
            self._closing = True
        if not failed and self._process.is_alive():
            with contextlib.suppress(SipUaError, OSError, ValueError):
                result = self._request(p.Shutdown(timeout_s=max(0.5, timeout / 2)), timeout)
        _stop_process(self._process, max(0.5, timeout / 2))
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._reader.join(2.0)
        with contextlib.suppress(OSError):
            self._conn.close()
        if self._lease is not None:
            self._lease.release()
        return result

    def __enter__(self) -> UAWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("failed" if self._failure else "alive")
        return f"UAWorker({self.name!r}, pid={self.pid}, {state}, calls={self._live_calls})"

    # ------------------------------------------------------------------ command helpers

    def add_account(self, id: str, uri: str, *, registrar: str | None = None,
                    username: str | None = None, password: str | None = None, realm: str = "*",
                    register_headers: Any = (), expires_s: int = 300, proxies: tuple[str, ...] = (),
                    mwi: bool = False, transport: TransportKind | str | None = None,
                    display_name: str | None = None, dtmf_method: DtmfMethod | str | None = None) -> dict[str, Any]:
        return self.request(p.AddAccount(
            id=id, uri=uri, registrar=registrar, username=username, password=password, realm=realm,
            register_headers=register_headers, expires_s=expires_s, proxies=tuple(proxies), mwi=mwi,
            transport=TransportKind(transport) if transport is not None else None, display_name=display_name,
            dtmf_method=DtmfMethod(dtmf_method) if dtmf_method is not None else None))

    def remove_account(self, id: str) -> dict[str, Any]:
        return self.request(p.RemoveAccount(id=id))

    def reregister(self, id: str) -> dict[str, Any]:
        return self.request(p.Reregister(id=id))

    def unregister(self, id: str) -> dict[str, Any]:
        return self.request(p.Unregister(id=id))

    def make_call(self, account: str, target: str, headers: Any = ()) -> int:
        return int(self.request(p.MakeCall(account=account, target=target, headers=headers))["call"])

    def answer(self, call: int, code: int = 200, *, reason: str | None = None, headers: Any = ()) -> dict[str, Any]:
        return self.request(p.Answer(call=call, code=code, reason=reason, headers=headers))

    def reject(self, call: int, code: int = 486, *, reason: str | None = None, headers: Any = ()) -> dict[str, Any]:
        return self.request(p.Reject(call=call, code=code, reason=reason, headers=headers))

    def hangup(self, call: int, code: int | None = None, headers: Any = ()) -> dict[str, Any]:
        return self.request(p.Hangup(call=call, code=code, headers=headers))

    def hold(self, call: int, headers: Any = ()) -> dict[str, Any]:
        return self.request(p.Hold(call=call, headers=headers))

    def unhold(self, call: int, headers: Any = ()) -> dict[str, Any]:
        return self.request(p.Unhold(call=call, headers=headers))

    def reinvite(self, call: int, headers: Any = ()) -> dict[str, Any]:
        return self.request(p.Reinvite(call=call, headers=headers))

    def update(self, call: int, headers: Any = ()) -> dict[str, Any]:
        return self.request(p.Update(call=call, headers=headers))

    def mute(self, call: int) -> dict[str, Any]:
        return self.request(p.Mute(call=call))

    def unmute(self, call: int) -> dict[str, Any]:
        return self.request(p.Unmute(call=call))

    def send_dtmf(self, call: int, digits: str, method: DtmfMethod | str | None = None,
                  duration_ms: int = 160) -> dict[str, Any]:
        return self.request(p.SendDtmf(call=call, digits=digits, duration_ms=duration_ms,
                                       method=DtmfMethod(method) if method is not None else None))

    def transfer(self, call: int, target: str, *, hangup_on_success: bool = True,
                 headers: Any = ()) -> dict[str, Any]:
        return self.request(p.Transfer(call=call, target=target, hangup_on_success=hangup_on_success,
                                       headers=headers))

    def transfer_replaces(self, call: int, other_call: int, *, hangup_on_success: bool = True,
                          headers: Any = ()) -> dict[str, Any]:
        return self.request(p.TransferReplaces(call=call, other_call=other_call,
                                               hangup_on_success=hangup_on_success, headers=headers))

    def conference(self, call: int, other_call: int) -> dict[str, Any]:
        return self.request(p.Conference(call=call, other_call=other_call))

    def unconference(self, call: int, other_call: int) -> dict[str, Any]:
        return self.request(p.Unconference(call=call, other_call=other_call))

    def play_tone(self, freq_hz: float, *, call: int | None = None, level_dbfs: float = -12.0,
                  freq2_hz: float = 0.0) -> dict[str, Any]:
        return self.request(p.PlayTone(freq_hz=freq_hz, freq2_hz=freq2_hz, level_dbfs=level_dbfs, call=call))

    def stop_tone(self, call: int | None = None) -> dict[str, Any]:
        return self.request(p.StopTone(call=call))

    def play_wav(self, path: str, *, call: int | None = None, loop: bool = True) -> dict[str, Any]:
        return self.request(p.PlayWav(path=path, call=call, loop=loop))

    def stop_wav(self, call: int | None = None) -> dict[str, Any]:
        return self.request(p.StopWav(call=call))

    def record(self, call: int, path: str, duration_ms: int | None = None) -> dict[str, Any]:
        return self.request(p.Record(call=call, path=path, duration_ms=duration_ms))

    def stop_record(self, call: int, timeout: float = 5.0) -> dict[str, Any]:
        return self.request(p.StopRecord(call=call), timeout)

    def call_info(self, call: int) -> dict[str, Any]:
        return self.request(p.GetCallInfo(call=call))

    def call_stats(self, call: int) -> dict[str, Any]:
        return self.request(p.GetCallStats(call=call))

    def list_calls(self) -> list[dict[str, Any]]:
        return list(self.request(p.ListCalls())["calls"])

    def auto_answer(self, mode: AnswerMode | str, code: int = 200, *, delay_ms: int = 0, ring: bool = True,
                    headers: Any = (), account: str | None = None) -> dict[str, Any]:
        return self.request(p.SetAutoAnswer(mode=AnswerMode(mode), code=code, delay_ms=delay_ms, ring=ring,
                                            headers=headers, account=account))

    def redirect_policy(self, follow: bool) -> dict[str, Any]:
        return self.request(p.SetRedirectPolicy(follow=follow))

    def iter_events(self, since: int = 0) -> Iterator[Event]:
        yield from self.events(since=since)


def _stop_process(process: multiprocessing.process.BaseProcess, grace: float) -> None:
    """Wait for exit; SIGTERM, then SIGKILL past the grace period."""
    process.join(grace)
    if process.is_alive():
        process.terminate()
        process.join(1.0)
    if process.is_alive():
        process.kill()
        process.join(1.0)
