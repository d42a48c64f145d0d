"""The header-name table and the Headers multi-map (RFC 3261 §7.3)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.sip import Headers, canonical_name
from gateway.sip.headers import COMPACT_FORMS, HEADER_TABLE, LIST_HEADERS, header_key, split_list

# RFC 3261 §7.3.3 plus the compact forms registered later (IANA SIP parameters, "Header Fields").
REGISTERED_COMPACT = {
    "a": "Accept-Contact",
    "b": "Referred-By",
    "c": "Content-Type",
    "d": "Request-Disposition",
    "e": "Content-Encoding",
    "f": "From",
    "i": "Call-ID",
    "j": "Reject-Contact",
    "k": "Supported",
    "l": "Content-Length",
    "m": "Contact",
    "n": "Identity-Info",
    "o": "Event",
    "r": "Refer-To",
    "s": "Subject",
    "t": "To",
    "u": "Allow-Events",
    "v": "Via",
    "x": "Session-Expires",
    "y": "Identity",
}


def test_compact_forms_are_the_registered_ones() -> None:
    assert COMPACT_FORMS == REGISTERED_COMPACT


def test_table_has_no_duplicates() -> None:
    names = [spec.name.lower() for spec in HEADER_TABLE]
    assert len(names) == len(set(names))


@pytest.mark.parametrize(("compact", "full"), sorted(REGISTERED_COMPACT.items()))
def test_compact_form_expands(compact: str, full: str) -> None:
    assert canonical_name(compact) == full
    assert canonical_name(compact.upper()) == full
    assert header_key(compact) == full.lower()


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        ("call-id", "Call-ID"),
        ("CSEQ", "CSeq"),
        ("www-authenticate", "WWW-Authenticate"),
        ("mime-version", "MIME-Version"),
        ("X-Custom", "X-Custom"),
        ("x-custom", "x-custom"),
        ("TO ", "To"),
    ],
)
def test_canonical_names(written: str, canonical: str) -> None:
    assert canonical_name(written) == canonical


@pytest.mark.parametrize("name", ["", "Bad Name", "Via:", "Ü-Header", "a\tb"])
def test_invalid_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="token"):
        canonical_name(name)
    with pytest.raises(ValueError):
        Headers().add(name, "x")


def test_list_headers() -> None:
    for name in (
        "Via",
        "Contact",
        "Route",
        "Record-Route",
        "Allow",
        "Supported",
        "Require",
        "Proxy-Require",
        "Unsupported",
        "Accept",
        "Allow-Events",
    ):
        assert name.lower() in LIST_HEADERS, name
    for name in (
        "WWW-Authenticate",
        "Authorization",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "Date",
        "Subject",
        "Call-ID",
        "CSeq",
        "From",
        "To",
        "Authentication-Info",
        "Retry-After",
    ):
        assert name.lower() not in LIST_HEADERS, name


# -- split_list --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "parts"),
    [
        ("INVITE, ACK,BYE", ["INVITE", "ACK", "BYE"]),
        ("single", ["single"]),
        ("", []),
        (" , ,", []),
        (
            '"Smith, John" <sip:j@example.com>, <sip:k@example.com>',
            ['"Smith, John" <sip:j@example.com>', "<sip:k@example.com>"],
        ),
        (
            "<sip:a@example.com?x=1,2>;q=0.5, <sip:b@example.com>",
            ["<sip:a@example.com?x=1,2>;q=0.5", "<sip:b@example.com>"],
        ),
        ('"quote \\", comma" <sip:a@b>, c', ['"quote \\", comma" <sip:a@b>', "c"]),
        ('"unterminated, x', ['"unterminated, x']),
    ],
)
def test_split_list(value: str, parts: list[str]) -> None:
    assert split_list(value) == parts


# -- Headers ----------------------------------------------------------------------------------------


def sample() -> Headers:
    return Headers(
        [
            ("Via", "SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b;branch=z9hG4bK2"),
            ("v", "SIP/2.0/UDP c;branch=z9hG4bK3"),
            ("From", "<sip:x@y>;tag=1"),
            ("WWW-Authenticate", 'Digest realm="sipgw", nonce="abc", qop="auth"'),
            ("Date", "Sat, 13 Nov 2010 23:29:00 GMT"),
            ("X-Thing", "a, b"),
        ]
    )


def test_get_returns_the_first_field_value_unsplit() -> None:
    h = sample()
    assert h.get("via") == "SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b;branch=z9hG4bK2"
    assert h.get("Missing") is None and h.get("Missing", "d") == "d"


def test_get_all_splits_list_headers_only() -> None:
    h = sample()
    assert h.get_all("V") == [
        "SIP/2.0/UDP a;branch=z9hG4bK1",
        "SIP/2.0/UDP b;branch=z9hG4bK2",
        "SIP/2.0/UDP c;branch=z9hG4bK3",
    ]
    assert h.get_all("WWW-Authenticate") == ['Digest realm="sipgw", nonce="abc", qop="auth"']
    assert h.get_all("Date") == ["Sat, 13 Nov 2010 23:29:00 GMT"]
    assert h.get_all("x-thing") == ["a, b"]  # unknown grammar: never split
    assert h.get_fields("Via") == [
        "SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b;branch=z9hG4bK2",
        "SIP/2.0/UDP c;branch=z9hG4bK3",
    ]


def test_items_keep_order_and_canonical_names() -> None:
    assert [n for n, _ in sample().items()] == ["Via", "Via", "From", "WWW-Authenticate", "Date", "X-Thing"]


def test_contains_len_count() -> None:
    h = sample()
    assert "VIA" in h and "f" in h and "To" not in h and 42 not in h and "bad name" not in h
    assert len(h) == 6 and h.count("Via") == 2


def test_add_set_remove() -> None:
    h = sample()
    h.add("Contact", "<sip:a@b>")
    assert h.keys()[-1] == "Contact"
    h.set("Via", "SIP/2.0/TCP z;branch=z9hG4bKz")
    assert h.get_fields("Via") == ["SIP/2.0/TCP z;branch=z9hG4bKz"]
    assert h.keys()[0] == "Via"  # kept at the position of the first
    h.set("Subject", "new")
    assert h.keys()[-1] == "Subject"
    assert h.remove("x-thing") == 1 and "X-Thing" not in h
    assert h.remove("nothing") == 0


def test_prepend_puts_the_field_before_its_namesakes() -> None:
    h = Headers([("To", "<sip:a@b>"), ("Via", "SIP/2.0/UDP b"), ("Route", "<sip:r>")])
    h.prepend("Via", "SIP/2.0/UDP new")
    assert h.items()[1] == ("Via", "SIP/2.0/UDP new")
    h.prepend("Record-Route", "<sip:rr;lr>")
    assert h.items()[0] == ("Record-Route", "<sip:rr;lr>")


def test_remove_first_takes_one_list_element() -> None:
    h = sample()
    assert h.remove_first("Via") == "SIP/2.0/UDP a;branch=z9hG4bK1"
    assert h.get_all("Via") == ["SIP/2.0/UDP b;branch=z9hG4bK2", "SIP/2.0/UDP c;branch=z9hG4bK3"]
    assert h.remove_first("Via") == "SIP/2.0/UDP b;branch=z9hG4bK2"
    assert h.get_all("Via") == ["SIP/2.0/UDP c;branch=z9hG4bK3"]
    assert h.remove_first("Date") == "Sat, 13 Nov 2010 23:29:00 GMT"
    assert h.remove_first("Date") is None


def test_values_are_stripped_and_line_breaks_refused() -> None:
    h = Headers()
    h.add("Subject", "  padded\t")
    assert h.get("Subject") == "padded"
    for bad in ("a\r\nVia: x", "a\nb", "a\rb"):
        with pytest.raises(ValueError, match="line break"):
            h.add("Subject", bad)
    with pytest.raises(TypeError):
        h.add("Expires", 3600)  # type: ignore[arg-type]


def test_copy_is_independent_and_equal() -> None:
    h = sample()
    c = h.copy()
    assert c == h
    c.add("X", "y")
    assert c != h and "X" not in h


def test_equality_ignores_name_spelling() -> None:
    assert Headers([("v", "x"), ("l", "0")]) == Headers([("VIA", "x"), ("content-length", "0")])
    assert Headers([("Via", "x"), ("To", "y")]) != Headers([("To", "y"), ("Via", "x")])


def test_construct_from_mapping() -> None:
    h = Headers({"To": "<sip:a@b>", "Call-ID": "x"})
    assert h.items() == [("To", "<sip:a@b>"), ("Call-ID", "x")]


def test_memo_is_cleared_on_change() -> None:
    h = Headers([("CSeq", "1 INVITE")])
    calls = []

    def parse(headers: Headers) -> str:
        calls.append(1)
        return headers.get("CSeq") or ""

    assert h._memo("k", parse) == "1 INVITE"
    assert h._memo("k", parse) == "1 INVITE"
    assert len(calls) == 1
    h.set("CSeq", "2 INVITE")
    assert h._memo("k", parse) == "2 INVITE"
    assert len(calls) == 2


def test_a_change_forgets_the_views_of_its_header_and_of_unknown_origin_only() -> None:
    h = Headers([("Via", "SIP/2.0/UDP a;branch=z9hG4bK1"), ("CSeq", "1 INVITE"), ("To", "<sip:a@b>")])
    h._remember("top_via", "via view")
    h._remember("vias", "vias view")
    h._remember("cseq", "cseq view")
    h._remember("k", "own view")
    h._remember("j", "another")
    h.add("Via", "SIP/2.0/UDP b;branch=z9hG4bK2")
    assert h._cache == {"cseq": "cseq view"}  # Via's views and the slots of unknown origin are gone
    h.set("To", "<sip:c@d>")
    assert h._cache == {"cseq": "cseq view"}


@given(st.lists(st.sampled_from(["a", "b c", '"x, y" <sip:q>', "<sip:r?h=1,2>", ";p=1"]), max_size=6))
def test_split_list_inverts_join(elements: list[str]) -> None:
    assert split_list(", ".join(elements)) == elements


def test_items_of_picks_fields_by_key_in_order() -> None:
    h = Headers([("Via", "a"), ("Subject", "s"), ("v", "b"), ("X-Thing", "1"), ("via", "c")])
    assert h.items_of(frozenset({"via", "x-thing"})) == [("Via", "a"), ("Via", "b"), ("X-Thing", "1"), ("Via", "c")]
    assert h.items_of({"subject"}) == [("Subject", "s")]
    assert h.items_of(frozenset()) == []
