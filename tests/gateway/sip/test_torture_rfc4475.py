"""RFC 4475 torture messages: every message gets the outcome the RFC asks for.

The messages are the RFC's own bytes (``data/rfc4475/*.dat``); ``index.toml`` names each one, its
section and the expected outcome. The generic tests below run every entry of the index; the
``test_<name>_*`` tests read back the fields the RFC's text draws attention to.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from gateway.sip import (
    NameAddr,
    Request,
    Response,
    SipParseError,
    SipURI,
    accepts,
    check_request,
    parse_message,
    parse_multipart,
    response_for_error,
)
from gateway.sip.validate import KNOWN_METHODS

DATA = Path(__file__).parent / "data" / "rfc4475"
INDEX = tomllib.loads((DATA / "index.toml").read_text(encoding="utf-8"))["message"]
BY_NAME = {entry["name"]: entry for entry in INDEX}

SUPPORTED = {"100rel", "replaces", "timer", "path", "outbound", "gruu"}


def raw(name: str) -> bytes:
    return (DATA / f"{name}.dat").read_bytes()


def parse(name: str) -> Request | Response:
    return parse_message(raw(name))


def entries(*expects: str) -> list[pytest.param]:
    return [pytest.param(e, id=f"{e['section']}-{e['name']}") for e in INDEX if e["expect"] in expects]


def check(req: Request, *, forwarding: bool = False, content_types: list[str] | None = None) -> Response | None:
    return check_request(
        req, supported=SUPPORTED, methods=KNOWN_METHODS, forwarding=forwarding, content_types=content_types
    )


# -- the index itself ------------------------------------------------------------------------------


def test_index_covers_every_message_file_once() -> None:
    files = sorted(p.stem for p in DATA.glob("*.dat"))
    assert sorted(BY_NAME) == files
    assert len(INDEX) == len(BY_NAME) == 49
    assert {e["expect"] for e in INDEX} <= {"valid", "reject", "drop", "check"}
    for entry in INDEX:
        if entry["expect"] in ("reject", "check"):
            assert isinstance(entry["status"], int), entry["name"]


def test_sections_are_those_of_the_rfc() -> None:
    sections = {e["section"] for e in INDEX}
    assert {f"3.1.1.{i}" for i in range(1, 14)} <= sections
    assert {f"3.1.2.{i}" for i in range(1, 20)} <= sections
    assert {f"3.3.{i}" for i in range(1, 16)} <= sections
    assert {"3.2.1", "3.4.1"} <= sections


# -- generic outcomes ------------------------------------------------------------------------------


@pytest.mark.parametrize("entry", entries("valid"))
def test_valid_message_parses_and_round_trips(entry: dict) -> None:
    msg = parse(entry["name"])
    again = parse_message(msg.to_bytes())
    assert again == msg
    # Serialising an unmodified message keeps the header fields and their order.
    assert [v for _, v in again.headers.items() if _ != "Content-Length"] == [
        v for _, v in msg.headers.items() if _ != "Content-Length"
    ]
    # The structured views of the core headers all read.
    assert msg.cseq.seq >= 0
    assert msg.top_via == msg.vias[0]
    assert msg.from_.uri.scheme and msg.to.uri.scheme
    assert msg.call_id


@pytest.mark.parametrize("entry", [p for p in entries("valid") if not raw(p.values[0]["name"]).startswith(b"SIP/")])
def test_valid_request_passes_or_gets_the_rfc_answer(entry: dict) -> None:
    msg = parse(entry["name"])
    assert isinstance(msg, Request)
    then = entry.get("then", {})
    response = check(msg, forwarding=then.get("forwarding", False))
    expected = then.get("status")
    assert (response.status if response else None) == expected, response and response.reason


@pytest.mark.parametrize("entry", entries("reject"))
def test_invalid_request_is_rejected_with_the_right_status(entry: dict) -> None:
    with pytest.raises(SipParseError) as info:
        parse(entry["name"])
    err = info.value
    assert err.status_hint == entry["status"], err.reason
    assert isinstance(err.partial, Request), "a rejected request must stay answerable"
    response = response_for_error(err)
    assert response is not None
    assert response.status == entry["status"]
    assert response.reason == err.reason
    assert "\r" not in err.reason and "\n" not in err.reason
    # The response copies the Via fields, so the transport can route it (RFC 3261 §18.2.2).
    assert response.headers.get_fields("Via") == err.partial.headers.get_fields("Via")
    assert response.headers.get_fields("CSeq") == err.partial.headers.get_fields("CSeq")


@pytest.mark.parametrize("entry", entries("drop"))
def test_invalid_response_is_dropped(entry: dict) -> None:
    with pytest.raises(SipParseError) as info:
        parse(entry["name"])
    assert info.value.partial is None
    assert response_for_error(info.value) is None


@pytest.mark.parametrize("entry", entries("check"))
def test_request_gets_the_rfc_answer_from_check_request(entry: dict) -> None:
    msg = parse(entry["name"])
    assert isinstance(msg, Request)
    response = check(msg, forwarding=entry.get("forwarding", False), content_types=entry.get("content_types"))
    assert response is not None
    assert response.status == entry["status"], response.reason
    # The answer is a well-formed response to that very request.
    reparsed = parse_message(response.to_bytes())
    assert isinstance(reparsed, Response)
    assert reparsed.call_id == msg.call_id
    assert reparsed.cseq == msg.cseq
    assert reparsed.headers.get_all("Via") == msg.headers.get_all("Via")


# -- §3.1.1 valid messages: the fields the RFC points out --------------------------------------------


def test_wsinv_fields() -> None:
    msg = parse("wsinv")
    assert isinstance(msg, Request)
    assert msg.method == "INVITE"
    assert msg.request_uri.params == {"unknownparam": None}
    assert msg.to.uri == SipURI.parse("sip:vivekg@chair-dnrc.example.com")
    assert msg.to.tag == "1918181833n"
    assert msg.from_.display == 'J Rosenberg \\"'
    assert msg.from_.tag == "98asjd8"
    assert msg.max_forwards == 68  # leading zeros
    assert (msg.cseq.seq, msg.cseq.method) == (9, "INVITE")
    assert msg.call_id == "wsinv.ndaksdj@192.0.2.1"
    assert [(v.transport, v.host, v.branch) for v in msg.vias] == [
        ("UDP", "192.0.2.2", "390skdjuw"),
        ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", "z9hG4bK30239"),
    ]
    assert msg.headers.get("Subject") == ""
    assert msg.headers.get("NewFangledHeader") == "newfangled value continued newfangled value"
    # Unknown header: a plain value, never split on its commas.
    assert msg.headers.get_all("UnknownHeaderWithUnusualValue") == [";;,,;;,;"]
    (route,) = msg.route
    assert route.uri.params == {"lr": None, "unknownwith": "value", "unknown-no-value": None}
    (contact,) = msg.contact
    assert contact.display == 'Quoted string ""'
    assert contact.params == {"newparam": "newvalue", "secondparam": None, "q": "0.33"}
    assert contact.q == pytest.approx(0.33)
    assert msg.content_type == "application/sdp"
    assert len(msg.body) == 150
    # The compact "v" and the full "Via" are one header.
    assert msg.headers.count("Via") == 2 and msg.headers.count("v") == 2


def test_intmeth_fields() -> None:
    msg = parse("intmeth")
    assert isinstance(msg, Request)
    assert msg.method == "!interesting-Method0123456789_*+`.%indeed'~"
    assert msg.method not in KNOWN_METHODS  # "%" is no escape: this is not INVITE
    uri = msg.request_uri
    assert uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert uri.host == "example.com"
    assert msg.top_via.branch == "z9hG4bK-.!%66*_+`'~"
    assert msg.to.display == "BEL:\x07 NUL:\x00 DEL:\x7f"
    assert msg.to.uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert msg.from_.display == "token1~` token2'+_ token3*%!.-"
    assert msg.from_.params["fromparam''~+*_!.-%"] == '"\u0440\u0430\u0431\u043e\u0442\u0430\u044e\u0449\u0438\u0439"'
    assert msg.from_.tag == "_token~1'+`*%!-."
    assert msg.call_id == "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    assert msg.cseq == (139122385, msg.method)
    assert msg.max_forwards == 255
    assert msg.headers.get("extensionHeader-!.%*+_`'~") == "\ufeff\u5927\u505c\u96fb"


def test_esc01_escapes_are_equivalent_to_their_characters() -> None:
    msg = parse("esc01")
    assert isinstance(msg, Request)
    assert msg.request_uri.user == "sips:user@example.com"
    assert msg.request_uri.host == "example.net"
    assert msg.to.uri == SipURI.parse("sip:user@example.com")
    assert msg.from_.uri.user == "I have spaces"
    (contact,) = msg.contact
    assert contact.uri.user == "caller"
    # "%6C%72" is "lr"; "value%25%34%31" unescapes once to "value%41", not "valueA".
    assert contact.uri.params == {"lr": None, "name": "value%41"}
    assert msg.content_type == "application/sdp"  # compact "C"
    assert msg.call_id == "esc01.239409asdfakjkn23onasd0-3234"  # compact "i"


def test_escnull_keeps_nul_octets_in_user_parts() -> None:
    msg = parse("escnull")
    assert msg.to.uri.user == "null-\x00-null"
    assert [c.uri.user for c in msg.contact] == ["\x00", "\x00\x00"]
    assert msg.contact[0].uri != msg.contact[1].uri  # two distinct bindings
    assert str(msg.contact[1].uri) == "sip:%00%00@host5.example.com"


def test_esc02_percent_is_not_an_escape_outside_uris() -> None:
    msg = parse("esc02")
    assert isinstance(msg, Request)
    assert msg.method == "RE%47IST%45R" and msg.method != "REGISTER"
    assert msg.to.display == "%Z%45"
    assert [str(c.uri) for c in msg.contact] == ["sip:alias1@host1.example.com", "sip:alias3@host3.example.com"]
    assert msg.headers.get("C%6Fntact") == "<sip:alias2@host2.example.com>"
    assert msg.top_via.branch == "z9hG4bK209%fzsnel234"


def test_lwsdisp_display_name_without_space() -> None:
    assert parse("lwsdisp").from_.display == "caller"


def test_longreq_long_values() -> None:
    msg = parse("longreq")
    assert len(msg.vias) == 34
    assert msg.vias[0].host == "sip33.example.com" and msg.vias[-1].host == "host.example.com"
    assert msg.vias[-1].received == "192.0.2.5"
    assert len(msg.from_.tag or "") > 100
    assert len(msg.call_id) > 100
    assert msg.to.uri.port == 6000
    assert msg.to.display is not None and msg.to.display.endswith("extreme proportion")
    assert len(msg.body) == 150


def test_dblreq_ignores_octets_after_the_body() -> None:
    msg = parse("dblreq")
    assert isinstance(msg, Request)
    assert msg.method == "REGISTER" and msg.body == b""
    assert b"INVITE" not in msg.to_bytes()


def test_semiuri_user_part_with_semicolon() -> None:
    msg = parse("semiuri")
    assert isinstance(msg, Request)
    assert msg.request_uri.user == "user;par=u@example.net"
    assert msg.request_uri.host == "example.com"
    assert msg.headers.get_all("Accept") == [
        "application/sdp", "application/pkcs7-mime", "multipart/mixed", "multipart/signed", "message/sip",
        "message/sipfrag",
    ]


def test_transports_all_read() -> None:
    assert [v.transport for v in parse("transports").vias] == ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]


def test_mpart01_binary_part_framed_by_content_length() -> None:
    msg = parse("mpart01")
    assert len(msg.body) == 553
    text, binary = parse_multipart(msg.body, msg.content_type or "")
    assert (text.media_type, text.body) == ("text/plain", b"Hello")
    assert binary.media_type == "application/octet-stream"
    assert b"\x00" in binary.body
    assert msg.headers.get("Identity", "").startswith("r5mwreLuyDRYBi")


def test_unreason_utf8_reason_phrase() -> None:
    msg = parse("unreason")
    assert isinstance(msg, Response)
    assert msg.status == 200
    assert msg.reason.startswith("= 2**3 * 5**2 ") and "\u0441\u0442\u043e" in msg.reason
    assert parse_message(msg.to_bytes()) == msg


def test_noreason_empty_reason_phrase() -> None:
    msg = parse("noreason")
    assert isinstance(msg, Response)
    assert (msg.status, msg.reason) == (100, "")
    assert msg.to_bytes().startswith(b"SIP/2.0 100 \r\n")


# -- §3.1.2 and §3.3: the reasons given -------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("badinv01", "parameter"),
        ("clerr", "Content-Length"),
        ("ncl", "Content-Length"),
        ("scalar02", "CSeq"),
        ("quotbal", "quoted"),
        ("ltgtruri", "Request-URI"),
        ("lwsruri", "Request-Line"),
        ("lwsstart", "Request-Line"),
        ("trws", "Request-Line"),
        ("escruri", "Request-URI"),
        ("badaspec", "spaces"),
        ("baddn", "display name"),
        ("badvers", "version"),
        ("insuf", "From, To, Call-ID"),
        ("multi01", "more than once"),
        ("mcl01", "Content-Length"),
    ],
)
def test_reason_phrase_says_what_is_wrong(name: str, words: str) -> None:
    with pytest.raises(SipParseError) as info:
        parse(name)
    assert words in info.value.reason


def test_badvers_505_is_answerable() -> None:
    with pytest.raises(SipParseError) as info:
        parse("badvers")
    response = response_for_error(info.value)
    assert response is not None and response.status == 505
    assert response.headers.get("Call-ID") == "badvers.31417@c.example.com"


def test_insuf_partial_has_what_was_there() -> None:
    with pytest.raises(SipParseError) as info:
        parse("insuf")
    partial = info.value.partial
    assert partial is not None
    assert partial.cseq == (193942, "INVITE")
    assert partial.top_via.branch == "z9hG4bKkdj.insuf"


def test_regbadct_contact_needs_angle_brackets() -> None:
    msg = parse("regbadct")
    with pytest.raises(SipParseError, match="enclosed in <>"):
        msg.contact  # noqa: B018


def test_mismatch02_prefers_501() -> None:
    response = check(parse("mismatch02"))  # type: ignore[arg-type]
    assert response is not None and response.status == 501


def test_bext01_lists_the_unsupported_options() -> None:
    msg = parse("bext01")
    assert isinstance(msg, Request)
    as_proxy = check(msg, forwarding=True)
    assert as_proxy is not None and as_proxy.status == 420
    assert as_proxy.headers.get_all("Unsupported") == ["noProxiesSupportThis", "norDoAnyProxiesSupportThis"]
    as_uas = check(msg, forwarding=False)
    assert as_uas is not None and as_uas.status == 420
    assert as_uas.headers.get_all("Unsupported") == ["nothingSupportsThis", "nothingSupportsThisEither"]


def test_invut_415_lists_what_is_accepted() -> None:
    msg = parse("invut")
    response = check(msg, content_types=["application/sdp"])  # type: ignore[arg-type]
    assert response is not None and response.status == 415
    assert response.headers.get("Accept") == "application/sdp"


def test_unknown_schemes_read_back() -> None:
    unkscm = parse("unkscm")
    assert isinstance(unkscm, Request)
    assert unkscm.request_uri.scheme == "nobodyknowsthisscheme"
    assert unkscm.request_uri.opaque == "totallyopaquecontent"
    novelsc = parse("novelsc")
    assert isinstance(novelsc, Request) and novelsc.request_uri.scheme == "soap.beep"
    unksm2 = parse("unksm2")
    assert (unksm2.to.uri.scheme, unksm2.to.uri.opaque) == ("isbn", "2983792873")
    assert str(unksm2.from_.uri) == "http://www.example.com"
    assert str(unksm2.contact[0].uri) == "name:John_Smith"


def test_regaut01_authorization_is_one_value() -> None:
    msg = parse("regaut01")
    assert msg.headers.get_all("Authorization") == ["NoOneKnowsThisScheme opaque-data=here"]


def test_bcast_second_via_is_broadcast() -> None:
    msg = parse("bcast")
    assert [v.host for v in msg.vias] == ["192.0.2.198", "255.255.255.255"]


def test_zeromf_max_forwards_zero() -> None:
    msg = parse("zeromf")
    assert isinstance(msg, Request)
    assert msg.max_forwards == 0
    assert check(msg, forwarding=False) is None  # answered locally (OPTIONS, RFC 3261 §11)
    response = check(msg, forwarding=True)
    assert response is not None and response.status == 483


def test_cparam01_param_belongs_to_the_contact() -> None:
    (contact,) = parse("cparam01").contact
    assert contact.params == {"unknownparam": None}
    assert contact.uri.params == {}


def test_cparam02_param_belongs_to_the_uri() -> None:
    (contact,) = parse("cparam02").contact
    assert contact.params == {}
    assert contact.uri.params == {"unknownparam": None}


def test_regescrt_escaped_header_in_contact_uri() -> None:
    (contact,) = parse("regescrt").contact
    assert contact.uri.headers == {"Route": "<sip:sip.example.com>"}
    assert NameAddr.parse(str(contact)) == contact


def test_sdp01_caller_does_not_accept_sdp() -> None:
    msg = parse("sdp01")
    assert isinstance(msg, Request)
    assert not accepts(msg, "application/sdp")
    assert accepts(parse("zeromf"), "application/sdp")  # type: ignore[arg-type]  # no Accept: SDP assumed


def test_inv2543_rfc2543_syntax_accepted() -> None:
    msg = parse("inv2543")
    assert isinstance(msg, Request)
    assert msg.top_via.branch is None
    assert msg.from_.tag is None
    assert msg.max_forwards is None
    assert "Content-Length" not in msg.headers
    assert msg.body.startswith(b"v=0") and msg.body.endswith(b"RTP/AVP 0\r\n")
    # RFC 3261 §20.10: without <>, ";user=phone" is a To header parameter.
    assert msg.to.params == {"user": "phone"}
    assert msg.record_route[0].uri.params["maddr"] == "ss1.example.com"


def test_baddate_is_ignored_by_the_gateway() -> None:
    msg = parse("baddate")
    assert msg.headers.get("Date") == "Fri, 01 Jan 2010 16:00:00 EST"


def test_badbranch_rejected_by_check() -> None:
    msg = parse("badbranch")
    assert msg.top_via.branch == "z9hG4bK"
    response = check(msg)  # type: ignore[arg-type]
    assert response is not None and response.status == 400 and "magic cookie" in response.reason
