"""The fast paths of the SIP core the load benchmark asked for, each checked against what it must keep.

- a byte-identical retransmission is matched to its server transaction without being parsed again;
- the INVITE server transaction's 100 (Trying) leaves before the TU's own final response (§17.2.1);
- parsed URIs are kept by text but every caller gets its own copy;
- a header change forgets only what was parsed from that header; copies keep what was parsed;
- the top Via is stamped (received, rport) in place, the other headers staying parsed;
- a transaction that only answers retransmissions keeps its messages but not their parsed views.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.sip.endpoint import Address, Deliver, RequestReceived, Send, SipEndpoint
from gateway.sip.headers import Headers
from gateway.sip.message import Request, Response
from gateway.sip.parser import parse_message
from gateway.sip.uri import SipURI

PHONE = Address("UDP", "192.0.2.10", 5060)
INVITE = (
    b"INVITE sip:1001@192.0.2.20 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-hot-1;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b"From: <sip:1007@192.0.2.10>;tag=a1\r\n"
    b"To: <sip:1001@192.0.2.20>\r\n"
    b"Call-ID: hot-1@192.0.2.10\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Contact: <sip:1007@192.0.2.10:5060>\r\n"
    b"Content-Length: 0\r\n\r\n"
)


def _endpoint() -> SipEndpoint:
    return SipEndpoint(sent_by="192.0.2.20:5060")


def _sent(actions) -> list[bytes]:
    return [a.data for a in actions if isinstance(a, Send)]


def test_invite_100_trying_is_sent_before_the_tu_sees_the_request() -> None:
    actions = _endpoint().receive(INVITE, PHONE, 0.0)
    kinds = [type(a) for a in actions if type(a) in (Send, Deliver)]
    assert kinds == [Send, Deliver]
    assert actions[0].data.startswith(b"SIP/2.0 100 ")


def test_a_tu_that_answers_at_once_has_its_407_as_the_last_response() -> None:
    ep = _endpoint()
    actions = ep.receive(INVITE, PHONE, 0.0)
    event = next(a.event for a in actions if isinstance(a, Deliver) and isinstance(a.event, RequestReceived))
    ep.send_response(event.transaction, Response.for_request(event.request, 407, to_tag="t1"), 0.0)
    # The retransmitted INVITE is answered with the 407, not with the 100.
    again = _sent(ep.receive(INVITE, PHONE, 0.5))
    assert len(again) == 1 and again[0].startswith(b"SIP/2.0 407 ")


def test_a_second_100_from_the_tu_is_not_sent() -> None:
    ep = _endpoint()
    actions = ep.receive(INVITE, PHONE, 0.0)
    event = next(a.event for a in actions if isinstance(a, Deliver))
    assert ep.send_response(event.transaction, Response.for_request(event.request, 100), 0.0) == []
    ringing = ep.send_response(event.transaction, Response.for_request(event.request, 180, to_tag="t"), 0.0)
    assert _sent(ringing)[0].startswith(b"SIP/2.0 180 ")


def test_a_byte_identical_retransmission_is_not_parsed_again() -> None:
    ep = _endpoint()
    actions = ep.receive(INVITE, PHONE, 0.0)
    event = next(a.event for a in actions if isinstance(a, Deliver))
    ep.send_response(event.transaction, Response.for_request(event.request, 486, to_tag="busy"), 0.0)
    assert ep.raw_matches == 0
    again = _sent(ep.receive(INVITE, PHONE, 0.4))
    assert ep.raw_matches == 1
    assert len(again) == 1 and again[0].startswith(b"SIP/2.0 486 ")
    # The same bytes from another address are parsed (Via received= differs), then matched by branch and
    # sent-by (§17.2.3) to the same transaction.
    other = _sent(ep.receive(INVITE, Address("UDP", "192.0.2.11", 5060), 0.4))
    assert ep.raw_matches == 1
    assert len(other) == 1 and other[0].startswith(b"SIP/2.0 486 ")


def test_the_raw_index_is_emptied_with_the_transactions() -> None:
    ep = _endpoint()
    actions = ep.receive(INVITE, PHONE, 0.0)
    event = next(a.event for a in actions if isinstance(a, Deliver))
    ep.send_response(event.transaction, Response.for_request(event.request, 486, to_tag="busy"), 0.0)
    ack = INVITE.replace(b"INVITE sip", b"ACK sip", 1).replace(b"1 INVITE", b"1 ACK").replace(
        b"To: <sip:1001@192.0.2.20>", b"To: <sip:1001@192.0.2.20>;tag=busy")
    ep.receive(ack, PHONE, 0.1)
    assert ep._by_raw  # Timer I still runs (UDP)
    for timer_id in [t for t in _timers(ep)]:
        ep.timer_fired(timer_id, 100.0)
    assert not ep._server and not ep._by_raw


def _timers(ep: SipEndpoint):
    from gateway.sip.endpoint import TimerId
    from gateway.sip.transaction import Timer

    for tx in list(ep._server.values()):
        for timer in Timer:
            yield TimerId(tx.id, timer.value)


def test_parsed_uris_are_kept_but_each_caller_gets_a_copy() -> None:
    a = SipURI.parse("sip:+14257000001@sipgw.lab;user=phone")
    a.params["user"] = "changed"
    a.user = "x"
    b = SipURI.parse("sip:+14257000001@sipgw.lab;user=phone")
    assert (b.user, b.params) == ("+14257000001", {"user": "phone"})
    with pytest.raises(Exception, match="port"):
        SipURI.parse("sip:a@b:99999")
    with pytest.raises(Exception, match="port"):
        SipURI.parse("sip:a@b:99999")  # errors are not kept


def test_a_header_change_forgets_only_that_header() -> None:
    msg = parse_message(INVITE)
    h = msg.headers
    from_ = msg.from_
    h.add("Subject", "x")
    assert msg.from_ is from_  # unchanged header: still the parsed value
    h.set("From", "<sip:other@192.0.2.10>;tag=b2")
    assert msg.from_.uri.user == "other" and msg.from_.tag == "b2"
    copy = h.copy()
    assert isinstance(copy, Headers)
    assert copy._cache is not None and "to" in copy._cache
    copy.set("To", "<sip:1002@192.0.2.20>")
    assert msg.to.uri.user == "1001"  # the original keeps its own
    resp = Response.for_request(msg, 180, to_tag="r1")
    assert resp.to.tag == "r1" and resp.cseq == msg.cseq and resp.top_via == msg.top_via


def test_the_top_via_is_stamped_in_place_and_the_rest_stays_parsed() -> None:
    # RFC 3261 §18.2.1 and RFC 3581 §4: received and rport are added to the top Via only.
    two_vias = INVITE.replace(b"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-hot-1;rport\r\n",
                              b"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-hot-1;rport, SIP/2.0/UDP p.example;"
                              b"branch=z9hG4bKp1\r\nSubject: s\r\nVia: SIP/2.0/TCP q.example;branch=z9hG4bKq1\r\n")
    parsed = parse_message(two_vias)
    from_ = parsed.from_
    actions = _endpoint().receive(two_vias, PHONE, 0.0)
    req = next(a.event.request for a in actions if isinstance(a, Deliver))
    assert req.headers.get_all("Via") == [
        "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-hot-1;rport=5060;received=192.0.2.10",
        "SIP/2.0/UDP p.example;branch=z9hG4bKp1", "SIP/2.0/TCP q.example;branch=z9hG4bKq1"]
    assert [name for name, _ in req.headers][:5] == ["Via", "Via", "Subject", "Via", "Max-Forwards"]
    assert req.top_via.received == "192.0.2.10" and req.top_via.rport == 5060
    assert [v.host for v in req.vias] == ["10.0.0.1", "p.example", "q.example"]
    assert req.from_ == from_ and req.cseq == parsed.cseq and req.request_uri.user == "1001"
    resp = Response.for_request(req, 200, to_tag="t")
    assert resp.headers.get("Via").startswith("SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-hot-1;rport=5060;")


def test_a_request_handed_in_parsed_is_stamped_on_a_copy() -> None:
    # Bytes from the network are the endpoint's own and stamped where they are; a Request object a caller
    # hands in may still be in the caller's hands, so the stamp goes on a new request.
    mine = parse_message(INVITE)
    actions = _endpoint().receive(mine, PHONE, 0.0)
    req = next(a.event.request for a in actions if isinstance(a, Deliver))
    assert req is not mine and req.top_via.rport == 5060
    assert mine.headers.get("Via") == "SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-hot-1;rport"
    assert mine.top_via.rport is True and mine.top_via.received is None


def test_a_via_that_names_the_source_without_rport_is_left_alone() -> None:
    no_rport = INVITE.replace(b";rport\r\n", b"\r\n")
    actions = _endpoint().receive(no_rport, PHONE, 0.0)
    req = next(a.event.request for a in actions if isinstance(a, Deliver))
    assert req.headers.get("Via") == "SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-hot-1"


@given(st.text(st.sampled_from(list('aB9-.;=:[] "\t\\x,')), max_size=30), st.integers(0, 3))
def test_plain_parameters_are_read_as_the_general_reader_reads_them(text: str, pos: int) -> None:
    from gateway.sip.abnf import PARAM_RE
    from gateway.sip.uri import parse_params

    pos = min(pos, len(text))
    expected: dict[str, str | None] = {}
    end = pos
    while (m := PARAM_RE.match(text, end)) is not None:
        expected[m.group(1).lower()] = m.group(2)
        end = m.end()
    assert parse_params(text, pos) == (expected, end)


def test_parsed_addresses_are_kept_but_each_caller_gets_a_copy() -> None:
    from gateway.sip.uri import NameAddr

    a = NameAddr.parse('"Avery" <sip:+14257000001@sipgw.lab;user=phone>;tag=x1')
    a.params["tag"] = "changed"
    a.uri.user = "other"
    a.uri.params["user"] = "ip"
    b = NameAddr.parse('"Avery" <sip:+14257000001@sipgw.lab;user=phone>;tag=x1')
    assert (b.display, b.tag, b.uri.user, b.uri.params) == ("Avery", "x1", "+14257000001", {"user": "phone"})
    assert b is not a and b.uri is not a.uri
    for _ in range(2):  # errors are not kept
        with pytest.raises(Exception, match="missing '>'"):
            NameAddr.parse("<sip:a@b;tag=1")


def test_our_own_via_is_known_without_parsing_and_equals_its_parse() -> None:
    from gateway.sip.message import Request
    from gateway.sip.uri import Via

    ep = SipEndpoint(sent_by={"UDP": "[::1]:5062", "TCP": "192.0.2.20:5060"})
    for transport in ("UDP", "TCP"):
        out = Request.build("OPTIONS", "sip:1001@192.0.2.10", headers=[
            ("Via", "SIP/2.0/UDP x.invalid;branch=z9hG4bKgone"), ("From", "<sip:gw@192.0.2.20>;tag=f"),
            ("To", "<sip:1001@192.0.2.10>"), ("Call-ID", f"own-{transport}"), ("CSeq", "1 OPTIONS")])
        out.headers.remove_first("Via")
        _, actions = ep.send_request(out, Address(transport, "192.0.2.10", 5060), 0.0)
        sent = next(a.message for a in actions if isinstance(a, Send))
        text = sent.headers.get("Via")
        assert sent.top_via == Via.parse(text) == Via._parse_text(text)
        assert sent.top_via.branch.startswith("z9hG4bK") and sent.top_via.rport is True
        parsed = Via.parse(text)
        parsed.params["received"] = "x"  # a copy: the remembered value is not changed
        assert "received" not in Via.parse(text).params and "received" not in sent.top_via.params


OPTIONS = INVITE.replace(b"INVITE sip", b"OPTIONS sip", 1).replace(b"1 INVITE", b"1 OPTIONS")


def test_a_finished_non_invite_server_transaction_keeps_no_parsed_views() -> None:
    ep = _endpoint()
    event = next(a.event for a in ep.receive(OPTIONS, PHONE, 0.0) if isinstance(a, Deliver))
    tx = ep._server[event.transaction]
    assert tx.request.headers._cache  # parsed while the TU works on it
    first = _sent(ep.send_response(event.transaction, Response.for_request(event.request, 200, to_tag="o"), 0.0))
    # Completed on UDP: the transaction is replaced by its small record, which holds no request at all.
    assert event.transaction not in ep._server and ep.transaction_count == 1
    done = ep._completed[event.transaction]
    assert not hasattr(done, "request") and not hasattr(done, "machine") and not hasattr(done, "last")
    # A retransmission is still answered with the same bytes, and the views parse again on demand.
    assert _sent(ep.receive(OPTIONS, PHONE, 0.5)) == first
    assert event.request.cseq.seq == 1 and event.request.request_uri.user == "1001"
    assert event.request.from_.tag == "a1"


def test_an_invite_server_transaction_releases_its_views_once_the_ack_came() -> None:
    ep = _endpoint()
    event = next(a.event for a in ep.receive(INVITE, PHONE, 0.0) if isinstance(a, Deliver))
    tx = ep._server[event.transaction]
    ep.send_response(event.transaction, Response.for_request(event.request, 486, to_tag="busy"), 0.0)
    assert tx.request.headers._cache  # Completed: Timer G may still need it, the ACK has not come
    ack = INVITE.replace(b"INVITE sip", b"ACK sip", 1).replace(b"1 INVITE", b"1 ACK").replace(
        b"To: <sip:1001@192.0.2.20>", b"To: <sip:1001@192.0.2.20>;tag=busy")
    ep.receive(ack, PHONE, 0.1)
    assert tx.request.headers._cache is None and tx.last.headers._cache is None


def test_a_client_transaction_releases_its_request_views_after_the_final_response() -> None:
    ep = _endpoint()
    request = Request("OPTIONS", "sip:1001@192.0.2.10", Headers([
        ("Max-Forwards", "70"), ("From", "<sip:gw@192.0.2.20>;tag=g1"), ("To", "<sip:1001@192.0.2.10>"),
        ("Call-ID", "hot-2@192.0.2.20"), ("CSeq", "1 OPTIONS")]))
    tid, actions = ep.send_request(request, PHONE, 0.0)
    tx = ep._client[tid]
    tx.request.top_via  # noqa: B018 - parsed while it is sent
    sent = parse_message(_sent(actions)[0])
    ok = Response.for_request(sent, 200, to_tag="p").to_bytes()
    received = [a.event for a in ep.receive(ok, PHONE, 0.1) if isinstance(a, Deliver)]
    assert received and received[0].response.status == 200
    assert tx.request.headers._cache is None
    assert tx.request.top_via.branch == tid.key[0]  # parsed again when asked for


def test_a_stateless_answer_of_the_tu_keeps_no_transaction() -> None:
    ep = _endpoint()
    seen = []

    def stateless(request, source):
        seen.append(request.method)
        if request.method == "OPTIONS":
            return Response.for_request(request, 401, to_tag="s")
        return None

    ep.stateless = stateless
    actions = ep.receive(OPTIONS, PHONE, 0.0)
    assert [type(a) for a in actions] == [Send]  # RFC 3261 §8.2.7: nothing delivered, no 100, no timer
    assert actions[0].data.startswith(b"SIP/2.0 401 ") and actions[0].dest == PHONE
    assert ep.transaction_count == 0
    # Answered again with the same bytes, from the endpoint's memory of its stateless answers (the TU is not asked).
    assert _sent(ep.receive(OPTIONS, PHONE, 0.5)) == [actions[0].data] and ep.stateless_repeats == 1
    # What the hook declines goes the stateful way; CANCEL is never offered (it matches a transaction, §9.2).
    assert any(isinstance(a, Deliver) for a in ep.receive(INVITE, PHONE, 1.0))
    cancel = INVITE.replace(b"INVITE sip", b"CANCEL sip", 1).replace(b"1 INVITE", b"1 CANCEL")
    assert _sent(ep.receive(cancel, PHONE, 1.1))[0].startswith(b"SIP/2.0 200 ")
    assert seen == ["OPTIONS", "INVITE"]


@pytest.mark.parametrize(("tag", "ok"), [
    ("r0123456789", True), ("a-b.c!d%e*f_g+h`i'j~k", True), ("", False), ("a b", False), ("a;b", False),
    ("é1", False), ("a=b", False), ("x\r\ny", False),
])
def test_a_to_tag_must_be_a_token(tag: str, ok: bool) -> None:
    """RFC 3261 §19.3: letters and digits alone pass without the regular expression; anything else is checked."""
    request = parse_message(OPTIONS)
    assert isinstance(request, Request)
    if ok:
        assert Response.for_request(request, 200, to_tag=tag).to.tag == tag
    else:
        with pytest.raises(ValueError, match="token"):
            Response.for_request(request, 200, to_tag=tag)


_BUILD_HEADERS = [("Via", "SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK1"), ("From", "<sip:a@b>;tag=1"), ("To", "<sip:c@d>"),
                  ("Call-ID", "x")]


@pytest.mark.parametrize(("method", "ok"), [
    ("INVITE", True), ("X-VENDOR.1", True), ("publish", True), ("IN VITE", False), ("", False), ("INVITÉ", False),
    ("IN;VITE", False),
])
def test_a_request_method_must_be_a_token(method: str, ok: bool) -> None:
    headers = [*_BUILD_HEADERS, ("CSeq", f"1 {method}")]
    if ok:
        assert Request.build(method, "sip:c@d", headers=headers).method == method
    else:
        with pytest.raises(ValueError, match="token"):
            Request.build(method, "sip:c@d", headers=headers)


@pytest.mark.parametrize("body", [b"v=0\r\n", bytearray(b"v=0\r\n"), memoryview(b"v=0\r\n")])
def test_a_body_is_bytes_whatever_buffer_it_came_in(body: bytes) -> None:
    req = Request.build("INVITE", "sip:c@d", headers=[*_BUILD_HEADERS, ("CSeq", "1 INVITE")], body=body)
    assert type(req.body) is bytes and req.body == b"v=0\r\n"
    with pytest.raises(TypeError, match="bytes"):
        Request.build("INVITE", "sip:c@d", headers=[*_BUILD_HEADERS, ("CSeq", "1 INVITE")], body="v=0")  # type: ignore[arg-type]


def test_headers_from_a_list_a_mapping_or_an_iterable() -> None:
    pairs = [("To", "<sip:a@b>"), ("Call-ID", "x")]
    assert Headers(pairs).items() == Headers(dict(pairs)).items() == Headers(iter(pairs)).items() == pairs
