"""Call transfer through the B2BUA: REFER (RFC 3515) relayed to the transferee, Replaces (RFC 3891) mapped.

Blind transfer: the transferor sends REFER with ``Refer-To: <sip:+1425…@sipgw.lab>`` on its call. The B2BUA
relays in-dialog requests to the other leg, so the transferee gets the REFER; this module rewrites the
Refer-To host to the gateway's own address for the transferee's transport (the transferee — a device, or a
Teams client or PSTN party of the media node — may not resolve the tenant's domain), keeping the user part
and any header parameters. The transferee answers ``202``, sends ``INVITE`` to the target through the gateway
(routed like any call) and reports progress in ``NOTIFY`` with ``message/sipfrag`` bodies (RFC 3515 §2.4.5),
which the B2BUA relays back to the transferor. When the target is busy or does not answer, the sipfrag says
so (``SIP/2.0 486 Busy Here``) and the transferor still holds the original call (it resumes it).

Consultative transfer: the Refer-To carries ``?Replaces=<call-id>;to-tag=…;from-tag=…`` naming the
consultation call *as the transferor sees it* — a dialog between the transferor and the gateway. When the
transferee's ``INVITE`` with that ``Replaces`` arrives, this module finds the gateway call holding that dialog
(§3: tags matched as if the header were in a request received on it), and sends the new call only to the
other party of that call (the target), with ``Replaces`` rewritten to name the target's own dialog with the
gateway. The target accepts it, ends the replaced dialog (its BYE is relayed to the transferor), and the
transferee and the target are connected. A ``Replaces`` that names no confirmed call is answered ``481``
(§3, "no match").
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from gateway.services.b2bua import Side
from gateway.services.dtmf_interworking import relay_token_of, stand_in_refer_to
from gateway.services.routing import RouteDecision, Target
from gateway.sip import Headers, NameAddr, Request, Response, SipParseError, SipURI
from gateway.sip.dialog import DialogId

log = logging.getLogger("sipgw.transfer")

_REFER_TO = re.compile(r"^(?P<pre>[^<]*<)?(?P<scheme>sips?):(?P<user>[^@>]+)@(?P<host>\[[^\]]+\]|[^;?>:]+)"
                       r"(?::(?P<port>\d+))?(?P<params>;[^?>]*)?(?P<headers>\?[^>]*)?(?P<post>>.*)?$")


def parse_replaces(value: str) -> tuple[str, str, str, bool] | None:
    """``(call_id, to_tag, from_tag, early_only)`` of a Replaces header (RFC 3891 §6.1); None if malformed."""
    parts = [p.strip() for p in unquote(value or "").split(";")]
    if not parts or not parts[0]:
        return None
    params = {}
    flags = set()
    for p in parts[1:]:
        if "=" in p:
            k, v = p.split("=", 1)
            params[k.strip().lower()] = v.strip()
        elif p:
            flags.add(p.lower())
    if "to-tag" not in params or "from-tag" not in params:
        return None
    return parts[0], params["to-tag"], params["from-tag"], "early-only" in flags


def rewrite_refer_to(value: str, hostport: str, transport: str) -> str:
    """The Refer-To with its host replaced by the gateway's (``transport`` param set), user and headers kept."""
    m = _REFER_TO.match(value.strip())
    if m is None:
        return value
    params = ";".join(p for p in (m.group("params") or "").split(";")
                      if p and not p.lower().startswith(("transport=", "maddr=")))
    params = (";" + params) if params else ""
    if transport.upper() != "UDP":
        params += f";transport={transport.lower()}"
    uri = f"{m.group('scheme')}:{m.group('user')}@{hostport}{params}{m.group('headers') or ''}"
    if m.group("pre") is not None:
        return f"{m.group('pre')}{uri}{m.group('post') or '>'}"
    return f"<{uri}>"


class TransferService:
    def __init__(self, core) -> None:
        self.core = core
        self.b2bua = core.b2bua
        self._next_in_dialog: Callable[[Request, Any, Any], bool] | None = None
        self._next_invite: Callable[[Request, Any, Any], bool] | None = None
        #: (kind, detail) of every REFER relayed and Replaces mapped, newest last (bounded).
        self.log: list[tuple[str, str]] = []

    def install(self) -> None:
        self._next_in_dialog = self.b2bua.in_dialog
        self.b2bua.in_dialog = self.on_in_dialog_request
        self._next_invite = self.core.handlers.get("INVITE")
        self.core.handlers["INVITE"] = self.on_invite

    def _note(self, kind: str, detail: str) -> None:
        log.info("event=transfer kind=%s %s", kind, detail)
        self.log.append((kind, detail))
        if len(self.log) > 1000:
            del self.log[:500]

    # --- REFER ------------------------------------------------------------------------------------------------
    def on_in_dialog_request(self, req: Request, tx, source) -> bool:
        if req.method == "REFER" and req.headers.get("Refer-To"):
            did = DialogId.for_received_request(req)
            found = self.b2bua._by_dialog.get(did) if did is not None else None
            if found is not None:
                call, leg = found
                other = self.b2bua._peer(call, leg)
                if other is not None:
                    transport = other.dest.transport
                    contact = self.core.contact_uri(transport)
                    hostport = contact.split("@", 1)[1].split(";", 1)[0]
                    old = req.headers.get("Refer-To") or ""
                    new = rewrite_refer_to(old, hostport, transport)
                    token = relay_token_of(other)  # a DTMF relay's leg: the relay passes the REFER on itself
                    if token is not None:
                        host = f"[{other.dest.host}]" if ":" in other.dest.host else other.dest.host
                        new = stand_in_refer_to(token, f"{host}:{other.dest.port}", new)
                    if new != old:
                        fields = [(n, new if n == "Refer-To" else v) for n, v in req.headers.items()]
                        req = req.replace(headers=Headers(fields))
                    self._note("refer", f"call {call.id}: {old} -> {new}")
        return bool(self._next_in_dialog and self._next_in_dialog(req, tx, source))

    # --- INVITE with Replaces ---------------------------------------------------------------------------------
    def on_invite(self, req: Request, tx, source) -> bool:
        value = req.headers.get("Replaces")
        if not value:
            return bool(self._next_invite and self._next_invite(req, tx, source))
        parsed = parse_replaces(value)
        if parsed is None:
            self._reply(tx, req, 400, f"malformed Replaces header {value!r} (RFC 3891 §6.1: call-id;to-tag;from-tag)")
            return True
        call_id, to_tag, from_tag, _early = parsed
        found = self.b2bua._by_dialog.get(DialogId(call_id, to_tag, from_tag))
        if found is None or found[0].winner is None:
            self._reply(tx, req, 481, f"Replaces names no confirmed call of this gateway ({call_id})")
            return True
        call, leg = found
        target_leg = call.other(leg)
        if target_leg is None or target_leg.dialog is None:
            self._reply(tx, req, 481, f"the call replaced ({call.id}) has no other party")
            return True
        if self.core.is_trusted(source):
            caller = NameAddr(req.from_.uri, req.from_.display)
        else:
            user = self.core.authenticate_invite(req, tx, source)  # answers 407/403 itself
            if user is None:
                return True
            identity = user.number or user.username
            caller = NameAddr(SipURI.parse(f"sip:{identity}@{self.core.domain}"), user.name)
        d = target_leg.dialog
        # As the target will see it (§3): to-tag its own tag, from-tag the gateway's tag on that dialog. The
        # rewritten header goes on the target's branch only: when the new call is anchored for DTMF interworking,
        # the INVITE to the relay must not carry it (the relay holds no such dialog), the relay's own INVITE gets it.
        replaces = f"{d.call_id};to-tag={d.remote.tag};from-tag={d.local.tag}"
        new_req = req.replace(headers=Headers([(n, v) for n, v in req.headers.items()
                                               if n.lower() != "replaces"]))
        kind = "device" if target_leg.side is Side.B and target_leg.target is not None and \
            target_leg.target.kind == "device" else (target_leg.target.kind if target_leg.target else "device")
        flow = _flow(target_leg.dest)
        binding = target_leg.target.binding if target_leg.target is not None else None
        if binding is None and kind == "device":
            # the target called in on the replaced call: its REGISTER binding says what it is (DTMF method)
            binding = self.core.registrar.binding_for_flow(flow, self.core.now())
        target = Target(kind, str(d.remote_target), flow, f"{target_leg.label} (replaces)", binding=binding,
                        headers=(("Replaces", replaces),))
        self._note("replaces", f"call {call.id}: {call_id} -> {d.call_id} at {target_leg.label}")
        self.b2bua.new_call(new_req, tx, source, RouteDecision(targets=(target,), callee=call.callee_user), caller)
        return True

    def _reply(self, tx, req: Request, status: int, text: str) -> None:
        from gateway.services.diagnostics import warning_header

        headers = [("Warning", warning_header("SGW-TRANSFER", text, self.core.agent))]
        try:
            to_tag = None if req.to.tag else f"t{abs(hash((req.call_id, req.cseq.seq))) % 10**8}"
        except SipParseError:
            to_tag = None
        self.core.send_response(tx, Response.for_request(req, status, headers=headers, to_tag=to_tag))


def _flow(addr):
    from gateway.services.model import Flow

    return Flow(addr.transport, addr.host, addr.port)


__all__ = ["TransferService", "parse_replaces", "rewrite_refer_to"]
