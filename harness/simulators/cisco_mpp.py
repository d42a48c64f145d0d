"""Cisco MPP phone simulator: the Remote SDK over WebSocket, plus the CGI/Execute and Direct Action URL
fallbacks (vendor-control-apis.md §1).

Remote SDK (MPP 11.3.1+): the *phone* connects out to the WebSocket server named by its
``Control_Server_URL`` parameter and reconnects when the link drops; an empty value stops it. The server
sends JSON requests ``{"Request-URI": "/api/<Interface>/<version>/<Method>", ...params}``; only one request
may be pending per phone (a second one gets an error response at once); the phone answers with
``{"type": "response", "Request-URI": ..., "result": {...}}`` and sends unsolicited
``{"type": "event", "name": ..., "params": {...}}``. Methods: ``Config/v1/GetParams`` /
``SetParams`` (``result.paramvalues``), ``Call/v1/Dial`` (``line``, ``number``), ``Answer`` / ``Hangup``
(``line``, ``callId``; call ids count from 0 per line), ``Serviceability/v1/GetStatusFile`` and
``/api/GetMetadata`` (an OpenAPI 3.0 description of what this load offers).

Fallbacks: ``POST /CGI/Execute`` with form field ``XML=<CiscoIPPhoneExecute><ExecuteItem URL="Dial:1234"/>
</CiscoIPPhoneExecute>`` (``CISCO XML EXE Auth Mode``: ``Trusted`` (default, no auth) or
``Local Credential`` (HTTP digest with the user password)); ``GET /admin/status.xml`` and
``/admin/reboot`` when ``Enable Direct Action URL`` is ``Yes`` (HTTP digest, admin).
[INFERRED, not in the published samples]: the names ``Call/v1/Hold``, ``Resume``, ``Mute``, ``SendDtmf``,
``Transfer``, ``GetCalls``, the call fields (``remoteHold``: the other party holds the call), the forwarding
parameters ``Cfwd_All_Dest``, ``Cfwd_No_Ans_Dest``, ``Cfwd_No_Ans_Delay`` (SPA heritage) and the event
names ``CallStateChanged`` / ``RegistrationStateChanged`` (the
real names are read from ``GetMetadata`` at run time: drivers should do the same), the error-response
shape, and the element names of ``status.xml``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import xml.etree.ElementTree as ET
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import aiohttp
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
from harness.simulators.base import DigestChallenger, OutboundRecord, SimulatorServer

RECONNECT_MIN_S = 0.1
RECONNECT_MAX_S = 2.0

_INFERRED_METHODS = ("/api/Call/v1/Hold", "/api/Call/v1/Resume", "/api/Call/v1/Mute", "/api/Call/v1/SendDtmf",
                     "/api/Call/v1/Transfer", "/api/Call/v1/GetCalls")


class RemoteSdkError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class CiscoMppSimulator(SimulatorServer):
    vendor = "Cisco"

    def __init__(self, backend: DeviceBackend, *, control_server_url: str = "", admin_password: str = "admin",
                 user_password: str = "user", xml_exe_auth: str = "Trusted", direct_action_url: bool = True,
                 **kwargs: Any) -> None:
        super().__init__(backend, **kwargs)
        if xml_exe_auth not in ("Trusted", "Local Credential"):
            raise ValueError(f"xml_exe_auth {xml_exe_auth!r}: use 'Trusted' or 'Local Credential'")
        ident = backend.identity()
        self.params: dict[str, str] = {
            "Control_Server_URL": control_server_url,
            "DND_Setting": "No",
            "CISCO_XML_EXE_Enable": "Yes",
            "CISCO_XML_EXE_Auth_Mode": xml_exe_auth,
            "Enable_Direct_Action_URL": "Yes" if direct_action_url else "No",
            "Product_Name": f"CP-{ident.model}-3PCC",
            "Software_Version": ident.firmware,
            "MAC_Address": ident.mac_plain.upper(),
            "Cfwd_All_Dest": "", "Cfwd_No_Ans_Dest": "", "Cfwd_No_Ans_Delay": "20",
        }
        for ln in ident.lines:
            self.params[f"User_ID_{ln.index}_"] = ln.number or ln.username
            self.params[f"Display_Name_{ln.index}_"] = ln.display_name
            self.params[f"Message_Waiting_{ln.index}_"] = "No"
        self._passwords = {"admin": admin_password, "user": user_password}
        self._digest = DigestChallenger("Cisco")
        self._cisco_ids: dict[int, tuple[int, int, float]] = {}  # backend id -> (line, callId, started)
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._pending: str | None = None
        self._url_changed: asyncio.Event | None = None
        self.connects = 0
        self.boots = 1

    # ------------------------------------------------------------------ parameters

    def provision(self, params: dict[str, str]) -> None:
        for k, v in params.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise ValueError(f"provision: {k!r}={v!r}: parameters and values must be strings")
        divert = self._divert({**self.params, **params}) if any(k.startswith("Cfwd_") for k in params) else None
        old_url = self.params.get("Control_Server_URL", "")
        self.params.update(params)
        if divert is not None:
            self.backend.set_divert(1, divert)
        if self.params.get("Control_Server_URL", "") != old_url and self._loop is not None:
            self._loop.call_soon_threadsafe(self._kick)

    @staticmethod
    def _divert(params: dict[str, str]) -> Divert:
        """The phone's own forwarding (``Cfwd_All_Dest``; ``Cfwd_No_Ans_Dest`` after ``Cfwd_No_Ans_Delay``
        seconds), checked before anything is stored."""
        delay = params.get("Cfwd_No_Ans_Delay", "20") or "20"
        if not delay.isdigit() or not 1 <= int(delay) <= 600:
            raise ValueError(f"Cfwd_No_Ans_Delay: {delay!r} is not a number of seconds (1-600)")
        for name in ("Cfwd_All_Dest", "Cfwd_No_Ans_Dest"):
            if params.get(name):
                check_number(params[name], name)
        return Divert(params.get("Cfwd_All_Dest") or None, params.get("Cfwd_No_Ans_Dest") or None, float(delay))

    def _kick(self) -> None:
        if self._url_changed is not None:
            self._url_changed.set()
        if self._ws is not None and not self._ws.closed:
            self.spawn(self._ws.close())

    @property
    def connected(self) -> bool:
        return self._ws is not None and not self._ws.closed

    def _param(self, name: str) -> str:
        """A parameter's value; ``Message_Waiting_<n>_`` is the lamp as the last message-summary NOTIFY of the
        line set it (admin guide: "indicates whether the Message Waiting Indicator on the phone is lit")."""
        if name.startswith("Message_Waiting_") and name.endswith("_"):
            try:
                return "Yes" if self.backend.mwi(int(name[len("Message_Waiting_"):-1])).waiting else "No"
            except (ValueError, BackendError):
                return self.params[name]
        return self.params[name]

    # ------------------------------------------------------------------ call ids

    def _cisco_id(self, call: BackendCall) -> int:
        """The call's callId on its line: the lowest one no live call holds (ids count from 0 per line and are
        reused). Backend ids are reused too, so an entry belongs to the call that started at that time."""
        entry = self._cisco_ids.get(call.id)
        if entry is not None and entry[2] == call.started:
            return entry[1]
        live = {c.id for c in self.backend.calls()}
        for bid in [b for b in self._cisco_ids if b not in live and b != call.id]:
            del self._cisco_ids[bid]  # ended calls free their ids (their end event may never be asked for one)
        used = {cid for bid, (line, cid, _) in self._cisco_ids.items() if line == call.line and bid != call.id}
        n = 0
        while n in used:
            n += 1
        self._cisco_ids[call.id] = (call.line, n, call.started)
        return n

    async def _backend_id(self, line: Any, call_id: Any) -> int:
        if not isinstance(line, int) or not isinstance(call_id, int):
            raise RemoteSdkError("InvalidParameter", "line and callId must be integers")
        for c in await self.run_backend(self.backend.calls):
            if c.line == line and self._cisco_id(c) == call_id:
                return c.id
        raise RemoteSdkError("InvalidCallId", f"no call {call_id} on line {line}")

    def _call_state(self, c: BackendCall) -> str:
        if c.phase is CallPhase.INCOMING:
            return "Ringing"
        if c.phase is CallPhase.OUTGOING:
            return "Proceeding"
        if c.phase is CallPhase.ENDED:
            return "Idle"
        return "Hold" if c.held else "Connected"

    def _call_json(self, c: BackendCall) -> dict[str, Any]:
        return {"line": c.line, "callId": self._cisco_id(c), "state": self._call_state(c),
                "direction": "incoming" if c.direction == "in" else "outgoing", "remoteNumber": c.remote,
                "muted": c.muted, "remoteHold": c.remote_held, "sipCallId": c.sip_call_id}

    # ------------------------------------------------------------------ Remote SDK (WebSocket client)

    async def on_started(self) -> None:
        self._url_changed = asyncio.Event()
        self.spawn(self._connect_loop())

    async def on_stopping(self) -> None:
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()

    async def _connect_loop(self) -> None:
        assert self._url_changed is not None
        delay = RECONNECT_MIN_S
        async with aiohttp.ClientSession() as session:
            while True:
                url = self.params.get("Control_Server_URL", "")
                self._url_changed.clear()
                if not url:
                    await self._url_changed.wait()
                    continue
                try:
                    async with session.ws_connect(url, heartbeat=20) as ws:
                        self._ws = ws
                        self.connects += 1
                        delay = RECONNECT_MIN_S
                        self.record_outbound(OutboundRecord(time.time(), "ws_connect", url, ""))
                        if self.params.get("Control_Server_URL", "") != url:
                            # Re-provisioned while this connection was being made: _kick found no link to close.
                            await ws.close()
                        await self._serve(ws)
                except (aiohttp.ClientError, OSError, ValueError) as exc:
                    self.record_outbound(OutboundRecord(time.time(), "ws_connect", url, "",
                                                        error=f"{type(exc).__name__}: {exc}"))
                finally:
                    self._ws = None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._url_changed.wait(), delay)
                delay = min(delay * 2, RECONNECT_MAX_S)

    async def _serve(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:
            if msg.type is not aiohttp.WSMsgType.TEXT:
                continue
            self.record_outbound(OutboundRecord(time.time(), "ws_recv", "", msg.data[:4096]))
            try:
                request = json.loads(msg.data)
            except json.JSONDecodeError as exc:
                await self._send({"type": "response", "Request-URI": None, "status": "Failure",
                                  "error": {"code": "InvalidRequest", "message": f"not JSON: {exc.msg}"}})
                continue
            uri = request.get("Request-URI") if isinstance(request, dict) else None
            if not isinstance(uri, str):
                await self._send({"type": "response", "Request-URI": None, "status": "Failure",
                                  "error": {"code": "InvalidRequest", "message": "missing \"Request-URI\""}})
                continue
            if self._pending is not None:
                await self._send({"type": "response", "Request-URI": uri, "status": "Failure", "error": {
                    "code": "Busy", "message": f"only one request may be pending; {self._pending} is"}})
                continue
            self._pending = uri
            self.spawn(self._handle(uri, request))

    async def _handle(self, uri: str, request: dict[str, Any]) -> None:
        try:
            result = await self._dispatch(uri, request)
            response = {"type": "response", "Request-URI": uri, "status": "Success", "result": result}
        except RemoteSdkError as exc:
            response = {"type": "response", "Request-URI": uri, "status": "Failure",
                        "error": {"code": exc.code, "message": str(exc)}}
        except BackendError as exc:
            response = {"type": "response", "Request-URI": uri, "status": "Failure",
                        "error": {"code": exc.kind, "message": str(exc)}}
        finally:
            self._pending = None
        await self._send(response)

    async def _send(self, payload: dict[str, Any]) -> None:
        ws = self._ws
        text = json.dumps(payload)
        self.record_outbound(OutboundRecord(time.time(), f"ws_{payload.get('type', 'send')}", "", text[:4096]))
        if ws is not None and not ws.closed:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_str(text)

    async def _dispatch(self, uri: str, req: dict[str, Any]) -> dict[str, Any]:
        b = self.backend
        if uri == "/api/GetMetadata":
            return {"openapi": metadata()}
        if uri == "/api/Config/v1/GetParams":
            names = req.get("params")
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise RemoteSdkError("InvalidParameter", "params: expected a list of parameter names")
            unknown = [n for n in names if n not in self.params]
            if unknown:
                raise RemoteSdkError("InvalidParameter", f"params: unknown parameter(s) {unknown}")
            return {"paramvalues": {n: self._param(n) for n in names}}
        if uri == "/api/Config/v1/SetParams":
            values = req.get("params")
            if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
                raise RemoteSdkError("InvalidParameter", "params: expected an object of parameter: string value")
            try:
                self.provision(values)
            except ValueError as exc:
                raise RemoteSdkError("InvalidParameter", f"params: {exc}") from None
            return {"paramvalues": dict(values)}
        if uri == "/api/Call/v1/Dial":
            number, line = req.get("number"), req.get("line", 1)
            if not isinstance(number, str) or not number or not isinstance(line, int):
                raise RemoteSdkError("InvalidParameter", "Dial: needs \"number\" (string) and \"line\" (integer)")
            call = await self.run_backend(b.dial, number, line)
            return {"line": line, "callId": self._cisco_id(call)}
        if uri == "/api/Call/v1/GetCalls":
            return {"calls": [self._call_json(c) for c in await self.run_backend(b.calls)]}
        if uri == "/api/Serviceability/v1/GetStatusFile":
            return {"status": self._status_dict()}
        ops = {"/api/Call/v1/Answer": b.answer, "/api/Call/v1/Hangup": b.hangup, "/api/Call/v1/Hold": b.hold,
               "/api/Call/v1/Resume": b.resume}
        if uri in ops:
            bid = await self._backend_id(req.get("line", 1), req.get("callId", 0))
            await self.run_backend(ops[uri], bid)
            return {}
        if uri == "/api/Call/v1/Mute":
            await self._backend_id(req.get("line", 1), req.get("callId", 0))
            mute = req.get("mute", True)
            if not isinstance(mute, bool):
                raise RemoteSdkError("InvalidParameter", "mute: expected true or false")
            await self.run_backend(b.set_mute, mute)  # the phone's mute key: the microphone, for every call
            return {"muted": mute}
        if uri == "/api/Call/v1/SendDtmf":
            bid = await self._backend_id(req.get("line", 1), req.get("callId", 0))
            await self.run_backend(b.send_dtmf, bid, req.get("digits"))
            return {}
        if uri == "/api/Call/v1/Transfer":
            bid = await self._backend_id(req.get("line", 1), req.get("callId", 0))
            await self.run_backend(b.transfer, bid, req.get("target"))
            return {}
        raise RemoteSdkError("NotFound", f"{uri}: no such API in this load (see /api/GetMetadata)")

    def on_backend_event(self, event: BackendEvent):
        if event.kind is EventKind.REGISTRATION:
            return self._send({"type": "event", "name": "RegistrationStateChanged", "params": {
                "line": event.data.get("line"), "registered": bool(event.data.get("registered"))}})
        if event.call is None or event.kind is EventKind.DTMF:
            return None
        params = self._call_json(event.call)
        if event.kind is EventKind.ENDED:
            self._cisco_ids.pop(event.call.id, None)
        return self._send({"type": "event", "name": "CallStateChanged", "params": params})

    # ------------------------------------------------------------------ HTTP fallbacks

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/CGI/Execute", self._execute), web.get("/admin/status.xml", self._status_xml),
                web.get("/admin/reboot", self._reboot), web.post("/_sim/provision", self._sim_provision)]

    def _status_dict(self) -> dict[str, str]:
        ident = self.backend.identity()
        out = {"Product_Name": self.params["Product_Name"], "Software_Version": ident.firmware,
               "MAC_Address": ident.mac_plain.upper(), "Serial_Number": ident.serial,
               "Current_Time": time.strftime("%m/%d/%Y %H:%M:%S", time.gmtime()),
               "Elapsed_Time": str(int(self.uptime_s())), "DND_Setting": self.params["DND_Setting"]}
        for r in self.backend.registrations():
            out[f"Registration_State_{r.line}_"] = "Registered" if r.registered else "Failed"
            out[f"Message_Waiting_{r.line}_"] = self._param(f"Message_Waiting_{r.line}_")
        for c in self.backend.calls():
            n = self._cisco_id(c) + 1
            out[f"Call_{n}_State"] = self._call_state(c)
            out[f"Call_{n}_Peer_Phone"] = c.remote
        return out

    async def _status_xml(self, request: web.Request) -> web.Response:
        if self.params["Enable_Direct_Action_URL"] != "Yes":
            return web.Response(status=404, headers={self.DETAIL_HEADER: "Enable Direct Action URL is No"})
        if self._digest.check(request, {"admin": self._passwords["admin"]}) is None:
            return self._digest.challenge("admin credentials needed (HTTP digest)")
        body = "".join(f"<{k}>{escape(v or '')}</{k}>" for k, v in self._status_dict().items())
        return web.Response(text=f"<flat-profile>{body}</flat-profile>", content_type="text/xml")

    async def _reboot(self, request: web.Request) -> web.Response:
        if self.params["Enable_Direct_Action_URL"] != "Yes":
            return web.Response(status=404, headers={self.DETAIL_HEADER: "Enable Direct Action URL is No"})
        if self._digest.check(request, {"admin": self._passwords["admin"]}) is None:
            return self._digest.challenge("admin credentials needed (HTTP digest)")
        self.boots += 1
        self.reset_uptime()
        await self.run_backend(self.backend.restart)
        if self._ws is not None:
            await self._ws.close()  # the phone reconnects after its reboot
        return web.Response(text="OK")

    async def _sim_provision(self, request: web.Request) -> web.Response:
        try:
            params = await request.json()
            if not isinstance(params, dict):
                raise ValueError("expected a JSON object of parameter: value")
            self.provision(params)
        except ValueError as exc:
            return web.json_response({"error": f"body: {exc}"}, status=400)
        return web.json_response({"applied": sorted(params)})

    def _execute_response(self, items: list[tuple[str, str, str]], status: int = 200) -> web.Response:
        body = "".join(f"<ResponseItem Status={quoteattr(s)} Data={quoteattr(d)} URL={quoteattr(u)}/>"
                       for s, d, u in items)
        return web.Response(text=f"<CiscoIPPhoneResponse>{body}</CiscoIPPhoneResponse>", content_type="text/xml",
                            status=status)

    def _execute_error(self, number: int, text: str, status: int = 400) -> web.Response:
        return web.Response(text=f'<CiscoIPPhoneError Number="{number}"/>', content_type="text/xml", status=status,
                            headers={self.DETAIL_HEADER: text})

    async def _execute(self, request: web.Request) -> web.Response:
        if self.params["CISCO_XML_EXE_Enable"] != "Yes":
            return self._execute_error(4, "CISCO XML EXE Enable is No", 403)
        if self.params["CISCO_XML_EXE_Auth_Mode"] == "Local Credential" and \
                self._digest.check(request, {"user": self._passwords["user"]}) is None:
            return self._digest.challenge("CISCO XML EXE Auth Mode is Local Credential: digest with the user")
        form = await request.post()
        xml_text = form.get("XML")
        if not isinstance(xml_text, str):
            return self._execute_error(1, "form field XML is missing")
        try:
            root = ET.fromstring(xml_text)
        except ET.ParseError as exc:
            return self._execute_error(1, f"XML: not well-formed ({exc})")
        if root.tag != "CiscoIPPhoneExecute":
            return self._execute_error(1, f"XML: root is <{root.tag}>, expected <CiscoIPPhoneExecute>")
        results = []
        for item in root.findall("ExecuteItem"):
            url = item.get("URL", "")
            try:
                await self._execute_item(url)
                results.append(("0", "", url))
            except (BackendError, RemoteSdkError) as exc:
                results.append(("1", str(exc), url))
        if not results:
            return self._execute_error(1, "XML: no <ExecuteItem URL=...> element")
        return self._execute_response(results)

    async def _execute_item(self, url: str) -> None:
        b = self.backend
        scheme, _, arg = url.partition(":")
        if scheme == "Dial":
            await self.run_backend(b.dial, arg, 1)
            return
        calls = await self.run_backend(b.calls)
        ringing = next((c for c in calls if c.phase is CallPhase.INCOMING), None)
        current = next((c for c in calls if c.phase is not CallPhase.INCOMING), None)
        if scheme in ("Key", "SoftKey"):
            key = arg.lower()
            if key in ("answer", "speaker") and ringing is not None:
                await self.run_backend(b.answer, ringing.id)
            elif key in ("endcall", "speaker") and current is not None:
                await self.run_backend(b.hangup, current.id)
            elif key == "hold" and current is not None:
                await self.run_backend(b.hold, current.id)
            elif key == "resume" and current is not None:
                await self.run_backend(b.resume, current.id)
            elif key == "mute":
                await self.run_backend(b.set_mute, not b.muted)
            elif key.startswith("keypad") and current is not None:
                digit = {"star": "*", "pound": "#"}.get(key[6:], key[6:])
                await self.run_backend(b.send_dtmf, current.id, digit)
            else:
                raise RemoteSdkError("InvalidKey", f"{url}: nothing to do (no matching call, or an unknown key)")
            return
        raise RemoteSdkError("InvalidURL", f"{url}: supported are Dial:, Key:, SoftKey:")


def metadata() -> dict[str, Any]:
    """The OpenAPI 3.0 document ``/api/GetMetadata`` returns for this simulated load."""
    documented = ("/api/Config/v1/GetParams", "/api/Config/v1/SetParams", "/api/Call/v1/Dial", "/api/Call/v1/Answer",
                  "/api/Call/v1/Hangup", "/api/Serviceability/v1/GetStatusFile", "/api/GetMetadata")
    paths = {p: {"post": {"responses": {"200": {"description": "result"}}}} for p in documented}
    for p in _INFERRED_METHODS:
        paths[p] = {"post": {"responses": {"200": {"description": "result"}}, "x-sipgw-lab-inferred": True}}
    return {"openapi": "3.0.0", "info": {"title": "MPP Remote SDK (sipgw-lab simulator)", "version": "1"},
            "paths": paths, "x-events": ["CallStateChanged", "RegistrationStateChanged"]}
