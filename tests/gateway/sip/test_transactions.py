"""End-to-end transaction scenarios: two SipEndpoints over a fake, lossy wire with a fake clock."""

from __future__ import annotations

import pytest

from gateway.sip.endpoint import (
    AckReceived,
    AckTimeout,
    Address,
    CancelReceived,
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
from gateway.sip.message import Request, Response
from gateway.sip.parser import parse_message
from gateway.sip.transaction import TransactionState, TransactionStateError

from .helpers import LossPattern, TransactionPair, drop_matching, make_request


def statuses(events: list, *, transaction: TransactionId | None = None) -> list[int]:  # type: ignore[type-arg]
    return [
        e.response.status for e in events
        if isinstance(e, ResponseReceived) and (transaction is None or e.transaction == transaction)
    ]


def only_request(pair: TransactionPair) -> RequestReceived:
    received = pair.server.events_of(RequestReceived)
    assert len(received) == 1, received
    return received[0]


# --- INVITE -> 180 -> 200 ------------------------------------------------------------------------------


def test_invite_180_200_passes_2xx_up_and_terminates() -> None:
    pair = TransactionPair()
    tid = pair.send_request(make_request("INVITE"))
    server_tid = only_request(pair).transaction
    # The INVITE server transaction answered 100 Trying by itself; the client stopped Timer A.
    assert statuses(pair.client.events) == [100]
    assert pair.client.endpoint.state(tid) is TransactionState.PROCEEDING
    pair.respond(server_tid, 180)
    ok = pair.respond(server_tid, 200, headers=[("Contact", "<sip:1001@192.0.2.20>")])
    assert statuses(pair.client.events) == [100, 180, 200]
    assert pair.client.endpoint.state(tid) is TransactionState.ACCEPTED  # RFC 6026: waits for Timer M
    assert pair.server.endpoint.state(server_tid) is TransactionState.ACCEPTED

    # The UAC core ACKs the 2xx end to end (new branch); the server passes it up.
    ack = make_request("ACK", to_tag=ok.to.tag)
    pair.process(pair.client, pair.client.endpoint.send_ack(ack, pair.server.address, pair.now))
    acks = pair.server.events_of(AckReceived)
    assert len(acks) == 1 and acks[0].transaction is None
    assert acks[0].request.top_via.branch != only_request(pair).request.top_via.branch

    pair.advance(64 * 0.5)
    assert pair.client.endpoint.state(tid) is None
    assert pair.server.endpoint.state(server_tid) is None
    assert pair.client.endpoint.transaction_count == pair.server.endpoint.transaction_count == 0
    assert pair.client.failures == [] and pair.server.failures == []
    # No 2xx retransmission happened: the ACK arrived before T1.
    assert len(pair.sent("200")) == 1
    assert pair.client.timers == {} and pair.server.timers == {}


def test_lost_ack_makes_the_server_retransmit_2xx_and_the_client_sees_it() -> None:
    pair = TransactionPair(loss=LossPattern(drop_if=drop_matching("ACK", count=2)))
    tid = pair.send_request(make_request("INVITE"))
    ok = pair.respond(only_request(pair).transaction, 200)
    ack = make_request("ACK", to_tag=ok.to.tag)
    pair.process(pair.client, pair.client.endpoint.send_ack(ack, pair.server.address, pair.now))  # lost
    pair.advance(0.5)  # §13.3.1.4: 2xx again after T1
    assert pair.send_times("200") == [0.0, 0.5]
    # RFC 6026: the client transaction in Accepted passes the retransmitted 2xx to the TU to re-ACK.
    assert statuses(pair.client.events, transaction=tid) == [100, 200, 200]
    pair.process(pair.client, pair.client.endpoint.send_ack(ack, pair.server.address, pair.now))  # lost
    pair.advance(1.0)
    assert pair.send_times("200") == [0.0, 0.5, 1.5]
    pair.process(pair.client, pair.client.endpoint.send_ack(ack, pair.server.address, pair.now))
    assert len(pair.server.events_of(AckReceived)) == 1
    pair.advance(60)
    assert pair.send_times("200") == [0.0, 0.5, 1.5]
    assert pair.server.failures == []


def test_2xx_never_acknowledged_reports_ack_timeout() -> None:
    pair = TransactionPair(loss=LossPattern(drop_if=drop_matching("200")))
    pair.send_request(make_request("INVITE"))
    server_tid = only_request(pair).transaction
    pair.respond(server_tid, 200)
    pair.advance(40)
    # T1 doubling, capped at T2: 0, .5, 1.5, 3.5, 7.5, 11.5 ... until Timer L at 64*T1 = 32 s.
    assert pair.send_times("200") == [0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert [type(f) for f in pair.server.failures] == [AckTimeout]
    assert pair.server.failures[0].transaction == server_tid
    assert pair.server.timers == {}


# --- INVITE -> 486 -------------------------------------------------------------------------------------


def test_invite_486_ack_generated_by_client_and_absorbed_by_server() -> None:
    pair = TransactionPair()
    tid = pair.send_request(make_request("INVITE"))
    server_tid = only_request(pair).transaction
    pair.respond(server_tid, 486)
    assert statuses(pair.client.events) == [100, 486]
    acks = pair.sent("ACK", by=pair.client)
    assert len(acks) == 1
    ack = acks[0].message
    assert isinstance(ack, Request)
    # §17.1.1.3: same branch as the INVITE, To with the response's tag, CSeq number of the INVITE.
    assert ack.top_via.branch == tid.key[0]
    assert ack.to.tag == "srv-tag"
    assert (ack.cseq.seq, ack.cseq.method) == (1, "ACK")
    assert pair.server.events_of(AckReceived) == []  # absorbed by the INVITE server transaction
    assert pair.server.endpoint.state(server_tid) is TransactionState.CONFIRMED
    assert pair.client.endpoint.state(tid) is TransactionState.COMPLETED
    pair.advance(5.0)  # Timer I = T4
    assert pair.server.endpoint.state(server_tid) is None
    pair.advance(27.0)  # Timer D = 32 s
    assert pair.client.endpoint.state(tid) is None
    assert pair.client.failures == [] and pair.server.failures == []


def test_lost_ack_makes_timer_g_resend_486_which_is_acked_again_not_passed_up() -> None:
    pair = TransactionPair(loss=LossPattern(drop_if=drop_matching("ACK", count=1)))
    pair.send_request(make_request("INVITE"))
    server_tid = only_request(pair).transaction
    pair.respond(server_tid, 486)
    assert pair.server.endpoint.state(server_tid) is TransactionState.COMPLETED
    pair.advance(0.5)  # Timer G
    assert pair.send_times("486") == [0.0, 0.5]
    assert pair.send_times("ACK") == [0.0, 0.5]
    assert statuses(pair.client.events) == [100, 486]  # the retransmission is not passed up
    assert pair.server.endpoint.state(server_tid) is TransactionState.CONFIRMED


def test_no_ack_at_all_ends_with_timer_h() -> None:
    pair = TransactionPair(loss=LossPattern(drop_if=drop_matching("ACK")))
    pair.send_request(make_request("INVITE"))
    server_tid = only_request(pair).transaction
    pair.respond(server_tid, 603)
    pair.advance(40)
    assert pair.send_times("603") == [0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    [timeout] = pair.server.failures
    assert isinstance(timeout, TransactionTimeout)
    assert (timeout.transaction, timeout.timer, timeout.response) == (server_tid, "H", None)


# --- retransmissions and timeouts ---------------------------------------------------------------------


def test_udp_invite_retransmissions_double_and_timer_b_reports_408() -> None:
    pair = TransactionPair(loss=LossPattern(drop_if=drop_matching("INVITE")))
    tid = pair.send_request(make_request("INVITE"))
    pair.advance(31.9)
    # Timer A: T1, 2T1, 4T1 ... (§17.1.1.2) — seven transmissions before Timer B.
    assert pair.send_times("INVITE") == [0.0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert pair.client.failures == []
    pair.advance(0.1)
    [timeout] = pair.client.failures
    assert isinstance(timeout, TransactionTimeout)
    assert (timeout.transaction, timeout.timer) == (tid, "B")
    assert timeout.response is not None and timeout.response.status == 408
    assert timeout.response.call_id == "call-1@192.0.2.10"
    assert pair.client.endpoint.state(tid) is None
    assert pair.client.timers == {}


def test_udp_non_invite_retransmissions_double_up_to_t2_then_timer_f() -> None:
    pair = TransactionPair(loss=LossPattern(drop_if=drop_matching("OPTIONS")))
    tid = pair.send_request(make_request("OPTIONS"))
    pair.advance(33)
    assert pair.send_times("OPTIONS") == [0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    [timeout] = pair.client.failures
    assert isinstance(timeout, TransactionTimeout) and timeout.timer == "F"
    assert timeout.transaction == tid and timeout.response is not None and timeout.response.status == 408


def test_non_invite_after_provisional_retransmits_every_t2() -> None:
    pair = TransactionPair()
    pair.send_request(make_request("REGISTER", uri="sip:192.0.2.20"))
    server_tid = only_request(pair).transaction
    pair.respond(server_tid, 183, to_tag=None)  # Proceeding on both sides
    pair.advance(12.0)
    # E keeps running in Proceeding, at T2 from the first firing on (§17.1.2.2).
    assert pair.send_times("REGISTER", by=pair.client) == [0.0, 0.5, 4.5, 8.5]
    # The server answers each retransmission with its last provisional and passes none up.
    assert pair.send_times("183") == [0.0, 0.5, 4.5, 8.5]
    assert len(pair.server.events_of(RequestReceived)) == 1


def test_tcp_sends_once_and_times_out_with_timer_b() -> None:
    pair = TransactionPair("TCP", loss=LossPattern(drop_if=drop_matching("INVITE")))
    tid = pair.send_request(make_request("INVITE"))
    assert set(t.timer for t in pair.client.timers) == {"B"}
    pair.advance(40)
    assert pair.send_times("INVITE") == [0.0]
    [timeout] = pair.client.failures
    assert isinstance(timeout, TransactionTimeout) and timeout.transaction == tid and timeout.timer == "B"


def test_tcp_final_responses_end_transactions_at_once() -> None:
    pair = TransactionPair("TCP")
    tid = pair.send_request(make_request("INVITE"))
    server_tid = only_request(pair).transaction
    pair.respond(server_tid, 486)
    # D and I are zero on reliable transports: both sides are gone without any time passing.
    assert pair.client.endpoint.state(tid) is None
    assert pair.server.endpoint.state(server_tid) is None
    bye_tid = pair.send_request(make_request("BYE", cseq=2))
    [_, bye] = pair.server.events_of(RequestReceived)
    pair.respond(bye.transaction, 200)
    assert pair.client.endpoint.state(bye_tid) is None and pair.server.endpoint.state(bye.transaction) is None
    assert pair.client.timers == {} and pair.server.timers == {}


def test_server_absorbs_retransmitted_invite_and_resends_the_provisional() -> None:
    # The 100 Trying and the 180 are lost, so the client retransmits the INVITE at T1.
    pair = TransactionPair(loss=LossPattern([False, True, True]))
    tid = pair.send_request(make_request("INVITE"))
    server_tid = only_request(pair).transaction
    pair.respond(server_tid, 180)
    assert statuses(pair.client.events) == []
    pair.advance(0.5)
    assert pair.send_times("INVITE") == [0.0, 0.5]
    assert len(pair.server.events_of(RequestReceived)) == 1  # the retransmission is not a new request
    assert pair.send_times("180") == [0.0, 0.5]  # answered with the last response
    assert statuses(pair.client.events) == [180]
    assert pair.client.endpoint.state(tid) is TransactionState.PROCEEDING
    pair.advance(10)
    assert pair.send_times("INVITE") == [0.0, 0.5]  # Proceeding: no more retransmissions


def test_non_invite_server_absorbs_in_trying_and_answers_in_completed() -> None:
    pair = TransactionPair(loss=LossPattern(drop_if=drop_matching("200", count=1)))
    tid = pair.send_request(make_request("OPTIONS"))
    server_tid = only_request(pair).transaction
    pair.advance(0.5)  # retransmission while the server is in Trying: discarded, no answer
    assert pair.send_times("OPTIONS") == [0.0, 0.5]
    assert pair.sent("100") == []
    pair.respond(server_tid, 200)  # lost
    pair.advance(1.0)  # next retransmission is answered from the Completed state
    assert pair.send_times("200") == [0.5, 1.5]
    assert statuses(pair.client.events) == [200]
    assert pair.client.endpoint.state(tid) is TransactionState.COMPLETED
    pair.advance(5.0)  # Timer K
    assert pair.client.endpoint.state(tid) is None
    pair.advance(32.0)  # Timer J
    assert pair.server.endpoint.state(server_tid) is None
    assert len(pair.server.events_of(RequestReceived)) == 1


# --- CANCEL --------------------------------------------------------------------------------------------


def test_cancel_matches_the_invite_and_the_tu_answers_487() -> None:
    pair = TransactionPair()
    invite_tid = pair.send_request(make_request("INVITE", extra=[("Route", "<sip:edge.example.com;lr>")]))
    server_tid = only_request(pair).transaction
    pair.respond(server_tid, 180)
    pair.process(pair.client, pair.client.endpoint.send_cancel(
        invite_tid, pair.now, headers=[("Reason", 'SIP;cause=487;text="user hung up"')]
    ))
    [cancel_wire] = pair.sent("CANCEL")
    cancel = cancel_wire.message
    assert isinstance(cancel, Request)
    # §9.1: same Request-URI, Call-ID, From, To (no tag), CSeq number, top Via and Route as the INVITE.
    invite = only_request(pair).request
    assert cancel.uri == invite.uri
    assert cancel.top_via.branch == invite_tid.key[0]
    assert len(cancel.vias) == 1
    assert (cancel.cseq.seq, cancel.cseq.method) == (1, "CANCEL")
    assert cancel.to.tag is None and cancel.from_.tag == "cli-tag"
    assert cancel.headers.get_all("Route") == ["<sip:edge.example.com;lr>"]
    assert cancel.headers.get("Reason") == 'SIP;cause=487;text="user hung up"'

    [told] = pair.server.events_of(CancelReceived)
    assert told.invite_transaction == server_tid
    # The endpoint answered the CANCEL itself, with the To tag of the INVITE's provisional (§9.2).
    cancel_ok = [r.message for r in pair.sent("200", by=pair.server)]
    assert len(cancel_ok) == 1 and isinstance(cancel_ok[0], Response)
    assert cancel_ok[0].cseq.method == "CANCEL" and cancel_ok[0].to.tag == "srv-tag"

    pair.respond(server_tid, 487)
    assert statuses(pair.client.events, transaction=invite_tid) == [100, 180, 487]
    cancel_tid = TransactionId("client", "CANCEL", invite_tid.key)
    assert statuses(pair.client.events, transaction=cancel_tid) == [200]
    assert len(pair.sent("ACK")) == 1
    assert pair.server.endpoint.state(server_tid) is TransactionState.CONFIRMED


def test_cancel_waits_for_a_provisional_response() -> None:
    pair = TransactionPair(loss=LossPattern(drop_if=drop_matching("100")))
    invite_tid = pair.send_request(make_request("INVITE"))
    assert pair.client.endpoint.send_cancel(invite_tid, pair.now) == []  # §9.1: not before a 1xx
    server_tid = only_request(pair).transaction
    pair.respond(server_tid, 180)
    assert len(pair.sent("CANCEL")) == 1
    assert len(pair.server.events_of(CancelReceived)) == 1
    assert pair.client.endpoint.send_cancel(invite_tid, pair.now) == []  # only once


def test_cancel_after_final_response_is_not_sent() -> None:
    pair = TransactionPair()
    invite_tid = pair.send_request(make_request("INVITE"))
    pair.respond(only_request(pair).transaction, 200)
    assert pair.client.endpoint.send_cancel(invite_tid, pair.now) == []
    with pytest.raises(ValueError, match="only an INVITE client transaction"):
        pair.client.endpoint.send_cancel(TransactionId("client", "OPTIONS", ("z9hG4bKx",)), pair.now)


def test_cancel_for_answered_invite_gets_200_without_telling_the_tu() -> None:
    pair = TransactionPair()
    invite_tid = pair.send_request(make_request("INVITE"))
    server_tid = only_request(pair).transaction
    pair.respond(server_tid, 180)
    # The server answers, but the client has not seen the 200 yet when it cancels (a race).
    server_ep = pair.server.endpoint
    ok = Response.for_request(only_request(pair).request, 200, to_tag="srv-tag")
    server_actions = server_ep.send_response(server_tid, ok, pair.now)
    pair.process(pair.client, pair.client.endpoint.send_cancel(invite_tid, pair.now))
    pair.process(pair.server, server_actions)
    assert pair.server.events_of(CancelReceived) == []
    assert [r.message.cseq.method for r in pair.sent("200", by=pair.server)] == ["CANCEL", "INVITE"]


def test_unmatched_cancel_gets_481() -> None:
    pair = TransactionPair()
    endpoint = pair.server.endpoint
    raw = (
        b"CANCEL sip:1001@192.0.2.20 SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKnothing\r\n"
        b"Max-Forwards: 70\r\nFrom: <sip:1007@192.0.2.10>;tag=a\r\nTo: <sip:1001@192.0.2.20>\r\n"
        b"Call-ID: nothing\r\nCSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n"
    )
    actions = endpoint.receive(raw, pair.client.address, 0.0)
    sends = [a for a in actions if isinstance(a, Send)]
    assert len(sends) == 1 and isinstance(sends[0].message, Response) and sends[0].message.status == 481


# --- matching details ----------------------------------------------------------------------------------


def rfc2543_request(method: str, *, to_tag: str | None = None) -> bytes:
    to = "<sip:1001@192.0.2.20>" + (f";tag={to_tag}" if to_tag else "")
    return (
        f"{method} sip:1001@192.0.2.20 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 192.0.2.10:5060\r\n"
        f"Max-Forwards: 70\r\nFrom: <sip:1007@192.0.2.10>;tag=old\r\nTo: {to}\r\n"
        f"Call-ID: legacy-1\r\nCSeq: 5 {method}\r\nContact: <sip:1007@192.0.2.10>\r\nContent-Length: 0\r\n\r\n"
    ).encode()


def test_rfc2543_requests_without_magic_cookie_are_matched() -> None:
    endpoint = SipEndpoint(sent_by="192.0.2.20:5060")
    phone = Address("UDP", "192.0.2.10", 5060)
    actions = endpoint.receive(rfc2543_request("INVITE"), phone, 0.0)
    [received] = [a.event for a in actions if hasattr(a, "event") and isinstance(a.event, RequestReceived)]
    assert received.transaction.key[0] == "rfc2543"
    # A retransmission is absorbed and answered with the 100 Trying.
    again = endpoint.receive(rfc2543_request("INVITE"), phone, 0.5)
    assert [type(a) for a in again] == [Send]
    # The CANCEL matches by the same values (§9.2).
    cancel_actions = endpoint.receive(rfc2543_request("CANCEL"), phone, 1.0)
    assert any(hasattr(a, "event") and isinstance(a.event, CancelReceived) for a in cancel_actions)
    busy = Response.for_request(received.request, 486, to_tag="uas-1")
    endpoint.send_response(received.transaction, busy, 1.0)
    # The ACK carries the To tag of the response; RFC 2543 matching uses it (§17.2.3).
    ack_actions = endpoint.receive(rfc2543_request("ACK", to_tag="uas-1"), phone, 1.1)
    assert not any(hasattr(a, "event") for a in ack_actions)  # absorbed, not passed up
    assert endpoint.state(received.transaction) is TransactionState.CONFIRMED


def test_via_gets_received_and_rport_and_the_response_goes_back_through_the_nat() -> None:
    endpoint = SipEndpoint(sent_by="192.0.2.20:5060")
    nat = Address("UDP", "203.0.113.7", 40000)
    raw = (
        b"OPTIONS sip:192.0.2.20 SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bKnat;rport\r\n"
        b"Max-Forwards: 70\r\nFrom: <sip:1007@example.com>;tag=n\r\nTo: <sip:192.0.2.20>\r\n"
        b"Call-ID: nat-1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
    [deliver] = endpoint.receive(raw, nat, 0.0)
    event = deliver.event  # type: ignore[union-attr]
    assert isinstance(event, RequestReceived)
    via = event.request.top_via
    assert (via.received, via.rport) == ("203.0.113.7", 40000)
    actions = endpoint.send_response(event.transaction, Response.for_request(event.request, 200), 0.0)
    [send] = [a for a in actions if isinstance(a, Send)]
    assert send.dest == nat
    reply = parse_message(send.data)
    assert isinstance(reply, Response)
    assert reply.top_via.params["received"] == "203.0.113.7" and reply.top_via.rport == 40000


def test_without_rport_the_response_goes_to_received_and_sent_by_port() -> None:
    endpoint = SipEndpoint(sent_by="192.0.2.20:5060")
    raw = (
        b"OPTIONS sip:192.0.2.20 SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP phone.example.com:5070;branch=z9hG4bKnr\r\n"
        b"Max-Forwards: 70\r\nFrom: <sip:1007@example.com>;tag=n\r\nTo: <sip:192.0.2.20>\r\n"
        b"Call-ID: nr-1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
    [deliver] = endpoint.receive(raw, Address("UDP", "198.51.100.9", 33333), 0.0)
    event = deliver.event  # type: ignore[union-attr]
    assert isinstance(event, RequestReceived)
    actions = endpoint.send_response(event.transaction, Response.for_request(event.request, 200), 0.0)
    assert [a.dest for a in actions if isinstance(a, Send)] == [Address("UDP", "198.51.100.9", 5070)]


def test_stray_response_is_delivered() -> None:
    endpoint = SipEndpoint(sent_by="192.0.2.10:5060")
    raw = (
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKunknown\r\n"
        b"From: <sip:a@h>;tag=1\r\nTo: <sip:b@h>;tag=2\r\nCall-ID: s\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    )
    [deliver] = endpoint.receive(raw, Address("UDP", "192.0.2.20", 5060), 0.0)
    assert isinstance(deliver.event, StrayResponse)  # type: ignore[union-attr]
    assert deliver.event.reason == "no matching client transaction"  # type: ignore[union-attr]


def test_response_the_table_refuses_is_stray() -> None:
    pair = TransactionPair()
    tid = pair.send_request(make_request("INVITE"))
    pair.respond(only_request(pair).transaction, 486)
    assert pair.client.endpoint.state(tid) is TransactionState.COMPLETED
    late_ok = Response.for_request(only_request(pair).request, 200, to_tag="other")
    actions = pair.client.endpoint.receive(late_ok.to_bytes(), pair.server.address, pair.now)
    [deliver] = actions
    assert isinstance(deliver.event, StrayResponse)  # type: ignore[union-attr]
    assert "RECV_2XX" in deliver.event.reason and "COMPLETED" in deliver.event.reason  # type: ignore[union-attr]


def test_garbage_is_discarded_and_a_readable_bad_request_answered_400() -> None:
    endpoint = SipEndpoint(sent_by="192.0.2.20:5060")
    source = Address("UDP", "192.0.2.10", 5060)
    [deliver] = endpoint.receive(b"\x00\x01 not sip at all", source, 0.0)
    assert isinstance(deliver.event, Discarded)  # type: ignore[union-attr]
    bad = (
        b"INVITE sip:1001@192.0.2.20 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKbad\r\n"
        b"Max-Forwards: many\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: bad\r\nCSeq: 1 INVITE\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    actions = endpoint.receive(bad, source, 0.0)
    [send] = [a for a in actions if isinstance(a, Send)]
    assert isinstance(send.message, Response) and send.message.status == 400
    assert "Max-Forwards" in send.message.reason
    assert send.dest == source


def test_transport_error_reports_503_to_the_tu() -> None:
    pair = TransactionPair("TCP", loss=LossPattern(drop_if=drop_matching("INVITE")))
    tid = pair.send_request(make_request("INVITE"))
    pair.process(pair.client, pair.client.endpoint.transport_error(tid, pair.now))
    [failure] = pair.client.failures
    assert isinstance(failure, TransportError)
    assert failure.response is not None and failure.response.status == 503
    assert failure.dest == pair.server.address
    assert pair.client.endpoint.state(tid) is None and pair.client.timers == {}
    assert pair.client.endpoint.transport_error(tid, pair.now) == []


def test_tu_mistakes_raise_clear_errors() -> None:
    pair = TransactionPair()
    pair.send_request(make_request("MESSAGE"))
    server_tid = only_request(pair).transaction
    pair.respond(server_tid, 200)
    request = only_request(pair).request
    with pytest.raises(TransactionStateError, match=r"SEND_1XX.*non-INVITE server.*COMPLETED"):
        pair.server.endpoint.send_response(server_tid, Response.for_request(request, 180), pair.now)
    with pytest.raises(ValueError, match="does not answer"):
        other = make_request("INFO", cseq=9)
        fake = Response.build(200, headers=[("Via", "SIP/2.0/UDP h;branch=z9hG4bK1"), ("CSeq", str(other.cseq))])
        pair.server.endpoint.send_response(server_tid, fake, pair.now)
    pair.advance(40)
    with pytest.raises(KeyError, match="no server transaction"):
        pair.server.endpoint.send_response(server_tid, Response.for_request(request, 200), pair.now)
    with pytest.raises(ValueError, match="send_ack"):
        pair.client.endpoint.send_request(make_request("ACK"), pair.server.address, pair.now)
    with pytest.raises(ValueError, match="send_cancel"):
        pair.client.endpoint.send_request(make_request("CANCEL"), pair.server.address, pair.now)


def test_late_timer_of_an_ended_transaction_is_ignored() -> None:
    pair = TransactionPair("TCP")
    tid = pair.send_request(make_request("OPTIONS"))
    pair.respond(only_request(pair).transaction, 200)
    assert pair.client.endpoint.state(tid) is None
    assert pair.client.endpoint.timer_fired(TimerId(tid, "F"), pair.now) == []


def test_each_request_gets_its_own_branch_and_via() -> None:
    pair = TransactionPair()
    first = pair.send_request(make_request("OPTIONS", call_id="a"))
    second = pair.send_request(make_request("OPTIONS", call_id="b"))
    assert first != second
    vias = [r.message.top_via for r in pair.sent("OPTIONS")]
    assert [v.branch for v in vias] == [first.key[0], second.key[0]]
    assert all(v.sent_by == "192.0.2.10:5060" and v.rport is True for v in vias)


# --- properties over arbitrary datagram loss ----------------------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=200, deadline=None)
@given(
    transport=st.sampled_from(["UDP", "TCP"]),
    method=st.sampled_from(["OPTIONS", "INVITE"]),
    status=st.sampled_from([200, 404, 486, 603]),
    loss=st.lists(st.booleans(), max_size=40),
)
def test_any_loss_pattern_keeps_the_transaction_guarantees(
    transport: str, method: str, status: int, loss: list[bool]
) -> None:
    if method == "INVITE" and status == 200:
        status = 486  # the 2xx ACK is end to end: covered by the scenarios above
    if transport == "TCP":
        loss = []  # a reliable transport does not lose messages; its failures are transport errors
    pair = TransactionPair(transport, loss=LossPattern(loss))
    tid = pair.send_request(make_request(method))
    answered = False
    while pair.now < 110:
        requests = pair.server.events_of(RequestReceived)
        if requests and not answered:
            pair.respond(requests[0].transaction, status)
            answered = True
        if pair.now == 40 and pair.client.endpoint.state(tid) is TransactionState.PROCEEDING:
            # The UAC core gives up on an INVITE whose final response never arrives (§9.1).
            pair.process(pair.client, pair.client.endpoint.send_cancel(tid, pair.now))
        pair.advance(0.25)
    # The server's TU sees the request at most once, however often it was retransmitted.
    assert len(pair.server.events_of(RequestReceived)) <= 1
    finals = [s for s in statuses(pair.client.events, transaction=tid) if s >= 200]
    timeouts = [f for f in pair.client.failures if isinstance(f, TransactionTimeout) and f.transaction == tid]
    # The client's TU gets exactly one outcome: the final response once, or a timeout.
    assert (len(finals), len(timeouts)) in ((1, 0), (0, 1))
    assert finals in ([], [status])
    if not answered:
        assert timeouts, "no request arrived, so the client must have timed out"
    # An INVITE server never passes the ACK of a non-2xx up.
    assert pair.server.events_of(AckReceived) == []
    # Everything is cleaned up once the longest timer has run.
    assert pair.client.endpoint.transaction_count == 0 and pair.server.endpoint.transaction_count == 0
    assert pair.client.timers == {} and pair.server.timers == {}
    if transport == "TCP":
        assert len(pair.sent(method)) == 1
        assert finals == [status]


def test_cancelled_invite_without_final_response_is_given_up_after_64_t1() -> None:
    pair = TransactionPair(loss=LossPattern(drop_if=drop_matching("487")))
    tid = pair.send_request(make_request("INVITE"))
    server_tid = only_request(pair).transaction
    pair.respond(server_tid, 180)
    pair.process(pair.client, pair.client.endpoint.send_cancel(tid, pair.now))
    pair.respond(server_tid, 487)  # every copy of it is lost
    pair.advance(31.9)
    assert pair.client.endpoint.state(tid) is TransactionState.PROCEEDING
    pair.advance(0.1)
    timeouts = [f for f in pair.client.failures if isinstance(f, TransactionTimeout) and f.transaction == tid]
    assert len(timeouts) == 1 and timeouts[0].timer == "CANCEL"
    assert timeouts[0].response is not None and timeouts[0].response.status == 408
    assert pair.client.endpoint.state(tid) is None


def test_final_response_after_cancel_stops_the_give_up_timer() -> None:
    pair = TransactionPair()
    tid = pair.send_request(make_request("INVITE"))
    server_tid = only_request(pair).transaction
    pair.respond(server_tid, 180)
    pair.process(pair.client, pair.client.endpoint.send_cancel(tid, pair.now))
    assert TimerId(tid, "CANCEL") in pair.client.timers
    pair.respond(server_tid, 487)
    assert TimerId(tid, "CANCEL") not in pair.client.timers
    pair.advance(40)
    assert pair.client.failures == []
