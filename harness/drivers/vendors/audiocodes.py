"""AudioCodes MediaPack / Mediant analog gateways: the REST status API (7.x; vendor-control-apis.md §5.2).

An ATA has no call-control API. Calls on its FXS ports are made and answered by what hangs off the port:
in a lab, an analog line simulator (off-hook, on-hook, DTMF dialling). The session takes that actuator as
the endpoint option ``line_side`` (an object with ``offhook(port)``, ``onhook(port)``, ``dial(port,
digits)``); without one, call operations are ``NotApplicable`` and say so. The REST API reads the ports back.
"""

from __future__ import annotations

from typing import Any

from harness.drivers.vendors import Endpoint, LineStatus, Probe, VendorApiError, VendorCall, VendorIdentity
from harness.drivers.vendors._http import HttpSession
from harness.protocols import CallState, NotApplicable

VENDOR = "AudioCodes"
API = "AudioCodes REST API"
_STATES = {"ringing": CallState.INCOMING, "dialing": CallState.CALLING, "connected": CallState.CONFIRMED,
           "hold": CallState.CONFIRMED}


class Session(HttpSession):
    def __init__(self, ep: Endpoint) -> None:
        super().__init__(ep, auth=(ep.username or "Admin", ep.password or ""), vendor=VENDOR)
        self.line_side: Any = ep.options.get("line_side")
        self.counter: dict[int, int] = {}
        self.current: dict[int, VendorCall] = {}
        self.dialled: dict[int, str] = {}


def connect(ep: Endpoint) -> Session:
    return Session(ep)


def close(s: Session) -> None:
    s.close()


def _json(s: Session, method: str, path: str, body: Any = None) -> Any:
    r = s.request(method, path, json=body) if body is not None else s.request(method, path)
    if r.status_code == 401:
        raise VendorApiError(f"{API} {path}: HTTP 401: the credentials were refused", code=401, where=path)
    if r.status_code >= 400:
        try:
            msg = r.json().get("description", r.text)
        except (ValueError, AttributeError):
            msg = r.text
        raise VendorApiError(f"{API} {method} {path}: HTTP {r.status_code}: {msg[:160]}", code=r.status_code,
                             where=path)
    return r.json()


def probe(s: Session) -> Probe:
    r = s.request("GET", "/api/")
    if r.status_code == 200:
        return Probe(True)
    return Probe(False, "auth" if r.status_code == 401 else "unexpected", f"HTTP {r.status_code}")


def identity(s: Session) -> VendorIdentity:
    d = _json(s, "GET", "/api/v1/status")
    return VendorIdentity(VENDOR, str(d.get("productType", "")), str(d.get("versionID", "")),
                          str(d.get("macAddress", "")).lower() or None, d.get("serialNumber") or None)


def _ports(s: Session) -> list[dict[str, Any]]:
    return list(_json(s, "GET", "/api/v1/status/ports").get("ports") or [])


def lines(s: Session) -> list[LineStatus]:
    out = []
    for p in _ports(s):
        ok = p.get("registration") == "Registered"
        out.append(LineStatus(int(p["port"]), ok, 200 if ok else None, 0, p.get("phoneNumber"),
                              f"port {p['port']}: {p.get('registration')}"))
    return out


def calls(s: Session) -> list[VendorCall]:
    out = []
    for p in _ports(s):
        port = int(p["port"])
        state = str(p.get("callState", "idle"))
        if state == "idle":
            s.current.pop(port, None)
            continue
        cur = s.current.get(port)
        if cur is None:
            s.counter[port] = s.counter.get(port, 0) + 1
            direction = "out" if port in s.dialled else "in"
            cur = VendorCall(f"port{port}-{s.counter[port]}", CallState.CALLING, direction, line=port)
            s.dialled.pop(port, None)
        cur = VendorCall(cur.handle, _STATES.get(state, CallState.CONFIRMED), cur.direction,
                         str(p.get("remoteNumber", "")), port, False, state == "hold", False,
                         p.get("sipCallId") or None)
        s.current[port] = cur
        out.append(cur)
    return out


def _side(s: Session, what: str) -> Any:
    if s.line_side is None:
        raise NotApplicable(f"an analog port cannot {what} through the {API}: configure an analog line simulator "
                            "(driver option line_side) or use the sip-side/manual driver")
    return s.line_side


def _port(handle: str) -> int:
    return int(handle.removeprefix("port").split("-", 1)[0])


def dial(s: Session, number: str, line: int = 1) -> str | None:
    side = _side(s, "dial")
    s.dialled[line] = number
    side.offhook(line)
    side.dial(line, number)
    return None


def answer(s: Session, handle: str) -> None:
    _side(s, "answer").offhook(_port(handle))


def reject(s: Session, handle: str, code: int = 486) -> None:
    raise NotApplicable("an analog phone cannot reject a ringing call with a chosen SIP status")


def hangup(s: Session, handle: str) -> None:
    _side(s, "hang up").onhook(_port(handle))


def hold(s: Session, handle: str) -> None:
    raise NotApplicable("hold on an FXS port needs a hook flash, which the line simulator does not model")


resume = hold


def set_mute(s: Session, handle: str, on: bool) -> None:
    raise NotApplicable("an analog port has no mute")


def send_dtmf(s: Session, handle: str, digits: str) -> None:
    _side(s, "send DTMF").dial(_port(handle), digits)


def transfer(s: Session, handle: str, target: str) -> None:
    raise NotApplicable("transfer from an FXS port needs a hook flash, which the line simulator does not model")


def reboot(s: Session) -> None:
    _json(s, "POST", "/api/v1/actions/reset", {"saveConfiguration": True, "gracefulTimeout": 0})


def factory_reset(s: Session) -> None:
    raise NotApplicable(f"the {API} has no factory reset")
