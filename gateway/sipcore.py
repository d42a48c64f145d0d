"""The gateway's SIP element: the sans-IO transaction layer driven by the asyncio transports.

Bytes from a transport go into ``SipEndpoint.receive``; the actions that come out are carried out here:
sending on a flow, arming and cancelling timers on the event loop, and dispatching events to the
services (registrar, B2BUA, OPTIONS). Nothing here knows a call's logic.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from gateway.services.b2bua import ALLOW, B2BUA, SUPPORTED
from gateway.services.diagnostics import warning_header
from gateway.services.directory import Directory
from gateway.services.model import Flow, User
from gateway.services.registrar import Binding, Registrar
from gateway.services.routing import Router
from gateway.sip import NameAddr, Request, Response, SipParseError, SipURI
from gateway.sip.auth import DigestServer, parse_credentials
from gateway.sip.endpoint import (
    AckReceived,
    AckTimeout,
    Address,
    CancelReceived,
    Deliver,
    Discarded,
    RequestReceived,
    ResponseReceived,
    Send,
    SipEndpoint,
    StrayResponse,
    TimerId,
    TransactionId,
    TransactionTimeout,
    TransportError,
)
from gateway.sip.timer_heap import TimerHeap
from gateway.sip.timers import TimerConfig
from gateway.sip.validate import check_request
from gateway.transport.manager import TransportManager

log = logging.getLogger("sipgw.core")

METHODS = frozenset({"INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "REGISTER", "UPDATE", "INFO", "PRACK",
                     "REFER", "NOTIFY", "MESSAGE", "SUBSCRIBE", "PUBLISH"})
SUPPORTED_TAGS = frozenset({"100rel", "timer", "replaces", "path", "outbound", "gruu"})


class TimerQueue:
    """The transaction timers of the SIP core on one heap (``gateway.sip.timer_heap``, compiled with the core),
    behind a single event-loop timer.

    A busy gateway arms several timers per transaction (RFC 3261 §17: A/B, E/F, G/H, I, J, K, the 2xx
    retransmission) and cancels most of them within milliseconds. One ``loop.call_at`` handle each costs a
    handle allocation, a loop-heap insertion and a cancellation; here arming is a heap push and cancelling
    forgets the timer's id. The endpoint arms and cancels on the heap itself (its ``timer_sink``); after each of
    its calls :meth:`sync` moves the one loop timer to the earliest deadline when that came forward. Timers fire
    in deadline order, never before their deadline by more than the loop's clock resolution (as ``call_at``
    handles).
    """

    #: Deadlines this close to "now" count as due (asyncio's own rule uses the clock resolution; uvloop's
    #: timers have millisecond granularity).
    TOLERANCE: Final = 0.001

    def __init__(self, loop: asyncio.AbstractEventLoop, fire: Callable[[TimerId], None]):
        self._loop = loop
        self._fire = fire
        self.heap = TimerHeap()
        self._handle: asyncio.TimerHandle | None = None
        self.scheduled_at = float("inf")

    def __len__(self) -> int:
        return len(self.heap)

    def __contains__(self, timer_id: object) -> bool:
        return timer_id in self.heap

    def arm(self, timer_id: TimerId, deadline: float) -> None:
        """Arm (or re-arm: the earlier deadline is forgotten) one timer."""
        self.heap.arm(timer_id, deadline)
        self.sync()

    def cancel(self, timer_id: TimerId) -> bool:
        return self.heap.cancel(timer_id)

    def sync(self) -> None:
        """Schedule the loop timer for the earliest deadline if timers were armed on the heap before it."""
        earliest = self.heap.earliest
        if earliest < self.scheduled_at:
            self._schedule(earliest)

    def clear(self) -> None:
        self.heap.clear()
        if self._handle is not None:
            self._handle.cancel()
        self._handle, self.scheduled_at = None, float("inf")

    def _schedule(self, deadline: float) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self.scheduled_at = deadline
        self._handle = self._loop.call_at(deadline, self._run)

    def _run(self) -> None:
        # While due timers fire (each may arm others), nothing schedules the loop timer: this run does, at its end.
        self._handle, self.scheduled_at = None, float("-inf")
        heap = self.heap
        due = self._loop.time() + self.TOLERANCE
        try:
            while (timer_id := heap.pop_due(due)) is not None:
                self._fire(timer_id)  # type: ignore[arg-type]
        finally:
            self.scheduled_at = float("inf")
            deadline = heap.next_deadline()
            if deadline is not None:
                self._schedule(deadline)


@dataclass
class CoreStats:
    requests: int = 0
    responses: int = 0
    discarded: int = 0
    stray_responses: int = 0
    rejected: int = 0
    timeouts: int = 0
    stateless: int = 0  # challenges answered without a transaction (RFC 3261 §8.2.7)


class SipCore:
    def __init__(self, *, directory: Directory, registrar: Registrar, router: Router, auth: DigestServer,
                 domain: str, agent: str = "sipgw-lab", wall_clock: Callable[[], float] = time.time,
                 timers: TimerConfig | None = None):
        self.directory = directory
        self.registrar = registrar
        self.router = router
        self.auth = auth
        self.domain = domain
        self.agent = agent
        self.wall = wall_clock
        self.stats = CoreStats()
        self.timers = timers
        self.transports = TransportManager(self._on_data)
        self.endpoint: SipEndpoint | None = None
        self.b2bua = B2BUA(self, domain=domain, agent=agent)
        self.trusted: set[tuple[str, int]] = set()  # (host, port) of media-node endpoints
        self.trusted_hosts: set[str] = set()
        self._timers: TimerQueue | None = None
        self._contacts: dict[str, str] = {}
        #: One Address per flow: transactions keep their source for up to 64*T1, so one shared value instead of
        #: one per datagram (bounded like the transports' flow cache).
        self._addresses: dict[Flow, Address] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        #: Extra handlers by method for out-of-dialog requests (MWI, presence … in later services).
        self.handlers: dict[str, Callable[[Request, TransactionId, Address], bool]] = {}

    # --- set-up ------------------------------------------------------------------------------------------
    def bind(self, sent_by: dict[str, str]) -> None:
        """Create the endpoint once the listening addresses are known (they go into Via and Contact)."""
        self._loop = asyncio.get_running_loop()
        if self._timers is not None:
            self._timers.clear()
        self._timers = TimerQueue(self._loop, self._fire)
        self.endpoint = SipEndpoint(sent_by=sent_by, timers=self.timers)
        self.endpoint.stateless = self._stateless_reply
        self.endpoint.timer_sink = self._timers.heap
        for transport, hostport in sent_by.items():
            suffix = "" if transport == "UDP" else f";transport={transport.lower()}"
            self._contacts[transport] = f"sip:gw@{hostport}{suffix}"

    # --- the Stack protocol of the B2BUA --------------------------------------------------------------------
    def now(self) -> float:
        return self._loop.time() if self._loop else time.monotonic()

    def contact_uri(self, transport: str) -> str:
        return self._contacts.get(transport.upper()) or next(iter(self._contacts.values()))

    def send_request(self, request: Request, dest: Address) -> TransactionId:
        assert self.endpoint is not None
        tid, actions = self.endpoint.send_request(request, dest, self.now())
        self._execute(actions)
        return tid

    def send_response(self, transaction: TransactionId, response: Response) -> None:
        assert self.endpoint is not None
        self._add_server(response)
        try:
            actions = self.endpoint.send_response(transaction, response, self.now())
        except KeyError:
            # The transaction already ended, e.g. its TCP/TLS connection closed and sending the 100 failed
            # (§17.2.4): there is nobody left to answer.
            log.info("response %s not sent: transaction %s has ended", response.status, transaction)
            return
        self._execute(actions)

    def send_ack(self, ack: Request, dest: Address) -> None:
        assert self.endpoint is not None
        self._execute(self.endpoint.send_ack(ack, dest, self.now()))

    def send_cancel(self, transaction: TransactionId, headers: list[tuple[str, str]]) -> None:
        assert self.endpoint is not None
        self._execute(self.endpoint.send_cancel(transaction, self.now(), headers=headers))

    # --- input -------------------------------------------------------------------------------------------
    def _on_data(self, data: bytes, flow: Flow, now: float) -> None:
        if self.endpoint is None:
            return
        source = self._addresses.get(flow)
        if source is None:
            if len(self._addresses) >= 65536:
                self._addresses.clear()
            source = self._addresses[flow] = Address(flow.transport, flow.host, flow.port)
        try:
            actions = self.endpoint.receive(data, source, now)
            self._execute(actions)
        except Exception:  # nothing a peer sends may stop the gateway
            log.exception("error handling a message from %s", flow)

    def _execute(self, actions: list) -> None:
        # What the endpoint just returned comes with the timers it armed on the heap (its timer_sink, so no timer
        # actions are among them): the loop timer first.
        if self._timers is not None:
            self._timers.sync()
        for action in actions:
            kind = type(action)
            if kind is Send:
                dest = action.dest
                tid = action.transaction
                if dest.transport == "UDP":  # UDP sends need no error callback and no Flow
                    if not self.transports.send_udp(action.data, dest.host, dest.port) and tid is not None:
                        self._transport_failed(tid)
                    continue
                flow = Flow(dest.transport, dest.host, dest.port)
                # Only a TCP/TLS send can fail later (background connect); UDP sends need no callback.
                on_error = (None if tid is None or flow.transport == "UDP"
                            else (lambda tid=tid: self._transport_failed(tid)))
                if not self.transports.send(action.data, flow, on_error) and tid is not None:
                    self._transport_failed(tid)
            elif kind is Deliver:
                self._dispatch(action.event)
            elif kind is TransactionTimeout or kind is TransportError:
                self.stats.timeouts += 1
                self.b2bua.on_transaction_failed(action.transaction, action.response)
            elif kind is AckTimeout:
                self.b2bua.on_ack_timeout(action.transaction)

    def _transport_failed(self, transaction: TransactionId) -> None:
        """RFC 3261 §17.1.4 / §17.2.4: a message of this transaction could not be sent."""
        if self.endpoint is None:
            return
        try:
            self._execute(self.endpoint.transport_error(transaction, self.now()))
        except Exception:
            log.exception("error handling a transport failure of %s", transaction)

    def _fire(self, timer_id: TimerId) -> None:
        if self.endpoint is None:
            return
        try:
            self._execute(self.endpoint.timer_fired(timer_id, self.now()))
        except Exception:
            log.exception("error in timer %s", timer_id)

    def _dispatch(self, event) -> None:
        kind = type(event)
        if kind is RequestReceived:
            self.stats.requests += 1
            self._on_request(event.request, event.transaction, event.source)
        elif kind is ResponseReceived:
            self.stats.responses += 1
            self.b2bua.on_response(event.response, event.transaction)
        elif kind is AckReceived:
            self.b2bua.on_ack(event.request)
        elif kind is CancelReceived:
            self.b2bua.on_cancel(event.invite_transaction)
        elif kind is StrayResponse:
            self.stats.stray_responses += 1
        elif kind is Discarded:
            self.stats.discarded += 1

    # --- requests ----------------------------------------------------------------------------------------
    def _stateless_reply(self, req: Request, source: Address) -> Response | None:
        """The challenge for a REGISTER or INVITE that carries no credentials, sent without a transaction.

        RFC 3261 §8.2.7 names this the use of a stateless UAS: the 401/407 needs no state, the client's
        retransmissions of its request make it reliable, and a gateway under a flood of unauthenticated
        requests keeps no transaction (and no 100 Trying) for any of them. Everything else, and any request
        that is malformed (check_request answers it in its transaction), goes the stateful way. The answer is
        the one the stateful path gives: the registrar's 401, or ``authenticate_invite``'s 407 (so no
        service that takes INVITEs before the router sees an INVITE without credentials from an untrusted
        source: each of them would have answered it with that 407)."""
        method = req.method
        if method == "REGISTER":
            if "Authorization" in req.headers:
                return None
        elif method == "INVITE":
            if "Proxy-Authorization" in req.headers or self.is_trusted(source):
                return None
            if self._flow_binding(source) is not None:
                return None  # authenticated by its connection's REGISTER
        else:
            return None
        try:
            if req.to.tag:
                return None
        except SipParseError:
            return None
        if check_request(req, supported=SUPPORTED_TAGS, methods=METHODS) is not None:
            return None
        if method == "REGISTER":
            response = self.registrar.stateless_challenge(req, Flow(source.transport, source.host, source.port),
                                                          self.now(), self.wall())
        else:
            response = self._proxy_challenge(req)
        if response is None:
            return None
        self.stats.stateless += 1
        self._add_server(response)
        return response

    def _add_server(self, response: Response) -> None:
        if not response.headers.get("Server"):
            response.headers.add("Server", self.agent)

    @staticmethod
    def _to_tag(req: Request) -> str:
        """The To tag of the gateway's own answers to ``req``: the same for a retransmission of it."""
        return f"g{abs(hash((req.call_id, req.cseq.seq))) % 10**8}"

    def _response(self, req: Request, status: int, code: str | None = None, text: str = "",
                  headers: list[tuple[str, str]] | None = None) -> Response:
        """The gateway's own answer to ``req``: a ``Warning`` with the diagnostic ``code`` (counted as a
        rejection) and a To tag that a retransmission of ``req`` gets again."""
        extra = list(headers or [])
        if code:
            extra.append(("Warning", warning_header(code, text, self.agent)))
            self.stats.rejected += 1
        to_tag = None if status == 100 or req.to.tag else self._to_tag(req)
        return Response.for_request(req, status, headers=extra, to_tag=to_tag)

    def _reply(self, tx: TransactionId, req: Request, status: int, code: str | None = None, text: str = "",
               headers: list[tuple[str, str]] | None = None) -> None:
        self.send_response(tx, self._response(req, status, code, text, headers))

    def _proxy_challenge(self, req: Request, *, stale: bool = False) -> Response:
        """407 with a fresh nonce per offered algorithm (RFC 3261 §22.3)."""
        return self._response(req, 407, headers=[("Proxy-Authenticate", v)
                                                 for v in self.auth.challenge_values(self.wall(), stale=stale)])

    def _flow_binding(self, source: Address) -> Binding | None:
        """The registration a TCP/TLS connection carried (it authenticates that user's INVITEs), or None."""
        if source.transport not in ("TCP", "TLS"):
            return None
        return self.registrar.binding_for_flow(Flow(source.transport, source.host, source.port), self.now())

    def _on_request(self, req: Request, tx: TransactionId, source: Address) -> None:
        problem = check_request(req, supported=SUPPORTED_TAGS, methods=METHODS)
        if problem is not None:
            self.stats.rejected += 1
            self.send_response(tx, problem)
            return
        method = req.method
        try:
            has_to_tag = bool(req.to.tag)
        except SipParseError as exc:
            self.send_response(tx, Response.for_request(req, 400, exc.reason))
            return
        if has_to_tag:
            if not self.b2bua.in_dialog(req, tx, source):
                self._reply(tx, req, 481)
            return
        handler = self.handlers.get(method)
        if handler is not None and handler(req, tx, source):
            return
        if method == "REGISTER":
            flow = Flow(source.transport, source.host, source.port)
            self.send_response(tx, self.registrar.handle(req, flow, self.now(), self.wall()))
        elif method == "OPTIONS":
            self._reply(tx, req, 200, headers=[("Allow", ALLOW), ("Accept", "application/sdp"),
                                               ("Supported", SUPPORTED)])
        elif method == "INVITE":
            self._on_invite(req, tx, source)
        elif method in ("BYE", "PRACK", "UPDATE", "INFO", "REFER"):
            self._reply(tx, req, 481)
        elif method in ("SUBSCRIBE", "PUBLISH"):
            self._reply(tx, req, 489, headers=[("Allow-Events", "")])
        else:
            self._reply(tx, req, 405, headers=[("Allow", ALLOW)])

    def _on_invite(self, req: Request, tx: TransactionId, source: Address) -> None:
        now = self.now()
        if self.is_trusted(source):
            caller = _from_identity(req)
        else:
            user = self.authenticate_invite(req, tx, source)
            if user is None:
                return
            if not user.policy.allow_sip_devices_calling:
                self._reply(tx, req, 403, "SGW-POLICY-SIP-DEVICES",
                            f"the calling policy of {user.username} does not allow SIP devices")
                return
            if not self.registrar.bindings(user.username, now):
                self._reply(tx, req, 403, "SGW-AUTH-NOT-REGISTERED",
                            f"{user.username} has no registered device; register before calling")
                return
            identity = user.number or user.username
            caller = NameAddr(SipURI.parse(f"sip:{identity}@{self.domain}"), user.name)
        try:
            uri_user = req.request_uri.user
        except SipParseError as exc:
            self.send_response(tx, Response.for_request(req, 416, exc.reason))
            return
        decision = self.router.route(uri_user, now)
        self.b2bua.new_call(req, tx, source, decision, caller)

    def is_trusted(self, source: Address) -> bool:
        """Whether ``source`` is a trusted peer, whose INVITEs need no digest: a host in ``trusted_hosts`` or an
        address in ``trusted`` (the media node's workers).  Any thread: it only reads the two sets."""
        return source.host in self.trusted_hosts or (source.host, source.port) in self.trusted

    def authenticate_invite(self, req: Request, tx: TransactionId, source: Address) -> User | None:
        """The user an INVITE from ``source`` comes from, or None after answering it with 407 (no or stale
        credentials) or 403 (wrong ones).  A TCP/TLS flow that carried the user's authenticated REGISTER
        needs no digest.  Services that take an INVITE before the router (feature codes, transfer, call
        queues, voicemail, provisioning) call this so the rules stay in one place (no toll fraud)."""
        # A TCP/TLS connection that carried an authenticated REGISTER is trusted for that user's calls.
        b = self._flow_binding(source)
        if b is not None:
            return self.directory.user(b.username)
        authz = req.headers.get("Proxy-Authorization")
        if authz is None:
            self.send_response(tx, self._proxy_challenge(req))
            return None
        try:
            username = parse_credentials(authz).username
        except Exception:
            username = None
        user = self.directory.user(username) if username else None
        if user is None or not user.ha1:
            self._reply(tx, req, 403, "SGW-AUTH-FAILED", "authentication failed")
            return None
        result = self.auth.verify(authz, method="INVITE", now=self.wall(), ha1=user.ha1)
        if not result.ok:
            if result.stale:
                self.send_response(tx, self._proxy_challenge(req, stale=True))
            else:
                self._reply(tx, req, 403, "SGW-AUTH-FAILED", "authentication failed")
            return None
        return user


def _from_identity(req: Request) -> NameAddr:
    f = req.from_
    return NameAddr(f.uri, f.display)
