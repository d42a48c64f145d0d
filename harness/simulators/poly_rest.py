"""Poly UC Software REST API simulator (VVX, Trio, Edge E), backed by a ``DeviceBackend``.

Shapes follow the vendor's "UC Software REST API Reference Manual" as used by published clients
(vendor-control-apis.md §3.1): POST bodies ``{"data": {...}}``, answers ``{"Status": "2000", "data": ...}``.

Status codes (in the body, as the real API returns them): 2000 OK, 4000 invalid parameters, 4001 device
busy, 4002 line not registered, 4003 operation not allowed, 4004 operation not supported, 4005 line does
not exist, 4007 call does not exist, 4010 default password not allowed, 5000 failed.

Device behaviour modelled (the bootstrap quirks):
- HTTP Basic auth with the admin account (``Polycom`` / factory password ``456``); a wrong password gets
  HTTP 401. While the admin password is still the factory one every API call is refused with 4010
  ("Default Password Not Allowed", UCS 5.9.7 and later).
- ``apps.restapi.enabled`` is ``0`` after a factory reset: every ``/api/`` path answers HTTP 404 until a
  provisioning step (``provision()`` or ``POST /_sim/provision``) sets it to ``1`` and changes
  ``device.auth.localAdminPassword``.
- ``dial`` only acknowledges; the call's ``CallHandle`` is read from ``callStatus`` (poll it).
- ``safeReboot`` waits for calls to end; while the device reboots every path answers HTTP 503.
[INFERRED, not seen on a device]: the HTTP status that accompanies each body status (see ``HTTP_STATUS``),
the 404 while the API is disabled, the ``CallState`` names (from the legacy polling API), the per-user
layout of ``sipStatus``, the list layout of ``callLogs/placed|received|missed`` (``callLogs`` groups them as
``Placed``/``Received``/``Missed`` with ``LineNumber``, ``Duration``, ``StartTime``, ``RemotePartyName``,
``RemotePartyNumber``, as published clients read it), and the message-waiting fields of ``lineInfo``
(``MessageWaiting``, ``NewVoiceMessages``, ``OldVoiceMessages``: what the phone's lamp and message count
show for the line), the forwarding parameters ``divert.fwd.<n>.enabled``, ``divert.<n>.contact``,
``divert.noanswer.<n>.enabled|contact|timeout`` (seconds), and that a call the phone redirected (302) at once is
logged as missed.
"""

from __future__ import annotations

import json
import time
from typing import Any

from aiohttp import web

from harness.simulators.backend import (
    BackendCall,
    BackendError,
    BackendEvent,
    CallPhase,
    DeviceBackend,
    Divert,
    EventKind,
    check_number,
)
from harness.simulators.base import SimulatorServer, basic_credentials

FACTORY_USER = "Polycom"
FACTORY_PASSWORD = "456"

HTTP_STATUS = {"2000": 200, "4000": 400, "4001": 409, "4002": 409, "4003": 403, "4004": 501, "4005": 404,
               "4007": 404, "4010": 403, "5000": 500}
_BACKEND_CODES = {"no_such_call": "4007", "no_such_line": "4005", "not_registered": "4002", "busy": "4001",
                  "invalid_state": "4003", "invalid_argument": "4000", "not_supported": "4004"}

CALL_ACTIONS = ("answerCall", "endCall", "holdCall", "resumeCall", "ignoreCall", "rejectCall")


class PolyRestSimulator(SimulatorServer):
    vendor = "Poly"

    def __init__(self, backend: DeviceBackend, *, factory_state: bool = True, admin_password: str = "sipgw-lab",
                 reboot_s: float = 1.0, **kwargs: Any) -> None:
        """``factory_state=True``: as out of the box (REST off, factory password). Otherwise already
        bootstrapped with ``admin_password``."""
        super().__init__(backend, **kwargs)
        self.reboot_s = reboot_s
        self._rebooting_until = 0.0
        self._reboot_pending = False
        self._ignored: set[int] = set()
        self.boots = 1
        self.call_logs: dict[str, list[dict[str, str]]] = {"Placed": [], "Received": [], "Missed": []}
        self.config: dict[str, tuple[str, str]] = {}
        self._factory_defaults()
        if not factory_state:
            self.provision({"apps.restapi.enabled": "1", "device.auth.localAdminPassword": admin_password},
                           source="config files")

    # ------------------------------------------------------------------ device state

    def _factory_defaults(self) -> None:
        ident = self.backend.identity()
        self.config = {
            "apps.restapi.enabled": ("0", "default"),
            "device.auth.localAdminPassword": (FACTORY_PASSWORD, "default"),
            "device.prov.serverName": ("", "default"),
            "device.prov.serverType": ("HTTP", "default"),
            "up.oneTouchDirectory": ("1", "default"),
        }
        for ln in ident.lines:
            self.config[f"reg.{ln.index}.address"] = (ln.username, "config files")
            self.config[f"reg.{ln.index}.label"] = (ln.display_name or ln.number or ln.username, "config files")
            self.config[f"reg.{ln.index}.server.1.address"] = (ln.domain, "config files")

    def provision(self, params: dict[str, str], source: str = "config files") -> None:
        """What a provisioning server (or the phone's own menu) sets: applies ``params`` as config."""
        for key, value in params.items():  # all checked before any is applied
            if not isinstance(key, str) or not key or not isinstance(value, str | int):
                raise ValueError(f"provision: {key!r}={value!r}: parameters and values must be strings")
        merged = {**{k: v[0] for k, v in self.config.items()}, **{k: str(v) for k, v in params.items()}}
        diverts = {ln.index: self._divert(merged, ln.index) for ln in self.backend.identity().lines
                   if any(k.startswith("divert.") for k in params)}
        for key, value in params.items():
            self.config[key] = (str(value), source)
        for line, divert in diverts.items():
            self.backend.set_divert(line, divert)

    @staticmethod
    def _divert(config: dict[str, str], line: int) -> Divert:
        """The line's own forwarding: ``divert.fwd.<n>.enabled`` to ``divert.<n>.contact``, or
        ``divert.noanswer.<n>.enabled`` to ``divert.noanswer.<n>.contact`` after ``divert.noanswer.<n>.timeout``
        seconds; checked before anything is stored."""
        always = config.get(f"divert.{line}.contact", "") if config.get(f"divert.fwd.{line}.enabled") == "1" else ""
        no_answer = config.get(f"divert.noanswer.{line}.contact", "") \
            if config.get(f"divert.noanswer.{line}.enabled") == "1" else ""
        raw = config.get(f"divert.noanswer.{line}.timeout", "") or "20"
        if not raw.isdigit() or not 1 <= int(raw) <= 600:
            raise ValueError(f"divert.noanswer.{line}.timeout: {raw!r} is not a number of seconds (1-600)")
        for name, target in ((f"divert.{line}.contact", always), (f"divert.noanswer.{line}.contact", no_answer)):
            if target:
                try:
                    check_number(target, name)
                except BackendError as exc:
                    raise ValueError(str(exc)) from None
        return Divert(always or None, no_answer or None, float(raw))

    @property
    def admin_password(self) -> str:
        return self.config["device.auth.localAdminPassword"][0]

    @property
    def rest_enabled(self) -> bool:
        return self.config["apps.restapi.enabled"][0] == "1"

    def _reboot(self) -> None:
        self._reboot_pending = False
        self._rebooting_until = time.monotonic() + self.reboot_s
        self.boots += 1
        self.reset_uptime()
        self._ignored.clear()

    # ------------------------------------------------------------------ HTTP plumbing

    def _status(self, code: str, detail: str = "", data: Any = None) -> web.Response:
        body: dict[str, Any] = {"Status": code}
        if data is not None:
            body["data"] = data
        headers = {self.DETAIL_HEADER: detail} if detail else {}
        return web.json_response(body, status=HTTP_STATUS.get(code, 500), headers=headers)

    def _gate(self, request: web.Request) -> web.Response | None:
        """The checks every /api/ request passes, in the device's order."""
        if time.monotonic() < self._rebooting_until:
            return web.Response(status=503, text="rebooting", headers={self.DETAIL_HEADER: "the device is rebooting"})
        if not self.rest_enabled:
            return web.Response(status=404, text="404 Not Found", headers={
                self.DETAIL_HEADER: "apps.restapi.enabled is 0 (factory default): provision it to 1"})
        creds = basic_credentials(request)
        if creds is None or creds[0] != FACTORY_USER or creds[1] != self.admin_password:
            what = "no Basic credentials" if creds is None else f"wrong user or password for {creds[0]!r}"
            return web.Response(status=401, text="401 Unauthorized", headers={
                "WWW-Authenticate": 'Basic realm="Polycom"', self.DETAIL_HEADER: what})
        if self.admin_password == FACTORY_PASSWORD:
            return self._status("4010", "the admin password is still the factory default: change "
                                        "device.auth.localAdminPassword first")
        return None

    async def _data(self, request: web.Request, kind: type) -> Any:
        """The request's ``data`` member, or raises a 4000 response that says what is wrong."""
        try:
            body = json.loads(await request.text() or "null")
        except json.JSONDecodeError as exc:
            where = f"line {exc.lineno} column {exc.colno}"
            raise _Reply(self._status("4000", f"body: not JSON ({exc.msg} at {where})")) from None
        if not isinstance(body, dict) or "data" not in body:
            raise _Reply(self._status("4000", 'body: expected an object {"data": ...}'))
        data = body["data"]
        if not isinstance(data, kind):
            raise _Reply(self._status("4000", f"body.data: expected a JSON {kind.__name__}"))
        return data

    def _backend_error(self, exc: BackendError) -> web.Response:
        return self._status(_BACKEND_CODES.get(exc.kind, "5000"), str(exc))

    def _handler(self, fn):
        async def handle(request: web.Request) -> web.StreamResponse:
            refused = self._gate(request)
            if refused is not None:
                return refused
            try:
                return await fn(request)
            except _Reply as r:
                return r.response
            except BackendError as exc:
                return self._backend_error(exc)
        return handle

    # ------------------------------------------------------------------ routes

    def routes(self) -> list[web.RouteDef]:
        h = self._handler
        out = [
            web.post("/api/v1/callctrl/dial", h(self._dial)),
            web.post("/api/v1/callctrl/mute", h(self._mute)),
            web.post("/api/v1/callctrl/sendDTMF", h(self._dtmf)),
            web.post("/api/v1/callctrl/transferCall", h(self._transfer)),
            web.get("/api/v2/webCallControl/callStatus", h(self._call_status)),
            web.get("/api/v1/webCallControl/callStatus", h(self._call_status_v1)),
            web.get("/api/v1/webCallControl/sipStatus", h(self._sip_status)),
            web.get("/api/v2/mgmt/device/info", h(self._device_info)),
            web.get("/api/v1/mgmt/device/info", h(self._device_info)),
            web.get("/api/v1/mgmt/callLogs", h(self._call_logs)),
            web.get("/api/v1/mgmt/callLogs/{kind}", h(self._call_logs)),
            web.get("/api/v2/mgmt/lineInfo", h(self._line_info)),
            web.get("/api/v1/mgmt/lineInfo", h(self._line_info)),
            web.post("/api/v1/mgmt/config/get", h(self._config_get)),
            web.post("/api/v1/mgmt/config/set", h(self._config_set)),
            web.post("/api/v1/mgmt/safeReboot", h(self._safe_reboot)),
            web.post("/api/v1/mgmt/safeRestart", h(self._safe_reboot)),
            web.post("/api/v1/mgmt/factoryReset", h(self._factory_reset)),
            web.post("/api/v1/mgmt/configReset", h(self._config_reset)),
            web.post("/api/v1/mgmt/updateConfiguration", h(self._update_configuration)),
            web.post("/api/v1/mgmt/simulateKeyEvent", h(self._not_supported)),
            web.post("/api/v1/mgmt/simulateTextInput", h(self._not_supported)),
            web.post("/_sim/provision", self._sim_provision),
        ]
        for action in CALL_ACTIONS:
            out.append(web.post(f"/api/v1/callctrl/{action}", h(self._call_action(action))))
        return out

    async def _not_supported(self, request: web.Request) -> web.Response:
        return self._status("4004", f"{request.path}: key and text simulation are not emulated by this simulator")

    # -- call control

    async def _dial(self, request: web.Request) -> web.Response:
        data = await self._data(request, dict)
        dest = data.get("Dest")
        if not isinstance(dest, str) or not dest.strip():
            return self._status("4000", "body.data.Dest: missing or empty")
        line = self._line_number(data.get("Line", "1"))
        if line is None:
            return self._status("4000", f"body.data.Line: {data.get('Line')!r} is not a line number")
        dtype = data.get("Type", "TEL")
        if dtype not in ("TEL", "SIP"):
            return self._status("4000", f"body.data.Type: {dtype!r} (expected TEL or SIP)")
        dest = dest.strip()
        if dtype == "SIP":
            dest = dest.removeprefix("sip:").split("@", 1)[0]
        await self.run_backend(self.backend.dial, dest, line)
        return self._status("2000")  # only an acknowledgement: the CallHandle is in callStatus

    @staticmethod
    def _line_number(value: Any) -> int | None:
        try:
            n = int(str(value))
        except ValueError:
            return None
        return n if n >= 1 else None

    def _ref(self, data: dict) -> int:
        ref = data.get("Ref")
        if not isinstance(ref, str) or not ref.strip():
            raise _Reply(self._status("4000", "body.data.Ref: missing (a CallHandle from callStatus)"))
        cid = handle_to_id(ref.strip())
        if cid is None:
            raise _Reply(self._status("4007", f"body.data.Ref: {ref!r} is not a CallHandle"))
        return cid

    def _call_action(self, action: str):
        async def run(request: web.Request) -> web.Response:
            data = await self._data(request, dict)
            cid = self._ref(data)
            call = await self.run_backend(self.backend.call, cid)
            if not call.active:
                return self._status("4007", f"call {id_to_handle(cid)} has ended")
            b = self.backend
            if action == "answerCall":
                await self.run_backend(b.answer, cid)
            elif action == "endCall":
                await self.run_backend(b.hangup, cid)
            elif action == "holdCall":
                await self.run_backend(b.hold, cid)
            elif action == "resumeCall":
                await self.run_backend(b.resume, cid)
            elif action == "rejectCall":
                await self.run_backend(b.reject, cid, 486)  # RFC 3261 §21.4.24 Busy Here
            elif action == "ignoreCall":
                if call.phase is not CallPhase.INCOMING:
                    return self._status("4003", f"call {id_to_handle(cid)} is not ringing")
                self._ignored.add(cid)  # the ringer stops; the call keeps offering (no SIP response)
            return self._status("2000")
        return run

    async def _mute(self, request: web.Request) -> web.Response:
        data = await self._data(request, dict)
        state = str(data.get("state", ""))
        if state not in ("0", "1"):
            return self._status("4000", f"body.data.state: {data.get('state')!r} (expected \"1\" or \"0\")")
        await self.run_backend(self.backend.set_mute, state == "1")
        return self._status("2000")

    async def _connected_call(self) -> BackendCall:
        calls = await self.run_backend(self.backend.calls)
        for c in calls:
            if c.phase is CallPhase.CONNECTED and not c.held:
                return c
        raise _Reply(self._status("4007", "no connected call to send DTMF to"))

    async def _dtmf(self, request: web.Request) -> web.Response:
        data = await self._data(request, dict)
        digits = data.get("digits")
        if not isinstance(digits, str) or not digits:
            return self._status("4000", "body.data.digits: missing or empty")
        call = await self._connected_call()
        await self.run_backend(self.backend.send_dtmf, call.id, digits)
        return self._status("2000")

    async def _transfer(self, request: web.Request) -> web.Response:
        data = await self._data(request, dict)
        cid = self._ref(data)
        dest = data.get("TransferDest")
        if not isinstance(dest, str) or not dest.strip():
            return self._status("4000", "body.data.TransferDest: missing or empty")
        await self.run_backend(self.backend.transfer, cid, dest.strip())  # always blind (REFER, RFC 3515)
        return self._status("2000")

    # -- read-back

    def _call_entry(self, c: BackendCall) -> dict[str, Any]:
        if c.phase is CallPhase.INCOMING:
            state = "Offering"
        elif c.phase is CallPhase.OUTGOING:
            state = "RingBack" if c.early else "Dialing"
        elif c.held:
            state = "CallHold"
        elif c.remote_held:
            state = "CallHeld"
        else:
            state = "Connected"
        direction = "sendrecv"
        if c.held and c.remote_held:
            direction = "inactive"
        elif c.held:
            direction = "sendonly"
        elif c.remote_held:
            direction = "recvonly"
        since = c.answered or c.started
        return {
            "CallHandle": id_to_handle(c.id), "CallState": state,
            "Type": "Incoming" if c.direction == "in" else "Outgoing",
            "Ringing": "1" if c.phase is CallPhase.INCOMING and c.id not in self._ignored else "0",
            "Muted": "1" if self.backend.muted else "0", "Media Direction": direction,
            "RemotePartyNumber": c.remote, "RemotePartyName": c.remote, "LineID": str(c.line),
            "Protocol": "SIP", "DurationSeconds": str(int(max(0.0, time.time() - since))),
            "CallSequence": str(c.id),
        }

    async def _call_status(self, request: web.Request) -> web.Response:
        calls = await self.run_backend(self.backend.calls)
        return self._status("2000", data=[self._call_entry(c) for c in calls])

    async def _call_status_v1(self, request: web.Request) -> web.Response:
        calls = await self.run_backend(self.backend.calls)
        if not calls:
            return self._status("4007", "no call in progress")
        return self._status("2000", data=self._call_entry(calls[0]))

    async def _sip_status(self, request: web.Request) -> web.Response:
        ident = self.backend.identity()
        regs = {r.line: r for r in await self.run_backend(self.backend.registrations)}
        users = []
        for ln in ident.lines:
            r = regs.get(ln.index)
            users.append({"User": ln.address, "LineNumber": str(ln.index), "Events": [{
                "Type": "Register",
                "RegistrationState": "Registered" if r and r.registered else "Unregistered",
                "Expires": str(r.expires_s if r else 0),
                "StatusCode": str(r.code if r and r.code is not None else ""),
            }]})
        return self._status("2000", data={"User": users})

    async def _device_info(self, request: web.Request) -> web.Response:
        ident = self.backend.identity()
        up = int(self.uptime_s())
        calls = await self.run_backend(self.backend.calls)
        return self._status("2000", data={
            "ModelNumber": ident.model, "DeviceVendor": "Polycom", "DeviceType": "HardwareEndpoint",
            "MACAddress": ident.mac_plain, "SerialNumber": ident.serial or ident.mac_plain,
            "Firmware": {"Application": ident.firmware, "BootBlock": "", "Updater": ""},
            "UpTime": {"Days": str(up // 86400), "Hours": str(up // 3600 % 24), "Minutes": str(up // 60 % 60),
                       "Seconds": str(up % 60)},
            "UpTimeSinceLastReboot": str(up), "AppState": "AppStateCall" if calls else "AppStateIdle",
            "ReadyToUse": "True", "IPV4Address": self.host,
        })

    async def _call_logs(self, request: web.Request) -> web.Response:
        kind = request.match_info.get("kind")
        if kind is None:
            return self._status("2000", data={k: list(v) for k, v in self.call_logs.items()})
        key = {"placed": "Placed", "received": "Received", "missed": "Missed"}.get(kind)
        if key is None:
            return self._status("4000", f"path: callLogs/{kind} (expected placed, received or missed)")
        return self._status("2000", data=list(self.call_logs[key]))

    def _log_call(self, c: BackendCall) -> None:
        """An ended call enters the phone's call log: placed, received (answered) or missed."""
        kind = "Placed" if c.direction == "out" else ("Received" if c.answered else "Missed")
        duration = str(int((c.ended or time.time()) - c.answered)) if c.answered else ""
        self.call_logs[kind].append({
            "LineNumber": str(c.line), "Duration": duration,
            "StartTime": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(c.started or time.time())),
            "RemotePartyName": c.remote, "RemotePartyNumber": c.remote})

    async def _line_info(self, request: web.Request) -> web.Response:
        ident = self.backend.identity()
        regs = {r.line: r for r in await self.run_backend(self.backend.registrations)}
        lines = []
        for ln in ident.lines:
            r = regs.get(ln.index)
            mwi = self.backend.mwi(ln.index)
            lines.append({
                "MessageWaiting": "true" if mwi.waiting else "false", "NewVoiceMessages": str(mwi.new),
                "OldVoiceMessages": str(mwi.old),
                "LineNumber": str(ln.index), "SIPAddress": ln.address, "Label": ln.display_name or ln.username,
                "UserID": ln.username, "Protocol": "SIP", "LineType": "private",
                "RegistrationStatus": "registered" if r and r.registered else "unregistered",
                "ProxyAddress": (r.registrar or "").removeprefix("sip:") if r else "",
            })
        return self._status("2000", data=lines)

    async def _config_get(self, request: web.Request) -> web.Response:
        names = await self._data(request, list)
        if not names or not all(isinstance(n, str) and n for n in names):
            return self._status("4000", "body.data: expected a non-empty list of parameter names")
        out = {}
        for name in names:
            value, source = self.config.get(name, ("", "default"))
            if name.endswith("Password") and value:
                value = "*" * len(value)
            out[name] = {"Value": value, "Source": source}
        return self._status("2000", data=out)

    async def _config_set(self, request: web.Request) -> web.Response:
        params = await self._data(request, dict)
        if not params:
            return self._status("4000", "body.data: expected an object of parameter: value")
        for key, value in params.items():
            if not isinstance(value, str):
                return self._status("4000", f"body.data.{key}: values are strings, got {type(value).__name__}")
        try:
            self.provision(params, source="web")  # checked as a whole first: nothing is half-applied
        except ValueError as exc:
            return self._status("4000", f"body.data: {exc}")
        return self._status("2000")

    async def _safe_reboot(self, request: web.Request) -> web.Response:
        calls = await self.run_backend(self.backend.calls)
        if calls:
            self._reboot_pending = True  # safeReboot waits for the calls to end
        else:
            await self._do_reboot()
        return self._status("2000")

    async def _do_reboot(self) -> None:
        self._reboot()
        await self.run_backend(self.backend.restart)

    async def _factory_reset(self, request: web.Request) -> web.Response:
        self._factory_defaults()
        self.spawn(self._do_reboot())
        return self._status("2000")

    async def _config_reset(self, request: web.Request) -> web.Response:
        keep = {k: v for k, v in self.config.items() if v[1] != "web"}
        self.config = keep
        return self._status("2000")

    async def _update_configuration(self, request: web.Request) -> web.Response:
        await self.run_backend(self.backend.restart)  # fetches its files again and re-registers
        return self._status("2000")

    async def _sim_provision(self, request: web.Request) -> web.Response:
        try:
            params = json.loads(await request.text())
            if not isinstance(params, dict):
                raise ValueError("expected a JSON object of parameter: value")
            self.provision(params)
        except ValueError as exc:
            return web.json_response({"error": f"body: {exc}"}, status=400)
        return web.json_response({"applied": sorted(params)})

    # ------------------------------------------------------------------ backend events

    def on_backend_event(self, event: BackendEvent):
        if event.kind is EventKind.ENDED and event.call is not None:
            self._ignored.discard(event.call.id)
            self._log_call(event.call)
            if self._reboot_pending and not [c for c in self.backend.calls() if c.active]:
                return self._do_reboot()
        return None


class _Reply(Exception):
    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


_HANDLE_BASE = 0x4B1D000


def id_to_handle(call_id: int) -> str:
    """Poly CallHandles look like pointers ("0x4b1d001")."""
    return f"0x{_HANDLE_BASE + call_id:x}"


def handle_to_id(handle: str) -> int | None:
    try:
        value = int(handle, 16)
    except ValueError:
        return None
    cid = value - _HANDLE_BASE
    return cid if cid > 0 else None
