"""Algo RESTful API simulator (SIP speakers, paging adapters, intercoms: 8301, 8186, 8201, ...).

From Algo's RESTful API Guide (firmware 3.3+; vendor-control-apis.md §9) and the request shape published
clients use [3P-CODE]:
- Authentication, set by the device's configuration:
  - ``standard`` (default): ``Authorization: hmac admin:<nonce>:<hex>`` where ``<hex>`` is HMAC-SHA256,
    keyed with the API password (factory ``algo``), over ``METHOD:URI:CONTENT_MD5:CONTENT_TYPE:TIMESTAMP:NONCE``
    (``METHOD:URI:TIMESTAMP:NONCE`` without a body); ``TIMESTAMP`` is the Unix time of the ``Date`` header
    (RFC 7231 HTTP-date) and ``Content-MD5`` the hex MD5 of the body. The device refuses a request whose
    ``Date`` is more than 30 s from its own clock (the lab needs NTP), and a nonce it has already seen;
  - ``basic`` (``api.auth.basic = 1``; over HTTPS only: start the simulator with an ``ssl_context``);
  - ``none`` (empty password).
- ``POST /api/controls/call/start {"extension", "tone"}``, ``/call/stop``, ``/call/page {"extension"}``,
  ``GET /api/info/status`` ("SIP Registration", "Call Status"), ``/api/info/about`` (model, firmware, MAC),
  ``GET/PUT /api/settings``, ``POST /api/controls/reboot``; ``POST /api/settings/action/restore`` is a
  factory reset and turns the API off (``admin.web.api = 0``) as on the device.
- Incoming SIP calls are answered automatically (a paging speaker has no one to pick up), unless
  ``sip.autoanswer`` is ``0``.
[INFERRED, not seen on a device]: the JSON bodies of errors and of control responses, HTTP 404 while the
API is off, the "Call Status" words other than Idle/Ringing/Connected.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from email.utils import parsedate_to_datetime
from typing import Any

from aiohttp import web

from harness.simulators.backend import BackendError, BackendEvent, CallPhase, DeviceBackend, EventKind
from harness.simulators.base import SimulatorServer, basic_credentials

FACTORY_PASSWORD = "algo"
MAX_SKEW_S = 30.0
NONCE_MEMORY_S = 2 * MAX_SKEW_S


def hmac_authorization(password: str, method: str, uri: str, timestamp: int, nonce: str, *,
                       content_md5: str = "", content_type: str = "") -> str:
    """The ``Authorization`` value a client sends (also what the simulator recomputes)."""
    if content_md5:
        text = f"{method}:{uri}:{content_md5}:{content_type}:{timestamp}:{nonce}"
    else:
        text = f"{method}:{uri}:{timestamp}:{nonce}"
    digest = hmac.new(password.encode(), text.encode(), hashlib.sha256).hexdigest()
    return f"hmac admin:{nonce}:{digest}"


class AlgoRestSimulator(SimulatorServer):
    vendor = "Algo"

    def __init__(self, backend: DeviceBackend, *, password: str = FACTORY_PASSWORD, auth: str = "standard",
                 api_enabled: bool = True, **kwargs: Any) -> None:
        super().__init__(backend, **kwargs)
        if auth not in ("standard", "basic", "none"):
            raise ValueError(f"auth {auth!r}: use 'standard', 'basic' or 'none'")
        self.settings: dict[str, str] = {}
        self._defaults()
        self.settings.update({"admin.web.api": "1" if api_enabled else "0", "api.auth.basic": "1" if auth == "basic"
                              else "0", "admin.web.api.password": "" if auth == "none" else password})
        self._nonces: dict[str, float] = {}
        self.tones: list[tuple[str, str]] = []  # (extension, tone) of each call/start
        self._mode: dict[int, str] = {}
        self.boots = 1

    def _defaults(self) -> None:
        ident = self.backend.identity()
        self.settings = {"admin.web.api": "0", "api.auth.basic": "0", "admin.web.api.password": FACTORY_PASSWORD,
                         "sip.autoanswer": "1", "device.name": f"Algo {ident.model}", "audio.spk.vol": "5"}

    def provision(self, params: dict[str, str]) -> None:
        for k, v in params.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise ValueError(f"provision: {k!r}={v!r}: parameters and values must be strings")
        self.settings.update(params)

    # ------------------------------------------------------------------ authentication

    def _error(self, status: int, message: str) -> web.Response:
        return web.json_response({"error": message}, status=status, headers={self.DETAIL_HEADER: message})

    def _authenticate(self, request: web.Request, body: bytes) -> str | None:
        """None when the request may proceed, else what is wrong with its credentials."""
        password = self.settings["admin.web.api.password"]
        if not password:
            return None
        if self.settings["api.auth.basic"] == "1":
            if not request.secure:
                return "Basic authentication is accepted over HTTPS only"
            creds = basic_credentials(request)
            return None if creds == ("admin", password) else "Basic credentials for admin are missing or wrong"
        header = request.headers.get("Authorization", "")
        parts = header.split(" ", 1)
        if len(parts) != 2 or parts[0].lower() != "hmac" or parts[1].count(":") != 2:
            return "Authorization: expected 'hmac admin:<nonce>:<hmac-sha256 hex>'"
        user, nonce, digest = parts[1].split(":")
        if user != "admin":
            return f"Authorization: user {user!r} (the API user is admin)"
        date = request.headers.get("Date")
        if not date:
            return "Date header missing (it carries the timestamp the HMAC covers)"
        try:
            ts = int(parsedate_to_datetime(date).timestamp())
        except (TypeError, ValueError):
            return f"Date: {date!r} is not an HTTP-date (RFC 7231 §7.1.1.1)"
        now = self.clock()
        if abs(now - ts) > MAX_SKEW_S:
            return f"Date is {ts - now:+.0f} s from the device clock (limit ±{MAX_SKEW_S:.0f} s): check NTP"
        md5 = ""
        if body:
            md5 = request.headers.get("Content-MD5", "")
            if md5 != hashlib.md5(body).hexdigest():
                return "Content-MD5: missing or not the hex MD5 of the body"
        uri = request.path_qs
        expected = hmac_authorization(password, request.method, uri, ts, nonce, content_md5=md5,
                                      content_type=request.headers.get("Content-Type", "") if body else "")
        if not hmac.compare_digest(expected.rsplit(":", 1)[1], digest):
            return "Authorization: the HMAC does not match (password, method, URI, Date or body differ)"
        for n, seen in list(self._nonces.items()):
            if now - seen > NONCE_MEMORY_S:
                del self._nonces[n]
        if nonce in self._nonces:
            return f"Authorization: nonce {nonce!r} was already used (replay)"
        self._nonces[nonce] = now
        return None

    def _handler(self, fn):
        async def handle(request: web.Request) -> web.StreamResponse:
            if self.settings["admin.web.api"] != "1":
                return self._error(404, "the REST API is off (admin.web.api = 0)")
            body = await request.read()
            problem = self._authenticate(request, body)
            if problem is not None:
                return web.json_response({"error": "Unauthorized"}, status=401, headers={self.DETAIL_HEADER: problem})
            data: Any = None
            if body:
                try:
                    data = json.loads(body)
                except json.JSONDecodeError as exc:
                    return self._error(400, f"body: not JSON ({exc.msg} at column {exc.colno})")
            try:
                return await fn(request, data)
            except BackendError as exc:
                return self._error(409 if exc.kind != "invalid_argument" else 400, str(exc))
        return handle

    # ------------------------------------------------------------------ routes

    def routes(self) -> list[web.RouteDef]:
        h = self._handler
        return [
            web.get("/api/info/about", h(self._about)), web.get("/api/info/status", h(self._status)),
            web.post("/api/controls/call/start", h(self._call_start)),
            web.post("/api/controls/call/page", h(self._call_page)),
            web.post("/api/controls/call/stop", h(self._call_stop)),
            web.post("/api/controls/reboot", h(self._reboot)),
            web.post("/api/settings/action/restore", h(self._restore)),
            web.get("/api/settings/{param}", h(self._get_setting)), web.put("/api/settings", h(self._put_settings)),
        ]

    async def _about(self, request: web.Request, data: Any) -> web.Response:
        ident = self.backend.identity()
        return web.json_response({"Product Name": ident.model, "Product Number": f"Algo {ident.model}",
                                  "Firmware Version": ident.firmware, "MAC Address": ident.mac.lower()})

    async def _status(self, request: web.Request, data: Any) -> web.Response:
        ident = self.backend.identity()
        regs = await self.run_backend(self.backend.registrations)
        labels = {ln.index: ln.display_name or ("Page" if ln.index == 1 else f"Line {ln.index}") for ln in ident.lines}
        sip = " ".join(f"{labels.get(r.line, r.line)}, {'Successful' if r.registered else 'Failed'};" for r in regs)
        calls = await self.run_backend(self.backend.calls)
        if not calls:
            call_status = "Idle"
        elif any(c.phase is CallPhase.CONNECTED for c in calls):
            call_status = "Paging" if any(self._mode.get(c.id) == "page" for c in calls) else "Connected"
        elif any(c.phase is CallPhase.INCOMING for c in calls):
            call_status = "Ringing"
        else:
            call_status = "Calling"
        return web.json_response({
            "Device Name": self.settings["device.name"], "SIP Registration": sip, "Call Status": call_status,
            "Provisioning Status": "Idle", "MAC": ident.mac.lower(), "IPv4": self.host, "Multicast Mode": "None",
            "Relay Input Status": "Idle", "Volume": self.settings["audio.spk.vol"],
        })

    def _extension(self, data: Any) -> str:
        if not isinstance(data, dict) or not isinstance(data.get("extension"), str) or not data["extension"]:
            raise _Bad("body.extension: missing (the number to call)")
        return data["extension"]

    async def _call_start(self, request: web.Request, data: Any) -> web.Response:
        try:
            ext = self._extension(data)
        except _Bad as exc:
            return self._error(400, str(exc))
        tone = data.get("tone", "")
        if not isinstance(tone, str):
            return self._error(400, "body.tone: expected a tone file name")
        call = await self.run_backend(self.backend.dial, ext, 1)
        self._mode[call.id] = "call"
        self.tones.append((ext, tone))
        return web.json_response({"status": "ok"})

    async def _call_page(self, request: web.Request, data: Any) -> web.Response:
        try:
            ext = self._extension(data)
        except _Bad as exc:
            return self._error(400, str(exc))
        call = await self.run_backend(self.backend.dial, ext, 1)
        self._mode[call.id] = "page"
        return web.json_response({"status": "ok"})

    async def _call_stop(self, request: web.Request, data: Any) -> web.Response:
        for c in await self.run_backend(self.backend.calls):
            await self.run_backend(self.backend.hangup, c.id)
        return web.json_response({"status": "ok"})

    async def _reboot(self, request: web.Request, data: Any) -> web.Response:
        self.boots += 1
        self.reset_uptime()
        await self.run_backend(self.backend.restart)
        return web.json_response({"status": "ok"})

    async def _restore(self, request: web.Request, data: Any) -> web.Response:
        self._defaults()  # factory settings: the API is off again and the password is "algo"
        self.boots += 1
        await self.run_backend(self.backend.restart)
        return web.json_response({"status": "ok"})

    async def _get_setting(self, request: web.Request, data: Any) -> web.Response:
        name = request.match_info["param"]
        if name not in self.settings or "password" in name:
            return self._error(404, f"setting {name!r} does not exist")
        return web.json_response({name: self.settings[name]})

    async def _put_settings(self, request: web.Request, data: Any) -> web.Response:
        if not isinstance(data, dict) or not data or not all(isinstance(v, str) for v in data.values()):
            return self._error(400, "body: expected an object of setting: string value")
        self.provision(data)
        return web.json_response({"status": "ok"})

    # ------------------------------------------------------------------ backend events

    def on_backend_event(self, event: BackendEvent):
        if event.kind is EventKind.INCOMING and event.call is not None and self.settings["sip.autoanswer"] == "1":
            return self._auto_answer(event.call.id)
        if event.kind is EventKind.ENDED and event.call is not None:
            self._mode.pop(event.call.id, None)
        return None

    async def _auto_answer(self, call_id: int) -> None:
        try:
            await self.run_backend(self.backend.answer, call_id)
            self._mode[call_id] = "call"
        except BackendError:
            pass  # the caller gave up first


class _Bad(Exception):
    pass
