"""Test doubles for the sans-IO SIP core: a fake clock, a lossy fake wire and a ``TransactionPair``.

A ``TransactionPair`` is two ``SipEndpoint`` objects (a client side and a server side) joined by a wire
that carries the bytes of every ``Send`` action to the other side and can drop chosen datagrams. Timers
go into a per-side schedule; ``advance`` moves the clock and fires them in deadline order, so Timer A/E
retransmissions and Timer B/F timeouts happen deterministically and with no sleeping.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from gateway.sip.endpoint import (
    AckTimeout,
    Action,
    Address,
    ArmTimer,
    CancelTimer,
    Deliver,
    Event,
    Send,
    SipEndpoint,
    TimerId,
    TransactionId,
    TransactionTimeout,
    TransportError,
)
from gateway.sip.headers import Headers
from gateway.sip.message import Request, Response
from gateway.sip.timers import TimerConfig


class FakeClock:
    """Seconds since the start of the test; only ``advance`` and ``set`` move it."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("time does not go backwards")
        self.now += seconds
        return self.now

    def set(self, now: float) -> None:
        if now < self.now:
            raise ValueError(f"time does not go backwards ({now} < {self.now})")
        self.now = now


@dataclass
class WireRecord:
    """One datagram seen on the wire."""

    time: float
    source: Address
    dest: Address
    message: Request | Response
    dropped: bool

    @property
    def label(self) -> str:
        m = self.message
        return m.method if isinstance(m, Request) else str(m.status)


class LossPattern:
    """Which datagrams the wire drops.

    ``pattern`` is consumed one entry per datagram (True = drop), like aiortc's ``loss_pattern``; after it
    is exhausted nothing more is dropped. ``drop_if`` drops every datagram it returns True for.
    """

    def __init__(
        self, pattern: Iterable[bool] = (), drop_if: Callable[[Request | Response], bool] | None = None
    ) -> None:
        self._pattern: Iterator[bool] = iter(pattern)
        self._drop_if = drop_if

    def drops(self, message: Request | Response) -> bool:
        by_pattern = next(self._pattern, False)
        return by_pattern or (self._drop_if is not None and self._drop_if(message))


def drop_matching(label: str, count: int | None = None) -> Callable[[Request | Response], bool]:
    """A ``drop_if`` that drops messages with this method or status (``"INVITE"``, ``"486"``), at most
    ``count`` of them when given."""
    remaining = [count]

    def predicate(message: Request | Response) -> bool:
        name = message.method if isinstance(message, Request) else str(message.status)
        if name != label:
            return False
        if remaining[0] is None:
            return True
        if remaining[0] > 0:
            remaining[0] -= 1
            return True
        return False

    return predicate


@dataclass
class Side:
    """One endpoint and everything it told its user."""

    name: str
    endpoint: SipEndpoint
    address: Address
    events: list[Event] = field(default_factory=list)
    failures: list[TransactionTimeout | TransportError | AckTimeout] = field(default_factory=list)
    timers: dict[TimerId, float] = field(default_factory=dict)

    def events_of(self, kind: type) -> list:  # type: ignore[type-arg]
        return [e for e in self.events if isinstance(e, kind)]


class TransactionPair:
    """A client and a server endpoint on one fake wire, driven by one fake clock."""

    def __init__(
        self,
        transport: str = "UDP",
        *,
        loss: LossPattern | None = None,
        timers: TimerConfig | None = None,
        client_address: Address | None = None,
        server_address: Address | None = None,
    ) -> None:
        self.clock = FakeClock()
        self.loss = loss or LossPattern()
        self.wire: list[WireRecord] = []
        counter = itertools.count(1)

        def branches(prefix: str) -> Callable[[], str]:
            return lambda: f"z9hG4bK{prefix}{next(counter)}"

        client_address = client_address or Address(transport, "192.0.2.10", 5060)
        server_address = server_address or Address(transport, "192.0.2.20", 5060)
        self.client = Side(
            "client",
            SipEndpoint(sent_by=f"{client_address.host}:{client_address.port}", timers=timers,
                        branch_factory=branches("c")),
            client_address,
        )
        self.server = Side(
            "server",
            SipEndpoint(sent_by=f"{server_address.host}:{server_address.port}", timers=timers,
                        branch_factory=branches("s")),
            server_address,
        )
        self._queue: list[tuple[Side, Send]] = []

    @property
    def now(self) -> float:
        return self.clock.now

    def peer(self, side: Side) -> Side:
        return self.server if side is self.client else self.client

    # -- driving ---------------------------------------------------------------------------------

    def send_request(self, request: Request) -> TransactionId:
        tid, actions = self.client.endpoint.send_request(request, self.server.address, self.now)
        self.process(self.client, actions)
        return tid

    def respond(self, transaction: TransactionId, status: int, *, to_tag: str | None = "srv-tag",
                headers: Iterable[tuple[str, str]] = ()) -> Response:
        request = self.server_request(transaction)
        response = Response.for_request(request, status, headers=list(headers),
                                        to_tag=to_tag if status > 100 else None)
        self.process(self.server, self.server.endpoint.send_response(transaction, response, self.now))
        return response

    def server_request(self, transaction: TransactionId) -> Request:
        from gateway.sip.endpoint import RequestReceived

        for event in self.server.events:
            if isinstance(event, RequestReceived) and event.transaction == transaction:
                return event.request
        raise KeyError(f"the server never received a request for {transaction}")

    def process(self, side: Side, actions: list[Action]) -> None:
        """Carry out ``actions`` of ``side``; datagrams reach the peer at once (no network delay)."""
        for action in actions:
            if isinstance(action, Send):
                self._queue.append((side, action))
            elif isinstance(action, Deliver):
                side.events.append(action.event)
            elif isinstance(action, ArmTimer):
                assert action.deadline >= self.now, f"{action} is in the past (now={self.now})"
                side.timers[action.timer_id] = action.deadline
            elif isinstance(action, CancelTimer):
                side.timers.pop(action.timer_id, None)
            elif isinstance(action, TransactionTimeout | TransportError | AckTimeout):
                side.failures.append(action)
            else:  # pragma: no cover
                raise AssertionError(f"unknown action {action!r}")
        while self._queue:
            sender, send = self._queue.pop(0)
            self._transmit(sender, send)

    def _transmit(self, sender: Side, send: Send) -> None:
        receiver = self.peer(sender)
        dropped = self.loss.drops(send.message)
        self.wire.append(WireRecord(self.now, sender.address, send.dest, send.message, dropped))
        if dropped:
            return
        assert (send.dest.host, send.dest.port) == (receiver.address.host, receiver.address.port), (
            f"{sender.name} sent to {send.dest}, but the peer is {receiver.address}"
        )
        self.process(receiver, receiver.endpoint.receive(send.data, sender.address, self.now))

    def advance(self, seconds: float) -> None:
        """Move the clock forward, firing every timer that expires on the way, in deadline order."""
        self.run_until(self.now + seconds)

    def run_until(self, end: float) -> None:
        while True:
            due = [
                (deadline, n, side, timer_id)
                for n, (side, timer_id, deadline) in enumerate(
                    (side, tid, dl) for side in (self.client, self.server) for tid, dl in side.timers.items()
                )
                if deadline <= end
            ]
            if not due:
                break
            deadline, _, side, timer_id = heapq.nsmallest(1, due)[0]
            self.clock.set(max(self.now, deadline))
            del side.timers[timer_id]
            self.process(side, side.endpoint.timer_fired(timer_id, self.now))
        self.clock.set(max(self.now, end))

    # -- reading the wire --------------------------------------------------------------------------

    def sent(self, label: str, *, by: Side | None = None, delivered_only: bool = False) -> list[WireRecord]:
        return [
            r for r in self.wire
            if r.label == label and (by is None or r.source == by.address) and not (delivered_only and r.dropped)
        ]

    def send_times(self, label: str, *, by: Side | None = None) -> list[float]:
        return [r.time for r in self.sent(label, by=by)]


def make_request(
    method: str,
    *,
    uri: str = "sip:1001@192.0.2.20",
    call_id: str = "call-1@192.0.2.10",
    cseq: int = 1,
    from_tag: str = "cli-tag",
    to_tag: str | None = None,
    extra: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
) -> Request:
    """A request as a TU hands it to ``send_request``: no Via yet (the endpoint adds it)."""
    to = "<sip:1001@192.0.2.20>" + (f";tag={to_tag}" if to_tag else "")
    headers = Headers([
        ("Max-Forwards", "70"),
        ("From", f"<sip:1007@192.0.2.10>;tag={from_tag}"),
        ("To", to),
        ("Call-ID", call_id),
        ("CSeq", f"{cseq} {method}"),
        ("Contact", "<sip:1007@192.0.2.10:5060>"),
        *extra,
    ])
    return Request(method, uri, headers, body)
