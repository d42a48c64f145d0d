"""What every vendor-API simulator shares: an aiohttp server on loopback in a thread of its own,
started and stopped cleanly, a request log kept as evidence, and calls into the device backend made off
the event loop (a sipua backend blocks on a pipe RPC for up to seconds).

Paths under ``/_sim/`` are not part of any vendor's API: they stand for what happens *at* the device
(a person pressing a key, an analog line simulator going off-hook, a provisioning server pushing a
file) and are what a lab's physical actuators would do. Drivers must never use them.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import secrets
import ssl
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from harness.simulators.backend import BackendError, BackendEvent, DeviceBackend

log = logging.getLogger("sipgw.simulators")

LOG_BODY_MAX = 4096
REQUEST_LOG_MAX = 5000


@dataclass
class RequestRecord:
    """One request the simulator served: what came in and what went out."""

    t: float
    peer: str
    method: str
    path: str
    query: str
    request_body: str
    status: int
    response_body: str
    detail: str = ""  # why the simulator answered as it did (never sent as part of the vendor API body)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class OutboundRecord:
    """A request the simulated device made itself (Action URL callbacks, WebSocket messages)."""

    t: float
    kind: str
    target: str
    payload: str
    status: int | None = None
    error: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class SimulatorServer:
    """Base class: subclasses add ``routes()`` and react to backend events in ``on_backend_event``."""

    vendor = ""
    #: response header that carries the simulator's explanation of an error (not a vendor header)
    DETAIL_HEADER = "X-Sipgw-Sim-Detail"

    def __init__(self, backend: DeviceBackend, *, host: str = "127.0.0.1", port: int = 0,
                 clock: Callable[[], float] = time.time, ssl_context: ssl.SSLContext | None = None) -> None:
        """``ssl_context``: serve HTTPS (as most devices do by default) instead of plain HTTP."""
        if not (host.startswith("127.") or host in ("::1", "localhost")):
            raise ValueError(f"{type(self).__name__}: host {host!r} is not a loopback address (127.0.0.0/8, ::1)")
        self.backend = backend
        self.host = host
        self.port = port
        self.clock = clock
        self.ssl_context = ssl_context
        self.requests: list[RequestRecord] = []
        self.outbound: list[OutboundRecord] = []
        self._log_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._booted_at = time.time()
        self._listener = self._backend_event_threadsafe
        self._tasks: set[asyncio.Task] = set()

    # ------------------------------------------------------------------ to override

    def routes(self) -> list[web.RouteDef]:
        return []

    def on_backend_event(self, event: BackendEvent) -> Awaitable[None] | None:
        """Called on the simulator's loop for every backend event."""
        return None

    async def on_started(self) -> None:
        """Called on the simulator's loop once the server listens."""

    async def on_stopping(self) -> None:
        """Called on the simulator's loop before the server closes."""

    # ------------------------------------------------------------------ life cycle

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.ssl_context else 'http'}://{host}:{self.port}"

    def start(self, timeout: float = 10.0) -> str:
        """Listen on loopback (an ephemeral port unless one was given); returns the base URL."""
        if self._thread is not None:
            raise RuntimeError(f"{type(self).__name__} is already running at {self.url}")
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._start())
            except BaseException as exc:
                errors.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(self._stop())
                loop.close()

        self._thread = threading.Thread(target=run, name=f"sim-{self.vendor or type(self).__name__}", daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise TimeoutError(f"{type(self).__name__} did not start within {timeout} s")
        if errors:
            self._thread = None
            raise errors[0]
        self.backend.add_listener(self._listener)
        return self.url

    async def _start(self) -> None:
        app = web.Application(middlewares=[self._log_middleware])
        app.add_routes(self.routes())
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=self.ssl_context)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self._booted_at = time.time()
        await self.on_started()

    async def _stop(self) -> None:
        with contextlib.suppress(Exception):
            await self.on_stopping()
        if self._runner is not None:
            await self._runner.cleanup()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(BaseException):
                await t

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving; the backend is left running (its owner closes it)."""
        self.backend.remove_listener(self._listener)
        if self._loop is None or self._thread is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)
        self._thread = None
        self._loop = None

    def __enter__(self) -> SimulatorServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ helpers for subclasses

    def uptime_s(self) -> float:
        return max(0.0, time.time() - self._booted_at)

    def reset_uptime(self) -> None:
        self._booted_at = time.time()

    async def run_backend(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run a (blocking) backend method in a worker thread; ``BackendError`` passes through."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, lambda: fn(*args))

    def call_in_loop(self, fn: Callable[[], Any], timeout: float = 10.0) -> Any:
        """Run ``fn`` on the simulator's loop from another thread and return its result."""
        if self._loop is None:
            return fn()

        async def wrapper() -> Any:
            result = fn()
            if asyncio.iscoroutine(result):
                result = await result
            return result

        return asyncio.run_coroutine_threadsafe(wrapper(), self._loop).result(timeout)

    def _backend_event_threadsafe(self, event: BackendEvent) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return

        def dispatch() -> None:
            result = self.on_backend_event(event)
            if asyncio.iscoroutine(result):
                self.spawn(result)

        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(dispatch)

    def spawn(self, coro: Awaitable[Any]) -> asyncio.Task:
        """Run a coroutine on the simulator's loop, keeping a reference until it ends."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("%s: background task failed: %r", type(self).__name__, task.exception())

    def record_outbound(self, rec: OutboundRecord) -> None:
        with self._log_lock:
            self.outbound.append(rec)
            del self.outbound[:-REQUEST_LOG_MAX]

    def request_log(self) -> list[dict[str, Any]]:
        with self._log_lock:
            return [r.as_dict() for r in self.requests]

    def dump_log(self, path: str) -> None:
        """Write the request log as JSON lines (evidence for a test report)."""
        with self._log_lock, open(path, "w", encoding="utf-8") as fh:
            for r in self.requests:
                fh.write(json.dumps({"dir": "in", **r.as_dict()}) + "\n")
            for o in self.outbound:
                fh.write(json.dumps({"dir": "out", **o.__dict__}) + "\n")

    @web.middleware
    async def _log_middleware(self, request: web.Request, handler: Callable) -> web.StreamResponse:
        body = ""
        if request.can_read_body:
            raw = await request.read()
            body = raw[:LOG_BODY_MAX].decode("utf-8", errors="replace")
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            response = exc
        except BackendError as exc:  # a handler forgot to map it: still a clear answer
            response = web.json_response({"error": str(exc)}, status=500, headers={self.DETAIL_HEADER: str(exc)})
        text = ""
        if isinstance(response, web.Response) and response.body is not None and not isinstance(
                response.body, web.StreamResponse):
            with contextlib.suppress(Exception):
                text = bytes(response.body)[:LOG_BODY_MAX].decode("utf-8", errors="replace")
        peer = request.remote or ""
        rec = RequestRecord(t=time.time(), peer=peer, method=request.method, path=request.path,
                            query=request.query_string, request_body=body, status=response.status,
                            response_body=text, detail=response.headers.get(self.DETAIL_HEADER, ""))
        with self._log_lock:
            self.requests.append(rec)
            del self.requests[:-REQUEST_LOG_MAX]
        if isinstance(response, web.HTTPException):
            raise response
        return response


# ---------------------------------------------------------------------- HTTP authentication helpers


def basic_credentials(request: web.Request) -> tuple[str, str] | None:
    header = request.headers.get("Authorization", "")
    if not header.lower().startswith("basic "):
        return None
    try:
        user, _, password = base64.b64decode(header[6:].strip()).decode("utf-8").partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return user, password


class DigestChallenger:
    """HTTP Digest (RFC 7616, MD5, qop=auth) for the few device pages that use it."""

    def __init__(self, realm: str) -> None:
        self.realm = realm
        self._secret = secrets.token_hex(16)

    def _nonce(self) -> str:
        stamp = str(int(time.time()))
        return f"{stamp}.{hashlib.md5(f'{stamp}:{self._secret}'.encode()).hexdigest()}"

    def _nonce_ok(self, nonce: str) -> bool:
        stamp, _, mac = nonce.partition(".")
        if hashlib.md5(f"{stamp}:{self._secret}".encode()).hexdigest() != mac:
            return False
        return stamp.isdigit() and time.time() - int(stamp) < 300

    def challenge(self, detail: str) -> web.Response:
        header = f'Digest realm="{self.realm}", qop="auth", nonce="{self._nonce()}", algorithm=MD5'
        return web.Response(status=401, text="401 Unauthorized",
                            headers={"WWW-Authenticate": header, SimulatorServer.DETAIL_HEADER: detail})

    def check(self, request: web.Request, users: dict[str, str]) -> str | None:
        """The authenticated user name, or None."""
        header = request.headers.get("Authorization", "")
        if not header.lower().startswith("digest "):
            return None
        fields: dict[str, str] = {}
        for part in _split_auth_params(header[7:]):
            k, _, v = part.partition("=")
            fields[k.strip().lower()] = v.strip().strip('"')
        user = fields.get("username", "")
        if user not in users or not self._nonce_ok(fields.get("nonce", "")) or fields.get("realm") != self.realm:
            return None
        ha1 = hashlib.md5(f"{user}:{self.realm}:{users[user]}".encode()).hexdigest()
        ha2 = hashlib.md5(f"{request.method}:{fields.get('uri', '')}".encode()).hexdigest()
        if fields.get("qop"):
            expected = hashlib.md5(f"{ha1}:{fields['nonce']}:{fields.get('nc', '')}:{fields.get('cnonce', '')}:"
                                   f"{fields['qop']}:{ha2}".encode()).hexdigest()
        else:
            expected = hashlib.md5(f"{ha1}:{fields['nonce']}:{ha2}".encode()).hexdigest()
        return user if secrets.compare_digest(expected, fields.get("response", "")) else None


def _split_auth_params(text: str) -> list[str]:
    parts, buf, quoted = [], [], False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            parts.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
    if buf:
        parts.append("".join(buf))
    return parts
