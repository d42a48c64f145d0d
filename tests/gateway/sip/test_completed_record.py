"""A non-INVITE server transaction in Completed on UDP, kept as a small record until Timer J (RFC 3261 §17.2.2).

The record must behave as the whole transaction would: retransmissions answered with the final response (by
their bytes or by their matching values), a further final response of the TU discarded, a provisional one or
one for another request refused, Timer J ending it, a transport error reported with the request, and the
same transaction made again from the same request once it has gone. Each case runs the record against an
endpoint fed parsed messages, which keeps the whole transaction, as the reference.
"""

from __future__ import annotations

import pytest

from gateway.sip.endpoint import (
    Address,
    ArmTimer,
    CancelTimer,
    Deliver,
    RequestReceived,
    Send,
    SipEndpoint,
    TimerId,
    TransportError,
)
from gateway.sip.message import Response
from gateway.sip.parser import parse_message
from gateway.sip.timer_heap import TimerHeap
from gateway.sip.transaction import TransactionState, TransactionStateError

PHONE = Address("UDP", "192.0.2.10", 5062)
REGISTER = (
    b"REGISTER sip:192.0.2.20 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bK-done-1;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b"From: <sip:1001@192.0.2.20>;tag=r1\r\n"
    b"To: <sip:1001@192.0.2.20>\r\n"
    b"Call-ID: done-1@192.0.2.10\r\n"
    b"CSeq: 7 REGISTER\r\n"
    b"Contact: <sip:1001@192.0.2.10:5062>\r\n"
    b"Expires: 600\r\n"
    b"Content-Length: 0\r\n\r\n"
)
#: The same request with another header order: not byte-identical, the same transaction by §17.2.3.
REORDERED = REGISTER.replace(b"Max-Forwards: 70\r\n", b"").replace(
    b"Expires: 600\r\n", b"Expires: 600\r\nMax-Forwards: 70\r\n")


def _answered(ep: SipEndpoint, data: bytes | object, status: int = 200) -> tuple[RequestReceived, list[bytes]]:
    actions = ep.receive(data, PHONE, 0.0)  # type: ignore[arg-type]
    event = next(a.event for a in actions if isinstance(a, Deliver))
    assert isinstance(event, RequestReceived)
    response = Response.for_request(event.request, status, to_tag="gw1")
    sent = [a.data for a in ep.send_response(event.transaction, response, 0.0) if isinstance(a, Send)]
    return event, sent


@pytest.fixture(params=["record", "whole"])
def ep_and_input(request: pytest.FixtureRequest) -> tuple[SipEndpoint, bytes | object]:
    ep = SipEndpoint(sent_by="192.0.2.20:5060")
    # From bytes the endpoint keeps the record; from a parsed message it keeps the whole transaction.
    return ep, (REGISTER if request.param == "record" else parse_message(REGISTER))


def test_retransmissions_get_the_final_response_until_timer_j(ep_and_input) -> None:
    ep, data = ep_and_input
    event, first = _answered(ep, data)
    assert ep.state(event.transaction) is TransactionState.COMPLETED and ep.transaction_count == 1
    for again in (REGISTER, REORDERED):
        actions = ep.receive(again, PHONE, 1.0)
        assert [a.data for a in actions if isinstance(a, Send)] == first
        assert not any(isinstance(a, Deliver) for a in actions)
        resent = next(a for a in actions if isinstance(a, Send))
        assert resent.message.status == 200 and resent.transaction == event.transaction
        assert resent.dest == Address("UDP", "192.0.2.10", 5062)
    assert ep.timer_fired(TimerId(event.transaction, "J"), 32.0) == []
    assert ep.state(event.transaction) is None and ep.transaction_count == 0
    # Gone: the same request is a new transaction again, handed to the TU.
    assert any(isinstance(a, Deliver) for a in ep.receive(REGISTER, PHONE, 33.0))


def test_the_tu_answering_again_is_discarded_or_refused(ep_and_input) -> None:
    ep, data = ep_and_input
    event, _ = _answered(ep, data, 401)
    again = Response.for_request(event.request, 200, to_tag="gw1")
    assert ep.send_response(event.transaction, again, 0.1) == []  # §17.2.2: further finals are discarded
    with pytest.raises(TransactionStateError):
        ep.send_response(event.transaction, Response.for_request(event.request, 180, to_tag="gw1"), 0.1)
    other = Response.for_request(event.request, 200, to_tag="gw1")
    other.headers.set("CSeq", "8 REGISTER")
    with pytest.raises(ValueError, match="does not answer"):
        ep.send_response(event.transaction, other, 0.1)
    assert ep.timer_fired(TimerId(event.transaction, "J"), 32.0) == []
    with pytest.raises(KeyError):
        ep.send_response(event.transaction, again, 33.0)


def test_a_transport_error_ends_it_and_tells_the_tu_with_the_request(ep_and_input) -> None:
    ep, data = ep_and_input
    event, _ = _answered(ep, data)
    actions = ep.transport_error(event.transaction, 0.2)
    assert CancelTimer(TimerId(event.transaction, "J")) in actions
    error = next(a for a in actions if isinstance(a, TransportError))
    assert error.transaction == event.transaction and error.request.call_id == "done-1@192.0.2.10"
    assert error.request.top_via.rport == 5062  # stamped as on arrival (RFC 3581 §4)
    assert ep.state(event.transaction) is None and ep.transport_error(event.transaction, 0.3) == []


def test_timer_j_is_armed_as_for_the_whole_transaction() -> None:
    plain = SipEndpoint(sent_by="192.0.2.20:5060")
    event, _ = _answered(plain, REGISTER)
    armed = [a for a in plain.receive(REGISTER, PHONE, 0.0) if isinstance(a, ArmTimer)]
    assert armed == []  # a retransmission arms nothing
    sunk = SipEndpoint(sent_by="192.0.2.20:5060")
    sunk.timer_sink = heap = TimerHeap()
    event, _ = _answered(sunk, REGISTER)
    assert TimerId(event.transaction, "J") in heap and len(heap) == 1
    assert heap.pop_due(31.9) is None
    fired = heap.pop_due(32.0)
    assert fired == TimerId(event.transaction, "J")
    sunk.timer_fired(fired, 32.0)
    assert sunk.transaction_count == 0 and sunk.raw_matches == 0


def test_a_reliable_transport_keeps_no_record() -> None:
    ep = SipEndpoint(sent_by="192.0.2.20:5060")
    tcp = Address("TCP", "192.0.2.10", 40000)
    actions = ep.receive(REGISTER.replace(b"UDP", b"TCP"), tcp, 0.0)
    event = next(a.event for a in actions if isinstance(a, Deliver))
    ep.send_response(event.transaction, Response.for_request(event.request, 200, to_tag="t"), 0.0)
    assert ep.transaction_count == 0  # Timer J is zero on TCP (§17.2.2): Terminated at once
