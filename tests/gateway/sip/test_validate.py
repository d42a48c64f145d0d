"""check_request, accepts and response_for_error (RFC 3261 §8.2, §16.3, §20.1)."""

from __future__ import annotations

import pytest

from gateway.sip import Request, SipParseError, accepts, check_request, parse_message, response_for_error
from gateway.sip.validate import KNOWN_METHODS

METHODS = {
    "INVITE",
    "ACK",
    "BYE",
    "CANCEL",
    "OPTIONS",
    "REGISTER",
    "REFER",
    "NOTIFY",
    "SUBSCRIBE",
    "INFO",
    "UPDATE",
    "PRACK",
    "MESSAGE",
}
SUPPORTED = {"replaces", "timer", "100rel", "path", "outbound"}


def req(
    method: str = "INVITE",
    extra: str = "",
    *,
    cseq_method: str | None = None,
    uri: str = "sip:2001@gw.example.com",
    version: str = "SIP/2.0",
    body: str = "",
) -> Request:
    text = (
        f"{method} {uri} {version}\r\n"
        f"Via: SIP/2.0/TLS 10.0.0.5:5061;branch=z9hG4bK-abc\r\n"
        f"From: <sip:2002@gw.example.com>;tag=t1\r\n"
        f"To: <sip:2001@gw.example.com>\r\n"
        f"Call-ID: v1@10.0.0.5\r\n"
        f"CSeq: 5 {cseq_method or method}\r\n"
        f"Max-Forwards: 70\r\n"
        f"{extra}"
        f"Content-Length: {len(body)}\r\n\r\n{body}"
    )
    if version != "SIP/2.0":
        return Request(method, uri, parse_message(text.replace(version, "SIP/2.0", 1).encode()).headers, b"", version)
    msg = parse_message(text.encode())
    assert isinstance(msg, Request)
    return msg


def status(request: Request, **kwargs: object) -> int | None:
    options: dict = {"supported": SUPPORTED, "methods": METHODS, **kwargs}
    response = check_request(request, **options)
    return None if response is None else response.status


def test_good_request_passes() -> None:
    assert status(req()) is None
    assert status(req("OPTIONS")) is None


def test_version_505_comes_first() -> None:
    response = check_request(req(version="SIP/3.0"), supported=SUPPORTED, methods=METHODS)
    assert response is not None and response.status == 505
    assert response.headers.get("Call-ID") == "v1@10.0.0.5"


def test_unknown_method_501_known_405_with_allow() -> None:
    assert status(req("FROBNICATE")) == 501
    response = check_request(req("PUBLISH"), supported=SUPPORTED, methods=METHODS)
    assert response is not None and response.status == 405
    assert set(response.headers.get_all("Allow")) == METHODS
    assert "PUBLISH" in KNOWN_METHODS


def test_cseq_method_mismatch_400() -> None:
    response = check_request(req("BYE", cseq_method="INVITE"), supported=SUPPORTED, methods=METHODS)
    assert response is not None and response.status == 400 and "CSeq" in response.reason


def test_missing_mandatory_header_400() -> None:
    r = req()
    r.headers.remove("From")
    response = check_request(r, supported=SUPPORTED, methods=METHODS)
    assert response is not None and response.status == 400 and "From" in response.reason


def test_malformed_contact_400() -> None:
    assert status(req(extra="Contact: sip:a@b?x=1\r\n")) == 400
    assert status(req("REGISTER", extra="Contact: *\r\nExpires: 0\r\n")) is None


def test_bare_magic_cookie_branch_400() -> None:
    r = req()
    r.headers.set("Via", "SIP/2.0/UDP 10.0.0.5;branch=z9hG4bK")
    assert status(r) == 400


def test_uri_scheme_416() -> None:
    assert status(req(uri="mailto:someone@example.com")) == 416
    assert status(req(uri="tel:+14255550123")) is None
    assert status(req(uri="tel:+14255550123"), schemes={"sip"}) == 416


def test_max_forwards_zero_483_only_when_forwarding() -> None:
    r = req()
    r.headers.set("Max-Forwards", "0")
    assert status(r) == 483
    assert status(r, forwarding=False) is None


def test_require_420_with_unsupported() -> None:
    response = check_request(req(extra="Require: 100rel, foo, bar\r\n"), supported=SUPPORTED, methods=METHODS)
    assert response is not None and response.status == 420
    assert response.headers.get_all("Unsupported") == ["foo", "bar"]
    assert status(req(extra="Require: 100rel, timer\r\n")) is None


def test_proxy_require_only_when_forwarding() -> None:
    r = req(extra="Proxy-Require: sec-agree\r\n")
    assert status(r) == 420
    assert status(r, forwarding=False) is None


def test_require_ignored_on_cancel_and_ack() -> None:
    assert status(req("CANCEL", extra="Require: foo\r\n")) is None
    assert status(req("ACK", extra="Require: foo\r\n")) is None


def test_unsupported_body_415_with_accept() -> None:
    r = req(extra="Content-Type: application/x-weird\r\n", body="data")
    response = check_request(r, supported=SUPPORTED, methods=METHODS, content_types=["application/sdp"])
    assert response is not None and response.status == 415
    assert response.headers.get("Accept") == "application/sdp"
    ok = req(extra="Content-Type: Application/SDP\r\n", body="v=0\r\n")
    assert status(ok, content_types=["application/sdp"]) is None


def test_response_copies_request_headers() -> None:
    response = check_request(req("FROBNICATE"), supported=SUPPORTED, methods=METHODS)
    assert response is not None
    again = parse_message(response.to_bytes())
    assert again.call_id == "v1@10.0.0.5" and again.cseq == (5, "FROBNICATE")
    assert again.top_via.branch == "z9hG4bK-abc"


@pytest.mark.parametrize(
    ("accept", "media", "expected"),
    [
        (None, "application/sdp", True),
        (None, "application/pidf+xml", False),
        ("application/sdp", "application/SDP", True),
        ("text/plain, application/*", "application/sdp", True),
        ("*/*", "message/sipfrag", True),
        ("text/nobodyKnowsThis", "application/sdp", False),
        ("application/sdp;q=0, */*", "application/sdp", True),
        ("application/sdp;q=0", "application/sdp", False),
        ("", "application/sdp", False),
    ],
)
def test_accepts(accept: str | None, media: str, expected: bool) -> None:
    extra = "" if accept is None else f"Accept: {accept}\r\n"
    assert accepts(req(extra=extra), media) is expected


def test_response_for_error() -> None:
    data = req().to_bytes().replace(b"CSeq: 5 INVITE", b"CSeq: five INVITE")
    with pytest.raises(SipParseError) as info:
        parse_message(data)
    response = response_for_error(info.value)
    assert response is not None and response.status == 400
    assert response.reason == info.value.reason
    assert response.headers.get("CSeq") == "five INVITE"


def test_no_response_for_ack_or_garbage() -> None:
    data = req("ACK").to_bytes().replace(b"CSeq: 5 ACK", b"CSeq: x ACK")
    with pytest.raises(SipParseError) as info:
        parse_message(data)
    assert response_for_error(info.value) is None
    assert response_for_error(SipParseError("garbage")) is None
