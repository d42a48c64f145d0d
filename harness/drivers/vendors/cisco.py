"""Cisco MPP Remote SDK (firmware 11.3.1+; vendor-control-apis.md §1.1): the harness runs the WebSocket
server the phone connects out to (``Control_Server_URL``), sends one JSON request at a time
(``{"Request-URI": "/api/<Interface>/<version>/<Method>", ...}``) and reads unsolicited events.

Fallbacks while the phone is not connected (or on loads without the SDK): XML push ``POST /CGI/Execute``
(``Dial:``, ``Key:``) and the Direct Action URL ``GET /admin/status.xml`` (HTTP digest, admin) for identity,
registration and calls.

Only ``GetParams``/``SetParams``, ``Dial``/``Answer``/``Hangup``, ``GetStatusFile`` and ``GetMetadata`` are
in the vendor's published samples; every other method is used only when the load's ``GetMetadata`` lists
it, otherwise the operation is ``NotApplicable`` naming the missing method.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import replace
from typing import Any
from xml.sax.saxutils import quoteattr

import httpx
from aiohttp import WSMsgType, web

from harness.drivers.vendors import (
    DeviceUnreachable,
    Endpoint,
    LineStatus,
    Probe,
    VendorApiError,
    VendorCall,
    VendorIdentity,
)
from harness.protocols import CallState, ForwardingKind, ForwardingRule, MwiState, NotApplicable

VENDOR = "Cisco"
API = "Cisco MPP Remote SDK"
_STATES = {"Ringing": CallState.INCOMING, "Proceeding": CallState.CALLING, "Connected": CallState.CONFIRMED,
           "Hold": CallState.CONFIRMED, "Idle": CallState.DISCONNECTED}


class Session:
    """The control server for one phone."""

    def __init__(self, ep: Endpoint) -> None:
        self.ep = ep
        self.cond = threading.Condition()
        self.calls: dict[str, VendorCall] = {}
        self.order: list[str] = []
        self.events: list[dict[str, Any]] = []
        self.log: list[dict[str, Any]] = []
        self.methods: set[str] | None = None
        self.dialled_fallback: str | None = None
        self.reported: set[str] = set()  # handles ``calls`` has listed live (for the current call on each)
        self.fresh_ended: list[VendorCall] = []  # ended before ``calls`` listed them (see ended_calls)
        self.ended_count = 0
        self._responses: list[dict[str, Any]] = []
        self._ws: web.WebSocketResponse | None = None
        self._req_lock = threading.Lock()  # the phone takes one pending request at a time
        self.connections = 0
        auth = httpx.DigestAuth(ep.username or "admin", ep.password or "") if ep.password else None
        self.http = httpx.Client(base_url=ep.base_url, auth=auth, verify=ep.verify, timeout=ep.timeout,
                                 transport=ep.options.get("transport"))
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="cisco-remote-sdk", daemon=True)
        self._thread.start()
        self._runner: web.AppRunner | None = None
        host = str(ep.options.get("listen_host", "127.0.0.1"))
        port = int(ep.options.get("listen_port", 0))
        asyncio.run_coroutine_threadsafe(self._start(host, port), self._loop).result(10)

    async def _start(self, host: str, port: int) -> None:
        app = web.Application()
        app.add_routes([web.get("/", self._handler)])
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        self.url = f"ws://{host}:{self._runner.addresses[0][1]}/"

    async def _handler(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=20)
        await ws.prepare(request)
        with self.cond:
            self._ws = ws
            self.connections += 1
            self.cond.notify_all()
        async for msg in ws:
            if msg.type is not WSMsgType.TEXT:
                continue
            with contextlib.suppress(json.JSONDecodeError):
                self._on_message(json.loads(msg.data))
        with self.cond:
            if self._ws is ws:
                self._ws = None
            self.cond.notify_all()
        return ws

    def _on_message(self, data: dict[str, Any]) -> None:
        with self.cond:
            if data.get("type") == "event":
                self.events.append(data)
                if data.get("name") == "CallStateChanged":
                    self._apply(data.get("params") or {})
            else:
                self._responses.append(data)
            self.cond.notify_all()

    def _apply(self, p: dict[str, Any]) -> None:
        handle = f"{p.get('line', 1)}:{p.get('callId', 0)}"
        state = _STATES.get(str(p.get("state")), CallState.CONFIRMED)
        old = self.calls.get(handle)
        started = old.started if old is not None else None
        if old is None or old.state is CallState.DISCONNECTED:
            if state is CallState.DISCONNECTED and old is not None:
                return  # the end of a call already ended
            if old is not None:  # callIds are reused per line: a new call under an old id
                self.order.remove(handle)
            self.order.append(handle)
            self.reported.discard(handle)
            started = time.time()
        new = VendorCall(handle, state, "in" if p.get("direction") == "incoming" else "out",
                         str(p.get("remoteNumber", "")), int(p.get("line", 1)), bool(p.get("muted")),
                         p.get("state") == "Hold", bool(p.get("remoteHold")), p.get("sipCallId"), started=started)
        self.calls[handle] = new
        if state is CallState.DISCONNECTED:
            self._ended(new)

    def _ended(self, call: VendorCall) -> None:
        """A call ended (event, or gone from GetCalls); kept for ``ended_calls`` when no poll listed it live."""
        self.ended_count += 1
        if call.handle not in self.reported:
            self.fresh_ended.append(call)

    @property
    def connected(self) -> bool:
        return self._ws is not None and not self._ws.closed

    def wait_connected(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not self.connected:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise DeviceUnreachable(f"{API}: the phone did not connect to {self.url} within {timeout} s "
                                            "(is Control_Server_URL set to it, and is it reachable from the phone?)")
                self.cond.wait(min(left, 0.25))

    def request(self, uri: str, timeout: float | None = None, **params: Any) -> dict[str, Any]:
        timeout = timeout or self.ep.timeout
        with self._req_lock:
            ws = self._ws
            if ws is None or ws.closed:
                raise DeviceUnreachable(f"{API}: {uri}: the phone is not connected to {self.url}")
            with self.cond:
                index = len(self._responses)
            t0 = time.time()
            text = json.dumps({"Request-URI": uri, **params})
            try:
                asyncio.run_coroutine_threadsafe(ws.send_str(text), self._loop).result(timeout)
            except (ConnectionError, RuntimeError) as exc:
                raise DeviceUnreachable(f"{API}: {uri}: sending failed: {exc}") from exc
            deadline = time.monotonic() + timeout
            with self.cond:
                while len(self._responses) <= index:
                    left = deadline - time.monotonic()
                    if left <= 0 or not self.connected:
                        raise DeviceUnreachable(f"{API}: {uri}: no response within {timeout} s")
                    self.cond.wait(min(left, 0.25))
                resp = self._responses[index]
            self.log.append({"t": t0, "request": uri, "status": resp.get("status"),
                             "duration_s": round(time.time() - t0, 4)})
        if resp.get("status") != "Success":
            err = resp.get("error") or {}
            raise VendorApiError(f"{API} {uri}: {err.get('code', 'Failure')}: {err.get('message', '')}",
                                 code=err.get("code"), where=uri)
        return resp.get("result") or {}

    def close(self) -> None:
        async def stop() -> None:
            ws = self._ws
            if ws is not None and not ws.closed:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(ws.close(), 2)
            if self._runner is not None:
                await self._runner.cleanup()
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(stop(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self.http.close()


def connect(ep: Endpoint) -> Session:
    return Session(ep)


def close(s: Session) -> None:
    s.close()


def probe(s: Session) -> Probe:
    if not s.connected:
        return Probe(False, "not_connected", f"no WebSocket from the phone at {s.url}: set Control_Server_URL")
    return Probe(True)


def has(s: Session, uri: str) -> bool:
    if s.methods is None:
        doc = s.request("/api/GetMetadata").get("openapi") or {}
        s.methods = set((doc.get("paths") or {}).keys())
    return uri in s.methods


def _need(s: Session, uri: str, what: str) -> None:
    if not has(s, uri):
        raise NotApplicable(f"the {API} of this firmware offers no {what} ({uri} is not in GetMetadata)")


def params(s: Session, *names: str) -> dict[str, str]:
    return dict(s.request("/api/Config/v1/GetParams", params=list(names)).get("paramvalues") or {})


def set_params(s: Session, values: dict[str, str]) -> None:
    s.request("/api/Config/v1/SetParams", params=values)


def _http(s: Session, method: str, path: str, **kw: Any) -> httpx.Response:
    try:
        r = s.http.request(method, path, **kw)
    except httpx.HTTPError as exc:
        raise DeviceUnreachable(f"Cisco phone at {s.ep.base_url}: {method} {path} failed: {exc}") from exc
    if r.status_code == 401:
        raise VendorApiError(f"Cisco {path}: HTTP 401: the admin credentials were refused (HTTP digest)", code=401,
                             where=path)
    if r.status_code == 404:
        raise VendorApiError(f"Cisco {path}: HTTP 404: Enable Direct Action URL / CISCO XML EXE Enable is No",
                             code=404, where=path)
    if r.status_code >= 400:
        raise VendorApiError(f"Cisco {method} {path}: HTTP {r.status_code}: {r.text[:160]}", code=r.status_code,
                             where=path)
    return r


def status_xml(s: Session) -> dict[str, str]:
    """The Status tab as ``/admin/status.xml`` gives it (Direct Action URL, admin digest)."""
    root = ET.fromstring(_http(s, "GET", "/admin/status.xml").text)
    return {child.tag: (child.text or "") for child in root}


def execute(s: Session, *urls: str) -> None:
    """XML push: ``<CiscoIPPhoneExecute>`` with one ``ExecuteItem`` per URL (``Dial:1234``, ``Key:EndCall``)."""
    items = "".join(f"<ExecuteItem URL={quoteattr(u)}/>" for u in urls)
    r = _http(s, "POST", "/CGI/Execute", data={"XML": f"<CiscoIPPhoneExecute>{items}</CiscoIPPhoneExecute>"})
    root = ET.fromstring(r.text)
    if root.tag == "CiscoIPPhoneError":
        raise VendorApiError(f"Cisco CGI/Execute: CiscoIPPhoneError {root.get('Number')}", code=root.get("Number"),
                             where="/CGI/Execute")
    failed = [(i.get("URL"), i.get("Data")) for i in root.iter("ResponseItem") if i.get("Status") != "0"]
    if failed:
        raise VendorApiError(f"Cisco CGI/Execute: {failed}", code="ResponseItem", where="/CGI/Execute")


def identity(s: Session) -> VendorIdentity:
    if not s.connected:
        st = status_xml(s)
        model = st.get("Product_Name", "").removeprefix("CP-").removesuffix("-3PCC")
        return VendorIdentity(VENDOR, model, st.get("Software_Version", ""), st.get("MAC_Address", "").lower() or None,
                              st.get("Serial_Number") or None, source="status.xml")
    p = params(s, "Product_Name", "Software_Version", "MAC_Address")
    model = p.get("Product_Name", "").removeprefix("CP-").removesuffix("-3PCC")
    return VendorIdentity(VENDOR, model, p.get("Software_Version", ""), p.get("MAC_Address", "").lower() or None,
                          source="remote-sdk")


def lines(s: Session) -> list[LineStatus]:
    status = (s.request("/api/Serviceability/v1/GetStatusFile").get("status") or {}) if s.connected \
        else status_xml(s)
    out = []
    n = 1
    while f"Registration_State_{n}_" in status:
        value = status[f"Registration_State_{n}_"]
        ok = value == "Registered"
        out.append(LineStatus(n, ok, 200 if ok else None, 0, None, f"Registration_State_{n}_={value}"))
        n += 1
    return out


def calls(s: Session) -> list[VendorCall]:
    if not s.connected:  # status.xml: Call_<n>_State / Call_<n>_Peer_Phone
        st = status_xml(s)
        seen = []
        with s.cond:
            n = 1
            while f"Call_{n}_State" in st:
                handle, peer = f"1:{n - 1}", st.get(f"Call_{n}_Peer_Phone", "")
                known = s.calls.get(handle)
                if known is not None and known.state is not CallState.DISCONNECTED:
                    outgoing = known.direction == "out"
                else:  # a new call: ours if we just dialled that number, else it rings in
                    outgoing = s.dialled_fallback == peer
                    if outgoing:
                        s.dialled_fallback = None
                s._apply({"line": 1, "callId": n - 1, "state": st[f"Call_{n}_State"], "remoteNumber": peer,
                          "direction": "outgoing" if outgoing else "incoming"})
                seen.append(f"1:{n - 1}")
                n += 1
            for h, c in list(s.calls.items()):
                if h not in seen and c.state is not CallState.DISCONNECTED:
                    s.calls[h] = replace(c, state=CallState.DISCONNECTED)
            return [s.calls[h] for h in s.order if s.calls[h].state is not CallState.DISCONNECTED]
    if has(s, "/api/Call/v1/GetCalls"):
        got = s.request("/api/Call/v1/GetCalls").get("calls") or []
        with s.cond:
            seen = set()
            for c in got:
                s._apply(c)
                seen.add(f"{c.get('line', 1)}:{c.get('callId', 0)}")
            for h, c in list(s.calls.items()):
                if h not in seen and c.state is not CallState.DISCONNECTED:
                    s.calls[h] = replace(c, state=CallState.DISCONNECTED)
                    s._ended(s.calls[h])
    with s.cond:
        live = [s.calls[h] for h in s.order if s.calls[h].state is not CallState.DISCONNECTED]
        s.reported.update(c.handle for c in live)
        return live


def ended_calls(s: Session) -> list[VendorCall]:
    """Calls whose end (``CallStateChanged`` to Idle, or gone from ``GetCalls``) came before ``calls`` listed
    them live, each once; the Remote SDK's call events carry no SIP status."""
    with s.cond:
        out, s.fresh_ended = s.fresh_ended, []
        return out


def _lc(handle: str) -> dict[str, int]:
    line, _, cid = handle.partition(":")
    return {"line": int(line), "callId": int(cid)}


def dial(s: Session, number: str, line: int = 1) -> str | None:
    if not s.connected:
        execute(s, f"Dial:{number}")
        with s.cond:
            s.dialled_fallback = number
        return None
    with s.cond:
        ended_before = s.ended_count
    r = s.request("/api/Call/v1/Dial", line=line, number=number)
    handle = f"{r.get('line', line)}:{r.get('callId', 0)}"
    with s.cond:
        known = s.calls.get(handle)
        if known is not None and known.state is CallState.DISCONNECTED and s.ended_count > ended_before:
            return handle  # its events (placed, then ended) came before the Dial response
        if handle not in s.calls or s.calls[handle].state is CallState.DISCONNECTED:
            if handle in s.order:
                s.order.remove(handle)
            s.order.append(handle)
            s.calls[handle] = VendorCall(handle, CallState.CALLING, "out", number, line, started=time.time())
            s.reported.discard(handle)
    return handle


def answer(s: Session, handle: str) -> None:
    if not s.connected:
        execute(s, "Key:Answer")
        return
    s.request("/api/Call/v1/Answer", **_lc(handle))


def reject(s: Session, handle: str, code: int = 486) -> None:
    """Hanging up a ringing call declines it (the phone's Decline); the Remote SDK has no way to choose the
    status, so a rejection with any other status than a decline (603) is not applicable."""
    if code != 603:
        raise NotApplicable(f"the {API} cannot reject a ringing call with {code}: its Hangup declines the call "
                            "(603 Decline) and no method sets the status")
    s.request("/api/Call/v1/Hangup", **_lc(handle))


def hangup(s: Session, handle: str) -> None:
    if not s.connected:
        execute(s, "Key:EndCall")
        return
    s.request("/api/Call/v1/Hangup", **_lc(handle))


def hold(s: Session, handle: str) -> None:
    _need(s, "/api/Call/v1/Hold", "hold")
    s.request("/api/Call/v1/Hold", **_lc(handle))


def resume(s: Session, handle: str) -> None:
    _need(s, "/api/Call/v1/Resume", "resume")
    s.request("/api/Call/v1/Resume", **_lc(handle))


def set_mute(s: Session, handle: str, on: bool) -> None:
    _need(s, "/api/Call/v1/Mute", "mute")
    s.request("/api/Call/v1/Mute", **_lc(handle), mute=on)


def send_dtmf(s: Session, handle: str, digits: str) -> None:
    _need(s, "/api/Call/v1/SendDtmf", "DTMF")
    s.request("/api/Call/v1/SendDtmf", **_lc(handle), digits=digits)


def transfer(s: Session, handle: str, target: str) -> None:
    _need(s, "/api/Call/v1/Transfer", "transfer")
    s.request("/api/Call/v1/Transfer", **_lc(handle), target=target)


def reboot(s: Session) -> None:
    raise NotApplicable(f"the {API} has no reboot; use the Direct Action URL /admin/reboot")


def factory_reset(s: Session) -> None:
    raise NotApplicable(f"the {API} has no factory reset")


def dnd(s: Session) -> bool:
    return params(s, "DND_Setting").get("DND_Setting") == "Yes"


def mwi_lamp(s: Session, line: int = 1) -> bool:
    name = f"Message_Waiting_{line}_"
    if not s.connected:
        return status_xml(s).get(name) == "Yes"
    return params(s, name).get(name) == "Yes"


def mwi(s: Session, line: int = 1) -> MwiState:
    """The lamp only: ``Message_Waiting_<n>_`` (Remote SDK ``GetParams``, else ``/admin/status.xml``) says
    whether it is lit and nothing of how many messages there are, so ``new`` and ``old`` are 0."""
    lit = mwi_lamp(s, line)
    return MwiState(line - 1, lit, 0, 0, None, f"Message_Waiting_{line}_={'Yes' if lit else 'No'}", time.time())


def _fwd_line(line: int) -> None:
    if line != 1:
        raise NotApplicable(f"the {API} forwarding parameters (Cfwd_*) are the phone's, for line 1 only")


def set_forwarding(s: Session, line: int, rule: ForwardingRule) -> None:
    """The phone's own forwarding through ``SetParams``: ``Cfwd_All_Dest``, or ``Cfwd_No_Ans_Dest`` after
    ``Cfwd_No_Ans_Delay`` seconds (SPA-heritage names, checked against ``GetParams``)."""
    _fwd_line(line)
    if rule.kind is ForwardingKind.ALWAYS:
        set_params(s, {"Cfwd_All_Dest": rule.target if rule.enabled else ""})
    elif rule.kind is ForwardingKind.TIMEOUT:
        set_params(s, {"Cfwd_No_Ans_Dest": rule.target if rule.enabled else "",
                       "Cfwd_No_Ans_Delay": str(int(rule.timeout_s or 20))})
    else:
        raise NotApplicable(f"sipgw-lab drives always and timeout forwarding over the {API}, not {rule.kind.value}")


def clear_forwarding(s: Session, line: int, kind: ForwardingKind | None = None) -> None:
    _fwd_line(line)
    names = {ForwardingKind.ALWAYS: "Cfwd_All_Dest", ForwardingKind.TIMEOUT: "Cfwd_No_Ans_Dest"}
    set_params(s, {n: "" for k, n in names.items() if kind is None or k is kind})


def forwarding(s: Session, line: int) -> list[ForwardingRule]:
    _fwd_line(line)
    p = params(s, "Cfwd_All_Dest", "Cfwd_No_Ans_Dest", "Cfwd_No_Ans_Delay")
    out = []
    if p.get("Cfwd_All_Dest"):
        out.append(ForwardingRule(ForwardingKind.ALWAYS, p["Cfwd_All_Dest"], True, None, 0))
    if p.get("Cfwd_No_Ans_Dest"):
        delay = p.get("Cfwd_No_Ans_Delay", "")
        out.append(ForwardingRule(ForwardingKind.TIMEOUT, p["Cfwd_No_Ans_Dest"], True,
                                  int(delay) if delay.isdigit() else None, 0))
    return out


def bootstrap_params(control_url: str) -> dict[str, str]:
    return {"Control_Server_URL": control_url}
