"""The DTMF relay: a call anchored on the media node because its two legs carry digits differently.

``gateway.services.dtmf_interworking`` sends the caller's INVITE here (a Request-URI ``relay-<token>`` on a worker
that reserved call slots for it). The relay, in that one pjsua2 worker:

* places the callee's leg back through the gateway, from the caller's identity (number and display name, so the
  callee sees the caller), asking for the number the caller dialled and naming the anchor in ``X-Sipgw-Dtmf-Relay``;
  that leg's account offers ``telephone-event`` only when the callee's side uses RFC 4733 (``AddAccount.dtmf_method``);
  the caller's leg answers the caller's own offer, so each leg negotiates its own DTMF (RFC 3264 §6);
* rings the caller when the callee rings (a ``181`` when the callee's side was forwarded), answers it when the
  callee answers (or refuses it with the callee's final status), copying the response's ``Warning``, and bridges
  the two calls both ways in the worker's conference bridge;
* sends every digit received on one leg (``onDtmfDigit``, which reports the method) on the other leg in that leg's
  method (``Call.sendDtmf`` with RFC 2833/4733 or SIP INFO), in the order received and with the duration it had
  (the ``dtmf_end`` event: the RFC 4733 end packet, or the INFO body's ``Duration``); a digit whose end is not
  seen goes on with 160 ms when the next digit starts or after ``END_WAIT_S``;
* propagates hold and resume (a leg put on hold by its party puts the other leg on hold, RFC 3264 §8.4), hang-up,
  and CANCEL before answer (the caller's leg ending hangs up the callee's, which pjsua sends as CANCEL while it is
  unanswered, RFC 3261 §9.1);
* passes a transfer by either party on (see "Transfers" in ``gateway.services.dtmf_interworking``): a REFER on a
  leg arrives with a stand-in Refer-To naming this worker (set by the gateway); the call pjsua places for it comes
  back here and waits, the other party gets a REFER of its own with the transferor's Refer-To (RFC 3515 §2.4), and
  its final sipfrag status answers the waiting call, which pjsua reports to the transferor (RFC 3515 §2.4.5); the
  relay ends its leg to the transferee after a 2xx (RFC 5589 §6.1) and is gone once both legs have ended;
* follows an INVITE with Replaces for a leg (RFC 3891), or a REFER without a stand-in: the new call takes that leg's
  place once answered and is bridged with the other leg, then the other party is handed over to the target when the
  pair no longer needs converting (a REFER with Replaces for the relay's call, RFC 5589 §7).

Every leg's method is read from what that leg negotiated (``telephone-event`` in the remote SDP → RFC 4733, else
INFO); digits are kept per relay (``relays()``) as evidence. All worker commands run on the media node's control
thread, which is where worker events arrive.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from gateway.services.dtmf_interworking import (
    RELAY_HEADER,
    STAND_IN_USER,
    DtmfInterworking,
    Method,
    RelaySpec,
    callee_dtmf,
    parse_stand_in,
    telephone_event_types,
)
from gateway.services.model import Flow
from gateway.services.routing import Target

log = logging.getLogger("sipgw.media.relay")

RESERVATION_TTL_S = 10.0
#: After a hand-off, a leg still up this long after the other ended is hung up (the transferee that never acted).
HANDOFF_GRACE_S = 5.0
#: A transferee that has not given a final sipfrag this long after its REFER: the transferor is told 408.
XFER_WAIT_S = 64.0  # 64*T1, as a non-INVITE transaction and a NOTIFY-less subscription would have timed out
#: Call slots a relay holds: a whole worker (pjsua's limit is 4 calls per process). Its two legs, a transfer's new
#: call and the call it replaces must fit, and no party may share the worker (a party's transfer needs room too).
RELAY_SLOTS = 4
DEFAULT_DIGIT_MS = 160
END_WAIT_S = 1.5  # a received digit whose end was not seen by then is sent with DEFAULT_DIGIT_MS
_ENDED = "DISCONNECTED"
_STAND_IN = "#xfer"


@dataclass
class _Leg:
    side: str  # "caller" | "callee"
    handle: int | None = None
    state: str = "NULL"
    code: int | None = None
    sip_call_id: str = ""
    method: Method | None = None  # from the negotiated SDP, once confirmed
    held_by_relay: bool = False
    remote_hold: bool = False
    replaces: _Leg | None = None  # a transfer's new call, until it takes this leg's place
    #: A stand-in of a REFER passed through (see _Xfer): "out" is the call pjsua placed for the transferor's REFER,
    #: "in" the same call arriving back at this worker; both end once the transferee's outcome is given.
    stand_in: str | None = None


@dataclass
class _Xfer:
    """A REFER passed through the relay: ``leg`` got it from the transferor; the transferee (``to``) got one of its
    own; ``out`` is the call pjsua placed for the transferor's REFER, redirected back to this worker, and ``sink``
    that call arriving, answered with the transferee's final sipfrag status so the transferor's NOTIFY says it."""

    leg: _Leg
    to: _Leg
    target: str
    out: _Leg
    sink: _Leg | None = None
    code: int | None = None


@dataclass
class _Relay:
    spec: RelaySpec
    worker: Any
    caller: _Leg = field(default_factory=lambda: _Leg("caller"))
    callee: _Leg = field(default_factory=lambda: _Leg("callee"))
    account: str | None = None
    ringing: bool = False
    bridged: bool = False
    released: bool = False
    started: float = field(default_factory=time.time)
    ended: float | None = None
    digits: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    #: The leg whose party is being handed over to a transfer's target (a REFER with Replaces sent on it), and
    #: the final sipfrag status of that REFER once known.
    handoff: _Leg | None = None
    handoff_code: int | None = None
    xfers: list[_Xfer] = field(default_factory=list)

    def other(self, leg: _Leg) -> _Leg:
        return self.callee if leg is self.caller else self.caller

    def to_json(self) -> dict[str, Any]:
        def leg(x: _Leg) -> dict[str, Any]:
            return {"state": x.state, "code": x.code, "sip_call_id": x.sip_call_id,
                    "method": x.method.value if x.method else None, "held": x.held_by_relay or x.remote_hold}
        return {"token": self.spec.token, "note": self.spec.note, "dialled": self.spec.dialled,
                "caller_method": self.spec.caller_method.value, "callee_method": self.spec.callee_method.value,
                "worker": getattr(self.worker, "name", None), "caller": leg(self.caller), "callee": leg(self.callee),
                "digits": [{k: v for k, v in d.items() if k not in ("leg", "started", "ended")} for d in self.digits],
                "handoff": None if self.handoff is None else {"side": self.handoff.side, "code": self.handoff_code},
                "started": self.started, "ended": self.ended,
                "errors": list(self.errors)}


class DtmfRelay:
    """The relays of one media node (implements ``dtmf_interworking.RelayPort``)."""

    def __init__(self, node: Any) -> None:
        self.node = node
        self.service: DtmfInterworking | None = None
        self._lock = threading.Lock()
        self._specs: dict[str, RelaySpec] = {}  # reserved, INVITE not yet here
        self._relays: dict[str, _Relay] = {}
        self._by_handle: dict[tuple[int, int], tuple[_Relay, _Leg]] = {}
        self._accounts = 0

    # --- on the gateway's loop ----------------------------------------------------------------------------------
    def reserve(self, spec: RelaySpec) -> Flow | None:
        """``RELAY_SLOTS`` call slots on one worker for an anchored call (never spawns: this runs on the loop)."""
        node = self.node
        pool = node.pool
        if pool is None or node.closed:
            return None
        worker = pool.try_acquire(RELAY_SLOTS)
        node.in_background(self.ensure_pair)
        if worker is None:
            log.warning("event=dtmf_relay_no_slot token=%s pool=%s", spec.token, node.metrics())
            return None
        node.reserve_worker(worker, f"relay-{spec.token}", "relay", spec.token)
        with self._lock:
            self._specs[spec.token] = spec
        return Flow("UDP", node.host, worker.sip_port("udp"))

    def ensure_pair(self) -> None:
        """Keep one worker with ``RELAY_SLOTS`` free slots, so the next anchored call finds room (spawner thread)."""
        pool = self.node.pool
        if pool is None or self.node.closed:
            return
        try:
            worker = pool.try_acquire(RELAY_SLOTS) or pool.acquire(RELAY_SLOTS)
            pool.release(worker, RELAY_SLOTS)
        except Exception as exc:
            log.warning("DTMF relay: no idle media worker could be started: %s", exc)

    # --- on the control thread -----------------------------------------------------------------------------------
    def on_incoming(self, worker: Any, ev: Any, token: str) -> None:
        """The caller's INVITE reached the relay: place the callee's leg."""
        handle = int(ev.data["call"])
        if token.endswith(_STAND_IN):
            self._on_sink(worker, handle, token[: -len(_STAND_IN)])
            return
        with self._lock:
            spec = self._specs.pop(token, None)
        if spec is None:
            with contextlib.suppress(Exception):
                worker.reject(handle, 480, reason="Relay expired")
            self.node.pool.release(worker, RELAY_SLOTS)
            return
        r = _Relay(spec, worker)
        r.caller.handle, r.caller.state = handle, "INCOMING"
        r.caller.sip_call_id = str(ev.data.get("call_id", ""))
        with self._lock:
            self._relays[token] = r
            self._by_handle[(id(worker), handle)] = (r, r.caller)
        from sipua.sdp import parse_name_addr

        display, uri = parse_name_addr(str(ev.data.get("from", "")))
        uri = uri.split(";", 1)[0]
        self._accounts += 1
        account = f"relay{self._accounts}"
        node = self.node
        host, port = node.gateway_addr
        hostport = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        try:
            worker.add_account(account, uri if uri.startswith("sip") else f"sip:{uri}@{node.domain}",
                               display_name=display, dtmf_method=spec.callee_method.value)
            r.account = account
            b = worker.make_call(account, f"sip:{spec.dialled}@{hostport}", headers=[(RELAY_HEADER, spec.token)])
        except Exception as exc:
            log.warning("event=dtmf_relay_failed token=%s: %s", token, exc)
            r.errors.append(f"callee leg not placed: {exc}")
            with contextlib.suppress(Exception):
                worker.reject(handle, 500, reason="DTMF relay failed")
            return
        r.callee.handle, r.callee.state = b, "CALLING"
        with self._lock:
            self._by_handle[(id(worker), b)] = (r, r.callee)
        with contextlib.suppress(Exception):
            r.callee.sip_call_id = str(worker.call_info(b).get("call_id", ""))
        log.info("event=dtmf_relay token=%s caller_call=%d callee_call=%d worker=%s", token, handle, b, worker.name)

    def _pass_refer(self, r: _Relay, leg: _Leg, new_call: int, target: str) -> None:
        """The transferor's REFER on ``leg`` was accepted (RFC 3515 §2.4.2) and pjsua's call for it comes back here:
        the transferee gets a REFER of its own with the same Refer-To (§2.4.1) on its dialog."""
        other = r.other(leg)
        out = _Leg(leg.side, handle=new_call, state="CALLING", stand_in="out")
        x = _Xfer(leg, other, target, out)
        r.xfers.append(x)
        with self._lock:
            self._by_handle[(id(r.worker), new_call)] = (r, out)
        node = self.node
        uri_user = f"{STAND_IN_USER}{r.spec.token}"
        # the stand-in call uses the relay's own slots: none to release, so it is dropped here, not swept
        node.reserve_worker(r.worker, uri_user, "relay", r.spec.token + _STAND_IN, expire=False)
        node.schedule(lambda: node.drop_reservation(r.worker, uri_user), delay_s=RESERVATION_TTL_S / 2)
        r.digits.append({"transfer": "refer", "side": leg.side, "target": target, "t": round(time.time(), 3)})
        if other.handle is None or other.state != "CONFIRMED":
            x.code = 480
            self._note(r, f"DTMF interworking: relay {r.spec.token} cannot pass the {leg.side}'s REFER on (the "
                          f"{other.side}'s leg is not connected): 480", leg)
            return
        try:
            r.worker.transfer(other.handle, target, hangup_on_success=True)
        except Exception as exc:
            x.code = 500
            r.errors.append(f"REFER not passed to the {other.side}: {exc}")
            return
        self.node.schedule(lambda: self._xfer_timeout(r, x), delay_s=XFER_WAIT_S)
        self._note(r, f"DTMF interworking: relay {r.spec.token} passes the {leg.side}'s REFER to the {other.side} "
                      f"(Refer-To {target}); the {leg.side}'s sipfrag will be the {other.side}'s (RFC 3515)", leg)

    def _xfer_timeout(self, r: _Relay, x: _Xfer) -> None:
        if x.code is None and not r.released:
            x.code = 408
            r.errors.append(f"the {x.to.side} gave no final sipfrag in {XFER_WAIT_S:.0f} s: "
                            f"the {x.leg.side} is told 408")
            self._give_outcome(r, x)

    def _on_sink(self, worker: Any, handle: int, token: str) -> None:
        """pjsua's call for a passed REFER arrived back: it waits for the transferee's outcome (or has it)."""
        with self._lock:
            r = self._relays.get(token)
        x = next((x for x in r.xfers if x.sink is None), None) if r is not None else None
        if r is None or x is None:
            with contextlib.suppress(Exception):
                worker.reject(handle, 481, reason="No transfer")
            return
        x.sink = _Leg(x.leg.side, handle=handle, state="INCOMING", stand_in="in")
        with self._lock:
            self._by_handle[(id(worker), handle)] = (r, x.sink)
        self._give_outcome(r, x)

    def _give_outcome(self, r: _Relay, x: _Xfer) -> None:
        if x.sink is None or x.code is None or x.sink.state == _ENDED:
            return
        with contextlib.suppress(Exception):
            if 200 <= x.code < 300:
                r.worker.answer(x.sink.handle, 200)
            else:
                r.worker.reject(x.sink.handle, x.code if 300 <= x.code < 700 else 503)

    def _on_refer_status(self, r: _Relay, leg: _Leg, code: int) -> bool:
        """The final sipfrag from a transferee a REFER was passed to: it becomes the transferor's."""
        x = next((x for x in r.xfers if x.to is leg and x.code is None), None)
        if x is None:
            return False
        x.code = code
        self._note(r, f"DTMF interworking: relay {r.spec.token}: the {leg.side}'s sipfrag {code} goes to the "
                      f"{x.leg.side}", leg)
        self._give_outcome(r, x)
        return True

    def on_event(self, worker: Any, ev: Any) -> bool:
        """A worker event: True when it belongs to a relay (handled here)."""
        call = ev.data.get("call")
        if call is None or not self._by_handle:
            return False
        with self._lock:
            found = self._by_handle.get((id(worker), int(call)))
        if found is None:
            return False
        r, leg = found
        try:
            if ev.type == "call_state" and leg.stand_in is not None:
                self._on_stand_in(r, leg, str(ev.data.get("state", "")))
            elif ev.type == "call_state":
                self._on_state(r, leg, str(ev.data.get("state", "")), ev.data.get("code"), ev.data.get("warning"))
            elif leg is not r.caller and leg is not r.callee:
                pass  # digits and media of a transfer's call count once it has taken its leg's place
            elif ev.type == "dtmf":
                self._on_digit(r, leg, str(ev.data["digit"]), str(ev.data.get("method", "")), ev)
            elif ev.type == "dtmf_end":
                self._on_digit_end(r, leg, str(ev.data["digit"]), str(ev.data.get("method", "")),
                                   ev.data.get("duration_ms"), ev)
            elif ev.type == "media_state":
                self._on_media(r, leg, str(ev.data.get("status", "")))
            elif ev.type == "transfer_request" and ev.data.get("new_call") is not None and \
                    (stand_in := parse_stand_in(str(ev.data.get("target") or ""))) is not None:
                self._pass_refer(r, leg, int(ev.data["new_call"]), stand_in[1])
            elif ev.type in ("transfer_request", "replaced") and ev.data.get("new_call") is not None:
                self._on_transfer(r, leg, int(ev.data["new_call"]), ev.type)
            elif ev.type == "transfer_status" and ev.data.get("final"):
                code = int(ev.data.get("code") or 0)
                if not self._on_refer_status(r, leg, code):
                    self._on_handoff_status(r, leg, code, str(ev.data.get("reason") or ""))
        except Exception as exc:
            log.exception("DTMF relay %s: handling %s failed", r.spec.token, ev.type)
            r.errors.append(f"{ev.type}: {exc}")
        return True

    def _on_stand_in(self, r: _Relay, leg: _Leg, state: str) -> None:
        """The stand-in calls: answered, the placed one is ended (its NOTIFY 200 has gone to the transferor)."""
        if leg.state == _ENDED:
            return
        leg.state = state
        if state == _ENDED:
            with self._lock:
                self._by_handle.pop((id(r.worker), leg.handle), None)
            if r.caller.state == _ENDED and r.callee.state == _ENDED:
                self._finish(r)
        elif state == "CONFIRMED" and leg.stand_in == "out":
            with contextlib.suppress(Exception):
                r.worker.hangup(leg.handle)

    def _on_transfer(self, r: _Relay, leg: _Leg, new_call: int, kind: str) -> None:
        """pjsua made a call for a leg's transfer (REFER) or took one that replaces it (Replaces)."""
        if leg is not r.caller and leg is not r.callee:
            return
        new = _Leg(leg.side, handle=new_call, state="CALLING" if kind == "transfer_request" else "INCOMING",
                   replaces=leg)
        with self._lock:
            self._by_handle[(id(r.worker), new_call)] = (r, new)
        with contextlib.suppress(Exception):
            new.sip_call_id = str(r.worker.call_info(new_call).get("call_id", ""))
        r.digits.append({"transfer": kind, "side": leg.side, "t": round(time.time(), 3)})
        log.info("event=dtmf_relay_transfer token=%s side=%s kind=%s new_call=%d", r.spec.token, leg.side, kind,
                 new_call)

    def _on_state(self, r: _Relay, leg: _Leg, state: str, code: Any, warning: str | None = None) -> None:
        if leg.state == _ENDED:
            return
        leg.state = state
        if code:
            leg.code = int(code)
        w = r.worker
        if leg is not r.caller and leg is not r.callee:
            # a transfer's call not yet in place, or a leg that one replaced: it ends alone
            if state == _ENDED:
                with self._lock:
                    self._by_handle.pop((id(w), leg.handle), None)
                old = leg.replaces
                if old is not None and old.state == _ENDED and old in (r.caller, r.callee):
                    # the transfer failed after its transferor hung up: the other party's call ends too
                    other = r.other(old)
                    if other.handle is not None and other.state != _ENDED:
                        with contextlib.suppress(Exception):
                            w.hangup(other.handle)
                    else:
                        self._finish(r)
            elif state == "CONFIRMED" and leg.replaces is not None:
                old, leg.replaces = leg.replaces, None
                if old is r.caller:
                    r.caller = leg
                elif old is r.callee:
                    r.callee = leg
                else:
                    return
                leg.method = self._negotiated(r, leg)
                other = r.other(leg)
                if other.handle is not None and other.state != _ENDED:
                    w.conference(leg.handle, other.handle)
                    # the party handed over leaves this dialog: no resume for it (done if the hand-off fails)
                    if not self._hand_off(r, leg, other) and other.held_by_relay:
                        w.unhold(other.handle)
                        other.held_by_relay = False
            return
        other = r.other(leg)
        if state == _ENDED:
            with self._lock:
                self._by_handle.pop((id(w), leg.handle), None)
                pending = any(x.replaces is leg and x.state != _ENDED for _, x in self._by_handle.values())
            if pending:
                return  # a transfer's call is about to take this leg's place (a transferor that hung up early)
            if any(x.to is leg and x.code is not None and 200 <= x.code < 300 for x in r.xfers):
                # The transferee's leg, ended by the relay after its 200 sipfrag: the transferor's 200 NOTIFY is
                # on its way and the transferor ends its own call on it (RFC 5589 §6.1); a BYE now could overtake it.
                if other.handle is None or other.state == _ENDED:
                    self._finish(r)
                else:
                    self.node.schedule(lambda: self._end_stray(r, other), delay_s=HANDOFF_GRACE_S)
                return
            if r.handoff is not None:
                # Handing over: the target ends the relay's call when the transferee's INVITE replaces it, and the
                # relay ends the transferee's leg after the 200 sipfrag; neither ends the other here.
                if other.handle is None or other.state == _ENDED:
                    self._finish(r)
                else:
                    self.node.schedule(lambda: self._end_stray(r, other), delay_s=HANDOFF_GRACE_S)
                return
            if other.handle is not None and other.state != _ENDED:
                if leg is r.callee and other.state in ("INCOMING", "EARLY"):
                    status = leg.code if leg.code and 300 <= leg.code < 700 else 480
                    with contextlib.suppress(Exception):  # the callee refused: the caller hears why
                        w.reject(other.handle, status, headers=[("Warning", warning)] if warning else ())
                else:
                    with contextlib.suppress(Exception):
                        w.hangup(other.handle)  # BYE, or CANCEL for the unanswered callee leg
            if other.handle is None or other.state == _ENDED:
                self._finish(r)
            return
        if leg is r.callee and state == "EARLY" and r.caller.state in ("INCOMING", "EARLY"):
            # Ringing once; a 181 (forwarded) or a provisional with a Warning goes to the caller as it came.
            forwarded = leg.code == 181 or bool(warning)
            if not r.ringing or forwarded:
                r.ringing = True
                code = leg.code if forwarded and leg.code and 180 <= leg.code < 200 else 180
                with contextlib.suppress(Exception):
                    w.answer(r.caller.handle, code, headers=[("Warning", warning)] if warning else ())
        if state == "CONFIRMED":
            leg.method = self._negotiated(r, leg)
            if leg is r.callee and r.caller.state in ("INCOMING", "EARLY"):
                w.answer(r.caller.handle, 200)
            if not r.bridged and r.caller.handle is not None and r.callee.handle is not None:
                w.conference(r.caller.handle, r.callee.handle)  # each leg hears the other, nothing else
                r.bridged = True

    def _hand_off(self, r: _Relay, new: _Leg, other: _Leg) -> bool:
        """Hand ``other``'s party over to the target of the transfer call ``new`` (just in its leg's place) when the
        pair no longer needs converting: a REFER on ``other``'s dialog naming ``new`` with Replaces. False: the
        relay stays in the path (the pair still differs, the target is unknown, or the REFER could not be sent)."""
        peer = self.service.peer_of(new.sip_call_id) if self.service is not None else None
        theirs = other.method or self._negotiated(r, other)
        other.method = theirs
        # A device target's method as the gateway decides any callee's (its REGISTER, else the catalogue): the
        # relay's own offer on the new call (the transferor's leg's method) says nothing about the target.
        target = callee_dtmf(peer) if peer is not None and peer.kind == "device" else None
        if peer is None:
            why = "the gateway routed no call to the new party (it called in, with Replaces): its method is unknown"
        elif peer.kind == "device" and target is None:
            why = f"the method of the target ({peer.label}) is not known"
        elif target is not None and target.method != theirs:
            why = f"the target ({peer.label}) uses {target.method.label}, the {other.side} {theirs.label}"
        else:
            why = ""
        if why:
            self._note(r, f"DTMF interworking: relay {r.spec.token} stays in the transferred call ({why})", new)
            return False
        try:
            r.worker.transfer_replaces(other.handle, new.handle, hangup_on_success=True)
        except Exception as exc:
            r.errors.append(f"hand-off REFER not sent: {exc}")
            return False
        r.handoff = other
        r.digits.append({"handoff": other.side, "t": round(time.time(), 3)})
        what = "a media-node party" if target is None else f"{peer.label}, also {theirs.label}: {target.basis}"
        self._note(r, f"DTMF interworking: relay {r.spec.token} hands the {other.side} over to the transfer target "
                      f"({what}): REFER with Replaces for the relay's call (RFC 3891)", new)
        return True

    def _on_handoff_status(self, r: _Relay, leg: _Leg, code: int, reason: str) -> None:
        """The final sipfrag of the hand-off REFER. 2xx: sipua ends ``leg`` itself (RFC 5589 §7.1). Otherwise the
        relay stays in the path: the party is resumed, or, when the target's call has ended meanwhile, hung up."""
        if r.handoff is not leg:
            return
        r.handoff_code = code
        if 200 <= code < 300:
            return
        r.handoff = None
        r.errors.append(f"hand-off of the {leg.side} refused: {code} {reason}".rstrip())
        other = r.other(leg)
        w = r.worker
        if other.handle is None or other.state == _ENDED:
            with contextlib.suppress(Exception):
                w.hangup(leg.handle)
        elif leg.held_by_relay:
            w.unhold(leg.handle)
            leg.held_by_relay = False

    def _end_stray(self, r: _Relay, leg: _Leg) -> None:
        if leg.state != _ENDED and leg.handle is not None:
            with contextlib.suppress(Exception):
                r.worker.hangup(leg.handle)

    def _note(self, r: _Relay, text: str, leg: _Leg) -> None:
        log.info("event=dtmf_relay_note token=%s %s", r.spec.token, text)
        service = self.service
        if service is not None and service.note is not None:
            a_call_id = service.anchors[r.spec.token].a_call_id if r.spec.token in service.anchors else ""
            service.note(text, [c for c in (a_call_id, leg.sip_call_id) if c])

    def _negotiated(self, r: _Relay, leg: _Leg) -> Method:
        """The leg's method: RFC 4733 when its party's SDP lists telephone-event, else INFO."""
        try:
            remote = r.worker.call_info(leg.handle).get("remote_sdp") or ""
        except Exception:
            remote = ""
        if remote:
            return Method.RFC4733 if telephone_event_types(remote) else Method.INFO
        return r.spec.caller_method if leg is r.caller else r.spec.callee_method

    def _on_digit(self, r: _Relay, leg: _Leg, digit: str, method: str, ev: Any) -> None:
        """A digit started on ``leg``: it is sent on when it ends (its duration known). An INFO digit's end is
        reported before its start: then it has gone already."""
        early = next((e for e in r.digits if e.get("leg") is leg and e["digit"] == digit and not e["started"]), None)
        if early is not None:
            early["started"] = True
            return
        for older in [e for e in r.digits if e.get("leg") is leg and not e["ended"]]:
            self._send(r, older, None, "no end seen before the next digit")  # keep the order
        wall = time.time() - max(0.0, time.monotonic() - ev.ts)
        entry: dict[str, Any] = {"digit": digit, "from": leg.side, "received_as": method, "t": round(wall, 3),
                                 "leg": leg, "started": True, "ended": False}
        r.digits.append(entry)
        self.node.schedule(lambda: self._send(r, entry, None, f"no end seen in {END_WAIT_S} s")
                           if not entry["ended"] else None, delay_s=END_WAIT_S)

    def _on_digit_end(self, r: _Relay, leg: _Leg, digit: str, method: str, duration: Any, ev: Any) -> None:
        entry = next((e for e in r.digits if e.get("leg") is leg and e["digit"] == digit and not e["ended"]), None)
        if entry is None:  # the end came first (INFO): the digit starts and ends here
            wall = time.time() - max(0.0, time.monotonic() - ev.ts)
            entry = {"digit": digit, "from": leg.side, "received_as": method, "t": round(wall, 3), "leg": leg,
                     "started": False, "ended": False}
            r.digits.append(entry)
        self._send(r, entry, int(duration) if duration else None, None)

    def _send(self, r: _Relay, entry: dict[str, Any], duration: int | None, why_default: str | None) -> None:
        if entry["ended"]:
            return
        entry["ended"] = True
        leg = entry["leg"]
        other = r.other(leg) if leg in (r.caller, r.callee) else None
        ms = min(max(duration, 40), 5000) if duration else DEFAULT_DIGIT_MS
        entry["duration_ms"] = ms
        if why_default:
            entry["duration_note"] = why_default
        if other is None or other.handle is None or other.state != "CONFIRMED":
            entry["dropped"] = f"the {other.side if other else 'other'}'s leg is not connected"
            return
        out = other.method or self._negotiated(r, other)
        other.method = out
        try:
            r.worker.send_dtmf(other.handle, entry["digit"], method=out.value, duration_ms=ms)
            entry["sent_as"] = out.value
        except Exception as exc:
            entry["dropped"] = str(exc)

    def _on_media(self, r: _Relay, leg: _Leg, status: str) -> None:
        """Hold and resume from one party go to the other (the relay's own hold shows as local_hold: ignored)."""
        other = r.other(leg)
        if other.handle is None or other.state != "CONFIRMED":
            return
        w = r.worker
        if status == "remote_hold" and not leg.remote_hold:
            leg.remote_hold = True
            if not other.held_by_relay:
                w.hold(other.handle)
                other.held_by_relay = True
        elif status == "active" and leg.remote_hold:
            leg.remote_hold = False
            if other.held_by_relay:
                w.unhold(other.handle)
                other.held_by_relay = False

    def _finish(self, r: _Relay) -> None:
        if r.released:
            return
        live = [x for xf in r.xfers for x in (xf.out, xf.sink) if x is not None and x.state != _ENDED]
        if live:
            for x in live:  # the worker's slots are given back once the stand-ins have ended too
                with contextlib.suppress(Exception):
                    r.worker.hangup(x.handle)
            return
        r.released = True
        r.ended = time.time()
        node = self.node
        pool = node.pool
        if pool is not None:
            with contextlib.suppress(Exception):
                pool.release(r.worker, RELAY_SLOTS)
        if r.account is not None:
            account, w = r.account, r.worker
            node.schedule(lambda: _quietly(w.remove_account, account), delay_s=0.5)
        if self.service is not None:
            self.service.forget(r.spec.token)
        log.info("event=dtmf_relay_end token=%s digits=%d", r.spec.token, len(r.digits))

    # --- reads (any thread) and reset ---------------------------------------------------------------------------
    def relays(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r.to_json() for r in self._relays.values()]

    def reset(self) -> None:
        """Hang up live relays (from any thread) and forget them, and the service's anchors and decisions."""
        if self.service is not None:
            self.service.reset()
        with self._lock:
            live = [r for r in self._relays.values() if not r.released]
            self._relays = {t: r for t, r in self._relays.items() if not r.released}
            self._specs.clear()
        for r in live:
            for leg in (r.caller, r.callee):
                if leg.handle is not None and leg.state != _ENDED:
                    self.node.schedule(lambda w=r.worker, h=leg.handle: _quietly(w.hangup, h))


def _quietly(fn: Any, *args: Any) -> None:
    with contextlib.suppress(Exception):
        fn(*args)


def install(node: Any, gw: Any) -> DtmfInterworking:
    """Give the node a relay and the gateway's B2BUA the anchoring hook; the decisions go into the trace."""
    relay = DtmfRelay(node)
    trace = getattr(gw, "trace", None)

    def note(text: str, call_ids: list[str]) -> None:
        add = getattr(trace, "note", None)
        if add is not None:
            add(time.time(), text, call_ids)

    core = gw.core

    def peer_of(call_id: str) -> Target | None:
        """What the gateway routed the call with this Call-ID to (the answering branch's target). Called from the
        control thread while the loop may change the calls: a changed dict is read again."""
        for _ in range(5):
            try:
                for call in list(core.b2bua.calls.values()):
                    if call.a.invite is not None and call.a.invite.call_id == call_id:
                        return call.winner.target if call.winner is not None else None
                return None
            except RuntimeError:
                continue
        return None

    service = DtmfInterworking(relay, trusted=lambda src: core.is_trusted(src), note=note, peer_of=peer_of)
    relay.service = service
    node.relay = relay
    gw.dtmf_interworking = service
    core.b2bua.on_route = service.on_route
    node.in_background(relay.ensure_pair)
    return service
