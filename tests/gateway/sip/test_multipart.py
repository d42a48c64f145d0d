"""Multipart bodies: SDP + PIDF-LO in an emergency INVITE (RFC 6442), RFC 2046 §5.1 edge cases."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.sip import (
    BodyPart,
    Request,
    SipParseError,
    build_multipart,
    find_part,
    parse_message,
    parse_multipart,
    part_by_content_id,
)

SDP = (
    b"v=0\r\n"
    b"o=- 1702563014 1702563014 IN IP4 10.1.20.31\r\n"
    b"s=Polycom IP Phone\r\n"
    b"c=IN IP4 10.1.20.31\r\n"
    b"t=0 0\r\n"
    b"m=audio 2222 RTP/AVP 9 0 8 101\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\n"
    b"a=sendrecv\r\n"
)

PIDF = (
    b'<?xml version="1.0" encoding="UTF-8"?>\r\n'
    b'<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:gp="urn:ietf:params:xml:ns:pidf:geopriv10"'
    b' xmlns:ca="urn:ietf:params:xml:ns:pidf:geopriv10:civicAddr" entity="pres:2001@contoso.example">\r\n'
    b' <tuple id="lldp-1">\r\n'
    b"  <status><gp:geopriv><gp:location-info><ca:civicAddress>\r\n"
    b"   <ca:country>US</ca:country><ca:A1>WA</ca:A1><ca:A3>Redmond</ca:A3>\r\n"
    b"   <ca:RD>Microsoft Way</ca:RD><ca:HNO>1</ca:HNO><ca:FLR>2</ca:FLR>\r\n"
    b"  </ca:civicAddress></gp:location-info>\r\n"
    b"  <gp:usage-rules/><gp:method>LLDP-MED</gp:method></gp:geopriv></status>\r\n"
    b" </tuple>\r\n"
    b"</presence>\r\n"
)

BODY = (
    b"--boundary1\r\n"
    b"Content-Type: application/sdp\r\n"
    b"\r\n" + SDP + b"\r\n"
    b"--boundary1\r\n"
    b"Content-Type: application/pidf+xml\r\n"
    b"Content-ID: <target123@10.1.20.31>\r\n"
    b"Content-Disposition: render;handling=optional\r\n"
    b"\r\n" + PIDF + b"\r\n"
    b"--boundary1--\r\n"
)

INVITE = (
    b"INVITE urn:service:sos SIP/2.0\r\n"
    b"Via: SIP/2.0/TLS 10.1.20.31:5061;branch=z9hG4bK-e911\r\n"
    b"From: <sip:2001@contoso.example>;tag=e1\r\n"
    b"To: <urn:service:sos>\r\n"
    b"Call-ID: e911-1@10.1.20.31\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Geolocation: <cid:target123@10.1.20.31>\r\n"
    b"Geolocation-Routing: yes\r\n"
    b"Content-Type: multipart/mixed; boundary=boundary1\r\n"
    b"Content-Length: " + str(len(BODY)).encode() + b"\r\n"
    b"\r\n" + BODY
)


def test_emergency_invite_sdp_and_pidf_lo() -> None:
    msg = parse_message(INVITE)
    assert isinstance(msg, Request)
    assert msg.request_uri.scheme == "urn" and msg.request_uri.opaque == "service:sos"
    parts = parse_multipart(msg.body, msg.content_type or "")
    assert [p.media_type for p in parts] == ["application/sdp", "application/pidf+xml"]
    sdp = find_part(parts, "application/sdp")
    assert sdp is not None and sdp.body == SDP
    (geolocation,) = msg.headers.get_all("Geolocation")
    location = part_by_content_id(parts, geolocation.strip("<>"))
    assert location is not None and location.body == PIDF
    assert location.content_id == "target123@10.1.20.31"
    assert location.disposition == "render"
    assert find_part(parts, "text/plain") is None
    assert part_by_content_id(parts, "cid:nothing@here") is None


def test_build_and_parse_round_trip() -> None:
    content_type, body = build_multipart(
        [
            ("application/sdp", SDP),
            BodyPart([("Content-Type", "application/pidf+xml"), ("Content-ID", "<loc@host>")], PIDF),
        ],
        boundary="boundary1",
    )
    assert content_type == "multipart/mixed;boundary=boundary1"
    parts = parse_multipart(body, content_type)
    assert [p.body for p in parts] == [SDP, PIDF]
    assert parts[1].content_id == "loc@host"


def test_random_boundary_and_quoting() -> None:
    content_type, body = build_multipart([("text/plain", b"a")])
    assert parse_multipart(body, content_type)[0].body == b"a"
    content_type, body = build_multipart([("text/plain", b"a")], subtype="alternative", boundary="with space")
    assert content_type == 'multipart/alternative;boundary="with space"'
    assert parse_multipart(body, content_type)[0].body == b"a"


def test_preamble_epilogue_padding_and_headerless_part() -> None:
    body = (
        b"This is the preamble.\r\n"
        b"--b1  \r\n"
        b"\r\n"
        b"no headers: text/plain\r\n"
        b"--b1\r\n"
        b"Content-Type: application/octet-stream\r\n"
        b"\r\n"
        b"\x00\x01--b\x02\r\n"
        b"--b1--\r\n"
        b"epilogue\r\n"
    )
    first, second = parse_multipart(body, 'multipart/mixed;boundary="b1"')
    assert (first.media_type, first.body) == ("text/plain", b"no headers: text/plain")
    assert second.body == b"\x00\x01--b\x02"


def test_bare_lf_and_folded_part_headers() -> None:
    body = b"--x\nContent-Type: text/plain;\n charset=utf-8\n\nhi\n--x--\n"
    (part,) = parse_multipart(body, "multipart/mixed;boundary=x")
    assert part.content_type == "text/plain; charset=utf-8" and part.body == b"hi"


@pytest.mark.parametrize(
    ("body", "content_type", "words"),
    [
        (BODY, "multipart/mixed", "without a boundary"),
        (BODY, "application/sdp", "not multipart"),
        (BODY, "multipart/mixed;boundary=other", "opening"),
        (
            BODY.replace(b"--boundary1--", b"--boundary1-"),
            "multipart/mixed;boundary=boundary1",
            "after a multipart boundary",
        ),
        (BODY[: BODY.rfind(b"--boundary1--")], "multipart/mixed;boundary=boundary1", "closing"),
        (b"--b\r\nbad header line\r\n\r\nx\r\n--b--", "multipart/mixed;boundary=b", "malformed header"),
        (b"--b", "multipart/mixed;boundary=b", "ends after"),
        (BODY, 'multipart/mixed;boundary="bad\x01"', "invalid multipart boundary"),
    ],
)
def test_malformed_multipart(body: bytes, content_type: str, words: str) -> None:
    with pytest.raises(SipParseError, match=words) as info:
        parse_multipart(body, content_type)
    assert info.value.status_hint == 400


def test_build_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="at least one"):
        build_multipart([])
    with pytest.raises(ValueError, match="occurs inside"):
        build_multipart([("text/plain", b"--abc")], boundary="abc")
    with pytest.raises(ValueError, match="invalid multipart boundary"):
        build_multipart([("text/plain", b"x")], boundary="no\nway")


@given(st.lists(st.binary(max_size=100).filter(lambda b: b"--sgw" not in b), min_size=1, max_size=5))
def test_any_binary_parts_round_trip(contents: list[bytes]) -> None:
    content_type, body = build_multipart([("application/octet-stream", c) for c in contents], boundary="sgw-1")
    assert [p.body for p in parse_multipart(body, content_type)] == contents
