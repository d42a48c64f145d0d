"""Poly UC Software REST API (VVX, Trio 8500/8800, Edge E): HTTP Basic auth, bodies ``{"data": {...}}``,
answers ``{"Status": "2000", "data": ...}`` (vendor-control-apis.md §3.1).

``dial`` only acknowledges: the new call's ``CallHandle`` is read from ``callStatus`` by the driver.
Status codes in the body become :class:`VendorApiError` with a sentence that says what they mean.
"""

from __future__ import annotations

import json
import time
from typing import Any

from harness.drivers.vendors import (
    DefaultPasswordRefused,
    DeviceBusy,
    Endpoint,
    InvalidParameters,
    LineNotRegistered,
    LineStatus,
    NoSuchCall,
    NoSuchLine,
    NotAllowed,
    Probe,
    VendorApiError,
    VendorCall,
    VendorIdentity,
)
from harness.drivers.vendors._http import HttpSession
from harness.protocols import CallState, ForwardingKind, ForwardingRule, MwiState, NotApplicable

VENDOR = "Poly"
API = "Poly UC Software REST API"

STATUS_MEANING = {
    "4000": "invalid parameters",
    "4001": "the device is busy",
    "4002": "the line is not registered",
    "4003": "operation not allowed in this state",
    "4004": "operation not supported",
    "4005": "the line does not exist",
    "4007": "the call does not exist",
    "4009": "input size limit exceeded",
    "4010": "default password not allowed: change the factory admin password first",
    "5000": "the device failed the operation",
}

ERRORS: dict[str, type[VendorApiError]] = {
    "4000": InvalidParameters, "4001": DeviceBusy, "4002": LineNotRegistered, "4003": NotAllowed,
    "4005": NoSuchLine, "4007": NoSuchCall, "4010": DefaultPasswordRefused,
}

_STATES = {
    "Offering": CallState.INCOMING, "Dialing": CallState.CALLING, "RingBack": CallState.EARLY,
    "Connected": CallState.CONFIRMED, "CallHold": CallState.CONFIRMED, "CallHeld": CallState.CONFIRMED,
    "Setup": CallState.CALLING, "Proceeding": CallState.CALLING,
}


class Session(HttpSession):
    #: (number dialled, placed-log length before, give up at monotonic time): a dial whose call no
    #: ``callStatus`` listed yet, looked for in the placed call log (see ended_calls)
    pending: tuple[str, int, float] | None = None
    log_entries = 0
    #: while the phone forwards calls itself: how many missed-log entries were accounted for, the incoming calls
    #: listed live (handle -> (remote, answered)) and the remotes of those that left unanswered (see ended_calls)
    missed_seen: int | None = None
    live_in: dict[str, tuple[str, bool]]
    unanswered: list[str]


def connect(ep: Endpoint) -> Session:
    auth = (ep.username or "Polycom", ep.password or "")
    return Session(ep, auth=auth, vendor=VENDOR)


def close(s: Session) -> None:
    s.close()


def _call(s: Session, method: str, path: str, data: Any = None, *, what: str) -> Any:
    body = None if data is None else {"data": data}
    r = s.request(method, path, json=body) if body is not None else s.request(method, path)
    if r.status_code == 401:
        raise VendorApiError(f"{API} {path}: HTTP 401, the admin credentials were refused", code=401, where=path)
    if r.status_code == 404 and not r.content.strip().startswith(b"{"):
        raise VendorApiError(f"{API} {path}: HTTP 404: the REST API is off (apps.restapi.enabled=0) or this "
                             "firmware lacks the path", code=404, where=path)
    if r.status_code == 503:
        raise VendorApiError(f"{API} {path}: HTTP 503, the device is restarting", code=503, where=path)
    try:
        doc = r.json()
    except (json.JSONDecodeError, ValueError):
        raise VendorApiError(f"{API} {path}: HTTP {r.status_code} with a body that is not JSON: {r.text[:120]!r}",
                             code=r.status_code, where=path) from None
    status = str(doc.get("Status", "")) if isinstance(doc, dict) else ""
    if status == "4004":
        raise NotApplicable(f"{API}: {what} is not supported by this device or firmware (Status 4004)")
    if status != "2000":
        meaning = STATUS_MEANING.get(status, "unknown status")
        raise ERRORS.get(status, VendorApiError)(f"{API}: {what} answered Status {status or '(none)'} ({meaning})",
                                                 code=status, where=path)
    return doc.get("data")


def probe(s: Session) -> Probe:
    r = s.request("GET", "/api/v2/mgmt/device/info")
    if r.status_code == 404:
        return Probe(False, "api_disabled", "HTTP 404: apps.restapi.enabled is 0 (the factory default)")
    if r.status_code == 401:
        return Probe(False, "auth", "HTTP 401: the admin password was refused")
    if r.status_code == 503:
        return Probe(False, "restarting", "HTTP 503: the device is restarting")
    try:
        status = str(r.json().get("Status"))
    except (ValueError, AttributeError):
        return Probe(False, "unexpected", f"HTTP {r.status_code}: {r.text[:120]!r}")
    if status == "4010":
        return Probe(False, "default_password", "Status 4010: the admin password is still the factory default")
    return Probe(status == "2000", None if status == "2000" else "unexpected", f"Status {status}")


def identity(s: Session) -> VendorIdentity:
    d = _call(s, "GET", "/api/v2/mgmt/device/info", what="device/info")
    mac = str(d.get("MACAddress", "")).lower() or None
    fw = str((d.get("Firmware") or {}).get("Application", "")).split(" ")[0]
    return VendorIdentity(VENDOR, str(d.get("ModelNumber", "")), fw, mac, d.get("SerialNumber"))


def lines(s: Session) -> list[LineStatus]:
    data = _call(s, "GET", "/api/v1/webCallControl/sipStatus", what="sipStatus")
    out = []
    for u in (data or {}).get("User", []):
        reg = next((e for e in u.get("Events", []) if e.get("Type") == "Register"), {})
        code = str(reg.get("StatusCode", ""))
        out.append(LineStatus(int(u.get("LineNumber", len(out) + 1)), reg.get("RegistrationState") == "Registered",
                              int(code) if code.isdigit() else None, int(reg.get("Expires") or 0), u.get("User"),
                              "sipStatus"))
    return out


def mwi(s: Session, line: int = 1) -> MwiState:
    """The message-waiting lamp and counts the phone shows for ``line`` (``lineInfo``)."""
    data = _call(s, "GET", "/api/v2/mgmt/lineInfo", what="lineInfo") or []
    entry = next((e for e in data if str(e.get("LineNumber")) == str(line)), None)
    if entry is None:
        raise NoSuchLine(f"{API}: lineInfo has no line {line}", code="4005", where="lineInfo")
    if "MessageWaiting" not in entry:
        raise NotApplicable(f"the {API} lineInfo of this firmware reports no message-waiting state")
    raw = ", ".join(f"{k}={entry.get(k)}" for k in ("MessageWaiting", "NewVoiceMessages", "OldVoiceMessages"))
    return MwiState(line - 1, str(entry["MessageWaiting"]).lower() == "true", _int(entry.get("NewVoiceMessages")),
                    _int(entry.get("OldVoiceMessages")), str(entry.get("SIPAddress") or ""), raw, time.time())


def _int(value: Any) -> int:
    return int(value) if str(value or "").isdigit() else 0


def calls(s: Session) -> list[VendorCall]:
    data = _call(s, "GET", "/api/v2/webCallControl/callStatus", what="callStatus") or []
    pending = s.pending
    if pending is not None and any(c.get("Type") != "Incoming" and _same_number(c.get("RemotePartyNumber"),
                                                                                 pending[0]) for c in data):
        s.pending = None  # the dialled call is listed live
    if s.missed_seen is not None:  # the incoming calls listed live, for ended_calls
        now = {str(c["CallHandle"]): (str(c.get("RemotePartyNumber", "")), c.get("CallState") != "Offering")
               for c in data if c.get("Type") == "Incoming"}
        for handle, (remote, answered) in list(s.live_in.items()):
            if handle not in now:
                del s.live_in[handle]
                if not answered:
                    s.unanswered.append(remote)
        for handle, (remote, answered) in now.items():
            s.live_in[handle] = (remote, answered or s.live_in.get(handle, ("", False))[1])
    out = []
    for c in data:
        state = c.get("CallState", "")
        media = c.get("Media Direction", "sendrecv")
        out.append(VendorCall(
            handle=str(c["CallHandle"]), state=_STATES.get(state, CallState.CONFIRMED),
            direction="in" if c.get("Type") == "Incoming" else "out", remote=str(c.get("RemotePartyNumber", "")),
            line=int(c.get("LineID") or 1), muted=c.get("Muted") == "1",
            local_hold=state == "CallHold" or media == "inactive",
            remote_hold=state == "CallHeld" or media == "inactive"))
    return out


def placed_log(s: Session) -> list[dict[str, Any]]:
    """The placed-calls log (``GET /api/v1/mgmt/callLogs/placed``), oldest first."""
    return list(_call(s, "GET", "/api/v1/mgmt/callLogs/placed", what="callLogs/placed") or [])


def _same_number(a: Any, b: str) -> bool:
    return str(a or "").removeprefix("sip:").split("@", 1)[0].lstrip("+") == b.removeprefix("sip:").split("@", 1)[0] \
        .lstrip("+")


def dial(s: Session, number: str, line: int = 1, *, log_wait_s: float = 8.0) -> str | None:
    kind = "SIP" if "@" in number or number.startswith("sip:") else "TEL"
    try:
        before: int | None = len(placed_log(s))
    except (VendorApiError, NotApplicable):  # a firmware without the call log: calls are seen live only
        before = None
    _call(s, "POST", "/api/v1/callctrl/dial", {"Dest": number, "Line": str(line), "Type": kind}, what="dial")
    if before is not None:
        s.pending = (number, before, time.monotonic() + log_wait_s)
    return None  # only an acknowledgement: the CallHandle appears in callStatus


def ended_calls(s: Session) -> list[VendorCall]:
    """A dialled call that ended before ``callStatus`` listed it (the gateway answered at once with a final
    response): its entry in the placed call log, which has no SIP status and no CallHandle. While the phone
    forwards calls itself, an incoming call it redirected at once: its missed-log entry that no unanswered call
    listed live accounts for (read while no incoming call is listed, so a live call's entry is matched first)."""
    return _ended_missed(s) + _ended_placed(s)


def _ended_missed(s: Session) -> list[VendorCall]:
    if s.missed_seen is None or s.live_in:
        return []
    entries = list(_call(s, "GET", "/api/v1/mgmt/callLogs/missed", what="callLogs/missed") or [])
    out = []
    for i, e in enumerate(entries[s.missed_seen:], s.missed_seen):
        remote = str(e.get("RemotePartyNumber", ""))
        match = next((r for r in s.unanswered if _same_number(r, remote)), None)
        if match is not None:
            s.unanswered.remove(match)
            continue
        out.append(VendorCall(f"missed{i}", CallState.DISCONNECTED, "in", remote, int(e.get("LineNumber") or 1)))
    s.missed_seen = len(entries)
    return out


def _ended_placed(s: Session) -> list[VendorCall]:
    pending = s.pending
    if pending is None:
        return []
    number, before, give_up = pending
    entries = placed_log(s)
    for i, e in enumerate(entries[before:], before):
        if _same_number(e.get("RemotePartyNumber"), number):
            s.pending = None
            return [VendorCall(f"log{i}", CallState.DISCONNECTED, "out", str(e.get("RemotePartyNumber", "")),
                               int(e.get("LineNumber") or 1))]
    if time.monotonic() > give_up:
        s.pending = None
    return []


def _ref(s: Session, action: str, handle: str, **extra: str) -> None:
    _call(s, "POST", f"/api/v1/callctrl/{action}", {"Ref": handle, **extra}, what=action)


def answer(s: Session, handle: str) -> None:
    _ref(s, "answerCall", handle)


def reject(s: Session, handle: str, code: int = 486) -> None:
    _ref(s, "rejectCall", handle)  # the phone sends 486 Busy Here (RFC 3261 §21.4.24); no code choice


def hangup(s: Session, handle: str) -> None:
    _ref(s, "endCall", handle)


def hold(s: Session, handle: str) -> None:
    _ref(s, "holdCall", handle)


def resume(s: Session, handle: str) -> None:
    _ref(s, "resumeCall", handle)


def set_mute(s: Session, handle: str, on: bool) -> None:
    _call(s, "POST", "/api/v1/callctrl/mute", {"state": "1" if on else "0"}, what="mute")  # device-wide mute


def send_dtmf(s: Session, handle: str, digits: str) -> None:
    _call(s, "POST", "/api/v1/callctrl/sendDTMF", {"digits": digits}, what="sendDTMF")  # to the active call


def transfer(s: Session, handle: str, target: str) -> None:
    _ref(s, "transferCall", handle, TransferDest=target)  # always blind (REFER, RFC 3515)


def config_get(s: Session, *names: str) -> dict[str, str]:
    data = _call(s, "POST", "/api/v1/mgmt/config/get", list(names), what="config/get") or {}
    return {k: str((v or {}).get("Value", "")) for k, v in data.items()}


def config_set(s: Session, params: dict[str, str]) -> None:
    _call(s, "POST", "/api/v1/mgmt/config/set", {k: str(v) for k, v in params.items()}, what="config/set")


def _watch_missed(s: Session, on: bool) -> None:
    if not on:
        s.missed_seen = None
        return
    if s.missed_seen is None:
        s.missed_seen = len(list(_call(s, "GET", "/api/v1/mgmt/callLogs/missed", what="callLogs/missed") or []))
        s.live_in, s.unanswered = {}, []


def set_forwarding(s: Session, line: int, rule: ForwardingRule) -> None:
    """The phone's own forwarding through ``config/set``: ``divert.fwd.<n>.enabled`` to ``divert.<n>.contact``,
    or ``divert.noanswer.<n>.*`` with its timeout in seconds."""
    on = "1" if rule.enabled else "0"
    if rule.kind is ForwardingKind.ALWAYS:
        config_set(s, {f"divert.fwd.{line}.enabled": on, f"divert.{line}.contact": rule.target})
    elif rule.kind is ForwardingKind.TIMEOUT:
        config_set(s, {f"divert.noanswer.{line}.enabled": on, f"divert.noanswer.{line}.contact": rule.target,
                       f"divert.noanswer.{line}.timeout": str(int(rule.timeout_s or 20))})
    else:
        raise NotApplicable(f"sipgw-lab drives always and timeout forwarding over the {API}, not {rule.kind.value}")
    _watch_missed(s, bool(forwarding(s, line)))


def clear_forwarding(s: Session, line: int, kind: ForwardingKind | None = None) -> None:
    params = {}
    if kind in (None, ForwardingKind.ALWAYS):
        params[f"divert.fwd.{line}.enabled"] = "0"
    if kind in (None, ForwardingKind.TIMEOUT):
        params[f"divert.noanswer.{line}.enabled"] = "0"
    if params:
        config_set(s, params)
    _watch_missed(s, bool(forwarding(s, line)))


def forwarding(s: Session, line: int) -> list[ForwardingRule]:
    """The forwarding configuration read back (``config/get``)."""
    names = [f"divert.fwd.{line}.enabled", f"divert.{line}.contact", f"divert.noanswer.{line}.enabled",
             f"divert.noanswer.{line}.contact", f"divert.noanswer.{line}.timeout"]
    c = config_get(s, *names)
    out = []
    if c.get(names[0]) == "1" and c.get(names[1]):
        out.append(ForwardingRule(ForwardingKind.ALWAYS, c[names[1]], True, None, line - 1))
    if c.get(names[2]) == "1" and c.get(names[3]):
        raw = c.get(names[4], "")
        out.append(ForwardingRule(ForwardingKind.TIMEOUT, c[names[3]], True, int(raw) if raw.isdigit() else None,
                                  line - 1))
    return out


def reboot(s: Session) -> None:
    _call(s, "POST", "/api/v1/mgmt/safeReboot", {}, what="safeReboot")  # waits for calls to end


def factory_reset(s: Session) -> None:
    _call(s, "POST", "/api/v1/mgmt/factoryReset", {}, what="factoryReset")


def update_configuration(s: Session) -> None:
    _call(s, "POST", "/api/v1/mgmt/updateConfiguration", {}, what="updateConfiguration")


def bootstrap_params(password: str) -> dict[str, str]:
    """What a provisioning file (or the phone's menu) must set after a factory reset for this API to work."""
    return {"apps.restapi.enabled": "1", "device.auth.localAdminPassword": password}


def not_offered(what: str) -> NotApplicable:
    return NotApplicable(f"the {API} offers no {what}")
