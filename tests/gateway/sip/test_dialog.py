"""Dialogs (RFC 3261 §12): creation on both sides, route sets, in-dialog requests, CSeq checks, forking."""

from __future__ import annotations

import pytest

from gateway.sip.dialog import (
    Dialog,
    DialogError,
    DialogId,
    DialogSet,
    DialogState,
    new_tag,
    next_hop,
    preprocess_routes,
    strict_route,
)
from gateway.sip.message import Request, Response
from gateway.sip.parser import parse_message
from gateway.sip.uri import NameAddr, SipURI


def parse_request(text: str) -> Request:
    message = parse_message(text.replace("\n", "\r\n").encode())
    assert isinstance(message, Request)
    return message


def parse_response(text: str) -> Response:
    message = parse_message(text.replace("\n", "\r\n").encode())
    assert isinstance(message, Response)
    return message


INVITE = parse_request(
    """INVITE sip:bob@biloxi.example.com SIP/2.0
Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds
Max-Forwards: 70
To: Bob <sip:bob@biloxi.example.com>
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774
Call-ID: a84b4c76e66710@pc33.atlanta.example.com
CSeq: 314159 INVITE
Contact: <sip:alice@pc33.atlanta.example.com>
Content-Length: 0

"""
)


def response_to(
    request: Request,
    status: int,
    *,
    tag: str | None,
    contact: str | None = "<sip:bob@192.0.2.4>",
    record_route: tuple[str, ...] = (),
) -> Response:
    headers: list[tuple[str, str]] = [("Record-Route", rr) for rr in record_route]
    if contact is not None:
        headers.append(("Contact", contact))
    response = Response.for_request(request, status, headers=headers, to_tag=tag)
    # Round-trip through bytes so the dialog sees what the wire would give it.
    parsed = parse_message(response.to_bytes())
    assert isinstance(parsed, Response)
    return parsed


RR_AT_UAC = (
    "<sip:p2.biloxi.example.com;lr>, <sip:p1.atlanta.example.com;lr>",
)  # one field, two values: as written by the proxies, nearest to the UAS first


# --- UAC side ----------------------------------------------------------------------------------------


def test_uac_early_dialog_from_provisional() -> None:
    ringing = response_to(INVITE, 180, tag="a6c85cf", record_route=RR_AT_UAC)
    dialog = Dialog.from_uac(INVITE, ringing)
    assert dialog.state is DialogState.EARLY and dialog.early
    assert dialog.is_uac
    assert dialog.id == DialogId("a84b4c76e66710@pc33.atlanta.example.com", "1928301774", "a6c85cf")
    # §12.1.2: the UAC's route set is the Record-Route in reverse order.
    assert [str(r.uri) for r in dialog.route_set] == [
        "sip:p1.atlanta.example.com;lr",
        "sip:p2.biloxi.example.com;lr",
    ]
    assert dialog.remote_target == SipURI.parse("sip:bob@192.0.2.4")
    assert dialog.local_seq == 314159
    assert dialog.remote_seq is None
    assert dialog.local_target == SipURI.parse("sip:alice@pc33.atlanta.example.com")


def test_uac_2xx_confirms_and_recomputes_the_route_set() -> None:
    dialog = Dialog.from_uac(INVITE, response_to(INVITE, 180, tag="a6c85cf", record_route=RR_AT_UAC))
    ok = response_to(
        INVITE, 200, tag="a6c85cf", contact="<sip:bob@192.0.2.99>", record_route=("<sip:p9.example.com;lr>",)
    )
    dialog.update_from_response(ok)
    assert dialog.confirmed
    assert [str(r.uri) for r in dialog.route_set] == ["sip:p9.example.com;lr"]
    assert dialog.remote_target == SipURI.parse("sip:bob@192.0.2.99")


def test_uac_dialog_from_2xx_is_confirmed() -> None:
    dialog = Dialog.from_uac(INVITE, response_to(INVITE, 200, tag="x1"))
    assert dialog.state is DialogState.CONFIRMED
    assert dialog.route_set == ()


def test_provisional_without_contact_uses_request_uri_until_a_contact_arrives() -> None:
    dialog = Dialog.from_uac(INVITE, response_to(INVITE, 183, tag="t", contact=None))
    assert dialog.remote_target == SipURI.parse("sip:bob@biloxi.example.com")
    dialog.update_from_response(response_to(INVITE, 200, tag="t", contact="<sip:bob@192.0.2.7:5070>"))
    assert dialog.remote_target == SipURI.parse("sip:bob@192.0.2.7:5070")


def test_bye_with_loose_routes() -> None:
    dialog = Dialog.from_uac(INVITE, response_to(INVITE, 200, tag="a6c85cf", record_route=RR_AT_UAC))
    bye = dialog.create_request("BYE")
    assert bye.method == "BYE"
    assert bye.uri == "sip:bob@192.0.2.4"  # loose routing: the remote target stays in the Request-URI
    assert bye.headers.get_all("Route") == ["<sip:p1.atlanta.example.com;lr>", "<sip:p2.biloxi.example.com;lr>"]
    assert bye.to.tag == "a6c85cf" and bye.to.uri == SipURI.parse("sip:bob@biloxi.example.com")
    assert bye.from_.tag == "1928301774"
    assert bye.call_id == INVITE.call_id
    assert (bye.cseq.seq, bye.cseq.method) == (314160, "BYE")
    assert bye.max_forwards == 70
    assert "Contact" not in bye.headers  # BYE is not a target refresh request
    assert "Via" not in bye.headers
    reinvite = dialog.create_request("INVITE", headers=[("Content-Type", "application/sdp")], body=b"v=0\r\n")
    assert reinvite.cseq.seq == 314161
    assert reinvite.contact[0].uri == SipURI.parse("sip:alice@pc33.atlanta.example.com")
    assert reinvite.body == b"v=0\r\n"
    assert reinvite.headers.get("Content-Type") == "application/sdp"
    # Extra headers as a list, a tuple, a mapping or any iterable of pairs.
    for extra in ((("Subject", "s"),), {"Subject": "s"}, iter([("Subject", "s")])):
        assert dialog.create_request("INFO", headers=extra).headers.get("Subject") == "s"


def test_request_with_endpoint_via_passes_the_message_checks() -> None:
    dialog = Dialog.from_uac(INVITE, response_to(INVITE, 200, tag="a6c85cf"))
    bye = dialog.create_request("BYE")
    headers = bye.headers.copy()
    headers.prepend("Via", "SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKnew")
    checked = Request.build(bye.method, bye.uri, headers=headers, body=bye.body)
    assert parse_message(checked.to_bytes()) == checked


def test_strict_first_hop_takes_the_request_uri() -> None:
    rr = ("<sip:p2.biloxi.example.com;lr>", "<sip:strict.atlanta.example.com;method=INVITE?X-H=1>")
    dialog = Dialog.from_uac(INVITE, response_to(INVITE, 200, tag="t", record_route=rr))
    bye = dialog.create_request("BYE")
    # §12.2.1.1: the strict router's URI (without method param and headers) is the Request-URI, and the
    # remote target is appended as the last Route.
    assert bye.uri == "sip:strict.atlanta.example.com"
    assert bye.headers.get_all("Route") == ["<sip:p2.biloxi.example.com;lr>", "<sip:bob@192.0.2.4>"]
    assert next_hop(bye) == SipURI.parse("sip:p2.biloxi.example.com;lr")


def test_ack_for_2xx_uses_the_invite_cseq() -> None:
    dialog = Dialog.from_uac(INVITE, response_to(INVITE, 200, tag="t"))
    ack = dialog.create_ack(INVITE.cseq.seq)
    assert (ack.cseq.seq, ack.cseq.method) == (314159, "ACK")
    assert dialog.local_seq == 314159  # an ACK does not consume a sequence number
    with pytest.raises(DialogError, match="create_ack"):
        dialog.create_request("ACK")
    with pytest.raises(DialogError, match="CANCEL"):
        dialog.create_request("CANCEL")


def test_target_refresh_in_confirmed_dialog_keeps_the_route_set() -> None:
    dialog = Dialog.from_uac(INVITE, response_to(INVITE, 200, tag="t", record_route=RR_AT_UAC))
    reinvite = dialog.create_request("INVITE")
    headers = reinvite.headers.copy()
    headers.prepend("Via", "SIP/2.0/UDP h;branch=z9hG4bK1")
    sent = Request.build("INVITE", reinvite.uri, headers=headers)
    dialog.update_from_response(response_to(sent, 200, tag=None, contact="<sip:bob@198.51.100.1>",
                                            record_route=("<sip:other;lr>",)))
    assert dialog.remote_target == SipURI.parse("sip:bob@198.51.100.1")
    assert len(dialog.route_set) == 2
    # A 2xx to a non target refresh request changes nothing.
    bye = Request.build("BYE", "sip:x@h", headers=[
        ("Via", "SIP/2.0/UDP h;branch=z9hG4bK2"), ("From", str(dialog.local)), ("To", str(dialog.remote)),
        ("Call-ID", dialog.call_id), ("CSeq", "9 BYE"),
    ])
    dialog.update_from_response(response_to(bye, 200, tag=None, contact="<sip:elsewhere@h>"))
    assert dialog.remote_target == SipURI.parse("sip:bob@198.51.100.1")
    # Requests built after the refresh follow the new target and route set (the texts are not stale).
    from gateway.sip.dialog import _route_request

    after = dialog.create_request("INFO")
    uri, routes = _route_request(dialog.remote_target, dialog.route_set)
    assert after.uri == str(uri) != reinvite.uri
    assert after.headers.get_all("Route") == [str(r) for r in routes] == reinvite.headers.get_all("Route")
    assert after.headers.get("To") == str(dialog.remote) and after.headers.get("From") == str(dialog.local)


# --- UAS side ----------------------------------------------------------------------------------------

INCOMING = parse_request(
    """INVITE sip:1001@gw.example.com SIP/2.0
Via: SIP/2.0/TLS p1.example.com;branch=z9hG4bKp1
Via: SIP/2.0/TLS 10.0.0.5:5061;branch=z9hG4bKphone;rport
Record-Route: <sip:p1.example.com;lr;transport=tls>
Record-Route: <sip:p0.example.com;lr>
Max-Forwards: 69
To: <sip:1001@gw.example.com>
From: "Desk 7" <sip:1007@gw.example.com>;tag=phone-7
Call-ID: c-1@10.0.0.5
CSeq: 20 INVITE
Contact: <sip:1007@10.0.0.5:5061;transport=tls>
Content-Length: 0

"""
)


def uas_dialog(status: int = 180) -> Dialog:
    tag = new_tag()
    response = Response.for_request(INCOMING, status, to_tag=tag, headers=[("Contact", "<sip:gw@192.0.2.1>")])
    return Dialog.from_uas(INCOMING, response, secure=True, cseq_factory=lambda: 1000)


def test_uas_dialog_from_request() -> None:
    dialog = uas_dialog()
    assert not dialog.is_uac and dialog.early and dialog.secure
    assert dialog.remote.tag == "phone-7" and dialog.remote.display == "Desk 7"
    assert dialog.local.tag and len(dialog.local.tag) >= 8
    # §12.1.1: the UAS keeps the Record-Route order.
    assert [str(r.uri) for r in dialog.route_set] == ["sip:p1.example.com;lr;transport=tls", "sip:p0.example.com;lr"]
    assert dialog.remote_target == SipURI.parse("sip:1007@10.0.0.5:5061;transport=tls")
    assert (dialog.remote_seq, dialog.local_seq) == (20, None)
    assert dialog.local_target == SipURI.parse("sip:gw@192.0.2.1")
    dialog.confirm()
    assert dialog.confirmed


def test_uas_first_request_picks_initial_cseq() -> None:
    dialog = uas_dialog(200)
    bye = dialog.create_request("BYE")
    assert bye.cseq.seq == 1000
    assert dialog.create_request("INFO").cseq.seq == 1001
    assert bye.to.tag == "phone-7" and bye.from_.tag == dialog.local.tag
    assert bye.headers.get_all("Route") == ["<sip:p1.example.com;lr;transport=tls>", "<sip:p0.example.com;lr>"]


def test_default_initial_cseq_is_below_2_31() -> None:
    tag = new_tag()
    dialog = Dialog.from_uas(INCOMING, Response.for_request(INCOMING, 200, to_tag=tag))
    assert 0 < dialog.next_cseq() < 2**31


def in_dialog_request(dialog: Dialog, method: str, seq: int) -> Request:
    return Request.build(method, "sip:gw@192.0.2.1", headers=[
        ("Via", "SIP/2.0/TLS 10.0.0.5:5061;branch=z9hG4bK" + new_tag()),
        ("From", str(dialog.remote)),
        ("To", str(dialog.local)),
        ("Call-ID", dialog.call_id),
        ("CSeq", f"{seq} {method}"),
    ])


def test_in_dialog_cseq_validation() -> None:
    dialog = uas_dialog(200)
    ack = in_dialog_request(dialog, "ACK", 20)
    assert dialog.matches_request(ack)
    assert dialog.receive_request(ack) is None
    assert dialog.receive_request(in_dialog_request(dialog, "INFO", 21)) is None
    assert dialog.remote_seq == 21
    late = dialog.receive_request(in_dialog_request(dialog, "INFO", 19))
    assert late is not None and late.status == 500
    assert "CSeq 19 is lower than 21" in late.reason
    assert late.cseq.seq == 19 and late.to.tag == dialog.local.tag
    assert dialog.remote_seq == 21
    # Gaps are allowed (§12.2.2: "greater than", not "one more than").
    assert dialog.receive_request(in_dialog_request(dialog, "BYE", 40)) is None
    assert dialog.remote_seq == 40


def test_first_request_sets_remote_seq_when_empty() -> None:
    dialog = Dialog.from_uac(INVITE, response_to(INVITE, 200, tag="t"))
    assert dialog.remote_seq is None
    bye = Request.build("BYE", "sip:alice@pc33.atlanta.example.com", headers=[
        ("Via", "SIP/2.0/UDP 192.0.2.4;branch=z9hG4bKbye"), ("From", str(dialog.remote)),
        ("To", str(dialog.local)), ("Call-ID", dialog.call_id), ("CSeq", "7 BYE"),
    ])
    assert DialogId.for_received_request(bye) == dialog.id
    assert dialog.receive_request(bye) is None
    assert dialog.remote_seq == 7


def test_terminated_dialog() -> None:
    dialog = uas_dialog(200)
    dialog.terminate()
    with pytest.raises(DialogError, match="terminated"):
        dialog.create_request("BYE")
    answer = dialog.receive_request(in_dialog_request(dialog, "BYE", 30))
    assert answer is not None and answer.status == 481


@pytest.mark.parametrize(
    "status,tag,method,message",
    [
        (100, "t", "INVITE", "does not create a dialog"),
        (486, "t", "INVITE", "does not create a dialog"),
        (180, None, "INVITE", "no To tag"),
    ],
)
def test_responses_that_cannot_create_a_dialog(status: int, tag: str | None, method: str, message: str) -> None:
    with pytest.raises(DialogError, match=message):
        Dialog.from_uac(INVITE, response_to(INVITE, status, tag=tag))


def test_non_dialog_methods_and_missing_contact() -> None:
    options = Request.build("OPTIONS", "sip:b@h", headers=[
        ("Via", "SIP/2.0/UDP h;branch=z9hG4bKo"), ("From", "<sip:a@h>;tag=1"), ("To", "<sip:b@h>"),
        ("Call-ID", "o1"), ("CSeq", "1 OPTIONS"),
    ])
    with pytest.raises(DialogError, match="OPTIONS does not create a dialog"):
        Dialog.from_uac(options, Response.for_request(options, 200, to_tag="x"))
    no_contact = INCOMING.replace(headers=[(n, v) for n, v in INCOMING.headers.items() if n != "Contact"])
    with pytest.raises(DialogError, match="must carry a Contact"):
        Dialog.from_uas(no_contact, Response.for_request(no_contact, 200, to_tag="x"))
    with pytest.raises(DialogError, match="OPTIONS does not create dialogs"):
        DialogSet(options)


# --- forking -----------------------------------------------------------------------------------------


def test_forked_invite_creates_several_early_dialogs() -> None:
    dialogs = DialogSet(INVITE)
    assert dialogs.on_response(response_to(INVITE, 100, tag=None)) is None
    a = dialogs.on_response(response_to(INVITE, 180, tag="branch-a", contact="<sip:bob@a.example.com>"))
    b = dialogs.on_response(response_to(INVITE, 183, tag="branch-b", contact="<sip:bob@b.example.com>"))
    again = dialogs.on_response(response_to(INVITE, 180, tag="branch-a", contact="<sip:bob@a2.example.com>"))
    assert a is again and a is not b
    assert a is not None and b is not None
    assert a.remote_target == SipURI.parse("sip:bob@a2.example.com")  # early target refresh
    assert {d.remote.tag for d in dialogs.early} == {"branch-a", "branch-b"}
    winner = dialogs.on_response(response_to(INVITE, 200, tag="branch-b", contact="<sip:bob@b.example.com>"))
    assert winner is b and b.confirmed and a.early
    # A second 2xx from another branch is its own confirmed dialog (§13.2.2.4); the TU ACKs and BYEs it.
    other = dialogs.on_response(response_to(INVITE, 200, tag="branch-c", contact="<sip:bob@c.example.com>"))
    assert other is not None and other.confirmed and other is not b
    assert [d.remote.tag for d in dialogs.confirmed] == ["branch-b", "branch-c"]
    assert dialogs.end_early_dialogs() == [a]
    assert a.state is DialogState.TERMINATED


def test_non_2xx_final_ends_every_early_dialog() -> None:
    dialogs = DialogSet(INVITE)
    a = dialogs.on_response(response_to(INVITE, 180, tag="a"))
    b = dialogs.on_response(response_to(INVITE, 180, tag="b"))
    assert dialogs.on_response(response_to(INVITE, 486, tag="c")) is None
    assert a is not None and b is not None
    assert a.state is b.state is DialogState.TERMINATED
    assert dialogs.early == [] and dialogs.confirmed == []


def test_dialog_set_refuses_foreign_responses() -> None:
    dialogs = DialogSet(INVITE)
    foreign = response_to(INCOMING, 180, tag="z")
    with pytest.raises(DialogError, match="does not belong"):
        dialogs.on_response(foreign)


def test_response_dialog_id() -> None:
    ringing = response_to(INVITE, 180, tag="r1")
    assert DialogId.for_received_response(ringing) == DialogId(INVITE.call_id, "1928301774", "r1")
    assert DialogId.for_received_response(response_to(INVITE, 100, tag=None)) is None
    assert DialogId.for_received_request(INVITE) is None


# --- route preprocessing (§16.4) and strict routing (§16.6 step 6) --------------------------------------


def _local(uri: SipURI) -> bool:
    return uri.host == "gw.example.com"


def test_preprocess_removes_our_own_top_route() -> None:
    request = Request.build("BYE", "sip:bob@192.0.2.4", headers=[
        ("Via", "SIP/2.0/UDP h;branch=z9hG4bKr"), ("From", "<sip:a@h>;tag=1"), ("To", "<sip:b@h>;tag=2"),
        ("Call-ID", "r1"), ("CSeq", "2 BYE"),
        ("Route", "<sip:gw.example.com;lr>, <sip:next.example.com;lr>"),
    ])
    out = preprocess_routes(request, _local)
    assert out.headers.get_all("Route") == ["<sip:next.example.com;lr>"]
    assert out.uri == "sip:bob@192.0.2.4"
    assert request.headers.get_all("Route")[0] == "<sip:gw.example.com;lr>"  # the original is untouched
    assert preprocess_routes(out, _local) is out


def test_preprocess_undoes_a_strict_router_before_us() -> None:
    # A strict router put our Record-Route URI in the Request-URI and the real target last in Route.
    request = Request.build("BYE", "sip:gw.example.com;lr", headers=[
        ("Via", "SIP/2.0/UDP h;branch=z9hG4bKs"), ("From", "<sip:a@h>;tag=1"), ("To", "<sip:b@h>;tag=2"),
        ("Call-ID", "r2"), ("CSeq", "2 BYE"),
        ("Route", "<sip:next.example.com;lr>"), ("Route", "<sip:bob@192.0.2.4>"),
    ])
    out = preprocess_routes(request, _local)
    assert out.uri == "sip:bob@192.0.2.4"
    assert out.headers.get_all("Route") == ["<sip:next.example.com;lr>"]


def test_strict_route_rewrite() -> None:
    request = Request.build("INFO", "sip:bob@192.0.2.4", headers=[
        ("Via", "SIP/2.0/UDP h;branch=z9hG4bKt"), ("From", "<sip:a@h>;tag=1"), ("To", "<sip:b@h>;tag=2"),
        ("Call-ID", "r3"), ("CSeq", "2 INFO"),
        ("Route", "<sip:strict.example.com>, <sip:loose.example.com;lr>"),
    ])
    out = strict_route(request)
    assert out.uri == "sip:strict.example.com"
    assert out.headers.get_all("Route") == ["<sip:loose.example.com;lr>", "<sip:bob@192.0.2.4>"]
    loose = out.replace(headers=[(n, v) for n, v in out.headers.items() if n != "Route"]
                        + [("Route", "<sip:loose.example.com;lr>")])
    assert strict_route(loose) is loose
    assert next_hop(loose) == SipURI.parse("sip:loose.example.com;lr")
    no_route = request.replace(headers=[(n, v) for n, v in request.headers.items() if n != "Route"])
    assert next_hop(no_route) == SipURI.parse("sip:bob@192.0.2.4")


def test_name_addr_route_values_survive_display_names() -> None:
    dialog = Dialog.from_uac(
        INVITE, response_to(INVITE, 200, tag="t", record_route=('"Proxy, One" <sip:p1.example.com;lr>',))
    )
    assert dialog.route_set == (NameAddr.parse('"Proxy, One" <sip:p1.example.com;lr>'),)
    assert dialog.create_request("BYE").route[0].uri == SipURI.parse("sip:p1.example.com;lr")
