"""Yealink Action URI (T2x/T3x/T4x/T5x; vendor admin guides, vendor-control-apis.md §4).

Control: ``GET /servlet?key=...`` (``ASW:<id>``, ``CANCEL:<id>``, ``HOLD:<id>``, ``UNHOLD:<id>``, ``MUTE``,
digits, ``F_TRANSFER``), ``number=<n>`` to dial; read-back ``phonecfg=get&accounts=1&fw=1``. The phone has no
call-status read-back: the session runs the **Action URL listener** the phone calls on each event
(``incoming_call``, ``outgoing_call``, ``call_established``, ``call_terminated``, ``hold``, ``unhold``,
``held``, ``unheld``, ``mute``, ``unmute``) and keeps the calls from those callbacks, in the order the phone sent them.

Before the API works the phone must allow the harness's address (``features.action_uri_limit_ip``) and a
person must accept "Allow Remote Control?" once (unless ``features.show_action_uri_option=0``): that is the
bootstrap step (:mod:`harness.bootstrap`), reported by :func:`probe` as ``not_allowed`` / ``confirm_on_device``.
"""

from __future__ import annotations

import contextlib
import threading
import time
import urllib.parse
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from harness.drivers.vendors import Endpoint, LineStatus, Probe, VendorApiError, VendorCall, VendorIdentity
from harness.drivers.vendors._http import HttpSession
from harness.protocols import CallState, ForwardingKind, ForwardingRule, MwiState, NotApplicable

VENDOR = "Yealink"
API = "Yealink Action URI"
EVENTS = ("incoming_call", "outgoing_call", "call_established", "call_terminated", "hold", "unhold", "held",
          "unheld", "mute", "unmute")


class Session(HttpSession):
    def __init__(self, ep: Endpoint) -> None:
        super().__init__(ep, auth=(ep.username or "admin", ep.password or ""), vendor=VENDOR)
        self.cond = threading.Condition()
        self.calls: dict[str, VendorCall] = {}
        self.order: list[str] = []
        self.callbacks: list[tuple[float, str, dict[str, str]]] = []
        self.muted = False
        self.reported: set[str] = set()  # call ids ``calls`` has listed live
        self.fresh_ended: list[VendorCall] = []  # ended before ``calls`` listed them (see ended_calls)
        host = str(ep.options.get("listen_host", "127.0.0.1"))
        self.listener = ThreadingHTTPServer((host, int(ep.options.get("listen_port", 0))), _handler(self))
        self.listener.daemon_threads = True
        self._thread = threading.Thread(target=self.listener.serve_forever, name="yealink-action-url", daemon=True)
        self._thread.start()
        self.listen_url = f"http://{host}:{self.listener.server_address[1]}"

    def on_callback(self, event: str, q: dict[str, str]) -> None:
        with self.cond:
            self.callbacks.append((time.time(), event, q))
            cid = q.get("id", "")
            if event in ("mute", "unmute"):
                self.muted = event == "mute"
                for k, c in self.calls.items():
                    self.calls[k] = replace(c, muted=self.muted)
            elif cid:
                old = self.calls.get(cid)
                if old is not None and old.state is CallState.DISCONNECTED and event in ("incoming_call",
                                                                                        "outgoing_call"):
                    old = None  # $call_id values are reused: a new call under an old id
                    self.order.remove(cid)
                if old is None:
                    old = VendorCall(cid, CallState.CALLING, "in" if event == "incoming_call" else "out",
                                     q.get("remote", ""), muted=self.muted, started=time.time())
                    self.order.append(cid)
                    self.reported.discard(cid)
                new = {
                    "incoming_call": lambda c: replace(c, state=CallState.INCOMING),
                    # sent when the phone places the call (again on ringback by some loads): never a step back
                    "outgoing_call": lambda c: c,
                    "call_established": lambda c: replace(c, state=CallState.CONFIRMED),
                    "call_terminated": lambda c: replace(c, state=CallState.DISCONNECTED),
                    "hold": lambda c: replace(c, local_hold=True),
                    "unhold": lambda c: replace(c, local_hold=False),
                    "held": lambda c: replace(c, remote_hold=True),  # the other party holds the call
                    "unheld": lambda c: replace(c, remote_hold=False),
                }[event](old)
                self.calls[cid] = new
                if event == "call_terminated" and old.state is not CallState.DISCONNECTED \
                        and cid not in self.reported:
                    self.fresh_ended.append(new)
            self.cond.notify_all()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.listener.shutdown()
            self.listener.server_close()
        super().close()


def _handler(session: Session) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urllib.parse.urlparse(self.path)
            event = url.path.strip("/").rsplit("/", 1)[-1]
            q = dict(urllib.parse.parse_qsl(url.query))
            if event in EVENTS:
                session.on_callback(event, q)
                self.send_response(200)
            else:
                self.send_response(404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    return Handler


def connect(ep: Endpoint) -> Session:
    return Session(ep)


def close(s: Session) -> None:
    s.close()


def action_urls(s: Session) -> dict[str, str]:
    """The ``action_url.<event>`` values that point the phone's callbacks at this session's listener."""
    vars_ = {"incoming_call": "id=$call_id&remote=$remote", "outgoing_call": "id=$call_id&remote=$remote"}
    return {f"action_url.{ev}": f"{s.listen_url}/{ev}?{vars_.get(ev, 'id=$call_id')}" for ev in EVENTS}


def _get(s: Session, params: dict[str, str], what: str) -> str:
    r = s.request("GET", "/servlet", params=params)
    if r.status_code == 403:
        detail = r.headers.get("X-Sipgw-Sim-Detail", "")
        raise VendorApiError(f"{API} {what}: HTTP 403: the phone refused the request (the harness address must be "
                             "in features.action_uri_limit_ip, and 'Allow Remote Control?' accepted on the phone)"
                             + (f" [{detail}]" if detail else ""), code=403, where=what)
    if r.status_code == 401:
        raise VendorApiError(f"{API} {what}: HTTP 401: the web credentials were refused", code=401, where=what)
    if r.status_code >= 400:
        detail = r.headers.get("X-Sipgw-Sim-Detail", "") or r.text[:120]
        raise VendorApiError(f"{API} {what}: HTTP {r.status_code}: {detail}", code=r.status_code, where=what)
    return r.text


def probe(s: Session) -> Probe:
    r = s.request("GET", "/servlet", params={"phonecfg": "get", "fw": "1"})
    if r.status_code == 200:
        return Probe(True)
    detail = r.headers.get("X-Sipgw-Sim-Detail", "") or f"HTTP {r.status_code}"
    if r.status_code == 401:
        return Probe(False, "auth", detail)
    if r.status_code == 403:
        return Probe(False, "confirm_on_device" if "Allow Remote Control" in detail else "not_allowed", detail)
    return Probe(False, "unexpected", detail)


def readback(s: Session) -> dict[str, str]:
    text = _get(s, {"phonecfg": "get", "accounts": "1", "fw": "1", "dnd": "1"}, "phonecfg=get")
    out = {}
    for line in text.splitlines():
        k, sep, v = line.partition("=")
        if sep:
            out[k.strip()] = v.strip()
    return out


def identity(s: Session) -> VendorIdentity:
    d = readback(s)
    return VendorIdentity(VENDOR, d.get("model", ""), d.get("fw", ""), d.get("mac", "").lower() or None)


def lines(s: Session) -> list[LineStatus]:
    d = readback(s)
    out = []
    n = 1
    while f"account.{n}.status" in d:
        ok = d[f"account.{n}.status"] == "registered"
        out.append(LineStatus(n, ok, 200 if ok else None, 0, d.get(f"account.{n}.user_name"),
                              f"account.{n}.status={d[f'account.{n}.status']}"))
        n += 1
    return out


def mwi(s: Session, line: int = 1) -> MwiState:
    """The message-waiting lamp and counts the phone shows for account ``line`` (``phonecfg=get&accounts=1``)."""
    d = readback(s)
    if f"account.{line}.status" not in d:
        raise VendorApiError(f"{API} phonecfg=get: no account {line}", code=404, where="phonecfg=get")
    if f"account.{line}.mwi" not in d:
        raise NotApplicable(f"the {API} read-back of this firmware reports no message-waiting state")
    keys = (f"account.{line}.mwi", f"account.{line}.voice_mail.new", f"account.{line}.voice_mail.old")
    raw = ", ".join(f"{k}={d.get(k, '')}" for k in keys)
    num = [int(d[k]) if d.get(k, "").isdigit() else 0 for k in keys[1:]]
    return MwiState(line - 1, d[keys[0]] == "1", num[0], num[1], d.get(f"account.{line}.user_name"), raw, time.time())


def calls(s: Session) -> list[VendorCall]:
    with s.cond:
        live = [s.calls[k] for k in s.order if s.calls[k].state is not CallState.DISCONNECTED]
        s.reported.update(c.handle for c in live)
        return live


def ended_calls(s: Session) -> list[VendorCall]:
    """Calls whose ``call_terminated`` Action URL came before ``calls`` listed them live (a call the gateway
    answered at once with a final response), each once. The Action URL carries no SIP status."""
    with s.cond:
        out, s.fresh_ended = s.fresh_ended, []
        return out


def all_calls(s: Session) -> list[VendorCall]:
    with s.cond:
        return [s.calls[k] for k in s.order]


def key(s: Session, value: str) -> None:
    _get(s, {"key": value}, f"key={value}")


def dial(s: Session, number: str, line: int = 1) -> str | None:
    _get(s, {"number": number}, "number=")
    return None  # the call id arrives with the outgoing_call (or call_terminated) Action URL


def answer(s: Session, handle: str) -> None:
    key(s, f"ASW:{handle}")


def reject(s: Session, handle: str, code: int = 486) -> None:
    key(s, f"CANCEL:{handle}")


def hangup(s: Session, handle: str) -> None:
    key(s, f"CANCEL:{handle}")


def hold(s: Session, handle: str) -> None:
    key(s, f"HOLD:{handle}")


def resume(s: Session, handle: str) -> None:
    key(s, f"UNHOLD:{handle}")


def set_mute(s: Session, handle: str, on: bool) -> None:
    if s.muted != on:
        key(s, "MUTE")  # a toggle; the mute/unmute Action URL reports the result


def send_dtmf(s: Session, handle: str, digits: str) -> None:
    if set(digits) - set(_KEYPAD):
        raise NotApplicable(f"the {API} keypad has only 0-9, * and #: {digits!r} cannot be sent")
    key(s, ";".join(_KEYPAD[d] for d in digits))


#: Action URI key values for the keypad (admin guide, "Variable Values": 0-9, STAR, POUND).
_KEYPAD = {**{str(d): str(d) for d in range(10)}, "*": "STAR", "#": "POUND"}


def keypad(number: str) -> list[str]:
    """The keys that enter ``number`` on the keypad. A Yealink phone enters '+' only by a long press of 0 (or
    the star key, by configuration), which the Action URI cannot press: a leading '+' is left out, the number
    entered in the digits the gateway compares numbers by (it routes both forms). Anything else that is not
    on the keypad cannot be keyed in."""
    digits = number.removeprefix("+")
    bad = sorted({ch for ch in digits if ch not in _KEYPAD})
    if not digits or bad:
        raise NotApplicable(f"the {API} can key in only 0-9, * and # (a leading '+' is left out): {number!r} has "
                            f"{', '.join(repr(b) for b in bad) or 'no digit'}")
    return [_KEYPAD[ch] for ch in digits]


def transfer(s: Session, handle: str, target: str) -> None:
    keys = keypad(target)
    key(s, "F_TRANSFER")
    key(s, ";".join([*keys, "F_TRANSFER"]))  # blind: digits then Transfer again (REFER, RFC 3515)


def reboot(s: Session) -> None:
    key(s, "Reboot")


def factory_reset(s: Session) -> None:
    raise NotApplicable(f"the {API} has no factory reset (SIP NOTIFY Event: reset, if enabled, is outside it)")


def config_set(s: Session, params: dict[str, str]) -> None:
    _get(s, {"phonecfg": "set", **params}, "phonecfg=set")


_FWD = {ForwardingKind.ALWAYS: "always_fwd", ForwardingKind.TIMEOUT: "timeout_fwd"}


def _fwd_kind(kind: ForwardingKind) -> str:
    if kind not in _FWD:
        raise NotApplicable(f"sipgw-lab drives {', '.join(k.value for k in _FWD)} forwarding over the {API}, not "
                            f"{kind.value}")
    return _FWD[kind]


def set_forwarding(s: Session, line: int, rule: ForwardingRule) -> None:
    """The phone's own forwarding (``account.<n>.always_fwd.*`` / ``timeout_fwd.*`` through ``phonecfg=set``)."""
    pre = f"account.{line}.{_fwd_kind(rule.kind)}"
    params = {f"{pre}.enable": "1" if rule.enabled else "0", f"{pre}.target": rule.target}
    if rule.kind is ForwardingKind.TIMEOUT:
        params[f"{pre}.timeout"] = str(int(rule.timeout_s or 20))
    config_set(s, params)


def clear_forwarding(s: Session, line: int, kind: ForwardingKind | None = None) -> None:
    kinds = [kind] if kind is not None else list(_FWD)
    config_set(s, {f"account.{line}.{_fwd_kind(k)}.enable": "0" for k in kinds})


def forwarding(s: Session, line: int) -> list[ForwardingRule]:
    """The forward configuration read back (``phonecfg=get&fw=1``)."""
    d = readback(s)
    out = []
    for kind, name in _FWD.items():
        pre = f"account.{line}.{name}"
        if d.get(f"{pre}.enable") == "1" and d.get(f"{pre}.target"):
            raw = d.get(f"{pre}.timeout", "")
            out.append(ForwardingRule(kind, d[f"{pre}.target"], True,
                                      int(raw) if kind is ForwardingKind.TIMEOUT and raw.isdigit() else None,
                                      line - 1))
    return out


def bootstrap_params(harness_ip: str) -> dict[str, str]:
    return {"features.action_uri_limit_ip": harness_ip}
