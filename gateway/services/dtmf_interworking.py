"""DTMF interworking: which method each leg of a call carries digits in, and whether the call is anchored.

A device carries DTMF either as RFC 4733 events in RTP (``telephone-event`` in its SDP; RFC 4733 §7.1.1 says a
UA that can send or receive events lists the payload type) or as SIP INFO ``application/dtmf-relay`` (the legacy
INFO usage, RFC 6086 §2; a UA that takes INFO says so in ``Allow``, or with ``Recv-Info`` naming an Info Package,
RFC 6086 §5.2.2). The gateway does not anchor media, so RFC 4733 events travel end to end in RTP and INFO is
relayed end to end by the B2BUA: a call between a leg that only knows one method and a leg that only knows the
other loses every digit.

Such calls are anchored on the media node (``gateway.media_node.relay``): the caller's INVITE goes to a relay
there, which answers it and places the callee's leg itself, bridges the audio both ways, and sends every digit
received on one leg on the other in that leg's method. The relay's own INVITE is recognised by its token and
gets the targets the caller's call was routed to, so the callee's side (forking, no-answer forwarding,
voicemail) is exactly what it would have been. Calls whose legs agree are not touched.

What each leg says, in order of trust:

* the caller: the SDP offer of its INVITE (``telephone-event`` present → RFC 4733, absent → it cannot send or
  receive events, so INFO when it accepts INFO); an INVITE without SDP (late offer) falls back to the catalogue
  default for its User-Agent;
* each callee device: its SDP answer is not known before the INVITE is forked, so what its REGISTER declared when
  that decides (a DTMF Info Package in ``Recv-Info`` → INFO; an ``Allow`` without INFO → RFC 4733; see
  :func:`registered_method`), else the catalogue's default for the registered model (``device_profiles/dtmf.yaml``,
  by the User-Agent of its REGISTER); the trace note names the source that decided;
* media-node parties (Teams clients, PSTN, IVR, voicemail) take either method and are never a reason to anchor.

A leg whose method cannot be told (no SDP and an unrecognised User-Agent) is never a reason to anchor either.

Transfers through an anchor: the REFER is passed through. The relay is a B2BUA and each party's dialog ends at
it, so a REFER from one party (the transferor) reaches the relay, never the other party (the transferee). The
relay keeps itself in the path the way RFC 3515 reads from each dialog: the transferee gets a REFER of its own, on
its own dialog, with the transferor's Refer-To (a target, or a target with ``Replaces`` for a consultative
transfer, RFC 3891 §3, RFC 5589 §7), acts on it and places its own call through the gateway, which routes it like
any call, so it is anchored anew when the transferee and the target still carry digits differently. That holds for
a consultative transfer too: the transferee's INVITE with ``Replaces`` for a device's dialog goes to a new relay
when the two differ, and the relay's own INVITE carries the ``Replaces`` to the target (RFC 3891 §3), which
replaces its dialog with the relay's leg (an INVITE with ``Replaces`` aimed at a relay's leg is the relay's to
follow, see below); and the transferor's sipfrag
NOTIFYs (RFC 3515 §2.4.5) carry the transferee's final status (``200``, or ``486`` from a busy target, after which
the transferor still holds its call and resumes it through the relay, RFC 5589 §6.2), sent once the transferee's
call has that status. pjsua acts on every REFER it accepts (RFC 3515 §2.4.2/§2.4.4) by calling the Refer-To, so
the gateway gives a REFER bound for a relay's leg a stand-in Refer-To (``gateway.services.transfer``,
:func:`stand_in_refer_to`): the relay's worker itself, with the transferor's Refer-To in a URI parameter. The call
pjsua places for it comes back to the relay, which passes the REFER on and answers that call with the
transferee's final status, which pjsua reports to the transferor. Re-anchoring by the relay itself (following the
transfer, then handing the transferee over with Replaces) was simpler but told the transferor ``200`` before the
transferee had a call; it remains only for an INVITE with Replaces aimed at a relay's leg, and for a REFER that
reached a relay without a stand-in Refer-To. Each step is a note in the trace.
Everything here is logic over messages and bindings; the relay itself is reached through :class:`RelayPort`.
"""

from __future__ import annotations

import enum
import functools
import itertools
import logging
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from device_profiles.dtmf import dtmf_default_for_user_agent
from gateway.services.model import Flow
from gateway.services.routing import RouteDecision, Target
from gateway.sip import Request

log = logging.getLogger("sipgw.dtmf")

#: The header a relay puts on the INVITE of the callee's leg (never relayed to the callee: not in the B2BUA's
#: RELAYED_HEADERS), naming the anchored call it belongs to.
RELAY_HEADER = "X-Sipgw-Dtmf-Relay"
#: The user part of a Refer-To the gateway gives a relay's leg in place of the transferor's (see "Transfers").
STAND_IN_USER = "relayxfer-"
_STAND_IN_TARGET = "sgw-target"
#: An anchor whose relay INVITE has not arrived after this long is forgotten.
ANCHOR_TTL_S = 30.0

# RFC 4566 §5.14 (m=<media> <port> <proto> <fmt> ...) and §6 (a=rtpmap:<payload type> <encoding name>/<clock rate>)
_M_LINE = re.compile(rb"^m=([A-Za-z]+)[ \t]+\S+[ \t]+\S+[ \t]*([^\r\n]*)", re.MULTILINE)
_ANY_TELEPHONE_EVENT = re.compile(rb"telephone-event", re.IGNORECASE)
_TELEPHONE_EVENT = re.compile(rb"^a=rtpmap:[ \t]*(\d+)[ \t]+telephone-event(?:/(\d+))?", re.MULTILINE | re.IGNORECASE)


class Method(enum.StrEnum):
    RFC4733 = "rfc4733"
    INFO = "info"

    @property
    def label(self) -> str:
        return "RFC 4733" if self is Method.RFC4733 else "INFO"


@dataclass(frozen=True)
class LegDtmf:
    """How one leg carries digits, and what said so."""

    method: Method
    basis: str


# --- reading what a leg says ------------------------------------------------------------------------------------

def telephone_event_types(sdp: bytes | str) -> list[tuple[str, int]]:
    """(payload type, clock rate) of every ``telephone-event`` format of the SDP's first audio stream that its
    m= line lists (RFC 4733 §7.1.1; RFC 4566 §5.14 for m= and a=rtpmap). Empty when there is no audio stream or
    no such format. Malformed lines are skipped, never raised on: this reads what a peer sent."""
    data = sdp.encode("utf-8", "replace") if isinstance(sdp, str) else sdp
    if _ANY_TELEPHONE_EVENT.search(data) is None:
        return []  # the common case of an SDP without events, decided without reading its lines
    lines = list(_M_LINE.finditer(data))
    for i, m in enumerate(lines):
        if m.group(1).lower() != b"audio":
            continue
        end = lines[i + 1].start() if i + 1 < len(lines) else len(data)
        formats = set(m.group(2).split())
        return [(pt.decode(), int(rate or 8000)) for pt, rate in _TELEPHONE_EVENT.findall(data, m.end(), end)
                if pt in formats]
    return []


def has_audio(sdp: bytes | str) -> bool:
    data = sdp.encode("utf-8", "replace") if isinstance(sdp, str) else sdp
    return any(m.group(1).lower() == b"audio" for m in _M_LINE.finditer(data))


def accepts_info(request: Request) -> tuple[bool, str]:
    """Whether the sender takes SIP INFO, and from which header: ``Recv-Info`` naming an Info Package (RFC 6086
    §5.2.2; an empty ``Recv-Info`` says it takes none), else ``Allow`` listing INFO (RFC 3261 §20.5)."""
    headers = request.headers
    if "Recv-Info" in headers:
        packages = [p.strip() for p in headers.get_all("Recv-Info") if p.strip()]
        if packages:
            return True, f"Recv-Info: {', '.join(packages)}"
    allow = [m.strip().upper() for m in headers.get_all("Allow")]
    if "INFO" in allow:
        return True, "Allow: INFO"
    if "Recv-Info" in headers:
        return False, "an empty Recv-Info (no Info Package)"
    if allow:
        return False, "Allow without INFO"
    return False, "no Allow or Recv-Info"


@functools.lru_cache(maxsize=4096)
def catalogue_method(user_agent: str | None) -> LegDtmf | None:
    """The catalogue's default for the device a User-Agent names (``device_profiles/dtmf.yaml``)."""
    d = dtmf_default_for_user_agent(user_agent)
    if d is None:
        return None
    who = f"{d.vendor} {d.kind}" if d.kind else d.vendor
    return LegDtmf(Method(d.method), f"catalogue default for {who} ({d.source})")


def caller_dtmf(invite: Request) -> LegDtmf | None:
    """The caller's method, from its INVITE: the SDP offer, else its User-Agent in the catalogue."""
    body = invite.body
    ctype = (invite.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
    if body and ctype == "application/sdp":
        events = telephone_event_types(body)
        if events:
            pts = ", ".join(f"{pt} (/{rate})" for pt, rate in events)
            return LegDtmf(Method.RFC4733, f"SDP offer lists telephone-event, payload type {pts}")
    if body and ctype == "application/sdp" and has_audio(body):
        ok, why = accepts_info(invite)
        if ok:
            return LegDtmf(Method.INFO, f"SDP offer without telephone-event; {why}")
        return None  # neither: digits can only go in-band, nothing to convert
    return catalogue_method(invite.headers.get("User-Agent"))


def callee_dtmf(target: Target) -> LegDtmf | None:
    """A branch's method: what the device declared in its REGISTER when that decides it, else the catalogue's
    default (by its REGISTER's User-Agent); media-node parties take both methods, so they are None (never a
    reason to anchor)."""
    if target.kind != "device" or target.binding is None:
        return None
    b = target.binding
    if b.recv_info is None and b.allow is None:
        return catalogue_method(b.user_agent)  # nothing declared: the common case costs one cache look-up
    return registered_method(b.recv_info, b.allow, b.user_agent)


@functools.lru_cache(maxsize=4096)
def registered_method(recv_info: tuple[str, ...] | None, allow: tuple[str, ...] | None,
                      user_agent: str | None) -> LegDtmf | None:
    """A callee's method from what its REGISTER declared (``Recv-Info`` packages lower-cased, ``Allow`` methods
    upper-cased, None when absent), preferred over the catalogue default where it decides:

    * a ``Recv-Info`` naming a DTMF Info Package (RFC 6086 §5.2.3: a REGISTER may say which packages the UA
      receives; §9: the package names the body) → INFO;
    * it takes no INFO at all (an ``Allow`` without INFO, RFC 3261 §20.5, and no package in ``Recv-Info``) → it
      can only receive digits as RFC 4733 events (or in-band), so RFC 4733;
    * it takes INFO but names no DTMF package (``Allow: INFO``, or an unrelated package): most RFC 4733 devices
      allow INFO too, so that does not decide: the catalogue does (its note says the REGISTER did not decide).
    """
    packages = [p for p in recv_info or () if p]
    dtmf = [p for p in packages if "dtmf" in p]
    if dtmf:
        return LegDtmf(Method.INFO, f"REGISTER's Recv-Info: {', '.join(dtmf)} (RFC 6086 §5.2.3)")
    if not packages and allow is not None and "INFO" not in allow:
        why = "an empty Recv-Info and " if recv_info is not None else ""
        return LegDtmf(Method.RFC4733, f"REGISTER's {why}Allow without INFO: takes no SIP INFO (RFC 3261 §20.5)")
    cat = catalogue_method(user_agent)
    if cat is None:
        return None
    said = f"Recv-Info: {', '.join(packages)}" if packages else "Allow: INFO"
    return LegDtmf(cat.method, f"{cat.basis}; REGISTER's {said} does not decide")


@dataclass(frozen=True)
class Decision:
    """Whether a call's legs differ. ``anchor`` only when both are known and differ."""

    caller: LegDtmf | None
    callees: tuple[tuple[str, LegDtmf | None], ...]  # (branch label, method) per device branch

    @property
    def differing(self) -> list[tuple[str, LegDtmf]]:
        if self.caller is None:
            return []
        return [(label, leg) for label, leg in self.callees if leg is not None and leg.method != self.caller.method]

    @property
    def anchor(self) -> bool:
        return bool(self.differing)

    @property
    def callee_method(self) -> Method | None:
        """The method the relay offers the callee's side: the one that differs from the caller's."""
        d = self.differing
        return d[0][1].method if d else None

    def note(self, where: str = "media node") -> str:
        """One line for the trace and the log."""
        if self.caller is None:
            return "DTMF interworking: caller's method unknown (no SDP with audio, no INFO, unknown User-Agent) " \
                   "→ not anchored"
        if not self.callees:
            return f"DTMF interworking: caller {self.caller.method.label}, no device branch → not anchored"
        if self.anchor:
            label, leg = self.differing[0]
            return (f"DTMF interworking: caller {self.caller.method.label}, callee {leg.method.label} "
                    f"→ anchored on {where} (caller: {self.caller.basis}; {label}: {leg.basis})")
        known = [leg for _, leg in self.callees if leg is not None]
        if not known:
            return f"DTMF interworking: caller {self.caller.method.label}, callee method unknown → not anchored"
        return (f"DTMF interworking: caller {self.caller.method.label}, callee {known[0].method.label} "
                "→ no conversion needed, not anchored")


def decide(invite: Request, decision: RouteDecision) -> Decision:
    """Read both sides of a routed call (pure; see the module docstring for what is trusted)."""
    caller = caller_dtmf(invite)
    callees = tuple((t.label, callee_dtmf(t)) for t in decision.targets if t.kind == "device")
    return Decision(caller, callees)


# --- transfers through a relay -----------------------------------------------------------------------------------

def relay_token_of(leg: object) -> str | None:
    """The relay token of a B2BUA leg that is a relay's (the caller's call routed to ``relay-<token>``, or the
    relay's own INVITE carrying ``RELAY_HEADER``); None for any other leg."""
    target = getattr(leg, "target", None)
    if target is not None and getattr(target, "kind", None) == "relay":
        m = re.match(r"^sips?:relay-([^@;>]+)@", target.uri)
        return m.group(1) if m else None
    invite = getattr(leg, "invite", None)
    if invite is not None and getattr(leg, "target", None) is None:
        token = invite.headers.get(RELAY_HEADER)
        return token.strip() if token else None
    return None


def stand_in_refer_to(token: str, hostport: str, refer_to: str) -> str:
    """The Refer-To a relay's leg gets for a REFER: the relay's worker itself (``relayxfer-<token>``), with the
    transferor's Refer-To in a URI parameter, so the call pjsua places for it comes back to the relay, which passes
    the REFER on and answers that call with the transferee's outcome (RFC 3515 §2.4.5)."""
    from urllib.parse import quote

    uri = refer_to.strip()
    if uri.startswith("<") and ">" in uri:
        uri = uri[1:uri.rindex(">")]
    return f"<sip:{STAND_IN_USER}{token}@{hostport};{_STAND_IN_TARGET}={quote(uri, safe='')}>"


def parse_stand_in(refer_to: str) -> tuple[str, str] | None:
    """``(token, the transferor's Refer-To)`` of a stand-in Refer-To (see :func:`stand_in_refer_to`), else None."""
    from urllib.parse import unquote

    m = re.search(rf"sips?:{STAND_IN_USER}([^@;>]+)@[^;>]*;(?:[^>]*;)?{_STAND_IN_TARGET}=([^;>?]+)", refer_to)
    if m is None:
        return None
    return m.group(1), f"<{unquote(m.group(2))}>"


# --- anchoring ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RelaySpec:
    """What the relay needs to place the callee's leg of an anchored call."""

    token: str
    dialled: str  # the Request-URI user the caller dialled; the relay's INVITE asks for the same
    caller_method: Method
    callee_method: Method
    note: str


class RelayPort(Protocol):
    """The media node's relay, as the service sees it."""

    def reserve(self, spec: RelaySpec) -> Flow | None: ...


@dataclass
class Anchor:
    spec: RelaySpec
    decision: RouteDecision  # the targets the caller's call was routed to
    created: float
    a_call_id: str
    b_call_ids: list[str] = field(default_factory=list)  # the relay's INVITE, once it arrived


class DtmfInterworking:
    """The anchoring hook (``B2BUA.on_route``) and the record of its decisions.

    ``trusted(source)`` says whether an INVITE came from the media node; ``note(text, call_ids)`` writes a line
    into the gateway's trace. ``relay`` is None while no media node is running: then nothing is anchored and the
    trace says so.
    """

    def __init__(self, relay: RelayPort | None, *, trusted: Callable[[object], bool],
                 note: Callable[[str, list[str]], None] | None = None, clock: Callable[[], float] = time.monotonic,
                 enabled: bool = True, peer_of: Callable[[str], Target | None] | None = None) -> None:
        self.relay = relay
        #: ``peer_of(call_id)``: the target the gateway connected the call with that Call-ID to (the relay asks
        #: it about a transfer's new call, to tell whether the new pair still needs converting).
        self.peer_of: Callable[[str], Target | None] = peer_of or (lambda _call_id: None)
        self.trusted = trusted
        self.note = note
        self.clock = clock
        self.enabled = enabled
        self.anchors: dict[str, Anchor] = {}
        #: Recent anchorings, newest last (Call-ID, relay token, note), for tests and diagnostics.
        self.log: list[dict] = []
        self._tokens = itertools.count(1)

    # --- the hook -------------------------------------------------------------------------------------------
    def on_route(self, invite: Request, source: object, decision: RouteDecision) -> RouteDecision:
        """Called by the B2BUA for every routed INVITE before it forks; returns the decision to use."""
        if not self.enabled or decision.rejected:
            return decision
        try:
            return self._on_route(invite, source, decision)
        except Exception:  # never let the hook stop a call: it is routed as it was
            log.exception("DTMF interworking: deciding on %s failed; routed unchanged", invite.call_id)
            return decision

    def _on_route(self, invite: Request, source: object, decision: RouteDecision) -> RouteDecision:
        token = invite.headers.get(RELAY_HEADER)
        if token is not None:
            return self._relay_leg(invite, source, token, decision)
        # Only device-to-device calls: a tenant user's, or a transferee's INVITE with Replaces for a device's
        # dialog (the transfer module puts the rewritten Replaces on the target's branch). Media-node parties take
        # both methods; queue and service calls keep their own routing; the media node's own INVITEs (relays
        # following a transfer included) are never anchored again.
        replacing = any(name.lower() == "replaces" for t in decision.targets for name, _ in t.headers)
        if ((decision.callee is None and not replacing) or invite.headers.get("Replaces") is not None
                or not any(t.kind == "device" for t in decision.targets) or self.trusted(source)):
            return decision
        d = decide(invite, decision)
        if not d.anchor:
            if d.caller is not None and any(leg is not None for _, leg in d.callees):
                self._record(invite.call_id, d.note(), anchored=False)
            return decision
        return self._anchor(invite, decision, d)

    def _anchor(self, invite: Request, decision: RouteDecision, d: Decision) -> RouteDecision:
        assert d.caller is not None and d.callee_method is not None
        self._expire()
        token = f"r{next(self._tokens)}-{secrets.token_hex(4)}"
        note = d.note()
        try:
            dialled = invite.request_uri.user or ""
        except Exception:
            dialled = ""
        spec = RelaySpec(token, dialled, d.caller.method, d.callee_method, note)
        flow = self.relay.reserve(spec) if self.relay is not None and dialled else None
        if flow is None:
            why = "no media node" if self.relay is None else "no relay slot free on the media node"
            self._record(invite.call_id, note.replace("→ anchored on media node", f"→ not anchored ({why})"),
                         anchored=False)
            return decision
        self.anchors[token] = Anchor(spec, decision, self.clock(), invite.call_id)
        self._record(invite.call_id, note, anchored=True, token=token)
        target = Target("relay", f"sip:relay-{token}@{flow.host}:{flow.port}", flow,
                        f"DTMF relay {token} on the media node")
        # callee=None: the caller's call ends at the relay; the user's services (forwarding, voicemail) apply to
        # the relay's call, which gets this call's targets.
        return RouteDecision(targets=(target,))

    def _relay_leg(self, invite: Request, source: object, token: str, decision: RouteDecision) -> RouteDecision:
        anchor = self.anchors.get(token.strip())
        if anchor is None or not self.trusted(source):
            log.warning("event=dtmf_relay_unknown token=%r source=%s: routed as dialled", token, source)
            return decision
        anchor.b_call_ids.append(invite.call_id)
        if self.note is not None:
            self.note(f"DTMF interworking: relay {token} places the callee's leg "
                      f"({anchor.spec.callee_method.label} towards the callee)", [anchor.a_call_id, invite.call_id])
        return anchor.decision

    # --- book-keeping -----------------------------------------------------------------------------------------
    def _record(self, call_id: str, text: str, *, anchored: bool, token: str | None = None) -> None:
        # Every device call passes here: only an anchoring is worth a log line at INFO.
        if anchored:
            log.info("event=dtmf_interworking call_id=%s anchored=true %s", call_id, text)
            self.log.append({"call_id": call_id, "anchored": anchored, "relay": token, "note": text,
                             "time": time.time()})
            if len(self.log) > 1000:
                del self.log[:500]
        else:
            log.debug("event=dtmf_interworking call_id=%s anchored=false %s", call_id, text)
        if self.note is not None:
            self.note(text, [call_id])

    def _expire(self) -> None:
        if len(self.anchors) < 32:
            return  # a handful of anchors waiting for their relay is normal; expire only when they pile up
        now = self.clock()
        for token in [t for t, a in self.anchors.items() if now - a.created > ANCHOR_TTL_S and not a.b_call_ids]:
            del self.anchors[token]

    def forget(self, token: str) -> None:
        """The relay's calls ended."""
        self.anchors.pop(token, None)

    def reset(self) -> None:
        self.anchors.clear()
        self.log.clear()
