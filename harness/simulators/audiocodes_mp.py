"""AudioCodes MediaPack / Mediant analog gateway simulator (MP-11x, MP-1288, MP-50x): the REST status API.

An ATA has no call-control API: calls are made and answered on its FXS ports by an analog phone (in a
physical lab, an analog line simulator or a relay). The simulator offers that side only under ``/_sim/``
(``/_sim/ports/{port}/offhook``, ``/onhook``, ``/dial``: digits dialled off-hook place a call, digits keyed during a
connected call are DTMF the device relays), while the vendor API reads the state back.

REST API for Mediant devices (7.x; vendor-control-apis.md §5.2), HTTP Basic auth (``Admin``/``Admin``):
``GET /api/`` (liveness), ``GET /api/v1/status`` (``productType``, ``versionID``, ``serialNumber``,
``macAddress``, ``operationalState``, ``highAvailability``, ``ipAddress``, ``localTimeStamp``),
``POST /api/v1/actions/reset {"saveConfiguration": bool, "gracefulTimeout": seconds}``,
``POST /api/v1/actions/saveConfiguration``.
[INFERRED, not seen on a device]: per-port status at ``GET /api/v1/status/ports[/{port}]`` and its field
names, the error body shape, HTTP 503 while the device restarts, 409 for a reset refused while calls are up
with ``gracefulTimeout`` 0 not given.

The device state (ports, hook and lock state, resets, the device's own log) lives here and is shared with the
CLI over SSH (:mod:`harness.simulators.audiocodes_ssh`), which calls the synchronous methods below
(``port_rows``, ``reset_port``, ``set_port_locked``, ``reset_device``, ``log_lines``) from its own threads.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from typing import Any

from aiohttp import web

from harness.simulators.backend import BackendCall, BackendError, BackendEvent, CallPhase, DeviceBackend, EventKind
from harness.simulators.base import SimulatorServer, basic_credentials


class AudioCodesMpSimulator(SimulatorServer):
    vendor = "AudioCodes"

    def __init__(self, backend: DeviceBackend, *, username: str = "Admin", password: str = "Admin",
                 restart_s: float = 1.0, **kwargs: Any) -> None:
        super().__init__(backend, **kwargs)
        self._creds = (username, password)
        self.restart_s = restart_s
        self._restarting_until = 0.0
        self._off_hook: set[int] = set()
        self.saved_configurations = 0
        self.resets: list[dict[str, Any]] = []
        self.locked_ports: set[int] = set()
        self.port_resets: list[int] = []
        self._device_log: deque[str] = deque(maxlen=500)
        self._state_lock = threading.RLock()

    # ------------------------------------------------------------------ device state (shared with the SSH CLI)

    def log_event(self, text: str) -> None:
        """A line of the device's own log (what ``show logging`` prints on the CLI)."""
        stamp = time.strftime("%d/%m/%Y %H:%M:%S", time.localtime())
        with self._state_lock:
            self._device_log.append(f"{stamp} {text}")

    def log_lines(self) -> list[str]:
        with self._state_lock:
            return list(self._device_log)

    @property
    def restarting(self) -> bool:
        return time.monotonic() < self._restarting_until

    def end_restart(self) -> None:
        """The device is back now (a test that held it restarting with a long ``restart_s``)."""
        with self._state_lock:
            self._restarting_until = 0.0

    def usable_ports(self) -> list[int]:
        return [ln.index for ln in self.backend.identity().lines]

    def port_rows(self) -> list[dict[str, Any]]:
        """Every FXS port as the REST per-port status reports it (blocking: calls the backend)."""
        calls = self.backend.calls()
        regs = {r.line: r for r in self.backend.registrations()}
        return [self._port_json(p, calls, regs) for p in self.usable_ports()]

    def reset_port(self, port: int, via: str) -> None:
        """Reset an analog channel: the call on it is released and the port is back on-hook, idle."""
        call = self._call_on(self.backend.calls(), port)
        if call is not None:
            self.backend.hangup(call.id)
        with self._state_lock:
            self._off_hook.discard(port)
            self.port_resets.append(port)
        self.log_event(f"[{via}] Analog port {port} reset{f' (call {call.id} released)' if call else ''}")

    def set_port_locked(self, port: int, locked: bool, via: str) -> None:
        with self._state_lock:
            (self.locked_ports.add if locked else self.locked_ports.discard)(port)
        self.log_event(f"[{via}] Analog port {port} {'locked' if locked else 'unlocked'}")

    def reset_device(self, save: bool, graceful: int, via: str, *, background: bool = False) -> None:
        """The whole device restarts: it answers nothing for ``restart_s`` from now on, and its SIP stack
        restarts (blocking, unless ``background``)."""
        with self._state_lock:
            self.resets.append({"saveConfiguration": save, "gracefulTimeout": graceful, "via": via})
            if save:
                self.saved_configurations += 1
            self._restarting_until = time.monotonic() + self.restart_s
            self._off_hook.clear()
        self.reset_uptime()
        self.log_event(f"[{via}] Device reset requested (save configuration: {'yes' if save else 'no'})")
        if background:
            threading.Thread(target=self.backend.restart, name="audiocodes-restart", daemon=True).start()
        else:
            self.backend.restart()

    def on_backend_event(self, event: BackendEvent) -> None:
        if event.call is not None and event.kind in (EventKind.INCOMING, EventKind.CONNECTED, EventKind.ENDED):
            c = event.call
            self.log_event(f"Analog port {c.line}: call {c.id} {event.kind.value} ({c.direction}, remote {c.remote})")

    def _error(self, status: int, message: str) -> web.Response:
        return web.json_response({"description": message}, status=status, headers={self.DETAIL_HEADER: message})

    def _handler(self, fn):
        async def handle(request: web.Request) -> web.StreamResponse:
            if time.monotonic() < self._restarting_until:
                return self._error(503, "the device is restarting")
            if basic_credentials(request) != self._creds:
                return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="AudioCodes"',
                                                         self.DETAIL_HEADER: "Basic credentials missing or wrong"})
            try:
                return await fn(request)
            except BackendError as exc:
                return self._error(409, str(exc))
        return handle

    def routes(self) -> list[web.RouteDef]:
        h = self._handler
        return [
            web.get("/api/", h(self._root)), web.get("/api/v1/status", h(self._status)),
            web.get("/api/v1/status/ports", h(self._ports)), web.get("/api/v1/status/ports/{port}", h(self._port)),
            web.post("/api/v1/actions/reset", h(self._reset)),
            web.post("/api/v1/actions/saveConfiguration", h(self._save)),
            web.post("/_sim/ports/{port}/offhook", self._sim_offhook),
            web.post("/_sim/ports/{port}/onhook", self._sim_onhook),
            web.post("/_sim/ports/{port}/dial", self._sim_dial),
        ]

    # ------------------------------------------------------------------ vendor API

    async def _root(self, request: web.Request) -> web.Response:
        return web.json_response({"url": "/api/v1", "apiVersion": "v1"})

    async def _status(self, request: web.Request) -> web.Response:
        ident = self.backend.identity()
        return web.json_response({
            "productType": ident.model, "versionID": ident.firmware, "serialNumber": ident.serial,
            "macAddress": ident.mac_plain, "operationalState": "UNLOCKED", "highAvailability": "Not Operational",
            "ipAddress": self.host, "localTimeStamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime()),
            "upTime": int(self.uptime_s()),
        })

    def _call_on(self, calls: list[BackendCall], port: int) -> BackendCall | None:
        return next((c for c in calls if c.line == port), None)

    def _port_json(self, port: int, calls: list[BackendCall], regs: dict[int, Any]) -> dict[str, Any]:
        ident = self.backend.identity()
        line = next(ln for ln in ident.lines if ln.index == port)
        call = self._call_on(calls, port)
        if call is None:
            state = "idle"
        elif call.phase is CallPhase.INCOMING:
            state = "ringing"
        elif call.phase is CallPhase.OUTGOING:
            state = "dialing"
        else:
            state = "hold" if call.held else "connected"
        r = regs.get(port)
        return {"port": port, "type": "FXS", "phoneNumber": line.number or line.username,
                "registration": "Registered" if r and r.registered else "Not Registered",
                "hookState": "offHook" if port in self._off_hook else "onHook", "callState": state,
                "adminState": "locked" if port in self.locked_ports else "unlocked",
                "remoteNumber": call.remote if call else "", "sipCallId": call.sip_call_id if call else ""}

    def _port_index(self, request: web.Request) -> int | web.Response:
        raw = request.match_info["port"]
        ports = [ln.index for ln in self.backend.identity().lines]
        if not raw.isdigit() or int(raw) not in ports:
            return self._error(404, f"port {raw!r} does not exist (usable ports: {ports})")
        return int(raw)

    async def _ports(self, request: web.Request) -> web.Response:
        calls = await self.run_backend(self.backend.calls)
        regs = {r.line: r for r in await self.run_backend(self.backend.registrations)}
        return web.json_response({"ports": [self._port_json(ln.index, calls, regs)
                                            for ln in self.backend.identity().lines]})

    async def _port(self, request: web.Request) -> web.Response:
        port = self._port_index(request)
        if isinstance(port, web.Response):
            return port
        calls = await self.run_backend(self.backend.calls)
        regs = {r.line: r for r in await self.run_backend(self.backend.registrations)}
        return web.json_response(self._port_json(port, calls, regs))

    async def _reset(self, request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.text() or "{}")
        except json.JSONDecodeError as exc:
            return self._error(400, f"body: not JSON ({exc.msg})")
        if not isinstance(body, dict):
            return self._error(400, "body: expected a JSON object")
        save = body.get("saveConfiguration", True)
        graceful = body.get("gracefulTimeout", 0)
        if not isinstance(save, bool):
            return self._error(400, "body.saveConfiguration: expected true or false")
        if isinstance(graceful, bool) or not isinstance(graceful, int) or graceful < 0:
            return self._error(400, "body.gracefulTimeout: expected 0, 1 or a number of seconds")
        await self.run_backend(self.reset_device, save, graceful, "REST")
        return web.json_response({"description": "Device is being reset"})

    async def _save(self, request: web.Request) -> web.Response:
        self.saved_configurations += 1
        self.log_event("[REST] Configuration saved")
        return web.json_response({"description": "Configuration saved"})

    # ------------------------------------------------------------------ the analog side (/_sim/)

    async def _sim_offhook(self, request: web.Request) -> web.Response:
        port = self._port_index(request)
        if isinstance(port, web.Response):
            return port
        self._off_hook.add(port)
        calls = await self.run_backend(self.backend.calls)
        call = self._call_on(calls, port)
        try:
            if call is not None and call.phase is CallPhase.INCOMING:
                await self.run_backend(self.backend.answer, call.id)
                return web.json_response({"answered": call.id})
        except BackendError as exc:
            return self._error(409, str(exc))
        return web.json_response({"offHook": port})

    async def _sim_onhook(self, request: web.Request) -> web.Response:
        port = self._port_index(request)
        if isinstance(port, web.Response):
            return port
        self._off_hook.discard(port)
        call = self._call_on(await self.run_backend(self.backend.calls), port)
        if call is not None and call.phase is not CallPhase.INCOMING:
            try:
                await self.run_backend(self.backend.hangup, call.id)
            except BackendError as exc:
                return self._error(409, str(exc))
        return web.json_response({"onHook": port})

    async def _sim_dial(self, request: web.Request) -> web.Response:
        port = self._port_index(request)
        if isinstance(port, web.Response):
            return port
        try:
            digits = (await request.json()).get("digits")
        except (json.JSONDecodeError, AttributeError):
            digits = None
        if not isinstance(digits, str) or not digits:
            return web.json_response({"error": "body.digits: missing"}, status=400)
        if port not in self._off_hook:
            return web.json_response({"error": f"port {port} is on-hook: go off-hook first"}, status=409)
        current = self._call_on(await self.run_backend(self.backend.calls), port)
        try:
            if current is not None and current.phase is CallPhase.CONNECTED:
                # Keys pressed during a call: the device detects the tones on the line and relays them in its
                # configured DTMF method (SIP INFO in the lab's MediaPack configuration); no new call.
                await self.run_backend(self.backend.send_dtmf, current.id, digits)
                return web.json_response({"dtmf": current.id})
            if current is not None:
                return web.json_response({"error": f"port {port} has a call {current.phase.value}: dialling needs a "
                                                   "dial tone"}, status=409)
            call = await self.run_backend(self.backend.dial, digits, port)
        except BackendError as exc:
            return web.json_response({"error": str(exc)}, status=409)
        return web.json_response({"call": call.id})
