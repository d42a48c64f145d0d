"""The SIP transaction layer, sans-IO: messages and time in, actions out (RFC 3261 §17, §18).

``SipEndpoint`` owns the client and server transactions of one SIP element. Every input is a method call
that takes the current time ``now`` and returns a list of actions for the caller (the asyncio transport
in ``gateway/transport/`` or a test) to carry out, in order:

* ``Send(data, dest, ...)`` — put bytes on the wire;
* ``Deliver(event)`` — hand an event to the transaction user (TU): a new request, a response for a client
  transaction, an ACK for a 2xx, a CANCEL that matched an INVITE, a stray response, a discarded input;
* ``ArmTimer(timer_id, deadline)`` / ``CancelTimer(timer_id)`` — (re)schedule or drop a timer; when it
  expires, call ``timer_fired(timer_id, now)``. Arming an id that is already scheduled replaces it. With a
  ``timer_sink`` (a ``TimerHeap``) set, timers are armed and cancelled there instead of returned;
* ``TransactionTimeout``, ``TransportError``, ``AckTimeout`` — a transaction failed; the TU is told.

Behaviour worth knowing:

* Retransmitted requests are absorbed by their server transaction and answered with its last response;
  response retransmissions are absorbed by the client transaction (the tables in ``transaction.py``).
* The ACK for a 300-699 response is built and sent by the INVITE client transaction (§17.1.1.3) and
  absorbed by the INVITE server transaction. The ACK for a 2xx is end to end: the TU sends it with
  ``send_ack`` and receives it as ``AckReceived``.
* For a 2xx it sent, the endpoint also does the UAS core's job of §13.3.1.4: it retransmits the 2xx on
  unreliable transports (T1 doubling up to T2) until the ACK arrives, and reports ``AckTimeout`` if none
  came within 64*T1 (the TU should then send BYE).
* Server transactions are matched with the rules of §17.2.3 (branch with the ``z9hG4bK`` cookie, sent-by,
  method, ACK matching INVITE) and, for requests without the cookie, the RFC 2543 rules (Request-URI,
  tags, Call-ID, CSeq, top Via; the ACK by the To tag of the response). Client transactions are matched by
  branch and CSeq method (§17.1.3).
* ``send_cancel`` follows §9.1: the CANCEL waits for a provisional response, is never sent after a final
  one, and if the INVITE still has no final response 64*T1 after the CANCEL, the INVITE client
  transaction is given up and reported as a ``TransactionTimeout`` (timer "CANCEL").
* CANCEL (§9.2) gets its own server transaction, answered by the endpoint: 200 when it matches an INVITE
  server transaction, 481 when it does not. If that INVITE has no final response yet the TU receives
  ``CancelReceived`` and should answer the INVITE (normally 487).
* Received requests get ``received`` and ``rport`` in their top Via (§18.2.1, RFC 3581); responses go
  back where §18.2.2 and RFC 3581 say: the same connection on TCP/TLS, else the source address and port
  when rport was asked for, else the received address and the sent-by port.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Final, NamedTuple

from .errors import SipParseError
from .headers import _KNOWN_SLOTS, Headers, split_list
from .message import Request, Response
from .parser import parse_message
from .randomness import random_hex
from .timer_heap import TimerHeap
from .timer_policy import TimerPolicy
from .timers import Timer, TimerConfig, is_reliable_transport
from .transaction import (
    START_EVENTS,
    Effect,
    StartTimer,
    StopTimer,
    TransactionKind,
    TransactionMachine,
    TransactionState,
    TransactionStateError,
    TxEvent,
    received_response_event,
    sent_response_event,
)
from .uri import Via, remember_via

__all__ = [
    "MAGIC_COOKIE",
    "AckReceived",
    "AckTimeout",
    "Action",
    "Address",
    "ArmTimer",
    "CancelReceived",
    "CancelTimer",
    "Deliver",
    "Discarded",
    "Event",
    "RequestReceived",
    "ResponseReceived",
    "Send",
    "SipEndpoint",
    "StrayResponse",
    "TimerId",
    "TransactionId",
    "TransactionTimeout",
    "TransportError",
]

#: RFC 3261 §8.1.1.7: a branch starting with this was built by an RFC 3261 element and is unique.
MAGIC_COOKIE: Final = "z9hG4bK"

#: The UAS core's 2xx retransmission timer (§13.3.1.4); not an RFC transaction timer letter.
TIMER_2XX: Final = "2xx"
#: Started on an INVITE client transaction when its CANCEL is sent: give up 64*T1 later (§9.1).
TIMER_CANCEL: Final = "CANCEL"

_DEFAULT_PORTS: Final = {"TLS": 5061, "WSS": 443, "WS": 80}


def _default_port(transport: str) -> int:
    return _DEFAULT_PORTS.get(transport.upper(), 5060)


class Address(NamedTuple):
    """Where a message came from or goes to: transport token (UDP, TCP, TLS, WS, WSS), host, port.

    On connection-oriented transports the address also names the connection: a response to a request
    received over TCP is sent to the request's source address, i.e. back on that connection.
    """

    transport: str
    host: str
    port: int

    @property
    def reliable(self) -> bool:
        transport = self.transport
        if transport == "UDP":
            return False  # the usual case, without a call into timers (not compiled)
        return is_reliable_transport(transport)

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.transport.upper()}:{host}:{self.port}"


class TransactionId:
    """Names one transaction. ``method`` is the request method (INVITE for an INVITE transaction, also
    when its ACK is being matched); ``key`` holds the matching values (see the module docstring).

    A value: compared and hashed by its three fields, never changed. Not a NamedTuple, whose constructor
    stays interpreted Python in the compiled build (about 2 900 instructions against 400), and several are made
    per message; the same holds for TimerId.
    """

    __slots__ = ("_hash", "key", "method", "side")

    def __init__(self, side: str, method: str, key: tuple[str, ...]) -> None:
        self.side = side  # "client" or "server"
        self.method = method
        self.key = key
        self._hash = hash((side, method, key))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TransactionId):
            return NotImplemented
        return self.key == other.key and self.method == other.method and self.side == other.side

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        return f"TransactionId(side={self.side!r}, method={self.method!r}, key={self.key!r})"

    def __str__(self) -> str:
        return f"{self.side}:{self.method}:{'/'.join(self.key)}"


class TimerId:
    """A timer of one transaction: an RFC letter ("A".."M"), "2xx" or "CANCEL". A value, like TransactionId."""

    __slots__ = ("_hash", "timer", "transaction")

    def __init__(self, transaction: TransactionId, timer: str) -> None:
        self.transaction = transaction
        self.timer = timer
        self._hash = hash((transaction, timer))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TimerId):
            return NotImplemented
        return self.timer == other.timer and self.transaction == other.transaction

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        return f"TimerId(transaction={self.transaction!r}, timer={self.timer!r})"


# Events and actions are values (``@dataclass(slots=True, unsafe_hash=True, init=False)``): compared and hashed
# by their fields and never changed once built. They are not ``frozen`` dataclasses only because a frozen one
# costs three times as much to build (several per message). Their ``__init__`` is written out: the one the
# dataclasses module generates stays interpreted Python in the compiled build (tools/compile_sip_core.py), about
# 2 300 instructions per object against 400 for a compiled one. The decorator is spelled out on each class, not
# kept in a variable, so that type checkers and mypyc see it.


# -- events delivered to the TU -------------------------------------------------------------------------


@dataclass(slots=True, unsafe_hash=True, init=False)
class RequestReceived:
    """A new request (not a retransmission); answer it with ``send_response(transaction, ...)``."""

    request: Request
    transaction: TransactionId
    source: Address

    def __init__(self, request: Request, transaction: TransactionId, source: Address) -> None:
        self.request = request
        self.transaction = transaction
        self.source = source


@dataclass(slots=True, unsafe_hash=True, init=False)
class ResponseReceived:
    """A response for a client transaction, passed up as the transaction's table says."""

    response: Response
    transaction: TransactionId
    source: Address

    def __init__(self, response: Response, transaction: TransactionId, source: Address) -> None:
        self.response = response
        self.transaction = transaction
        self.source = source


@dataclass(slots=True, unsafe_hash=True, init=False)
class AckReceived:
    """An ACK for a 2xx (end to end, §17): ``transaction`` is the INVITE server transaction if the ACK
    matched one (RFC 6026 Accepted state), else None."""

    request: Request
    source: Address
    transaction: TransactionId | None

    def __init__(self, request: Request, source: Address, transaction: TransactionId | None) -> None:
        self.request = request
        self.source = source
        self.transaction = transaction


@dataclass(slots=True, unsafe_hash=True, init=False)
class CancelReceived:
    """A CANCEL matched ``invite_transaction``, which has no final response yet (§9.2). The endpoint has
    answered the CANCEL with 200; the TU should end the INVITE, normally with 487."""

    cancel: Request
    invite_transaction: TransactionId
    source: Address

    def __init__(self, cancel: Request, invite_transaction: TransactionId, source: Address) -> None:
        self.cancel = cancel
        self.invite_transaction = invite_transaction
        self.source = source


@dataclass(slots=True, unsafe_hash=True, init=False)
class StrayResponse:
    """A response that matches no client transaction, or that its transaction refused."""

    response: Response
    source: Address
    reason: str

    def __init__(self, response: Response, source: Address, reason: str) -> None:
        self.response = response
        self.source = source
        self.reason = reason


@dataclass(slots=True, unsafe_hash=True, init=False)
class Discarded:
    """Input that was dropped (unparseable, or an ACK the transaction could not take); for counters."""

    message: Request | Response | bytes
    source: Address
    reason: str

    def __init__(self, message: Request | Response | bytes, source: Address, reason: str) -> None:
        self.message = message
        self.source = source
        self.reason = reason


Event = RequestReceived | ResponseReceived | AckReceived | CancelReceived | StrayResponse | Discarded


# -- actions --------------------------------------------------------------------------------------------


class Send:
    """Put ``data`` on the wire towards ``dest``; ``message`` is what ``data`` says, parsed.

    A value, compared and hashed by the bytes, the destination and the transaction (the message is what the bytes
    say). A response resent from a finished transaction's small record (``_Completed``) comes without its parsed
    form, which nobody on the gateway's path reads: ``message`` parses ``data`` again the first time it is asked.
    """

    __slots__ = ("_message", "data", "dest", "transaction")

    def __init__(self, data: bytes, dest: Address, message: Request | Response | None,
                 transaction: TransactionId | None = None) -> None:
        self.data = data
        self.dest = dest
        self._message = message
        self.transaction = transaction

    @property
    def message(self) -> Request | Response:
        message = self._message
        if message is None:
            message = self._message = parse_message(self.data, stream=self.dest.reliable)
        return message

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Send):
            return NotImplemented
        return self.data == other.data and self.dest == other.dest and self.transaction == other.transaction

    def __hash__(self) -> int:
        return hash((self.data, self.dest, self.transaction))

    def __repr__(self) -> str:
        first = self.data.split(b"\r\n", 1)[0].decode("utf-8", "replace")
        return f"Send({first!r} to {self.dest}, transaction={self.transaction})"


@dataclass(slots=True, unsafe_hash=True, init=False)
class Deliver:
    event: Event

    def __init__(self, event: Event) -> None:
        self.event = event


@dataclass(slots=True, unsafe_hash=True, init=False)
class ArmTimer:
    timer_id: TimerId
    deadline: float

    def __init__(self, timer_id: TimerId, deadline: float) -> None:
        self.timer_id = timer_id
        self.deadline = deadline


@dataclass(slots=True, unsafe_hash=True, init=False)
class CancelTimer:
    timer_id: TimerId

    def __init__(self, timer_id: TimerId) -> None:
        self.timer_id = timer_id


@dataclass(slots=True, unsafe_hash=True, init=False)
class TransactionTimeout:
    """The transaction timed out (Timer B, F or H). For a client transaction ``response`` is the 408 the TU
    should act on as if it had been received (§8.1.3.1); for a server one it is None (no ACK came)."""

    transaction: TransactionId
    request: Request
    timer: str
    response: Response | None

    def __init__(self, transaction: TransactionId, request: Request, timer: str, response: Response | None) -> None:
        self.transaction = transaction
        self.request = request
        self.timer = timer
        self.response = response


@dataclass(slots=True, unsafe_hash=True, init=False)
class TransportError:
    """Sending failed (§17.1.4, §17.2.4). For a client transaction ``response`` is a 503 to act on
    (§8.1.3.1)."""

    transaction: TransactionId
    request: Request
    dest: Address
    response: Response | None

    def __init__(self, transaction: TransactionId, request: Request, dest: Address, response: Response | None) -> None:
        self.transaction = transaction
        self.request = request
        self.dest = dest
        self.response = response


@dataclass(slots=True, unsafe_hash=True, init=False)
class AckTimeout:
    """A 2xx to an INVITE was never acknowledged within 64*T1 (§13.3.1.4): the TU should send BYE."""

    transaction: TransactionId
    response: Response

    def __init__(self, transaction: TransactionId, response: Response) -> None:
        self.transaction = transaction
        self.response = response


Action = Send | Deliver | ArmTimer | CancelTimer | TransactionTimeout | TransportError | AckTimeout


# -- transactions ---------------------------------------------------------------------------------------


class _ClientTransaction:
    __slots__ = ("ack", "cancel_headers", "cancel_state", "data", "dest", "id", "machine", "released", "request")

    def __init__(self, tid: TransactionId, machine: TransactionMachine, request: Request, dest: Address):
        self.id = tid
        self.machine = machine
        self.request = request
        self.data = request.to_bytes()
        self.dest = dest
        self.ack: tuple[str | None, Request, bytes] | None = None  # (To tag, ACK, bytes) for 300-699
        self.cancel_state = ""  # "", "pending" (wait for a 1xx), "sent" (TIMER_CANCEL runs), "done"
        self.cancel_headers: tuple[tuple[str, str], ...] = ()
        self.released = False  # the request's parsed views were released (final response received)


class _ServerTransaction:
    __slots__ = (
        "acked", "aliases", "id", "last", "last_data", "machine", "raw_key", "released", "reply_to", "request",
        "retransmit_interval", "source",
    )  # fmt: skip

    def __init__(self, tid: TransactionId, machine: TransactionMachine, request: Request, source: Address):
        self.id = tid
        self.machine = machine
        self.request = request
        self.source = source
        self.reply_to = _reply_address(request.top_via, source)
        self.last: Response | None = None
        self.last_data = b""
        self.aliases: tuple[TransactionId, ...] = ()
        self.acked = False
        self.released = False  # the request's and last response's parsed views were released
        self.retransmit_interval = 0.0
        self.raw_key: tuple[bytes, Address] | None = None


class _Completed:
    """A non-INVITE server transaction in Completed on an unreliable transport, as little as it needs (§17.2.2).

    All that is left of it until Timer J (64*T1 on UDP) is to answer a retransmission of its request with its
    final response, and to discard any further final response of the TU. The whole transaction (machine, request
    and response objects) goes; this keeps the response's bytes, where they go, its CSeq, and the
    request's datagram, the key of byte-identical retransmissions. A gateway under REGISTER load holds tens of
    thousands of these at a time: 13 objects against 61 for a whole one, so less for the garbage collector to
    scan and less to free, with cold caches, when Timer J fires.
    """

    __slots__ = ("cseq_method", "cseq_seq", "id", "last_data", "raw_key", "reply_to")

    def __init__(self, tx: _ServerTransaction, last: Response, raw_key: tuple[bytes, Address]) -> None:
        self.id = tx.id
        self.last_data = tx.last_data
        self.reply_to = tx.reply_to
        self.raw_key = raw_key
        cseq = last.cseq  # the request's (§8.2.6.2)
        self.cseq_seq = cseq.seq
        self.cseq_method = cseq.method

    def resend(self) -> Send:
        return Send(self.last_data, self.reply_to, None, self.id)


def _check_answers(response: Response, method: str, seq: int, seq_method: str) -> None:
    """Raise ValueError unless ``response`` carries the CSeq (``seq``, ``seq_method``) of the ``method`` request."""
    cseq = response.cseq
    if cseq.method != seq_method or cseq.seq != seq:
        raise ValueError(f"response CSeq {cseq} does not answer {method} CSeq {seq} {seq_method}")


def _reply_address(via: Via, source: Address) -> Address:
    """Where responses to a request with top Via ``via`` from ``source`` go (§18.2.2, RFC 3581 §4)."""
    if source.reliable:
        return source
    maddr = via.params.get("maddr")
    if maddr:
        return Address(source.transport, maddr, via.port or _default_port(via.transport))
    rport = via.rport
    port = rport if type(rport) is int else (via.port or _default_port(via.transport))
    host = via.received or via.host
    if port == source.port and host == source.host:
        return source  # the usual case (rport, or no NAT): one Address for the transaction, not two
    return Address(source.transport, host, port)


def _server_key(request: Request) -> tuple[str, ...]:
    """The matching values of §17.2.3 for a received request (without the method)."""
    via = request.top_via
    branch = via.branch or ""
    if branch.startswith(MAGIC_COOKIE):
        return (branch, via.sent_by.lower())
    # RFC 2543 fallback: Request-URI, To tag, From tag, Call-ID, CSeq number and top Via.
    return (
        "rfc2543", request.uri, request.to.tag or "", request.from_.tag or "", request.call_id,
        str(request.cseq.seq), str(via),
    )  # fmt: skip


def _new_branch() -> str:
    return MAGIC_COOKIE + random_hex(10)


class SipEndpoint:
    """The transaction layer of one SIP element (UA, B2BUA leg or proxy core), sans-IO.

    ``sent_by`` is the host[:port] this element puts in its Via headers, one string for every transport
    or a mapping from transport token to sent-by. ``branch_factory`` makes branch parameters (it must
    return strings starting with ``z9hG4bK`` that are unique in time and space; tests pass a counter).
    """

    __slots__ = (
        "_awaiting_ack",
        "_branch_factory",
        "_by_raw",
        "_client",
        "_completed",
        "_policies",
        "_sent_by",
        "_server",
        "_stateless_order",
        "_stateless_sent",
        "_via_templates",
        "raw_matches",
        "retransmit_2xx",
        "stateless",
        "stateless_limit",
        "stateless_repeats",
        "timer_sink",
        "timers",
    )  # fmt: skip

    def __init__(
        self,
        *,
        sent_by: str | Mapping[str, str],
        timers: TimerConfig | None = None,
        branch_factory: Callable[[], str] = _new_branch,
        retransmit_2xx: bool = True,
    ) -> None:
        self._sent_by = {k.upper(): v for k, v in sent_by.items()} if isinstance(sent_by, Mapping) else sent_by
        self._via_templates: dict[str, Via] = {}  # transport -> our Via without parameters
        self.timers = timers or TimerConfig()
        self._policies = {False: self.timers.policy(reliable=False), True: self.timers.policy(reliable=True)}
        self._branch_factory = branch_factory
        self.retransmit_2xx = retransmit_2xx
        self._client: dict[TransactionId, _ClientTransaction] = {}
        self._server: dict[TransactionId, _ServerTransaction] = {}
        #: (datagram, source) of each live server transaction's request: a byte-identical retransmission
        #: from the same address is matched without being parsed again (it can only match that transaction).
        self._by_raw: dict[tuple[bytes, Address], _ServerTransaction | _Completed] = {}
        #: Non-INVITE server transactions in Completed on UDP, kept small until their Timer J (see _Completed).
        self._completed: dict[TransactionId, _Completed] = {}
        #: Retransmissions matched that way (counted; the parser never saw them).
        self.raw_matches = 0
        self._awaiting_ack: dict[tuple[str, int, str], _ServerTransaction] = {}
        #: The TU's stateless answers (RFC 3261 §8.2.7): called with each new request (not ACK or CANCEL, not
        #: a retransmission of a live transaction) before a server transaction is made for it. A response it
        #: returns is sent at once and no transaction is kept: no 100 (Trying), no retransmission of the
        #: response, a retransmitted request is simply answered again, the ACK for a 300-699 answer goes to the
        #: TU as a stray ``AckReceived``. For answers that need no state, above all the 401/407 challenge.
        self.stateless: Callable[[Request, Address], Response | None] | None = None
        #: Where timers are armed and cancelled. None (the default): each is an ``ArmTimer``/``CancelTimer`` action
        #: in the list returned, for the caller to carry out. A :class:`~gateway.sip.timer_heap.TimerHeap`: they go
        #: there directly, in the order they would have had in that list, and no such action is returned.
        self.timer_sink: TimerHeap | None = None
        #: (datagram, source) -> (time, Send) of the stateless answers of the last 64*T1: a byte-identical
        #: retransmission from the same address gets the same bytes again, unparsed and without asking the TU
        #: (a client that retransmits because its network or the gateway is slow gets one challenge, one nonce,
        #: instead of a fresh one per copy, and an overloaded gateway spends no more on it than on a
        #: retransmission absorbed by a transaction). At most ``stateless_limit`` answers are kept, oldest
        #: forgotten first; a forgotten one is simply answered again by the TU, as §8.2.7 allows.
        self._stateless_sent: dict[tuple[bytes, Address], tuple[float, Send]] = {}
        #: (time, key) of each answer in the order they were sent, oldest first, for forgetting the oldest.
        #: A dict from which the oldest keys are deleted keeps their slots until it is resized, and iterating it
        #: from the start walks over all of them: with the memory full, every answer did that (about 2 700
        #: slots on average at the default limit).
        self._stateless_order: deque[tuple[float, tuple[bytes, Address]]] = deque()
        self.stateless_limit = 8192
        #: Retransmissions answered from that memory.
        self.stateless_repeats = 0

    def __repr__(self) -> str:
        return f"<SipEndpoint {len(self._client)} client, {len(self._server)} server transactions>"

    # -- inspection -----------------------------------------------------------------------------------

    def state(self, transaction: TransactionId) -> TransactionState | None:
        """The state of a live transaction; None once it has terminated and been forgotten."""
        tx = self._lookup(transaction)
        if tx is not None:
            return tx.machine.state
        return TransactionState.COMPLETED if transaction in self._completed else None

    @property
    def transaction_count(self) -> int:
        return len(self._client) + len({id(tx) for tx in self._server.values()}) + len(self._completed)

    def _policy(self, address: Address) -> TimerPolicy:
        return self._policies[address.reliable]

    def _lookup(self, tid: TransactionId) -> _ClientTransaction | _ServerTransaction | None:
        return self._client.get(tid) if tid.side == "client" else self._server.get(tid)

    def _via_sent_by(self, transport: str) -> str:
        if isinstance(self._sent_by, str):
            return self._sent_by
        try:
            return self._sent_by[transport.upper()]
        except KeyError:
            raise ValueError(f"no sent-by configured for transport {transport}") from None

    # -- sending requests -----------------------------------------------------------------------------

    def send_request(self, request: Request, dest: Address, now: float) -> tuple[TransactionId, list[Action]]:
        """Start a client transaction for ``request`` towards ``dest``.

        The endpoint adds its own top Via (with a new branch and ``rport``) and checks the result as
        ``Request.build`` does, so ``request`` may be built without a Via. Raises ValueError for ACK and
        CANCEL (use ``send_ack`` / ``send_cancel``) and for a request that fails the checks.
        """
        if request.method == "ACK":
            raise ValueError("an ACK for a 2xx has no transaction: use send_ack (§17.1.1.3 builds the others)")
        if request.method == "CANCEL":
            raise ValueError("use send_cancel(invite_transaction, ...) to cancel an INVITE (§9.1)")
        branch = self._branch_factory()
        if not branch.startswith(MAGIC_COOKIE):
            raise ValueError(f"branch {branch!r} does not start with the RFC 3261 magic cookie {MAGIC_COOKIE}")
        request = self._with_via(request, dest.transport, branch)
        tid = TransactionId("client", request.method, (branch,))
        kind = TransactionKind.for_method(request.method, client=True)
        tx = _ClientTransaction(tid, TransactionMachine(kind, self._policy(dest), branch=branch), request, dest)
        self._client[tid] = tx
        return tid, self._run_client(tx, START_EVENTS[kind], now)

    def send_ack(self, ack: Request, dest: Address, now: float) -> list[Action]:
        """Send the ACK for a 2xx (§13.2.2.4): a new top Via and branch, no transaction."""
        if ack.method != "ACK":
            raise ValueError(f"send_ack needs an ACK, got {ack.method}")
        ack = self._with_via(ack, dest.transport, self._branch_factory())
        return [Send(ack.to_bytes(), dest, ack, None)]

    def send_cancel(
        self, invite: TransactionId, now: float, *, headers: Iterable[tuple[str, str]] = ()
    ) -> list[Action]:
        """Cancel the INVITE client transaction ``invite`` (§9.1); ``headers`` may add e.g. a Reason.

        The CANCEL waits for the first provisional response if none has arrived yet, and is not sent at
        all once a final response has arrived or the transaction has ended.
        """
        if invite.side != "client" or invite.method != "INVITE":
            raise ValueError(f"only an INVITE client transaction can be cancelled, not {invite}")
        tx = self._client.get(invite)
        if tx is None or tx.cancel_state:
            return []
        tx.cancel_headers = tuple(headers)
        if tx.machine.state is TransactionState.CALLING:
            tx.cancel_state = "pending"
            return []
        if tx.machine.state is TransactionState.PROCEEDING:
            return self._start_cancel(tx, now)
        return []

    def _arm(self, actions: list[Action], timer_id: TimerId, deadline: float) -> None:
        sink = self.timer_sink
        if sink is None:
            actions.append(ArmTimer(timer_id, deadline))
        else:
            sink.arm(timer_id, deadline)

    def _cancel(self, actions: list[Action], timer_id: TimerId) -> None:
        sink = self.timer_sink
        if sink is None:
            actions.append(CancelTimer(timer_id))
        else:
            sink.cancel(timer_id)

    def _start_cancel(self, invite_tx: _ClientTransaction, now: float) -> list[Action]:
        invite = invite_tx.request
        invite_tx.cancel_state = "sent"
        actions: list[Action] = []
        self._arm(actions, TimerId(invite_tx.id, TIMER_CANCEL), now + 64 * self.timers.t1)
        fields: list[tuple[str, str]] = [
            ("Via", str(invite.top_via)),
            ("Max-Forwards", "70"),
            ("From", invite.headers.get("From") or ""),
            ("To", invite.headers.get("To") or ""),
            ("Call-ID", invite.call_id),
            ("CSeq", f"{invite.cseq.seq} CANCEL"),
        ]
        fields.extend(("Route", value) for value in invite.headers.get_all("Route"))
        fields.extend(invite_tx.cancel_headers)
        cancel = Request.build("CANCEL", invite.uri, headers=fields)
        branch = invite_tx.id.key[0]
        tid = TransactionId("client", "CANCEL", (branch,))
        machine = TransactionMachine(TransactionKind.NON_INVITE_CLIENT, self._policy(invite_tx.dest), branch=branch)
        tx = _ClientTransaction(tid, machine, cancel, invite_tx.dest)
        self._client[tid] = tx
        actions.extend(self._run_client(tx, TxEvent.SEND_REQUEST, now))
        return actions

    def _with_via(self, request: Request, transport: str, branch: str) -> Request:
        via = f"SIP/2.0/{transport.upper()} {self._via_sent_by(transport)};branch={branch};rport"
        headers = request.headers.copy()
        headers.prepend("Via", via)
        # Our own Via needs no parsing: it is built from the sent-by (parsed once) and the branch; the response
        # brings the same text back, so it is remembered for that parse too.
        template = self._via_templates.get(transport)
        if template is None:
            template = self._via_templates[transport] = Via.parse(f"SIP/2.0/{transport.upper()} "
                                                                  f"{self._via_sent_by(transport)}")
        own = template.copy()
        own.params = {"branch": branch, "rport": None}
        headers._remember("top_via", own)
        remember_via(via, own)
        return Request.build(request.method, request.uri, headers=headers, body=request.body, adopt=True)

    # -- sending responses ----------------------------------------------------------------------------

    def send_response(self, transaction: TransactionId, response: Response, now: float) -> list[Action]:
        """Send the TU's ``response`` in server transaction ``transaction``.

        Raises KeyError if the transaction has ended, ValueError if the response is for another request,
        and ``TransactionStateError`` if the transaction's table does not allow it (e.g. a provisional
        after the final response).
        """
        tx = self._server.get(transaction) if transaction.side == "server" else None
        if tx is None:
            done = self._completed.get(transaction)
            if done is not None:
                return self._respond_completed(done, response)
            raise KeyError(f"no server transaction {transaction} (it has terminated or never existed)")
        # Compared with the request's CSeq, which the response copies (§8.2.6.2): a request whose CSeq
        # method differs from its method (§8.1.1.5 forbids it) must still be answerable with 400.
        cseq = tx.request.cseq
        _check_answers(response, tx.request.method, cseq.seq, cseq.method)
        if response.status == 100 and tx.last is not None and tx.last.status == 100:
            return []  # §17.2.1: the transaction already sent its 100 (Trying); a second one tells nobody anything
        return self._run_server(tx, sent_response_event(response.status), now, message=response)

    # -- input ----------------------------------------------------------------------------------------

    def receive(self, data: bytes | Request | Response, source: Address, now: float) -> list[Action]:
        """Handle one message from the network (bytes of one datagram / framed message, or parsed)."""
        raw: tuple[bytes, Address] | None = None
        if isinstance(data, bytes | bytearray | memoryview):
            data = bytes(data)
            raw = (data, source)
            known = self._by_raw.get(raw)
            if known is not None:
                # §17.2.3: a retransmission of the request of a live server transaction.
                self.raw_matches += 1
                if type(known) is _Completed:
                    return [known.resend()]  # §17.2.2: Completed answers it with the final response
                assert isinstance(known, _ServerTransaction)
                return self._run_server(known, TxEvent.RECV_REQUEST, now, message=known.request)
            if self._stateless_sent:
                answered = self._stateless_sent.get(raw)
                if answered is not None and now - answered[0] < 64 * self.timers.t1:
                    self.stateless_repeats += 1
                    return [answered[1]]
            try:
                message = parse_message(data, stream=source.reliable)
            except SipParseError as exc:
                return self._parse_failed(data, exc, source)
        else:
            message = data
        try:
            if isinstance(message, Response):
                return self._receive_response(message, source, now)
            return self._receive_request(message, source, now, raw)
        except SipParseError as exc:
            # A header the transaction layer needs (Via, CSeq, From/To tags) is unreadable.
            return [Deliver(Discarded(message, source, f"{exc.status_hint} {exc.reason}"))]

    def _parse_failed(self, data: bytes, exc: SipParseError, source: Address) -> list[Action]:
        actions: list[Action] = []
        partial = exc.partial
        if partial is not None and partial.method != "ACK":
            # §8.2 / §18.2: answer what could be read, statelessly; garbage and responses are only dropped.
            try:
                response = Response.for_request(partial, exc.status_hint, exc.reason)
                dest = _reply_address(partial.top_via, source)
                actions.append(Send(response.to_bytes(), dest, response, None))
            except (SipParseError, ValueError):
                pass
        actions.append(Deliver(Discarded(data, source, str(exc))))
        return actions

    def _receive_response(self, response: Response, source: Address, now: float) -> list[Action]:
        tid = TransactionId("client", response.cseq.method, (response.top_via.branch or "",))
        tx = self._client.get(tid)
        if tx is None:
            return [Deliver(StrayResponse(response, source, "no matching client transaction"))]
        try:
            actions = self._run_client(tx, received_response_event(response.status), now, response, source)
        except TransactionStateError as exc:
            return [Deliver(StrayResponse(response, source, str(exc)))]
        if response.status < 200 and tx.cancel_state == "pending" and tx.machine.state is TransactionState.PROCEEDING:
            actions.extend(self._start_cancel(tx, now))
        return actions

    def _receive_request(self, request: Request, source: Address, now: float,
                         raw: tuple[bytes, Address] | None = None) -> list[Action]:
        request = _stamp_via(request, source, in_place=raw is not None)
        key = _server_key(request)
        if request.method == "ACK":
            return self._receive_ack(request, key, source, now)
        tid = TransactionId("server", request.method, key)
        tx = self._server.get(tid)
        if tx is not None:
            return self._run_server(tx, TxEvent.RECV_REQUEST, now, message=request)
        if self._completed:
            done = self._completed.get(tid)
            if done is not None:
                return [done.resend()]  # a retransmission that differs in its bytes (§17.2.3 matches it)
        if self.stateless is not None and request.method != "CANCEL":
            response = self.stateless(request, source)
            if response is not None:
                send = Send(response.to_bytes(), _reply_address(request.top_via, source), response, None)
                if raw is not None:
                    self._remember_stateless(raw, send, now)
                return [send]
        kind = TransactionKind.for_method(request.method, client=False)
        machine = TransactionMachine(kind, self._policy(source), branch=request.top_via.branch or "")
        tx = _ServerTransaction(tid, machine, request, source)
        self._server[tid] = tx
        if raw is not None and raw not in self._by_raw:
            tx.raw_key = raw
            self._by_raw[raw] = tx
        if request.method == "CANCEL":
            return self._receive_cancel(tx, now)
        return self._run_server(tx, START_EVENTS[kind], now, message=request)

    def _remember_stateless(self, raw: tuple[bytes, Address], send: Send, now: float) -> None:
        sent = self._stateless_sent
        order = self._stateless_order
        if raw in sent:
            del sent[raw]  # answered again after it aged out: kept as the newest (its old place is skipped)
        elif len(sent) >= self.stateless_limit:
            # Oldest first: drop those past 64*T1, or else the oldest one.
            horizon = now - 64 * self.timers.t1
            dropped = 0
            while order:
                when, key = order[0]
                entry = sent.get(key)
                if entry is None or entry[0] != when:
                    order.popleft()  # the place of an answer given again later
                    continue
                if when >= horizon and dropped:
                    break
                order.popleft()
                del sent[key]
                dropped += 1
                if when >= horizon:
                    break
        message = send.message
        if message is not None:
            # Kept for 64*T1 to be sent again: its parsed views (Via, From, To, URIs …) are parsed again if
            # anything asks (like a finished transaction's messages, see _release).
            message.release_parsed()
        sent[raw] = (now, send)
        order.append((now, raw))
        if len(order) > 2 * self.stateless_limit:  # places of answers given again, never reached by the front
            self._stateless_order = deque((when, key) for key, (when, _) in sent.items())

    def _receive_ack(self, ack: Request, key: tuple[str, ...], source: Address, now: float) -> list[Action]:
        tx = self._server.get(TransactionId("server", "INVITE", key))
        if tx is None:
            # The ACK for a 2xx: a transaction of its own, passed straight to the TU (§17).
            actions: list[Action] = self._ack_matches_2xx(ack)
            actions.append(Deliver(AckReceived(ack, source, None)))
            return actions
        try:
            return self._run_server(tx, TxEvent.RECV_ACK, now, message=ack)
        except TransactionStateError as exc:
            return [Deliver(Discarded(ack, source, str(exc)))]

    def _receive_cancel(self, tx: _ServerTransaction, now: float) -> list[Action]:
        """§9.2: a CANCEL matches the INVITE server transaction with the same matching values."""
        cancel = tx.request
        actions = self._run_server(tx, TxEvent.RECV_REQUEST, now, message=cancel, deliver=False)
        invite_tx = self._server.get(TransactionId("server", "INVITE", tx.id.key))
        if invite_tx is None:
            response = Response.for_request(cancel, 481, "Call/Transaction Does Not Exist")
            return actions + self._run_server(tx, TxEvent.SEND_3XX_6XX, now, message=response)
        # §9.2: the 200 to the CANCEL carries the To tag of the INVITE's response, when there is one.
        to_tag = invite_tx.last.to.tag if invite_tx.last is not None else None
        ok = Response.for_request(cancel, 200, to_tag=to_tag)
        actions += self._run_server(tx, TxEvent.SEND_2XX, now, message=ok)
        if invite_tx.machine.state is TransactionState.PROCEEDING:
            actions.append(Deliver(CancelReceived(cancel, invite_tx.id, tx.source)))
        return actions

    # -- timers and transport failures ----------------------------------------------------------------

    def timer_fired(self, timer_id: TimerId, now: float) -> list[Action]:
        """A timer armed by an ``ArmTimer`` action expired. Timers of ended transactions are ignored."""
        tx = self._lookup(timer_id.transaction)
        if tx is None:
            if timer_id.timer == "J":
                done = self._completed.pop(timer_id.transaction, None)
                if done is not None:
                    self._forget_completed(done)  # §17.2.2: Timer J ends the Completed state
            return []
        if timer_id.timer == TIMER_2XX:
            assert isinstance(tx, _ServerTransaction)
            return self._retransmit_2xx(tx, now)
        if timer_id.timer == TIMER_CANCEL:
            assert isinstance(tx, _ClientTransaction)
            if tx.machine.state is not TransactionState.PROCEEDING:
                return []
            tx.cancel_state = "done"
            outputs = tx.machine.handle(TxEvent.CANCEL_EXPIRED, now)
            return self._interpret_client(tx, outputs, None, tx.dest, TIMER_CANCEL)
        timer = _TIMERS.get(timer_id.timer)
        if timer is None:
            raise ValueError(f"unknown timer {timer_id.timer!r} in {timer_id}")
        outputs = tx.machine.timer_fired(timer, now)
        if isinstance(tx, _ClientTransaction):
            return self._interpret_client(tx, outputs, None, tx.dest, str(timer))
        return self._interpret_server(tx, outputs, None, str(timer), now=now)

    def transport_error(self, transaction: TransactionId, now: float) -> list[Action]:
        """Sending a message of ``transaction`` failed (ICMP error, connection refused or reset...)."""
        tx = self._lookup(transaction)
        if tx is None:
            done = self._completed.pop(transaction, None)
            if done is None:
                return []
            # §17.2.4: Completed goes to Terminated and the TU is told; the request is read again from its datagram.
            self._forget_completed(done)
            actions: list[Action] = []
            self._cancel(actions, TimerId(transaction, "J"))
            parsed = parse_message(done.raw_key[0])
            assert isinstance(parsed, Request)  # it made a server transaction
            request = _stamp_via(parsed, done.raw_key[1], in_place=True)
            actions.append(TransportError(transaction, request, done.reply_to, None))
            return actions
        try:
            if isinstance(tx, _ClientTransaction):
                return self._run_client(tx, TxEvent.TRANSPORT_ERROR, now)
            return self._run_server(tx, TxEvent.TRANSPORT_ERROR, now)
        except TransactionStateError:
            return []  # nothing is being sent in this state; the error is not the transaction's

    # -- running the tables ---------------------------------------------------------------------------

    def _run_client(
        self,
        tx: _ClientTransaction,
        event: TxEvent,
        now: float,
        response: Response | None = None,
        source: Address | None = None,
    ) -> list[Action]:
        outputs = tx.machine.handle(event, now)
        return self._interpret_client(tx, outputs, response, source or tx.dest, None)

    def _interpret_client(
        self,
        tx: _ClientTransaction,
        outputs: list[Effect | StartTimer | StopTimer],
        response: Response | None,
        source: Address,
        timer: str | None,
    ) -> list[Action]:
        actions: list[Action] = []
        for out in outputs:
            if isinstance(out, StartTimer):
                self._arm(actions, TimerId(tx.id, str(out.timer)), out.deadline)
            elif isinstance(out, StopTimer):
                self._cancel(actions, TimerId(tx.id, str(out.timer)))
            elif out is Effect.SEND_REQUEST or out is Effect.RETRANSMIT_REQUEST:
                actions.append(Send(tx.data, tx.dest, tx.request, tx.id))
            elif out is Effect.SEND_ACK:
                assert response is not None
                ack, data = self._ack_for(tx, response)
                actions.append(Send(data, tx.dest, ack, tx.id))
            elif out is Effect.PASS_TO_TU:
                assert response is not None
                actions.append(Deliver(ResponseReceived(response, tx.id, source)))
            elif out is Effect.REPORT_TIMEOUT:
                timeout = Response.for_request(tx.request, 408, "Request Timeout")
                actions.append(TransactionTimeout(tx.id, tx.request, timer or "", timeout))
            elif out is Effect.REPORT_TRANSPORT_ERROR:
                failure = Response.for_request(tx.request, 503, "Service Unavailable (transport error)")
                actions.append(TransportError(tx.id, tx.request, tx.dest, failure))
            else:  # pragma: no cover - the client tables use no other effect
                raise AssertionError(f"unexpected effect {out} for a client transaction")
        if tx.cancel_state == "sent" and tx.machine.state is not TransactionState.PROCEEDING:
            tx.cancel_state = "done"  # the final response (or the end) came: stop the §9.1 timer
            self._cancel(actions, TimerId(tx.id, TIMER_CANCEL))
        if tx.machine.terminated:
            self._client.pop(tx.id, None)
        elif not tx.released and tx.machine.state in _CLIENT_DONE:
            # A final response came: what is left (absorbing retransmitted responses, Timers D, K, M) needs
            # the request's bytes and branch only. Its parsed views are released (see Request.release_parsed).
            tx.released = True
            tx.request.release_parsed()
        return actions

    def _ack_for(self, tx: _ClientTransaction, response: Response) -> tuple[Request, bytes]:
        """The ACK for a 300-699 response (§17.1.1.3), built once per To tag and reused."""
        to_tag = response.to.tag
        if tx.ack is not None and tx.ack[0] == to_tag:
            return tx.ack[1], tx.ack[2]
        invite = tx.request
        fields: list[tuple[str, str]] = [
            ("Via", str(invite.top_via)),
            ("Max-Forwards", "70"),
            ("From", invite.headers.get("From") or ""),
            ("To", response.headers.get("To") or ""),
            ("Call-ID", invite.call_id),
            ("CSeq", f"{invite.cseq.seq} ACK"),
        ]
        fields.extend(("Route", value) for value in invite.headers.get_all("Route"))
        ack = Request.build("ACK", invite.uri, headers=fields)
        data = ack.to_bytes()
        tx.ack = (to_tag, ack, data)
        return ack, data

    def _run_server(
        self,
        tx: _ServerTransaction,
        event: TxEvent,
        now: float,
        *,
        message: Request | Response | None = None,
        deliver: bool = True,
    ) -> list[Action]:
        outputs = tx.machine.handle(event, now)
        return self._interpret_server(tx, outputs, message, None, deliver=deliver, now=now)

    def _interpret_server(
        self,
        tx: _ServerTransaction,
        outputs: list[Effect | StartTimer | StopTimer],
        message: Request | Response | None,
        timer: str | None,
        *,
        deliver: bool = True,
        now: float = 0.0,
    ) -> list[Action]:
        actions: list[Action] = []
        for out in outputs:
            if isinstance(out, StartTimer):
                self._arm(actions, TimerId(tx.id, str(out.timer)), out.deadline)
            elif isinstance(out, StopTimer):
                self._cancel(actions, TimerId(tx.id, str(out.timer)))
            elif out is Effect.PASS_TO_TU:
                assert isinstance(message, Request)
                if not deliver:
                    continue
                if message.method == "ACK":
                    actions.extend(self._ack_matches_2xx(message))
                    actions.append(Deliver(AckReceived(message, tx.source, tx.id)))
                else:
                    actions.append(Deliver(RequestReceived(message, tx.id, tx.source)))
            elif out is Effect.SEND_TRYING:
                # §17.2.1: the 100 goes out before the TU sees the INVITE. A driver that runs the TU at once
                # would otherwise send the TU's final response first and the 100 after it, and the 100
                # would become the "last response" that Timer G retransmits.
                trying = Response.for_request(tx.request, 100)
                send = self._send_response(tx, trying)
                first_deliver = next((i for i, a in enumerate(actions) if type(a) is Deliver), len(actions))
                actions.insert(first_deliver, send)
            elif out is Effect.SEND_RESPONSE:
                assert isinstance(message, Response)
                actions.append(self._send_response(tx, message))
                actions.extend(self._after_final(tx, message, now))
            elif out is Effect.RESEND_RESPONSE:
                if tx.last is not None:
                    actions.append(Send(tx.last_data, tx.reply_to, tx.last, tx.id))
            elif out is Effect.REPORT_TIMEOUT:
                actions.append(TransactionTimeout(tx.id, tx.request, timer or "", None))
            elif out is Effect.REPORT_TRANSPORT_ERROR:
                actions.append(TransportError(tx.id, tx.request, tx.reply_to, None))
            else:  # pragma: no cover - the server tables use no other effect
                raise AssertionError(f"unexpected effect {out} for a server transaction")
        if tx.machine.terminated:
            actions.extend(self._forget_server(tx))
        elif (tx.machine.state, tx.machine.kind) in _SERVER_DONE:
            last = tx.last
            if (tx.machine.kind is TransactionKind.NON_INVITE_SERVER and tx.raw_key is not None
                    and last is not None and not tx.source.reliable):
                self._complete(tx, last, tx.raw_key)
            else:
                self._release_server(tx)
        return actions

    def _complete(self, tx: _ServerTransaction, last: Response, raw_key: tuple[bytes, Address]) -> None:
        """Replace a non-INVITE server transaction that entered Completed on UDP by its small record.

        Its Timer J is already armed under its id; the record answers retransmissions until it fires. Only
        a transaction made from a datagram has one (it is also found by those bytes); one made from a parsed
        message (tests, the stream framer) stays whole."""
        done = _Completed(tx, last, raw_key)
        del self._server[tx.id]
        self._completed[tx.id] = done
        self._by_raw[raw_key] = done

    def _forget_completed(self, done: _Completed) -> None:
        if self._by_raw.get(done.raw_key) is done:
            del self._by_raw[done.raw_key]

    @staticmethod
    def _respond_completed(done: _Completed, response: Response) -> list[Action]:
        """The TU answers a transaction that is already Completed: §17.2.2 discards a further final response; a
        provisional one is not allowed, nor a response to another request (as for a whole transaction)."""
        _check_answers(response, done.id.method, done.cseq_seq, done.cseq_method)
        if response.status < 200:
            raise TransactionStateError(TransactionKind.NON_INVITE_SERVER, TransactionState.COMPLETED,
                                        sent_response_event(response.status), done.id.key[0])
        return []

    def _send_response(self, tx: _ServerTransaction, response: Response) -> Send:
        if response is not tx.last:
            tx.last = response
            tx.last_data = response.to_bytes()
        return Send(tx.last_data, tx.reply_to, response, tx.id)

    def _after_final(self, tx: _ServerTransaction, response: Response, now: float) -> list[Action]:
        """Bookkeeping after a final response to an INVITE: ACK matching and 2xx retransmission."""
        if response.status < 200 or tx.request.method != "INVITE":
            return []
        to_tag = response.to.tag or ""
        if tx.id.key[0] == "rfc2543" and to_tag != (tx.request.to.tag or ""):
            # RFC 2543 ACK matching uses the To tag of the response (§17.2.3).
            key = tx.id.key
            alias = TransactionId("server", "INVITE", (*key[:2], to_tag, *key[3:]))
            if alias not in self._server:
                self._server[alias] = tx
                tx.aliases += (alias,)
        if response.status >= 300 or tx.acked:
            return []
        ack_key = (tx.request.call_id, tx.request.cseq.seq, to_tag)
        if ack_key in self._awaiting_ack:
            return []  # a retransmission of the 2xx by the TU
        self._awaiting_ack[ack_key] = tx
        if not self.retransmit_2xx or tx.source.reliable:
            return []
        tx.retransmit_interval = self.timers.t1
        actions: list[Action] = []
        self._arm(actions, TimerId(tx.id, TIMER_2XX), now + tx.retransmit_interval)
        return actions

    def _retransmit_2xx(self, tx: _ServerTransaction, now: float) -> list[Action]:
        """§13.3.1.4: resend the 2xx at T1, 2*T1 ... capped at T2, until the ACK (or Timer L)."""
        if tx.acked or tx.last is None or tx.machine.state is not TransactionState.ACCEPTED:
            return []
        actions = self._run_server(tx, TxEvent.SEND_2XX, now, message=tx.last)
        tx.retransmit_interval = min(2 * tx.retransmit_interval, self.timers.t2)
        self._arm(actions, TimerId(tx.id, TIMER_2XX), now + tx.retransmit_interval)
        return actions

    def _ack_matches_2xx(self, ack: Request) -> list[Action]:
        tx = self._awaiting_ack.pop((ack.call_id, ack.cseq.seq, ack.to.tag or ""), None)
        if tx is None:
            return []
        tx.acked = True
        self._release_server(tx)
        actions: list[Action] = []
        if tx.retransmit_interval:
            self._cancel(actions, TimerId(tx.id, TIMER_2XX))
        return actions

    @staticmethod
    def _release_server(tx: _ServerTransaction) -> None:
        """The transaction only answers retransmissions now (non-INVITE Completed, INVITE Confirmed, or
        Accepted once its ACK came): it needs the last response's bytes, not the parsed request and response.
        A finished transaction lives on for Timer J or I (up to 64*T1 on UDP), so at a few hundred requests a
        second their parsed views would be most of what the garbage collector scans."""
        if tx.released:
            return
        tx.released = True
        tx.request.release_parsed()
        if tx.last is not None:
            tx.last.release_parsed()

    def _forget_server(self, tx: _ServerTransaction) -> list[Action]:
        self._server.pop(tx.id, None)
        if tx.raw_key is not None and self._by_raw.get(tx.raw_key) is tx:
            del self._by_raw[tx.raw_key]
        for alias in tx.aliases:
            self._server.pop(alias, None)
        actions: list[Action] = []
        last = tx.last
        if last is not None and 200 <= last.status < 300 and tx.request.method == "INVITE" and not tx.acked:
            self._awaiting_ack.pop((tx.request.call_id, tx.request.cseq.seq, last.to.tag or ""), None)
            if tx.retransmit_interval:
                self._cancel(actions, TimerId(tx.id, TIMER_2XX))
            actions.append(AckTimeout(tx.id, last))
        return actions


#: Client transaction states after the final response.
_CLIENT_DONE: Final = frozenset({TransactionState.COMPLETED, TransactionState.ACCEPTED})

#: Server transaction states in which only retransmissions are answered: a non-INVITE one after its final response,
#: an INVITE one after the ACK for its 300-699 (and, in Accepted, once the 2xx was acknowledged: _ack_matches_2xx).
_SERVER_DONE: Final = frozenset({(TransactionState.COMPLETED, TransactionKind.NON_INVITE_SERVER),
                                 (TransactionState.CONFIRMED, TransactionKind.INVITE_SERVER)})

#: Transaction timers by their letter (what a TimerId names), without the Enum constructor on every firing.
_TIMERS: Final[dict[str, Timer]] = {t.value: t for t in Timer}

#: Memoised parses a stamped request keeps (all but Via's; RFC 3261 §18.2.1 changes only the top Via).
_KEPT_SLOTS: Final = _KNOWN_SLOTS - {"top_via", "vias"}


def _stamp_via(request: Request, source: Address, *, in_place: bool = False) -> Request:
    """Add ``received`` and fill ``rport`` in the top Via as §18.2.1 and RFC 3581 §4 require.

    ``in_place`` when the request was just parsed from the network and nothing else holds it: its top Via field
    is replaced where it is (what was parsed of the other headers stays). Otherwise a new request is built and
    the given one is left as it was."""
    via = request.top_via
    wants_rport = via.rport is True
    if not wants_rport and via.host.lower() == source.host.lower():
        return request
    params = dict(via.params)
    params["received"] = source.host
    if wants_rport:
        params["rport"] = str(source.port)
    stamped = Via(via.transport, via.host, via.port, params, via.protocol)
    old = request.headers
    fields = old._fields if in_place else list(old._fields)
    for i, (key, name, value) in enumerate(fields):
        if key == "via":
            if "," in value:  # "Via: a, b" on one line: only its first element is replaced
                rest = split_list(value)[1:]
                fields[i:i + 1] = [(key, name, str(stamped)), (key, name, ", ".join(rest))] if rest else [
                    (key, name, str(stamped))]
            else:
                fields[i] = (key, name, str(stamped))
            break
    if in_place:
        old._forget("via")
        old._remember("top_via", stamped)
        return request
    # What was parsed of the other headers (From, To, CSeq...) stays parsed; of Via only the new top.
    headers = Headers._from_fields(fields)
    cache = {slot: v for slot, v in old._cache.items() if slot in _KEPT_SLOTS} if old._cache else {}
    cache["top_via"] = stamped
    headers._cache = cache
    stamped_request = Request(request.method, request.uri, headers, request.body, request.version)
    stamped_request._request_uri = request._request_uri
    return stamped_request
