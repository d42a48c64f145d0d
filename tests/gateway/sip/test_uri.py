"""SipURI, NameAddr, Via and CSeq (RFC 3261 §19.1, §20.10, §20.16, §20.42; RFC 3966; RFC 5118)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.sip import CSeq, NameAddr, SipParseError, SipURI, Via
from gateway.sip.abnf import PARAM_RE
from gateway.sip.uri import parse_params

# -- SipURI ---------------------------------------------------------------------------------------


def test_full_sip_uri() -> None:
    uri = SipURI.parse(
        "sips:alice:secret@Atlanta.example.com:5061;transport=TLS;lr;maddr=239.255.255.1?Subject=hi%20there&X=1"
    )
    assert uri.scheme == "sips" and uri.is_sip
    assert (uri.user, uri.password) == ("alice", "secret")
    assert (uri.host, uri.port) == ("Atlanta.example.com", 5061)
    assert uri.params == {"transport": "TLS", "lr": None, "maddr": "239.255.255.1"}
    assert uri.transport == "tls" and uri.lr
    assert uri.headers == {"Subject": "hi there", "X": "1"}
    assert (
        str(uri)
        == "sips:alice:secret@Atlanta.example.com:5061;transport=TLS;lr;maddr=239.255.255.1?Subject=hi%20there&X=1"
    )
    assert SipURI.parse(str(uri)) == uri


def test_host_only_uri() -> None:
    uri = SipURI.parse("sip:sipgw.example.com")
    assert uri.user is None and uri.port is None and uri.hostport == "sipgw.example.com"
    assert str(uri) == "sip:sipgw.example.com"


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [
        ("sip:[2001:db8::10]", "2001:db8::10", None),
        ("sip:alice@[2001:db8::10]:5070", "2001:db8::10", 5070),
        ("sip:[2001:db8::10:5070]", "2001:db8::10:5070", None),  # RFC 5118 §4.2: a valid address, no port
        ("sip:[::ffff:192.0.2.1]:5060;transport=udp", "::ffff:192.0.2.1", 5060),
    ],
)
def test_ipv6_hosts(text: str, host: str, port: int | None) -> None:
    uri = SipURI.parse(text)
    assert (uri.host, uri.port) == (host, port)
    assert uri.host_text == f"[{host}]"
    assert str(uri) == text


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("sip:", "empty URI"),
        ("sip", "scheme"),
        (":a@b", "scheme"),
        ("1sip:a@b", "scheme"),
        ("sip:a b@c", "not allowed"),
        ("sip:<a@b>", "not allowed"),
        ("sip:alice@", "host"),
        ("sip:alice@host:", "port"),
        ("sip:alice@host:65536", "out of range"),
        ("sip:alice@host:5x", "port"),
        ("sip:alice@[2001:db8::10::1]", "IPv6"),
        ("sip:alice@[2001:db8::10", "unterminated"),
        ("sip:alice@[2001:db8::10]x", "after IPv6"),
        ("sip:alice@256.1.1.1", "IPv4"),
        ("sip:alice@-host.example.com", "host"),
        ("sip:alice@host;;lr", "parameter"),
        ("sip:alice@host;a=", "parameter value"),
        ("sip:al%ZZice@host", "%-escape"),
        ("sip:@host", "user"),
        ("sip:alice@host?noequals", "header"),
        ("tel:;phone-context=x", "number"),
    ],
)
def test_invalid_uris(text: str, words: str) -> None:
    with pytest.raises(SipParseError, match=words) as info:
        SipURI.parse(text)
    assert info.value.status_hint == 400
    with pytest.raises(ValueError):  # SipParseError is a ValueError for configuration parsing
        SipURI.parse(text)


def test_escapes_are_undone_once_and_redone_on_output() -> None:
    uri = SipURI.parse("sip:%61lice%40home@example.com;x=%2541")
    assert uri.user == "alice@home" and uri.params == {"x": "%41"}
    assert str(uri) == "sip:alice%40home@example.com;x=%2541"


def test_telephone_subscriber_in_user_part() -> None:
    uri = SipURI.parse("sip:+1-212-555-1212:1234@gateway.com;user=phone")
    assert uri.password == "1234"  # RFC 3261 §19.1.1: what follows ":" is a password
    assert uri.params["user"] == "phone"


def test_tel_uri() -> None:
    uri = SipURI.parse("tel:+1-201-555-0123;phone-context=example.com;ext=42")
    assert (uri.scheme, uri.user, uri.host) == ("tel", "+1-201-555-0123", "")
    assert uri.params == {"phone-context": "example.com", "ext": "42"}
    assert str(uri) == "tel:+1-201-555-0123;phone-context=example.com;ext=42"


def test_other_schemes_are_opaque() -> None:
    uri = SipURI.parse("urn:service:sos")
    assert (uri.scheme, uri.opaque, uri.is_sip) == ("urn", "service:sos", False)
    assert str(uri) == "urn:service:sos"
    assert SipURI.parse("HTTP://example.com/x").scheme == "http"


# RFC 3261 §19.1.4: URIs that are equivalent ...
EQUIVALENT = [
    ("sip:%61lice@atlanta.com;transport=TCP", "sip:alice@AtLanTa.CoM;Transport=tcp"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com;security=on"),
    ("sip:carol@chicago.com;newparam=5", "sip:carol@chicago.com;security=on"),
    (
        "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
        "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com",
    ),
    (
        "sip:alice@atlanta.com?subject=project%20x&priority=urgent",
        "sip:alice@atlanta.com?priority=urgent&subject=project%20x",
    ),
]
# ... and URIs that are not.
DIFFERENT = [
    ("SIP:ALICE@AtLanTa.CoM;Transport=udp", "sip:alice@AtLanTa.CoM;Transport=UDP"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com:6000;transport=tcp"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com?Subject=next%20meeting"),
    ("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"),
    ("sip:carol@chicago.com;security=on", "sip:carol@chicago.com;security=off"),
    ("sip:alice@atlanta.com", "sips:alice@atlanta.com"),
]


@pytest.mark.parametrize(("a", "b"), EQUIVALENT)
def test_rfc3261_equivalent_uris(a: str, b: str) -> None:
    assert SipURI.parse(a) == SipURI.parse(b)
    assert hash(SipURI.parse(a)) == hash(SipURI.parse(b))


@pytest.mark.parametrize(("a", "b"), DIFFERENT)
def test_rfc3261_different_uris(a: str, b: str) -> None:
    assert SipURI.parse(a) != SipURI.parse(b)


def test_copy_with_changes() -> None:
    uri = SipURI.parse("sip:alice@example.com;transport=tcp")
    moved = uri.copy(host="10.0.0.5", port=5080)
    assert str(moved) == "sip:alice@10.0.0.5:5080;transport=tcp"
    assert str(uri) == "sip:alice@example.com;transport=tcp"
    with pytest.raises(TypeError):
        uri.copy(nonsense=1)


USER = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.!~*'()&=+$,;?/ @%:\x00é", min_size=1, max_size=15)
HOST = st.one_of(
    st.from_regex(r"[a-z][a-z0-9\-]{0,10}[a-z0-9](\.[a-z][a-z0-9]{0,8}){0,3}", fullmatch=True),
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(str),
)
PNAME = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=8)
PVALUE = st.one_of(st.none(), st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-.%[]:/ ", min_size=1, max_size=10))


@given(
    scheme=st.sampled_from(["sip", "sips"]),
    user=st.one_of(st.none(), USER),
    host=HOST,
    port=st.one_of(st.none(), st.integers(1, 65535)),
    params=st.dictionaries(PNAME, PVALUE, max_size=4),
    headers=st.dictionaries(PNAME.map(str.title), st.text(min_size=0, max_size=10), max_size=3),
)
def test_uri_round_trip(
    scheme: str, user: str | None, host: str, port: int | None, params: dict, headers: dict
) -> None:
    uri = SipURI(scheme, user, host, port, params, headers)
    again = SipURI.parse(str(uri))
    assert (again.scheme, again.user, again.host, again.port) == (scheme, user, host, port)
    assert again.params == params and again.headers == headers


# -- NameAddr ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "display", "uri", "params"),
    [
        (
            '"Alice Smith" <sip:alice@example.com>;tag=88sja8x',
            "Alice Smith",
            "sip:alice@example.com",
            {"tag": "88sja8x"},
        ),
        ("Alice Smith <sip:alice@example.com>", "Alice Smith", "sip:alice@example.com", {}),
        (
            "<sip:alice@example.com;transport=tcp>;expires=60;q=0.7",
            None,
            "sip:alice@example.com;transport=tcp",
            {"expires": "60", "q": "0.7"},
        ),
        ("sip:alice@example.com;tag=1", None, "sip:alice@example.com", {"tag": "1"}),
        ('""<sip:a@b>', "", "sip:a@b", {}),
        ('  "\\"quoted\\"" \t <tel:+15551234>  ; tag = x ', '"quoted"', "tel:+15551234", {"tag": "x"}),
        ("Jürgen <sip:j@example.de>", "Jürgen", "sip:j@example.de", {}),
        (
            '<sip:a@b>;+sip.instance="<urn:uuid:1>";reg-id=1',
            None,
            "sip:a@b",
            {"+sip.instance": '"<urn:uuid:1>"', "reg-id": "1"},
        ),
    ],
)
def test_name_addr_forms(text: str, display: str | None, uri: str, params: dict) -> None:
    addr = NameAddr.parse(text)
    assert addr.display == display
    assert str(addr.uri) == uri
    assert addr.params == params
    assert NameAddr.parse(str(addr)) == addr


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "empty"),
        ('"unterminated <sip:a@b>', "unterminated"),
        ('"quoted" sip:a@b', "not followed"),
        ("<sip:a@b", "missing '>'"),
        ("< sip:a@b>", "spaces"),
        ("Smith, John <sip:a@b>", "quotes"),
        ("sip:a@b?h=1", "enclosed in <>"),
        ("<sip:a@b>;;", "parameter"),
        ("<sip:a@b> trailing", "unexpected text"),
    ],
)
def test_name_addr_errors(text: str, words: str) -> None:
    with pytest.raises(SipParseError, match=words):
        NameAddr.parse(text)


def test_with_tag_and_accessors() -> None:
    addr = NameAddr.parse('"Desk" <sip:2001@example.com>;expires=120;q=0.5')
    tagged = addr.with_tag("gw-1")
    assert tagged.tag == "gw-1" and addr.tag is None
    assert str(tagged) == '"Desk" <sip:2001@example.com>;expires=120;q=0.5;tag=gw-1'
    assert addr.expires == 120 and addr.q == 0.5
    assert NameAddr.parse("<sip:a@b>;expires=soon").expires is None
    with pytest.raises(ValueError):
        addr.with_tag("bad tag")


def test_display_escaping_on_output() -> None:
    addr = NameAddr(SipURI.parse("sip:a@b"), 'Say "hi" \\ bye')
    assert str(addr) == '"Say \\"hi\\" \\\\ bye" <sip:a@b>'
    assert NameAddr.parse(str(addr)).display == 'Say "hi" \\ bye'


# -- Via --------------------------------------------------------------------------------------------


def test_via_fields() -> None:
    via = Via.parse("SIP/2.0/tcp pbx.example.com:5070;branch=z9hG4bKabc;received=192.0.2.5;rport=34000;ttl=1")
    assert (via.transport, via.host, via.port) == ("TCP", "pbx.example.com", 5070)
    assert via.branch == "z9hG4bKabc" and via.received == "192.0.2.5" and via.rport == 34000
    assert via.sent_by == "pbx.example.com:5070"
    assert str(via) == "SIP/2.0/TCP pbx.example.com:5070;branch=z9hG4bKabc;received=192.0.2.5;rport=34000;ttl=1"
    assert Via.parse(str(via)) == via


def test_via_rport_forms() -> None:
    assert Via.parse("SIP/2.0/UDP h;branch=z9hG4bK1").rport is None
    assert Via.parse("SIP/2.0/UDP h;rport;branch=z9hG4bK1").rport is True
    assert Via.parse("SIP/2.0/UDP h;rport=5062").rport == 5062


def test_via_whitespace_everywhere() -> None:
    via = Via.parse("SIP  /  2.0 / UDP   host.example.com : 5060 ; branch = z9hG4bKx ; maddr=224.2.0.1")
    assert (via.transport, via.host, via.port, via.branch) == ("UDP", "host.example.com", 5060, "z9hG4bKx")
    assert via.params["maddr"] == "224.2.0.1"


def test_via_ipv6() -> None:
    via = Via.parse("SIP/2.0/UDP [2001:db8::9:1]:5060;branch=z9hG4bK1;received=2001:db8::9:255")
    assert (via.host, via.port, via.received) == ("2001:db8::9:1", 5060, "2001:db8::9:255")
    assert str(via) == "SIP/2.0/UDP [2001:db8::9:1]:5060;branch=z9hG4bK1;received=2001:db8::9:255"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "SIP/2.0/UDP",
        "SIP/2.0 UDP host",
        "HTTP/1.1/TCP host",
        "SIP/2.0/UDP host;branch=a,b",
        "SIP/2.0/UDP host:70000",
        "SIP/2.0/UDP host;;",
        "SIP/2.0/UDP ho st",
    ],
)
def test_via_errors(text: str) -> None:
    with pytest.raises(SipParseError):
        Via.parse(text)


# -- CSeq -------------------------------------------------------------------------------------------


def test_cseq() -> None:
    assert CSeq.parse("4711 INVITE") == (4711, "INVITE")
    assert CSeq.parse(" 0009 \t INVITE ") == (9, "INVITE")
    assert CSeq.parse("4294967295 BYE").seq == 2**32 - 1
    assert CSeq.parse("7 X-Custom.1") == (7, "X-Custom.1")  # token characters beyond letters
    assert str(CSeq(12, "ACK")) == "12 ACK"


@pytest.mark.parametrize(
    "text", ["", "INVITE", "1", "-1 INVITE", "4294967296 INVITE", "1 IN VITE", "1,INVITE", "1" * 30 + " X",
             "1 INVIT\u00c9", "\u0661 INVITE", "1  "]
)
def test_cseq_errors(text: str) -> None:
    with pytest.raises(SipParseError, match="CSeq"):
        CSeq.parse(text)


@given(text=st.text(alphabet=st.sampled_from(list("aZ09_.-~!*'()&=+$,;?/[]:%@# \"<>é\x00")), max_size=12),
       safe=st.sampled_from(["user", "password", "param", "header"]))
def test_escaping_skips_quote_only_where_quote_would_change_nothing(text: str, safe: str) -> None:
    """URI components are written with urllib's quote(); the usual component, whose every character is kept,
    is returned as it is without the call. Both give the same text for any input."""
    from urllib.parse import quote

    from gateway.sip import uri as uri_module

    kept = {"user": uri_module._SAFE_USER, "password": uri_module._SAFE_PASSWORD,
            "param": uri_module._SAFE_PARAM, "header": uri_module._SAFE_HEADER}[safe]
    assert uri_module._escape(text, kept) == quote(text, safe=kept, errors="surrogateescape")


_VIA_TEXTS = [
    "SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-1-1-0;rport",
    "SIP/2.0/TLS pc33.atlanta.example.com;branch=z9hG4bK776asdhds",
    "SIP/2.0/udp 10.0.0.1:5060;received=10.0.0.2;rport=5070;branch=z9hG4bKx",
    "SIP/2.0/TCP host.example:65535",
    "SIP/2.0/UDP 127.0.0.1",
    "sip/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKa",  # lower-case protocol name
    "SIP / 2.0 / UDP 127.0.0.1 : 5060 ;branch=z9hG4bKb",  # white space the regex reads
    "SIP/2.0/UDP  127.0.0.1:5060;branch=z9hG4bKc",  # two spaces
    "SIP/2.0/UDP [2001:db8::9]:5060;branch=z9hG4bKd",  # IPv6 reference
    "SIP/2.0/X-NEW 127.0.0.1:5060;branch=z9hG4bKe",  # a transport token that is not letters
    'SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKf;x="quoted ; value"',
    "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKg ",  # trailing white space
]

_BAD_VIA_TEXTS = [
    "SIP/2.0/UDP 127.0.0.1:65536;branch=z9hG4bK1",
    "SIP/2.0/UDP 127.0.0.1:0x50;branch=z9hG4bK1",
    "SIP/2.0/UDP 127.0.0.1:;branch=z9hG4bK1",
    "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1;;rport",
    "SIP/2.0/UDP 127.0.0.1:5060 junk",
    "SIP/2.0/ 127.0.0.1:5060",
    "SIP/3.0/UDP 127.0.0.1:5060",
]


@pytest.mark.parametrize("text", _VIA_TEXTS)
def test_via_usual_form_reads_as_the_full_parse_does(text: str) -> None:
    """Via values of a host already seen skip the regex (Via._parse_usual): same result as the full parse."""
    from gateway.sip import uri

    uri._GOOD_HOSTS.clear()
    full = Via._parse_text(text)  # no known host yet: the regex parse, which remembers the host
    again = Via._parse_text(text)  # the host is known now
    assert again == full
    assert (again.protocol, again.transport, again.host, again.port, again.params) == (
        full.protocol, full.transport, full.host, full.port, full.params)
    assert str(again) == str(full)


@pytest.mark.parametrize("text", _BAD_VIA_TEXTS)
def test_via_usual_form_leaves_every_error_to_the_full_parse(text: str) -> None:
    from gateway.sip import uri

    uri._GOOD_HOSTS.add("127.0.0.1")
    assert Via._parse_usual(text) is None
    with pytest.raises(SipParseError):
        Via._parse_text(text)


# The plain form of a parameter list, as the regular expression parse_params used before reading it by splitting.
_PLAIN_PARAMS_REFERENCE = re.compile(r"(?:;[-.!%*_+`'~A-Za-z0-9]+(?:=[-.!%*_+`'~A-Za-z0-9\[\]:]+)?)*")


def _reference_params(text: str, pos: int) -> tuple[dict[str, str | None], int]:
    """parse_params as it read parameters with the regular expression above."""
    n = len(text)
    if _PLAIN_PARAMS_REFERENCE.fullmatch(text, pos) is not None:
        plain: dict[str, str | None] = {}
        if pos < n:
            for item in text[pos + 1:].split(";"):
                name, eq, value = item.partition("=")
                plain[name.lower()] = value if eq else None
        return plain, n
    params: dict[str, str | None] = {}
    while pos < n:
        m = PARAM_RE.match(text, pos)
        if m is None:
            break
        params[m.group(1).lower()] = m.group(2)
        pos = m.end()
    return params, pos


@pytest.mark.parametrize("text", [
    "", ";branch=z9hG4bK-1-0;rport", ";rport;received=[::1]", ";maddr=10.0.0.1:5060", ";A=1;a=2", ";;x", ";x=",
    ";=1", "x;y", ";x=a b", ';x="a;b"', ";x=1 ;y", ";x==1", ";tag=é", ";lr", ";x=1;", "; x=1", ";x=\t1",
])
def test_parse_params_reads_as_the_regular_expression_did(text: str) -> None:
    for pos in range(len(text) + 1):
        assert parse_params(text, pos) == _reference_params(text, pos), (text, pos)


@given(st.text(alphabet=";=:[]\"\\ \tabAZ09-.!%*_+`'~é,", max_size=24), st.integers(min_value=0, max_value=3))
def test_parse_params_property(text: str, pos: int) -> None:
    assert parse_params(text, pos) == _reference_params(text, pos)
