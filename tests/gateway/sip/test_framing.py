"""StreamFramer: Content-Length framing on TCP/TLS (RFC 3261 §18.3) and RFC 5626 keep-alives."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.sip import (
    KEEPALIVE_PING,
    Request,
    SipParseError,
    StreamFramer,
    is_keepalive,
    parse_message,
    response_for_error,
)


def message(n: int, body: bytes = b"") -> bytes:
    return (
        f"MESSAGE sip:2001@sipgw.example.com SIP/2.0\r\n"
        f"Via: SIP/2.0/TCP 10.0.0.{n}:5060;branch=z9hG4bK-{n}\r\n"
        f"From: <sip:a@example.com>;tag={n}\r\n"
        f"To: <sip:2001@sipgw.example.com>\r\n"
        f"Call-ID: call-{n}\r\n"
        f"CSeq: {n} MESSAGE\r\n"
        f"Content-Type: text/plain\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"\r\n"
    ).encode() + body


def test_one_message() -> None:
    framer = StreamFramer()
    data = message(1, b"hello")
    assert framer.feed(data) == [data]
    assert framer.buffered == 0 and framer.messages == 1
    req = parse_message(data, stream=True)
    assert isinstance(req, Request) and req.body == b"hello"


def test_byte_by_byte() -> None:
    framer = StreamFramer()
    data = message(1, b"body\r\n\r\nwith blank lines")
    frames = []
    for i in range(len(data)):
        frames += framer.feed(data[i : i + 1])
    assert frames == [data]


def test_several_messages_in_one_read() -> None:
    framer = StreamFramer()
    msgs = [message(i, b"x" * i) for i in range(1, 6)]
    assert framer.feed(b"".join(msgs)) == msgs


def test_partial_body_waits() -> None:
    framer = StreamFramer()
    data = message(1, b"0123456789")
    assert framer.feed(data[:-4]) == []
    assert framer.buffered == len(data) - 4
    assert framer.feed(data[-4:]) == [data]


def test_keepalive_ping_is_reported_and_pong_skipped() -> None:
    framer = StreamFramer()
    data = message(1)
    out = framer.feed(b"\r\n\r\n" + data + b"\r\n" + message(2) + b"\r\n\r\n")
    assert out == [KEEPALIVE_PING, data, message(2), KEEPALIVE_PING]
    assert [is_keepalive(f) for f in out if isinstance(f, bytes)] == [True, False, False, True]
    assert framer.keepalives == 3


def test_half_a_ping_waits_for_the_rest() -> None:
    framer = StreamFramer()
    assert framer.feed(b"\r\n") == []
    assert framer.feed(b"\r\n") == [KEEPALIVE_PING]


def test_compact_and_folded_content_length() -> None:
    data = message(1, b"abc").replace(b"Content-Length: 3", b"l:\r\n 3")
    assert StreamFramer().feed(data + message(2)) == [data, message(2)]


def test_missing_content_length_breaks_the_stream() -> None:
    framer = StreamFramer()
    data = message(1).replace(b"Content-Length: 0\r\n", b"")
    (err,) = framer.feed(data + message(2))
    assert isinstance(err, SipParseError)
    assert err.status_hint == 400 and "Content-Length" in err.reason
    assert err.partial is not None and err.partial.call_id == "call-1"
    response = response_for_error(err)
    assert response is not None and response.status == 400
    assert framer.broken
    assert framer.feed(message(3)) == []


def test_duplicate_or_bad_content_length_breaks_the_stream() -> None:
    dup = message(1).replace(b"Content-Length: 0\r\n", b"Content-Length: 0\r\nl: 5\r\n")
    (err,) = StreamFramer().feed(dup)
    assert isinstance(err, SipParseError) and "more than once" in err.reason
    (err,) = StreamFramer().feed(message(1).replace(b"Content-Length: 0", b"Content-Length: -999"))
    assert isinstance(err, SipParseError) and err.status_hint == 400


def test_oversize_message_is_513() -> None:
    framer = StreamFramer(max_message_size=1024)
    data = message(1, b"x" * 2000)
    out = framer.feed(data[:400])
    (err,) = out
    assert isinstance(err, SipParseError) and err.status_hint == 513
    assert err.partial is not None and err.partial.cseq.seq == 1
    assert framer.broken and framer.buffered == 0


def test_endless_header_section_is_513() -> None:
    framer = StreamFramer(max_message_size=1024)
    assert framer.feed(b"INVITE sip:a@b SIP/2.0\r\n") == []
    out: list[bytes | SipParseError] = []
    for _ in range(100):
        out += framer.feed(b"X-Junk: " + b"y" * 50 + b"\r\n")
        if out:
            break
    (err,) = out
    assert isinstance(err, SipParseError) and err.status_hint == 513 and err.partial is None
    assert framer.buffered == 0


def test_messages_before_an_error_are_delivered() -> None:
    framer = StreamFramer()
    bad = message(2).replace(b"Content-Length: 0\r\n", b"")
    out = framer.feed(message(1) + bad)
    assert out[0] == message(1)
    assert isinstance(out[1], SipParseError)


def test_too_small_limit_is_refused() -> None:
    with pytest.raises(ValueError):
        StreamFramer(max_message_size=10)


@given(
    bodies=st.lists(st.binary(max_size=200), min_size=1, max_size=6),
    cuts=st.lists(st.integers(min_value=1, max_value=300), max_size=30),
    pings=st.lists(st.booleans(), min_size=6, max_size=6),
)
def test_any_chunking_gives_the_same_frames(bodies: list[bytes], cuts: list[int], pings: list[bool]) -> None:
    expected: list[bytes] = []
    stream = b""
    for i, body in enumerate(bodies):
        if pings[i]:
            stream += KEEPALIVE_PING
            expected.append(KEEPALIVE_PING)
        msg = message(i, body)
        stream += msg
        expected.append(msg)
    framer = StreamFramer()
    out: list[bytes | SipParseError] = []
    pos = 0
    for cut in cuts:
        out += framer.feed(stream[pos : pos + cut])
        pos += cut
    out += framer.feed(stream[pos:])
    assert out == expected
    assert framer.buffered == 0
