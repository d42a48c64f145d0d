"""The gateway's back-to-back user agent: one A leg, N forked B legs, call-control events between them.

The B2BUA is a user agent on each leg (RFC 3261 §6 "back-to-back user agent"): each leg has its own
dialog (Call-ID, tags, CSeq), and the gateway's Contact is the remote target both sides see. Media is not
anchored: SDP passes through, so RTP (and RFC 4733 DTMF) flows between the endpoints directly.

* Forking: an INVITE to a user rings every registered device and the Teams client in parallel; the
  first 2xx wins, the other branches get CANCEL with ``Reason: SIP;cause=200;text="Call completed
  elsewhere"`` (RFC 3326); a second 2xx that raced the CANCEL is ACKed and hung up. When every branch
  fails the caller gets 486 if any branch was busy, else 480 when nothing answered, else the best
  response (§16.7 rules, 6xx first).
* Provisional responses: the first 180 is relayed; 183 with SDP (early media) is relayed; a reliable
  provisional (RFC 3262) is acknowledged on its leg with PRACK by the gateway itself and relayed
  unreliably.
* In-dialog requests (re-INVITE, UPDATE, INFO, NOTIFY, REFER, MESSAGE, OPTIONS) are relayed to the other
  leg with their body and the headers that carry meaning; the final response comes back the same way.
  Re-INVITE glare (RFC 3261 §14.2): a re-INVITE on a leg where the gateway's own relayed re-INVITE is
  unanswered gets 491 from the gateway; a 491 from an endpoint is relayed like any response.
* BYE is answered at once and sent on the other leg; CANCEL ends every branch.

All of it is logic over a :class:`Stack` (send a request, a response, an ACK, a CANCEL); no I/O.
"""

from __future__ import annotations

import enum
import itertools
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Protocol

from gateway.services.diagnostics import reason_header, warning_header
from gateway.services.model import Flow, User
from gateway.services.routing import RouteDecision, Target
from gateway.sip import Headers, NameAddr, Request, Response, SipParseError
from gateway.sip.dialog import Dialog, DialogError, DialogId
from gateway.sip.endpoint import Address, TransactionId
from gateway.sip.headers import header_key
from gateway.sip.randomness import random_hex

log = logging.getLogger("sipgw.b2bua")

#: Headers relayed from one leg to the other on INVITE and in-dialog requests and responses.
RELAYED_HEADERS = (
    "Content-Type", "Content-Disposition", "Content-Encoding", "Content-Language", "Session-Expires",
    "Min-SE", "Event", "Subscription-State", "Refer-To", "Referred-By", "Replaces", "Allow-Events",
    "Info-Package", "Recv-Info", "Accept", "Alert-Info", "Call-Info", "Reason", "Priority", "Subject",
    "Geolocation", "Geolocation-Routing", "Retry-After", "Warning", "Unsupported", "Min-Expires",
)
#: Option tags the gateway supports on every leg.
SUPPORTED = "100rel, timer, replaces"
ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO, PRACK, REFER, NOTIFY, MESSAGE, SUBSCRIBE"
COMPLETED_ELSEWHERE = 'SIP;cause=200;text="Call completed elsewhere"'


class Stack(Protocol):
    """What the B2BUA needs from the transaction layer and transports."""

    def now(self) -> float: ...
    def send_request(self, request: Request, dest: Address) -> TransactionId: ...
    def send_response(self, transaction: TransactionId, response: Response) -> None: ...
    def send_ack(self, ack: Request, dest: Address) -> None: ...
    def send_cancel(self, transaction: TransactionId, headers: list[tuple[str, str]]) -> None: ...
    def contact_uri(self, transport: str) -> str: ...


class CallState(enum.StrEnum):
    TRYING = "trying"
    EARLY = "early"
    CONFIRMED = "confirmed"
    ENDED = "ended"


class Side(enum.StrEnum):
    A = "A"  # the caller: the gateway is the UAS
    B = "B"  # a callee branch: the gateway is the UAC


@dataclass(init=False)
class Leg:
    """One side of a call. ``__init__`` is written out: compiled, the generated one would run as interpreted
    Python (two legs or more per call)."""

    side: Side
    dest: Address
    label: str
    dialog: Dialog | None
    invite: Request | None  # the INVITE of this leg (received for A, sent for B)
    invite_tx: TransactionId | None
    local_tag: str
    final_status: int | None
    target: Target | None
    acked: bool
    pending_ack_body: bytes | None
    prack_rseqs: set[int]

    def __init__(self, side: Side, dest: Address, label: str, dialog: Dialog | None = None,
                 invite: Request | None = None, invite_tx: TransactionId | None = None, local_tag: str | None = None,
                 final_status: int | None = None, target: Target | None = None, acked: bool = False,
                 pending_ack_body: bytes | None = None, prack_rseqs: set[int] | None = None) -> None:
        self.side = side
        self.dest = dest
        self.label = label
        self.dialog = dialog
        self.invite = invite
        self.invite_tx = invite_tx
        self.local_tag = random_hex(6) if local_tag is None else local_tag
        self.final_status = final_status
        self.target = target
        self.acked = acked
        self.pending_ack_body = pending_ack_body
        self.prack_rseqs = set() if prack_rseqs is None else prack_rseqs


@dataclass
class CallRecord:
    """What the control API and the reports show about a call."""

    id: str
    caller: str
    callee: str
    state: str
    a_call_id: str
    b_call_ids: list[str]
    answered_by: str | None
    end_reason: str | None
    created: float
    answered: float | None
    ended: float | None


#: Call numbers, unique in the process: calls are ``c1``, ``c2``...
_CALL_NUMBERS: Final = itertools.count(1)


class Call:

    def __init__(self, b2bua: B2BUA, a: Leg, caller: NameAddr, callee: str):
        self.id = f"c{next(_CALL_NUMBERS)}"
        self.b2bua = b2bua
        self.a = a
        self.b_legs: list[Leg] = []
        self.winner: Leg | None = None
        self.state = CallState.TRYING
        self.caller = caller
        self.callee = callee
        self.created = b2bua.stack.now()
        self.answered: float | None = None
        self.ended: float | None = None
        self.end_reason: str | None = None
        self.relayed_ringing = False
        self.relayed_sdp = False
        self.busy_seen = False
        self.best_failure: Response | None = None
        #: our client transaction on one leg → (the server transaction on the other leg, the request)
        self.relays: dict[TransactionId, tuple[Leg, TransactionId | None, Request]] = {}
        #: The tenant user the call was routed to (forwarding, voicemail and transfer services read it).
        self.callee_user: User | None = None
        #: Branches to start once the ringing ones are cancelled (no-answer forwarding, voicemail).
        self.divert_to: Callable[[], list[Target]] | None = None
        #: (diagnostic code, text) of a redirect the gateway refused (the caller's final response says why).
        self.refusal: tuple[str, str] | None = None
        #: Usernames the call was forwarded through (loop protection).
        self.forwarded_via: list[str] = []
        #: The service that diverts the call when nobody answers (``forwarding`` or ``voicemail``), once one has.
        self.no_answer_by: str | None = None
        #: Whether the voicemail service has tried this call after every device was busy.
        self.voicemail_tried = False

    def other(self, leg: Leg) -> Leg | None:
        return self.winner if leg.side is Side.A else self.a

    def record(self) -> CallRecord:
        return CallRecord(
            id=self.id, caller=str(self.caller.uri), callee=self.callee, state=self.state.value,
            a_call_id=self.a.invite.call_id if self.a.invite else "",
            b_call_ids=[leg.invite.call_id for leg in self.b_legs if leg.invite],
            answered_by=self.winner.label if self.winner else None, end_reason=self.end_reason,
            created=self.created, answered=self.answered, ended=self.ended,
        )


class B2BUA:
    def __init__(self, stack: Stack, *, domain: str, agent: str = "sipgw-lab",
                 on_call_end: Callable[[Call], None] | None = None):
        self.stack = stack
        self.domain = domain
        self.agent = agent
        self.on_call_end = on_call_end
        #: Service hooks (forwarding, voicemail): ``on_new_call(call)`` once the branches are started;
        #: ``on_redirect(call, leg, response) -> list[Target] | None`` for a 3xx from a branch (None: not
        #: followed; the hook sets ``call.refusal`` to say why); ``on_failure(call) -> list[Target]`` when every
        #: branch failed, before the caller gets the final response.
        self.on_new_call: Callable[[Call], None] | None = None
        self.on_redirect: Callable[[Call, Leg, Response], list[Target] | None] | None = None
        self.on_failure: Callable[[Call], list[Target]] | None = None
        #: ``on_route(invite, source, decision) -> decision`` before a routed INVITE forks (DTMF interworking
        #: sends calls whose legs carry digits differently to a relay on the media node); None: fork as routed.
        self.on_route: Callable[[Request, Address, RouteDecision], RouteDecision] | None = None
        #: What the SIP core calls with every request that has a To tag: the head of a chain. Services that take
        #: some in-dialog requests first (MWI's subscriptions, transfer's REFER) put their handler here and pass
        #: on what they do not take to the one they replaced; the chain ends at ``on_in_dialog_request``.
        self.in_dialog: Callable[[Request, TransactionId, Address], bool] = self.on_in_dialog_request
        self.calls: dict[str, Call] = {}
        self._by_client_tx: dict[TransactionId, tuple[Call, Leg]] = {}
        self._by_server_tx: dict[TransactionId, Call] = {}
        self._by_dialog: dict[DialogId, tuple[Call, Leg]] = {}
        self.history: list[CallRecord] = []
        self.max_history = 10_000

    # --- new calls -----------------------------------------------------------------------------------------
    def new_call(self, invite: Request, tx: TransactionId, source: Address, decision: RouteDecision,
                 caller_identity: NameAddr) -> Call | None:
        """Start a call for an initial INVITE already authorised by the caller's policy checks."""
        if self.on_route is not None and not decision.rejected:
            decision = self.on_route(invite, source, decision)
        a = Leg(Side.A, source, f"caller {source}", invite=invite, invite_tx=tx)
        call = Call(self, a, caller_identity, str(invite.request_uri))
        if decision.rejected:
            self._respond(a, invite, tx, decision.reject_status or 404,
                          warning=(decision.reject_code, decision.reject_text))
            call.state = CallState.ENDED
            call.end_reason = f"{decision.reject_status} {decision.reject_code}"
            self._archive(call)
            return None
        self.calls[call.id] = call
        self._by_server_tx[tx] = call
        call.callee_user = decision.callee
        # No 100 here: the transaction layer sent it before the INVITE reached us (RFC 3261 §17.2.1).
        for target in decision.targets:
            self._fork(call, target)
        if not call.b_legs:
            self._respond(a, invite, tx, 480, warning=("SGW-ROUTE-UNREACHABLE", "no branch could be started"))
            self._end(call, "no branch could be started")
            return None
        if self.on_new_call is not None:
            try:
                self.on_new_call(call)
            except Exception:
                log.exception("call %s: on_new_call hook failed", call.id)
        return call

    def _fork(self, call: Call, target: Target) -> None:
        a_inv = call.a.invite
        assert a_inv is not None
        dest = Address(target.flow.transport, target.flow.host, target.flow.port)
        leg = Leg(Side.B, dest, target.label, target=target)
        call_id = f"{random_hex(10)}@{self.domain}"
        display = call.caller.display
        caller_uri = call.caller.uri
        from_value = (f'"{display}" ' if display else "") + f"<{caller_uri}>;tag={leg.local_tag}"
        headers: list[tuple[str, str]] = [
            ("From", from_value),
            ("To", f"<{target.uri}>"),
            ("Call-ID", call_id),
            ("CSeq", "1 INVITE"),
            ("Max-Forwards", str(max((a_inv.max_forwards or 70) - 1, 0))),
            ("Contact", f"<{self.stack.contact_uri(dest.transport)}>"),
            ("P-Asserted-Identity", (f'"{display}" ' if display else "") + f"<{caller_uri}>"),
            ("Supported", SUPPORTED),
            ("Allow", ALLOW),
            ("User-Agent", self.agent),
        ]
        if target.headers:
            own = {header_key(name) for name, _ in target.headers}
            headers.extend((n, v) for n, v in _relayed(a_inv) if header_key(n) not in own)
            headers.extend(target.headers)
        else:
            headers.extend(_relayed(a_inv))
        invite = Request("INVITE", target.uri, Headers(headers), a_inv.body)
        leg.invite = invite
        try:
            tx = self.stack.send_request(invite, dest)
        except ValueError as exc:
            log.warning("call %s: cannot fork to %s: %s", call.id, target.label, exc)
            return
        leg.invite_tx = tx
        call.b_legs.append(leg)
        self._by_client_tx[tx] = (call, leg)

    # --- responses on B legs ---------------------------------------------------------------------------------
    def on_response(self, response: Response, tx: TransactionId) -> bool:
        """A response for one of our client transactions; False when it is not the B2BUA's."""
        found = self._by_client_tx.get(tx)
        if found is None:
            return False
        call, leg = found
        if tx == leg.invite_tx:
            self._on_invite_response(call, leg, response)
        else:
            self._on_relayed_response(call, leg, tx, response)
        return True

    def _on_invite_response(self, call: Call, leg: Leg, resp: Response) -> None:
        status = resp.status
        if status < 101:
            return
        assert leg.invite is not None
        if status < 300 and resp.to.tag:
            self._track_b_dialog(call, leg, resp)
        if status < 200:
            if "100rel" in _tags(resp.headers.get("Require")) and resp.headers.get("RSeq"):
                self._prack(call, leg, resp)
            if call.state is CallState.ENDED or call.winner is not None:
                return
            relay = False
            if resp.body and not call.relayed_sdp:
                relay = True
                call.relayed_sdp = True
            elif status == 180 and not call.relayed_ringing:
                relay = True
            if relay:
                call.relayed_ringing = call.relayed_ringing or status == 180
                call.state = CallState.EARLY
                self._relay_response_to_a(call, resp, status)
            return
        if status < 300:
            self._on_b_answer(call, leg, resp)
            return
        leg.final_status = status
        self._by_client_tx.pop(leg.invite_tx, None)  # type: ignore[arg-type]
        if call.winner is not None or call.state is CallState.ENDED:
            return
        if 300 <= status < 400 and self.on_redirect is not None:
            # RFC 3261 §8.1.3.4: a UAC may recurse on the Contacts of a 3xx; the service decides (policy).
            targets = self.on_redirect(call, leg, resp)
            if targets:
                self._forwarded(call, targets, 'SIP;cause=302;text="Redirected by the device"')
                return
        if status in (486, 600):
            call.busy_seen = True
        if call.best_failure is None or _better_failure(resp, call.best_failure):
            call.best_failure = resp
        if all(b.final_status is not None for b in call.b_legs):
            self._fail_call(call)

    def _track_b_dialog(self, call: Call, leg: Leg, resp: Response) -> None:
        try:
            if leg.dialog is None:
                leg.dialog = Dialog.from_uac(leg.invite, resp)  # type: ignore[arg-type]
                self._by_dialog[leg.dialog.id] = (call, leg)
            elif leg.dialog.remote.tag == resp.to.tag:
                leg.dialog.update_from_response(resp)
        except (DialogError, SipParseError) as exc:
            log.info("call %s: response without a usable dialog: %s", call.id, exc)

    def _prack(self, call: Call, leg: Leg, resp: Response) -> None:
        """RFC 3262: the gateway acknowledges a reliable provisional on its own leg."""
        try:
            rseq = int(resp.headers.get("RSeq") or "0")
        except ValueError:
            return
        if leg.dialog is None or rseq in leg.prack_rseqs:
            return
        leg.prack_rseqs.add(rseq)
        cseq = resp.cseq
        prack = leg.dialog.create_request("PRACK", headers=[("RAck", f"{rseq} {cseq.seq} {cseq.method}")])
        tx = self.stack.send_request(prack, leg.dest)
        self._by_client_tx[tx] = (call, leg)
        call.relays[tx] = (leg, None, prack)

    def _on_b_answer(self, call: Call, leg: Leg, resp: Response) -> None:
        if call.winner is not None and call.winner is not leg:
            # A second branch answered before our CANCEL reached it: ACK it, then hang it up.
            self._ack_b(leg, b"")
            self._bye(call, leg, reason=COMPLETED_ELSEWHERE)
            return
        if call.winner is leg:  # a retransmitted 2xx: ACK again
            self._ack_b(leg, leg.pending_ack_body or b"")
            return
        if call.state is CallState.ENDED:
            self._ack_b(leg, b"")
            self._bye(call, leg, reason='SIP;cause=487;text="Request Terminated"')
            return
        call.winner = leg
        call.state = CallState.CONFIRMED
        call.answered = self.stack.now()
        leg.final_status = resp.status
        for other in call.b_legs:
            if other is not leg and other.final_status is None and other.invite_tx is not None:
                self.stack.send_cancel(other.invite_tx, [("Reason", COMPLETED_ELSEWHERE)])
        a_inv = call.a.invite
        assert a_inv is not None
        if a_inv.body:
            self._ack_b(leg, b"")  # offer was in the INVITE: the answer is in this 2xx
        # else: late offer; the B leg's ACK carries the A leg's answer, sent when the A ACK arrives
        self._relay_response_to_a(call, resp, resp.status)

    def _ack_b(self, leg: Leg, body: bytes) -> None:
        if leg.dialog is None or leg.invite is None:
            return
        headers = [("Content-Type", "application/sdp")] if body else []
        ack = leg.dialog.create_ack(leg.invite.cseq.seq, body=body, headers=headers)
        leg.acked = True
        leg.pending_ack_body = body
        self.stack.send_ack(ack, leg.dest)

    def _relay_response_to_a(self, call: Call, resp: Response, status: int) -> None:
        a = call.a
        assert a.invite is not None and a.invite_tx is not None
        extra = [("Contact", f"<{self.stack.contact_uri(a.dest.transport)}>"), ("Supported", SUPPORTED),
                 ("Allow", ALLOW)]
        extra.extend(_relayed(resp))
        out = Response.for_request(a.invite, status, resp.reason, headers=extra, body=resp.body,
                                   to_tag=a.local_tag)
        if a.dialog is None:
            try:
                a.dialog = Dialog.from_uas(a.invite, out)
                self._by_dialog[a.dialog.id] = (call, a)
            except (DialogError, SipParseError) as exc:
                log.info("call %s: no A dialog: %s", call.id, exc)
        if status >= 200 and a.dialog is not None:
            a.dialog.confirm()
        self._send_response(a.invite_tx, out)

    def _fail_call(self, call: Call) -> None:
        a = call.a
        assert a.invite is not None and a.invite_tx is not None
        targets: list[Target] = []
        if call.divert_to is not None:
            make, call.divert_to = call.divert_to, None
            targets = make()
        elif self.on_failure is not None:
            try:
                targets = self.on_failure(call)
            except Exception:
                log.exception("call %s: on_failure hook failed", call.id)
        if targets and self._forwarded(call, targets, None):
            return
        best = call.best_failure
        if call.refusal is not None:
            refusal_code, refusal_text = call.refusal
            self._respond(a, a.invite, a.invite_tx, 480, warning=(refusal_code, refusal_text))
            self._end(call, f"480 {refusal_code}")
            return
        code: str | None
        text: str | None
        if call.busy_seen:
            status, code, text = 486, "SGW-ROUTE-BUSY", f"every endpoint of {call.callee} is busy"
        elif best is None or best.status in (408, 480, 487, 503):
            status, code, text = 480, "SGW-ROUTE-UNREACHABLE", f"no endpoint of {call.callee} answered"
        else:
            status, code, text = best.status, None, None
        extra = _relayed(best) if best is not None and status == best.status else []
        self._respond(a, a.invite, a.invite_tx, status, warning=(code, text) if code else None, extra=extra,
                      reason=best.reason if best is not None and status == best.status else None)
        self._end(call, f"{status}")

    def _forwarded(self, call: Call, targets: list[Target], reason: str | None) -> bool:
        """Start new branches for a call whose earlier ones ended (redirect, no answer, busy → voicemail); the
        caller is told with 181 Call Is Being Forwarded (RFC 3261 §21.1.3). False when none could start."""
        before = len(call.b_legs)
        for target in targets:
            self._fork(call, target)
        if len(call.b_legs) == before:
            return False
        a = call.a
        if a.invite is not None and a.invite_tx is not None and call.winner is None:
            labels = ", ".join(t.label for t in targets)
            self._respond(a, a.invite, a.invite_tx, 181, warning=("SGW-FORWARDED", f"forwarded to {labels}"),
                          extra=[("Reason", reason)] if reason else ())
        return True

    def divert(self, call_id: str, make_targets: Callable[[], list[Target]], reason: str) -> bool:
        """Cancel the ringing branches of an unanswered call and then ring ``make_targets()`` instead
        (forward on no answer, voicemail). False when the call is already answered or gone."""
        call = self.calls.get(call_id)
        if call is None or call.winner is not None or call.state is CallState.ENDED:
            return False
        call.divert_to = make_targets
        pending = [leg for leg in call.b_legs if leg.final_status is None and leg.invite_tx is not None]
        for leg in pending:
            assert leg.invite_tx is not None  # pending holds only legs with one
            self.stack.send_cancel(leg.invite_tx, [("Reason", f'SIP;cause=480;text="{reason}"')])
        if not pending:
            self._fail_call(call)
        return True

    # --- requests ---------------------------------------------------------------------------------------------
    def on_cancel(self, invite_tx: TransactionId) -> bool:
        """The caller cancelled (the endpoint already answered the CANCEL with 200)."""
        call = self._by_server_tx.get(invite_tx)
        if call is None or call.a.invite is None:
            return False
        for leg in call.b_legs:
            if leg.final_status is None and leg.invite_tx is not None:
                self.stack.send_cancel(leg.invite_tx, [("Reason", 'SIP;cause=487;text="Caller cancelled"')])
        if call.winner is None:
            self._respond(call.a, call.a.invite, invite_tx, 487)
            self._end(call, "cancelled by the caller")
        return True

    def on_in_dialog_request(self, req: Request, tx: TransactionId, source: Address) -> bool:
        """A request with a To tag: relay it within its call, or answer 481 if it belongs to none."""
        did = DialogId.for_received_request(req)
        found = self._by_dialog.get(did) if did is not None else None
        if found is None:
            return False
        call, leg = found
        if leg.dialog is None:
            return False
        error = leg.dialog.receive_request(req)
        if error is not None:
            self._send_response(tx, error)
            return True
        if req.method == "BYE":
            self._send_response(tx, Response.for_request(req, 200))
            other = call.other(leg) if call.winner is not None else None
            if leg.side is Side.B and call.winner is not leg:
                leg.final_status = leg.final_status or 487
                return True
            if other is not None:
                self._bye(call, other, reason=req.headers.get("Reason"))
            self._end(call, f"BYE from {'caller' if leg.side is Side.A else 'callee'}")
            return True
        if req.method == "PRACK" and leg.side is Side.A:
            self._send_response(tx, Response.for_request(req, 200))
            return True
        other = self._peer(call, leg)
        if other is None or other.dialog is None:
            self._send_response(tx, Response.for_request(req, 481 if call.state is CallState.ENDED else 491))
            return True
        if req.method == "INVITE":
            # RFC 3261 §14.2: the gateway is the UA of this leg. A re-INVITE that arrives while our own
            # INVITE on the same dialog is unanswered is glare (491); one that arrives while the peer's
            # previous re-INVITE is still being processed gets 500 with a Retry-After.
            if self._invite_pending(call, out_on=leg):
                self._send_response(tx, Response.for_request(req, 491))
                return True
            if self._invite_pending(call, from_leg=leg):
                self._send_response(tx, Response.for_request(
                    req, 500, "Previous re-INVITE still in progress",
                    headers=[("Retry-After", str(secrets.randbelow(10) + 1))]))
                return True
        if req.method == "INVITE" or req.method == "UPDATE":
            leg.dialog.update_remote_target(req)
        out = other.dialog.create_request(req.method, headers=_relayed(req), body=req.body)
        try:
            out_tx = self.stack.send_request(out, other.dest)
        except (ValueError, DialogError) as exc:
            log.info("call %s: cannot relay %s: %s", call.id, req.method, exc)
            self._send_response(tx, Response.for_request(req, 500))
            return True
        self._by_client_tx[out_tx] = (call, other)
        call.relays[out_tx] = (leg, tx, req)
        return True

    def on_ack(self, ack: Request) -> bool:
        """An ACK for a 2xx (end to end)."""
        did = DialogId.for_received_request(ack)
        found = self._by_dialog.get(did) if did is not None else None
        if found is None:
            return False
        call, leg = found
        if leg.side is Side.A and call.winner is not None and not call.winner.acked:
            self._ack_b(call.winner, ack.body)  # late offer: the caller's answer goes to the callee
        leg.acked = True
        return True

    def _invite_pending(self, call: Call, *, out_on: Leg | None = None, from_leg: Leg | None = None) -> bool:
        """Is a relayed re-INVITE without final response going out on ``out_on`` / received on ``from_leg``?"""
        for tx, (origin, _origin_tx, original) in call.relays.items():
            if original.method != "INVITE":
                continue
            if from_leg is not None and origin is from_leg:
                return True
            if out_on is not None and self._by_client_tx.get(tx, (None, None))[1] is out_on:
                return True
        return False

    def _peer(self, call: Call, leg: Leg) -> Leg | None:
        if leg.side is Side.A:
            return call.winner
        return call.a if call.winner is leg else None

    def _on_relayed_response(self, call: Call, leg: Leg, tx: TransactionId, resp: Response) -> None:
        if resp.status < 200:
            return
        self._by_client_tx.pop(tx, None)
        entry = call.relays.pop(tx, None)
        if entry is None:
            return
        origin, origin_tx, original = entry
        if original.method == "INVITE" and resp.status < 300 and leg.dialog is not None:
            leg.dialog.update_from_response(resp)
            # ACK the re-INVITE's 2xx on this leg; an answer in an ACK would come from the originator.
            ack = leg.dialog.create_ack(original_cseq(resp))
            self.stack.send_ack(ack, leg.dest)
        if origin_tx is None:
            return
        extra = list(_relayed(resp))
        if original.method in ("INVITE", "UPDATE", "SUBSCRIBE", "REFER") and resp.status < 300:
            extra.append(("Contact", f"<{self.stack.contact_uri(origin.dest.transport)}>"))
        out = Response.for_request(original, resp.status, resp.reason, headers=extra, body=resp.body)
        self._send_response(origin_tx, out)
        if resp.status == 481 and original.method in ("INVITE", "UPDATE", "INFO"):
            self._bye(call, origin, reason='SIP;cause=481;text="Call leg does not exist"')
            self._end(call, "the other leg no longer exists")

    # --- failures from the transaction layer ------------------------------------------------------------------
    def on_transaction_failed(self, tx: TransactionId, response: Response | None) -> None:
        """A client transaction timed out or could not be sent (408 / 503 to act on)."""
        found = self._by_client_tx.get(tx)
        if found is None:
            return
        call, leg = found
        fake = response
        if fake is None:
            return
        if tx == leg.invite_tx:
            self._on_invite_response(call, leg, fake)
        else:
            self._on_relayed_response(call, leg, tx, fake)

    def on_ack_timeout(self, tx: TransactionId) -> None:
        call = self._by_server_tx.get(tx)
        if call is None:
            return
        if call.winner is not None:
            self._bye(call, call.winner, reason='SIP;cause=408;text="No ACK from the caller"')
        if call.a.dialog is not None:
            self._bye(call, call.a, reason='SIP;cause=408;text="No ACK"')
        self._end(call, "no ACK from the caller")

    # --- helpers ------------------------------------------------------------------------------------------------
    def _bye(self, call: Call, leg: Leg, reason: str | None = None) -> None:
        if leg.dialog is None:
            return
        headers = [("Reason", reason)] if reason else []
        try:
            bye = leg.dialog.create_request("BYE", headers=headers)
        except DialogError:
            return
        leg.dialog.terminate()
        tx = self.stack.send_request(bye, leg.dest)
        self._by_client_tx[tx] = (call, leg)
        call.relays[tx] = (leg, None, bye)

    def _respond(self, leg: Leg, req: Request, tx: TransactionId, status: int, *,
                 warning: tuple[str | None, str | None] | None = None, extra=(), reason: str | None = None) -> None:
        headers = list(extra)
        if warning and warning[0]:
            headers.append(("Warning", warning_header(warning[0], warning[1] or "", self.agent)))
        to_tag = leg.local_tag if status > 100 else None
        self._send_response(tx, Response.for_request(req, status, reason, headers=headers, to_tag=to_tag))

    def _send_response(self, tx: TransactionId, resp: Response) -> None:
        try:
            self.stack.send_response(tx, resp)
        except (KeyError, ValueError) as exc:
            log.info("response %s not sent on %s: %s", resp.status, tx, exc)
        except Exception as exc:  # a TransactionStateError: the transaction already ended
            log.info("response %s not sent on %s: %s", resp.status, tx, exc)

    def _end(self, call: Call, reason: str) -> None:
        if call.state is CallState.ENDED and call.id not in self.calls:
            return
        call.state = CallState.ENDED
        call.ended = self.stack.now()
        call.end_reason = call.end_reason or reason
        self.calls.pop(call.id, None)
        if call.a.invite_tx is not None:
            self._by_server_tx.pop(call.a.invite_tx, None)
        for leg in [call.a, *call.b_legs]:
            if leg.dialog is not None:
                self._by_dialog.pop(leg.dialog.id, None)
        # Client transactions of BYEs still in flight stay mapped until their responses arrive. What else of this
        # call's is mapped are its B legs' INVITEs (every other client transaction is one of its relays). Looked up
        # one by one: walking the whole map at every call's end cost the time of every transaction in flight,
        # and after an overload, with the map's table still as large as the overload made it, a fifth of the
        # gateway's CPU.
        for leg in call.b_legs:
            tx = leg.invite_tx
            if tx is not None and tx not in call.relays:
                found = self._by_client_tx.get(tx)
                if found is not None and found[0] is call:
                    del self._by_client_tx[tx]
        self._archive(call)
        if self.on_call_end is not None:
            self.on_call_end(call)

    def _archive(self, call: Call) -> None:
        self.history.append(call.record())
        if len(self.history) > self.max_history:
            del self.history[: len(self.history) - self.max_history]

    def hangup(self, call_id: str, reason: str = 'SIP;cause=16;text="Hung up by the gateway"') -> bool:
        """End a call from the gateway side (control API)."""
        call = self.calls.get(call_id)
        if call is None:
            return False
        if call.winner is None:
            if call.a.invite is not None and call.a.invite_tx is not None:
                self.on_cancel(call.a.invite_tx)
            return True
        self._bye(call, call.winner, reason)
        self._bye(call, call.a, reason)
        self._end(call, "hung up by the gateway")
        return True

    def find_call(self, sip_call_id: str) -> Call | None:
        for call in self.calls.values():
            if (call.a.invite and call.a.invite.call_id == sip_call_id) or any(
                leg.invite and leg.invite.call_id == sip_call_id for leg in call.b_legs
            ):
                return call
        return None


def original_cseq(resp: Response) -> int:
    return resp.cseq.seq


def _tags(value: str | None) -> set[str]:
    return {t.strip().lower() for t in (value or "").split(",") if t.strip()}


#: RELAYED_HEADERS by header key (lower-cased canonical name, compact forms expanded), as Headers stores them.
_RELAYED_KEYS = frozenset(header_key(name) for name in RELAYED_HEADERS)


def _relayed(message: Request | Response) -> list[tuple[str, str]]:
    return message.headers.items_of(_RELAYED_KEYS)



def _better_failure(new: Response, old: Response) -> bool:
    """RFC 3261 §16.7 step 6, simplified: 6xx beats everything, then the lowest class, 4xx over 5xx."""
    def rank(status: int) -> tuple[int, int]:
        cls = status // 100
        return (0 if cls == 6 else {4: 1, 3: 2, 5: 3}.get(cls, 4), status)

    return rank(new.status) < rank(old.status)


def flow_address(flow: Flow) -> Address:
    return Address(flow.transport, flow.host, flow.port)


__all__ = ["B2BUA", "Call", "CallRecord", "CallState", "Leg", "Side", "Stack", "flow_address", "reason_header"]
