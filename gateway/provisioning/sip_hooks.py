"""SIP side of onboarding and sign-in: the credentials the sign-in service issues, and ``*55*<code>``.

Installed as out-of-dialog request handlers of :class:`gateway.sipcore.SipCore` (``core.handlers``); a request
that is none of these goes on to the ordinary registrar and INVITE path.

- REGISTER with onboarding (``onb-<mac>``) or device (``dev-<mac>``) credentials is authenticated against the
  sign-in service (RFC 3261 §22.4 digest) and bound like any registration (§10.3). Device credentials register
  as the user the device is paired with, so calls to that user ring the device; onboarding credentials bind
  under their own name and nobody can call them. Each port of a multi-port ATA has credentials of its own
  (``dev-<mac>-002``), and its bindings carry the port's key (``<mac>:002``): ports ring, sign out and are
  offboarded one by one.
- INVITE to ``*55*<code>`` is the admin verification feature code. SIP Gateway confirms it with an in-band
  tone: when the code matches this device the enrolment is stored and the INVITE goes on to the media node's
  confirmation-tone party (:mod:`gateway.media_node.confirmation`: answered, 2150 Hz for 3.5 s, then BYE).
  A refused code gets no tone: a final ``403 Invalid Verification Code`` without a dialog (RFC 3261 §13.3.1.4)
  and ``Warning: 399 … "SGW-ENROL-REFUSED: <reason>"``. A gateway without a media node confirms in signalling
  alone, ``603 Enrolment Confirmed`` with ``Warning: 399 … "SGW-ENROL-OK …"``.
- INVITE with onboarding credentials reaches only ``*55*`` and emergency numbers; anything else is ``403``
  with ``SGW-ONBOARDING-RESTRICTED``. INVITE with device credentials is placed as the paired user.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from device_profiles.verdict import check_user_agent
from gateway.services.diagnostics import warning_header
from gateway.services.model import Flow, PairState, User
from gateway.services.registrar import _VERDICT_CODES, _RegisterError
from gateway.services.routing import RouteDecision, Target
from gateway.services.signin import SignInError, split_key
from gateway.sip import NameAddr, Request, Response, SipParseError, SipURI
from gateway.sip.auth import parse_credentials

log = logging.getLogger("sipgw.signin.sip")

#: Emergency numbers an onboarding device may still call.
EMERGENCY = frozenset({"911", "933", "112", "999", "000", "110", "119"})
FEATURE_ENROL = "*55*"


def _digest_user(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return parse_credentials(value).username
    except Exception:
        return None


class SignInSipHooks:
    def __init__(self, gw: Any, signin: Any) -> None:
        self.gw = gw
        self.core = gw.core
        self.signin = signin
        self._next_register: Callable[[Request, Any, Any], bool] | None = None
        self._next_invite: Callable[[Request, Any, Any], bool] | None = None
        #: The media node's confirmation-tone service (``party() -> Flow | None``, ``uri(flow)``), when there is one.
        self.confirmation: Any = None

    def install(self) -> None:
        self._next_register = self.core.handlers.get("REGISTER")
        self._next_invite = self.core.handlers.get("INVITE")
        self.core.handlers["REGISTER"] = self.on_register
        self.core.handlers["INVITE"] = self.on_invite

    # --- helpers -----------------------------------------------------------------------------------------
    def _send(self, tx, req: Request, status: int, reason: str | None = None, code: str | None = None,
              text: str = "", headers: list[tuple[str, str]] | None = None) -> None:
        extra = list(headers or [])
        if code:
            extra.append(("Warning", warning_header(code, text, self.core.agent)))
        to_tag = None if req.to.tag else f"s{abs(hash((req.call_id, req.cseq.seq))) % 10**8}"
        self.core.send_response(tx, Response.for_request(req, status, reason, headers=extra, to_tag=to_tag))

    def drop_bindings(self, device_key: str) -> None:
        """Forget every registration of a device (sign-out, offboarding, factory reset)."""
        self.gw.registrar.drop_device(device_key, self.core.now())

    def is_online(self, device_key: str) -> bool:
        now = self.core.now()
        return any(b.device_key == device_key for bs in self.gw.registrar.all_bindings(now).values() for b in bs)

    def _verify(self, req: Request, tx, header: str, method: str, username: str) -> bool:
        ha1 = self.signin.ha1_for(username)
        result = self.core.auth.verify(req.headers.get(header), method=method, now=self.core.wall(), ha1=ha1)
        if result.ok:
            return True
        if result.stale:
            name = "WWW-Authenticate" if header == "Authorization" else "Proxy-Authenticate"
            status = 401 if header == "Authorization" else 407
            challenges = [(name, str(c)) for c in self.core.auth.challenges(self.core.wall(), stale=True)]
            self._send(tx, req, status, headers=challenges)
        else:
            self._send(tx, req, 403, code="SGW-AUTH-FAILED", text="authentication failed")
        return False

    # --- REGISTER ---------------------------------------------------------------------------------------------
    def on_register(self, req: Request, tx, source) -> bool:
        username = _digest_user(req.headers.get("Authorization"))
        acct = self.signin.account_for(username) if username else None
        if acct is None or not username:
            return bool(self._next_register and self._next_register(req, tx, source))
        kind, mac, _ = acct
        if not self._verify(req, tx, "Authorization", "REGISTER", username):
            return True
        device = self.gw.devices.get(mac)
        if device is None or device.pair_state is PairState.OFFBOARDED:
            self._send(tx, req, 403, code="SGW-DEVICE-OFFBOARDED",
                       text=f"device {mac} was offboarded; factory-reset it to onboard again")
            return True
        if kind == "device":
            user = self.gw.directory.user(device.username or "")
            if user is None or device.pair_state is not PairState.PAIRED:
                self._send(tx, req, 403, code="SGW-DEVICE-SIGNED-OUT",
                           text=f"device {mac} is signed out; sign in again")
                return True
        else:
            user = User(username=username, name=f"Onboarding {mac}")
        ua = req.headers.get("User-Agent")
        verdict = self.gw.registrar.verdict_for(ua or "")
        if not verdict.acceptable and self.gw.registrar.config.firmware_policy == "enforce":
            self._send(tx, req, 403, code=_VERDICT_CODES[verdict.verdict], text=verdict.reason)
            return True
        flow = Flow(source.transport, source.host, source.port)
        try:
            resp = self.gw.registrar.bind(req, user, flow, self.core.now(), self.core.wall(), mac, ua)
        except _RegisterError as exc:
            self._send(tx, req, exc.status, code=exc.code, text=exc.text, headers=exc.extra)
            return True
        wall = self.core.wall()
        self.gw.devices.put(replace(device, last_connected=wall, user_agent=ua or device.user_agent,
                                    firmware=verdict.found or device.firmware,
                                    vendor=verdict.vendor or device.vendor, model=verdict.model or device.model,
                                    verdict=verdict.verdict.value, verdict_reason=verdict.reason))
        self.core.send_response(tx, resp)
        return True

    # --- INVITE -------------------------------------------------------------------------------------------
    def on_invite(self, req: Request, tx, source) -> bool:
        try:
            uri_user = req.request_uri.user or ""
        except SipParseError:
            return False
        uri_user = uri_user.replace("%2A", "*").replace("%2a", "*")
        binding = None
        if source.transport in ("TCP", "TLS"):
            binding = self._flow_binding(req, Flow(source.transport, source.host, source.port))
        username = binding.username if binding else _digest_user(req.headers.get("Proxy-Authorization"))
        acct = None
        if binding is not None and binding.username.startswith("onb-"):
            acct = self.signin.account_for(binding.username)
        elif binding is None and username:
            acct = self.signin.account_for(username)
            if acct is not None and not self._verify(req, tx, "Proxy-Authorization", "INVITE", username):
                return True
        if uri_user.startswith(FEATURE_ENROL):
            if acct is not None:
                key = acct[1]
                caller = NameAddr(SipURI.parse(f"sip:{username}@{self.core.domain}"), f"Device {key}")
            else:
                user = self.core.authenticate_invite(req, tx, source)  # replies itself when it fails
                if user is None:
                    return True
                key = binding.device_key if binding else check_user_agent(req.headers.get("User-Agent") or "").mac
                caller = NameAddr(SipURI.parse(f"sip:{user.number or user.username}@{self.core.domain}"), user.name)
            mac = split_key(key)[0] if key else ""  # enrolment is the device's, whichever port dialled
            self._enrol(req, tx, source, caller, mac, uri_user[len(FEATURE_ENROL):].rstrip("#"))
            return True
        if acct is None:
            return bool(self._next_invite and self._next_invite(req, tx, source))
        kind, mac, _ = acct
        if kind == "onboarding":
            dialled = uri_user.split(";", 1)[0]
            if dialled.lstrip("+") not in EMERGENCY:
                self._send(tx, req, 403, code="SGW-ONBOARDING-RESTRICTED",
                           text=f"device {mac} is not signed in: onboarding credentials reach only the sign-in "
                                "service, *55* and emergency numbers")
                return True
            caller = NameAddr(SipURI.parse(f"sip:{username}@{self.core.domain}"), f"Onboarding {mac}")
        else:
            device = self.gw.devices.get(mac)
            user = self.gw.directory.user(device.username or "") if device else None
            if user is None:
                self._send(tx, req, 403, code="SGW-DEVICE-SIGNED-OUT", text=f"device {mac} is signed out")
                return True
            if not user.policy.allow_sip_devices_calling:
                self._send(tx, req, 403, code="SGW-POLICY-SIP-DEVICES",
                           text=f"the calling policy of {user.username} does not allow SIP devices")
                return True
            caller = NameAddr(SipURI.parse(f"sip:{user.number or user.username}@{self.core.domain}"), user.name)
        decision = self.core.router.route(uri_user, self.core.now())
        self.core.b2bua.new_call(req, tx, source, decision, caller)
        return True

    def _flow_binding(self, req: Request, flow: Flow):
        """The binding a request on a TCP/TLS connection belongs to. Several accounts of one device may share the
        connection (a line account and the provisioned one): the From user picks among them."""
        now = self.core.now()
        on_flow = [b for bs in self.gw.registrar.all_bindings(now).values() for b in bs if b.flow == flow]
        if not on_flow:
            return None
        try:
            from_user = req.from_.uri.user or ""
        except SipParseError:
            from_user = ""
        acct = self.signin.account_for(from_user) if from_user.startswith("dev-") else None
        for b in on_flow:
            if b.username == from_user or (acct is not None and b.device_key == acct[1]):
                return b
        return on_flow[0]

    def _enrol(self, req: Request, tx, source, caller: NameAddr, mac: str, code: str) -> None:
        if not mac:
            self._send(tx, req, 403, "Invalid Verification Code", "SGW-ENROL-REFUSED",
                       "the device could not be identified (no MAC in its User-Agent)")
            return
        try:
            self.signin.verify_enrolment(mac, code)
        except SignInError as exc:
            log.warning("event=enrolment_refused device=%s reason=%s", mac, exc.code)
            self._send(tx, req, 403, "Invalid Verification Code", "SGW-ENROL-REFUSED", exc.message)
            return
        flow = self.confirmation.party() if self.confirmation is not None else None
        if flow is None:
            if self.confirmation is not None:
                log.warning("event=enrol_confirmation_tone_unavailable device=%s", mac)
            self._send(tx, req, 603, "Enrolment Confirmed", "SGW-ENROL-OK",
                       f"device {mac} is enrolled and waiting for sign-in")
            return
        # The confirmation tone: the call goes on to the media node, which answers, plays it and hangs up.
        target = Target("service", self.confirmation.uri(flow), flow, "enrolment confirmation tone")
        self.core.b2bua.new_call(req, tx, source, RouteDecision(targets=(target,)), caller)
