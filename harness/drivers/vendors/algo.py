"""Algo RESTful API (SIP speakers, paging adapters, intercoms; firmware 3.3+; vendor-control-apis.md §9).

Standard authentication is HMAC-SHA256 over ``METHOD:URI[:CONTENT_MD5:CONTENT_TYPE]:TIMESTAMP:NONCE``
with the API password, the timestamp taken from the ``Date`` header. The device refuses a ``Date`` more
than 30 s from its own clock: ``clock_skew_s`` (endpoint option) corrects for a device whose clock is known
to be off, and a 401 names the skew as the likely cause.

An Algo device has one call at a time and its API has no call ids: the session numbers the calls it sees
(``Call Status`` leaving ``Idle`` starts a new one).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from email.utils import formatdate
from typing import Any

from harness.drivers.vendors import Endpoint, LineStatus, Probe, VendorApiError, VendorCall, VendorIdentity
from harness.drivers.vendors._http import HttpSession
from harness.protocols import CallState, NotApplicable

VENDOR = "Algo"
API = "Algo RESTful API"
MAX_SKEW_S = 30.0

_STATES = {"Ringing": CallState.INCOMING, "Calling": CallState.CALLING, "Connected": CallState.CONFIRMED,
           "Paging": CallState.CONFIRMED}


def authorization(password: str, method: str, uri: str, timestamp: int, nonce: str, *, content_md5: str = "",
                  content_type: str = "") -> str:
    text = f"{method}:{uri}:{content_md5}:{content_type}:{timestamp}:{nonce}" if content_md5 \
        else f"{method}:{uri}:{timestamp}:{nonce}"
    return f"hmac admin:{nonce}:{hmac.new(password.encode(), text.encode(), hashlib.sha256).hexdigest()}"


class Session(HttpSession):
    def __init__(self, ep: Endpoint) -> None:
        super().__init__(ep, vendor=VENDOR)
        self.skew_s = float(ep.options.get("clock_skew_s", 0.0))
        self.auth_mode = str(ep.options.get("auth", "standard"))
        self.counter = 0
        self.current: VendorCall | None = None
        self.dialled: str | None = None


def connect(ep: Endpoint) -> Session:
    if ep.options.get("auth", "standard") not in ("standard", "basic", "none"):
        raise ValueError(f"algo: option auth={ep.options.get('auth')!r}; use standard, basic or none")
    return Session(ep)


def close(s: Session) -> None:
    s.close()


def signed(s: Session, method: str, path: str, body: Any = None) -> Any:
    """Send one request with the configured authentication; the JSON answer, or VendorApiError."""
    headers: dict[str, str] = {}
    content = b""
    if body is not None:
        content = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    password = s.ep.password or ""
    if s.auth_mode == "standard" and password:
        now = int(time.time() + s.skew_s)
        nonce = secrets.token_hex(8)
        md5 = hashlib.md5(content).hexdigest() if content else ""
        headers["Date"] = formatdate(now, usegmt=True)
        if md5:
            headers["Content-MD5"] = md5
        headers["Authorization"] = authorization(password, method, path, now, nonce, content_md5=md5,
                                                 content_type=headers.get("Content-Type", "") if md5 else "")
    elif s.auth_mode == "basic":
        import base64

        headers["Authorization"] = "Basic " + base64.b64encode(f"admin:{password}".encode()).decode()
    r = s.request(method, path, content=content or None, headers=headers)
    if r.status_code == 401:
        raise VendorApiError(f"{API} {path}: HTTP 401: the API password was refused, or the request's Date is "
                             f"more than {MAX_SKEW_S:.0f} s from the device clock (check NTP; clock_skew_s)",
                             code=401, where=path)
    if r.status_code == 404 and path.startswith("/api/info/"):
        raise VendorApiError(f"{API} {path}: HTTP 404: the REST API is off (admin.web.api = 0)", code=404,
                             where=path)
    if r.status_code >= 400:
        raise VendorApiError(f"{API} {method} {path}: HTTP {r.status_code}: {r.text[:160]}", code=r.status_code,
                             where=path)
    try:
        return r.json()
    except ValueError:
        raise VendorApiError(f"{API} {path}: the answer is not JSON: {r.text[:120]!r}", code=r.status_code,
                             where=path) from None


def probe(s: Session) -> Probe:
    try:
        signed(s, "GET", "/api/info/about")
    except VendorApiError as exc:
        return Probe(False, {404: "api_disabled", 401: "auth"}.get(exc.code, "unexpected"), str(exc))  # type: ignore[call-overload]
    return Probe(True)


def identity(s: Session) -> VendorIdentity:
    d = signed(s, "GET", "/api/info/about")
    mac = str(d.get("MAC Address", "")).lower().replace(":", "") or None
    return VendorIdentity(VENDOR, str(d.get("Product Name", "")), str(d.get("Firmware Version", "")), mac)


def lines(s: Session) -> list[LineStatus]:
    d = signed(s, "GET", "/api/info/status")
    out = []
    for i, part in enumerate(p for p in str(d.get("SIP Registration", "")).split(";") if p.strip()):
        label, _, result = part.rpartition(",")
        ok = result.strip() == "Successful"
        out.append(LineStatus(i + 1, ok, 200 if ok else None, 0, label.strip(), f"SIP Registration: {part.strip()}"))
    return out


def calls(s: Session) -> list[VendorCall]:
    status = str(signed(s, "GET", "/api/info/status").get("Call Status", "Idle"))
    if status == "Idle":
        s.current = None
        return []
    state = _STATES.get(status, CallState.CONFIRMED)
    if s.current is None:
        s.counter += 1
        direction = "out" if s.dialled is not None else "in"
        s.current = VendorCall(f"algo-{s.counter}", state, direction, s.dialled or "")
        s.dialled = None
    else:
        s.current = VendorCall(s.current.handle, state, s.current.direction, s.current.remote)
    return [s.current]


def dial(s: Session, number: str, line: int = 1, *, page: bool = False, tone: str = "") -> str | None:
    s.dialled = number
    if page:
        signed(s, "POST", "/api/controls/call/page", {"extension": number})
    else:
        signed(s, "POST", "/api/controls/call/start", {"extension": number, "tone": tone})
    return None


def answer(s: Session, handle: str) -> None:
    """Nothing to send: the device answers SIP calls itself (auto-answer); the driver waits until the
    status read back says Connected."""


def reject(s: Session, handle: str, code: int = 486) -> None:
    raise NotApplicable(f"the {API} cannot reject a call: the device auto-answers")


def hangup(s: Session, handle: str) -> None:
    signed(s, "POST", "/api/controls/call/stop", {})


def hold(s: Session, handle: str) -> None:
    raise NotApplicable(f"the {API} has no hold")


resume = hold


def set_mute(s: Session, handle: str, on: bool) -> None:
    raise NotApplicable(f"the {API} has no microphone mute")


def send_dtmf(s: Session, handle: str, digits: str) -> None:
    raise NotApplicable(f"the {API} cannot send DTMF")


def transfer(s: Session, handle: str, target: str) -> None:
    raise NotApplicable(f"the {API} has no transfer")


def reboot(s: Session) -> None:
    signed(s, "POST", "/api/controls/reboot", {})


def factory_reset(s: Session) -> None:
    signed(s, "POST", "/api/settings/action/restore", {})  # turns the REST API off, as on the device


def bootstrap_params(password: str) -> dict[str, str]:
    return {"admin.web.api": "1", "admin.web.api.password": password}
