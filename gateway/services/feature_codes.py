"""Feature codes dialled from a SIP device: ``*30*`` (set DND) and ``*31*`` (reset DND and presence).

SIP Gateway feature codes (Plan for SIP Gateway): ``*30*`` sets the user's Teams presence to Do Not Disturb,
``*31*`` resets it and clears any presence the user set; ``*32*``–``*35*`` (forwarding), ``*55*`` (admin
verification, :mod:`gateway.provisioning.sip_hooks`) and ``*99*`` (voicemail) share the ``*NN*`` form.

The dispatcher is an out-of-dialog INVITE handler in ``SipCore.handlers`` that chains to the handler it
replaced (as ``sip_hooks`` does): an INVITE whose Request-URI user is not ``*NN*…`` goes on untouched, and so
does ``*55*``. Codes are a table (:data:`FEATURE_CODES`, code → :class:`FeatureCode`), so others add
``*32*``–``*35*`` and ``*99*`` with :meth:`FeatureCodes.register` or by extending the table.

Who dialled: the user is authenticated exactly as for a call (RFC 3261 §22.3 proxy digest, or the TCP/TLS
flow of its registration). A code from an *onboarding* device (``onb-`` credentials) or from a device whose
pair state is not ``paired`` (signed out, offboarded) is refused with ``403`` and ``SGW-FEATURE-SIGNED-OUT``;
a paired device's ``dev-`` credentials act for the user it is paired with.

Confirmation the device can observe: the lab gateway anchors no media, so a code is confirmed in signalling,
with a final response and no dialog (RFC 3261 §13.3.1.4 lets a UAS answer an INVITE with any final
response; §8.1.3.3 a non-2xx ends the transaction, the device ACKs it). The same shape as ``*55*``:

- ``*30*`` → ``603 DND On`` with ``Warning: 399 <agent> "SGW-FEATURE-DND-ON: …"`` and
  ``Reason: SIP;cause=200;text="Do not disturb is on"`` (RFC 3326);
- ``*31*`` → ``603 DND Off`` with ``SGW-FEATURE-DND-OFF`` and the presence it replaced;
- an unknown ``*NN*`` → ``404 Unknown Feature Code`` (``SGW-FEATURE-UNKNOWN``, listing the known codes).

Every outcome is logged (``event=feature_code``) and the presence is written through the directory (the store
first), so it reads back through ``GET /api/v1/users/{username}``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

from gateway.services.diagnostics import warning_header
from gateway.services.model import Flow, PairState, Presence, User
from gateway.sip import Request, Response, SipParseError
from gateway.sip.auth import parse_credentials

log = logging.getLogger("sipgw.features")

#: ``*NN*`` followed by an optional argument (``*33*+14255550100``) and an optional closing ``#``.
_CODE = re.compile(r"^\*(?P<code>[0-9]{2})\*(?P<arg>[0-9+*]*)#?$")
#: Codes other services handle; the dispatcher passes them on to the next handler.
PASSED_ON = frozenset({"55"})


@dataclass(frozen=True)
class FeatureResult:
    """The final response a feature code gets: status, reason phrase, diagnostic code and text."""

    status: int
    reason: str
    code: str
    text: str
    cause_text: str | None = None  # Reason header text (RFC 3326), when the code changed something


@dataclass(frozen=True)
class FeatureCode:
    code: str  # the two digits of ``*NN*``
    name: str
    handler: Callable[[FeatureCodes, User, str], FeatureResult]  # (dispatcher, user, argument)
    takes_argument: bool = False


def _set_dnd(fc: FeatureCodes, user: User, arg: str) -> FeatureResult:
    before = user.presence
    fc.directory.set_presence(user.username, Presence.DND)
    return FeatureResult(603, "DND On", "SGW-FEATURE-DND-ON",
                         f"presence of {user.username} set to dnd (was {before.value}); inbound calls do not ring "
                         "this user's devices until *31*", "Do not disturb is on")


def _reset_dnd(fc: FeatureCodes, user: User, arg: str) -> FeatureResult:
    before = user.presence
    fc.directory.set_presence(user.username, Presence.AVAILABLE)
    return FeatureResult(603, "DND Off", "SGW-FEATURE-DND-OFF",
                         f"presence of {user.username} reset to available (was {before.value})",
                         "Do not disturb is off")


#: The feature codes this dispatcher serves (code → definition). Forwarding (*32*–*35*) and voicemail (*99*)
#: are added here or through :meth:`FeatureCodes.register`.
FEATURE_CODES: dict[str, FeatureCode] = {
    "30": FeatureCode("30", "set Teams do-not-disturb", _set_dnd),
    "31": FeatureCode("31", "reset do-not-disturb and user-configured presence", _reset_dnd),
}


def parse_feature_code(uri_user: str | None) -> tuple[str, str] | None:
    """``("30", "")`` for ``*30*``, ``("33", "+1425…")`` for ``*33*+1425…``; None when not a feature code.

    Devices send ``*`` as is or escaped (``%2A``, RFC 3261 §19.1.2); a ``;user=phone`` parameter is dropped.
    """
    if not uri_user:
        return None
    raw = uri_user.split(";", 1)[0].replace("%2A", "*").replace("%2a", "*").replace("%23", "#")
    m = _CODE.match(raw)
    return (m.group("code"), m.group("arg")) if m else None


def _digest_user(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return parse_credentials(value).username
    except Exception:
        return None


class FeatureCodes:
    """The ``*NN*`` dispatcher: install once, after the other INVITE handlers it chains to."""

    def __init__(self, gw, codes: dict[str, FeatureCode] | None = None) -> None:
        self.gw = gw
        self.core = gw.core
        self.directory = gw.directory
        self.codes: dict[str, FeatureCode] = dict(FEATURE_CODES if codes is None else codes)
        self._next_invite: Callable | None = None
        #: (username, code, status) of every code handled, newest last (bounded).
        self.history: list[tuple[str, str, int]] = []

    def install(self) -> None:
        self._next_invite = self.core.handlers.get("INVITE")
        self.core.handlers["INVITE"] = self.on_invite

    def register(self, feature: FeatureCode) -> None:
        """Add or replace a code (e.g. ``*33*`` forwarding by the forwarding service)."""
        self.codes[feature.code] = feature

    # --- INVITE -------------------------------------------------------------------------------------------
    def on_invite(self, req: Request, tx, source) -> bool:
        try:
            parsed = parse_feature_code(req.request_uri.user)
        except SipParseError:
            parsed = None
        if parsed is None or parsed[0] in PASSED_ON:
            return bool(self._next_invite and self._next_invite(req, tx, source))
        code, arg = parsed
        user = self._caller(req, tx, source)
        if user is None:
            return True  # refused or challenged: the response is sent
        feature = self.codes.get(code)
        if feature is None:
            known = ", ".join(f"*{c}*" for c in sorted(self.codes))
            self._send(tx, req, 404, "Unknown Feature Code", "SGW-FEATURE-UNKNOWN",
                       f"*{code}* is not a feature code of this gateway (known: {known})")
            self._log(user.username, code, 404)
            return True
        if arg and not feature.takes_argument:
            self._send(tx, req, 484, "Address Incomplete", "SGW-FEATURE-ARGUMENT",
                       f"*{code}* ({feature.name}) takes no argument, got {arg!r}")
            self._log(user.username, code, 484)
            return True
        try:
            result = feature.handler(self, user, arg)
        except (KeyError, ValueError) as exc:
            self._send(tx, req, 500, "Feature Failed", "SGW-FEATURE-FAILED", f"*{code}* failed: {exc}")
            self._log(user.username, code, 500)
            return True
        headers = [("Reason", f'SIP;cause=200;text="{result.cause_text}"')] if result.cause_text else []
        self._send(tx, req, result.status, result.reason, result.code, result.text, headers)
        self._log(user.username, code, result.status)
        return True

    # --- who dialled --------------------------------------------------------------------------------------
    def _caller(self, req: Request, tx, source) -> User | None:
        """The signed-in user the code acts for, or None after sending the refusal or challenge."""
        signin = getattr(getattr(self.gw, "provisioning", None), "signin", None)
        binding = None
        if source.transport in ("TCP", "TLS"):
            binding = self.gw.registrar.binding_for_flow(Flow(source.transport, source.host, source.port),
                                                         self.core.now())
        username = binding.username if binding else _digest_user(req.headers.get("Proxy-Authorization"))
        acct = signin.account_for(username) if (signin is not None and username) else None
        if acct is not None:
            kind, mac, _ = acct
            if kind == "onboarding":
                self._refuse_signed_out(tx, req, f"device {mac} is onboarding and not signed in; feature codes "
                                                 "need a signed-in user")
                return None
            if binding is None:
                hooks = self.gw.provisioning.hooks
                if not hooks._verify(req, tx, "Proxy-Authorization", "INVITE", username):
                    return None
            device = self.gw.devices.get(mac)
            user = self.directory.user(device.username or "") if device is not None else None
            if device is None or device.pair_state is not PairState.PAIRED or user is None:
                self._refuse_signed_out(tx, req, f"device {mac} is signed out; sign in before using feature codes")
                return None
            return user
        user = self.core.authenticate_invite(req, tx, source)  # answers 407/403 itself
        if user is None:
            return None
        device = self._device_of(req, user, source)
        if device is not None and device.pair_state is not PairState.PAIRED:
            self._refuse_signed_out(tx, req, f"device {device.key} is {device.pair_state.value}, not signed in; "
                                             "feature codes need a signed-in device")
            return None
        return user

    def _device_of(self, req: Request, user: User, source):
        """The device record the INVITE comes from: the user's binding registered from the same address (the
        device sends from the socket it registered on, RFC 3261 §18.1.1), else keyed as the registrar keys a
        REGISTER (the MAC in the User-Agent)."""
        for b in self.gw.registrar.bindings(user.username, self.core.now()):
            f = b.flow
            if (f.transport, f.host, f.port) == (source.transport, source.host, source.port):
                return self.gw.devices.get(b.device_key)
        ua = req.headers.get("User-Agent") or ""
        try:
            verdict = self.gw.registrar.verdict_for(ua)
            key = self.gw.devices.key_for(req, ua, verdict, user.username)
        except Exception:
            return None
        return self.gw.devices.get(key)

    # --- responses ------------------------------------------------------------------------------------------
    def _refuse_signed_out(self, tx, req: Request, text: str) -> None:
        self._send(tx, req, 403, "Feature Code Refused", "SGW-FEATURE-SIGNED-OUT", text)
        code = parse_feature_code(req.request_uri.user)
        self._log("-", code[0] if code else "?", 403)

    def _send(self, tx, req: Request, status: int, reason: str, code: str, text: str,
              headers: list[tuple[str, str]] | None = None) -> None:
        extra = [*(headers or []), ("Warning", warning_header(code, text, self.core.agent))]
        to_tag = None if req.to.tag else f"f{abs(hash((req.call_id, req.cseq.seq))) % 10**8}"
        self.core.stats.rejected += status >= 300
        self.core.send_response(tx, Response.for_request(req, status, reason, headers=extra, to_tag=to_tag))

    def _log(self, username: str, code: str, status: int) -> None:
        log.info("event=feature_code user=%s code=*%s* status=%d", username, code, status)
        self.history.append((username, code, status))
        if len(self.history) > 1000:
            del self.history[:500]
